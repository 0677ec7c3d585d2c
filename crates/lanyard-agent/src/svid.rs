//! The X.509-SVIDs this node asks for, its own and its workloads': a key generated here
//! and a CSR for it (private keys never leave the node), and the check of what the server
//! signed before anything uses it.

use lanyard_api::agent::v1 as pb;
use lanyard_core::UnixTime;
use lanyard_x509::{Usage, VerifyOptions, X509BundleSet, X509Svid, verify_svid_chain};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use crate::error::AgentError;

/// A fresh P-256 key (PKCS#8 DER) and a CSR (DER) requesting `uri` and `dns_names`.
pub(crate) fn key_and_csr(uri: &str, dns_names: &[String]) -> Result<(Vec<u8>, Vec<u8>), AgentError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    let uri = rcgen::string::Ia5String::try_from(uri)?;
    params.subject_alt_names = vec![rcgen::SanType::URI(uri)];
    for name in dns_names {
        let dns = rcgen::string::Ia5String::try_from(name.as_str())?;
        params.subject_alt_names.push(rcgen::SanType::DnsName(dns));
    }
    let csr = params.serialize_request(&key)?;
    Ok((key.serialize_der(), csr.der().to_vec()))
}

/// An SVID received from the server for a key this agent generated, checked: the chain
/// leads to `bundles`, the leaf names `expected`, and the leaf key is ours.
pub(crate) fn accept_svid(
    received: &pb::X509Svid,
    key_pkcs8: Vec<u8>,
    expected: &str,
    bundles: &X509BundleSet,
    now: UnixTime,
) -> Result<(X509Svid, lanyard_x509::VerifiedSvid), AgentError> {
    let chain: Vec<CertificateDer<'static>> = received
        .cert_chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let verified = verify_svid_chain(&chain, bundles, now, &VerifyOptions::for_usage(Usage::Any))
        .map_err(AgentError::rejected(format!("SVID for {expected}")))?;
    if verified.spiffe_id.as_str() != expected {
        return Err(AgentError::InvalidFromServer(format!(
            "asked for an SVID for {expected}, got one for {}",
            verified.spiffe_id
        )));
    }
    let svid = X509Svid {
        chain,
        key: Some(PrivatePkcs8KeyDer::from(key_pkcs8)),
    };
    svid.check().map_err(AgentError::rejected(format!(
        "SVID for {expected} does not match our key"
    )))?;
    Ok((svid, verified))
}
