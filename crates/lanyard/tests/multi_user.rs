//! The Workload API for every user: the agent runs as root in its documented default
//! layout (`lanyard agent` in a directory, no socket or data options), and workloads run
//! as a second uid (`nobody`, or `$LANYARD_TEST_SECOND_USER`), as on a real node.
//!
//! - A workload of another uid fetches its X.509-SVID (the socket path is traversable by
//!   everyone; the agent's data directory stays 0700).
//! - One uid holding more idle connections than its cap does not stop another uid's
//!   fetch; connections that never start HTTP/2 are closed after the handshake timeout.
//!
//! Needs root (to run a child as another uid). Skipped otherwise, unless
//! `LANYARD_REQUIRE_SECOND_UID=1` (set by `.ci/run`) makes that a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Process, Server, lanyard};

/// The per-uid cap the agent runs with in this test.
const PER_UID: usize = 8;

/// The second user's uid and gid: `$LANYARD_TEST_SECOND_USER` or `nobody`, from
/// `/etc/passwd`.
fn second_user() -> (u32, u32) {
    let name = std::env::var("LANYARD_TEST_SECOND_USER").unwrap_or_else(|_| "nobody".into());
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name.as_str()))
        .map(|f| (f[2].parse().unwrap(), f[3].parse().unwrap()))
        .unwrap_or_else(|| panic!("no user {name} in /etc/passwd"))
}

/// Whether this test can run (as root); panics when CI requires it.
fn can_run() -> bool {
    let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    if !root {
        assert!(
            std::env::var("LANYARD_REQUIRE_SECOND_UID").as_deref() != Ok("1"),
            "LANYARD_REQUIRE_SECOND_UID=1 but the tests do not run as root"
        );
        eprintln!("skipped: running a workload as a second uid needs root");
    }
    root
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `lanyard <args>` as `(uid, gid)`, using the copy of the binary every user can run.
fn as_user(bin: &Path, dir: &Path, (uid, gid): (u32, u32), args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .uid(uid)
        .gid(gid)
        .output()
        .unwrap()
}

/// A directory every user can enter, with a copy of the `lanyard` binary every user can
/// run (the build directory may be private).
fn shared_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = bin.join("lanyard");
    std::fs::copy(env!("CARGO_BIN_EXE_lanyard"), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, copy)
}

/// `lanyard agent` started as the server's banner says, in `dir` with the default
/// layout, its per-uid cap lowered to [`PER_UID`] and a 2 s handshake timeout.
fn start_agent(dir: &Path, server: &Server) -> Process {
    let (status, bundle) = server.get("/bundle");
    assert_eq!(status, 200, "GET /bundle: {bundle}");
    std::fs::write(dir.join("bundle.json"), bundle).unwrap();
    std::fs::write(
        dir.join("agent.toml"),
        format!("[limits.workload_api]\nmax_connections_per_peer = {PER_UID}\nhandshake_timeout = 2\n"),
    )
    .unwrap();
    let mut cmd = lanyard(dir);
    cmd.arg("agent")
        .args(["--config", "agent.toml"])
        .args(["--join-token", &server.join_token])
        .args(["--trust-bundle", "bundle.json"])
        .args(["--server", &server.agent_api])
        .args(["--trust-domain", &server.trust_domain])
        .args(["--health-address", "127.0.0.1:0"])
        .env("LANYARD_AGENT_LOG", "warn");
    Process::spawn("lanyard agent", cmd)
}

