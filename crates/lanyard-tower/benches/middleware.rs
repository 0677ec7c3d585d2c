//! Per-request cost of the server middleware, [`WorkloadAuthLayer`], in-process: each
//! request goes through `tower::ServiceExt::oneshot` on an axum `Router` with a trivial
//! handler and a fixed clock, with the layer in each mode and, as the baseline, without
//! it. The raw signature verifications of the same algorithms, and the
//! lanyard-core verifiers called directly, are measured in the same binary and run, so
//! `docs/benchmarks-middleware.md` can subtract one from the other.
//!
//! Run with `cargo bench -p lanyard-tower --bench middleware`. Benchmark ids:
//!
//! - `raw/<alg>/verify`: one lanyard-crypto `PublicKey` verification over a 400-byte
//!   message, with the key parsed from its JWK on every call; `raw/<alg>/verify_parsed`:
//!   the same with the key parsed once (what lanyard-core does: keys are parsed once per
//!   WIT / anchor). Both are the aws-lc-rs primitive behind the provider interface.
//! - `baseline/get`, `baseline/post_1k`: the router without the layer (a GET without a
//!   body; a POST with a 1 KiB JSON body, which the handler reads).
//! - `layer_mtls/get`: the layer with a request carrying a [`PeerIdentity`] extension (what
//!   `lanyard_tower::mtls::serve` adds after the handshake): no signature work at all.
//! - `layer_wpt/<alg>`: WIT + WPT (`Authorization: WPT`), verified-WIT cache off: two
//!   verifications (issuer over the WIT, workload key over the WPT).
//! - `layer_wpt_cached/<alg>`: the same with the default configuration (WIT cache on) and
//!   the cache warm: one verification (the WPT).
//! - `layer_httpsig_cached/EdDSA/get`, `.../post_1k`: WIT + HTTP Message Signature, the
//!   default configuration with the WIT cache warm: one verification (the signature); the
//!   POST also buffers the body and checks its `Content-Digest`.
//! - `layer_httpsig/EdDSA/get`: the same GET with the WIT cache off (two verifications).
//! - `core_wpt/<alg>/{nocache,cached}`, `core_httpsig/EdDSA/{get_cached,get_nocache,post_1k_cached}`: the
//!   `WptVerifier` / `HttpSigVerifier` alone, on the same tokens, with the real replay
//!   cache. `layer_* − baseline − core_*` is the cost of the tower/axum glue itself.
//!
//! WIT issuer keys and workload keys use the same algorithm (ES256 or EdDSA). Every WPT
//! and every signature in a pool has its own `jti` / `nonce`; each time a pool wraps
//! around, the layer (or verifier) is rebuilt outside the timed region — a fresh replay
//! cache, and the WIT cache warmed again by one untimed request — so no timed request is
//! ever a replay. Setup asserts that a sample request gets `200` (and that a replayed
//! proof gets `401`), and every timed request asserts `200`, so a broken benchmark cannot
//! report fast failures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use lanyard_core::httpsig::{
    HttpSigPolicy, HttpSigVerifier, RequestParts, RequestSigning, TargetComponents, sign_request,
};
use lanyard_core::wimse::{WptCarriage, proof_headers};
use lanyard_core::{
    Algorithm, FixedClock, InMemoryReplayCache, KeyUse, ProofTokens, ReplayCache, SigningKey, SpiffeId, TrustStore,
    UnixTime, VerifyingKey, WitIssuer, WitPolicy, WitVerifier, WorkloadId, WptParams, WptPolicy, WptVerifier,
    create_wpt,
};
use lanyard_crypto::{KeyPair, PublicKey};
use lanyard_tower::mtls::PeerIdentity;
use lanyard_tower::{Modes, WorkloadAuthConfig, WorkloadAuthLayer};
use tokio::runtime::Runtime;
use tower::ServiceExt;

