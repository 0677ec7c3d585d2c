//! Verification cost: raw aws-lc-rs signature checks against Lanyard's full WIT, WIT+WPT
//! and JWT-SVID verification paths, measured in one binary and one run so the ratios in
//! `docs/benchmarks.md` compare like with like.
//!
//! Run with `cargo bench -p lanyard-crypto --bench verify`. Every benchmark id is
//! `<group>/<alg>/<what>`:
//!
//! - `raw/<alg>/verify`: one `UnparsedPublicKey::verify` over a WIT's signing input (the
//!   key is parsed on every call, as aws-lc-rs does for an unparsed key);
//!   `raw/<alg>/verify_parsed`: the same with a pre-parsed `ParsedPublicKey`;
//!   `raw/<alg>/verify_wpt_parsed`: a pre-parsed check over a WPT's (shorter) signing input.
//! - `wit/<alg>/verify`: `WitVerifier::verify` of one WIT, no cache.
//! - `wit_wpt/<alg>/verify`: `WptVerifier::verify` of a WIT+WPT pair, no WIT cache, with
//!   [`NoopReplayCache`] (defined below: it records nothing, so this measures the
//!   verification work alone).
//! - `wit_wpt_replay/<alg>/verify`: the same with the real `InMemoryReplayCache`.
//! - `wit_wpt_cached/<alg>/verify`: WIT cache warm (one WIT, many WPTs), no-op replay cache.
//! - `wit_wpt_cached_replay/<alg>/verify`: WIT cache warm, real `InMemoryReplayCache`.
//! - `jwt_svid/<alg>/verify`: `JwtSvidVerifier::verify` (ES256 and RS256; JWT-SVID
//!   forbids EdDSA).
//!
//! `now` is fixed, so no token expires during a run. Every WPT in a pool has its own
//! `jti`; the benchmarks with a real replay cache start a fresh cache (outside the timed
//! region) whenever the pool wraps around, so no iteration is ever a replay. Setup
//! asserts that every path verifies, and every timed call panics on an error, so a broken
//! benchmark cannot report fast failures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{self, ParsedPublicKey, UnparsedPublicKey, VerificationAlgorithm};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use lanyard_core::jose::CompactJws;
use lanyard_core::{
    Algorithm, Error, InMemoryReplayCache, JwtSvidIssuer, JwtSvidPolicy, JwtSvidVerifier, KeyUse, ProofTokens,
    ReplayCache, SigningKey, SpiffeId, TrustStore, UnixTime, WitIssuer, WitPolicy, WitVerifier, WorkloadId, WptParams,
    WptPolicy, WptVerifier, create_wpt,
};
use lanyard_crypto::{KeyPair, provider};

/// The fixed verification time.
const NOW: UnixTime = UnixTime(1_800_000_000);
/// The audience every WPT is made for.
const AUD: &str = "https://ledger.example.org/entries";
/// WPTs (distinct `jti`s) per algorithm.
const POOL: usize = 20_000;

/// BENCHMARK ONLY: a replay cache that records nothing and accepts every proof. It
/// isolates the verification work from the replay bookkeeping; never use it in a service.
#[derive(Debug)]
struct NoopReplayCache;

impl ReplayCache for NoopReplayCache {
    fn check_and_record(&self, _issuer: &str, _jti: &str, _expires_at: UnixTime, _now: UnixTime) -> Result<(), Error> {
        Ok(())
    }
}

fn verification_alg(alg: Algorithm) -> &'static dyn VerificationAlgorithm {
    match alg {
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::EdDSA => &signature::ED25519,
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        other => panic!("no raw benchmark for {other}"),
    }
}

fn b64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

/// The raw public key bytes aws-lc-rs takes: the uncompressed point (EC), the 32-byte key
/// (Ed25519), or the SubjectPublicKeyInfo DER (RSA).
fn raw_public_key(key: &KeyPair, alg: Algorithm) -> Vec<u8> {
    let jwk = key.public_jwk();
    match alg {
        Algorithm::ES256 => {
            let mut point = vec![4u8];
            point.extend(b64(jwk.x.as_deref().unwrap()));
            point.extend(b64(jwk.y.as_deref().unwrap()));
            point
        }
        Algorithm::EdDSA => b64(jwk.x.as_deref().unwrap()),
        _ => key.public_spki_der().unwrap(),
    }
}

/// A token's signing input and decoded signature.
fn split(token: &str) -> (Vec<u8>, Vec<u8>) {
    let jws = CompactJws::parse(token).unwrap();
    let sig = b64(token.rsplit('.').next().unwrap());
    (jws.signing_input().to_vec(), sig)
}

/// Everything one algorithm's WIT and WPT benchmarks need.
struct Fixture {
    alg: Algorithm,
    store: Arc<TrustStore>,
    wit: String,
    wpts: Vec<String>,
    issuer_raw: Vec<u8>,
    workload_raw: Vec<u8>,
}

