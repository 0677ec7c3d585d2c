//! Chain validation (X509-SVID.md §5): good chains, and one test per way a chain must be
//! refused, each with its own error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{NOW, bundles, id, leaf_params, root, sign, td};
use lanyard_core::SpiffeBundle;
use lanyard_x509::{
    Error, SubjectKey, Usage, VerifyOptions, X509Authority, X509Bundle, X509BundleSet, verify_svid_chain,
};
use rcgen::{BasicConstraints, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose};

fn opts(usage: Usage) -> VerifyOptions {
    VerifyOptions::for_usage(usage)
}

fn kind(r: Result<lanyard_x509::VerifiedSvid, Error>) -> &'static str {
    match r {
        Ok(v) => panic!("verified unexpectedly: {v:?}"),
        Err(e) => e.kind(),
    }
}

#[test]
fn good_chain_from_root() {
    let ca = root("example.org");
    let svid = ca
        .issue_svid(&id("spiffe://example.org/api"), SubjectKey::Generate, 3600, &[], NOW)
        .unwrap();
    let set = bundles(&[&ca]);
    for usage in [Usage::ClientAuth, Usage::ServerAuth, Usage::Any] {
        let v = verify_svid_chain(&svid.chain, &set, NOW, &opts(usage)).unwrap();
        assert_eq!(v.spiffe_id, id("spiffe://example.org/api"));
        assert_eq!(v.trust_domain, td("example.org"));
        assert_eq!((v.not_before, v.not_after), (NOW.minus(10), NOW.plus(3600)));
        assert_eq!(v.serial.len(), 32);
        assert!(v.dns_names.is_empty());
    }
    // Vec<Vec<u8>> works as well as CertificateDer.
    let raw: Vec<Vec<u8>> = svid.chain.iter().map(|c| c.to_vec()).collect();
    verify_svid_chain(&raw, &set, NOW, &VerifyOptions::default()).unwrap();
}

#[test]
fn good_chain_through_intermediates() {
    let up = root("example.org");
    let i1 = X509Authority::new_intermediate(lanyard_crypto::provider(), &td("example.org"), &up, None, 86_400, NOW)
        .unwrap();
    let i2 = X509Authority::new_intermediate(lanyard_crypto::provider(), &td("example.org"), &i1, None, 86_400, NOW)
        .unwrap();
    let svid = i2
        .issue_svid(&id("spiffe://example.org/deep"), SubjectKey::Generate, 3600, &[], NOW)
        .unwrap();
    assert_eq!(svid.chain.len(), 3);
    let set = bundles(&[&up]);
    let v = verify_svid_chain(&svid.chain, &set, NOW, &VerifyOptions::default()).unwrap();
    assert_eq!(v.spiffe_id.as_str(), "spiffe://example.org/deep");
    // Without the intermediates the path does not build.
    assert_eq!(
        kind(verify_svid_chain(
            &svid.chain[..1],
            &set,
            NOW,
            &VerifyOptions::default()
        )),
        "bad_chain"
    );
}

#[test]
fn bundle_with_several_authorities_and_from_spiffe_bundle_json() {
    let old = root("example.org");
    let new = root("example.org");
    let svid = new
        .issue_svid(&id("spiffe://example.org/a"), SubjectKey::Generate, 3600, &[], NOW)
        .unwrap();
    let mut doc = SpiffeBundle::new(td("example.org"));
    doc.x509_authorities = vec![old.bundle_jwk().unwrap(), new.bundle_jwk().unwrap()];
    let parsed = SpiffeBundle::parse(td("example.org"), doc.to_json().as_bytes()).unwrap();
    let set = X509BundleSet::from_spiffe_bundles([&parsed]).unwrap();
    verify_svid_chain(&svid.chain, &set, NOW, &VerifyOptions::default()).unwrap();
}

#[test]
fn expired_and_not_yet_valid() {
    let ca = root("example.org");
    let svid = ca
        .issue_svid(&id("spiffe://example.org/a"), SubjectKey::Generate, 3600, &[], NOW)
        .unwrap();
    let set = bundles(&[&ca]);
    let o = VerifyOptions::default();
    verify_svid_chain(&svid.chain, &set, NOW.plus(3600), &o).unwrap();
    let e = verify_svid_chain(&svid.chain, &set, NOW.plus(3601), &o).unwrap_err();
    assert!(matches!(e, Error::Expired { not_after, now } if not_after == NOW.plus(3600) && now == NOW.plus(3601)));
    verify_svid_chain(&svid.chain, &set, NOW.minus(10), &o).unwrap();
    let e = verify_svid_chain(&svid.chain, &set, NOW.minus(11), &o).unwrap_err();
    assert!(matches!(e, Error::NotYetValid { not_before, .. } if not_before == NOW.minus(10)));
}