/// The fixed verification time.
const NOW: UnixTime = UnixTime(1_800_000_000);
/// What the service is known as.
const BASE: &str = "https://orders.example.org";
/// The one route.
const PATH: &str = "/hello";
/// Distinct proofs per pool (`MIDDLEWARE_BENCH_POOL` overrides it, e.g. to keep the setup
/// short under valgrind). Without `--bench` (`cargo test --benches` runs every benchmark
/// once) the pools are small.
const POOL: usize = 20_000;
/// The pool size when only testing that the benchmarks run.
const TEST_POOL: usize = 64;
/// Requests built (untimed) and then timed at a time.
const CHUNK: usize = 4_096;
/// The size of the raw-verification message.
const RAW_MESSAGE_BYTES: usize = 400;

fn pool_size() -> usize {
    let default = if std::env::args().any(|a| a == "--bench") {
        POOL
    } else {
        TEST_POOL
    };
    std::env::var("MIDDLEWARE_BENCH_POOL")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn audience() -> String {
    format!("{BASE}{PATH}")
}

/// A 1 KiB JSON body.
fn json_body() -> Bytes {
    let mut s = String::from("{\"items\":[");
    let mut i = 0;
    while s.len() < 1000 {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("{{\"sku\":\"SKU-{i:05}\",\"qty\":{}}}", i % 7 + 1));
        i += 1;
    }
    s.push_str("]}");
    while s.len() < 1024 {
        s.insert(s.len() - 1, ' ');
    }
    assert_eq!(s.len(), 1024);
    serde_json::from_str::<serde_json::Value>(&s).unwrap();
    Bytes::from(s)
}

/// The trivial handler: reads the body (empty for a GET) and says hello.
async fn hello(body: Bytes) -> &'static str {
    black_box(body);
    "hello"
}

fn router() -> Router {
    Router::new().route(PATH, get(hello).post(hello))
}

/// The default configuration (WIT cache on), every mode enabled, a fixed clock.
fn layered(store: &Arc<TrustStore>, wit_cache: bool) -> Router {
    let mut config = WorkloadAuthConfig::new(BASE);
    config.clock = Arc::new(FixedClock(NOW));
    config.modes = Modes::ALL;
    if !wit_cache {
        config.wit_cache_capacity = 0;
    }
    router().layer(WorkloadAuthLayer::new(Arc::clone(store), config))
}

/// A trust domain with one WIT issuer, and one workload with a WIT; both keys use `alg`.
struct Fixture {
    alg: Algorithm,
    store: Arc<TrustStore>,
    wit: String,
    key: Arc<dyn SigningKey>,
}

fn fixture(alg: Algorithm) -> Fixture {
    let p = lanyard_crypto::provider();
    let issuer_key = KeyPair::generate(alg).unwrap().with_kid("issuer-key-1");
    let store = Arc::new(TrustStore::new(p.clone()));
    store
        .add_key("example.org", KeyUse::WitSvid, &issuer_key.public_jwk())
        .unwrap();
    let issuer = WitIssuer::new(
        p.clone(),
        Arc::new(issuer_key),
        Some("issuer-key-1".into()),
        Some("https://issuer.example.org".into()),
        3600,
    );
    let key: Arc<dyn SigningKey> = Arc::new(KeyPair::generate(alg).unwrap());
    let sub = WorkloadId::parse("spiffe://example.org/ns/prod/sa/billing").unwrap();
    let wit = issuer.issue(&sub, &key.public_jwk(), NOW).unwrap();
    Fixture { alg, store, wit, key }
}

fn header_map(pairs: impl IntoIterator<Item = (String, String)>) -> HeaderMap {
    pairs
        .into_iter()
        .map(|(n, v)| {
            (
                HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()).unwrap(),
                HeaderValue::from_str(&v).unwrap(),
            )
        })
        .collect()
}

/// `n` WIT + WPT header sets, each WPT with its own `jti`.
fn wpt_pool(f: &Fixture, n: usize) -> Vec<(String, HeaderMap)> {
    let p = lanyard_crypto::provider();
    let aud = audience();
    let params = WptParams {
        wit: &f.wit,
        audience: &aud,
        lifetime: 60,
        ..Default::default()
    };
    (0..n)
        .map(|_| {
            let wpt = create_wpt(f.key.as_ref(), &params, NOW, p.as_ref()).unwrap();
            let headers = proof_headers(&f.wit, &wpt, WptCarriage::Authorization)
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v));
            let headers = header_map(headers);
            (wpt, headers)
        })
        .collect()
}

