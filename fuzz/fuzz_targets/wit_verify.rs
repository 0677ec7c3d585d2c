//! `WitVerifier::verify` and `WptVerifier::verify` against a fixed trust store: one ES256
//! issuer key, generated at start-up (kid `fuzz-issuer`) and trusted for `example.org`.
//!
//! The input is split at 0xff bytes into segments `A 0xff B 0xff H 0xff R`:
//!
//! 1. Raw mode (what an attacker controls): the whole input, and `A` as the WIT with `B` as
//!    the WPT, are verified. Nobody but us holds the issuer key, so these must return an
//!    error (an `Ok` would be a signature bypass) and must never panic.
//! 2. Signed mode (to get past the signature check): `A` is used as the raw payload of a
//!    WIT that this harness signs with the issuer key (header: `H` if non-empty, else
//!    `{"alg":"ES256","kid":"fuzz-issuer","typ":"wit+jwt"}`), and `B` as the raw payload of
//!    a WPT signed with the `workload-es256` key of testdata/vectors/keys.json
//!    (header `{"alg":"ES256","typ":"wpt+jwt"}`). Before signing, the placeholders `$WTH`,
//!    `$ATH` and `$TTH` in `B` are replaced by the hashes of the signed WIT, the access
//!    token and the Txn-Token. `R` lists the request's tokens, one per line: access token,
//!    Txn-Token, then `name:value` context headers. Results may be `Ok` here; an `Ok`
//!    must satisfy the documented guarantees (and a replayed proof must be refused).
#![no_main]

use std::sync::{Arc, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lanyard_core::{
    Algorithm, CryptoProvider, InMemoryReplayCache, Jwk, KeyUse, ProofTokens, SigningKey, TrustStore, UnixTime,
    WitPolicy, WitVerifier, WptPolicy, WptVerifier,
};
use libfuzzer_sys::fuzz_target;

const NOW: UnixTime = UnixTime(1_800_000_000);
const TRUST_DOMAIN: &str = "example.org";
const ISSUER_KID: &str = "fuzz-issuer";
const AUDIENCE: &str = "https://svc.example.org/path";
const WIT_HEADER: &[u8] = br#"{"alg":"ES256","kid":"fuzz-issuer","typ":"wit+jwt"}"#;
const WPT_HEADER: &[u8] = br#"{"alg":"ES256","typ":"wpt+jwt"}"#;
const KEYS_JSON: &str = include_str!("../../testdata/vectors/keys.json");

struct Fixture {
    provider: Arc<dyn CryptoProvider>,
    store: Arc<TrustStore>,
    issuer: Arc<dyn SigningKey>,
    workload: Arc<dyn SigningKey>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let provider = lanyard_crypto::provider();
        let issuer = provider.generate_key(Algorithm::ES256).expect("generate issuer key");
        let mut issuer_jwk = issuer.public_jwk();
        issuer_jwk.kid = Some(ISSUER_KID.to_owned());
        let store = Arc::new(TrustStore::new(provider.clone()));
        store
            .add_key(TRUST_DOMAIN, KeyUse::WitSvid, &issuer_jwk)
            .expect("trust issuer key");
        let keys: serde_json::Value = serde_json::from_str(KEYS_JSON).expect("keys.json");
        let workload_jwk = Jwk::from_json(keys["workload-es256"].to_string().as_bytes()).expect("workload-es256");
        let workload = provider.signing_key(&workload_jwk).expect("workload signing key");
        Fixture {
            provider,
            store,
            issuer,
            workload,
        }
    })
}

fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

fn sign(key: &dyn SigningKey, header: &[u8], payload: &[u8]) -> String {
    let mut token = format!("{}.{}", b64(header), b64(payload));
    let sig = key.sign(token.as_bytes()).expect("sign");
    token.push('.');
    token.push_str(&b64(&sig));
    token
}

fn hash(provider: &dyn CryptoProvider, s: &str) -> String {
    b64(&provider.sha256(s.as_bytes()))
}

fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

fn touch(e: &lanyard_core::Error) {
    let _ = (e.to_string(), e.kind());
}

