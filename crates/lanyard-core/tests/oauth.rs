//! OAuth behaviour end to end with the real crypto provider: what a client creates, the
//! authorization server and a resource server accept, and the refusals that need keys
//! made on the spot (replays, bindings, rotations). The fixed-token negative cases live in
//! `testdata/vectors/oauth/` (run by `tests/vectors.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use lanyard_core::jose::{decode_unverified, sign_compact};
use lanyard_core::oauth::{
    AccessTokenClaims, AccessTokenPolicy, AccessTokenVerifier, ActiveToken, Actor, Audience, ClientAssertionParams,
    ClientAssertionPolicy, Confirmation, DpopNonce, DpopPolicy, DpopProofParams, DpopRequest, DpopVerifier,
    IntrospectionResponse, PresentedProof, PrivateKeyJwtVerifier, Scope, SpiffeAssertionPolicy,
    SpiffeAssertionVerifier, SpiffeIdPattern, VerificationKeys, access_token_hash, authorize_spiffe_id,
    certificate_thumbprint, create_client_assertion, create_dpop_proof, issue_access_token, unverified_client_id,
};
use lanyard_core::oauth::{
    AuthorizationGrantClaims, AuthorizationGrantPolicy, AuthorizationGrantVerifier, MAX_GRANT_LIFETIME,
    issue_authorization_grant,
};
use lanyard_core::oauth::{
    ClientAttestationPolicy, ClientAttestationPopParams, ClientAttestationVerifier, create_client_attestation_pop,
};
use lanyard_core::oauth::{
    ExchangeRules, MAX_TXN_TOKEN_LIFETIME, SubjectToken, TxnTokenClaims, TxnTokenPolicy, TxnTokenVerifier,
    decide_exchange, issue_txn_token,
};
use lanyard_core::{
    Algorithm, InMemoryReplayCache, Jwk, JwkSet, JwtSvidIssuer, KeyUse, SigningKey, SpiffeId, TrustStore,
};
use lanyard_crypto::KeyPair;
use lanyard_testing::{NOW, key, provider};
use serde_json::{Value, json};

const ISSUER: &str = "https://as.example.org";
const CLIENT: &str = "billing";
const RS: &str = "https://ledger.example.org";
const TOKEN_ENDPOINT: &str = "https://as.example.org/token";

fn keys_of(owner: &str, jwks: &[Jwk]) -> VerificationKeys {
    VerificationKeys::from_jwks(provider().as_ref(), owner, &JwkSet { keys: jwks.to_vec() }).unwrap()
}

fn header(token: &str) -> Value {
    let jws = lanyard_core::jose::CompactJws::parse(token).unwrap();
    Value::Object(jws.header().members.clone())
}

// ---------------------------------------------------------------------------------------
// private_key_jwt
// ---------------------------------------------------------------------------------------

#[test]
fn client_assertions_round_trip_in_every_algorithm() {
    let verifier = PrivateKeyJwtVerifier::new(ISSUER, ClientAssertionPolicy::default());
    for alg in Algorithm::ALL {
        let k = key(alg, &format!("client-{alg}"));
        let assertion = create_client_assertion(
            &k,
            &ClientAssertionParams::new(CLIENT, ISSUER),
            NOW,
            provider().as_ref(),
        )
        .unwrap();
        let h = header(&assertion);
        assert_eq!(h["typ"], json!("client-authentication+jwt"));
        assert_eq!(h["kid"], json!(format!("client-{alg}")));
        let claims = decode_unverified(&assertion).unwrap().claims;
        assert_eq!(claims["aud"], json!(ISSUER));
        assert_eq!(claims["exp"], json!(NOW.plus(60).as_secs()));
        // The client's set holds another key too, so the kid must select.
        let decoy = key(Algorithm::ES256, "decoy").public_jwk();
        let verified = verifier
            .verify(&assertion, CLIENT, &keys_of(CLIENT, &[decoy, k.public_jwk()]), NOW)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(verified.client_id, CLIENT);
        assert_eq!(verified.algorithm, alg);
        assert_eq!(verified.replay_until, NOW.plus(60 + 60));
        assert_eq!(unverified_client_id(&assertion).unwrap(), CLIENT);
    }
}

#[test]
fn client_assertions_can_leave_typ_out_and_are_single_use() {
    let k = key(Algorithm::ES256, "c1");
    let params = ClientAssertionParams {
        explicit_typ: false,
        lifetime: 300,
        ..ClientAssertionParams::new(CLIENT, ISSUER)
    };
    let assertion = create_client_assertion(&k, &params, NOW, provider().as_ref()).unwrap();
    assert!(header(&assertion).get("typ").is_none());
    let verifier = PrivateKeyJwtVerifier::new(ISSUER, ClientAssertionPolicy::default());
    let keys = keys_of(CLIENT, &[k.public_jwk()]);
    let cache = InMemoryReplayCache::new(64);
    let verified = verifier.verify(&assertion, CLIENT, &keys, NOW).unwrap();
    verified.record(&cache, NOW).unwrap();
    // The same assertion again: it verifies, and the replay record refuses it.
    let again = verifier.verify(&assertion, CLIENT, &keys, NOW.plus(10)).unwrap();
    assert_eq!(again.record(&cache, NOW.plus(10)).unwrap_err().kind(), "replay");
    // Two assertions never share a jti.
    let other = create_client_assertion(&k, &params, NOW, provider().as_ref()).unwrap();
    verifier
        .verify(&other, CLIENT, &keys, NOW)
        .unwrap()
        .record(&cache, NOW)
        .unwrap();
}

