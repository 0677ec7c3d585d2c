//! Helpers shared by the interop tests: collect every case's outcome, fail once.

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
