//! Issuance cost of the identity server: X.509-SVID signing by the server's active CA,
//! WIT and JWT-SVID minting, and the same through the admin router (JSON and routing
//! included). Results and the goals they are checked against are in
//! `docs/benchmarks-server.md`.
//!
//! Run with `cargo bench -p lanyard-server --bench issuance`. Benchmark ids:
//!
//! - `x509/public_key`: `X509Authority::issue_svid` with `SubjectKey::PublicKey` (a P-256
//!   SubjectPublicKeyInfo) — build, sign and encode one leaf, one thread.
//! - `x509/csr`: `X509Authority::issue_svid_from_csr` — parse the PKCS#10 CSR, check its
//!   signature (proof of possession) and its SANs, then the same as above.
//! - `x509/server_csr`: `lanyard_server::issue::sign_x509_svid` — the server's path: trust
//!   domain check, TTL cap from the key manager, CSR issuance, chain as PEM.
//! - `x509_2threads/public_key_1000`, `x509_2threads/csr_1000`: a batch of 1,000 SVIDs
//!   issued by two plain `std::thread`s (500 each) sharing one CA; the reported throughput
//!   is the machine's (2-core) SVIDs/s, including thread start-up.
//! - `wit/mint`, `jwt_svid/mint`: `issue::mint_wit`, `issue::mint_jwt_svid` (driven by a
//!   current-thread tokio runtime; the futures never wait, so this is the signing path).
//! - `admin/post_wits`, `admin/post_jwt_svids`: `POST /v1/wits` and `POST /v1/jwt-svids`
//!   through `endpoints::admin::router` with `oneshot`: request JSON parsing, routing,
//!   minting, response JSON, and collecting the body (no socket, no HTTP parsing).
//!
//! Every benchmark reports per-element throughput, so criterion prints both the time per
//! credential and credentials/s. Setup issues each kind once and checks the result (the
//! SVID's SPIFFE ID, the tokens' shape, the HTTP status), and every timed call unwraps, so
//! a broken path cannot report fast failures.
//!
//! No `tracing` subscriber is installed, so the admin handlers' audit events cost only
//! the disabled-callsite check here; a server logging at `info` writes one line per mint.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use lanyard_core::{Algorithm, Clock, SigningKey, SpiffeId, SystemClock, TrustDomain, UnixTime, WorkloadId};
use lanyard_crypto::KeyPair;
use lanyard_server::ServerConfig;
use lanyard_server::ca::{KeyManager, KeyManagerConfig, KeyStorage};
use lanyard_server::datastore::{DataStore, SqlDataStore, Stores};
use lanyard_server::endpoints::admin;
use lanyard_server::issue;
use lanyard_server::state::AppState;
use lanyard_x509::{SubjectKey, X509Authority};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tower::ServiceExt;

/// The identity every credential is issued for.
const ID: &str = "spiffe://example.org/ns/prod/sa/web";
/// The X.509-SVID TTL asked for (the server default).
const TTL: u64 = 3600;
/// SVIDs per parallel batch.
const BATCH: usize = 1000;
/// Threads of the parallel batch (the machine's cores).
const THREADS: usize = 2;

/// An in-process server state: in-memory SQLite, key files in a temp dir, authorities
/// created by a first rotation, the system clock.
struct Fixture {
    rt: Runtime,
    state: AppState,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = rt.block_on(async {
        let store: Arc<dyn DataStore> = Arc::new(
            SqlDataStore::connect("sqlite::memory:", lanyard_crypto::provider())
                .await
                .unwrap(),
        );
        let td = TrustDomain::parse("example.org").unwrap();
        let keys = Arc::new(KeyManager::new(
            store.clone(),
            KeyManagerConfig::new(td.clone(), KeyStorage::Files(dir.path().join("keys"))),
            lanyard_crypto::provider(),
        ));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        keys.rotate(clock.now()).await.unwrap();
        AppState {
            config: Arc::new(ServerConfig::default()),
            trust_domain: td,
            stores: Stores::new(store),
            keys,
            clock,
            crypto: lanyard_crypto::provider(),
            public_url: "https://lanyard.example.org".into(),
        }
    });
    Fixture { rt, state, _dir: dir }
}

/// A PKCS#10 CSR (DER) for a fresh P-256 key requesting exactly `id`.
fn csr(id: &str) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = vec![rcgen::SanType::URI(rcgen::string::Ia5String::try_from(id).unwrap())];
    params.serialize_request(&key).unwrap().der().to_vec()
}

fn now() -> UnixTime {
    SystemClock.now()
}

/// Issues `n` SVIDs from `spki` (or `csr_der` when given) and returns how many succeeded.
fn issue_many(ca: &X509Authority, id: &SpiffeId, spki: &[u8], csr_der: Option<&[u8]>, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        let svid = match csr_der {
            Some(der) => ca.issue_svid_from_csr(black_box(der), id, TTL, &[], now()),
            None => ca.issue_svid(id, SubjectKey::PublicKey(black_box(spki)), TTL, &[], now()),
        };
        ok += usize::from(black_box(svid).is_ok());
    }
    ok
}

