//! Node attestation: how the agent obtains its own identity (the agent SVID) from the
//! server, by a join token ([`join_token`]) or by proving possession of a node
//! certificate's key ([`x509pop`]), and the checks of the credentials the server returns
//! for attestation and renewal alike.

pub(crate) mod join_token;
pub(crate) mod x509pop;

use lanyard_api::agent::v1 as pb;
use lanyard_core::{CryptoProvider, SpiffeId, TrustDomain, UnixTime};
use lanyard_x509::{Authorizer, X509Bundle, X509BundleSet, X509Svid};

use crate::config::AgentConfig;
use crate::error::{AgentError, NodeAttestationError};
use crate::state::BundleView;
use crate::storage::{self, NodeFiles};
use crate::svid::accept_svid;

/// How long before its expiry the agent SVID is renewed at the latest; a stored agent SVID
/// with less time left is not resumed.
pub(crate) const RENEW_MARGIN: u64 = 30;

/// Who the agent is when it starts, and whom it trusts to be the server.
pub(crate) struct NodeIdentity {
    /// The agent SVID, with its key.
    pub(crate) svid: X509Svid,
    /// The own trust domain's bundle, when the server has just sent it (attestation).
    pub(crate) bundle: Option<pb::Bundle>,
    /// The X.509 bundles that authenticate the server.
    pub(crate) trusted: X509BundleSet,
}

/// Resumes with the agent SVID stored in `files`, or attests the node as `config` says
/// (join token first, else x509pop) and stores what the server issued. Agent IDs and the
/// x509pop message are computed with `crypto`.
pub(crate) async fn resume_or_attest(
    config: &AgentConfig,
    td: &TrustDomain,
    server_id: &SpiffeId,
    files: &NodeFiles,
    crypto: &dyn CryptoProvider,
    now: UnixTime,
) -> Result<NodeIdentity, AgentError> {
    // What the agent trusts for the server: the last bundle it received, plus the
    // configured bootstrap bundle.
    let mut trusted = X509BundleSet::new();
    if let Some(bundle) = files.load_bundle(td)? {
        trusted.insert(X509Bundle::from_spiffe_bundle(&bundle)?);
    } else if let Some(path) = &config.trust_bundle_path {
        trusted.insert(storage::read_bootstrap_bundle(path, td)?);
    } else {
        return Err(AgentError::Config(
            "no trust bundle: set trust_bundle_path (--trust-bundle) to the server's bundle for the first start".into(),
        ));
    }

    let stored = files.load_svid()?.filter(|svid| {
        svid.not_after()
            .map(|exp| exp.as_secs() > now.as_secs() + RENEW_MARGIN)
            .unwrap_or(false)
    });
    let (svid, bundle) = match stored {
        Some(svid) => {
            tracing::info!(agent_id = %svid.spiffe_id()?, "resuming with the stored agent SVID");
            (svid, None)
        }
        None => {
            let anonymous =
                lanyard_x509::anonymous_client_config(trusted.clone(), Authorizer::Exact(server_id.clone()))?;
            let mut client = crate::link::client(&config.server_address, anonymous)?;
            let attested = if let Some(token) = &config.join_token {
                join_token::attest(&mut client, td, token, &trusted, crypto, now).await
            } else if let Some(pop) = &config.x509pop {
                x509pop::attest(&mut client, td, pop, &trusted, crypto, now).await
            } else {
                return Err(AgentError::Attestation(NodeAttestationError::NotConfigured));
            };
            let (svid, bundle) = attested.map_err(AgentError::in_attestation)?;
            tracing::info!(agent_id = %svid.spiffe_id()?, "node attested");
            files.save_svid(&svid)?;
            (svid, Some(bundle))
        }
    };
    if let Some(bundle) = &bundle {
        let view = BundleView::from_pb(bundle)?;
        trusted.insert(X509Bundle::from_spiffe_bundle(&view.bundle)?);
        files.save_bundle(&bundle.json)?;
    }
    Ok(NodeIdentity { svid, bundle, trusted })
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
    let received = BundleView::from_pb(&bundle)?;
    let x509 = X509Bundle::from_spiffe_bundle(&received.bundle)?;
    bundles.insert(x509);
    let (svid, _) = accept_svid(&svid, key, agent_id, &bundles, now)?;
    Ok((svid, bundle))
}
