//! The SPIFFE Workload API of `lanyard agent` against two independent clients: py-spiffe
//! (PyPI `spiffe`, on gRPC C-core) and the Rust `spiffe` crate (on tonic), each driven by
//! a small program in `tests/interop/` that prints one JSON report line (see its README).
//!
//! A real `lanyard server` and `lanyard agent` run in a temporary directory; an entry
//! gives this test's uid the identity [`WORKLOAD_ID`] with 20 s X.509-SVIDs (so the
//! agent rotates them after 10–12 s), another gives [`FORBIDDEN_ID`] to a different uid.
//! Both drivers then, through `SPIFFE_ENDPOINT_SOCKET`: fetch the X.509-SVID and verify
//! its chain against the fetched X.509 bundle and its key pair, fetch the X.509 and JWT
//! bundles, fetch a JWT-SVID and verify it with the library's own verifier against the
//! fetched JWT bundle and through ValidateJWTSVID (and see both refuse another
//! audience), get PermissionDenied when asking for [`FORBIDDEN_ID`], and watch X.509
//! updates until the serial number changes.
//!
//! py-spiffe runs as shipped: its gRPC C-core sends the percent-encoded socket path as
//! HTTP/2 `:authority`, which the agent accepts (see `lanyard_agent::endpoints::h2_authority`); the
//! driver's `stock_client` check is a fresh client's first call.
//!
//! On the same server and agent, [`oauth`] has the workload authenticate to the server's
//! OAuth authorization server with those SVIDs: py-spiffe's JWT-SVID as a `jwt-spiffe`
//! client assertion, and `curl` with the X.509-SVID over mutual TLS.
//!
//! Gated like the other interop tests: with the tools missing (the venv with py-spiffe and
//! `requests`, and `curl`; see `scripts/install-interop.sh`) the test prints a `skipped:`
//! line and passes, unless `LANYARD_INTEROP=1`, which makes that a failure. The Rust
//! driver is built here (`cargo build --release --locked`, into
//! `target/interop-rust-spiffe`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "workload_interop/oauth.rs"]
mod oauth;

use std::io::{Read as _, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Agent, Server, lanyard};
use serde_json::Value;

/// The identity of this test's uid.
const WORKLOAD_ID: &str = "spiffe://example.org/interop/workload";
/// An identity for another uid: asking for it must be refused.
const FORBIDDEN_ID: &str = "spiffe://example.org/interop/forbidden";
/// The audience of the drivers' JWT-SVIDs, and of the OAuth clients' access tokens.
const AUDIENCE: &str = "spiffe://example.org/ledger";
/// X.509-SVID lifetime of [`WORKLOAD_ID`], in seconds.
const X509_SVID_TTL: &str = "20";
/// How long a driver waits for a rotation, in seconds.
const ROTATION_TIMEOUT: &str = "40";
/// How long a driver may run in all.
const DRIVER_TIMEOUT: Duration = Duration::from_secs(120);
/// How long building the Rust driver may take (a first build compiles aws-lc).
const BUILD_TIMEOUT: Duration = Duration::from_secs(1200);

const VENV_PYTHON: &str = "tests/interop/.venv/bin/python";
const PY_DRIVER: &str = "tests/interop/python/workload_api_driver.py";
const RUST_DRIVER_MANIFEST: &str = "tests/interop/rust-spiffe/Cargo.toml";
const INSTALL_HINT: &str = "run scripts/install-interop.sh (tests/interop/README.md)";

/// The checks both drivers report; all must pass (py-spiffe also reports `stock_client`).
const CHECKS: [&str; 8] = [
    "x509_svid",
    "x509_bundles",
    "jwt_bundles",
    "jwt_svid",
    "jwt_svid_two_audiences",
    "jwt_validate_api",
    "permission_denied",
    "rotation",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether the drivers can run: yes when py-spiffe and `requests` are installed and `curl`
/// runs; otherwise prints a `skipped:` line and says no, or panics when `LANYARD_INTEROP=1`
/// demands the run.
fn interop_enabled(test: &str) -> bool {
    let python = workspace_root().join(VENV_PYTHON);
    let succeeds = |cmd: &mut Command| cmd.output().is_ok_and(|o| o.status.success());
    let mut missing = Vec::new();
    if !succeeds(Command::new(&python).args(["-c", "import spiffe, cryptography, requests"])) {
        missing.push(format!(
            "{VENV_PYTHON} with py-spiffe and requests (`import spiffe, requests`)"
        ));
    }
    if !succeeds(Command::new("curl").arg("--version")) {
        missing.push("curl".to_owned());
    }
    if missing.is_empty() {
        return true;
    }
    let missing = missing.join(", ");
    let required = std::env::var("LANYARD_INTEROP").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "LANYARD_INTEROP=1 but the Workload API interop drivers are not installed (missing {missing}): {INSTALL_HINT}"
    );
    let _ = writeln!(
        std::io::stderr().lock(),
        "workload_interop::{test} skipped: missing {missing}; {INSTALL_HINT}, or set LANYARD_INTEROP=1 to make this a failure"
    );
    false
}

