//! Issue → verify round trips, the verified-WIT cache under key rotation, replay
//! protection at the edges of the validity window, and HTTP carriage end to end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use lanyard_core::jose::decode_unverified;
use lanyard_core::wimse::{CarriageConfig, WptCarriage, extract_credentials, proof_headers};
use lanyard_core::{
    Algorithm, CryptoProvider, Error, IdErrorKind, InMemoryReplayCache, Jwk, JwtSvidIssuer, JwtSvidPolicy,
    JwtSvidVerifier, KeyUse, ProofTokens, SigningKey, SpiffeBundle, SpiffeId, TrustDomain, TrustStore, UnixTime,
    WitClaims, WitIssuer, WitPolicy, WitVerifier, WorkloadId, WptParams, WptPolicy, WptVerifier, create_wpt, issue_wit,
};
use lanyard_crypto::KeyPair;
use lanyard_testing::{NOW, WitWorld};

const TD: &str = "example.org";

struct World {
    provider: Arc<dyn CryptoProvider>,
    store: Arc<TrustStore>,
    issuer: Arc<KeyPair>,
    workload: Arc<dyn SigningKey>,
}

fn world(alg: Algorithm) -> World {
    let trust_domain = WitWorld::new(TD, alg, Some("issuer-1"));
    let workload = trust_domain.provider.generate_key(alg).unwrap();
    World {
        provider: trust_domain.provider,
        store: trust_domain.store,
        issuer: trust_domain.issuer_key,
        workload,
    }
}

fn sub() -> WorkloadId {
    WorkloadId::parse("spiffe://example.org/web").unwrap()
}

impl World {
    fn wit(&self, ttl: u64) -> String {
        WitIssuer::new(
            self.provider.clone(),
            self.issuer.clone(),
            Some("issuer-1".into()),
            Some("https://issuer.example.org".into()),
            ttl,
        )
        .issue(&sub(), &self.workload.public_jwk(), NOW)
        .unwrap()
    }

    fn wpt(&self, wit: &str, aud: &str, lifetime: u64, at: UnixTime) -> String {
        let params = WptParams {
            wit,
            audience: aud,
            lifetime,
            ..Default::default()
        };
        create_wpt(self.workload.as_ref(), &params, at, self.provider.as_ref()).unwrap()
    }
}

#[test]
fn every_algorithm_issues_and_verifies() {
    for alg in Algorithm::ALL {
        let w = world(alg);
        let wit = w.wit(3600);
        let verified = WitVerifier::new(w.store.clone(), WitPolicy::wimse())
            .verify(&wit, NOW)
            .unwrap();
        assert_eq!(verified.sub, sub());
        assert_eq!(verified.pop_algorithm(), alg);
        assert_eq!(verified.iss.as_deref(), Some("https://issuer.example.org"));
        assert!(verified.jti.is_some());

        let aud = "https://api.example.org/x";
        let wpt = w.wpt(&wit, aud, 60, NOW);
        let verifier = WptVerifier::new(
            WitVerifier::new(w.store.clone(), WitPolicy::wimse()),
            WptPolicy::default(),
            Arc::new(InMemoryReplayCache::new(64)),
        );
        let tokens = ProofTokens {
            wit: &wit,
            wpt: &wpt,
            ..Default::default()
        };
        verifier.verify(&tokens, aud, NOW).unwrap();
        assert_eq!(
            verifier.verify(&tokens, aud, NOW).unwrap_err().kind(),
            "replay",
            "{alg}"
        );
    }
}

#[test]
fn wit_svid_profile_excludes_eddsa_and_wimse_subjects() {
    let w = world(Algorithm::EdDSA);
    let wit = w.wit(3600);
    let err = WitVerifier::new(w.store.clone(), WitPolicy::wit_svid())
        .verify(&wit, NOW)
        .unwrap_err();
    assert_eq!(err.kind(), "alg_not_allowed");

    let w = world(Algorithm::ES256);
    let wimse_sub = WorkloadId::parse("wimse://example.org/web").unwrap();
    let wit = WitIssuer::new(w.provider.clone(), w.issuer.clone(), Some("issuer-1".into()), None, 600)
        .issue(&wimse_sub, &w.workload.public_jwk(), NOW)
        .unwrap();
    let err = WitVerifier::new(w.store.clone(), WitPolicy::wit_svid())
        .verify(&wit, NOW)
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_identifier");
    WitVerifier::new(w.store, WitPolicy::wimse()).verify(&wit, NOW).unwrap();
}