fn fixture(alg: Algorithm) -> Fixture {
    let p = provider();
    let issuer_key = KeyPair::generate(alg).unwrap().with_kid("issuer-key-1");
    let workload_key = KeyPair::generate(alg).unwrap();
    let issuer_raw = raw_public_key(&issuer_key, alg);
    let workload_raw = raw_public_key(&workload_key, alg);

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
    let sub = WorkloadId::parse("spiffe://example.org/ns/prod/sa/billing").unwrap();
    let wit = issuer.issue(&sub, &workload_key.public_jwk(), NOW).unwrap();

    let params = WptParams {
        wit: &wit,
        audience: AUD,
        lifetime: 60,
        ..Default::default()
    };
    let wpts: Vec<String> = (0..POOL)
        .map(|_| create_wpt(&workload_key, &params, NOW, p.as_ref()).unwrap())
        .collect();
    let mut jtis: Vec<String> = wpts
        .iter()
        .map(|w| {
            CompactJws::parse(w).unwrap().claims().unwrap()["jti"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    jtis.sort_unstable();
    jtis.dedup();
    assert_eq!(jtis.len(), POOL, "every WPT must have its own jti");

    Fixture {
        alg,
        store,
        wit,
        wpts,
        issuer_raw,
        workload_raw,
    }
}

fn wpt_verifier(f: &Fixture, cached: bool, replay: Arc<dyn ReplayCache>) -> WptVerifier {
    let mut wit = WitVerifier::new(Arc::clone(&f.store), WitPolicy::wimse());
    if cached {
        wit = wit.with_cache(1024);
    }
    WptVerifier::new(wit, WptPolicy::default(), replay)
}

fn real_replay_cache() -> Arc<dyn ReplayCache> {
    // Four times the pool, so no shard fills however the jtis spread over shards.
    Arc::new(InMemoryReplayCache::new(4 * POOL))
}

fn tokens<'a>(wit: &'a str, wpt: &'a str) -> ProofTokens<'a> {
    ProofTokens {
        wit,
        wpt,
        ..Default::default()
    }
}

/// Checks that every WPT of the pool verifies once with a real replay cache (and that a
/// second presentation is refused), so the timed loops measure successful verifications.
fn assert_pool_verifies(f: &Fixture) {
    let v = wpt_verifier(f, false, real_replay_cache());
    for wpt in &f.wpts {
        let proof = v.verify(&tokens(&f.wit, wpt), AUD, NOW).unwrap();
        assert_eq!(proof.wit.sub.as_str(), "spiffe://example.org/ns/prod/sa/billing");
    }
    let again = v.verify(&tokens(&f.wit, &f.wpts[0]), AUD, NOW).unwrap_err();
    assert_eq!(again.kind(), "replay");
}

fn bench_raw(c: &mut Criterion, f: &Fixture) {
    let name = f.alg.as_str();
    let (wit_msg, wit_sig) = split(&f.wit);
    let (wpt_msg, wpt_sig) = split(&f.wpts[0]);
    let alg = verification_alg(f.alg);
    let parsed_issuer = ParsedPublicKey::new(alg, &f.issuer_raw).unwrap();
    let parsed_workload = ParsedPublicKey::new(alg, &f.workload_raw).unwrap();
    UnparsedPublicKey::new(alg, &f.issuer_raw)
        .verify(&wit_msg, &wit_sig)
        .unwrap();
    parsed_issuer.verify_sig(&wit_msg, &wit_sig).unwrap();
    parsed_workload.verify_sig(&wpt_msg, &wpt_sig).unwrap();

    let mut g = c.benchmark_group("raw");
    g.bench_function(format!("{name}/verify"), |b| {
        b.iter(|| {
            UnparsedPublicKey::new(alg, black_box(f.issuer_raw.as_slice()))
                .verify(black_box(&wit_msg), black_box(&wit_sig))
                .unwrap();
        });
    });
    g.bench_function(format!("{name}/verify_parsed"), |b| {
        b.iter(|| {
            parsed_issuer
                .verify_sig(black_box(&wit_msg), black_box(&wit_sig))
                .unwrap();
        });
    });
    g.bench_function(format!("{name}/verify_wpt_parsed"), |b| {
        b.iter(|| {
            parsed_workload
                .verify_sig(black_box(&wpt_msg), black_box(&wpt_sig))
                .unwrap();
        });
    });
    g.finish();
}

fn bench_wit(c: &mut Criterion, f: &Fixture) {
    let v = WitVerifier::new(Arc::clone(&f.store), WitPolicy::wimse());
    v.verify(&f.wit, NOW).unwrap();
    c.benchmark_group("wit")
        .bench_function(format!("{}/verify", f.alg.as_str()), |b| {
            b.iter(|| v.verify(black_box(&f.wit), NOW).unwrap());
        });
}

/// Times `WptVerifier::verify` over the pool. `make` builds the verifier; with a real
/// replay cache (`fresh_on_wrap`) a new one is built, untimed, each time the pool wraps.
fn bench_pair(c: &mut Criterion, f: &Fixture, group: &str, make: &dyn Fn() -> WptVerifier, fresh_on_wrap: bool) {
    // Verifies the WIT once: warms the WIT cache, if the verifier has one.
    let warm = |v: &WptVerifier| {
        v.wit_verifier().verify(&f.wit, NOW).unwrap();
    };
    let mut v = make();
    warm(&v);
    let mut next = 0usize;
    c.benchmark_group(group)
        .bench_function(format!("{}/verify", f.alg.as_str()), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    if next == f.wpts.len() {
                        next = 0;
                        if fresh_on_wrap {
                            v = make();
                            warm(&v);
                        }
                    }
                    let chunk = left.min((f.wpts.len() - next) as u64) as usize;
                    let wpts = &f.wpts[next..next + chunk];
                    let start = Instant::now();
                    for wpt in wpts {
                        black_box(v.verify(&tokens(&f.wit, black_box(wpt)), AUD, NOW).unwrap());
                    }
                    total += start.elapsed();
                    next += chunk;
                    left -= chunk as u64;
                }
                total
            });
        });
}

