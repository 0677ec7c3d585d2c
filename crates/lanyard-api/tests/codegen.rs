//! Drift test for the committed generated code.
//!
//! Regenerates the Rust code for every `.proto` file under `proto/` with protox (a pure-Rust
//! protobuf compiler, so no `protoc` is needed) and tonic-prost-build (client and server stubs)
//! into a temporary directory, and fails if the result differs from `src/gen/`.
//!
//! After changing a `.proto` file (or upgrading tonic/prost), refresh the committed files with
//!
//! ```sh
//! LANYARD_REGENERATE=1 cargo test -p lanyard-api --test codegen
//! ```

use std::collections::BTreeSet;
use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

/// The `.proto` files to compile, relative to `proto/`. Every file the generator writes is one
/// protobuf package: `_.rs` for the package-less Workload API, `lanyard.agent.v1.rs` and
/// `lanyard.spice.v1.rs` for ours.
const PROTOS: &[&str] = &[
    "workload.proto",
    "lanyard/agent/v1/agent.proto",
    "lanyard/spice/v1/sdcwt.proto",
];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the code generator into `out_dir`.
fn generate(out_dir: &Path) -> Result<(), Box<dyn Error>> {
    let fds = protox::compile(PROTOS, [crate_dir().join("proto")])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(true)
        .emit_rerun_if_changed(false)
        .out_dir(out_dir)
        .compile_fds(fds)?;
    Ok(())
}

/// The names of the generated `.rs` files in `dir`.
fn rs_files(dir: &Path) -> Result<BTreeSet<String>, Box<dyn Error>> {
    let mut names = BTreeSet::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".rs") {
            names.insert(name);
        }
    }
    Ok(names)
}

/// Describes the first difference between two texts: line number and both lines.
fn first_difference(committed: &str, fresh: &str) -> String {
    let mut committed_lines = committed.lines();
    let mut fresh_lines = fresh.lines();
    let mut line = 1;
    loop {
        match (committed_lines.next(), fresh_lines.next()) {
            (Some(a), Some(b)) if a == b => line += 1,
            (None, None) => return "texts differ only in line endings or a trailing newline".to_owned(),
            (a, b) => {
                return format!(
                    "first difference at line {line}:\n    committed: {}\n    generated: {}",
                    a.unwrap_or("<end of file>"),
                    b.unwrap_or("<end of file>")
                );
            }
        }
    }
}

#[test]
fn generated_code_matches_proto_files() -> Result<(), Box<dyn Error>> {
    let tmp = tempfile::tempdir()?;
    generate(tmp.path())?;
    let gen_dir = crate_dir().join("src").join("gen");
    let fresh = rs_files(tmp.path())?;
    assert!(!fresh.is_empty(), "the generator wrote no files");

    if std::env::var_os("LANYARD_REGENERATE").is_some_and(|v| v == "1") {
        fs::create_dir_all(&gen_dir)?;
        for stale in rs_files(&gen_dir)?.difference(&fresh) {
            fs::remove_file(gen_dir.join(stale))?;
        }
        for name in &fresh {
            fs::copy(tmp.path().join(name), gen_dir.join(name))?;
        }
        eprintln!("regenerated {} file(s) in {}", fresh.len(), gen_dir.display());
        return Ok(());
    }

    let hint = "regenerate with `LANYARD_REGENERATE=1 cargo test -p lanyard-api --test codegen`";
    let committed = rs_files(&gen_dir)?;
    let mut problems = Vec::new();
    for name in fresh.difference(&committed) {
        problems.push(format!(
            "{}: missing (the generator produces it)",
            gen_dir.join(name).display()
        ));
    }
    for name in committed.difference(&fresh) {
        problems.push(format!(
            "{}: stale (the generator no longer produces it)",
            gen_dir.join(name).display()
        ));
    }
    for name in fresh.intersection(&committed) {
        let path = gen_dir.join(name);
        let committed_text = fs::read_to_string(&path)?;
        let fresh_text = fs::read_to_string(tmp.path().join(name))?;
        if committed_text != fresh_text {
            problems.push(format!(
                "{}: {}",
                path.display(),
                first_difference(&committed_text, &fresh_text)
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "src/gen/ is out of date with proto/ ({hint}):\n{}",
        problems.join("\n")
    );
    Ok(())
}
