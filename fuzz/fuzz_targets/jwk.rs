//! `Jwk::from_json` / `JwkSet::from_json` on arbitrary bytes, then everything a key is
//! used for: algorithm selection, thumbprints, `to_public`, and parsing by the aws-lc-rs
//! provider for every algorithm (usable or not).
#![no_main]

use lanyard_core::{Algorithm, Jwk, JwkSet};
use libfuzzer_sys::fuzz_target;

fn exercise(jwk: &Jwk) {
    let provider = lanyard_crypto::provider();
    let _ = format!("{jwk:?}");
    let _ = jwk.algorithm();

    let public = jwk.to_public();
    assert!(!public.is_private());
    assert!([&public.d, &public.p, &public.q, &public.dp, &public.dq, &public.qi].iter().all(|m| m.is_none()));
    assert_eq!(public.to_public(), public);
    assert_eq!((&public.kty, &public.crv, &public.x, &public.y, &public.n, &public.e),
               (&jwk.kty, &jwk.crv, &jwk.x, &jwk.y, &jwk.n, &jwk.e));

    // The thumbprint input is a JSON object, and does not depend on private members.
    match jwk.thumbprint_input() {
        Ok(input) => {
            let v: serde_json::Value = serde_json::from_str(&input).expect("thumbprint input is JSON");
            assert!(v.is_object());
            assert_eq!(public.thumbprint_input().ok().as_deref(), Some(input.as_str()));
            let _ = jwk.thumbprint(provider.as_ref()).expect("thumbprint after thumbprint_input");
        }
        Err(e) => {
            let _ = (e.to_string(), e.kind());
        }
    }

    match jwk.usable_algorithms() {
        Ok(algs) => {
            for alg in algs.iter() {
                let _ = provider.verifying_key(jwk, alg);
                if let Ok(key) = provider.verifying_key(&public, alg) {
                    assert_eq!(key.algorithm(), alg);
                    // Garbage signatures must be refused, not panic.
                    assert!(key.verify(b"message", &[0u8; 64]).is_err());
                }
            }
        }
        Err(e) => {
            let _ = (e.to_string(), e.kind());
        }
    }
    // A key that does not fit an algorithm must be refused, not panic.
    for alg in Algorithm::ALL {
        if let Err(e) = provider.verifying_key(&public, alg) {
            let _ = (e.to_string(), e.kind());
        }
    }
    if jwk.is_private() {
        if let Ok(key) = provider.signing_key(jwk) {
            let _ = key.public_jwk();
        }
    }

    // Serialization round-trips.
    let again = Jwk::from_json(jwk.to_json().as_bytes()).expect("to_json re-parses");
    assert_eq!(&again, jwk);
}

fuzz_target!(|data: &[u8]| {
    match Jwk::from_json(data) {
        Ok(jwk) => exercise(&jwk),
        Err(e) => {
            let _ = (e.to_string(), e.kind());
        }
    }
    match JwkSet::from_json(data) {
        Ok(set) => {
            for jwk in set.keys.iter().take(8) {
                exercise(jwk);
                if let Some(kid) = &jwk.kid {
                    assert!(set.find(kid).is_some());
                }
            }
            let again = JwkSet::from_json(set.to_json_pretty().as_bytes()).expect("to_json_pretty re-parses");
            assert_eq!(again, set);
        }
        Err(e) => {
            let _ = (e.to_string(), e.kind());
        }
    }
});
