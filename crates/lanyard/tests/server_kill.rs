//! Nothing committed is lost on `kill -9`: `lanyard server` runs on a fresh directory,
//! several threads create entries through the admin socket as fast as they can, the
//! server is killed with SIGKILL in the middle of the burst, and after a restart on the
//! same directory every write the server acknowledged (a `201 Created` whose body was read
//! in full) is there, the stale admin socket has been replaced, and the bundle still holds
//! the same authorities.
//!
//! The client is a minimal HTTP/1.1 client over `std::os::unix::net::UnixStream`
//! (keep-alive, one connection per writer), so nothing is buffered or retried behind the
//! test's back: an entry counts as acknowledged only once its response has been parsed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::Server;
use serde_json::{Value, json};

/// Writer threads (each with its own admin connection).
const WRITERS: usize = 4;
/// How long the burst runs before the kill (at least; it also waits for a few acks).
const BURST: Duration = Duration::from_secs(1);
/// Acknowledged writes wanted before the kill, so the test never passes vacuously.
const MIN_ACKED: usize = 20;
/// Longest wait for a server to print its banner, or for a response.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The parent of every entry.
const PARENT: &str = "spiffe://example.org/agent/burst";

/// `GET /readyz` on the server's public address: true on `200`.
fn ready(server: &Server) -> bool {
    let Ok(mut s) = TcpStream::connect(&server.public) else {
        return false;
    };
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let req = format!(
        "GET /readyz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.public
    );
    let mut resp = String::new();
    s.write_all(req.as_bytes()).is_ok() && s.read_to_string(&mut resp).is_ok() && resp.starts_with("HTTP/1.1 200")
}

/// One keep-alive HTTP/1.1 connection to the admin socket.
struct Admin {
    stream: BufReader<UnixStream>,
}

impl Admin {
    fn connect(socket: &Path) -> io::Result<Admin> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        Ok(Admin {
            stream: BufReader::new(stream),
        })
    }

    /// Sends a request and reads the whole response: its status and body. Any I/O
    /// problem, a malformed response or a short body is an error.
    fn call(&mut self, method: &str, path: &str, body: Option<&str>) -> io::Result<(u16, Vec<u8>)> {
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: lanyard-admin\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.get_mut().write_all(req.as_bytes())?;
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let mut line = String::new();
        if self.stream.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let status: u16 = line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
        let mut length = None;
        let mut chunked = false;
        loop {
            line.clear();
            if self.stream.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header
                .split_once(':')
                .ok_or_else(|| bad(format!("bad header {header:?}")))?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().map_err(|e| bad(e.to_string()))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.stream.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim_end(), 16).map_err(|e| bad(e.to_string()))?;
                let mut chunk = vec![0; size + 2];
                self.stream.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            body.resize(length.ok_or_else(|| bad("no Content-Length".into()))?, 0);
            self.stream.read_exact(&mut body)?;
        }
        Ok((status, body))
    }

    /// A `200` JSON response to `GET path`.
    fn get_json(&mut self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, None).unwrap();
        assert_eq!(status, 200, "GET {path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }
}

/// What one writer saw.
#[derive(Default)]
struct Burst {
    /// Acknowledged entries: ID → SPIFFE ID.
    acked: Vec<(String, String)>,
    /// SPIFFE IDs of every request sent (acknowledged or not).
    attempted: Vec<String>,
    /// Failures before the kill (there must be none).
    failures: Vec<String>,
}

