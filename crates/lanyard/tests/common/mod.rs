//! Shared by the CLI tests: `lanyard server` and `lanyard agent` as child processes in a
//! directory, each started as a user starts it and known by the banner it prints once it
//! serves (`Press Ctrl-C to stop.` ends it), plus a minimal HTTP/1.0 GET.
//!
//! A child is killed when its handle drops, so a failed assertion leaves no process
//! behind; [`Process::stop`] is the clean way out (SIGINT, as Ctrl-C).

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest wait for a banner, a response or a clean exit.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(60);

/// The last line of every banner.
const BANNER_END: &str = "Press Ctrl-C";

/// The directory of the `lanyard` binary under test (to put on `PATH`).
pub(crate) fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_lanyard")).parent().unwrap().to_path_buf()
}

/// Runs `script` with bash in `dir`, the binary under test first on `PATH` (a README or
/// banner command as a user types it).
pub(crate) fn sh(dir: &Path, script: &str) -> Output {
    let path = format!("{}:{}", bin_dir().display(), std::env::var("PATH").unwrap_or_default());
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("PATH", path)
        .output()
        .unwrap()
}

/// Output bytes as text.
pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `lanyard <args>` in `dir`, without any `LANYARD_*` variable of the test's environment.
pub(crate) fn lanyard(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lanyard"));
    cmd.current_dir(dir);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("LANYARD_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A running child and the banner it printed.
pub(crate) struct Process {
    pub(crate) child: Child,
    pub(crate) banner: Vec<String>,
    name: &'static str,
}

impl Process {
    /// Spawns `cmd` (stdout piped, stderr inherited) and waits up to [`TIMEOUT`] for its
    /// banner. Its stdout is read on a thread, which keeps draining it afterwards, so a
    /// silent child cannot hang the test and a chatty one never blocks on a full pipe.
    pub(crate) fn spawn(name: &'static str, mut cmd: Command) -> Process {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                // After the banner nobody listens; keep reading anyway.
                let _ = tx.send(line);
            }
        });
        let mut process = Process {
            child,
            banner: Vec::new(),
            name,
        };
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let done = line.starts_with(BANNER_END);
                    process.banner.push(line);
                    if done {
                        return process;
                    }
                }
                Err(e) => panic!("no banner from {name} ({e}): {:?}", process.banner),
            }
        }
    }

    /// The value of the banner line `<label>   <value>` (the first with that label).
    pub(crate) fn field(&self, label: &str) -> Option<&str> {
        self.banner
            .iter()
            .find_map(|l| l.trim().strip_prefix(label).filter(|v| v.starts_with(' ')))
            .map(str::trim)
    }

    /// Like [`Process::field`], but panics with the banner when the line is missing.
    pub(crate) fn expect_field(&self, label: &str) -> &str {
        self.field(label)
            .unwrap_or_else(|| panic!("no `{label}` line in the {} banner: {:#?}", self.name, self.banner))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGINT (Ctrl-C), then waits up to [`TIMEOUT`] for the exit.
    pub(crate) fn stop(mut self) -> ExitStatus {
        let pid = self.pid().to_string();
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "{} did not stop on SIGINT", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A running `lanyard server`.
pub(crate) struct Server {
    pub(crate) process: Process,
    /// The public endpoint, `host:port`.
    pub(crate) public: String,
    /// The agent API, `host:port`.
    pub(crate) agent_api: String,
    /// The admin socket, absolute.
    pub(crate) admin_socket: PathBuf,
    pub(crate) trust_domain: String,
    /// The one-time join token of the `lanyard agent --join-token ...` line.
    pub(crate) join_token: String,
}

impl Server {
    /// Starts `lanyard server` in `dir` (its data in `dir/lanyard-data`, the public and
    /// agent ports picked by the OS, logs at `warn`).
    pub(crate) fn start(dir: &Path) -> Server {
        Server::start_with(dir, "127.0.0.1:0", None)
    }

    /// [`Server::start`] on `public_address`, with the configuration file `config` if
    /// given (environment variables still override it).
    pub(crate) fn start_with(dir: &Path, public_address: &str, config: Option<&Path>) -> Server {
        let data = dir.join("lanyard-data");
        let mut cmd = lanyard(dir);
        cmd.arg("server")
            .env("LANYARD_DATA_DIR", &data)
            .env("LANYARD_PUBLIC_ADDRESS", public_address)
            .env("LANYARD_AGENT_ADDRESS", "127.0.0.1:0")
            .env("LANYARD_OAUTH_MTLS_ADDRESS", "127.0.0.1:0")
            .env("LANYARD_LOG", "warn");
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        let process = Process::spawn("lanyard server", cmd);
        let public = process.expect_field("public endpoint");
        let public = public.strip_prefix("http://").unwrap_or(public).to_owned();
        let agent_api = process
            .expect_field("agent API")
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        let socket = Path::new(process.expect_field("admin socket"));
        let admin_socket = if socket.is_absolute() {
            socket.to_path_buf()
        } else {
            dir.join(socket)
        };
        let trust_domain = process.expect_field("trust domain").to_owned();
        let join_token = process
            .banner
            .iter()
            .find_map(|l| l.split_once("--join-token "))
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or_default()
            .to_owned();
        Server {
            process,
            public,
            agent_api,
            admin_socket,
            trust_domain,
            join_token,
        }
    }

    /// `GET <path>` on the public endpoint.
    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        http_get(&self.public, path)
    }

    pub(crate) fn stop(self) -> ExitStatus {
        self.process.stop()
    }
}

/// A running `lanyard agent`.
pub(crate) struct Agent {
    pub(crate) process: Process,
    /// The agent's SPIFFE ID (the parent ID of its entries).
    pub(crate) id: String,
    /// The Workload API socket, as `SPIFFE_ENDPOINT_SOCKET` wants it (`unix:///...`).
    pub(crate) endpoint: String,
    /// The health endpoint, `host:port`.
    pub(crate) health: String,
}

impl Agent {
    /// Starts `lanyard agent` in `dir` the way the server's banner says (its join token,
    /// the trust bundle from `/bundle`), with its socket at `dir/agent/api.sock`, its data
    /// in `dir/agent-data` and its health endpoint on a port picked by the OS.
    pub(crate) fn start(dir: &Path, server: &Server) -> Agent {
        let (status, bundle) = server.get("/bundle");
        assert_eq!(status, 200, "GET /bundle: {bundle}");
        std::fs::write(dir.join("bundle.json"), bundle).unwrap();
        let mut cmd = lanyard(dir);
        cmd.arg("agent")
            .args(["--join-token", &server.join_token])
            .args(["--trust-bundle", "bundle.json"])
            .args(["--server", &server.agent_api])
            .args(["--trust-domain", &server.trust_domain])
            .arg("--socket")
            .arg(dir.join("agent/api.sock"))
            .arg("--data-dir")
            .arg(dir.join("agent-data"))
            .args(["--health-address", "127.0.0.1:0"])
            .env("LANYARD_AGENT_LOG", "warn");
        let process = Process::spawn("lanyard agent", cmd);
        let id = process.expect_field("agent ID").to_owned();
        let endpoint = process.expect_field("Workload API").to_owned();
        let health = process.expect_field("health");
        let health = health
            .strip_prefix("http://")
            .and_then(|h| h.strip_suffix("/readyz"))
            .unwrap_or(health)
            .to_owned();
        Agent {
            process,
            id,
            endpoint,
            health,
        }
    }

    /// The agent's `/status` document.
    pub(crate) fn status(&self) -> serde_json::Value {
        let (code, body) = http_get(&self.health, "/status");
        assert_eq!(code, 200, "GET /status: {body}");
        serde_json::from_str(&body).unwrap()
    }

    pub(crate) fn stop(self) -> ExitStatus {
        self.process.stop()
    }
}

/// `GET <path>` over HTTP/1.0 on `address` (`host:port`): the status and the body.
pub(crate) fn http_get(address: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap_or_else(|e| panic!("connecting to {address}: {e}"));
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("malformed HTTP response from {address}: {response:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("malformed HTTP status line from {address}: {head:?}"));
    (status, body.to_owned())
}