#[test]
fn client_assertion_creation_refuses_what_verifiers_refuse() {
    let k = key(Algorithm::ES256, "c1");
    let make = |p: ClientAssertionParams<'_>| create_client_assertion(&k, &p, NOW, provider().as_ref());
    let base = ClientAssertionParams::new(CLIENT, ISSUER);
    assert_eq!(
        make(ClientAssertionParams { lifetime: 301, ..base })
            .unwrap_err()
            .kind(),
        "lifetime_too_long"
    );
    assert_eq!(
        make(ClientAssertionParams { lifetime: 0, ..base }).unwrap_err().kind(),
        "lifetime_too_long"
    );
    assert_eq!(
        make(ClientAssertionParams { client_id: "", ..base })
            .unwrap_err()
            .kind(),
        "invalid_claim"
    );
    assert_eq!(
        make(ClientAssertionParams { issuer: "", ..base }).unwrap_err().kind(),
        "invalid_claim"
    );
    let kid = make(ClientAssertionParams {
        kid: Some("registered-kid"),
        ..base
    })
    .unwrap();
    assert_eq!(header(&kid)["kid"], json!("registered-kid"));
}

#[test]
fn client_keys_are_checked_at_registration() {
    let p = provider();
    let a = key(Algorithm::ES256, "same").public_jwk();
    let b = key(Algorithm::ES256, "same").public_jwk();
    let err = VerificationKeys::from_jwks(
        p.as_ref(),
        CLIENT,
        &JwkSet {
            keys: vec![a.clone(), b],
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), "invalid_key");
    let broken = Jwk {
        kty: "EC".into(),
        crv: Some("P-256".into()),
        x: Some("AAAA".into()),
        y: Some("AAAA".into()),
        ..Jwk::default()
    };
    assert_eq!(
        VerificationKeys::from_jwks(p.as_ref(), CLIENT, &JwkSet { keys: vec![broken] })
            .unwrap_err()
            .kind(),
        "invalid_key"
    );
    // Encryption keys in a published set are skipped, private members dropped.
    let enc = Jwk {
        key_use: Some("enc".into()),
        ..key(Algorithm::RS256, "enc").public_jwk()
    };
    let private = key(Algorithm::EdDSA, "priv").private_jwk().unwrap();
    let keys = VerificationKeys::from_jwks(
        p.as_ref(),
        ISSUER,
        &JwkSet {
            keys: vec![a, enc, private],
        },
    )
    .unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.to_jwks().keys.iter().all(|k| !k.is_private()));
    // No registered key at all.
    let empty = VerificationKeys::from_jwks(p.as_ref(), CLIENT, &JwkSet::default()).unwrap();
    let k = key(Algorithm::ES256, "c1");
    let assertion = create_client_assertion(&k, &ClientAssertionParams::new(CLIENT, ISSUER), NOW, p.as_ref()).unwrap();
    let verifier = PrivateKeyJwtVerifier::new(ISSUER, ClientAssertionPolicy::default());
    assert_eq!(
        verifier.verify(&assertion, CLIENT, &empty, NOW).unwrap_err().kind(),
        "unknown_key"
    );
}

// ---------------------------------------------------------------------------------------
// jwt-spiffe
// ---------------------------------------------------------------------------------------

#[test]
fn jwt_svid_client_assertions_and_spiffe_id_patterns() {
    let td_key = key(Algorithm::ES256, "td-key");
    let store = Arc::new(TrustStore::new(provider()));
    store
        .add_key("example.org", KeyUse::JwtSvid, &td_key.public_jwk())
        .unwrap();
    let svids = JwtSvidIssuer::new(Arc::new(td_key), "td-key", None).unwrap();
    let verifier = SpiffeAssertionVerifier::new(store, ISSUER, SpiffeAssertionPolicy::default());
    let sub = SpiffeId::parse("spiffe://example.org/clients/billing").unwrap();

    let svid = svids.issue(&sub, ISSUER, NOW, 300).unwrap();
    let verified = verifier.verify(&svid, NOW.plus(100)).unwrap();
    assert_eq!(verified.spiffe_id, sub);
    assert_eq!(verified.jti, None);
    // Agents reuse JWT-SVIDs: a second presentation is not a replay.
    verifier.verify(&svid, NOW.plus(101)).unwrap();

    let patterns = [
        SpiffeIdPattern::parse("spiffe://example.org/clients/*").unwrap(),
        SpiffeIdPattern::parse("spiffe://example.org/legacy").unwrap(),
    ];
    authorize_spiffe_id(&patterns, &verified.spiffe_id, CLIENT).unwrap();
    let stranger = SpiffeId::parse("spiffe://example.org/clientsX").unwrap();
    assert_eq!(
        authorize_spiffe_id(&patterns, &stranger, CLIENT).unwrap_err().kind(),
        "spiffe_id_not_authorized"
    );

    // An SVID minted for another audience, and one longer than five minutes.
    let other = svids.issue(&sub, "https://other.example", NOW, 300).unwrap();
    assert_eq!(verifier.verify(&other, NOW).unwrap_err().kind(), "wrong_audience");
    let long = svids.issue(&sub, ISSUER, NOW, 3600).unwrap();
    assert_eq!(verifier.verify(&long, NOW).unwrap_err().kind(), "lifetime_too_long");
    let relaxed = SpiffeAssertionVerifier::new(
        Arc::new(TrustStore::new(provider())),
        ISSUER,
        SpiffeAssertionPolicy {
            max_lifetime: 3600,
            ..SpiffeAssertionPolicy::default()
        },
    );
    // A store without the trust domain's keys knows nothing.
    assert_eq!(relaxed.verify(&long, NOW).unwrap_err().kind(), "unknown_key");
}