fn wpt_verifier(f: &Fixture, policy: WitPolicy) -> WptVerifier {
    WptVerifier::new(
        WitVerifier::new(f.store.clone(), policy),
        WptPolicy::default(),
        Arc::new(InMemoryReplayCache::new(64)),
    )
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let mut segments = data.split(|b| *b == 0xff);
    let a = segments.next().unwrap_or_default();
    let b = segments.next().unwrap_or_default();
    let h = segments.next().unwrap_or_default();
    let r = segments.next().unwrap_or_default();

    // 1. Raw mode: forged tokens never verify.
    let whole = String::from_utf8_lossy(data);
    let wit = String::from_utf8_lossy(a);
    let wpt = String::from_utf8_lossy(b);
    for policy in [WitPolicy::wimse(), WitPolicy::wit_svid()] {
        let verifier = WitVerifier::new(f.store.clone(), policy);
        for token in [&*whole, &*wit] {
            match verifier.verify(token, NOW) {
                Ok(v) => panic!("forged WIT verified: {v:?}"),
                Err(e) => touch(&e),
            }
        }
        let tokens = ProofTokens {
            wit: &wit,
            wpt: &wpt,
            ..Default::default()
        };
        match wpt_verifier(f, policy).verify(&tokens, AUDIENCE, NOW) {
            Ok(p) => panic!("forged WIT/WPT verified: {p:?}"),
            Err(e) => touch(&e),
        }
    }

    // 2. Signed mode: real signatures over fuzzed headers and claims.
    let header = if h.is_empty() { WIT_HEADER } else { h };
    let signed_wit = sign(f.issuer.as_ref(), header, a);

    let request = String::from_utf8_lossy(r);
    let mut lines = request.split('\n');
    let access_token = lines.next().filter(|s| !s.is_empty());
    let txn_token = lines.next().filter(|s| !s.is_empty());
    let others: Vec<(&str, &str)> = lines.take(4).filter_map(|l| l.split_once(':')).collect();

    let provider = f.provider.as_ref();
    let mut wpt_payload = replace(b, b"$WTH", hash(provider, &signed_wit).as_bytes());
    if let Some(t) = access_token {
        wpt_payload = replace(&wpt_payload, b"$ATH", hash(provider, t).as_bytes());
    }
    if let Some(t) = txn_token {
        wpt_payload = replace(&wpt_payload, b"$TTH", hash(provider, t).as_bytes());
    }
    let signed_wpt = sign(f.workload.as_ref(), WPT_HEADER, &wpt_payload);

    for policy in [WitPolicy::wimse(), WitPolicy::wit_svid()] {
        // Verify the WIT twice through a cache: the hit must agree with the miss.
        let cached = WitVerifier::new(f.store.clone(), policy).with_cache(16);
        let first = cached.verify(&signed_wit, NOW);
        let second = cached.verify(&signed_wit, NOW);
        match (&first, &second) {
            (Ok(v1), Ok(v2)) => {
                assert!(Arc::ptr_eq(v1, v2), "second verify should be a cache hit");
                assert_eq!(v1.sub.trust_domain(), TRUST_DOMAIN, "only example.org is trusted");
                assert_eq!(v1.claims.get("sub").and_then(|s| s.as_str()), Some(v1.sub.as_str()));
                assert!(NOW.as_secs() <= v1.exp.as_secs().saturating_add(policy.leeway));
                // cnf.jwk "contains private key material" rejects: any private member, not only `d`.
                let k = &v1.cnf_jwk;
                let private = [("d", &k.d), ("p", &k.p), ("q", &k.q), ("dp", &k.dp), ("dq", &k.dq), ("qi", &k.qi)];
                for (name, member) in private {
                    assert!(member.is_none(), "WIT accepted a cnf.jwk with private member {name:?}");
                }
                assert_eq!(v1.cnf_jwk.alg.as_deref(), Some(v1.pop_algorithm().as_str()));
                assert!(policy.pop_algorithms.contains(v1.pop_algorithm()));
                assert_eq!(v1.wth(), hash(provider, &signed_wit));
                let _ = format!("{v1:?}");
            }
            (Err(e1), Err(e2)) => {
                assert_eq!(e1, e2);
                touch(e1);
            }
            _ => panic!("cache changed the result: {first:?} vs {second:?}"),
        }

        let tokens = ProofTokens {
            wit: &signed_wit,
            wpt: &signed_wpt,
            access_token,
            txn_token,
            other_tokens: &others,
        };
        // Through the same (cached) WIT verifier: the WIT part is a cache hit or the same error.
        // Both rule sets: wpt-02 (the default) and wpt-01 (the compatibility switch).
        for accept_wpt01 in [false, true] {
            let verifier = WptVerifier::new(
                cached.clone(),
                WptPolicy { accept_wpt01, ..WptPolicy::default() },
                Arc::new(InMemoryReplayCache::new(64)),
            );
            match verifier.verify(&tokens, AUDIENCE, NOW) {
                Ok(proof) => {
                    assert!(first.is_ok(), "WPT verified with a WIT that does not");
                    assert!(proof.wpt.aud.iter().any(|a| a == AUDIENCE));
                    assert!(!proof.wpt.jti.is_empty());
                    assert_eq!(proof.wit.sub.trust_domain(), TRUST_DOMAIN);
                    if !accept_wpt01 {
                        // wpt-02: no access token beside the proof, no ath inside it.
                        assert!(access_token.is_none(), "wpt-02 accepted an access token");
                        assert!(!wpt_payload.windows(5).any(|w| w == b"\"ath\""), "wpt-02 accepted ath");
                    }
                    // The same proof again is a replay.
                    match verifier.verify(&tokens, AUDIENCE, NOW) {
                        Err(e) if e.kind() == "replay" => {}
                        other => panic!("replayed WPT not refused: {other:?}"),
                    }
                }
                Err(e) => touch(&e),
            }
        }
    }
});
