//! Per-request cost of the OAuth resource-server layer, [`AccessTokenLayer`], in-process
//! (`tower::ServiceExt::oneshot` on an axum `Router` with a trivial handler and a fixed
//! clock), against raw ES256 verifications measured in the same binary and run.
//!
//! Run with `cargo bench -p lanyard-tower --bench oauth_resource`. Benchmark ids (group
//! `oauth_resource`):
//!
//! - `raw_es256_verify`: one ES256 verification (key parsed once) over a message as long as
//!   an access token's signing input; `raw_es256_verify_x2`: two of them back to back;
//!   `raw_es256_parse_verify`: the key parsed from its JWK, then one verification (a DPoP
//!   proof carries its key, so the resource server parses it for every proof).
//! - `baseline_get`: the router without the layer.
//! - `bearer`: the layer with `Authorization: Bearer` and an ES256 RFC 9068 token (one
//!   verification; keys configured).
//! - `dpop`: `Authorization: DPoP` + an ES256 DPoP proof for an ES256 `cnf.jkt` token (two
//!   verifications, `ath`, `htu`, replay record). Each proof is used once: proofs come
//!   from a pool, and when it wraps the layer is rebuilt untimed (a fresh replay cache).
//! - `txn_token`: [`TxnTokenLayer`] with an ES256 Txn-Token in the `Txn-Token` header
//!   (draft-ietf-oauth-transaction-tokens-11: one verification, `aud` = the trust domain;
//!   issue 13's goal: at most 1.15× one raw verification).
//!
//! After criterion, a paired measurement (only with `--bench`) alternates blocks of raw
//! verifications and of layer requests and prints the median per-round ratios, which a
//! shared machine's changing load does not skew.
//!
//! Every timed request asserts `200`, so a broken benchmark cannot report fast failures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, StatusCode};
use lanyard_core::oauth::{
    AccessTokenClaims, Audience, Confirmation, DpopProofParams, Scope, VerificationKeys, create_dpop_proof,
    issue_access_token,
};
use lanyard_core::oauth::{TxnTokenClaims, TxnTokenPolicy, issue_txn_token};
use lanyard_core::{Algorithm, CryptoProvider, FixedClock, JwkSet, SigningKey, UnixTime};
use lanyard_tower::oauth::{AccessTokenConfig, AccessTokenLayer, KeySource};
use lanyard_tower::{TxnTokenKeys, TxnTokenLayer};
use tokio::runtime::Runtime;
use tower::ServiceExt;

const NOW: UnixTime = UnixTime(1_800_000_000);
const ISSUER: &str = "https://as.example.org";
const AUDIENCE: &str = "https://ledger.example.org";
const PATH: &str = "/ledger";
/// The trust domain a Txn-Token is for (its `aud`).
const TRUST_DOMAIN: &str = "example.org";
/// Credentials of this form go in the `Txn-Token` header instead of `Authorization`.
const TXN_PREFIX: &str = "Txn-Token ";
/// Distinct DPoP proofs per pool (small when only testing that the benchmark runs).
const POOL: usize = 20_000;
const TEST_POOL: usize = 64;
/// Requests built (untimed) and then timed at a time.
const CHUNK: usize = 2_048;

struct Fixture {
    provider: Arc<dyn CryptoProvider>,
    keys: VerificationKeys,
    bearer: String,
    dpop_token: String,
    dpop_key: Arc<dyn SigningKey>,
    txn_token: String,
}

