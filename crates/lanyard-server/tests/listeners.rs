//! The server's listeners under abuse (issue: idle and half-sent requests held forever;
//! about 1,100 idle connections stopped `/healthz` and the admin socket): a real server
//! with small `[limits.*]`, attacked over loopback from `127.0.0.2` while a legitimate
//! client uses `127.0.0.1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use lanyard_net::ListenerLimits;
use lanyard_server::ServerConfig;
use lanyard_server::config::LimitsConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UnixStream};

/// The HTTP/2 client preface and an empty SETTINGS frame: what a real (idle) HTTP/2
/// client sends first, so the connection survives the handshake deadline.
const H2_START: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

fn limits(max: usize, per_peer: usize) -> ListenerLimits {
    ListenerLimits {
        max_connections: max,
        max_connections_per_peer: per_peer,
        handshake_timeout: 1,
        header_read_timeout: 1,
        body_read_timeout: 1,
        keepalive_interval: 30,
    }
}

async fn start(dir: &Path) -> lanyard_server::RunningServer {
    let config = ServerConfig {
        data_dir: dir.join("data"),
        public_address: "127.0.0.1:0".into(),
        agent_address: "127.0.0.1:0".into(),
        log_level: "warn".into(),
        limits: LimitsConfig {
            public: limits(6, 3),
            agent_api: limits(4, 2),
            bundle_endpoint: limits(4, 2),
            admin: limits(4, 0),
        },
        ..ServerConfig::default()
    };
    lanyard_server::start(config).await.unwrap()
}

/// A TCP connection to `to` from the loopback address `from`.
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether the server closed `stream` within `within` (EOF or reset), reading and
/// discarding whatever it sent first.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// `GET <path>` over HTTP/1.0 from `from`; the status code, or `None` if refused.
async fn get(from: &str, to: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = connect_from(from, to).await;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace().nth(1)?.parse().ok()
}

/// `GET /openapi.json` on the admin socket: the status code.
async fn admin_get(socket: &Path) -> u16 {
    let mut stream = UnixStream::connect(socket).await.unwrap();
    stream.write_all(b"GET /openapi.json HTTP/1.0\r\n\r\n").await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&response)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn silent_trickling_and_idle_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let public = server.public_addr;

    // Sends nothing.
    let started = Instant::now();
    let mut silent = connect_from("127.0.0.2", public).await;
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );

    // Starts a request and trickles the rest of its header.
    let mut trickle = connect_from("127.0.0.2", public).await;
    trickle
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(5) {
        if trickle.write_all(b"X-A: b\r\n").await.is_err() {
            closed = true;
            break;
        }
        if closed_within(&mut trickle, Duration::from_millis(300)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "a trickled header kept the connection open");

    // A kept-alive connection idle after its response.
    let mut idle = connect_from("127.0.0.2", public).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);

    // Sends a whole request head, then stalls its body: answered 400 (invalid_request)
    // once the body-read timeout passes, and the connection is closed.
    let mut stalled = connect_from("127.0.0.2", public).await;
    stalled
        .write_all(
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 1000\r\n\r\ngrant_type=",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stalled.read_to_end(&mut answer))
        .await
        .expect("the stalled body kept the connection open")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("invalid_request"), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );

    // RFC 9112 §3.2: an HTTP/1.1 request without a Host, or with two, is a bad request.
    for head in [
        "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
    ] {
        let mut stream = connect_from("127.0.0.1", public).await;
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{head:?}: {answer}");
    }

    // The agent API (TLS) closes a client that never starts its handshake.
    let mut silent_agent = connect_from("127.0.0.2", server.agent_addr).await;
    assert!(closed_within(&mut silent_agent, Duration::from_secs(5)).await);

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_flood_leaves_other_clients_and_the_admin_socket_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let public = server.public_addr;

    // One address holds idle HTTP/2 connections: three stay (the per-peer cap), the
    // others are closed at once.
    let mut flood = Vec::new();
    for _ in 0..6 {
        let mut stream = connect_from("127.0.0.2", public).await;
        stream.write_all(H2_START).await.unwrap();
        flood.push(stream);
    }
    let mut held = 0;
    for stream in &mut flood {
        if !closed_within(stream, Duration::from_millis(300)).await {
            held += 1;
        }
    }
    assert_eq!(held, 3, "per-peer cap");
    // Another client is served, and so is the admin socket.
    assert_eq!(get("127.0.0.1", public, "/healthz").await, Some(200));
    assert_eq!(admin_get(&server.admin_socket).await, 200);

    // A second address fills the listener's cap: new clients are refused, the admin
    // socket (a listener of its own) is not.
    for _ in 0..3 {
        let mut stream = connect_from("127.0.0.3", public).await;
        stream.write_all(H2_START).await.unwrap();
        flood.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get("127.0.0.1", public, "/healthz").await, None, "listener cap");
    assert_eq!(admin_get(&server.admin_socket).await, 200);

    // The slots come back when the flood ends.
    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(5);
    while get("127.0.0.1", public, "/healthz").await != Some(200) {
        assert!(Instant::now() < deadline, "slots were not released");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await.unwrap();
}

#[test]
fn the_open_file_limit_is_raised_at_start() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let server = start(dir.path()).await;
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
        let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[3], fields[4], "soft limit raised to the hard limit: {line}");
        server.shutdown().await.unwrap();
    });
}
