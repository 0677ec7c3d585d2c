//! COSE_Sign1 and COSE_Key through the aws-lc-rs provider: every signature algorithm,
//! verification over the protected bytes as received, JWK conversion, and the RFC 9679
//! thumbprints of the SD-CWT draft's keys (Appendix C).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sd_cwt_fixtures;

use lanyard_core::cbor::{self, Value};
use lanyard_core::cose::{CoseKey, CoseKeySet, CoseSign1};
use lanyard_core::{Algorithm, DigestAlgorithm, Jwk, SigningKey};
use lanyard_crypto::KeyPair;
use sd_cwt_fixtures::{hex, unhex};

fn protected(entries: &[(i64, Value)]) -> Vec<(Value, Value)> {
    entries.iter().map(|(k, v)| (Value::int(*k), v.clone())).collect()
}

#[test]
fn sign1_round_trips_for_every_cose_algorithm() {
    let provider = lanyard_crypto::provider();
    for alg in [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
        Algorithm::PS256,
        Algorithm::ESP256,
        Algorithm::ESP384,
        Algorithm::Ed25519,
    ] {
        let key = KeyPair::generate(alg).unwrap();
        let message = CoseSign1::sign(
            protected(&[(16, Value::int(61))]),
            vec![(Value::int(4), Value::bytes(b"k1".to_vec()))],
            b"payload".to_vec(),
            &key,
        )
        .unwrap();
        assert_eq!(message.algorithm().unwrap(), alg);
        assert_eq!(
            cbor::decode(message.protected_bytes()).unwrap().get_int(1),
            Some(&Value::int(alg.cose_id()))
        );
        let bytes = message.to_vec();
        assert_eq!(bytes[0], 0xd2, "tag 18");
        let parsed = CoseSign1::decode(&bytes, &cbor::Limits::default()).unwrap();
        assert_eq!(parsed.kid(), Some(&b"k1"[..]));
        let cose_key = CoseKey::from_jwk(&key.public_jwk()).unwrap();
        let verifying = cose_key.verifying_key(provider.as_ref(), alg).unwrap();
        parsed.verify(verifying.as_ref()).unwrap();

        // A key bound to another algorithm is refused before any signature work.
        let other = if alg == Algorithm::ES256 {
            Algorithm::ESP256
        } else {
            Algorithm::ES256
        };
        let wrong = KeyPair::generate(other).unwrap();
        let wrong_key = provider.verifying_key(&wrong.public_jwk(), other).unwrap();
        assert_eq!(
            parsed.verify(wrong_key.as_ref()).unwrap_err().kind(),
            "alg_mismatch",
            "{alg}"
        );
    }
}

#[test]
fn verification_uses_the_protected_bytes_as_received() {
    let provider = lanyard_crypto::provider();
    let key = KeyPair::generate(Algorithm::ES256).unwrap();
    let verifying = provider.verifying_key(&key.public_jwk(), Algorithm::ES256).unwrap();
    // A protected header in a valid but non-deterministic order: {16: 61, 1: -7}.
    let protected_bytes = unhex("a210183d0126");
    let payload = b"claims".to_vec();
    let mut sig_structure = Vec::new();
    Value::Array(vec![
        Value::text("Signature1"),
        Value::bytes(protected_bytes.clone()),
        Value::bytes(Vec::new()),
        Value::bytes(payload.clone()),
    ])
    .encode_into(&mut sig_structure);
    let signature = key.sign(&sig_structure).unwrap();
    let message = Value::Tag(
        18,
        Box::new(Value::Array(vec![
            Value::bytes(protected_bytes),
            Value::Map(vec![]),
            Value::bytes(payload),
            Value::bytes(signature),
        ])),
    );
    let parsed = CoseSign1::from_value(message.clone()).unwrap();
    parsed.verify(verifying.as_ref()).unwrap();
    // Re-encoding the header deterministically would change the signed bytes; the
    // message keeps them, so it still verifies after a round trip.
    let again = CoseSign1::decode(&parsed.to_vec(), &cbor::Limits::default()).unwrap();
    again.verify(verifying.as_ref()).unwrap();
    assert_eq!(again.to_vec(), message.to_vec());
}