/// A server, an agent, and the two entries, with their SVIDs minted.
struct Setup {
    dir: tempfile::TempDir,
    server: Server,
    agent: Agent,
}

impl Setup {
    fn start() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        // WIT-SVID client authentication is off by default (its draft is moving); the OAuth
        // checks exercise it, and tell refusals apart by their reasons, which the server
        // names only with client_error_details.
        let config = dir.path().join("server.toml");
        std::fs::write(
            &config,
            "[oauth]\nwit_client_auth = true\nclient_error_details = true\n",
        )
        .unwrap();
        let server = Server::start_with(dir.path(), "127.0.0.1:0", Some(&config));
        let agent = Agent::start(dir.path(), &server);
        // The tempdir was created by this process, so it carries our uid.
        let uid = std::fs::metadata(dir.path()).unwrap().uid();
        let entries = [
            (WORKLOAD_ID, uid, X509_SVID_TTL),
            (FORBIDDEN_ID, uid.wrapping_add(4242), "0"),
        ];
        for (id, uid, ttl) in entries {
            let out = lanyard(dir.path())
                .args(["entry", "create", "--spiffe-id", id, "--parent-id", &agent.id])
                .args(["--selector", &format!("unix:uid:{uid}"), "--x509-svid-ttl", ttl])
                .arg("--socket")
                .arg(&server.admin_socket)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "entry create {id}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The entries reach the agent through its sync; wait for their SVIDs.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = agent.status();
            if status["x509_svids"].as_u64() >= Some(2) {
                break;
            }
            assert!(Instant::now() < deadline, "the agent has no SVIDs yet: {status}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Setup { dir, server, agent }
    }

    fn stop(self) {
        let agent = self.agent.stop();
        let server = self.server.stop();
        assert!(agent.success(), "agent exit: {agent:?}");
        assert!(server.success(), "server exit: {server:?}");
        drop(self.dir);
    }
}

/// Runs `cmd` with stdout and stderr captured, killing it after `timeout`: (exit success,
/// stdout, stderr).
fn run(mut cmd: Command, timeout: Duration) -> (bool, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, mut err) = (out.join().unwrap(), err.join().unwrap());
    if status.is_none() {
        err.push_str(&format!("\n(killed after {timeout:?})"));
    }
    (status.is_some_and(|s| s.success()), out, err)
}

/// The driver arguments both drivers share.
fn driver_args(cmd: &mut Command, endpoint: &str) {
    cmd.current_dir(workspace_root())
        .env("SPIFFE_ENDPOINT_SOCKET", endpoint)
        .args(["--spiffe-id", WORKLOAD_ID, "--audience", AUDIENCE])
        .args(["--forbidden-id", FORBIDDEN_ID, "--rotation-timeout", ROTATION_TIMEOUT]);
}

/// Runs py-spiffe's driver.
fn run_py_spiffe(endpoint: &str) -> Result<Value, String> {
    let root = workspace_root();
    let mut cmd = Command::new(root.join(VENV_PYTHON));
    cmd.arg(PY_DRIVER);
    driver_args(&mut cmd, endpoint);
    report("py-spiffe", run(cmd, DRIVER_TIMEOUT))
}