/// `n` signed header sets for `method PATH` with `body`, each with its own nonce.
fn signed_pool(f: &Fixture, method: &str, body: &[u8], n: usize) -> Vec<Vec<(String, String)>> {
    let p = lanyard_crypto::provider();
    let aud = audience();
    let own: Vec<(&str, &[u8])> = if body.is_empty() {
        Vec::new()
    } else {
        vec![("content-type", b"application/json")]
    };
    let parts = RequestParts {
        method,
        target: PATH,
        headers: own.clone(),
        ..RequestParts::default()
    };
    let opts = RequestSigning {
        wit: &f.wit,
        audience: &aud,
        lifetime: 60,
        sign_response: false,
        target: TargetComponents::RequestTarget,
    };
    (0..n)
        .map(|_| {
            let signed = sign_request(f.key.as_ref(), &parts, body, &opts, NOW, p.as_ref()).unwrap();
            own.iter()
                .map(|(n, v)| ((*n).to_owned(), String::from_utf8(v.to_vec()).unwrap()))
                .chain(signed.headers.into_iter().map(|(n, v)| (n.to_ascii_lowercase(), v)))
                .collect()
        })
        .collect()
}

/// What one benchmark sends.
struct Case {
    method: Method,
    body: Bytes,
    /// One header set per request; for single-use proofs each is sent once per app.
    headers: Vec<HeaderMap>,
    peer: Option<PeerIdentity>,
    /// Whether each header set carries a one-time proof, and then the status a replay gets
    /// (`401` for a WPT, `400` for an HTTP signature).
    single_use: Option<StatusCode>,
    /// A proof sent (untimed) to each new app: warms the WIT cache.
    warm: Option<HeaderMap>,
}

impl Case {
    fn request(&self, headers: &HeaderMap) -> Request<Body> {
        let mut r = Request::builder()
            .method(self.method.clone())
            .uri(PATH)
            .body(Body::from(self.body.clone()))
            .unwrap();
        *r.headers_mut() = headers.clone();
        if let Some(peer) = &self.peer {
            r.extensions_mut().insert(peer.clone());
        }
        r
    }
}

/// Sends one request (untimed); returns the status and the body.
fn send(rt: &Runtime, app: &Router, request: Request<Body>) -> (StatusCode, String) {
    rt.block_on(async {
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    })
}

/// Times `oneshot` over the case's requests; `make` builds the app (and is called again,
/// untimed, whenever a pool of single-use proofs wraps around).
fn bench_app(c: &mut Criterion, rt: &Runtime, group: &str, id: &str, make: &dyn Fn() -> Router, case: &Case) {
    let fresh = || {
        let app = make();
        if let Some(warm) = &case.warm {
            assert_eq!(send(rt, &app, case.request(warm)).0, StatusCode::OK);
        }
        app
    };
    // Outside timing: a sample request succeeds, and a replayed proof is refused.
    let app = fresh();
    let (status, body) = send(rt, &app, case.request(&case.headers[0]));
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hello"), "{group}/{id}");
    if let Some(replay) = case.single_use {
        let (status, body) = send(rt, &app, case.request(&case.headers[0]));
        assert_eq!(status, replay, "{group}/{id}: replay: {body}");
        assert!(body.contains(r#""kind":"replay""#), "{group}/{id}: {body}");
    }
    let single_use = case.single_use.is_some();
    let mut app = fresh();
    let mut next = 0usize;
    let len = case.headers.len();
    c.benchmark_group(group).bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                if single_use && next == len {
                    next = 0;
                    app = fresh();
                }
                let mut chunk = left.min(CHUNK as u64) as usize;
                if single_use {
                    chunk = chunk.min(len - next);
                }
                let requests: Vec<Request<Body>> = (next..next + chunk)
                    .map(|i| case.request(&case.headers[i % len]))
                    .collect();
                total += rt.block_on(async {
                    let start = Instant::now();
                    for request in requests {
                        let response = app.clone().oneshot(request).await.unwrap();
                        assert_eq!(response.status(), StatusCode::OK);
                        black_box(response);
                    }
                    start.elapsed()
                });
                next = if single_use { next + chunk } else { (next + chunk) % len };
                left -= chunk as u64;
            }
            total
        });
    });
}

