//! SD-CWT through the public API with real keys: issue → receive → present → verify for
//! fully specified algorithms and every `sd_alg`, nested selections, decoys, encrypted
//! disclosures, the content-only digest mode, and what the issuer refuses to sign.
//! (The draft's own examples and the negative cases are data: `testdata/vectors/sd_cwt`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sd_cwt_fixtures;

use std::sync::Arc;

use lanyard_core::cbor::Value;
use lanyard_core::cose::CoseKey;
use lanyard_core::spice::sd_cwt::{
    AeadKey, DigestInput, Disclosure, DisclosureKind, EncryptedDisclosure, HolderSdCwt, IssuerKey, KbtParams,
    PresentationContext, RandomSalts, SdCwtIssuer, SdCwtPolicy, SdCwtVerifier, VerifiedPresentation, header,
    path_to_string,
};
use lanyard_core::{AeadAlgorithm, Algorithm, CryptoProvider, DigestAlgorithm, Error, SigningKey};
use lanyard_crypto::KeyPair;
use lanyard_testing::NOW;
use sd_cwt_fixtures::{tbr, workload_claims};

const AUDIENCE: &str = "https://service.example.org";

struct World {
    provider: Arc<dyn CryptoProvider>,
    issuer_key: Arc<KeyPair>,
    holder: KeyPair,
}

fn world(issuer_alg: Algorithm, holder_alg: Algorithm) -> World {
    World {
        provider: lanyard_crypto::provider(),
        issuer_key: Arc::new(KeyPair::generate(issuer_alg).unwrap()),
        holder: KeyPair::generate(holder_alg).unwrap(),
    }
}

impl World {
    fn issue(&self, sd_alg: DigestAlgorithm, input: DigestInput) -> Vec<u8> {
        SdCwtIssuer::new(self.provider.clone(), self.issuer_key.clone())
            .with_kid(b"issuer-1".to_vec())
            .with_sd_alg(sd_alg)
            .with_digest_input(input)
            .issue(
                &workload_claims(&self.holder, NOW),
                &mut RandomSalts::new(self.provider.clone()),
            )
            .unwrap()
            .to_vec()
    }

    fn policy(&self, input: DigestInput) -> SdCwtPolicy {
        SdCwtPolicy {
            digest_input: input,
            ..SdCwtPolicy::default()
        }
    }

    fn receive(&self, token: &[u8], input: DigestInput) -> HolderSdCwt {
        let issuer_public = self
            .provider
            .verifying_key(&self.issuer_key.public_jwk(), self.issuer_key.algorithm())
            .unwrap();
        HolderSdCwt::receive(
            token,
            issuer_public.as_ref(),
            &CoseKey::from_jwk(&self.holder.public_jwk()).unwrap(),
            self.provider.as_ref(),
            &self.policy(input),
            NOW,
        )
        .unwrap()
    }

    fn verifier(&self, input: DigestInput) -> SdCwtVerifier {
        let issuer_public = self
            .provider
            .verifying_key(&self.issuer_key.public_jwk(), self.issuer_key.algorithm())
            .unwrap();
        SdCwtVerifier::new(self.provider.clone(), self.policy(input)).with_issuer(
            IssuerKey::new(issuer_public)
                .with_kid(b"issuer-1".to_vec())
                .with_issuer("https://lanyard.example.org"),
        )
    }
}

impl World {
    /// Verifies `kbt` for [`AUDIENCE`] and `nonce` at [`NOW`].
    fn verify(&self, kbt: &[u8], nonce: Option<&[u8]>, input: DigestInput) -> Result<VerifiedPresentation, Error> {
        self.verifier(input).verify(
            kbt,
            &PresentationContext {
                audience: AUDIENCE,
                nonce,
            },
            NOW,
        )
    }
}

fn params<'a>(nonce: &'a [u8]) -> KbtParams<'a> {
    KbtParams {
        audience: AUDIENCE,
        issued_at: Some(NOW),
        cnonce: Some(nonce),
        ..KbtParams::default()
    }
}

fn claim_key(d: &Disclosure) -> Option<&str> {
    match d.kind() {
        DisclosureKind::Claim { key, .. } => key.as_text(),
        _ => None,
    }
}

