//! Renewal of the agent's own SVID: at about half its lifetime (and at the latest
//! [`RENEW_MARGIN`] seconds before it expires), over mTLS with the current one. The new
//! SVID is stored, presented on new connections, and the entry stream is reopened with it.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use lanyard_api::agent::v1 as pb;
use lanyard_api::agent::v1::agent_api_client::AgentApiClient;
use lanyard_core::{SpiffeId, UnixTime};
use lanyard_x509::{Authorizer, X509BundleSet, X509Svid};
use tonic::transport::Channel;

use super::Manager;
use super::backoff::Backoff;
use crate::attestor::node::{RENEW_MARGIN, accept_credentials};
use crate::error::AgentError;
use crate::svid::key_and_csr;

impl Manager {
    /// Renews the agent SVID when due; retries with backoff.
    pub(super) async fn renew_loop(self: Arc<Self>) {
        let mut backoff = Backoff::new(Arc::clone(&self.crypto));
        loop {
            let (issued, expires) = *self.agent_validity.read().unwrap_or_else(PoisonError::into_inner);
            let now = self.now().as_secs();
            let half = issued.as_secs() + expires.as_secs().saturating_sub(issued.as_secs()) / 2;
            let due = half.min(expires.as_secs().saturating_sub(RENEW_MARGIN));
            if now < due {
                tokio::time::sleep(Duration::from_secs((due - now).min(60))).await;
                continue;
            }
            match self.renew_once().await {
                Ok(()) => backoff.reset(),
                Err(e) => {
                    tracing::warn!(error = %e, "renewing the agent SVID failed; retrying");
                    self.set_health(|h| h.last_error = Some(e.to_string()));
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    /// Renews the agent SVID now, stores it, and reconnects with it.
    pub async fn renew_once(&self) -> Result<(), AgentError> {
        let agent_id = self.agent_id();
        let trusted = X509BundleSet::clone(&self.source.bundles());
        let (svid, bundle) = renew(&mut self.client(), &agent_id, &trusted, self.now()).await?;
        self.install_agent_svid(&svid)?;
        self.apply_own_bundle(&bundle)?;
        tracing::info!(agent_id = %agent_id, expires_at = svid.not_after()?.as_secs(), "agent SVID renewed");
        Ok(())
    }

    fn install_agent_svid(&self, svid: &X509Svid) -> Result<(), AgentError> {
        self.files.save_svid(svid)?;
        self.source.update_svid(svid)?;
        let expires = svid.not_after()?;
        *self.agent_validity.write().unwrap_or_else(PoisonError::into_inner) = (svid.not_before()?, expires);
        self.set_health(|h| h.agent_svid_expires_at = expires.as_secs());
        // New connections present the new SVID; drop the old connection and the stream on it.
        let tls = lanyard_x509::client_config(Arc::clone(&self.source), Authorizer::Exact(self.server_id.clone()))?;
        *self.client.write().unwrap_or_else(PoisonError::into_inner) = crate::link::client(&self.server_address, tls)?;
        self.restart_sync.notify_one();
        Ok(())
    }
}

/// Renews the agent SVID (mTLS with the current one).
async fn renew(
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
