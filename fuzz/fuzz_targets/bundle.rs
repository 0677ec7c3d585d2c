//! `SpiffeBundle::parse` on arbitrary bytes. An accepted bundle serializes with
//! `to_json` to a document that parses back to the same bundle (bar `ignored_keys`,
//! since skipped entries are not written), and loads into a trust store without panics.
#![no_main]

use std::sync::{Arc, OnceLock};

use lanyard_core::{SpiffeBundle, TrustDomain, TrustStore};
use libfuzzer_sys::fuzz_target;

fn td() -> &'static TrustDomain {
    static TD: OnceLock<TrustDomain> = OnceLock::new();
    TD.get_or_init(|| TrustDomain::parse("example.org").expect("example.org"))
}

fuzz_target!(|data: &[u8]| {
    let bundle = match SpiffeBundle::parse(td().clone(), data) {
        Ok(b) => b,
        Err(e) => {
            let _ = (e.to_string(), e.kind());
            return;
        }
    };
    assert_eq!(&bundle.trust_domain, td());
    // "private key material rejects the bundle": no accepted entry may carry any of the
    // private members (RFC 7518 §6.2.2, §6.3.2), not only `d`.
    for k in bundle
        .x509_authorities
        .iter()
        .chain(&bundle.jwt_authorities)
        .chain(&bundle.wit_authorities)
    {
        let private = [("d", &k.d), ("p", &k.p), ("q", &k.q), ("dp", &k.dp), ("dq", &k.dq), ("qi", &k.qi)];
        for (name, member) in private {
            assert!(member.is_none(), "bundle accepted an entry with private member {name:?}: {}", k.to_json());
        }
    }

    let json = bundle.to_json();
    let again = match SpiffeBundle::parse(td().clone(), json.as_bytes()) {
        Ok(b) => b,
        Err(e) => panic!("to_json output does not re-parse: {e}\n{json}"),
    };
    assert_eq!(again.ignored_keys, 0, "to_json wrote an entry that parse ignores");
    assert_eq!(
        again,
        SpiffeBundle {
            ignored_keys: 0,
            ..bundle.clone()
        }
    );
    assert_eq!(again.to_json(), json, "to_json is not stable");

    // A bundle that parsed may still hold keys the provider refuses; that must be an error.
    let store = TrustStore::new(lanyard_crypto::provider());
    match store.set_bundle(&bundle) {
        Ok(()) => {
            if !bundle.jwt_authorities.is_empty() || !bundle.wit_authorities.is_empty() {
                assert_eq!(store.trust_domains(), vec![td().name().to_owned()]);
            }
        }
        Err(e) => {
            let _ = (e.to_string(), e.kind());
        }
    }
    let _ = Arc::new(store);
});