#[test]
fn issuing_refuses_unsafe_claims() {
    let w = world(Algorithm::ES256);
    let private = KeyPair::generate(Algorithm::ES256).unwrap().private_jwk().unwrap();
    let claims = |cnf: Jwk| WitClaims {
        sub: sub(),
        cnf_jwk: cnf,
        iat: NOW,
        exp: NOW.plus(60),
        iss: None,
        jti: None,
    };
    // Never put a private key into a token.
    assert_eq!(
        issue_wit(w.issuer.as_ref(), None, &claims(private.clone()))
            .unwrap_err()
            .kind(),
        "invalid_claim"
    );
    // cnf.jwk.alg is mandatory.
    let no_alg = Jwk {
        alg: None,
        ..private.to_public()
    };
    assert_eq!(
        issue_wit(w.issuer.as_ref(), None, &claims(no_alg)).unwrap_err().kind(),
        "missing_claim"
    );
    // A WPT must be signed by the WIT's cnf key.
    let wit = w.wit(600);
    let other = KeyPair::generate(Algorithm::ES256).unwrap();
    let params = WptParams {
        wit: &wit,
        audience: "https://a.example/",
        lifetime: 60,
        ..Default::default()
    };
    assert_eq!(
        create_wpt(&other, &params, NOW, w.provider.as_ref())
            .unwrap_err()
            .kind(),
        "invalid_key"
    );
    let query = WptParams {
        audience: "https://a.example/?q=1",
        ..params
    };
    assert_eq!(
        create_wpt(w.workload.as_ref(), &query, NOW, w.provider.as_ref())
            .unwrap_err()
            .kind(),
        "invalid_claim"
    );
}

/// Issue 9, item 7: the maximum lifetime is the maximum (no leeway added), and creation
/// refuses what verification would refuse.
#[test]
fn lifetimes_are_capped_at_the_maximum_on_both_sides() {
    let w = world(Algorithm::ES256);
    let wit = w.wit(3600);
    let aud = "https://api.example.org/";
    let verifier = WptVerifier::new(
        WitVerifier::new(w.store.clone(), WitPolicy::wimse()),
        WptPolicy::default(),
        Arc::new(InMemoryReplayCache::new(64)),
    );
    // 300 s is created and accepted; 301 s is created by nobody.
    let at_max = w.wpt(&wit, aud, 300, NOW);
    let tokens = ProofTokens {
        wit: &wit,
        wpt: &at_max,
        ..Default::default()
    };
    verifier.verify(&tokens, aud, NOW).unwrap();
    let params = WptParams {
        wit: &wit,
        audience: aud,
        lifetime: 301,
        ..Default::default()
    };
    let err = create_wpt(w.workload.as_ref(), &params, NOW, w.provider.as_ref()).unwrap_err();
    assert_eq!(
        err,
        Error::LifetimeTooLong {
            token: "WPT",
            lifetime: 301,
            max: 300
        }
    );
    // A proof made elsewhere with 330 s (inside the old 300 s + 60 s leeway) is refused.
    let longer = w.wpt(&wit, aud, 30, NOW.plus(300));
    let tokens = ProofTokens {
        wit: &wit,
        wpt: &longer,
        ..Default::default()
    };
    assert_eq!(
        verifier.verify(&tokens, aud, NOW).unwrap_err().kind(),
        "lifetime_too_long"
    );
    // The WIT's 24 h likewise, at issuance.
    let day = WitIssuer::new(w.provider.clone(), w.issuer.clone(), None, None, 24 * 3600);
    day.issue(&sub(), &w.workload.public_jwk(), NOW).unwrap();
    let longer = WitIssuer::new(w.provider.clone(), w.issuer.clone(), None, None, 24 * 3600 + 1);
    assert_eq!(
        longer.issue(&sub(), &w.workload.public_jwk(), NOW).unwrap_err().kind(),
        "lifetime_too_long"
    );
}

/// Issue 9, item 10: a trust-domain ID is not a workload; it is refused as a WIT `sub` at
/// issuance and at verification, with the diagnostic that a workload ID needs a path.
#[test]
fn a_trust_domain_is_not_a_wit_subject() {
    let w = world(Algorithm::ES256);
    let td_id = WorkloadId::parse("spiffe://example.org").unwrap();
    let issuer = WitIssuer::new(w.provider.clone(), w.issuer.clone(), Some("issuer-1".into()), None, 600);
    let refused = issuer.issue(&td_id, &w.workload.public_jwk(), NOW).unwrap_err();
    let Error::InvalidIdentifier { context, source } = &refused else {
        panic!("{refused:?}")
    };
    assert_eq!((*context, source.kind), ("sub", IdErrorKind::EmptyPath));
    assert!(
        refused.to_string().contains("a workload identifier needs a path"),
        "{refused}"
    );

    // A token minted elsewhere: refused by both profiles, with the same diagnostic.
    let claims = serde_json::json!({
        "sub": "spiffe://example.org", "exp": NOW.plus(600).as_secs(), "iat": NOW.as_secs(),
        "cnf": {"jwk": w.workload.public_jwk()},
    });
    let wit = lanyard_core::jose::sign_compact(Some("wit+jwt"), Some("issuer-1"), &claims, w.issuer.as_ref()).unwrap();
    assert_eq!(decode_unverified(&wit).unwrap().claims["sub"], "spiffe://example.org");
    for policy in [WitPolicy::wimse(), WitPolicy::wit_svid()] {
        let err = WitVerifier::new(w.store.clone(), policy).verify(&wit, NOW).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidIdentifier { source, .. } if source.kind == IdErrorKind::EmptyPath),
            "{:?}: {err:?}",
            policy.profile
        );
        assert!(!err.to_string().contains("scheme"), "{err}");
    }
}

