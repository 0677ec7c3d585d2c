//! The agent's own identity: node attestation, renewal, and keeping the agent SVID and
//! the last trust bundle on disk so a restarted agent resumes without an operator.

pub(crate) mod x509pop;

use std::io::Write;
use std::path::{Path, PathBuf};

use lanyard_api::agent::v1 as pb;
use lanyard_api::agent::v1::agent_api_client::AgentApiClient;
use lanyard_core::{SpiffeBundle, SpiffeId, TrustDomain, UnixTime};
use lanyard_x509::{Usage, VerifyOptions, X509Bundle, X509BundleSet, X509Svid, verify_svid_chain};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use tonic::transport::Channel;

use crate::error::AgentError;

/// A fresh P-256 key (PKCS#8 DER) and a CSR (DER) requesting `uri` and `dns_names`.
pub(crate) fn key_and_csr(uri: &str, dns_names: &[String]) -> Result<(Vec<u8>, Vec<u8>), AgentError> {
    let crypto = |e: rcgen::Error| AgentError::Crypto(e.to_string());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(crypto)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(crypto)?;
    let uri = rcgen::string::Ia5String::try_from(uri).map_err(crypto)?;
    params.subject_alt_names = vec![rcgen::SanType::URI(uri)];
    for name in dns_names {
        let dns = rcgen::string::Ia5String::try_from(name.as_str()).map_err(crypto)?;
        params.subject_alt_names.push(rcgen::SanType::DnsName(dns));
    }
    let csr = params.serialize_request(&key).map_err(crypto)?;
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
        .map_err(|e| AgentError::InvalidFromServer(format!("SVID for {expected}: {e}")))?;
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
    svid.check()
        .map_err(|e| AgentError::InvalidFromServer(format!("SVID for {expected} does not match our key: {e}")))?;
    Ok((svid, verified))
}

/// Attests with a join token; returns the agent SVID and the server's bundle.
pub(crate) async fn attest_with_join_token(
    client: &mut AgentApiClient<Channel>,
    td: &TrustDomain,
    token: &str,
    bootstrap: &X509BundleSet,
    now: UnixTime,
) -> Result<(X509Svid, pb::Bundle), AgentError> {
    let agent_id = lanyard_x509::node::join_token_agent_id(td, token)?.to_string();
    let (key, csr) = key_and_csr(&agent_id, &[])?;
    let request = pb::AttestAgentRequest {
        attestation: Some(pb::attest_agent_request::Attestation::JoinToken(
            pb::JoinTokenAttestation {
                token: token.to_owned(),
            },
        )),
        csr,
    };
    let response = client
        .attest_agent(crate::link::timed(request))
        .await
        .map_err(|s| AgentError::Attestation(format!("{:?}: {}", s.code(), s.message())))?
        .into_inner();
    let Some(pb::attest_agent_response::Step::Credentials(credentials)) = response.step else {
        return Err(AgentError::InvalidFromServer(
            "join-token attestation did not return credentials".into(),
        ));
    };
    accept_credentials(credentials, key, &agent_id, bootstrap, now)
}

/// Checks attestation or renewal credentials: the bundle is for our trust domain and the
/// SVID verifies against it (and against what we trusted before, for the first contact).
pub(crate) fn accept_credentials(
    credentials: pb::AgentCredentials,
    key: Vec<u8>,
    agent_id: &str,
    trusted: &X509BundleSet,
    now: UnixTime,
) -> Result<(X509Svid, pb::Bundle), AgentError> {
    let bundle = credentials
        .bundle
        .ok_or_else(|| AgentError::InvalidFromServer("credentials without a bundle".into()))?;
    let svid = credentials
        .svid
        .ok_or_else(|| AgentError::InvalidFromServer("credentials without an SVID".into()))?;
    let mut bundles = trusted.clone();
    let received = crate::state::BundleView::from_pb(&bundle)?;
    let x509 = X509Bundle::from_spiffe_bundle(&received.bundle)?;
    bundles.insert(x509);
    let (svid, _) = accept_svid(&svid, key, agent_id, &bundles, now)?;
    Ok((svid, bundle))
}