fn bench_wit_wpt(c: &mut Criterion, f: &Fixture) {
    assert_pool_verifies(f);
    let noop = || -> Arc<dyn ReplayCache> { Arc::new(NoopReplayCache) };
    bench_pair(c, f, "wit_wpt", &|| wpt_verifier(f, false, noop()), false);
    bench_pair(
        c,
        f,
        "wit_wpt_replay",
        &|| wpt_verifier(f, false, real_replay_cache()),
        true,
    );
    bench_pair(c, f, "wit_wpt_cached", &|| wpt_verifier(f, true, noop()), false);
    bench_pair(
        c,
        f,
        "wit_wpt_cached_replay",
        &|| wpt_verifier(f, true, real_replay_cache()),
        true,
    );
}

fn bench_jwt_svid(c: &mut Criterion, alg: Algorithm) {
    let p = provider();
    let key = KeyPair::generate(alg).unwrap().with_kid("jwt-key-1");
    let store = Arc::new(TrustStore::new(p));
    store
        .add_key("example.org", KeyUse::JwtSvid, &key.public_jwk())
        .unwrap();
    let key: Arc<dyn SigningKey> = Arc::new(key);
    let issuer = JwtSvidIssuer::new(key, "jwt-key-1", Some("https://issuer.example.org".into())).unwrap();
    let sub = SpiffeId::parse("spiffe://example.org/ns/prod/sa/billing").unwrap();
    let token = issuer.issue(&sub, AUD, NOW, 300).unwrap();
    let v = JwtSvidVerifier::new(store, JwtSvidPolicy::default());
    assert_eq!(v.verify(&token, AUD, NOW).unwrap().sub.as_str(), sub.as_str());
    c.benchmark_group("jwt_svid")
        .bench_function(format!("{}/verify", alg.as_str()), |b| {
            b.iter(|| v.verify(black_box(&token), AUD, NOW).unwrap());
        });
}

fn bench_raw_rsa(c: &mut Criterion) {
    let key = KeyPair::generate(Algorithm::RS256).unwrap();
    let spki = key.public_spki_der().unwrap();
    let msg = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9yZy9ucy9wcm9kL3NhL2JpbGxpbmcifQ";
    let sig = key.sign(msg).unwrap();
    let alg = verification_alg(Algorithm::RS256);
    let parsed = ParsedPublicKey::new(alg, &spki).unwrap();
    UnparsedPublicKey::new(alg, &spki).verify(msg, &sig).unwrap();
    let mut g = c.benchmark_group("raw");
    g.bench_function("RS256/verify", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(alg, black_box(spki.as_slice()))
                .verify(black_box(msg), black_box(&sig))
                .unwrap();
        });
    });
    g.bench_function("RS256/verify_parsed", |b| {
        b.iter(|| parsed.verify_sig(black_box(msg), black_box(&sig)).unwrap());
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    for alg in [Algorithm::ES256, Algorithm::EdDSA] {
        let f = fixture(alg);
        bench_raw(c, &f);
        bench_wit(c, &f);
        bench_wit_wpt(c, &f);
    }
    bench_raw_rsa(c);
    bench_jwt_svid(c, Algorithm::ES256);
    bench_jwt_svid(c, Algorithm::RS256);
}

criterion_group!(verify, benches);
criterion_main!(verify);