/// wpt-02: creation never binds an access token (no `ath`) unless asked for a wpt-01 proof,
/// and a default verifier refuses a proof that carries one or arrives beside one.
#[test]
fn wpt02_has_no_ath() {
    let w = world(Algorithm::EdDSA);
    let wit = w.wit(600);
    let aud = "https://api.example.org/";
    let params = WptParams {
        wit: &wit,
        audience: aud,
        lifetime: 60,
        access_token: Some("at-123"),
        ..Default::default()
    };
    assert_eq!(
        create_wpt(w.workload.as_ref(), &params, NOW, w.provider.as_ref())
            .unwrap_err()
            .kind(),
        "access_token_with_wpt"
    );
    let legacy = WptParams { wpt01: true, ..params };
    let wpt01 = create_wpt(w.workload.as_ref(), &legacy, NOW, w.provider.as_ref()).unwrap();
    assert!(decode_unverified(&wpt01).unwrap().claims.contains_key("ath"));
    let plain = w.wpt(&wit, aud, 60, NOW);
    assert!(!decode_unverified(&plain).unwrap().claims.contains_key("ath"));

    let verifier = |accept_wpt01| {
        WptVerifier::new(
            WitVerifier::new(w.store.clone(), WitPolicy::wimse()),
            WptPolicy {
                accept_wpt01,
                ..WptPolicy::default()
            },
            Arc::new(InMemoryReplayCache::new(64)),
        )
    };
    let with_token = ProofTokens {
        wit: &wit,
        wpt: &wpt01,
        access_token: Some("at-123"),
        ..Default::default()
    };
    let alone = ProofTokens {
        access_token: None,
        ..with_token
    };
    assert_eq!(
        verifier(false).verify(&with_token, aud, NOW).unwrap_err().kind(),
        "access_token_with_wpt"
    );
    assert_eq!(
        verifier(false).verify(&alone, aud, NOW).unwrap_err().kind(),
        "forbidden_claim"
    );
    // The wpt-01 switch keeps the old behaviour: ath must bind the token that came with it.
    verifier(true).verify(&with_token, aud, NOW).unwrap();
    assert_eq!(
        verifier(true).verify(&alone, aud, NOW).unwrap_err().kind(),
        "ath_mismatch"
    );
}

#[test]
fn cache_skips_the_signature_and_honours_rotation() {
    let w = world(Algorithm::ES256);
    let verifier = WitVerifier::new(w.store.clone(), WitPolicy::wimse()).with_cache(100);
    let wit = w.wit(600);
    let first = verifier.verify(&wit, NOW).unwrap();
    let second = verifier.verify(&wit, NOW.plus(10)).unwrap();
    assert!(
        Arc::ptr_eq(&first, &second),
        "second verification should be a cache hit"
    );
    assert_eq!(verifier.cache().unwrap().len(), 1);

    // Adding an unrelated key keeps the entry.
    let extra = KeyPair::generate(Algorithm::ES256).unwrap().with_kid("issuer-2");
    w.store.add_key(TD, KeyUse::WitSvid, &extra.public_jwk()).unwrap();
    assert!(Arc::ptr_eq(&first, &verifier.verify(&wit, NOW).unwrap()));

    // Removing an unrelated key advances the epoch, but the verifying key is still trusted.
    assert!(w.store.remove_key(TD, KeyUse::WitSvid, "issuer-2"));
    assert!(Arc::ptr_eq(&first, &verifier.verify(&wit, NOW).unwrap()));

    // Replacing the signing key under the same kid evicts what the old key verified.
    let replacement = KeyPair::generate(Algorithm::ES256).unwrap().with_kid("issuer-1");
    w.store.add_key(TD, KeyUse::WitSvid, &replacement.public_jwk()).unwrap();
    assert_eq!(verifier.verify(&wit, NOW).unwrap_err().kind(), "bad_signature");
    assert_eq!(verifier.cache().unwrap().len(), 0);

    // Removing the trust domain altogether: unknown key.
    let w = world(Algorithm::EdDSA);
    let verifier = WitVerifier::new(w.store.clone(), WitPolicy::wimse()).with_cache(100);
    let wit = w.wit(600);
    verifier.verify(&wit, NOW).unwrap();
    assert!(w.store.remove_trust_domain(TD));
    assert_eq!(verifier.verify(&wit, NOW).unwrap_err().kind(), "unknown_key");
}

