//! The certificates Lanyard issues, parsed back with x509-parser: every extension of the
//! X509-SVID.md profile (§2–§4) is checked, for roots, intermediates and leaves, and for
//! each way of supplying the subject key (generated, key pair, public key, CSR).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{NOW, id, root, td};
use lanyard_core::{Algorithm, SpiffeBundle};
use lanyard_crypto::KeyPair;
use lanyard_x509::{SubjectKey, X509Authority, X509Bundle, X509Svid};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_EXTENDED_KEY_USAGE,
    OID_X509_EXT_KEY_USAGE, OID_X509_EXT_SUBJECT_ALT_NAME, OID_X509_EXT_SUBJECT_KEY_IDENTIFIER,
};

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    assert!(rest.is_empty());
    cert
}

fn uris<'a>(c: &'a X509Certificate<'_>) -> Vec<&'a str> {
    sans(c)
        .into_iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(*u),
            _ => None,
        })
        .collect()
}

fn dns<'a>(c: &'a X509Certificate<'_>) -> Vec<&'a str> {
    sans(c)
        .into_iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(*d),
            _ => None,
        })
        .collect()
}

fn sans<'a>(c: &'a X509Certificate<'_>) -> Vec<&'a GeneralName<'a>> {
    c.subject_alternative_name()
        .unwrap()
        .map(|e| e.value.general_names.iter().collect())
        .unwrap_or_default()
}

fn ski(c: &X509Certificate<'_>) -> Vec<u8> {
    match c
        .get_extension_unique(&OID_X509_EXT_SUBJECT_KEY_IDENTIFIER)
        .unwrap()
        .unwrap()
        .parsed_extension()
    {
        ParsedExtension::SubjectKeyIdentifier(k) => k.0.to_vec(),
        other => panic!("{other:?}"),
    }
}

fn aki(c: &X509Certificate<'_>) -> Vec<u8> {
    match c
        .get_extension_unique(&OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER)
        .unwrap()
        .unwrap()
        .parsed_extension()
    {
        ParsedExtension::AuthorityKeyIdentifier(k) => k.key_identifier.as_ref().unwrap().0.to_vec(),
        other => panic!("{other:?}"),
    }
}

fn critical(c: &X509Certificate<'_>, oid: &x509_parser::der_parser::Oid<'_>) -> bool {
    c.get_extension_unique(oid).unwrap().unwrap().critical
}

/// Every rule of X509-SVID.md §3.2/§4 for a signing certificate.
fn assert_ca_profile(c: &X509Certificate<'_>, td_name: &str) {
    assert_eq!(c.version().0, 2, "v3");
    assert_eq!(uris(c), vec![format!("spiffe://{td_name}")]);
    assert!(dns(c).is_empty());
    let bc = c.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca);
    assert_eq!(bc.value.path_len_constraint, None);
    let ku = c.key_usage().unwrap().unwrap();
    assert!(ku.critical);
    assert!(ku.value.key_cert_sign() && ku.value.crl_sign());
    assert!(!ku.value.digital_signature() && !ku.value.key_encipherment());
    assert!(c.extended_key_usage().unwrap().is_none(), "no EKU on CAs");
    assert!(
        c.name_constraints().unwrap().is_none(),
        "no name constraints: webpki rejects URI constraints"
    );
    assert_eq!(ski(c).len(), 20);
    // Unique Subject: O=Lanyard, CN=<td> CA, serialNumber=<serial hex>.
    let subject = c.subject().to_string();
    assert!(subject.contains("O=Lanyard"), "{subject}");
    assert!(subject.contains(&format!("CN={td_name} CA")), "{subject}");
    let serial_hex = lanyard_core::hex::encode(c.raw_serial());
    assert_eq!(c.raw_serial().len(), 16);
    assert!(subject.contains(&serial_hex), "{subject} lacks serial {serial_hex}");
}

