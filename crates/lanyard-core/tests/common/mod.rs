//! Helpers shared by the interop tests: collect every case's outcome, fail once.

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::fmt::Debug;

/// `Ok` if `got == want`, else a message naming `what`.
pub(crate) fn ensure_eq<T: PartialEq + Debug + ?Sized>(what: &str, got: &T, want: &T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

/// Collects every case's outcome and fails once, listing all failures.
#[derive(Default)]
pub(crate) struct Report {
    passed: usize,
    failures: Vec<String>,
}

impl Report {
    /// Records one case.
    pub(crate) fn case(&mut self, name: String, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.passed += 1,
            Err(e) => self.failures.push(format!("{name}: {e}")),
        }
    }

    /// Fails listing every failed case; checks that `expected_cases` ran.
    pub(crate) fn finish(self, expected_cases: usize) {
        assert!(
            self.failures.is_empty(),
            "{} of {} interop cases failed:\n  {}",
            self.failures.len(),
            expected_cases,
            self.failures.join("\n  ")
        );
        assert_eq!(self.passed, expected_cases, "cases run");
    }
}

// ---------------------------------------------------------------------------------------
// Driving the interop programs (tests/interop/)
// ---------------------------------------------------------------------------------------

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The workspace root: the drivers' paths and working directory.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether the interop test `test` should run: yes when nothing is `missing`; otherwise
/// it prints a `skipped:` line (past the harness's capture) and says no, or panics when
/// `LANYARD_INTEROP=1` demands the run, so CI cannot skip interop by accident.
pub(crate) fn interop_enabled(test: &str, missing: &str, install_hint: &str) -> bool {
    if missing.is_empty() {
        return true;
    }
    let required = std::env::var("LANYARD_INTEROP").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "LANYARD_INTEROP=1 but the interop drivers are not installed (missing {missing}): {install_hint}"
    );
    let _ = writeln!(
        std::io::stderr().lock(),
        "{test} skipped: missing {missing}; {install_hint}, or set LANYARD_INTEROP=1 to make this a failure"
    );
    false
}

/// Runs `program script args...` from the workspace root (`program` is relative to the
/// root when it contains a `/`): the trimmed stdout on exit status 0, otherwise
/// `"<name> <command> (<status>): <stderr>"` (the driver's `error: ...` line).
pub(crate) fn run_program(name: &str, program: &str, script: &str, args: &[&str]) -> Result<String, String> {
    let root = workspace_root();
    let program = if program.contains('/') {
        root.join(program)
    } else {
        PathBuf::from(program)
    };
    let out = Command::new(&program)
        .current_dir(&root)
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name}: cannot run {}: {e}", program.display()));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!(
            "{name} {} ({}): {}",
            args.first().copied().unwrap_or_default(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A temporary directory for the keys, JWK Sets, claims and requests handed to drivers.
pub(crate) struct Scratch {
    dir: tempfile::TempDir,
    next: AtomicUsize,
}

impl Scratch {
    /// A fresh directory, removed on drop.
    #[allow(clippy::new_without_default)]
    pub(crate) fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("a temporary directory"),
            next: AtomicUsize::new(0),
        }
    }

    /// Writes `value` as JSON to a fresh file and returns its path.
    pub(crate) fn json(&self, what: &str, value: &impl serde::Serialize) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("{n}-{what}.json"));
        std::fs::write(&path, serde_json::to_vec(value).expect("serializable")).expect("writable temp dir");
        path.to_str().expect("temp paths are UTF-8").to_owned()
    }
}