// ---------------------------------------------------------------------------------------
// spiffe_wit: a WIT-SVID with the attestation-based client authentication headers
// ---------------------------------------------------------------------------------------

#[test]
fn wit_svid_client_attestation_and_its_refusals() {
    let world = lanyard_testing::WitWorld::new("example.org", Algorithm::ES256, Some("wit-key"));
    let verifier = ClientAttestationVerifier::new(world.store.clone(), ISSUER, ClientAttestationPolicy::default());
    let id = "spiffe://example.org/clients/billing";
    let holder = key(Algorithm::ES256, "holder");
    let wit = world.wit(id, &holder);
    let params = ClientAttestationPopParams {
        issuer: ISSUER,
        spiffe_id: id,
        challenge: None,
    };
    let pop = create_client_attestation_pop(&holder, &params, NOW, provider().as_ref()).unwrap();
    assert_eq!(header(&pop)["typ"], "oauth-client-attestation-pop+jwt");
    let verified = verifier.verify(&wit, &pop, Some(CLIENT), NOW.plus(10)).unwrap();
    assert_eq!(verified.spiffe_id.as_str(), id);
    assert_eq!(verified.iat, NOW);
    assert_eq!(verified.replay_until, NOW.plus(360));
    assert!(!verified.jti.is_empty());

    // The draft asks the server to take the WIT-SVID under either type.
    let decoded = decode_unverified(&wit).unwrap();
    let as_attestation = sign_compact(
        Some("oauth-client-attestation+jwt"),
        Some("wit-key"),
        &decoded.claims,
        world.issuer_key.as_ref(),
    )
    .unwrap();
    verifier.verify(&as_attestation, &pop, None, NOW).unwrap();
    // Any other type for the attestation is confusion.
    let as_access_token = sign_compact(
        Some("at+jwt"),
        Some("wit-key"),
        &decoded.claims,
        world.issuer_key.as_ref(),
    )
    .unwrap();
    assert_eq!(
        verifier.verify(&as_access_token, &pop, None, NOW).unwrap_err().kind(),
        "typ_confusion"
    );

    // Proofs that must fail, each with its kind.
    let sign_pop = |typ: Option<&str>, claims: Value, key: &KeyPair| sign_compact(typ, None, &claims, key).unwrap();
    let pop_typ = Some("oauth-client-attestation-pop+jwt");
    let good = json!({"iss": id, "aud": ISSUER, "jti": "p-1", "iat": NOW.as_secs()});
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let stranger = key(Algorithm::ES256, "stranger");
    let cases: Vec<(&str, String)> = vec![
        ("typ_confusion", sign_pop(Some("dpop+jwt"), good.clone(), &holder)),
        ("wrong_typ", sign_pop(None, good.clone(), &holder)),
        ("bad_signature", sign_pop(pop_typ, good.clone(), &stranger)),
        (
            "aud_not_sole",
            sign_pop(pop_typ, with("aud", json!([ISSUER, RS])), &holder),
        ),
        (
            "aud_trailing_slash",
            sign_pop(pop_typ, with("aud", json!(format!("{ISSUER}/"))), &holder),
        ),
        ("wrong_audience", sign_pop(pop_typ, with("aud", json!(RS)), &holder)),
        (
            "client_id_mismatch",
            sign_pop(pop_typ, with("iss", json!("spiffe://example.org/other")), &holder),
        ),
        ("missing_claim", sign_pop(pop_typ, without("jti"), &holder)),
        ("missing_claim", sign_pop(pop_typ, without("iat"), &holder)),
        (
            "stale_proof",
            sign_pop(pop_typ, with("iat", json!(NOW.as_secs() - 301)), &holder),
        ),
        (
            "not_yet_valid",
            sign_pop(pop_typ, with("iat", json!(NOW.as_secs() + 61)), &holder),
        ),
        (
            "expired",
            sign_pop(pop_typ, with("exp", json!(NOW.as_secs() - 61)), &holder),
        ),
    ];
    for (kind, bad) in &cases {
        assert_eq!(
            verifier.verify(&wit, bad, Some(CLIENT), NOW).unwrap_err().kind(),
            *kind,
            "{kind}"
        );
    }
    // `iss` may name the client instead of the SPIFFE ID (earlier ABCA drafts).
    verifier
        .verify(
            &wit,
            &sign_pop(pop_typ, with("iss", json!(CLIENT)), &holder),
            Some(CLIENT),
            NOW,
        )
        .unwrap();
    // A proof by an ES384 key for an ES256 WIT key: the algorithm must be cnf.jwk.alg.
    let es384 = key(Algorithm::ES384, "other-alg");
    let mismatched = sign_pop(pop_typ, good.clone(), &es384);
    assert_eq!(
        verifier.verify(&wit, &mismatched, None, NOW).unwrap_err().kind(),
        "alg_mismatch"
    );
    // A WIT-SVID from a trust domain the store does not know.
    let foreign = lanyard_testing::WitWorld::new("other.org", Algorithm::ES256, Some("wit-key"));
    let foreign_wit = foreign.wit("spiffe://other.org/clients/billing", &holder);
    assert_eq!(
        verifier.verify(&foreign_wit, &pop, None, NOW).unwrap_err().kind(),
        "unknown_key"
    );
}