/// Every rule of X509-SVID.md §2, §3.1, §4 for a leaf.
fn assert_leaf_profile(c: &X509Certificate<'_>, spiffe_id: &str, dns_names: &[&str], rsa: bool) {
    assert_eq!(c.version().0, 2);
    assert_eq!(uris(c), vec![spiffe_id]);
    assert_eq!(dns(c), dns_names);
    assert_eq!(sans(c).len(), 1 + dns_names.len(), "no other SAN types");
    let bc = c.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && !bc.value.ca);
    let ku = c.key_usage().unwrap().unwrap();
    assert!(ku.critical, "key usage must be critical");
    assert!(ku.value.digital_signature());
    assert!(!ku.value.key_cert_sign() && !ku.value.crl_sign());
    assert_eq!(ku.value.key_encipherment(), rsa, "keyEncipherment only for RSA");
    assert!(!ku.value.key_agreement());
    let eku = c.extended_key_usage().unwrap().unwrap();
    assert!(eku.value.server_auth && eku.value.client_auth);
    assert!(!eku.value.any && eku.value.other.is_empty());
    assert!(!critical(c, &OID_X509_EXT_EXTENDED_KEY_USAGE));
    assert!(
        !critical(c, &OID_X509_EXT_SUBJECT_ALT_NAME),
        "Subject is not empty, so SAN need not be critical"
    );
    assert!(critical(c, &OID_X509_EXT_KEY_USAGE) && critical(c, &OID_X509_EXT_BASIC_CONSTRAINTS));
    assert_eq!(ski(c).len(), 20);
    assert_eq!(c.raw_serial().len(), 16);
    assert!(c.raw_serial()[0] & 0x80 == 0, "serial is positive");
    let ext_oids: Vec<String> = c.extensions().iter().map(|e| e.oid.to_id_string()).collect();
    assert_eq!(ext_oids.len(), 6, "exactly SAN, KU, EKU, SKI, BC, AKI: {ext_oids:?}");
}

#[test]
fn root_ca_profile() {
    let ca = root("example.org");
    let c = parse(ca.cert_der());
    assert_ca_profile(&c, "example.org");
    assert_eq!(c.subject(), c.issuer());
    assert_eq!(aki(&c), ski(&c), "a self-signed CA's AKI is its own SKI");
    assert_eq!(c.validity().not_before.timestamp(), NOW.0 as i64 - 10);
    assert_eq!(c.validity().not_after.timestamp(), NOW.0 as i64 + 30 * 86_400);
    assert!(ca.is_self_signed());
    // Two CAs of the same trust domain never share a Subject.
    assert_ne!(parse(root("example.org").cert_der()).subject(), c.subject());
}

#[test]
fn intermediate_ca_profile_and_capped_lifetime() {
    let up = root("example.org");
    let inter = X509Authority::new_intermediate(
        lanyard_crypto::provider(),
        &td("example.org"),
        &up,
        None,
        365 * 86_400,
        NOW,
    )
    .unwrap();
    let c = parse(inter.cert_der());
    assert_ca_profile(&c, "example.org");
    assert_eq!(c.issuer(), parse(up.cert_der()).subject());
    assert_eq!(aki(&c), ski(&parse(up.cert_der())));
    assert_eq!(inter.not_after(), up.not_after(), "capped at the upstream's notAfter");
    assert!(!inter.is_self_signed());
    // An upstream of another trust domain is refused.
    let other = root("other.org");
    let e = X509Authority::new_intermediate(lanyard_crypto::provider(), &td("example.org"), &other, None, 3600, NOW)
        .unwrap_err();
    assert_eq!(e.kind(), "trust_domain_mismatch");
}

#[test]
fn leaf_profile_generated_key() {
    let ca = root("example.org");
    let svid = ca
        .issue_svid(
            &id("spiffe://example.org/ns/prod/sa/billing"),
            SubjectKey::Generate,
            3600,
            &[],
            NOW,
        )
        .unwrap();
    assert_eq!(svid.chain.len(), 1, "a root-issued SVID carries only its leaf");
    let c = parse(&svid.chain[0]);
    assert_leaf_profile(&c, "spiffe://example.org/ns/prod/sa/billing", &[], false);
    assert_eq!(c.subject().to_string(), "O=Lanyard");
    assert_eq!(c.issuer(), parse(ca.cert_der()).subject());
    assert_eq!(aki(&c), ski(&parse(ca.cert_der())));
    assert_eq!(c.validity().not_before.timestamp(), NOW.0 as i64 - 10);
    assert_eq!(c.validity().not_after.timestamp(), NOW.0 as i64 + 3600);
    // The key is P-256 and belongs to the leaf.
    assert_eq!(c.public_key().parsed().unwrap().key_size(), 256);
    let reloaded = X509Svid::from_pem(&svid.chain_pem(), svid.key_pem().as_deref()).unwrap();
    assert_eq!(reloaded.chain, svid.chain);
    assert_eq!(
        reloaded.spiffe_id().unwrap().as_str(),
        "spiffe://example.org/ns/prod/sa/billing"
    );
}

