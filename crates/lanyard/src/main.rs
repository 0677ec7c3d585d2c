//! The `lanyard` command-line tool (work in progress).
fn main() {}