// ---------------------------------------------------------------------------------------
// Access tokens
// ---------------------------------------------------------------------------------------

fn claims(cnf: Option<Confirmation>) -> AccessTokenClaims {
    AccessTokenClaims {
        iss: ISSUER.into(),
        sub: CLIENT.into(),
        aud: Audience::one(RS),
        client_id: CLIENT.into(),
        scope: Some(Scope::parse("entries:read entries:write").unwrap()),
        iat: NOW,
        exp: NOW.plus(300),
        nbf: None,
        jti: "at-1".into(),
        cnf,
        act: Some(Actor::new("spiffe://example.org/agent").acting_after(Some(Actor::new("user-7")))),
        extra: serde_json::Map::from_iter([("tenant".to_owned(), json!("t-9"))]),
    }
}

#[test]
fn access_tokens_round_trip_with_rotation() {
    let old = key(Algorithm::RS256, "as-2026-01");
    let new = key(Algorithm::ES256, "as-2026-02");
    let keys = keys_of(ISSUER, &[old.public_jwk(), new.public_jwk()]);
    let verifier = AccessTokenVerifier::new(AccessTokenPolicy::new(ISSUER, RS));
    for (k, kid) in [(&old, "as-2026-01"), (&new, "as-2026-02")] {
        let token = issue_access_token(k, kid, &claims(None)).unwrap();
        assert_eq!(header(&token)["typ"], json!("at+jwt"));
        let at = verifier.verify(&token, &keys, NOW.plus(1)).unwrap();
        assert_eq!(at.claims, claims(None));
        assert_eq!(at.kid.as_deref(), Some(kid));
        at.require_scope(&Scope::parse("entries:read").unwrap()).unwrap();
        assert_eq!(
            at.require_scope(&Scope::parse("entries:delete").unwrap())
                .unwrap_err()
                .kind(),
            "insufficient_scope"
        );
        assert_eq!(at.claims.act.as_ref().unwrap().depth(), 2);
        at.check_binding(&PresentedProof::default(), provider().as_ref())
            .unwrap();
    }
    // Once the old key is retired its tokens stop verifying.
    let token = issue_access_token(&old, "as-2026-01", &claims(None)).unwrap();
    let retired = keys_of(ISSUER, &[new.public_jwk()]);
    assert_eq!(
        verifier.verify(&token, &retired, NOW).unwrap_err().kind(),
        "unknown_key"
    );
    // A resource server with several identifiers, and a lifetime cap.
    let policy = AccessTokenPolicy {
        audiences: vec!["https://other.example".into(), RS.into()],
        max_lifetime: Some(60),
        ..AccessTokenPolicy::new(ISSUER, RS)
    };
    assert_eq!(
        AccessTokenVerifier::new(policy)
            .verify(&token, &keys, NOW)
            .unwrap_err()
            .kind(),
        "lifetime_too_long"
    );
}

#[test]
fn access_token_issuance_refuses_broken_claims() {
    let k = key(Algorithm::ES256, "as");
    let mut c = claims(None);
    c.exp = c.iat;
    assert_eq!(issue_access_token(&k, "as", &c).unwrap_err().kind(), "invalid_claim");
    let mut c = claims(None);
    c.jti = String::new();
    assert_eq!(issue_access_token(&k, "as", &c).unwrap_err().kind(), "invalid_claim");
    let mut c = claims(None);
    c.extra.insert("iss".into(), json!("https://evil.example"));
    assert_eq!(issue_access_token(&k, "as", &c).unwrap_err().kind(), "invalid_claim");
    let mut deep = Actor::new("a0");
    for i in 1..=16 {
        deep = Actor::new(format!("a{i}")).acting_after(Some(deep));
    }
    let mut c = claims(None);
    c.act = Some(deep);
    assert_eq!(issue_access_token(&k, "as", &c).unwrap_err().kind(), "invalid_claim");
}

#[test]
fn introspection_of_an_issued_token() {
    let k = key(Algorithm::ES256, "as");
    let cnf = Confirmation::certificate(provider().as_ref(), b"certificate DER");
    let token = issue_access_token(&k, "as", &claims(Some(cnf.clone()))).unwrap();
    let at = AccessTokenVerifier::new(AccessTokenPolicy::new(ISSUER, RS))
        .verify(&token, &keys_of(ISSUER, &[k.public_jwk()]), NOW)
        .unwrap();
    let body = IntrospectionResponse::Active(Box::new(ActiveToken::from_access_token(&at.claims))).to_json();
    let value: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(value["active"], json!(true));
    assert_eq!(value["token_type"], json!("Bearer"));
    assert_eq!(value["cnf"]["x5t#S256"], json!(cnf.x5t_s256.unwrap()));
    assert_eq!(value["act"]["act"]["sub"], json!("user-7"));
    assert!(value.get("tenant").is_none());
}

// ---------------------------------------------------------------------------------------
// DPoP and binding
// ---------------------------------------------------------------------------------------