#[test]
fn leaf_profile_with_dns_names_and_intermediate() {
    let up = root("example.org");
    let inter = X509Authority::new_intermediate(lanyard_crypto::provider(), &td("example.org"), &up, None, 86_400, NOW)
        .unwrap();
    let dns_names = vec!["web.example.org".to_owned(), "*.svc.example.org".to_owned()];
    let svid = inter
        .issue_svid(
            &id("spiffe://example.org/web"),
            SubjectKey::Generate,
            3600,
            &dns_names,
            NOW,
        )
        .unwrap();
    assert_eq!(svid.chain.len(), 2, "leaf + intermediate, no root");
    assert_eq!(&svid.chain[1], inter.cert_der());
    let c = parse(&svid.chain[0]);
    assert_leaf_profile(
        &c,
        "spiffe://example.org/web",
        &["web.example.org", "*.svc.example.org"],
        false,
    );
    assert_eq!(c.subject().to_string(), "O=Lanyard, CN=web.example.org");
}

#[test]
fn leaf_for_rsa_and_ed25519_key_pairs() {
    let ca = root("example.org");
    let rsa = KeyPair::generate(Algorithm::RS256).unwrap();
    let svid = ca
        .issue_svid(
            &id("spiffe://example.org/rsa"),
            SubjectKey::KeyPair(&rsa),
            600,
            &[],
            NOW,
        )
        .unwrap();
    assert_leaf_profile(&parse(&svid.chain[0]), "spiffe://example.org/rsa", &[], true);
    assert_eq!(parse(&svid.chain[0]).public_key().raw, rsa.public_spki_der().unwrap());
    svid.check().unwrap();

    let ed = KeyPair::generate(Algorithm::EdDSA).unwrap();
    let svid = ca
        .issue_svid(&id("spiffe://example.org/ed"), SubjectKey::KeyPair(&ed), 600, &[], NOW)
        .unwrap();
    assert_leaf_profile(&parse(&svid.chain[0]), "spiffe://example.org/ed", &[], false);
    svid.check().unwrap();
}

#[test]
fn leaf_for_a_public_key_has_no_private_key() {
    let ca = root("example.org");
    let key = KeyPair::generate(Algorithm::ES384).unwrap();
    let spki = key.public_spki_der().unwrap();
    let svid = ca
        .issue_svid(
            &id("spiffe://example.org/pk"),
            SubjectKey::PublicKey(&spki),
            600,
            &[],
            NOW,
        )
        .unwrap();
    assert!(svid.key.is_none() && svid.key_pem().is_none());
    let c = parse(&svid.chain[0]);
    assert_eq!(c.public_key().raw, spki.as_slice());
    assert_leaf_profile(&c, "spiffe://example.org/pk", &[], false);
}

#[test]
fn ca_signed_by_a_lanyard_key_pair() {
    let key = KeyPair::generate(Algorithm::ES384).unwrap();
    let ca = X509Authority::new_root(lanyard_crypto::provider(), &td("example.org"), Some(&key), 86_400, NOW).unwrap();
    let c = parse(ca.cert_der());
    assert_eq!(c.public_key().raw, key.public_spki_der().unwrap());
    assert_eq!(
        c.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.3.3",
        "ecdsa-with-SHA384"
    );
    let svid = ca
        .issue_svid(&id("spiffe://example.org/a"), SubjectKey::Generate, 60, &[], NOW)
        .unwrap();
    assert_eq!(parse(&svid.chain[0]).issuer(), c.subject());
}

#[test]
fn leaf_lifetime_is_capped_at_the_ca() {
    let ca = X509Authority::new_root(lanyard_crypto::provider(), &td("example.org"), None, 1000, NOW).unwrap();
    let svid = ca
        .issue_svid(
            &id("spiffe://example.org/a"),
            SubjectKey::Generate,
            5000,
            &[],
            NOW.plus(100),
        )
        .unwrap();
    assert_eq!(svid.not_after().unwrap(), NOW.plus(1000));
    let c = parse(&svid.chain[0]);
    assert_eq!(c.validity().not_before.timestamp(), NOW.0 as i64 + 90);
    // An expired CA issues nothing.
    let e = ca
        .issue_svid(
            &id("spiffe://example.org/a"),
            SubjectKey::Generate,
            60,
            &[],
            NOW.plus(1000),
        )
        .unwrap_err();
    assert_eq!(e.kind(), "ca_not_valid");
}