/// Creates entries until the connection breaks, counting acknowledgements in `acks`; a
/// failure counts as expected only once `killed` is set (it is set just before the
/// SIGKILL).
fn write_burst(socket: &Path, writer: usize, killed: &AtomicBool, acks: &AtomicUsize) -> Burst {
    let mut out = Burst::default();
    let mut conn = match Admin::connect(socket) {
        Ok(c) => c,
        Err(e) => {
            out.failures.push(format!("writer {writer}: connect: {e}"));
            return out;
        }
    };
    for i in 0.. {
        let spiffe_id = format!("spiffe://example.org/burst/w{writer}/e{i}");
        let body = json!({
            "spiffe_id": spiffe_id,
            "parent_id": PARENT,
            "selectors": [{"type": "unix", "value": format!("uid:{i}")}],
        })
        .to_string();
        out.attempted.push(spiffe_id.clone());
        let result = conn.call("POST", "/v1/entries", Some(&body));
        let failure = match result {
            Ok((201, body)) => match serde_json::from_slice::<Value>(&body) {
                Ok(entry) if entry["spiffe_id"] == spiffe_id.as_str() && entry["id"].is_string() => {
                    out.acked.push((entry["id"].as_str().unwrap().to_owned(), spiffe_id));
                    acks.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                _ => format!("bad 201 body {}", String::from_utf8_lossy(&body)),
            },
            Ok((status, body)) => format!("HTTP {status}: {}", String::from_utf8_lossy(&body)),
            Err(e) => e.to_string(),
        };
        if !killed.load(Ordering::SeqCst) {
            out.failures.push(format!("writer {writer}, entry {i}: {failure}"));
        }
        break;
    }
    out
}

/// `lanyard entry show <id>` through the CLI; returns the entry.
fn cli_show(socket: &Path, id: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_lanyard"))
        .args(["entry", "show", id, "--socket"])
        .arg(socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lanyard entry show {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let socket = server.admin_socket.clone();
    let bundle_before = Admin::connect(&socket).unwrap().get_json("/v1/bundle");
    assert!(!bundle_before["keys"].as_array().unwrap().is_empty(), "{bundle_before}");

    let killed = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let socket = socket.clone();
            let killed = Arc::clone(&killed);
            let acks = Arc::clone(&acks);
            let done = done_tx.clone();
            std::thread::spawn(move || {
                let burst = write_burst(&socket, w, &killed, &acks);
                let _ = done.send(());
                burst
            })
        })
        .collect();
    drop(done_tx);

    // Let the burst run for BURST (and until a few writes are in), then kill -9. A writer
    // that stops early has failed; stop waiting then and report it below.
    let burst_start = Instant::now();
    let deadline = burst_start + TIMEOUT;
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let enough = acks.load(Ordering::SeqCst) >= MIN_ACKED && burst_start.elapsed() >= BURST;
        if enough || done_rx.try_recv().is_ok() || Instant::now() > deadline {
            break;
        }
    }
    killed.store(true, Ordering::SeqCst);
    let pid = server.process.pid();
    server.process.child.kill().unwrap(); // SIGKILL
    let status = server.process.child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "pid {pid}: {status:?}"
    );
    let burst_time = burst_start.elapsed();

    let bursts: Vec<Burst> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let failures: Vec<&String> = bursts.iter().flat_map(|b| &b.failures).collect();
    assert!(failures.is_empty(), "writes failed before the kill: {failures:?}");
    let acked: HashMap<&str, &str> = bursts
        .iter()
        .flat_map(|b| &b.acked)
        .map(|(id, spiffe_id)| (id.as_str(), spiffe_id.as_str()))
        .collect();
    let attempted: HashSet<&str> = bursts.iter().flat_map(|b| &b.attempted).map(String::as_str).collect();
    assert!(
        acked.len() >= MIN_ACKED,
        "only {} writes acknowledged before the kill",
        acked.len()
    );
    assert!(socket.exists(), "SIGKILL leaves the admin socket behind");

    // Restart on the same directory: the stale socket is replaced and it becomes ready.
    let server = Server::start(dir.path());
    assert!(ready(&server), "restarted server is not ready");
    let mut admin = Admin::connect(&socket).unwrap();
    let bundle_after = admin.get_json("/v1/bundle");
    assert_eq!(
        bundle_before["keys"], bundle_after["keys"],
        "the restart must keep the same CA and signing keys"
    );

    // Every acknowledged write is there, unchanged; nothing unknown appeared.
    let listed = admin.get_json(&format!("/v1/entries?parent_id={PARENT}"));
    let stored: HashMap<&str, &str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e["spiffe_id"].as_str().unwrap()))
        .collect();
    let lost: Vec<_> = acked
        .iter()
        .filter(|(id, spiffe_id)| stored.get(*id) != Some(spiffe_id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {lost:?}",
        lost.len(),
        acked.len()
    );
    assert!(stored.values().all(|s| attempted.contains(s)), "entries nobody created");
    // The newest acknowledged write of each writer, the likeliest to be lost, through
    // the CLI as an operator would check it.
    for burst in &bursts {
        if let Some((id, spiffe_id)) = burst.acked.last() {
            let entry = cli_show(&socket, id);
            assert_eq!(entry["spiffe_id"], spiffe_id.as_str());
        }
    }
    // The database still takes writes.
    let (status, body) = admin
        .call(
            "POST",
            "/v1/entries",
            Some(
                &json!({"spiffe_id": "spiffe://example.org/after", "parent_id": PARENT,
                        "selectors": [{"type": "unix", "value": "uid:1"}]})
                .to_string(),
            ),
        )
        .unwrap();
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    drop(admin);

    let status = server.stop();
    assert!(status.success(), "restarted server exit: {status:?}");
    println!(
        "kill -9 after {:.2} s of writes from {WRITERS} writers: {} acknowledged ({:.0}/s), {} sent, \
         {} stored after restart ({} committed but unacknowledged), 0 lost; test took {:.1} s",
        burst_time.as_secs_f64(),
        acked.len(),
        acked.len() as f64 / burst_time.as_secs_f64(),
        attempted.len(),
        stored.len(),
        stored.len() - acked.len(),
        started.elapsed().as_secs_f64(),
    );
}