/// The verifier keeps proof keys parsed: a cached key still checks every signature, and
/// each key keeps its own thumbprint.
#[test]
fn dpop_proof_keys_cached_per_key() {
    let p = provider();
    let verifier = DpopVerifier::new(p.clone(), DpopPolicy::default());
    let (alice, bob) = (key(Algorithm::ES256, "alice"), key(Algorithm::ES256, "bob"));
    let request = DpopRequest {
        method: "POST",
        uri: TOKEN_ENDPOINT,
        access_token: None,
        nonce: DpopNonce::NotRequired,
    };
    let proof = |k: &KeyPair| {
        let params = DpopProofParams {
            method: "POST",
            uri: TOKEN_ENDPOINT,
            access_token: None,
            nonce: None,
        };
        create_dpop_proof(k, &params, NOW, p.as_ref()).unwrap()
    };
    let jkt = |k: &KeyPair| k.public_jwk().thumbprint(p.as_ref()).unwrap();
    let first = proof(&alice);
    assert_eq!(verifier.verify(&first, &request, NOW).unwrap().jkt, jkt(&alice));
    // Alice's key is cached now; a second proof of hers carrying the first one's
    // signature is still refused.
    let second = proof(&alice);
    let forged = format!(
        "{}.{}",
        second.rsplit_once('.').unwrap().0,
        first.rsplit_once('.').unwrap().1
    );
    assert_eq!(
        verifier.verify(&forged, &request, NOW).unwrap_err().kind(),
        "bad_signature"
    );
    assert_eq!(verifier.verify(&second, &request, NOW).unwrap().jkt, jkt(&alice));
    assert_eq!(
        verifier.clone().verify(&proof(&bob), &request, NOW).unwrap().jkt,
        jkt(&bob)
    );
    assert_ne!(jkt(&alice), jkt(&bob));
}

/// A cached proof key is found by its thumbprint members, which leave out an RSA key's
/// `crv`: a JWK that does not fit the algorithm is still refused after its key was cached.
#[test]
fn dpop_cached_key_still_refuses_a_misfit_jwk() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use lanyard_core::SigningKey as _;
    let p = provider();
    let verifier = DpopVerifier::new(p.clone(), DpopPolicy::default());
    let rsa = key(Algorithm::RS256, "rsa");
    let request = DpopRequest {
        method: "POST",
        uri: TOKEN_ENDPOINT,
        access_token: None,
        nonce: DpopNonce::NotRequired,
    };
    let params = DpopProofParams {
        method: "POST",
        uri: TOKEN_ENDPOINT,
        access_token: None,
        nonce: None,
    };
    let proof = create_dpop_proof(&rsa, &params, NOW, p.as_ref()).unwrap();
    verifier.verify(&proof, &request, NOW).unwrap();
    let mut h = header(&proof);
    h["jwk"]["crv"] = json!("P-256");
    let signing_input = format!("{}.{}", B64.encode(h.to_string()), proof.split('.').nth(1).unwrap());
    let signature = rsa.sign(signing_input.as_bytes()).unwrap();
    let misfit = format!("{signing_input}.{}", B64.encode(signature));
    assert_eq!(
        verifier.verify(&misfit, &request, NOW).unwrap_err().kind(),
        "invalid_key"
    );
    verifier.verify(&proof, &request, NOW).unwrap();
}

#[test]
fn dpop_bound_token_flow() {
    let p = provider();
    let client_key = key(Algorithm::ES256, "dpop");
    let verifier = DpopVerifier::new(p.clone(), DpopPolicy::default());
    let cache = InMemoryReplayCache::new(64);

    // Token endpoint: a proof without ath, under the server's nonce.
    let params = DpopProofParams {
        method: "POST",
        uri: "https://AS.example.org:443/token?x=1",
        access_token: None,
        nonce: Some("n-1"),
    };
    let proof = create_dpop_proof(&client_key, &params, NOW, p.as_ref()).unwrap();
    let h = header(&proof);
    assert_eq!(h["typ"], json!("dpop+jwt"));
    assert!(h["jwk"].get("d").is_none());
    assert_eq!(decode_unverified(&proof).unwrap().claims["htu"], json!(TOKEN_ENDPOINT));
    let at_endpoint = DpopRequest {
        method: "POST",
        uri: TOKEN_ENDPOINT,
        access_token: None,
        nonce: DpopNonce::Required(&["n-0", "n-1"]),
    };
    let verified = verifier.verify(&proof, &at_endpoint, NOW.plus(2)).unwrap();
    assert_eq!(verified.jkt, client_key.public_jwk().thumbprint(p.as_ref()).unwrap());
    assert_eq!(verified.nonce.as_deref(), Some("n-1"));
    verified.record(&cache, NOW.plus(2)).unwrap();
    assert_eq!(verified.record(&cache, NOW.plus(3)).unwrap_err().kind(), "replay");

    // The AS binds the token to the key.
    let as_key = key(Algorithm::ES256, "as");
    let token = issue_access_token(&as_key, "as", &claims(Some(Confirmation::dpop(verified.jkt.clone())))).unwrap();
    let at = AccessTokenVerifier::new(AccessTokenPolicy::new(ISSUER, RS))
        .verify(&token, &keys_of(ISSUER, &[as_key.public_jwk()]), NOW.plus(5))
        .unwrap();

    // Resource: a proof with ath; the binding holds only for the same key.
    let resource_proof = |key: &KeyPair| {
        let params = DpopProofParams {
            method: "GET",
            uri: "https://ledger.example.org/entries",
            access_token: Some(&token),
            nonce: None,
        };
        create_dpop_proof(key, &params, NOW.plus(5), p.as_ref()).unwrap()
    };
    let client_proof = resource_proof(&client_key);
    assert_eq!(
        decode_unverified(&client_proof).unwrap().claims["ath"],
        json!(access_token_hash(p.as_ref(), &token))
    );
    let at_resource = DpopRequest {
        method: "GET",
        uri: "https://ledger.example.org/entries",
        access_token: Some(&token),
        nonce: DpopNonce::NotRequired,
    };
    let rp = verifier.verify(&client_proof, &at_resource, NOW.plus(6)).unwrap();
    at.check_binding(
        &PresentedProof {
            dpop_jkt: Some(&rp.jkt),
            client_certificate: None,
        },
        p.as_ref(),
    )
    .unwrap();
    let kind = |presented: PresentedProof<'_>| at.check_binding(&presented, p.as_ref()).unwrap_err().kind();
    assert_eq!(kind(PresentedProof::default()), "cnf_missing_proof");
    let thief = key(Algorithm::ES256, "thief");
    let stolen = resource_proof(&thief);
    let thief_proof = verifier.verify(&stolen, &at_resource, NOW.plus(6)).unwrap();
    assert_eq!(
        kind(PresentedProof {
            dpop_jkt: Some(&thief_proof.jkt),
            client_certificate: None
        }),
        "cnf_mismatch"
    );
    // A bearer token with a DPoP proof is not a DPoP token.
    let bearer = AccessTokenVerifier::new(AccessTokenPolicy::new(ISSUER, RS))
        .verify(
            &issue_access_token(&as_key, "as", &claims(None)).unwrap(),
            &keys_of(ISSUER, &[as_key.public_jwk()]),
            NOW,
        )
        .unwrap();
    assert_eq!(
        bearer
            .check_binding(
                &PresentedProof {
                    dpop_jkt: Some(&rp.jkt),
                    client_certificate: None
                },
                p.as_ref()
            )
            .unwrap_err()
            .kind(),
        "not_dpop_bound"
    );
}