/// Builds the Rust driver (`cargo build --release --locked`) and returns its path.
fn build_rust_driver() -> Result<PathBuf, String> {
    let root = workspace_root();
    let target = root.join("target/interop-rust-spiffe");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(&root)
        .args([
            "build",
            "--release",
            "--locked",
            "--manifest-path",
            RUST_DRIVER_MANIFEST,
        ])
        .env("CARGO_TARGET_DIR", &target);
    let started = Instant::now();
    let (ok, _, err) = run(cmd, BUILD_TIMEOUT);
    if !ok {
        return Err(format!("building {RUST_DRIVER_MANIFEST} failed:\n{err}"));
    }
    let _ = writeln!(
        std::io::stderr().lock(),
        "rust-spiffe-driver built in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(target.join("release/rust-spiffe-driver"))
}

fn run_rust_spiffe(driver: &Path, endpoint: &str) -> Result<Value, String> {
    let mut cmd = Command::new(driver);
    driver_args(&mut cmd, endpoint);
    report("rust spiffe", run(cmd, DRIVER_TIMEOUT))
}

/// The JSON report a driver printed (its last stdout line).
fn report(name: &str, (ok, out, err): (bool, String, String)) -> Result<Value, String> {
    let line = out.lines().last().unwrap_or_default();
    match serde_json::from_str::<Value>(line) {
        Ok(v) if ok => Ok(v),
        _ => Err(format!(
            "{name} driver printed no report (exit ok: {ok}):\nstdout: {out}\nstderr: {err}"
        )),
    }
}

/// Every way `report` falls short of what both libraries must accept.
fn problems(report: &Value) -> Vec<String> {
    let checks = &report["checks"];
    let failed: Vec<String> = CHECKS
        .iter()
        .chain(checks.get("stock_client").map(|_| &"stock_client"))
        .filter(|name| checks[**name]["ok"] != true)
        .map(|name| format!("{name} failed: {}", checks[*name]))
        .collect();
    if !failed.is_empty() {
        return failed;
    }
    let mut problems = Vec::new();
    let mut expect = |cond: bool, what: &str| {
        if !cond {
            problems.push(what.to_owned());
        }
    };
    let x509 = &checks["x509_svid"];
    expect(x509["spiffe_id"] == WORKLOAD_ID, "x509_svid: wrong SPIFFE ID");
    expect(x509["chain_verified"] == true, "x509_svid: chain not verified");
    expect(x509["key_matches"] == true, "x509_svid: key does not match");
    let domains = |check: &str| -> Vec<String> {
        checks[check]["trust_domains"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|td| td.trim_start_matches("spiffe://").to_owned())
            .collect()
    };
    expect(
        domains("x509_bundles") == ["example.org"],
        "x509_bundles: not exactly example.org",
    );
    expect(
        domains("jwt_bundles") == ["example.org"],
        "jwt_bundles: not exactly example.org",
    );
    let kids = checks["jwt_bundles"]["key_ids"].as_array().cloned().unwrap_or_default();
    expect(!kids.is_empty(), "jwt_bundles: no key IDs");
    let two = &checks["jwt_svid_two_audiences"];
    expect(
        two["audience"] == serde_json::json!(["second-audience", AUDIENCE]),
        "jwt_svid_two_audiences: not valid for both audiences",
    );
    let jwt = &checks["jwt_svid"];
    expect(jwt["spiffe_id"] == WORKLOAD_ID, "jwt_svid: wrong SPIFFE ID");
    expect(jwt["validated_locally"] == true, "jwt_svid: not validated locally");
    let kid = jwt["key_id"].as_str().or(jwt["header"]["kid"].as_str());
    expect(
        kid.is_some_and(|k| kids.iter().any(|b| b == k)),
        "jwt_svid: its kid is not in the JWT bundle",
    );
    expect(
        checks["jwt_validate_api"]["spiffe_id"] == WORKLOAD_ID,
        "jwt_validate_api: wrong SPIFFE ID",
    );
    let rotation = &checks["rotation"];
    expect(
        rotation["old_serial"].is_string() && rotation["old_serial"] != rotation["new_serial"],
        "rotation: the serial number did not change",
    );
    expect(rotation["new_svid_verified"] == true, "rotation: new SVID not verified");
    problems
}

fn print_report(name: &str, report: &Value) {
    let _ = writeln!(
        std::io::stderr().lock(),
        "{name} report:\n{}",
        serde_json::to_string_pretty(report).unwrap()
    );
}

#[test]
fn workload_api_interop_py_spiffe_and_rust_spiffe() {
    if !interop_enabled("workload_api_interop_py_spiffe_and_rust_spiffe") {
        return;
    }
    let started = Instant::now();
    // The Rust driver builds while the server and agent start and py-spiffe runs.
    let build = std::thread::spawn(build_rust_driver);
    let setup = Setup::start();
    let endpoint = setup.agent.endpoint.clone();
    let py = {
        let endpoint = endpoint.clone();
        std::thread::spawn(move || run_py_spiffe(&endpoint))
    };
    let oauth = {
        let target = oauth::Target::of(&setup);
        std::thread::spawn(move || oauth::check(&target))
    };
    let rust = build
        .join()
        .unwrap()
        .and_then(|driver| run_rust_spiffe(&driver, &endpoint));
    let py = py.join().unwrap();

    let mut failures = oauth.join().unwrap();
    for (name, result) in [("py-spiffe", &py), ("rust spiffe", &rust)] {
        match result {
            Ok(report) => {
                print_report(name, report);
                failures.extend(problems(report).into_iter().map(|p| format!("{name}: {p}")));
            }
            Err(e) => failures.push(e.clone()),
        }
    }
    setup.stop();
    let _ = writeln!(
        std::io::stderr().lock(),
        "workload_interop took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "Workload API interop failures:\n{}",
        failures.join("\n")
    );
}