fn create_entry(dir: &Path, server: &Server, parent: &str, id: &str, uid: u32) {
    let out = lanyard(dir)
        .args(["entry", "create", "--spiffe-id", id, "--parent-id", parent])
        .args(["--selector", &format!("unix:uid:{uid}")])
        .args(["--socket", server.admin_socket.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "entry create: {}", text(&out.stderr));
}

/// Fetches the X.509-SVID as `user` until it works (the agent mints it within moments).
fn fetch_x509(bin: &Path, dir: &Path, user: (u32, u32), endpoint: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = as_user(bin, dir, user, &["workload", "fetch", "x509", "--endpoint", endpoint]);
        if out.status.success() || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A child of `user` that opens `count` connections to `socket`, starts HTTP/2 on each
/// (preface and SETTINGS, then silence, as an idle client would), and after a second
/// prints how many the agent kept open; it holds them until its stdin closes.
fn hold_connections(user: (u32, u32), socket: &Path, count: usize) -> (std::process::Child, usize) {
    let script = r#"
import socket, sys, time, select
path, count = sys.argv[1], int(sys.argv[2])
start = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
held = []
for _ in range(count):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    try:
        s.sendall(start)
    except OSError:
        pass
    held.append(s)
time.sleep(1.0)
open_ = 0
for s in held:
    s.setblocking(False)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                break
    except BlockingIOError:
        open_ += 1
    except OSError:
        pass
print(open_, flush=True)
sys.stdin.read()
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .arg(socket)
        .arg(count.to_string())
        .uid(user.0)
        .gid(user.1)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().parse().unwrap())
}

#[test]
fn workloads_of_other_users_reach_the_agent_and_cannot_starve_each_other() {
    if !can_run() {
        return;
    }
    let user = second_user();
    let (tmp, bin) = shared_dir();
    let dir = tmp.path();
    let server = Server::start(dir);
    let agent = start_agent(dir, &server);
    let agent_id = agent.expect_field("agent ID").to_owned();
    let endpoint = agent.expect_field("Workload API").to_owned();
    assert!(
        agent.expect_field("reachable by").starts_with("every local user"),
        "{:?}",
        agent.banner
    );
    // The default layout: the socket in a directory of its own, the data private.
    let socket = dir.join("lanyard-agent-socket/api.sock");
    assert_eq!(endpoint, format!("unix://{}", socket.display()));
    let data = std::fs::metadata(dir.join("lanyard-agent-data")).unwrap();
    assert_eq!(data.mode() & 0o777, 0o700);

    create_entry(dir, &server, &agent_id, "spiffe://example.org/other-user", user.0);
    create_entry(dir, &server, &agent_id, "spiffe://example.org/root", 0);
    let out = fetch_x509(&bin, dir, user, &endpoint);
    assert!(out.status.success(), "fetch as uid {}: {}", user.0, text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("spiffe://example.org/other-user"),
        "{}",
        text(&out.stdout)
    );
    let root = (0, 0);
    assert!(fetch_x509(&bin, dir, root, &endpoint).status.success());

    // The second uid holds idle connections: the agent keeps PER_UID of them and closes
    // the rest at once; root's workloads are still served, and so is /healthz.
    let (mut flood, held) = hold_connections(user, &socket, PER_UID + 12);
    assert_eq!(held, PER_UID, "per-uid cap");
    let out = as_user(&bin, dir, root, &["workload", "fetch", "x509", "--endpoint", &endpoint]);
    assert!(
        out.status.success(),
        "root's fetch during the flood: {}",
        text(&out.stderr)
    );
    let health = agent.expect_field("health");
    let health = health.trim_start_matches("http://").trim_end_matches("/readyz");
    assert_eq!(common::http_get(health, "/healthz").0, 200);
    // The flooding uid itself is over its cap until its connections close.
    let out = as_user(&bin, dir, user, &["workload", "fetch", "x509", "--endpoint", &endpoint]);
    assert!(!out.status.success(), "a uid over its cap was served");
    drop(flood.stdin.take());
    flood.wait().unwrap();
    assert!(fetch_x509(&bin, dir, user, &endpoint).status.success());

    // A connection that never starts HTTP/2 is closed after the handshake timeout (2 s).
    let mut silent = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    // The agent sends its own SETTINGS first (HTTP/2 servers speak first), then closes.
    let mut sent = Vec::new();
    let _ = silent.read_to_end(&mut sent);
    assert!(
        started.elapsed() >= Duration::from_millis(1500) && started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let _ = silent.write_all(b"x");

    agent.stop();
    server.stop();
}