#[test]
fn dpop_algorithms_and_allow_list() {
    let p = provider();
    let request = DpopRequest {
        method: "POST",
        uri: TOKEN_ENDPOINT,
        access_token: None,
        nonce: DpopNonce::NotRequired,
    };
    for alg in Algorithm::ALL {
        let k = KeyPair::generate(alg).unwrap();
        let params = DpopProofParams {
            method: "POST",
            uri: TOKEN_ENDPOINT,
            access_token: None,
            nonce: None,
        };
        let proof = create_dpop_proof(&k, &params, NOW, p.as_ref()).unwrap();
        DpopVerifier::new(p.clone(), DpopPolicy::default())
            .verify(&proof, &request, NOW)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        let only_es256 = DpopPolicy {
            algorithms: lanyard_core::AlgSet::of(&[Algorithm::ES256]),
            ..DpopPolicy::default()
        };
        let outcome = DpopVerifier::new(p.clone(), only_es256).verify(&proof, &request, NOW);
        assert_eq!(outcome.is_ok(), alg == Algorithm::ES256, "{alg}");
    }
    assert_eq!(
        create_dpop_proof(
            &key(Algorithm::ES256, "k"),
            &DpopProofParams {
                method: "POST",
                uri: "/relative",
                access_token: None,
                nonce: None
            },
            NOW,
            p.as_ref()
        )
        .unwrap_err()
        .kind(),
        "invalid_claim"
    );
}

#[test]
fn certificate_binding() {
    let p = provider();
    let cert = b"DER of the client certificate";
    // x5t#S256 is base64url(SHA-256(DER)), RFC 8705 §3.1: 43 characters.
    let thumb = certificate_thumbprint(p.as_ref(), cert);
    assert_eq!(thumb.len(), 43);
    let cnf = Confirmation::certificate(p.as_ref(), cert);
    assert_eq!(cnf.x5t_s256.as_deref(), Some(thumb.as_str()));
    fn presented(c: Option<&[u8]>) -> PresentedProof<'_> {
        PresentedProof {
            dpop_jkt: None,
            client_certificate: c,
        }
    }
    cnf.check(&presented(Some(cert)), p.as_ref()).unwrap();
    assert_eq!(
        cnf.check(&presented(None), p.as_ref()).unwrap_err().kind(),
        "cnf_missing_proof"
    );
    assert_eq!(
        cnf.check(&presented(Some(b"another certificate")), p.as_ref())
            .unwrap_err()
            .kind(),
        "cnf_mismatch"
    );
    assert_eq!(serde_json::to_value(&cnf).unwrap(), json!({"x5t#S256": thumb}));
    // At a token endpoint a DPoP proof binds the token being issued, so beside a
    // certificate-bound subject token `check_holder` does not refuse it; `check` (a
    // resource server's) does.
    cnf.check_holder(Some("a-dpop-key"), || Some(thumb.clone())).unwrap();
    let with_proof = PresentedProof {
        dpop_jkt: Some("a-dpop-key"),
        client_certificate: Some(cert),
    };
    assert_eq!(cnf.check(&with_proof, p.as_ref()).unwrap_err().kind(), "not_dpop_bound");
    let wrong = || Some("another thumbprint".to_owned());
    assert_eq!(cnf.check_holder(None, wrong).unwrap_err().kind(), "cnf_mismatch");
    // The certificate's thumbprint is asked for only when there is one to match.
    let dpop_bound = Confirmation::dpop("k");
    dpop_bound.check_holder(Some("k"), || unreachable!()).unwrap();
    assert_eq!(
        dpop_bound
            .check_holder(Some("j"), || unreachable!())
            .unwrap_err()
            .kind(),
        "cnf_mismatch"
    );
}

