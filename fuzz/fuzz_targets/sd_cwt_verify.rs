//! SD-KBT verification and SD-CWT holder validation against fixed keys: one Ed25519
//! issuer key generated at start-up and one Ed25519 holder key.
//!
//! The input is split at 0xff bytes into `P 0xff U 0xff K`:
//!
//! 1. Raw mode: the whole input is verified as an SD-KBT, and received as an SD-CWT. Only
//!    this harness holds the issuer key, so both must fail (an `Ok` would be a forged
//!    signature accepted), and never panic.
//! 2. Signed mode (to reach the disclosure and restore logic): `U` is decoded as the SD-CWT's
//!    unprotected header (`{}` if it does not decode); `P` is decoded as the payload, its
//!    `cnf` set to the holder key and every text `"$Dn"` replaced by the SHA-256 digest (full
//!    item) of disclosure `n` of `U`'s `sd_claims` (raw `P` is used if it does not decode);
//!    the harness signs it as an SD-CWT and wraps it in an SD-KBT whose raw payload is `K`,
//!    signed by the holder key. Results may be `Ok`; an `Ok` must hold restored claims with
//!    no redaction left in them, nested at most 16 levels, and the audience must have been
//!    checked.
#![no_main]

use std::sync::{Arc, OnceLock};

use lanyard_core::cbor::{self, Limits, Value};
use lanyard_core::cose::{CoseKey, CoseSign1};
use lanyard_core::cwt::Confirmation;
use lanyard_core::spice::sd_cwt::{
    Disclosure, DigestInput, HolderSdCwt, IssuerKey, PresentationContext, SdCwtPolicy, SdCwtVerifier,
};
use lanyard_core::{Algorithm, CryptoProvider, DigestAlgorithm, SigningKey, UnixTime, VerifyingKey};
use libfuzzer_sys::fuzz_target;

const NOW: UnixTime = UnixTime(1_800_000_000);
const AUDIENCE: &str = "https://verifier.example/app";

struct Fixture {
    provider: Arc<dyn CryptoProvider>,
    issuer: Arc<dyn SigningKey>,
    issuer_public: Arc<dyn VerifyingKey>,
    holder: Arc<dyn SigningKey>,
    holder_cose: CoseKey,
    verifier: SdCwtVerifier,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let provider = lanyard_crypto::provider();
        let issuer = provider.generate_key(Algorithm::Ed25519).expect("issuer key");
        let holder = provider.generate_key(Algorithm::Ed25519).expect("holder key");
        let issuer_public = provider
            .verifying_key(&issuer.public_jwk(), Algorithm::Ed25519)
            .expect("issuer public key");
        let holder_cose = CoseKey::from_jwk(&holder.public_jwk()).expect("holder COSE key");
        let verifier = SdCwtVerifier::new(provider.clone(), SdCwtPolicy::default())
            .with_issuer(IssuerKey::new(issuer_public.clone()));
        Fixture {
            provider,
            issuer,
            issuer_public,
            holder,
            holder_cose,
            verifier,
        }
    })
}

/// Replaces every text `"$Dn"` by the digest of disclosure `n`.
fn fill_digests(value: &mut Value, digests: &[Vec<u8>]) {
    match value {
        Value::Text(t) => {
            if let Some(d) = t
                .strip_prefix("$D")
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| digests.get(n))
            {
                *value = Value::Bytes(d.clone());
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| fill_digests(v, digests)),
        Value::Map(entries) => entries.iter_mut().for_each(|(_, v)| fill_digests(v, digests)),
        Value::Tag(_, inner) => fill_digests(inner, digests),
        _ => {}
    }
}