#[test]
fn cache_expires_entries_and_stays_bounded() {
    let w = world(Algorithm::EdDSA);
    let verifier = WitVerifier::new(w.store.clone(), WitPolicy::wimse()).with_cache(16);
    let wit = w.wit(120);
    verifier.verify(&wit, NOW).unwrap();
    // Past exp + leeway the cached entry must not be served.
    assert_eq!(verifier.verify(&wit, NOW.plus(120 + 61)).unwrap_err().kind(), "expired");
    for _ in 0..100 {
        verifier.verify(&w.wit(600), NOW).unwrap();
    }
    assert!(verifier.cache().unwrap().len() <= 16);
}

#[test]
fn replay_is_refused_through_the_leeway_window() {
    let w = world(Algorithm::ES256);
    let wit = w.wit(3600);
    let aud = "https://api.example.org/";
    let wpt = w.wpt(&wit, aud, 30, NOW);
    let verifier = WptVerifier::new(
        WitVerifier::new(w.store.clone(), WitPolicy::wimse()),
        WptPolicy::default(),
        Arc::new(InMemoryReplayCache::new(64)),
    );
    let tokens = ProofTokens {
        wit: &wit,
        wpt: &wpt,
        ..Default::default()
    };
    verifier.verify(&tokens, aud, NOW).unwrap();
    // 30 s after exp the proof is still inside the 60 s leeway: it must be a replay, not accepted.
    assert_eq!(
        verifier.verify(&tokens, aud, NOW.plus(60)).unwrap_err().kind(),
        "replay"
    );
    assert_eq!(
        verifier.verify(&tokens, aud, NOW.plus(200)).unwrap_err().kind(),
        "expired"
    );
}

#[test]
fn http_carriage_round_trip() {
    let w = world(Algorithm::ES256);
    let wit = w.wit(600);
    let aud = "https://api.example.org/orders";
    let wpt = w.wpt(&wit, aud, 60, NOW);
    for (carriage, legacy) in [(WptCarriage::Authorization, false), (WptCarriage::LegacyHeader, true)] {
        let headers = proof_headers(&wit, &wpt, carriage);
        let found = extract_credentials(
            headers.iter().map(|(n, v)| (*n, v.as_bytes())),
            &CarriageConfig {
                accept_legacy_header: legacy,
            },
        )
        .unwrap();
        assert_eq!(
            (found.wit, found.wpt, found.carriage),
            (wit.as_str(), wpt.as_str(), carriage)
        );
    }
}

#[test]
fn jwt_svid_round_trip_and_bundle() {
    let provider = lanyard_crypto::provider();
    for alg in [Algorithm::ES256, Algorithm::RS256, Algorithm::PS256, Algorithm::ES384] {
        let key = Arc::new(KeyPair::generate(alg).unwrap().with_kid("jwt-1"));
        let mut bundle = SpiffeBundle::new(TrustDomain::parse(TD).unwrap());
        bundle.jwt_authorities.push(key.public_jwk());
        bundle.sequence = Some(1);
        let bundle = SpiffeBundle::parse(bundle.trust_domain.clone(), bundle.to_json().as_bytes()).unwrap();
        let store = Arc::new(TrustStore::new(provider.clone()));
        store.set_bundle(&bundle).unwrap();

        let issuer = JwtSvidIssuer::new(key.clone(), "jwt-1", None).unwrap();
        let id = SpiffeId::parse("spiffe://example.org/db").unwrap();
        let token = issuer.issue(&id, "spiffe://example.org/api", NOW, 300).unwrap();
        let verifier = JwtSvidVerifier::new(store.clone(), JwtSvidPolicy::default());
        let svid = verifier.verify(&token, "spiffe://example.org/api", NOW).unwrap();
        assert_eq!(svid.sub, id);
        assert_eq!(svid.aud, vec!["spiffe://example.org/api".to_owned()]);
        assert_eq!(
            verifier
                .verify(&token, "spiffe://example.org/other", NOW)
                .unwrap_err()
                .kind(),
            "wrong_audience"
        );
        // JWT keys are not WIT keys: a WIT verifier does not trust them.
        assert!(store.keys(TD, KeyUse::WitSvid).is_empty());
    }
    // JWT-SVIDs never use EdDSA.
    let ed = Arc::new(KeyPair::generate(Algorithm::EdDSA).unwrap());
    assert_eq!(JwtSvidIssuer::new(ed, "k", None).unwrap_err().kind(), "alg_not_allowed");
}