#[test]
fn issue_present_verify_across_algorithms_and_digests() {
    for (issuer_alg, holder_alg, sd_alg) in [
        (Algorithm::ESP256, Algorithm::ESP256, DigestAlgorithm::Sha256),
        (Algorithm::ESP384, Algorithm::ES256, DigestAlgorithm::Sha384),
        (Algorithm::Ed25519, Algorithm::Ed25519, DigestAlgorithm::Sha512),
        (Algorithm::EdDSA, Algorithm::ES384, DigestAlgorithm::Sha256),
    ] {
        let w = world(issuer_alg, holder_alg);
        let token = w.issue(sd_alg, DigestInput::FullItem);
        let held = w.receive(&token, DigestInput::FullItem);
        // Everything is visible to the holder: 5 claims/elements and 2 decoys.
        assert_eq!(held.disclosures().len(), 7, "{issuer_alg}");
        assert_eq!(held.claims().get(&Value::text("env")), Some(&Value::text("prod")));

        // Disclose the commit only: its parent "build" comes along.
        let commit = held.select(|d| claim_key(d) == Some("commit"));
        assert_eq!(commit.len(), 1);
        assert_eq!(path_to_string(held.path(commit[0])), "build.commit");
        let paths: Vec<String> = (0..7).map(|i| path_to_string(held.path(i))).collect();
        for expected in ["env", "region", "build", "selectors[1]"] {
            assert!(paths.iter().any(|p| p == expected), "{expected} in {paths:?}");
        }
        let nonce = [7u8; 16];
        let kbt = held.present(&commit, &params(&nonce), &w.holder).unwrap();
        let verified = w.verify(&kbt, Some(&nonce), DigestInput::FullItem).unwrap();
        let claims = &verified.claims;
        assert_eq!(
            claims.get(&Value::text("build")),
            Some(&Value::map([
                (Value::text("repo"), Value::text("git.example.org/billing")),
                (Value::text("commit"), Value::text("4b825dc")),
            ]))
        );
        assert_eq!(claims.get(&Value::text("env")), None, "not disclosed");
        assert_eq!(claims.get(&Value::text("region")), None, "not disclosed");
        assert_eq!(
            claims.get(&Value::text("selectors")),
            Some(&Value::Array(vec![Value::text("unix:uid:1000")])),
            "the undisclosed element and the decoy are removed"
        );
        assert_eq!(verified.disclosed, 2);
        assert_eq!(verified.sd_alg, sd_alg);
        assert_eq!(verified.standard.sub.as_deref(), Some("spiffe://example.org/billing"));
        assert_eq!(verified.kbt.aud.as_deref(), Some(AUDIENCE));
    }
}

#[test]
fn nothing_disclosed_omits_sd_claims() {
    let w = world(Algorithm::ESP256, Algorithm::ESP256);
    let held = w.receive(
        &w.issue(DigestAlgorithm::Sha256, DigestInput::FullItem),
        DigestInput::FullItem,
    );
    let presented = held.presented(&[]).unwrap();
    assert!(presented.unprotected_value(header::SD_CLAIMS).is_none());
    let kbt = held.present(&[], &params(b"n"), &w.holder).unwrap();
    let verified = w.verify(&kbt, Some(b"n"), DigestInput::FullItem).unwrap();
    assert_eq!(verified.disclosed, 0);
    // env, region, build and a decoy at the top; an element and a decoy in selectors
    // (commit is inside build, never reached).
    assert_eq!(verified.undisclosed, 6);
    let keys: Vec<_> = verified
        .claims
        .as_map()
        .unwrap()
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(keys.len(), 7, "iss sub exp nbf iat cnf selectors: {keys:?}");
}

#[test]
fn content_only_mode_is_a_switch_on_both_sides() {
    let w = world(Algorithm::ESP256, Algorithm::ESP256);
    let token = w.issue(DigestAlgorithm::Sha256, DigestInput::ContentOnly);
    let held = w.receive(&token, DigestInput::ContentOnly);
    let all: Vec<usize> = (0..held.disclosures().len()).collect();
    let kbt = held.present(&all, &params(b"n"), &w.holder).unwrap();
    let context = PresentationContext {
        audience: AUDIENCE,
        nonce: Some(b"n"),
    };
    w.verifier(DigestInput::ContentOnly)
        .verify(&kbt, &context, NOW)
        .unwrap();
    assert_eq!(
        w.verifier(DigestInput::FullItem)
            .verify(&kbt, &context, NOW)
            .unwrap_err()
            .kind(),
        "sd_disclosure_unmatched"
    );
}