#[test]
fn issuance_refusals() {
    let ca = root("example.org");
    let cases = [
        ("spiffe://other.org/a", vec![], 60, "trust_domain_mismatch"),
        ("spiffe://example.org", vec![], 60, "leaf_without_path"),
        ("spiffe://example.org/a", vec![], 0, "invalid_validity"),
        (
            "spiffe://example.org/a",
            vec!["bad name".to_owned()],
            60,
            "invalid_dns_name",
        ),
        (
            "spiffe://example.org/a",
            vec!["127.0.0.1".to_owned()],
            60,
            "invalid_dns_name",
        ),
    ];
    for (sid, dns_names, ttl, kind) in cases {
        let e = ca
            .issue_svid(&id(sid), SubjectKey::Generate, ttl, &dns_names, NOW)
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{sid} {dns_names:?} {ttl}: {e}");
    }
    let bad_spki = [0x30, 0x03, 0x02, 0x01, 0x00];
    let e = ca
        .issue_svid(
            &id("spiffe://example.org/a"),
            SubjectKey::PublicKey(&bad_spki),
            60,
            &[],
            NOW,
        )
        .unwrap_err();
    assert_eq!(e.kind(), "malformed");
}

/// A CSR made with rcgen for a fresh P-256 key with these URI and DNS SANs.
fn csr(uris: &[&str], dns_names: &[&str]) -> (Vec<u8>, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = uris
        .iter()
        .map(|u| rcgen::SanType::URI(rcgen::string::Ia5String::try_from(*u).unwrap()))
        .chain(
            dns_names
                .iter()
                .map(|d| rcgen::SanType::DnsName(rcgen::string::Ia5String::try_from(*d).unwrap())),
        )
        .collect();
    // Ask for a CA certificate too: it must be ignored.
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let der = params.serialize_request(&key).unwrap().der().to_vec();
    (der, key)
}

#[test]
fn leaf_from_csr() {
    let ca = root("example.org");
    let (der, key) = csr(&["spiffe://example.org/csr"], &["api.example.org"]);
    let svid = ca
        .issue_svid_from_csr(
            &der,
            &id("spiffe://example.org/csr"),
            600,
            &["api.example.org".to_owned(), "api2.example.org".to_owned()],
            NOW,
        )
        .unwrap();
    assert!(svid.key.is_none());
    let c = parse(&svid.chain[0]);
    assert_leaf_profile(
        &c,
        "spiffe://example.org/csr",
        &["api.example.org", "api2.example.org"],
        false,
    );
    assert_eq!(c.public_key().raw, rcgen::PublicKeyData::subject_public_key_info(&key));
}

#[test]
fn csr_must_request_exactly_the_authorized_identity() {
    let ca = root("example.org");
    let want = id("spiffe://example.org/csr");
    let cases: [(&[&str], &[&str], &str); 5] = [
        (&[], &[], "no URI SAN"),
        (
            &["spiffe://example.org/other"],
            &[],
            "only spiffe://example.org/csr is authorized",
        ),
        (
            &["spiffe://example.org/csr", "spiffe://example.org/x"],
            &[],
            "2 URI SANs",
        ),
        (&["spiffe://example.org/csr", "https://example.org/"], &[], "2 URI SANs"),
        (&["spiffe://example.org/csr"], &["evil.example.org"], "not authorized"),
    ];
    for (uris, dns_names, msg) in cases {
        let (der, _) = csr(uris, dns_names);
        let e = ca.issue_svid_from_csr(&der, &want, 600, &[], NOW).unwrap_err();
        assert_eq!(e.kind(), "csr_identity", "{uris:?}");
        assert!(e.to_string().contains(msg), "{e}");
    }
    // A tampered CSR fails its proof of possession.
    let (mut der, _) = csr(&["spiffe://example.org/csr"], &[]);
    let n = der.len();
    der[n - 5] ^= 0x01;
    let e = ca.issue_svid_from_csr(&der, &want, 600, &[], NOW).unwrap_err();
    assert!(matches!(e.kind(), "csr_signature" | "malformed"), "{e}");
    let e = ca.issue_svid_from_csr(b"not a csr", &want, 600, &[], NOW).unwrap_err();
    assert_eq!(e.kind(), "malformed");
}