#[test]
fn a_dpop_proof_is_not_a_client_assertion_and_vice_versa() {
    // The same key signs a DPoP proof and offers it as a private_key_jwt assertion: the
    // explicit type refuses it before anything else.
    let p = provider();
    let k = key(Algorithm::ES256, "c1");
    let proof = create_dpop_proof(
        &k,
        &DpopProofParams {
            method: "POST",
            uri: TOKEN_ENDPOINT,
            access_token: None,
            nonce: None,
        },
        NOW,
        p.as_ref(),
    )
    .unwrap();
    let verifier = PrivateKeyJwtVerifier::new(ISSUER, ClientAssertionPolicy::default());
    assert_eq!(
        verifier
            .verify(&proof, CLIENT, &keys_of(CLIENT, &[k.public_jwk()]), NOW)
            .unwrap_err()
            .kind(),
        "typ_confusion"
    );
    let assertion = create_client_assertion(&k, &ClientAssertionParams::new(CLIENT, ISSUER), NOW, p.as_ref()).unwrap();
    let request = DpopRequest {
        method: "POST",
        uri: TOKEN_ENDPOINT,
        access_token: None,
        nonce: DpopNonce::NotRequired,
    };
    assert_eq!(
        DpopVerifier::new(p.clone(), DpopPolicy::default())
            .verify(&assertion, &request, NOW)
            .unwrap_err()
            .kind(),
        "typ_confusion"
    );
    // An access token (typ at+jwt) offered as an assertion, signed by the client's key.
    let at = sign_compact(
        Some("at+jwt"),
        Some("c1"),
        &json!({"iss": CLIENT, "sub": CLIENT, "aud": ISSUER, "exp": NOW.plus(60).as_secs(), "jti": "x"}),
        &k as &dyn SigningKey,
    )
    .unwrap();
    assert_eq!(
        verifier
            .verify(&at, CLIENT, &keys_of(CLIENT, &[k.public_jwk()]), NOW)
            .unwrap_err()
            .kind(),
        "typ_confusion"
    );
}

// ---------------------------------------------------------------------------------------
// Transaction Tokens (draft-ietf-oauth-transaction-tokens-11)
// ---------------------------------------------------------------------------------------

fn txn_claims() -> TxnTokenClaims {
    TxnTokenClaims {
        iss: None,
        iat: NOW,
        exp: NOW.plus(60),
        aud: "example.org".into(),
        txn: "97053963-771d-49cc-a4e3-20aad399c312".into(),
        sub: "d084sdrt234fsaw34tr23t".into(),
        scope: Scope::parse("trade.stocks").unwrap(),
        req_wl: "spiffe://example.org/gateway".into(),
        tctx: Some(serde_json::Map::from_iter([("action".to_owned(), json!("BUY"))])),
        rctx: None,
        extra: serde_json::Map::new(),
    }
}

#[test]
fn txn_tokens_verify_in_their_trust_domain_only() {
    let tts = key(Algorithm::ES256, "tts-1");
    let keys = keys_of("tts", &[tts.public_jwk()]);
    let token = issue_txn_token(&tts, "tts-1", &txn_claims()).unwrap();
    assert_eq!(header(&token)["typ"], "txntoken+jwt");
    let verifier = TxnTokenVerifier::new(TxnTokenPolicy::new("example.org"));
    let verified = verifier.verify(&token, &keys, NOW.plus(5)).unwrap();
    assert_eq!(verified.claims, txn_claims());
    assert_eq!(verified.kid.as_deref(), Some("tts-1"));

    let elsewhere = TxnTokenVerifier::new(TxnTokenPolicy::new("other.org"));
    assert_eq!(
        elsewhere.verify(&token, &keys, NOW.plus(5)).unwrap_err().kind(),
        "wrong_audience"
    );
    assert_eq!(
        verifier.verify(&token, &keys, NOW.plus(200)).unwrap_err().kind(),
        "expired"
    );
    // Another token type signed by the same key is not a Txn-Token.
    let access_token = issue_access_token(&tts, "tts-1", &claims(None)).unwrap();
    assert_eq!(
        verifier.verify(&access_token, &keys, NOW).unwrap_err().kind(),
        "typ_confusion"
    );
    // A generic JWT typ is not enough either.
    let generic = sign_compact(Some("JWT"), Some("tts-1"), &txn_claims(), &tts).unwrap();
    assert_eq!(verifier.verify(&generic, &keys, NOW).unwrap_err().kind(), "wrong_typ");
    let mut long = txn_claims();
    long.exp = NOW.plus(MAX_TXN_TOKEN_LIFETIME + 100);
    let long = issue_txn_token(&tts, "tts-1", &long).unwrap();
    assert_eq!(
        verifier.verify(&long, &keys, NOW).unwrap_err().kind(),
        "lifetime_too_long"
    );
    // A key the TTS does not hold.
    let stranger = key(Algorithm::ES256, "tts-1");
    let forged = issue_txn_token(&stranger, "tts-1", &txn_claims()).unwrap();
    assert_eq!(
        verifier.verify(&forged, &keys, NOW).unwrap_err().kind(),
        "bad_signature"
    );
}