/// No redaction markers are left in restored claims, and they nest at most 16 levels.
fn check_restored(value: &Value, level: usize) {
    assert!(level <= 17, "restored claims nested {level} levels");
    match value {
        Value::Map(entries) => {
            for (k, v) in entries {
                assert!(!matches!(k, Value::Simple(59) | Value::Tag(..)), "a redaction key survived");
                check_restored(v, level + 1);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| check_restored(v, level + 1)),
        Value::Tag(tag, inner) => {
            assert!(![58, 60, 62].contains(tag), "tag {tag} survived the restore");
            check_restored(inner, level + 1);
        }
        Value::Simple(59) => panic!("simple(59) survived the restore"),
        _ => {}
    }
}

fn verify(f: &Fixture, kbt: &[u8]) -> Result<Value, lanyard_core::Error> {
    let context = PresentationContext {
        audience: AUDIENCE,
        nonce: None,
    };
    f.verifier.verify(kbt, &context, NOW).map(|v| {
        assert_eq!(v.kbt.aud.as_deref(), Some(AUDIENCE));
        v.claims
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let policy = SdCwtPolicy::default();

    // 1. Raw mode: nothing the fuzzer writes carries the issuer's signature.
    if let Ok(claims) = verify(f, data) {
        panic!("an SD-KBT the harness did not sign verified: {}", cbor::to_diagnostic(&claims));
    }
    let received = HolderSdCwt::receive(data, f.issuer_public.as_ref(), &f.holder_cose, f.provider.as_ref(), &policy, NOW);
    assert!(received.is_err(), "an SD-CWT the harness did not sign was accepted");

    // 2. Signed mode.
    let mut parts = data.splitn(3, |b| *b == 0xff);
    let (p, u, k) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let limits = Limits::default();
    let unprotected = match cbor::decode_with(u, &limits) {
        Ok(Value::Map(entries)) => entries,
        _ => Vec::new(),
    };
    let digests: Vec<Vec<u8>> = unprotected
        .iter()
        .find(|(l, _)| l.as_i64() == Some(17))
        .and_then(|(_, v)| v.as_array())
        .unwrap_or_default()
        .iter()
        .filter_map(|d| Disclosure::parse(d.as_bytes()?.to_vec(), &limits).ok())
        .filter_map(|d| d.digest(f.provider.as_ref(), DigestAlgorithm::Sha256, DigestInput::FullItem).ok())
        .map(|d| d.as_bytes().to_vec())
        .collect();
    let payload = match cbor::decode_with(p, &limits) {
        Ok(Value::Map(mut entries)) => {
            entries.retain(|(k, _)| k.as_i64() != Some(8));
            entries.push((Value::int(8), Confirmation::Key(f.holder_cose.clone()).to_value()));
            let mut map = Value::Map(entries);
            fill_digests(&mut map, &digests);
            map.to_vec()
        }
        _ => p.to_vec(),
    };
    let protected = vec![
        (Value::int(16), Value::int(293)),
        (Value::int(170), Value::int(-16)),
    ];
    let Ok(sd_cwt) = CoseSign1::sign(protected, unprotected, payload, f.issuer.as_ref()) else {
        return;
    };
    let kbt_protected = vec![(Value::int(13), sd_cwt.to_value()), (Value::int(16), Value::int(294))];
    let Ok(kbt) = CoseSign1::sign(kbt_protected, Vec::new(), k.to_vec(), f.holder.as_ref()) else {
        return;
    };
    if let Ok(claims) = verify(f, &kbt.to_vec()) {
        check_restored(&claims, 1);
    }
    if let Ok(held) = HolderSdCwt::receive(&sd_cwt.to_vec(), f.issuer_public.as_ref(), &f.holder_cose, f.provider.as_ref(), &policy, NOW) {
        check_restored(held.claims(), 1);
        // The holder saw every digest disclosed, so presenting everything restores the same.
        let all: Vec<usize> = (0..held.disclosures().len()).collect();
        if let Ok(kbt) = held.present(&all, &lanyard_core::spice::sd_cwt::KbtParams {
            audience: AUDIENCE,
            issued_at: Some(NOW),
            ..Default::default()
        }, f.holder.as_ref())
        {
            // The verifier also checks the SD-CWT's own aud, and decodes the SD-CWT nested
            // three levels deeper inside the SD-KBT; everything else must agree.
            match verify(f, &kbt) {
                Ok(restored) => assert_eq!(restored.to_vec(), held.claims().to_vec()),
                Err(e) if ["wrong_audience", "cbor_too_deep", "too_large"].contains(&e.kind()) => {}
                Err(e) => panic!("a full presentation of a valid SD-CWT was refused: {e}"),
            }
        }
    }
});