#[test]
fn expired_intermediate() {
    let up = root("example.org");
    let inter =
        X509Authority::new_intermediate(lanyard_crypto::provider(), &td("example.org"), &up, None, 600, NOW).unwrap();
    // Hand-make a leaf that outlives its intermediate.
    let mut p = leaf_params(&["spiffe://example.org/a"]);
    p.not_after = time::OffsetDateTime::from_unix_timestamp(NOW.0 as i64 + 7200).unwrap();
    let leaf = sign(&p, &inter);
    let chain = vec![leaf, inter.cert_der().clone()];
    let e = verify_svid_chain(&chain, &bundles(&[&up]), NOW.plus(1000), &VerifyOptions::default()).unwrap_err();
    assert!(
        matches!(e, Error::Expired { not_after, .. } if not_after == NOW.plus(600)),
        "{e}"
    );
}

#[test]
fn leaf_of_another_trust_domain() {
    let a = root("a.example");
    let b = root("b.example");
    // b's CA issues an SVID for its own trust domain: only a's bundle is configured.
    let svid_b = b
        .issue_svid(&id("spiffe://b.example/x"), SubjectKey::Generate, 3600, &[], NOW)
        .unwrap();
    let e = verify_svid_chain(&svid_b.chain, &bundles(&[&a]), NOW, &VerifyOptions::default()).unwrap_err();
    assert!(
        matches!(&e, Error::UnknownTrustDomain { trust_domain } if trust_domain == "b.example"),
        "{e}"
    );

    // A rogue b CA signs an SVID claiming a's trust domain: roots are chosen by the leaf's
    // trust domain, so b's root (although trusted for b) is never tried.
    let forged = sign(&leaf_params(&["spiffe://a.example/admin"]), &b);
    let set = bundles(&[&a, &b]);
    let e = verify_svid_chain(&[forged], &set, NOW, &VerifyOptions::default()).unwrap_err();
    assert!(
        matches!(&e, Error::BadChain { trust_domain, .. } if trust_domain == "a.example"),
        "{e}"
    );
    // ... while a genuine b SVID passes against the same set.
    verify_svid_chain(&svid_b.chain, &set, NOW, &VerifyOptions::default()).unwrap();
}

#[test]
fn wrong_root() {
    let ca = root("example.org");
    let other = root("example.org");
    let svid = ca
        .issue_svid(&id("spiffe://example.org/a"), SubjectKey::Generate, 3600, &[], NOW)
        .unwrap();
    let e = verify_svid_chain(&svid.chain, &bundles(&[&other]), NOW, &VerifyOptions::default()).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::BadChain {
                reason: webpki::Error::UnknownIssuer,
                ..
            }
        ),
        "{e:?}"
    );
    // An empty bundle (all authorities revoked) trusts nothing.
    let empty = X509BundleSet::new().with(X509Bundle::new(td("example.org")));
    assert_eq!(
        kind(verify_svid_chain(&svid.chain, &empty, NOW, &VerifyOptions::default())),
        "no_authorities"
    );
}

#[test]
fn uri_san_count_and_form() {
    let ca = root("example.org");
    let set = bundles(&[&ca]);
    let o = VerifyOptions::default();
    let check = |uris: &[&str]| kind(verify_svid_chain(&[sign(&leaf_params(uris), &ca)], &set, NOW, &o));
    assert_eq!(check(&[]), "no_uri_san");
    assert_eq!(
        check(&["spiffe://example.org/a", "spiffe://example.org/b"]),
        "multiple_uri_sans"
    );
    assert_eq!(
        check(&["spiffe://example.org/a", "https://example.org/"]),
        "multiple_uri_sans"
    );
    assert_eq!(check(&["https://example.org/a"]), "not_spiffe_id");
    assert_eq!(check(&["spiffe://Example.org/a"]), "not_spiffe_id");
    assert_eq!(check(&["spiffe://example.org/a/"]), "not_spiffe_id");
    assert_eq!(check(&["spiffe://example.org/%41"]), "not_spiffe_id");
    assert_eq!(check(&["spiffe://example.org"]), "leaf_without_path");
    // The well-formed control case passes.
    verify_svid_chain(&[sign(&leaf_params(&["spiffe://example.org/a"]), &ca)], &set, NOW, &o).unwrap();
    // Two URI SANs are reported with their count.
    let two = sign(&leaf_params(&["spiffe://example.org/a", "spiffe://example.org/b"]), &ca);
    let e = verify_svid_chain(&[two], &set, NOW, &o).unwrap_err();
    assert!(matches!(e, Error::MultipleUriSans { count: 2 }));
}

