//! The identifier parsers on arbitrary text. Accepted input is canonical and never
//! repaired: the parsed value's string is the input, its parts are slices of it, and
//! parsing that string again gives an equal value.
#![no_main]

use lanyard_core::{IdError, SpiffeId, TrustDomain, WimseId, WorkloadId};
use libfuzzer_sys::fuzz_target;

fn check_error(input: &str, e: &IdError) {
    // The error quotes at most 128 bytes of the input, cut on a char boundary.
    assert!(e.input.len() <= 128);
    assert!(input.starts_with(e.input.as_str()));
    let _ = (e.to_string(), e.kind.as_str());
}

/// `id` = `scheme` + `td` + `path`, with the parts as documented.
fn check_parts(input: &str, scheme: &str, td: &str, path: &str) {
    assert_eq!(format!("{scheme}{td}{path}"), input);
    assert!(!td.is_empty());
    assert!(!td.contains('/'));
    assert!(path.is_empty() || path.starts_with('/'));
    assert!(input.contains(td) && input.contains(path));
    assert!(input.len() <= lanyard_core::id::MAX_ID_BYTES);
    // The trust domain of any identifier is a valid bare trust domain.
    let parsed = TrustDomain::parse(td).expect("trust domain of a valid identifier parses");
    assert_eq!(parsed.name(), td);
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let input: &str = &input;

    let workload = WorkloadId::parse(input);
    let spiffe = SpiffeId::parse(input);
    let wimse = WimseId::parse(input);

    match &workload {
        Ok(id) => {
            assert_eq!(id.as_str(), input, "no repair");
            assert_eq!(id.to_string(), input);
            let scheme = if id.as_spiffe().is_some() { "spiffe://" } else { "wimse://" };
            check_parts(input, scheme, id.trust_domain(), id.path());
            assert_eq!(WorkloadId::parse(id.as_str()).as_ref(), Ok(id));
            assert_eq!(input.parse::<WorkloadId>().as_ref(), Ok(id));
            // serde goes through the same parser.
            let json = serde_json::to_string(id).expect("serialize");
            assert_eq!(serde_json::from_str::<WorkloadId>(&json).ok().as_ref(), Some(id));
        }
        Err(e) => check_error(input, e),
    }

    match &spiffe {
        Ok(id) => {
            assert_eq!(id.as_str(), input, "no repair");
            check_parts(input, "spiffe://", id.trust_domain_name(), id.path());
            assert_eq!(SpiffeId::parse(id.as_str()).as_ref(), Ok(id));
            assert_eq!(id.is_trust_domain_id(), id.path().is_empty());
            let td = id.trust_domain();
            assert_eq!(td.name(), id.trust_domain_name());
            assert_eq!(SpiffeId::from_parts(&td, id.path()).as_ref(), Ok(id));
            // WorkloadId picks the SPIFFE parser for this input and agrees with it.
            assert_eq!(workload.as_ref().ok().and_then(WorkloadId::as_spiffe), Some(id));
        }
        Err(e) => check_error(input, e),
    }

    match &wimse {
        Ok(id) => {
            assert_eq!(id.as_str(), input, "no repair");
            check_parts(input, "wimse://", id.trust_domain_name(), id.path());
            assert!(!id.path().is_empty());
            assert_eq!(WimseId::parse(id.as_str()).as_ref(), Ok(id));
            assert_eq!(workload.as_ref().ok(), Some(&WorkloadId::Wimse(id.clone())));
        }
        Err(e) => check_error(input, e),
    }

    // WorkloadId accepts exactly what one of the two schemes accepts.
    assert_eq!(workload.is_ok(), spiffe.is_ok() || wimse.is_ok());

    match TrustDomain::parse(input) {
        Ok(td) => {
            let name = td.name();
            assert!(input == name || input.strip_prefix("spiffe://") == Some(name), "no repair");
            assert!(!name.is_empty() && input.contains(name));
            assert_eq!(TrustDomain::parse(name).as_ref(), Ok(&td));
            let id = td.id_string();
            assert_eq!(TrustDomain::parse(&id).as_ref(), Ok(&td));
            let sid = SpiffeId::parse(&id).expect("a trust domain's SPIFFE ID parses");
            assert!(sid.is_trust_domain_id());
            assert_eq!(sid.trust_domain(), td);
        }
        Err(e) => check_error(input, &e),
    }
});
