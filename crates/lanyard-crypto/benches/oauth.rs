//! OAuth costs: Lanyard's `private_key_jwt` verification, RFC 9068 access-token issuance
//! and verification, and DPoP proof verification, next to the raw aws-lc-rs signature
//! operations they cannot avoid, in one binary and one run (`docs/benchmarks.md`, OAuth).
//!
//! Run with `cargo bench -p lanyard-crypto --bench oauth`. Ids are `<group>/<alg>/<what>`:
//!
//! - `oauth_raw/<alg>/verify`: one `UnparsedPublicKey::verify` over an access token's
//!   signing input (the key parsed on every call); `oauth_raw/<alg>/verify_parsed`: with a
//!   pre-parsed key (what Lanyard holds for registered and AS keys);
//!   `oauth_raw/<alg>/sign`: one aws-lc-rs signature over the same input.
//! - `private_key_jwt/<alg>/verify`: `PrivateKeyJwtVerifier::verify` of one assertion
//!   against a client's two registered keys (selected by `kid`), no replay record;
//!   `private_key_jwt_replay/<alg>/verify`: the same plus `record` in an
//!   `InMemoryReplayCache`, over a pool of assertions with distinct `jti`s (a fresh cache,
//!   built untimed, whenever the pool wraps, so no iteration is a replay).
//! - `access_token/<alg>/issue`: `issue_access_token` (claims with `scope`, `cnf.jkt`, one
//!   `act`); `access_token/<alg>/verify`: `AccessTokenVerifier::verify` with the AS's two
//!   keys.
//! - `dpop/<alg>/verify`: `DpopVerifier::verify` of a resource-request proof (parse the
//!   header `jwk`, verify, `htm`/`htu`/`iat`/`ath`, RFC 7638 thumbprint), no replay record.
//! - `rs_bearer/<alg>/verify`: a resource server's work for a bearer token (verify the
//!   access token, check its scope and that no binding is required);
//!   `rs_dpop/<alg>/verify`: for a DPoP-bound token (verify the token and the proof, check
//!   `ath`, the scope and `cnf.jkt`). Compare with one and two `oauth_raw/<alg>/verify`.
//!
//! `now` is fixed; setup asserts every path succeeds and every timed call unwraps.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, Ed25519KeyPair, KeyPair as _, ParsedPublicKey, UnparsedPublicKey, VerificationAlgorithm,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use lanyard_core::jose::CompactJws;
use lanyard_core::oauth::{
    AccessTokenClaims, AccessTokenPolicy, AccessTokenVerifier, Actor, Audience, ClientAssertionParams,
    ClientAssertionPolicy, Confirmation, DpopNonce, DpopPolicy, DpopProofParams, DpopRequest, DpopVerifier,
    PresentedProof, PrivateKeyJwtVerifier, Scope, VerificationKeys, create_client_assertion, create_dpop_proof,
    issue_access_token,
};
use lanyard_core::{Algorithm, InMemoryReplayCache, JwkSet, SigningKey, UnixTime};
use lanyard_crypto::{KeyPair, provider};

const NOW: UnixTime = UnixTime(1_800_000_000);
const ISSUER: &str = "https://as.example.org";
const RS: &str = "https://ledger.example.org";
const RESOURCE_URI: &str = "https://ledger.example.org/entries";
const CLIENT: &str = "billing";
/// Assertions (distinct `jti`s) in the replay benchmark's pool.
const POOL: usize = 20_000;

/// One raw aws-lc-rs signature over a message.
type RawSign = dyn Fn(&[u8]) -> Vec<u8>;

fn b64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

/// The raw public key aws-lc-rs takes: the uncompressed point (EC) or the 32-byte key.
fn raw_public_key(key: &KeyPair) -> Vec<u8> {
    let jwk = key.public_jwk();
    match jwk.kty.as_str() {
        "EC" => {
            let mut point = vec![4u8];
            point.extend(b64(jwk.x.as_deref().unwrap()));
            point.extend(b64(jwk.y.as_deref().unwrap()));
            point
        }
        _ => b64(jwk.x.as_deref().unwrap()),
    }
}

fn split(token: &str) -> (Vec<u8>, Vec<u8>) {
    let jws = CompactJws::parse(token).unwrap();
    (jws.signing_input().to_vec(), b64(token.rsplit('.').next().unwrap()))
}

fn keys(owner: &str, jwks: Vec<lanyard_core::Jwk>) -> VerificationKeys {
    VerificationKeys::from_jwks(provider().as_ref(), owner, &JwkSet { keys: jwks }).unwrap()
}

