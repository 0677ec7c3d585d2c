//! `CompactJws::parse` and `decode_unverified` on arbitrary text: never panic, and agree
//! with each other.
#![no_main]

use lanyard_core::jose::{CompactJws, MAX_TOKEN_BYTES, decode_unverified};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Lossy, so that every input is exercised (invalid UTF-8 becomes U+FFFD).
    let token = String::from_utf8_lossy(data);
    let token: &str = &token;

    let parsed = CompactJws::parse(token);
    let claims_ok = match &parsed {
        Ok(jws) => {
            assert_eq!(jws.as_str(), token);
            assert!(token.len() <= MAX_TOKEN_BYTES);
            // The signing input is `header.payload`, a prefix of the token followed by '.'.
            let si = jws.signing_input();
            assert!(token.as_bytes().starts_with(si));
            assert_eq!(token.as_bytes().get(si.len()), Some(&b'.'));
            assert_eq!(si.iter().filter(|b| **b == b'.').count(), 1);
            let header = jws.header();
            assert_eq!(header.members.get("alg").and_then(|v| v.as_str()), Some(header.alg.as_str()));
            assert!(!header.members.contains_key("crit"));
            if let Ok(alg) = header.algorithm() {
                assert_eq!(alg.as_str(), header.alg);
            }
            let _ = jws.payload();
            let claims = jws.claims();
            if let Err(e) = &claims {
                let _ = (e.to_string(), e.kind());
            }
            claims.is_ok()
        }
        Err(e) => {
            let _ = (e.to_string(), e.kind());
            false
        }
    };

    // decode_unverified is parse + claims: it succeeds exactly when both do.
    match decode_unverified(token) {
        Ok(decoded) => {
            assert!(claims_ok, "decode_unverified accepted what parse/claims refused");
            if let Ok(jws) = &parsed {
                assert_eq!(&decoded.header, &jws.header().members);
            }
        }
        Err(e) => {
            let _ = (e.to_string(), e.kind());
            assert!(!claims_ok, "decode_unverified refused what parse/claims accepted: {e}");
        }
    }
});