#[test]
fn ca_round_trips_through_pem() {
    let up = root("example.org");
    let inter = X509Authority::new_intermediate(lanyard_crypto::provider(), &td("example.org"), &up, None, 86_400, NOW)
        .unwrap();
    // The intermediate's file holds only itself (its upstream is a root).
    let loaded = X509Authority::from_pem(lanyard_crypto::provider(), &inter.chain_pem(), &inter.key_pem()).unwrap();
    assert_eq!(loaded.trust_domain(), Some(&td("example.org")));
    assert_eq!(loaded.cert_der(), inter.cert_der());
    assert_eq!(
        (loaded.not_before(), loaded.not_after()),
        (inter.not_before(), inter.not_after())
    );
    assert!(!loaded.is_self_signed());
    let svid = loaded
        .issue_svid(&id("spiffe://example.org/x"), SubjectKey::Generate, 60, &[], NOW)
        .unwrap();
    assert_eq!(svid.chain.len(), 2);
    let c = parse(&svid.chain[0]);
    assert_eq!(c.issuer(), parse(inter.cert_der()).subject());
    assert_eq!(aki(&c), ski(&parse(inter.cert_der())));

    // A second level below a loaded intermediate carries both intermediates.
    let inter2 = X509Authority::new_intermediate(
        lanyard_crypto::provider(),
        &td("example.org"),
        &loaded,
        None,
        86_400,
        NOW,
    )
    .unwrap();
    let svid = inter2
        .issue_svid(&id("spiffe://example.org/y"), SubjectKey::Generate, 60, &[], NOW)
        .unwrap();
    assert_eq!(svid.chain.len(), 3);
    let reloaded2 =
        X509Authority::from_pem(lanyard_crypto::provider(), &inter2.chain_pem(), &inter2.key_pem()).unwrap();
    let svid = reloaded2
        .issue_svid(&id("spiffe://example.org/z"), SubjectKey::Generate, 60, &[], NOW)
        .unwrap();
    assert_eq!(svid.chain.len(), 3);

    // Keys and certificates that do not belong together are refused.
    let e = X509Authority::from_pem(lanyard_crypto::provider(), &inter.chain_pem(), &up.key_pem()).unwrap_err();
    assert_eq!(e.kind(), "invalid_key");
    let leaf = up
        .issue_svid(&id("spiffe://example.org/x"), SubjectKey::Generate, 60, &[], NOW)
        .unwrap();
    let e =
        X509Authority::from_pem(lanyard_crypto::provider(), &leaf.chain_pem(), &leaf.key_pem().unwrap()).unwrap_err();
    assert_eq!(e.kind(), "not_a_ca");
}

#[test]
fn bundle_entry_round_trips_through_a_spiffe_bundle() {
    let ca = root("example.org");
    let jwk = ca.bundle_jwk().unwrap();
    assert_eq!(jwk.key_use.as_deref(), Some("x509-svid"));
    assert!(jwk.kid.is_none() && jwk.alg.is_none());
    assert_eq!(jwk.x5c.as_ref().map(Vec::len), Some(1));
    let mut bundle = SpiffeBundle::new(td("example.org"));
    bundle.x509_authorities.push(jwk.clone());
    let parsed = SpiffeBundle::parse(td("example.org"), bundle.to_json().as_bytes()).unwrap();
    let x509 = X509Bundle::from_spiffe_bundle(&parsed).unwrap();
    assert_eq!(x509.authorities(), std::slice::from_ref(ca.cert_der()));

    // An entry whose JWK key is not the certificate's key is refused.
    let other = root("example.org").bundle_jwk().unwrap();
    let mut forged = SpiffeBundle::new(td("example.org"));
    forged
        .x509_authorities
        .push(lanyard_core::Jwk { x5c: other.x5c, ..jwk });
    let e = X509Bundle::from_spiffe_bundle(&forged).unwrap_err();
    assert_eq!(e.kind(), "invalid_bundle");
}

#[test]
fn svid_key_must_match_leaf() {
    let ca = root("example.org");
    let a = ca
        .issue_svid(&id("spiffe://example.org/a"), SubjectKey::Generate, 60, &[], NOW)
        .unwrap();
    let b = ca
        .issue_svid(&id("spiffe://example.org/b"), SubjectKey::Generate, 60, &[], NOW)
        .unwrap();
    let e = X509Svid::from_pem(&a.chain_pem(), b.key_pem().as_deref()).unwrap_err();
    assert_eq!(e.kind(), "invalid_key");
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<X509Authority>();
    check::<X509Svid>();
    check::<lanyard_x509::X509BundleSet>();
    check::<lanyard_x509::SvidSource>();
    check::<lanyard_x509::Error>();
}