fn claims(jkt: &str) -> AccessTokenClaims {
    AccessTokenClaims {
        iss: ISSUER.into(),
        sub: CLIENT.into(),
        aud: Audience::one(RS),
        client_id: CLIENT.into(),
        scope: Some(Scope::parse("entries:read entries:write").unwrap()),
        iat: NOW,
        exp: NOW.plus(300),
        nbf: None,
        jti: "0123456789abcdef0123456789abcdef".into(),
        cnf: Some(Confirmation::dpop(jkt)),
        act: Some(Actor::new("spiffe://example.org/agent")),
        extra: Default::default(),
    }
}

/// Times `op` over `pool`, one element per iteration; `reset` runs untimed before the first
/// element and each time the pool wraps.
fn over_pool<T>(b: &mut criterion::Bencher<'_>, pool: &[T], mut reset: impl FnMut(), mut op: impl FnMut(&T)) {
    reset();
    let mut next = 0usize;
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            if next == pool.len() {
                next = 0;
                reset();
            }
            let chunk = left.min((pool.len() - next) as u64) as usize;
            let start = Instant::now();
            for item in &pool[next..next + chunk] {
                op(item);
            }
            total += start.elapsed();
            next += chunk;
            left -= chunk as u64;
        }
        total
    });
}

fn bench_alg(c: &mut Criterion, alg: Algorithm) {
    let p = provider();
    let name = alg.as_str();
    let as_key = KeyPair::generate(alg).unwrap().with_kid("as-2");
    let as_keys = keys(
        ISSUER,
        vec![
            KeyPair::generate(alg).unwrap().with_kid("as-1").public_jwk(),
            as_key.public_jwk(),
        ],
    );
    let client_key = KeyPair::generate(alg).unwrap().with_kid("client-2");
    let client_keys = keys(
        CLIENT,
        vec![
            KeyPair::generate(alg).unwrap().with_kid("client-1").public_jwk(),
            client_key.public_jwk(),
        ],
    );
    let dpop_key = KeyPair::generate(alg).unwrap();
    let jkt = dpop_key.public_jwk().thumbprint(p.as_ref()).unwrap();
    let token_claims = claims(&jkt);
    let token = issue_access_token(&as_key, "as-2", &token_claims).unwrap();

    // Raw operations over the access token's signing input.
    let (msg, sig) = split(&token);
    let raw = raw_public_key(&as_key);
    let pkcs8 = as_key.to_pkcs8_der().unwrap();
    let rng = SystemRandom::new();
    let (verify_alg, sign): (&'static dyn VerificationAlgorithm, Box<RawSign>) = match alg {
        Algorithm::ES256 => {
            let pair =
                signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8).unwrap();
            assert_eq!(pair.public_key().as_ref(), raw.as_slice());
            (
                &signature::ECDSA_P256_SHA256_FIXED,
                Box::new(move |m: &[u8]| pair.sign(&rng, m).unwrap().as_ref().to_vec()),
            )
        }
        Algorithm::EdDSA => {
            let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
            (
                &signature::ED25519,
                Box::new(move |m: &[u8]| pair.sign(m).as_ref().to_vec()),
            )
        }
        other => panic!("no raw benchmark for {other}"),
    };
    let parsed = ParsedPublicKey::new(verify_alg, &raw).unwrap();
    UnparsedPublicKey::new(verify_alg, &raw).verify(&msg, &sig).unwrap();
    UnparsedPublicKey::new(verify_alg, &raw)
        .verify(&msg, &sign(&msg))
        .unwrap();
    let mut g = c.benchmark_group("oauth_raw");
    g.bench_function(format!("{name}/verify"), |b| {
        b.iter(|| {
            UnparsedPublicKey::new(verify_alg, black_box(raw.as_slice()))
                .verify(black_box(&msg), black_box(&sig))
                .unwrap();
        });
    });
    g.bench_function(format!("{name}/verify_parsed"), |b| {
        b.iter(|| parsed.verify_sig(black_box(&msg), black_box(&sig)).unwrap());
    });
    g.bench_function(format!("{name}/sign"), |b| b.iter(|| black_box(sign(black_box(&msg)))));
    g.finish();

    // private_key_jwt.
    let pkj = PrivateKeyJwtVerifier::new(ISSUER, ClientAssertionPolicy::default());
    let params = ClientAssertionParams::new(CLIENT, ISSUER);
    let assertions: Vec<String> = (0..POOL)
        .map(|_| create_client_assertion(&client_key, &params, NOW, p.as_ref()).unwrap())
        .collect();
    let check = InMemoryReplayCache::new(4 * POOL);
    for a in &assertions {
        pkj.verify(a, CLIENT, &client_keys, NOW)
            .unwrap()
            .record(&check, NOW)
            .unwrap();
    }
    let again = pkj.verify(&assertions[0], CLIENT, &client_keys, NOW).unwrap();
    assert_eq!(again.record(&check, NOW).unwrap_err().kind(), "replay");
    c.benchmark_group("private_key_jwt")
        .bench_function(format!("{name}/verify"), |b| {
            b.iter(|| {
                pkj.verify(black_box(&assertions[0]), CLIENT, &client_keys, NOW)
                    .unwrap()
            });
        });
    let cache = std::cell::RefCell::new(InMemoryReplayCache::new(4 * POOL));
    c.benchmark_group("private_key_jwt_replay")
        .bench_function(format!("{name}/verify"), |b| {
            over_pool(
                b,
                &assertions,
                || *cache.borrow_mut() = InMemoryReplayCache::new(4 * POOL),
                |a| {
                    pkj.verify(black_box(a), CLIENT, &client_keys, NOW)
                        .unwrap()
                        .record(&*cache.borrow(), NOW)
                        .unwrap();
                },
            );
        });

    // Access tokens.
    let at_verifier = AccessTokenVerifier::new(AccessTokenPolicy::new(ISSUER, RS));
    assert_eq!(at_verifier.verify(&token, &as_keys, NOW).unwrap().claims, token_claims);
    let mut g = c.benchmark_group("access_token");
    g.bench_function(format!("{name}/issue"), |b| {
        b.iter(|| issue_access_token(&as_key, "as-2", black_box(&token_claims)).unwrap());
    });
    g.bench_function(format!("{name}/verify"), |b| {
        b.iter(|| at_verifier.verify(black_box(&token), &as_keys, NOW).unwrap());
    });
    g.finish();

    // DPoP at a resource, and the resource server's whole check.
    let proof = create_dpop_proof(
        &dpop_key,
        &DpopProofParams {
            method: "GET",
            uri: RESOURCE_URI,
            access_token: Some(&token),
            nonce: None,
        },
        NOW,
        p.as_ref(),
    )
    .unwrap();
    let dpop = DpopVerifier::new(p.clone(), DpopPolicy::default());
    let request = DpopRequest {
        method: "GET",
        uri: RESOURCE_URI,
        access_token: Some(&token),
        nonce: DpopNonce::NotRequired,
    };
    assert_eq!(dpop.verify(&proof, &request, NOW).unwrap().jkt, jkt);
    c.benchmark_group("dpop").bench_function(format!("{name}/verify"), |b| {
        b.iter(|| dpop.verify(black_box(&proof), &request, NOW).unwrap());
    });

    let required = Scope::parse("entries:read").unwrap();
    let bearer_claims = AccessTokenClaims {
        cnf: None,
        ..token_claims.clone()
    };
    let bearer = issue_access_token(&as_key, "as-2", &bearer_claims).unwrap();
    let rs_bearer = |t: &str| {
        let at = at_verifier.verify(t, &as_keys, NOW).unwrap();
        at.require_scope(&required).unwrap();
        at.check_binding(&PresentedProof::default(), p.as_ref()).unwrap();
    };
    let rs_dpop = |t: &str, proof: &str| {
        let at = at_verifier.verify(t, &as_keys, NOW).unwrap();
        let request = DpopRequest {
            method: "GET",
            uri: RESOURCE_URI,
            access_token: Some(t),
            nonce: DpopNonce::NotRequired,
        };
        let verified = dpop.verify(proof, &request, NOW).unwrap();
        at.require_scope(&required).unwrap();
        at.check_binding(
            &PresentedProof {
                dpop_jkt: Some(&verified.jkt),
                client_certificate: None,
            },
            p.as_ref(),
        )
        .unwrap();
    };
    rs_bearer(&bearer);
    rs_dpop(&token, &proof);
    let mut g = c.benchmark_group("rs_bearer");
    g.bench_function(format!("{name}/verify"), |b| b.iter(|| rs_bearer(black_box(&bearer))));
    g.finish();
    let mut g = c.benchmark_group("rs_dpop");
    g.bench_function(format!("{name}/verify"), |b| {
        b.iter(|| rs_dpop(black_box(&token), black_box(&proof)));
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    for alg in [Algorithm::ES256, Algorithm::EdDSA] {
        bench_alg(c, alg);
    }
}

criterion_group!(oauth, benches);
criterion_main!(oauth);