fn fixture() -> Fixture {
    let provider = lanyard_crypto::provider();
    let as_key = provider.generate_key(Algorithm::ES256).unwrap();
    let mut jwk = as_key.public_jwk();
    jwk.kid = Some("as-1".into());
    let keys = VerificationKeys::from_jwks(provider.as_ref(), ISSUER, &JwkSet { keys: vec![jwk] }).unwrap();
    let dpop_key = provider.generate_key(Algorithm::ES256).unwrap();
    let jkt = dpop_key.public_jwk().thumbprint(provider.as_ref()).unwrap();
    let claims = |cnf: Option<Confirmation>| AccessTokenClaims {
        iss: ISSUER.into(),
        sub: "billing".into(),
        aud: Audience::one(AUDIENCE),
        client_id: "billing".into(),
        scope: Some(Scope::parse("ledger.read").unwrap()),
        iat: NOW,
        exp: NOW.plus(300),
        nbf: None,
        jti: "at-1".into(),
        cnf,
        act: None,
        extra: Default::default(),
    };
    let txn = TxnTokenClaims {
        iss: Some(ISSUER.into()),
        iat: NOW,
        exp: NOW.plus(60),
        aud: TRUST_DOMAIN.into(),
        txn: "txn-1".into(),
        sub: "alice".into(),
        scope: Scope::parse("ledger.read").unwrap(),
        req_wl: "spiffe://example.org/agent".into(),
        tctx: None,
        rctx: None,
        extra: Default::default(),
    };
    Fixture {
        txn_token: issue_txn_token(as_key.as_ref(), "as-1", &txn).unwrap(),
        bearer: issue_access_token(as_key.as_ref(), "as-1", &claims(None)).unwrap(),
        dpop_token: issue_access_token(as_key.as_ref(), "as-1", &claims(Some(Confirmation::dpop(jkt)))).unwrap(),
        provider,
        keys,
        dpop_key,
    }
}

fn app(f: &Fixture) -> Router {
    let mut config = AccessTokenConfig::new(ISSUER, AUDIENCE);
    config.clock = Arc::new(FixedClock(NOW));
    Router::new()
        .route(PATH, get(|| async { "ok" }))
        .layer(AccessTokenLayer::new(KeySource::fixed(f.keys.clone()), config))
}

/// A request with `authorization` (or, prefixed with [`TXN_PREFIX`], a `Txn-Token` header)
/// and a DPoP proof if given.
fn request(authorization: &str, dpop: Option<&str>) -> Request<Body> {
    let mut r = match authorization.strip_prefix(TXN_PREFIX) {
        Some(txn) => Request::get(PATH).header("txn-token", txn),
        None => Request::get(PATH).header("authorization", authorization),
    };
    if let Some(p) = dpop {
        r = r.header("dpop", p);
    }
    r.body(Body::empty()).unwrap()
}

fn txn_app(f: &Fixture) -> Router {
    let layer = TxnTokenLayer::new(TxnTokenPolicy::new(TRUST_DOMAIN), TxnTokenKeys::new(f.keys.clone()))
        .with_clock(Arc::new(FixedClock(NOW)));
    Router::new().route(PATH, get(|| async { "ok" })).layer(layer)
}

fn send(rt: &Runtime, app: &Router, req: Request<Body>) -> StatusCode {
    rt.block_on(async { app.clone().oneshot(req).await.unwrap().status() })
}

fn raw(c: &mut Criterion, f: &Fixture) {
    let key = f.provider.generate_key(Algorithm::ES256).unwrap();
    let message = f.bearer.rsplit_once('.').unwrap().0.as_bytes().to_vec();
    let signature = key.sign(&message).unwrap();
    let verifying = f.provider.verifying_key(&key.public_jwk(), Algorithm::ES256).unwrap();
    let mut g = c.benchmark_group("oauth_resource");
    g.bench_function("raw_es256_verify", |b| {
        b.iter(|| verifying.verify(black_box(&message), black_box(&signature)).unwrap())
    });
    let jwk = key.public_jwk();
    g.bench_function("raw_es256_parse_verify", |b| {
        b.iter(|| {
            let k = f.provider.verifying_key(black_box(&jwk), Algorithm::ES256).unwrap();
            k.verify(black_box(&message), black_box(&signature)).unwrap()
        })
    });
    g.bench_function("raw_es256_verify_x2", |b| {
        b.iter(|| {
            verifying.verify(black_box(&message), black_box(&signature)).unwrap();
            verifying.verify(black_box(&message), black_box(&signature)).unwrap();
        })
    });
}

/// Sends `requests` through `app` one after the other, asserting `200`; the time taken.
fn run_block(rt: &Runtime, app: &Router, requests: Vec<Request<Body>>) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for r in requests {
            let response = app.clone().oneshot(r).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            black_box(response);
        }
        start.elapsed()
    })
}