#[test]
fn holder_refuses_to_present_with_another_key_or_outside_the_window() {
    let w = world(Algorithm::ESP256, Algorithm::ESP256);
    let held = w.receive(
        &w.issue(DigestAlgorithm::Sha256, DigestInput::FullItem),
        DigestInput::FullItem,
    );
    let stranger = KeyPair::generate(Algorithm::ESP256).unwrap();
    assert_eq!(
        held.present(&[0], &params(b"n"), &stranger).unwrap_err().kind(),
        "sd_confirmation_key"
    );
    let late = KbtParams {
        issued_at: Some(NOW.plus(7200)),
        ..params(b"n")
    };
    assert_eq!(
        held.present(&[0], &late, &w.holder).unwrap_err().kind(),
        "sd_time_inconsistent"
    );
    assert_eq!(held.with_ancestors(&[99]).unwrap_err().kind(), "invalid_claim");
}

#[test]
fn encrypted_disclosures_round_trip_with_key_context() {
    let w = world(Algorithm::ESP256, Algorithm::ESP256);
    let provider = w.provider.clone();
    let token = w.issue(DigestAlgorithm::Sha256, DigestInput::FullItem);
    let held = w.receive(&token, DigestInput::FullItem);
    let region = held.select(|d| claim_key(d) == Some("region"))[0];
    let key = [9u8; 16];
    let encrypted = EncryptedDisclosure::encrypt(
        provider.as_ref(),
        AeadAlgorithm::Aes128Gcm,
        &key,
        vec![3u8; 12],
        &held.disclosures()[region],
        Some(Value::text("rp-1")),
    )
    .unwrap();
    assert_eq!(
        EncryptedDisclosure::from_value(&encrypted.to_value()).unwrap(),
        encrypted
    );
    // The encrypted entry travels in the SD-CWT's unprotected header (§12).
    let mut presented = held.presented(&[]).unwrap();
    presented
        .set_unprotected(vec![(
            Value::int(header::SD_AEAD_ENCRYPTED_CLAIMS),
            Value::Array(vec![encrypted.to_value()]),
        )])
        .unwrap();
    let kbt = lanyard_core::cose::CoseSign1::sign(
        vec![
            (Value::int(13), presented.to_value()),
            (Value::int(16), Value::int(294)),
        ],
        vec![],
        Value::map([
            (Value::int(3), Value::text(AUDIENCE)),
            (Value::int(6), Value::int(NOW.as_secs() as i64)),
        ])
        .to_vec(),
        &w.holder,
    )
    .unwrap()
    .to_vec();
    let context = PresentationContext {
        audience: AUDIENCE,
        nonce: None,
    };
    let with_key = w.verifier(DigestInput::FullItem).with_aead_key(AeadKey::new(
        AeadAlgorithm::Aes128Gcm,
        key.to_vec(),
        Some(Value::text("rp-1")),
    ));
    let verified = with_key.verify(&kbt, &context, NOW).unwrap();
    assert_eq!(
        verified.claims.get(&Value::text("region")),
        Some(&Value::text("eu-west-1"))
    );
    let without = w.verifier(DigestInput::FullItem).verify(&kbt, &context, NOW).unwrap();
    assert_eq!(without.claims.get(&Value::text("region")), None);
}

