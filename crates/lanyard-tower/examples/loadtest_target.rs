//! The target of `scripts/loadtest.sh`: an orders-like service on 127.0.0.1 with the same
//! handler on two routes, `/auth/hello` behind [`WorkloadAuthLayer`] (WIT + WPT mode, the
//! default configuration otherwise) and `/open/hello` without authentication.
//!
//! Before it starts listening it writes `--headers <file>`: `--count` pre-generated WPTs
//! for `GET /auth/hello`, one per line, each with its own `jti`, preceded by one line with
//! the caller's WIT. A client sends `Workload-Identity-Token: <line 1>` and
//! `Authorization: WPT <line n>`, each WPT once. The WPTs live `--wpt-lifetime` seconds
//! (default 240, under the default 300 s policy maximum) from startup, so the load run has
//! to start soon after; the WIT lives an hour.
//!
//! It then prints `listening on 127.0.0.1:<port>` and serves until SIGINT/SIGTERM, when it
//! prints how many responses each route gave, by status class. `GET /stats` (no
//! authentication, not counted) returns the same counts as JSON.
//!
//! The replay cache is sized for the pool (twice `--count`): with the default 100 000 entries
//! a run of more than 100 000 distinct proofs inside one proof lifetime would be refused
//! (`replay_cache_full`), which is the cache failing closed, not the cost being measured.
//!
//! ```text
//! cargo run --release -p lanyard-tower --example loadtest_target -- \
//!     --headers /tmp/lanyard-loadtest/headers.txt --count 500000 [--port 0] [--wpt-lifetime 240]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lanyard_core::{
    Algorithm, InMemoryReplayCache, KeyUse, SigningKey, SystemClock, TrustStore, WitIssuer, WorkloadId, WptParams,
    create_wpt,
};
use lanyard_core::{Clock, UnixTime};
use lanyard_tower::{Modes, VerifiedWorkload, WorkloadAuthConfig, WorkloadAuthLayer};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The caller every WIT and WPT belongs to.
const CALLER: &str = "spiffe://example.org/billing";

struct Args {
    port: u16,
    headers: PathBuf,
    count: usize,
    wpt_lifetime: u64,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        port: 0,
        headers: PathBuf::new(),
        count: 400_000,
        wpt_lifetime: 240,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => args.port = value()?.parse()?,
            "--headers" => args.headers = value()?.into(),
            "--count" => args.count = value()?.parse()?,
            "--wpt-lifetime" => args.wpt_lifetime = value()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    if args.headers.as_os_str().is_empty() {
        bail!("usage: loadtest_target --headers <file> [--count N] [--port P] [--wpt-lifetime S]");
    }
    Ok(args)
}

/// Responses per route: 2xx, 401, anything else.
#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    unauthorized: AtomicU64,
    other: AtomicU64,
}

impl Counts {
    fn record(&self, status: http::StatusCode) {
        let counter = match status.as_u16() {
            200..=299 => &self.ok,
            401 => &self.unauthorized,
            _ => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn json(&self) -> Value {
        json!({
            "2xx": self.ok.load(Ordering::Relaxed),
            "401": self.unauthorized.load(Ordering::Relaxed),
            "other": self.other.load(Ordering::Relaxed),
        })
    }
}

static AUTH: Counts = Counts {
    ok: AtomicU64::new(0),
    unauthorized: AtomicU64::new(0),
    other: AtomicU64::new(0),
};
static OPEN: Counts = Counts {
    ok: AtomicU64::new(0),
    unauthorized: AtomicU64::new(0),
    other: AtomicU64::new(0),
};

fn stats() -> Value {
    json!({ "auth": AUTH.json(), "open": OPEN.json() })
}

/// The orders-like handler, the same on both routes: an order and who asked for it.
async fn hello(request: Request) -> Json<Value> {
    let caller = request.extensions().get::<VerifiedWorkload>();
    Json(json!({
        "service": "orders",
        "path": request.uri().path(),
        "order": { "id": 42, "total_cents": 4_200, "status": "shipped" },
        "caller": caller.map_or("anonymous", |w| w.id.as_str()),
        "mode": caller.map(|w| w.mode.as_str()),
    }))
}

/// Writes the WIT and `count` WPTs for `audience`, generated on every core.
fn write_headers(
    args: &Args,
    key: &Arc<dyn SigningKey>,
    wit: &str,
    audience: &str,
    now: UnixTime,
) -> anyhow::Result<()> {
    let provider = lanyard_crypto::provider();
    let params = WptParams {
        wit,
        audience,
        lifetime: args.wpt_lifetime,
        ..Default::default()
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per_thread = args.count.div_ceil(threads);
    let parts: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let n = per_thread.min(args.count.saturating_sub(t * per_thread));
                let provider = Arc::clone(&provider);
                s.spawn(move || {
                    (0..n)
                        .map(|_| create_wpt(key.as_ref(), &params, now, provider.as_ref()))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a generator thread panicked"))
            .collect::<Result<_, _>>()
    })?;
    if let Some(dir) = args.headers.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::File::create(&args.headers).with_context(|| format!("creating {}", args.headers.display()))?;
    let mut out = BufWriter::new(file);
    writeln!(out, "{wit}")?;
    for wpt in parts.iter().flatten() {
        writeln!(out, "{wpt}")?;
    }
    out.flush()?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let listener = TcpListener::bind(("127.0.0.1", args.port)).await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");

    // The identity server's part: an ES256 WIT issuer the service trusts, and the caller's
    // EdDSA key and WIT (as in the examples).
    let provider = lanyard_crypto::provider();
    let issuer_key = provider.generate_key(Algorithm::ES256)?;
    let store = Arc::new(TrustStore::new(Arc::clone(&provider)));
    store.add_key("example.org", KeyUse::WitSvid, &issuer_key.public_jwk())?;
    let issuer = WitIssuer::new(Arc::clone(&provider), issuer_key, None, None, 3600);
    let key = provider.generate_key(Algorithm::EdDSA)?;
    let now = SystemClock.now();
    let wit = issuer.issue(&WorkloadId::parse(CALLER)?, &key.public_jwk(), now)?;

    let started = std::time::Instant::now();
    write_headers(&args, &key, &wit, &format!("{base}/auth/hello"), now)?;
    eprintln!(
        "wrote {} WPTs to {} in {:.1} s",
        args.count,
        args.headers.display(),
        started.elapsed().as_secs_f64()
    );

    let mut config = WorkloadAuthConfig::new(base.clone());
    config.modes = Modes::NONE.with_wpt();
    config.replay_cache = Some(Arc::new(InMemoryReplayCache::new(2 * args.count)));
    // Merged, not nested: a nested router sees its path without the prefix, and the layer
    // derives the expected audience from the path it sees.
    let auth = Router::new()
        .route("/auth/hello", get(hello))
        .layer(WorkloadAuthLayer::new(store, config))
        .layer(axum::middleware::map_response(|r: Response| async move {
            AUTH.record(r.status());
            r
        }));
    let open = Router::new()
        .route("/open/hello", get(hello))
        .layer(axum::middleware::map_response(|r: Response| async move {
            OPEN.record(r.status());
            r
        }));
    let app = auth
        .merge(open)
        .route("/stats", get(|| async { Json(stats()).into_response() }));

    println!("listening on {addr}");
    axum::serve(listener, app).with_graceful_shutdown(shutdown()).await?;
    println!("responses: {}", stats());
    Ok(())
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