/// Times requests with the credentials of `pool` (one request each, in order) through the
/// router `make` builds; with `single_use`, the router is rebuilt (untimed) when the pool
/// wraps, so no timed proof is a replay.
fn timed(
    c: &mut Criterion,
    rt: &Runtime,
    id: &str,
    make: &dyn Fn() -> Router,
    pool: &[(String, Option<String>)],
    single_use: bool,
) {
    let mut app = make();
    let mut next = 0usize;
    c.benchmark_group("oauth_resource").bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                if next == pool.len() {
                    next = 0;
                    if single_use {
                        app = make();
                    }
                }
                let chunk = (left.min(CHUNK as u64) as usize).min(pool.len() - next);
                let requests: Vec<Request<Body>> = pool[next..next + chunk]
                    .iter()
                    .map(|(a, p)| request(a, p.as_deref()))
                    .collect();
                total += run_block(rt, &app, requests);
                next += chunk;
                left -= chunk as u64;
            }
            total
        })
    });
}

fn layer(c: &mut Criterion, rt: &Runtime, f: &Fixture, pool: usize) -> Vec<(String, Option<String>)> {
    let plain = || Router::new().route(PATH, get(|| async { "ok" }));
    let same = |authorization: String| vec![(authorization, None); CHUNK];
    timed(c, rt, "baseline_get", &plain, &same("Bearer x".into()), false);

    let bearer = same(format!("Bearer {}", f.bearer));
    assert_eq!(send(rt, &app(f), request(&bearer[0].0, None)), StatusCode::OK);
    timed(c, rt, "bearer", &|| app(f), &bearer, false);

    let authorization = format!("DPoP {}", f.dpop_token);
    let uri = format!("{AUDIENCE}{PATH}");
    let proofs: Vec<(String, Option<String>)> = (0..pool)
        .map(|_| {
            let params = DpopProofParams {
                method: "GET",
                uri: &uri,
                access_token: Some(&f.dpop_token),
                nonce: None,
            };
            let proof = create_dpop_proof(f.dpop_key.as_ref(), &params, NOW, f.provider.as_ref()).unwrap();
            (authorization.clone(), Some(proof))
        })
        .collect();
    let check = app(f);
    let first = proofs[0].1.as_deref();
    assert_eq!(send(rt, &check, request(&authorization, first)), StatusCode::OK);
    assert_eq!(
        send(rt, &check, request(&authorization, first)),
        StatusCode::UNAUTHORIZED,
        "a replayed proof must be refused"
    );
    timed(c, rt, "dpop", &|| app(f), &proofs, true);

    let txn = same(format!("{TXN_PREFIX}{}", f.txn_token));
    assert_eq!(send(rt, &txn_app(f), request(&txn[0].0, None)), StatusCode::OK);
    timed(c, rt, "txn_token", &|| txn_app(f), &txn, false);
    proofs
}

/// Rounds of the paired measurement, and operations per block.
const PAIRED_ROUNDS: usize = 40;
const PAIRED_BLOCK: usize = 100;