#[test]
fn sign1_header_rules() {
    let key = KeyPair::generate(Algorithm::EdDSA).unwrap();
    let err = |value: Value| CoseSign1::from_value(value).unwrap_err().kind();
    let good = CoseSign1::sign(vec![], vec![], b"p".to_vec(), &key).unwrap().to_value();
    let Value::Tag(_, inner) = &good else { panic!() };
    let Value::Array(items) = inner.as_ref().clone() else {
        panic!()
    };
    assert_eq!(err(Value::Tag(17, inner.clone())), "cose_wrong_tag");
    assert_eq!(err(inner.as_ref().clone()), "cose_wrong_tag");
    assert_eq!(
        err(Value::Tag(18, Box::new(Value::Array(items[..3].to_vec())))),
        "cose_malformed"
    );
    // A label in both buckets.
    let mut both = items.clone();
    both[1] = Value::map([(Value::int(1), Value::int(-8))]);
    assert_eq!(err(Value::Tag(18, Box::new(Value::Array(both)))), "cose_invalid_header");
    // A detached payload.
    let mut detached = items.clone();
    detached[2] = Value::Null;
    assert_eq!(
        err(Value::Tag(18, Box::new(Value::Array(detached)))),
        "cose_detached_payload"
    );
    // An array as a header label.
    let mut bad_label = items.clone();
    bad_label[1] = Value::map([(Value::Array(vec![]), Value::int(1))]);
    assert_eq!(
        err(Value::Tag(18, Box::new(Value::Array(bad_label)))),
        "cose_invalid_header"
    );
    // alg must agree with the key, and stay protected.
    let mismatch = CoseSign1::sign(protected(&[(1, Value::int(-7))]), vec![], b"p".to_vec(), &key);
    assert_eq!(mismatch.unwrap_err().kind(), "alg_mismatch");
    let unprotected_alg = CoseSign1::sign(vec![], vec![(Value::int(1), Value::int(-8))], b"p".to_vec(), &key);
    assert_eq!(unprotected_alg.unwrap_err().kind(), "cose_invalid_header");
    // crit naming an unknown label.
    let crit = CoseSign1::sign(
        protected(&[(2, Value::Array(vec![Value::int(99)])), (99, Value::int(1))]),
        vec![],
        b"p".to_vec(),
        &key,
    )
    .unwrap();
    assert_eq!(crit.check_critical(&[]).unwrap_err().kind(), "cose_unknown_crit");
    crit.check_critical(&[99]).unwrap();
    // A protected alg that is HMAC (5 = HMAC 256/256).
    let mut hmac = items.clone();
    hmac[0] = Value::bytes(Value::map([(Value::int(1), Value::int(5))]).to_vec());
    let hmac = CoseSign1::from_value(Value::Tag(18, Box::new(Value::Array(hmac)))).unwrap();
    assert_eq!(hmac.algorithm().unwrap_err().kind(), "alg_not_allowed");
}

/// draft-ietf-spice-sd-cwt Appendix C: the holder and issuer keys and their RFC 9679
/// thumbprints, and their JWK forms with RFC 7638 thumbprints.
#[test]
fn draft_keys_and_thumbprints() {
    let provider = lanyard_crypto::provider();
    let holder = CoseKey::decode(&unhex(concat!(
        "a4010220012158208554eb275dcd6fbd1c7ac641aa2c90d92022fd0d3024b5af18c7cc61ad527a2d",
        "2258204dc7ae2c677e96d0cc82597655ce92d5503f54293d87875d1e79ce4770194343"
    )))
    .unwrap();
    assert_eq!(
        hex(holder
            .thumbprint(provider.as_ref(), DigestAlgorithm::Sha256)
            .unwrap()
            .as_bytes()),
        "8343d73cdfcb81f2c7cd11a5f317be8eb34e4807ec8c9ceb282495cffdf037e0"
    );
    assert_eq!(
        holder.thumbprint_uri(provider.as_ref()).unwrap(),
        "urn:ietf:params:oauth:ckt:sha-256:g0PXPN_LgfLHzRGl8xe-jrNOSAfsjJzrKCSVz_3wN-A"
    );
    let jwk = holder.to_jwk();
    assert_eq!(jwk.x.as_deref(), Some("hVTrJ13Nb70cesZBqiyQ2SAi_Q0wJLWvGMfMYa1Sei0"));
    assert_eq!(
        jwk.thumbprint(provider.as_ref()).unwrap(),
        "WRQ2RbY5RYJCIxfDQL9agl9fFSCYVu4Xocqb6zerc1M"
    );
    assert_eq!(CoseKey::from_jwk(&jwk).unwrap(), holder);

    // The issuer key of C.2, with kid and alg ESP384 (-51).
    let issuer = CoseKey::decode(&unhex(concat!(
        "a6010202782068747470733a2f2f6973737565722e6578616d706c652f63776b332e63626f720338322002",
        "215830c31798b0c7885fa3528fbf877e5b4c3a6dc67a5a5dc6b307b728c3725926f2abe5fb4964cd91e3948a5493f6ebb6cbbf",
        "2258308f6c7ec761691cad374c4daa9387453f18058ece58eb0a8e84a055a31fb7f9214b27509522c159e764f8711e11609554"
    )));
    // kid in C.2 is a text string; COSE_Key kid is a byte string, so the draft's EDN key
    // is refused as printed.
    assert_eq!(issuer.unwrap_err().kind(), "invalid_key");
    let issuer = CoseKey::decode(&unhex(concat!(
        "a50102033832200221583",
        "0c31798b0c7885fa3528fbf877e5b4c3a6dc67a5a5dc6b307b728c3725926f2abe5fb4964cd91e3948a5493f6ebb6cbbf",
        "2258308f6c7ec761691cad374c4daa9387453f18058ece58eb0a8e84a055a31fb7f9214b27509522c159e764f8711e11609554"
    )))
    .unwrap();
    assert_eq!(issuer.alg, Some(Algorithm::ESP384));
    assert_eq!(
        hex(issuer
            .thumbprint(provider.as_ref(), DigestAlgorithm::Sha256)
            .unwrap()
            .as_bytes()),
        "554550a611c9807b3462cfec4a690a1119bc43b571da1219782133f5fd6dbcb0"
    );
    assert_eq!(
        issuer.to_jwk().thumbprint(provider.as_ref()).unwrap(),
        "GNTdtwZdlFNX45ct7navTt3HwoX7Qu_PqQDGpPhDeFA"
    );
    // The key only verifies its own algorithm.
    assert_eq!(
        issuer
            .verifying_key(provider.as_ref(), Algorithm::ES384)
            .unwrap_err()
            .kind(),
        "alg_mismatch"
    );
    issuer.verifying_key(provider.as_ref(), Algorithm::ESP384).unwrap();
}