#[test]
fn token_exchange_decisions_delegate_and_narrow() {
    let subject = SubjectToken {
        sub: "alice".into(),
        iss: Some("https://idp.example".into()),
        scope: Some(Scope::parse("calendar.read calendar.write").unwrap()),
        exp: NOW.plus(300),
        act: None,
        may_act: Some(Actor::new("spiffe://example.org/agent")),
    };
    let rules = ExchangeRules {
        allow_impersonation: false,
        allow_delegation: true,
        policy_scope: Scope::parse("calendar.read").unwrap(),
        require_subject_scope: true,
        max_ttl: 120,
    };
    let agent = Actor::new("spiffe://example.org/agent");
    let out = decide_exchange(&subject, Some(&agent), None, &rules, NOW).unwrap();
    assert_eq!(out.sub, "alice");
    assert_eq!(out.act, Some(agent.clone()));
    assert_eq!(out.scope, Scope::parse("calendar.read").unwrap());
    assert_eq!(out.exp, NOW.plus(120));
    // The issued access token carries the chain; a second hop nests it.
    let hop = SubjectToken {
        act: out.act.clone(),
        may_act: None,
        scope: Some(out.scope.clone()),
        exp: out.exp,
        ..subject.clone()
    };
    let tool = Actor::new("spiffe://example.org/tool");
    let second = decide_exchange(&hop, Some(&tool), None, &rules, NOW).unwrap();
    let chain: Vec<_> = second
        .act
        .as_ref()
        .unwrap()
        .chain()
        .filter_map(|a| a.sub.as_deref())
        .collect();
    assert_eq!(chain, ["spiffe://example.org/tool", "spiffe://example.org/agent"]);
    let stranger = Actor::new("spiffe://example.org/stranger");
    assert_eq!(
        decide_exchange(&subject, Some(&stranger), None, &rules, NOW)
            .unwrap_err()
            .kind(),
        "may_act_mismatch"
    );
    assert_eq!(
        decide_exchange(&subject, None, None, &rules, NOW).unwrap_err().kind(),
        "exchange_not_allowed"
    );
}

// ---------------------------------------------------------------------------------------
// JWT authorization grants (identity chaining)
// ---------------------------------------------------------------------------------------

const HOME: &str = "https://as.home.example";
const FOREIGN: &str = "https://as.foreign.example";

fn grant_claims() -> AuthorizationGrantClaims {
    AuthorizationGrantClaims {
        iss: HOME.into(),
        sub: "spiffe://home.example/tool".into(),
        aud: FOREIGN.into(),
        iat: NOW,
        exp: NOW.plus(60),
        jti: "grant-1".into(),
        client_id: Some("tool".into()),
        scope: Some(Scope::parse("orders.read").unwrap()),
        act: Some(Actor::new("spiffe://home.example/agent")),
        extra: serde_json::Map::new(),
    }
}

#[test]
fn authorization_grants_cross_to_the_named_server_only() {
    let home = key(Algorithm::ES256, "home-1");
    let keys = keys_of(HOME, &[home.public_jwk()]);
    let grant = issue_authorization_grant(&home, "home-1", &grant_claims()).unwrap();
    assert_eq!(header(&grant)["typ"], "authorization-grant+jwt");
    let verifier = AuthorizationGrantVerifier::new(AuthorizationGrantPolicy::new(FOREIGN));
    let verified = verifier.verify(&grant, HOME, &keys, NOW.plus(1)).unwrap();
    assert_eq!(verified.claims, grant_claims());
    assert_eq!(verified.replay_until, NOW.plus(120));

    // Another audience, another issuer, a type of another token, too long a life.
    let elsewhere = AuthorizationGrantVerifier::new(AuthorizationGrantPolicy::new("https://as.other.example"));
    assert_eq!(
        elsewhere.verify(&grant, HOME, &keys, NOW).unwrap_err().kind(),
        "wrong_audience"
    );
    assert_eq!(
        verifier
            .verify(&grant, "https://as.evil.example", &keys, NOW)
            .unwrap_err()
            .kind(),
        "issuer_mismatch"
    );
    let mut two = serde_json::to_value(grant_claims()).unwrap();
    two["aud"] = json!([FOREIGN, "https://as.other.example"]);
    let two = sign_compact(Some("authorization-grant+jwt"), Some("home-1"), &two, &home).unwrap();
    assert_eq!(
        verifier.verify(&two, HOME, &keys, NOW).unwrap_err().kind(),
        "aud_not_sole"
    );
    let at = issue_access_token(&home, "home-1", &claims(None)).unwrap();
    assert_eq!(
        verifier.verify(&at, HOME, &keys, NOW).unwrap_err().kind(),
        "typ_confusion"
    );
    // Without typ, or with the generic JWT, it is accepted (rfc7523bis).
    for typ in [None, Some("JWT")] {
        let plain = sign_compact(typ, Some("home-1"), &grant_claims(), &home).unwrap();
        verifier.verify(&plain, HOME, &keys, NOW).unwrap();
    }
    let mut long = grant_claims();
    long.exp = NOW.plus(MAX_GRANT_LIFETIME + 1);
    let long = issue_authorization_grant(&home, "home-1", &long).unwrap();
    assert_eq!(
        verifier.verify(&long, HOME, &keys, NOW).unwrap_err().kind(),
        "lifetime_too_long"
    );
    let mut no_jti = serde_json::to_value(grant_claims()).unwrap();
    no_jti.as_object_mut().unwrap().remove("jti");
    let no_jti = sign_compact(None, Some("home-1"), &no_jti, &home).unwrap();
    assert_eq!(
        verifier.verify(&no_jti, HOME, &keys, NOW).unwrap_err().kind(),
        "missing_claim"
    );
}