#[test]
fn issuer_refuses_unsafe_claim_sets() {
    let w = world(Algorithm::ESP256, Algorithm::ESP256);
    let issuer = SdCwtIssuer::new(w.provider.clone(), w.issuer_key.clone());
    let base = workload_claims(&w.holder, NOW);
    let with = |extra: (Value, Value)| {
        let Value::Map(mut entries) = base.clone() else {
            unreachable!()
        };
        entries.push(extra);
        Value::Map(entries)
    };
    let without = |label: i64| {
        let Value::Map(mut entries) = base.clone() else {
            unreachable!()
        };
        entries.retain(|(k, _)| k.as_i64() != Some(label));
        Value::Map(entries)
    };
    let kind = |claims: &Value| {
        issuer
            .issue(claims, &mut RandomSalts::new(w.provider.clone()))
            .unwrap_err()
            .kind()
    };
    // exp (never redacted, Table 2) marked for redaction; env both plain and tagged.
    assert_eq!(
        kind(&with((tbr(Value::int(4)), Value::int(1)))),
        "sd_invalid_preissuance"
    );
    assert_eq!(
        kind(&with((Value::text("env"), Value::text("dev")))),
        "sd_invalid_preissuance"
    );
    // A decoy number used twice, a decoy with a value, tag 58 on a map value, nested tags.
    assert_eq!(
        kind(&with((Value::Tag(62, Box::new(Value::int(1))), Value::Null))),
        "sd_invalid_preissuance"
    );
    assert_eq!(
        kind(&with((Value::Tag(62, Box::new(Value::int(9))), Value::int(1)))),
        "sd_invalid_preissuance"
    );
    assert_eq!(
        kind(&with((Value::text("x"), tbr(Value::int(1))))),
        "sd_invalid_preissuance"
    );
    assert_eq!(
        kind(&with((tbr(tbr(Value::text("y"))), Value::int(1)))),
        "sd_invalid_preissuance"
    );
    // simple(59) and tag 60 are outputs, not inputs.
    assert_eq!(
        kind(&with((Value::Simple(59), Value::Array(vec![])))),
        "sd_invalid_preissuance"
    );
    // Required claims.
    assert_eq!(kind(&without(1)), "missing_claim");
    assert_eq!(kind(&without(2)), "missing_claim");
    assert_eq!(kind(&without(8)), "missing_claim");
    // Deeper than 16 levels.
    let mut deep = Value::int(1);
    for _ in 0..16 {
        deep = Value::Array(vec![deep]);
    }
    assert_eq!(kind(&with((Value::text("deep"), deep))), "sd_too_deep");
}

#[test]
fn large_presentations_use_the_digest_index_with_the_same_rules() {
    // More than 16 disclosures: lookups go through a hash index instead of a scan.
    let w = world(Algorithm::ESP256, Algorithm::ESP256);
    let Value::Map(mut entries) = workload_claims(&w.holder, NOW) else {
        unreachable!()
    };
    for i in 0..20 {
        entries.push((tbr(Value::text(format!("extra-{i}"))), Value::int(i)));
    }
    let token = SdCwtIssuer::new(w.provider.clone(), w.issuer_key.clone())
        .issue(&Value::Map(entries), &mut RandomSalts::new(w.provider.clone()))
        .unwrap()
        .to_vec();
    let held = w.receive(&token, DigestInput::FullItem);
    assert_eq!(held.disclosures().len(), 27);
    let all: Vec<usize> = (0..27).collect();
    let kbt = held.present(&all, &params(b"n"), &w.holder).unwrap();
    let verified = w.verify(&kbt, Some(b"n"), DigestInput::FullItem).unwrap();
    assert_eq!(verified.claims.get(&Value::text("extra-19")), Some(&Value::int(19)));
    assert_eq!(verified.decoys, 2);

    // The same disclosure twice among 28 is still refused.
    let mut presented = held.presented(&all).unwrap();
    let mut disclosures: Vec<Value> = held.disclosures().iter().map(|d| d.to_value()).collect();
    disclosures.push(disclosures[3].clone());
    presented
        .set_unprotected(vec![(Value::int(header::SD_CLAIMS), Value::Array(disclosures))])
        .unwrap();
    let kbt = lanyard_core::cose::CoseSign1::sign(
        vec![
            (Value::int(13), presented.to_value()),
            (Value::int(16), Value::int(294)),
        ],
        vec![],
        Value::map([
            (Value::int(3), Value::text(AUDIENCE)),
            (Value::int(6), Value::int(NOW.as_secs() as i64)),
        ])
        .to_vec(),
        &w.holder,
    )
    .unwrap()
    .to_vec();
    assert_eq!(
        w.verify(&kbt, None, DigestInput::FullItem).unwrap_err().kind(),
        "sd_duplicate_disclosure"
    );
}