/// Renews the agent SVID (mTLS with the current one).
pub(crate) async fn renew(
    client: &mut AgentApiClient<Channel>,
    agent_id: &SpiffeId,
    trusted: &X509BundleSet,
    now: UnixTime,
) -> Result<(X509Svid, pb::Bundle), AgentError> {
    let (key, csr) = key_and_csr(agent_id.as_str(), &[])?;
    let response = client
        .renew_agent(crate::link::timed(pb::RenewAgentRequest { csr }))
        .await?
        .into_inner();
    let credentials = response
        .credentials
        .ok_or_else(|| AgentError::InvalidFromServer("renewal without credentials".into()))?;
    accept_credentials(credentials, key, agent_id.as_str(), trusted, now)
}

/// The agent's files in its data directory: `agent_svid.pem`, `agent_key.pem` (0600) and
/// `bundle.json` (the last bundle of its trust domain).
#[derive(Clone, Debug)]
pub(crate) struct NodeFiles {
    dir: PathBuf,
}

impl NodeFiles {
    pub(crate) fn new(dir: &Path) -> NodeFiles {
        NodeFiles { dir: dir.to_owned() }
    }

    /// Creates the directory (0700).
    pub(crate) fn prepare(&self) -> Result<(), AgentError> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&self.dir).map_err(AgentError::io("creating", &self.dir))?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(AgentError::io("restricting", &self.dir))
    }

    /// The stored agent SVID, if there is one.
    pub(crate) fn load_svid(&self) -> Result<Option<X509Svid>, AgentError> {
        let chain_path = self.dir.join("agent_svid.pem");
        let key_path = self.dir.join("agent_key.pem");
        if !chain_path.exists() || !key_path.exists() {
            return Ok(None);
        }
        let chain = std::fs::read_to_string(&chain_path).map_err(AgentError::io("reading", &chain_path))?;
        let key = std::fs::read_to_string(&key_path).map_err(AgentError::io("reading", &key_path))?;
        Ok(Some(X509Svid::from_pem(&chain, Some(&key))?))
    }

    /// Stores the agent SVID and its key.
    pub(crate) fn save_svid(&self, svid: &X509Svid) -> Result<(), AgentError> {
        let key = svid
            .key_pem()
            .ok_or_else(|| AgentError::Crypto("agent SVID without its key".into()))?;
        write_private(&self.dir.join("agent_key.pem"), key.as_bytes())?;
        write_private(&self.dir.join("agent_svid.pem"), svid.chain_pem().as_bytes())
    }

    /// The stored bundle of `td`, if there is one.
    pub(crate) fn load_bundle(&self, td: &TrustDomain) -> Result<Option<SpiffeBundle>, AgentError> {
        let path = self.dir.join("bundle.json");
        match std::fs::read(&path) {
            Ok(json) => Ok(Some(SpiffeBundle::parse(td.clone(), &json)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AgentError::Io {
                what: "reading",
                path,
                source: e,
            }),
        }
    }

    /// Stores the bundle of the agent's trust domain.
    pub(crate) fn save_bundle(&self, json: &[u8]) -> Result<(), AgentError> {
        write_private(&self.dir.join("bundle.json"), json)
    }
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename) with mode 0600.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AgentError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    // A leftover temporary file (a crash mid-write) may have other permissions: start anew.
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(AgentError::io("creating", &tmp))?;
    file.write_all(bytes).map_err(AgentError::io("writing", &tmp))?;
    file.sync_all().map_err(AgentError::io("syncing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(AgentError::io("renaming", path))
}

/// Bootstrap bundles from a file: a SPIFFE bundle (JSON) or PEM CA certificates.
pub(crate) fn read_bootstrap_bundle(path: &Path, td: &TrustDomain) -> Result<X509Bundle, AgentError> {
    let bytes = std::fs::read(path).map_err(AgentError::io("reading", path))?;
    let trimmed = bytes.trim_ascii_start();
    if trimmed.starts_with(b"{") {
        let bundle = SpiffeBundle::parse(td.clone(), &bytes)?;
        Ok(X509Bundle::from_spiffe_bundle(&bundle)?)
    } else {
        let text = String::from_utf8(bytes)
            .map_err(|_| AgentError::Config(format!("{}: neither a SPIFFE bundle nor PEM", path.display())))?;
        Ok(X509Bundle::from_pem(td.clone(), &text)?)
    }
}