/// `BATCH` SVIDs over `THREADS` std threads sharing the CA; panics unless all succeed.
fn issue_batch_parallel(ca: &X509Authority, id: &SpiffeId, spki: &[u8], csr_der: Option<&[u8]>) {
    let per_thread = BATCH / THREADS;
    let issued: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| s.spawn(|| issue_many(ca, id, spki, csr_der, per_thread)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(issued, BATCH);
}

fn bench_x509(c: &mut Criterion, f: &Fixture) {
    let ca = f.rt.block_on(f.state.keys.x509_ca()).unwrap();
    let id = SpiffeId::parse(ID).unwrap();
    let subject = KeyPair::generate(Algorithm::ES256).unwrap();
    let spki = subject.public_spki_der().unwrap();
    let csr_der = csr(ID);

    // Each path issues a leaf for the right identity and key before it is timed.
    let svid = ca
        .issue_svid(&id, SubjectKey::PublicKey(&spki), TTL, &[], now())
        .unwrap();
    assert_eq!(svid.spiffe_id().unwrap(), id);
    assert!(svid.key_pem().is_none());
    let svid = ca.issue_svid_from_csr(&csr_der, &id, TTL, &[], now()).unwrap();
    assert_eq!(svid.spiffe_id().unwrap(), id);
    let pem =
        f.rt.block_on(issue::sign_x509_svid(&f.state, &id, &csr_der, &[], None))
            .unwrap();
    assert_eq!(
        pem.matches("BEGIN CERTIFICATE").count(),
        1,
        "a root CA's SVID chain is the leaf"
    );
    assert_eq!(issue_many(&ca, &id, &spki, Some(&csr_der), 3), 3);

    let mut group = c.benchmark_group("x509");
    group.throughput(Throughput::Elements(1));
    group.bench_function("public_key", |b| {
        b.iter(|| {
            ca.issue_svid(&id, SubjectKey::PublicKey(black_box(&spki)), TTL, &[], now())
                .unwrap()
        });
    });
    group.bench_function("csr", |b| {
        b.iter(|| {
            ca.issue_svid_from_csr(black_box(&csr_der), &id, TTL, &[], now())
                .unwrap()
        });
    });
    group.bench_function("server_csr", |b| {
        b.iter(|| {
            f.rt.block_on(issue::sign_x509_svid(&f.state, &id, black_box(&csr_der), &[], None))
                .unwrap()
        });
    });
    group.finish();

    let mut group = c.benchmark_group("x509_2threads");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("public_key_1000", |b| {
        b.iter(|| issue_batch_parallel(&ca, &id, &spki, None));
    });
    group.bench_function("csr_1000", |b| {
        b.iter(|| issue_batch_parallel(&ca, &id, &spki, Some(&csr_der)));
    });
    group.finish();
}

/// Sends one JSON request through `app` and returns the status and the parsed body.
async fn post(app: &Router, uri: &str, body: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// True for a compact JWS (three non-empty dot-separated parts).
fn is_jws(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty())
}

fn bench_tokens(c: &mut Criterion, f: &Fixture) {
    let sub = WorkloadId::parse(ID).unwrap();
    let spiffe_id = SpiffeId::parse(ID).unwrap();
    let workload = KeyPair::generate(Algorithm::ES256).unwrap();
    let cnf = workload.public_jwk();
    let app = admin::router(f.state.clone());
    let wit_body = json!({"spiffe_id": ID, "cnf": cnf}).to_string();
    let jwt_body = json!({"spiffe_id": ID, "audience": "db"}).to_string();

    let wit =
        f.rt.block_on(issue::mint_wit(&f.state, &sub, &cnf, None))
            .unwrap()
            .token;
    assert!(is_jws(&wit), "{wit}");
    let jwt =
        f.rt.block_on(issue::mint_jwt_svid(&f.state, &spiffe_id, &["db"], None))
            .unwrap()
            .token;
    assert!(is_jws(&jwt), "{jwt}");
    let (status, body) = f.rt.block_on(post(&app, "/v1/wits", &wit_body));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(is_jws(body["wit"].as_str().unwrap()));
    let (status, body) = f.rt.block_on(post(&app, "/v1/jwt-svids", &jwt_body));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(is_jws(body["token"].as_str().unwrap()));

    let mut group = c.benchmark_group("wit");
    group.throughput(Throughput::Elements(1));
    group.bench_function("mint", |b| {
        b.iter(|| {
            f.rt.block_on(issue::mint_wit(&f.state, &sub, black_box(&cnf), None))
                .unwrap()
        });
    });
    group.finish();
    let mut group = c.benchmark_group("jwt_svid");
    group.throughput(Throughput::Elements(1));
    group.bench_function("mint", |b| {
        b.iter(|| {
            f.rt.block_on(issue::mint_jwt_svid(&f.state, &spiffe_id, &[black_box("db")], None))
                .unwrap()
        });
    });
    group.finish();

    let mut group = c.benchmark_group("admin");
    group.throughput(Throughput::Elements(1));
    group.bench_function("post_wits", |b| {
        b.iter(|| {
            let (status, body) = f.rt.block_on(post(&app, "/v1/wits", black_box(&wit_body)));
            assert_eq!(status, StatusCode::OK);
            body
        });
    });
    group.bench_function("post_jwt_svids", |b| {
        b.iter(|| {
            let (status, body) = f.rt.block_on(post(&app, "/v1/jwt-svids", black_box(&jwt_body)));
            assert_eq!(status, StatusCode::OK);
            body
        });
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    bench_x509(c, &f);
    bench_tokens(c, &f);
}

criterion_group!(issuance, benches);
criterion_main!(issuance);
