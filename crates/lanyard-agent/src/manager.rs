//! The manager: the agent's side of the server↔agent API. It keeps the agent SVID renewed,
//! applies the pushed entry stream, pre-mints X.509-SVIDs for every entry with keys made
//! here (private keys never leave the node), rotates them at about half their lifetime,
//! and mints JWT-SVIDs (cached per audience) and WIT-SVIDs on demand.
//!
//! [`Manager`] holds the state the jobs share and runs them, one file each:
//!
//! - `sync`: the entry stream (entries and bundles pushed by the server);
//! - `x509`: the minter, which signs X.509-SVIDs due for an entry or for rotation
//!   (and refreshes WIT-SVIDs);
//! - `wit`: WIT-SVIDs, minted on a workload's first request and kept fresh;
//! - `jwt`: JWT-SVIDs, minted on request and cached per entry and audience;
//! - `sdcwt`: SD-CWTs, minted on request and cached per entry;
//! - `mint_cache`: the cache both use (served until half-life, then re-minted within
//!   the caller's mint budget);
//! - `agent_svid`: renewal of the agent's own SVID;
//! - `backoff`: the jittered delays between retries and before rotation.
//!
//! Everything it learns is published through [`Store`] snapshots, which wake the open
//! Workload API streams.

mod agent_svid;
mod backoff;
mod jwt;
mod mint_cache;
mod sdcwt;
mod sync;
mod wit;
mod x509;

pub use sdcwt::MintedSdCwt;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use lanyard_api::agent::v1::agent_api_client::AgentApiClient;
use lanyard_core::{Clock, CryptoProvider, SpiffeId, TrustDomain, TrustStore, UnixTime};
use lanyard_x509::{Authorizer, SvidSource};
use tokio::sync::Notify;
use tonic::transport::Channel;

use crate::attestor::node::NodeIdentity;
use crate::config::AgentConfig;
use crate::error::AgentError;
use crate::state::Store;
use crate::storage::NodeFiles;

/// What the health endpoint reports.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Health {
    /// The agent's SPIFFE ID.
    pub agent_id: String,
    /// When the agent SVID expires (seconds since the epoch).
    pub agent_svid_expires_at: u64,
    /// Whether the entry stream from the server is currently open.
    pub server_connected: bool,
    /// Whether a complete entry set has been received since start.
    pub synced: bool,
    /// The last error talking to the server, if the last attempt failed.
    pub last_error: Option<String>,
    /// Entries authorized for this agent.
    pub entries: usize,
    /// X.509-SVIDs held.
    pub x509_svids: usize,
    /// The server banned this agent: it serves nothing and waits to be re-attested.
    pub banned: bool,
}

/// The agent's link to the server and the credentials it holds for its workloads.
pub struct Manager {
    td: TrustDomain,
    server_id: SpiffeId,
    server_address: String,
    agent_id: RwLock<SpiffeId>,
    /// The agent SVID's validity (notBefore, notAfter).
    agent_validity: RwLock<(UnixTime, UnixTime)>,
    files: NodeFiles,
    store: Arc<Store>,
    /// The agent's TLS identity toward the server (its SVID and the bundles it trusts).
    source: Arc<SvidSource>,
    client: RwLock<AgentApiClient<Channel>>,
    /// WIT/JWT verification keys (own and federated bundles).
    trust: Arc<TrustStore>,
    wake_minter: Notify,
    restart_sync: Notify,
    jwts: jwt::JwtCache,
    sd_cwts: sdcwt::SdCwtCache,
    /// Entries the agent refused, so each is logged once.
    refused: Mutex<HashSet<String>>,
    /// Entries whose WIT is being minted (one mint per entry at a time).
    wits_in_flight: Mutex<HashSet<String>>,
    health: Mutex<Health>,
    clock: Arc<dyn Clock>,
    /// Verification, thumbprints and jitter.
    crypto: Arc<dyn CryptoProvider>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("agent_id", &self.agent_id())
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// Connects to the server as `identity` (resumed or just attested) and publishes what
    /// it learns to `store`; `files` keeps the agent SVID and bundle across restarts.
    pub(crate) fn new(
        config: &AgentConfig,
        identity: NodeIdentity,
        files: NodeFiles,
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        crypto: Arc<dyn CryptoProvider>,
    ) -> Result<Arc<Manager>, AgentError> {
        let td = config.trust_domain()?;
        let server_id = config.server_spiffe_id()?;
        let NodeIdentity { svid, bundle, trusted } = identity;
        let agent_id = svid.spiffe_id()?;
        let agent_expires = svid.not_after()?;
        let agent_issued = svid.not_before()?;
        let source = Arc::new(SvidSource::new(&svid, trusted)?);
        let tls = lanyard_x509::client_config(Arc::clone(&source), Authorizer::Exact(server_id.clone()))?;
        let client = crate::link::client(&config.server_address, tls)?;
        let trust = Arc::new(TrustStore::new(Arc::clone(&crypto)));
        let manager = Arc::new(Manager {
            td,
            server_id,
            server_address: config.server_address.clone(),
            agent_id: RwLock::new(agent_id.clone()),
            agent_validity: RwLock::new((agent_issued, agent_expires)),
            files,
            store,
            source,
            client: RwLock::new(client),
            trust,
            wake_minter: Notify::new(),
            restart_sync: Notify::new(),
            jwts: jwt::cache(),
            sd_cwts: sdcwt::cache(),
            refused: Mutex::new(HashSet::new()),
            wits_in_flight: Mutex::new(HashSet::new()),
            health: Mutex::new(Health {
                agent_id: agent_id.to_string(),
                agent_svid_expires_at: agent_expires.as_secs(),
                ..Health::default()
            }),
            clock,
            crypto,
        });
        if let Some(bundle) = bundle {
            manager.apply_own_bundle(&bundle)?;
        }
        Ok(manager)
    }

    /// The agent's SPIFFE ID.
    pub fn agent_id(&self) -> SpiffeId {
        self.agent_id.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The published state.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The trust store with every bundle's JWT-SVID and WIT keys.
    pub fn trust(&self) -> &Arc<TrustStore> {
        &self.trust
    }

    /// The current time.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// The current health report.
    pub fn health(&self) -> Health {
        let snap = self.store.current();
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner).clone();
        health.synced = snap.synced;
        health.entries = snap.entries.len();
        health.x509_svids = snap.svids.len();
        health
    }

    fn set_health(&self, change: impl FnOnce(&mut Health)) {
        change(&mut self.health.lock().unwrap_or_else(PoisonError::into_inner));
    }

    fn client(&self) -> AgentApiClient<Channel> {
        self.client.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Runs the jobs until the future is dropped: the entry stream, the minter, the agent
    /// SVID renewer and the expiry sweep.
    pub async fn run(self: Arc<Self>) {
        tokio::join!(
            Arc::clone(&self).sync_loop(),
            Arc::clone(&self).mint_loop(),
            Arc::clone(&self).renew_loop(),
            Arc::clone(&self).expiry_loop()
        );
    }

    /// Drops expired credentials every second, on its own task so that a stalled server
    /// call elsewhere cannot keep an expired credential published.
    async fn expiry_loop(self: Arc<Self>) {
        loop {
            let now = self.now();
            self.store.update(|s| {
                let before = s.svids.len() + s.wits.len();
                s.svids.retain(|_, svid| svid.expires_at > now);
                s.wits.retain(|_, wit| wit.expires_at > now);
                before != s.svids.len() + s.wits.len()
            });
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