/// Times `verify` over `pool` with a verifier from `make`, rebuilt (untimed) when the
/// pool wraps; `warm` is called on each new verifier.
fn bench_core<V, T>(
    c: &mut Criterion,
    group: &str,
    id: &str,
    pool: &[T],
    make: &dyn Fn() -> V,
    warm: &dyn Fn(&V),
    verify: &dyn Fn(&V, &T),
) {
    let fresh = || {
        let v = make();
        warm(&v);
        v
    };
    let mut v = fresh();
    let mut next = 0usize;
    c.benchmark_group(group).bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                if next == pool.len() {
                    next = 0;
                    v = fresh();
                }
                let chunk = left.min((pool.len() - next) as u64) as usize;
                let start = Instant::now();
                for item in &pool[next..next + chunk] {
                    verify(&v, black_box(item));
                }
                total += start.elapsed();
                next += chunk;
                left -= chunk as u64;
            }
            total
        });
    });
}

fn bench_raw(c: &mut Criterion, alg: Algorithm) {
    let key = KeyPair::generate(alg).unwrap();
    let jwk = key.public_jwk();
    let msg: Vec<u8> = (0..RAW_MESSAGE_BYTES).map(|i| b'A' + (i % 26) as u8).collect();
    let sig = key.sign(&msg).unwrap();
    let parsed = PublicKey::from_jwk(&jwk, alg).unwrap();
    parsed.verify(&msg, &sig).unwrap();
    let mut g = c.benchmark_group("raw");
    g.bench_function(format!("{}/verify", alg.as_str()), |b| {
        b.iter(|| {
            PublicKey::from_jwk(black_box(&jwk), alg)
                .unwrap()
                .verify(black_box(&msg), black_box(&sig))
                .unwrap();
        });
    });
    g.bench_function(format!("{}/verify_parsed", alg.as_str()), |b| {
        b.iter(|| parsed.verify(black_box(&msg), black_box(&sig)).unwrap());
    });
    g.finish();
}

fn baseline_and_mtls(c: &mut Criterion, rt: &Runtime, store: &Arc<TrustStore>) {
    let get = Case {
        method: Method::GET,
        body: Bytes::new(),
        headers: vec![HeaderMap::new()],
        peer: None,
        single_use: None,
        warm: None,
    };
    bench_app(c, rt, "baseline", "get", &router, &get);
    let mut json = HeaderMap::new();
    json.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let post = Case {
        method: Method::POST,
        body: json_body(),
        headers: vec![json],
        peer: None,
        single_use: None,
        warm: None,
    };
    bench_app(c, rt, "baseline", "post_1k", &router, &post);
    let mtls = Case {
        peer: Some(PeerIdentity {
            id: SpiffeId::parse("spiffe://example.org/ns/prod/sa/batch").unwrap(),
        }),
        ..get
    };
    bench_app(c, rt, "layer_mtls", "get", &|| layered(store, true), &mtls);
}

fn real_replay_cache() -> Arc<dyn ReplayCache> {
    Arc::new(InMemoryReplayCache::default())
}

fn wit_verifier(f: &Fixture, cached: bool) -> WitVerifier {
    let v = WitVerifier::new(Arc::clone(&f.store), WitPolicy::wimse());
    if cached { v.with_cache(10_000) } else { v }
}