/// The ratios measured in pairs: each round times a block of raw verifications, then a
/// block of layer requests, back to back, so a change of machine load between criterion's
/// benchmarks (the machine is shared) does not skew the ratio. Prints the median of the
/// per-round ratios (layer ÷ raw, and layer − baseline ÷ raw).
fn paired(rt: &Runtime, f: &Fixture, dpop_pool: &[(String, Option<String>)]) {
    let key = f.provider.generate_key(Algorithm::ES256).unwrap();
    let message = f.bearer.rsplit_once('.').unwrap().0.as_bytes().to_vec();
    let signature = key.sign(&message).unwrap();
    let verifying = f.provider.verifying_key(&key.public_jwk(), Algorithm::ES256).unwrap();
    let jwk = key.public_jwk();
    // One verification with the key parsed from its JWK first (what a DPoP proof needs).
    let raw_parse = |n: usize| {
        let start = Instant::now();
        for _ in 0..n {
            let k = f.provider.verifying_key(black_box(&jwk), Algorithm::ES256).unwrap();
            k.verify(black_box(&message), black_box(&signature)).unwrap();
        }
        start.elapsed()
    };
    let raw = |n: usize| {
        let start = Instant::now();
        for _ in 0..n {
            verifying.verify(black_box(&message), black_box(&signature)).unwrap();
        }
        start.elapsed()
    };
    // The proofs' own signatures, each verified with the proof key parsed once: the raw
    // work of a DPoP request is one verification of the (same) token plus one of a
    // distinct proof, whose signature the branch predictors of a one-signature loop have
    // not learned.
    let proof_key = f
        .provider
        .verifying_key(&f.dpop_key.public_jwk(), Algorithm::ES256)
        .unwrap();
    let proof_signatures: Vec<(Vec<u8>, Vec<u8>)> = dpop_pool
        .iter()
        .map(|(_, proof)| {
            let proof = proof.as_deref().unwrap();
            let (input, signature) = proof.rsplit_once('.').unwrap();
            let signature = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature);
            (input.as_bytes().to_vec(), signature.unwrap())
        })
        .collect();
    let raw_proofs = |range: std::ops::Range<usize>| {
        let start = Instant::now();
        for (input, signature) in &proof_signatures[range] {
            proof_key.verify(black_box(input), black_box(signature)).unwrap();
        }
        start.elapsed()
    };
    let through = |app: &Router, pool: &[(String, Option<String>)]| {
        run_block(rt, app, pool.iter().map(|(a, p)| request(a, p.as_deref())).collect())
    };
    let plain = Router::new().route(PATH, get(|| async { "ok" }));
    let bearer_pool = vec![(format!("Bearer {}", f.bearer), None); PAIRED_BLOCK];
    let bearer_app = app(f);
    let (mut bearer, mut bearer_net, mut dpop, mut dpop_net) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut dpop_vs_parse, mut dpop_vs_proofs) = (Vec::new(), Vec::new());
    let txn_pool = vec![(format!("{TXN_PREFIX}{}", f.txn_token), None); PAIRED_BLOCK];
    let txn_app = txn_app(f);
    let (mut txn, mut txn_net) = (Vec::new(), Vec::new());
    let mut next = 0;
    let mut dpop_app = app(f);
    for _ in 0..PAIRED_ROUNDS {
        if next + PAIRED_BLOCK > dpop_pool.len() {
            next = 0;
            dpop_app = app(f);
        }
        let base = through(&plain, &bearer_pool).as_secs_f64();
        let one = raw(PAIRED_BLOCK).as_secs_f64();
        let b = through(&bearer_app, &bearer_pool).as_secs_f64();
        let two = raw(2 * PAIRED_BLOCK).as_secs_f64();
        let d = through(&dpop_app, &dpop_pool[next..next + PAIRED_BLOCK]).as_secs_f64();
        let parsed_one = raw_parse(PAIRED_BLOCK).as_secs_f64();
        let proofs_one = raw_proofs(next..next + PAIRED_BLOCK).as_secs_f64();
        next += PAIRED_BLOCK;
        bearer.push(b / one);
        bearer_net.push((b - base) / one);
        dpop.push(d / two);
        dpop_net.push((d - base) / two);
        dpop_vs_parse.push(d / (one + parsed_one));
        dpop_vs_proofs.push(d / (one + proofs_one));
        let t = through(&txn_app, &txn_pool).as_secs_f64();
        let one_again = raw(PAIRED_BLOCK).as_secs_f64();
        txn.push(t / one_again);
        txn_net.push((t - base) / one_again);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "paired ({PAIRED_ROUNDS} rounds of {PAIRED_BLOCK}): bearer/raw = {:.3} (net of baseline {:.3}); \
         dpop/(2 raw) = {:.3} (net {:.3}); dpop/(raw + parse-and-verify) = {:.3}; \
         dpop/(raw + raw of its proofs) = {:.3}; \
         txn_token/raw = {:.3} (net {:.3})",
        median(&mut bearer),
        median(&mut bearer_net),
        median(&mut dpop),
        median(&mut dpop_net),
        median(&mut dpop_vs_parse),
        median(&mut dpop_vs_proofs),
        median(&mut txn),
        median(&mut txn_net)
    );
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = if std::env::args().any(|a| a == "--bench") {
        POOL
    } else {
        TEST_POOL
    };
    let f = fixture();
    raw(c, &f);
    let dpop_pool = layer(c, &rt, &f, pool);
    if pool == POOL {
        paired(&rt, &f, &dpop_pool);
    }
}

criterion_group! {
    name = oauth_resource;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(oauth_resource);
