//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use lanyard_core::{SpiffeId, TrustDomain, UnixTime};
use lanyard_x509::{X509Authority, X509Bundle, X509BundleSet};
use rcgen::string::Ia5String;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose, SanType,
};
use rustls::pki_types::CertificateDer;

/// A fixed issuance time for tests that do not touch the real clock.
pub const NOW: UnixTime = UnixTime(1_800_000_000);

pub fn td(name: &str) -> TrustDomain {
    TrustDomain::parse(name).unwrap()
}

pub fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

pub fn root(name: &str) -> X509Authority {
    X509Authority::new_root(lanyard_crypto::provider(), &td(name), None, 30 * 86_400, NOW).unwrap()
}

pub fn bundles(cas: &[&X509Authority]) -> X509BundleSet {
    let mut set = X509BundleSet::new();
    for ca in cas {
        let td = ca.trust_domain().unwrap().clone();
        let mut bundle = set.remove(&td).unwrap_or_else(|| X509Bundle::new(td));
        bundle.add_authority(ca.cert_der().clone()).unwrap();
        set.insert(bundle);
    }
    set
}

/// An rcgen issuer for a Lanyard CA, to build certificates Lanyard itself refuses to issue.
pub fn rcgen_issuer(ca: &X509Authority) -> Issuer<'static, rcgen::KeyPair> {
    let key = rcgen::KeyPair::from_pem(&ca.key_pem()).unwrap();
    Issuer::from_ca_cert_der(ca.cert_der(), key).unwrap()
}

/// Leaf parameters like Lanyard's, with the given URI SANs, for hand-made bad certificates.
pub fn leaf_params(uris: &[&str]) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.not_before = time::OffsetDateTime::from_unix_timestamp(NOW.0 as i64 - 10).unwrap();
    p.not_after = time::OffsetDateTime::from_unix_timestamp(NOW.0 as i64 + 3600).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Test");
    p.distinguished_name = dn;
    p.subject_alt_names = uris
        .iter()
        .map(|u| SanType::URI(Ia5String::try_from(*u).unwrap()))
        .collect();
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    p.use_authority_key_identifier_extension = true;
    p
}

/// Signs `params` for a fresh key with `ca`'s key.
pub fn sign(params: &CertificateParams, ca: &X509Authority) -> CertificateDer<'static> {
    let key = rcgen::KeyPair::generate().unwrap();
    params.signed_by(&key, &rcgen_issuer(ca)).unwrap().der().clone()
}

/// Writes `contents` to `dir/name` and returns the path.
pub fn write(dir: &std::path::Path, name: &str, contents: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}
