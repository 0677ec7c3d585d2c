//! The strict CBOR decoder on arbitrary bytes, and the COSE / SD-CWT parsers that sit on
//! it: never panic; whatever decodes re-encodes deterministically to bytes that decode to
//! the same item; the encoding is a fixed point.
#![no_main]

use lanyard_core::cbor::{self, DiagOptions, Limits};
use lanyard_core::cose::{CoseKey, CoseKeySet, CoseSign1};
use lanyard_core::cwt::{Confirmation, StandardClaims};
use lanyard_core::spice::sd_cwt::{Disclosure, EncryptedDisclosure};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_len: 64 * 1024,
    max_depth: 24,
};

fuzz_target!(|data: &[u8]| {
    let decoded = cbor::decode_with(data, &LIMITS);
    let Ok(value) = decoded else {
        let e = decoded.unwrap_err();
        assert!(e.offset <= data.len().max(LIMITS.max_len), "{e}");
        let _ = (e.to_string(), e.kind.as_str());
        return;
    };
    // Deterministic re-encoding is a fixed point and decodes to the same item (compared
    // by encoding, since NaN != NaN).
    let encoded = value.to_vec();
    let again = cbor::decode_with(&encoded, &Limits { max_len: usize::MAX, max_depth: 24 })
        .expect("the deterministic encoding of a decoded item decodes");
    assert_eq!(again.to_vec(), encoded);
    // Preferred serialization was required, so only key order (and NaN payloads) can
    // make the input differ from its re-encoding: the lengths agree.
    assert_eq!(encoded.len(), data.len());
    let _ = cbor::to_diagnostic(&value);
    let _ = cbor::to_diagnostic_pretty(&value, &DiagOptions::default());

    // The structures built on it.
    if let Ok(message) = CoseSign1::from_value(value.clone()) {
        let _ = (message.algorithm(), message.check_critical(&[]), message.sig_structure(b""));
        let round = CoseSign1::decode(&message.to_vec(), &Limits { max_len: usize::MAX, max_depth: 24 })
            .expect("a parsed COSE_Sign1 re-encodes to one");
        assert_eq!(round.protected_bytes(), message.protected_bytes());
        assert_eq!(round.payload(), message.payload());
    }
    if let Ok(key) = CoseKey::from_value(&value) {
        let jwk = key.to_jwk();
        assert!(!jwk.is_private());
        assert_eq!(CoseKey::from_jwk(&jwk).map(|k| k.material), Ok(key.material.clone()));
        assert_eq!(CoseKey::from_value(&key.to_value()).as_ref(), Ok(&key));
    }
    let _ = CoseKeySet::decode(data);
    let _ = Confirmation::from_value(&value);
    if let Some(map) = value.as_map() {
        let _ = StandardClaims::from_map(map);
    }
    let _ = EncryptedDisclosure::from_value(&value);
    if let Ok(disclosure) = Disclosure::parse(data.to_vec(), &LIMITS) {
        assert_eq!(disclosure.encoded(), data);
    }
});