#[test]
fn cose_keys_refuse_what_they_cannot_be() {
    let bad = |edn_hex: &str| CoseKey::decode(&unhex(edn_hex)).unwrap_err().kind();
    // {1: 2, -1: 1, -2: h'00', -3: h'00'}: coordinates of the wrong length.
    assert_eq!(bad("a401022001214100224100"), "invalid_key");
    assert_eq!(bad("a4010220012141002241"), "cbor_truncated");
    // A private EC key (d, -4) is never accepted as a COSE_Key here.
    let ec = KeyPair::generate(Algorithm::ES256).unwrap();
    let mut private = CoseKey::from_jwk(&ec.public_jwk()).unwrap().to_value();
    if let Value::Map(entries) = &mut private {
        entries.push((Value::int(-4), Value::bytes(vec![1; 32])));
    }
    assert_eq!(CoseKey::from_value(&private).unwrap_err().kind(), "invalid_key");
    // kty 4 (symmetric) is not a signature key.
    assert_eq!(bad("a20104204100"), "invalid_key");
    // A compressed point (y as a boolean).
    let mut compressed = CoseKey::from_jwk(&ec.public_jwk()).unwrap().to_value();
    if let Value::Map(entries) = &mut compressed {
        entries.retain(|(k, _)| k.as_i64() != Some(-3));
        entries.push((Value::int(-3), Value::Bool(true)));
    }
    assert_eq!(CoseKey::from_value(&compressed).unwrap_err().kind(), "invalid_key");
    // alg that does not fit the curve.
    let mut ill_fitting = CoseKey::from_jwk(&ec.public_jwk()).unwrap().to_value();
    if let Value::Map(entries) = &mut ill_fitting {
        entries.retain(|(k, _)| k.as_i64() != Some(3));
        entries.push((Value::int(3), Value::int(-35)));
    }
    assert_eq!(CoseKey::from_value(&ill_fitting).unwrap_err().kind(), "invalid_key");
    // Private JWKs are refused too.
    assert_eq!(
        CoseKey::from_jwk(&ec.private_jwk().unwrap()).unwrap_err().kind(),
        "invalid_key"
    );
}

#[test]
fn key_sets_convert_to_jwk_sets_and_back() {
    let keys: Vec<CoseKey> = [
        Algorithm::ESP256,
        Algorithm::Ed25519,
        Algorithm::ES384,
        Algorithm::RS256,
    ]
    .into_iter()
    .map(|alg| {
        let key = KeyPair::generate(alg).unwrap().with_kid(format!("key-{alg}"));
        CoseKey::from_jwk(&key.public_jwk()).unwrap()
    })
    .collect();
    let set = CoseKeySet { keys };
    let decoded = CoseKeySet::decode(&set.to_vec()).unwrap();
    assert_eq!(decoded, set);
    let jwks = set.to_jwk_set();
    assert_eq!(jwks.keys.len(), 4);
    assert_eq!(jwks.keys[1].crv.as_deref(), Some("Ed25519"));
    assert_eq!(jwks.keys[1].alg.as_deref(), Some("Ed25519"));
    assert_eq!(CoseKeySet::from_jwk_set(&jwks).unwrap(), set);
    assert!(set.find(b"key-ESP256").is_some());
    let parsed: Jwk = Jwk::from_json(jwks.keys[0].to_json().as_bytes()).unwrap();
    assert_eq!(parsed.alg.as_deref(), Some("ESP256"));
}