#[test]
fn ca_certificate_as_leaf() {
    let ca = root("example.org");
    let set = bundles(&[&ca]);
    let o = VerifyOptions::default();
    // The root itself (a trust-domain ID, no path).
    assert_eq!(
        kind(verify_svid_chain(&[ca.cert_der().clone()], &set, NOW, &o)),
        "leaf_without_path"
    );
    // An intermediate presented as a leaf.
    let inter =
        X509Authority::new_intermediate(lanyard_crypto::provider(), &td("example.org"), &ca, None, 3600, NOW).unwrap();
    assert_eq!(
        kind(verify_svid_chain(&[inter.cert_der().clone()], &set, NOW, &o)),
        "leaf_without_path"
    );
    // A CA certificate carrying a workload ID.
    let mut p = leaf_params(&["spiffe://example.org/a"]);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    assert_eq!(kind(verify_svid_chain(&[sign(&p, &ca)], &set, NOW, &o)), "leaf_is_ca");
    // A non-CA leaf with keyCertSign or cRLSign.
    for ku in [KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign] {
        let mut p = leaf_params(&["spiffe://example.org/a"]);
        p.key_usages.push(ku);
        assert_eq!(
            kind(verify_svid_chain(&[sign(&p, &ca)], &set, NOW, &o)),
            "forbidden_key_usage"
        );
    }
}

#[test]
fn extended_key_usage_is_enforced_when_present() {
    let ca = root("example.org");
    let set = bundles(&[&ca]);
    let mut p = leaf_params(&["spiffe://example.org/a"]);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_only = [sign(&p, &ca)];
    verify_svid_chain(&server_only, &set, NOW, &opts(Usage::ServerAuth)).unwrap();
    verify_svid_chain(&server_only, &set, NOW, &opts(Usage::Any)).unwrap();
    let e = verify_svid_chain(&server_only, &set, NOW, &opts(Usage::ClientAuth)).unwrap_err();
    assert!(matches!(e, Error::WrongUsage { usage: "clientAuth" }), "{e}");
    // No EKU extension at all: any use is allowed (RFC 5280 §4.2.1.12).
    p.extended_key_usages.clear();
    verify_svid_chain(&[sign(&p, &ca)], &set, NOW, &opts(Usage::ClientAuth)).unwrap();
}

#[test]
fn dns_name_checked_only_when_asked() {
    let ca = root("example.org");
    let set = bundles(&[&ca]);
    let with_dns = ca
        .issue_svid(
            &id("spiffe://example.org/web"),
            SubjectKey::Generate,
            3600,
            &["localhost".into()],
            NOW,
        )
        .unwrap();
    let without = ca
        .issue_svid(&id("spiffe://example.org/web"), SubjectKey::Generate, 3600, &[], NOW)
        .unwrap();
    let named = |n: &str| VerifyOptions {
        usage: Usage::ServerAuth,
        expected_name: Some(n.to_owned()),
    };
    let v = verify_svid_chain(&with_dns.chain, &set, NOW, &named("localhost")).unwrap();
    assert_eq!(v.dns_names, vec!["localhost".to_owned()]);
    assert_eq!(
        kind(verify_svid_chain(&with_dns.chain, &set, NOW, &named("example.org"))),
        "name_mismatch"
    );
    assert_eq!(
        kind(verify_svid_chain(&without.chain, &set, NOW, &named("localhost"))),
        "name_mismatch"
    );
    verify_svid_chain(&without.chain, &set, NOW, &opts(Usage::ServerAuth)).unwrap();
}

#[test]
fn malformed_input() {
    let ca = root("example.org");
    let set = bundles(&[&ca]);
    let o = VerifyOptions::default();
    let none: [Vec<u8>; 0] = [];
    assert_eq!(kind(verify_svid_chain(&none, &set, NOW, &o)), "empty_chain");
    assert_eq!(
        kind(verify_svid_chain(&[b"garbage".to_vec()], &set, NOW, &o)),
        "malformed"
    );
    let svid = ca
        .issue_svid(&id("spiffe://example.org/a"), SubjectKey::Generate, 3600, &[], NOW)
        .unwrap();
    let mut trailing = svid.chain[0].to_vec();
    trailing.push(0);
    assert_eq!(kind(verify_svid_chain(&[trailing], &set, NOW, &o)), "malformed");
    // A flipped bit in the signature breaks the path.
    let mut bad_sig = svid.chain[0].to_vec();
    let n = bad_sig.len();
    bad_sig[n - 3] ^= 0x01;
    assert_eq!(kind(verify_svid_chain(&[bad_sig], &set, NOW, &o)), "bad_chain");
}
