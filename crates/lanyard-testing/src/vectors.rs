//! The conformance-vector runner: every case of a vector file runs, all failures are
//! reported together, and known divergences are listed with a reason in the suite's
//! `exceptions.json` (`{"case id": "why"}`, keys starting with `_` are comments). A listed
//! case that fails is accepted; a listed case that *passes* fails the run, so the list
//! cannot go stale.
//!
//! A vector file is a JSON object with a `cases` array; each case has a unique `id` and,
//! for [`expect_outcome`], `expect` (`"valid"` or `"error"`) and `error` (the expected
//! error kind). What a case means beyond that is the caller's `check`.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// An error with a stable kind string, as vector cases name them.
pub trait ErrorKind: Display {
    /// The stable error kind (`lanyard_core::Error::kind`).
    fn error_kind(&self) -> &str;
}

impl ErrorKind for lanyard_core::Error {
    fn error_kind(&self) -> &str {
        self.kind()
    }
}

/// A directory of vector files with its `exceptions.json`.
#[derive(Debug, Clone)]
pub struct Suite {
    dir: PathBuf,
}

impl Suite {
    /// The workspace's suite, `testdata/vectors/`.
    pub fn workspace() -> Suite {
        Suite::at(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors"))
    }

    /// The suite in `dir` (which must hold an `exceptions.json`).
    pub fn at(dir: impl Into<PathBuf>) -> Suite {
        Suite { dir: dir.into() }
    }

    /// The suite's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The JSON document at `rel` (relative to the suite's directory).
    pub fn load(&self, rel: &str) -> Value {
        let path = self.dir.join(rel);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The known divergences: case id → reason.
    pub fn exceptions(&self) -> BTreeMap<String, String> {
        match self.load("exceptions.json") {
            Value::Object(m) => m
                .into_iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
                .collect(),
            _ => panic!("exceptions.json must be an object"),
        }
    }

    /// Runs `check` on every case of `file` and fails once, listing every failure: a case
    /// that fails and is not an exception, or an exception that passes.
    pub fn run(&self, file: &str, check: impl Fn(&Value) -> Result<(), String>) {
        let doc = self.load(file);
        let outcomes = cases(&doc).iter().map(|case| {
            let id = field(case, "id").expect("case id").to_owned();
            (id, check(case))
        });
        judge(file, outcomes, &self.exceptions());
    }
}

/// Judges the outcomes of one file's cases against `exceptions` (panics with every
/// failure listed). Separate from [`Suite::run`] so the rule itself is tested.
pub fn judge(
    file: &str,
    outcomes: impl IntoIterator<Item = (String, Result<(), String>)>,
    exceptions: &BTreeMap<String, String>,
) {
    let mut failures = Vec::new();
    let mut ran = 0;
    for (id, outcome) in outcomes {
        ran += 1;
        match (outcome, exceptions.get(&id)) {
            (Ok(()), None) | (Err(_), Some(_)) => {}
            (Err(msg), None) => failures.push(format!("{id}: {msg}")),
            (Ok(()), Some(_)) => failures.push(format!("{id}: passes now; remove it from exceptions.json")),
        }
    }
    assert!(ran > 0, "{file} has no cases");
    assert!(
        failures.is_empty(),
        "{} of {ran} cases in {file} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The workspace suite's document at `rel`.
pub fn load(rel: &str) -> Value {
    Suite::workspace().load(rel)
}

/// Runs `check` on every case of the workspace suite's `file` (see [`Suite::run`]).
pub fn run(file: &str, check: impl Fn(&Value) -> Result<(), String>) {
    Suite::workspace().run(file, check);
}

/// The `cases` array of a vector document.
pub fn cases(doc: &Value) -> &Vec<Value> {
    doc["cases"].as_array().expect("cases array")
}

/// A string member of a case.
pub fn field<'a>(case: &'a Value, name: &str) -> Option<&'a str> {
    case.get(name).and_then(Value::as_str)
}

/// Checks `result` against the case's `expect`: `"valid"` runs `on_ok` on the value,
/// `"error"` requires exactly the error kind the case names.
pub fn expect_outcome<T, E: ErrorKind>(
    case: &Value,
    result: Result<T, E>,
    on_ok: impl FnOnce(T) -> Result<(), String>,
) -> Result<(), String> {
    match (field(case, "expect"), result) {
        (Some("valid"), Ok(v)) => on_ok(v),
        (Some("valid"), Err(e)) => Err(format!("expected valid, got {} ({e})", e.error_kind())),
        (Some("error"), Ok(_)) => Err(format!(
            "expected {}, but it verified",
            field(case, "error").unwrap_or("?")
        )),
        (Some("error"), Err(e)) if Some(e.error_kind()) == field(case, "error") => Ok(()),
        (Some("error"), Err(e)) => Err(format!(
            "expected {}, got {} ({e})",
            field(case, "error").unwrap_or("?"),
            e.error_kind()
        )),
        (other, _) => Err(format!("unknown expect {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::judge;

    fn listed(id: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(id.to_owned(), "known divergence".to_owned())])
    }

    #[test]
    fn a_listed_failure_is_accepted() {
        judge("f.json", [("a".to_owned(), Err("differs".to_owned()))], &listed("a"));
    }

    #[test]
    #[should_panic(expected = "a: passes now; remove it from exceptions.json")]
    fn a_listed_case_that_passes_fails_the_run() {
        judge("f.json", [("a".to_owned(), Ok(()))], &listed("a"));
    }

    #[test]
    #[should_panic(expected = "b: differs")]
    fn an_unlisted_failure_fails_the_run() {
        judge("f.json", [("b".to_owned(), Err("differs".to_owned()))], &listed("a"));
    }

    #[test]
    #[should_panic(expected = "has no cases")]
    fn an_empty_file_fails_the_run() {
        judge("f.json", [], &BTreeMap::new());
    }
}