fn bench_wpt(c: &mut Criterion, rt: &Runtime, f: &Fixture) {
    let alg = f.alg.as_str();
    let mut pool = wpt_pool(f, pool_size() + 1);
    let (_, warm) = pool.pop().unwrap();
    let case = Case {
        method: Method::GET,
        body: Bytes::new(),
        headers: pool.iter().map(|(_, h)| h.clone()).collect(),
        peer: None,
        single_use: Some(StatusCode::UNAUTHORIZED),
        warm: Some(warm),
    };
    bench_app(c, rt, "layer_wpt", alg, &|| layered(&f.store, false), &case);
    bench_app(c, rt, "layer_wpt_cached", alg, &|| layered(&f.store, true), &case);

    let aud = audience();
    let wpts: Vec<&str> = pool.iter().map(|(w, _)| w.as_str()).collect();
    for (cached, id) in [(false, "nocache"), (true, "cached")] {
        bench_core(
            c,
            "core_wpt",
            &format!("{alg}/{id}"),
            &wpts,
            &|| WptVerifier::new(wit_verifier(f, cached), WptPolicy::default(), real_replay_cache()),
            &|v: &WptVerifier| {
                v.wit_verifier().verify(&f.wit, NOW).unwrap();
            },
            &|v: &WptVerifier, wpt: &&str| {
                let tokens = ProofTokens {
                    wit: &f.wit,
                    wpt,
                    ..Default::default()
                };
                black_box(v.verify(&tokens, &aud, NOW).unwrap());
            },
        );
    }
}

fn bench_httpsig(c: &mut Criterion, rt: &Runtime, f: &Fixture) {
    let alg = f.alg.as_str();
    let aud = audience();
    for (method, body, id) in [
        (Method::GET, Bytes::new(), "get"),
        (Method::POST, json_body(), "post_1k"),
    ] {
        let mut pool = signed_pool(f, method.as_str(), &body, pool_size() + 1);
        let warm = header_map(pool.pop().unwrap());
        let case = Case {
            method: method.clone(),
            body: body.clone(),
            headers: pool.iter().map(|h| header_map(h.clone())).collect(),
            peer: None,
            single_use: Some(StatusCode::BAD_REQUEST),
            warm: Some(warm),
        };
        bench_app(
            c,
            rt,
            "layer_httpsig_cached",
            &format!("{alg}/{id}"),
            &|| layered(&f.store, true),
            &case,
        );
        if method == Method::GET {
            bench_app(
                c,
                rt,
                "layer_httpsig",
                &format!("{alg}/{id}"),
                &|| layered(&f.store, false),
                &case,
            );
        }
        let caches: &[bool] = if method == Method::GET { &[true, false] } else { &[true] };
        for &cached in caches {
            let suffix = if cached { "cached" } else { "nocache" };
            bench_core(
                c,
                "core_httpsig",
                &format!("{alg}/{id}_{suffix}"),
                &pool,
                &|| HttpSigVerifier::new(wit_verifier(f, cached), HttpSigPolicy::default(), real_replay_cache()),
                &|v: &HttpSigVerifier| {
                    v.wit_verifier().verify(&f.wit, NOW).unwrap();
                },
                &|v: &HttpSigVerifier, headers: &Vec<(String, String)>| {
                    let parts = RequestParts {
                        method: method.as_str(),
                        target: PATH,
                        headers: headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect(),
                        ..RequestParts::default()
                    };
                    black_box(v.verify_request(&parts, &body, &aud, NOW).unwrap());
                },
            );
        }
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for alg in [Algorithm::ES256, Algorithm::EdDSA] {
        bench_raw(c, alg);
    }
    let es256 = fixture(Algorithm::ES256);
    let eddsa = fixture(Algorithm::EdDSA);
    baseline_and_mtls(c, &rt, &eddsa.store);
    bench_wpt(c, &rt, &es256);
    bench_wpt(c, &rt, &eddsa);
    bench_httpsig(c, &rt, &eddsa);
}

criterion_group! {
    name = middleware;
    config = Criterion::default().warm_up_time(Duration::from_secs(2)).measurement_time(Duration::from_secs(5));
    targets = benches
}
criterion_main!(middleware);
