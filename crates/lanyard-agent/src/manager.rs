//! The manager: the agent's side of the server↔agent API. It keeps the agent SVID renewed,
//! applies the pushed entry stream, pre-mints X.509-SVIDs for every entry with keys made
//! here (private keys never leave the node), rotates them at about half their lifetime,
//! and mints JWT-SVIDs (cached per audience) and WIT-SVIDs on demand.
//!
//! Everything it learns is published through [`Store`] snapshots, which wake the open
//! Workload API streams.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use lanyard_api::agent::v1 as pb;
use lanyard_api::agent::v1::agent_api_client::AgentApiClient;
use lanyard_core::{
    Algorithm, Clock, JwtSvidPolicy, JwtSvidVerifier, SigningKey, SpiffeId, SystemClock, TrustDomain, TrustStore,
    UnixTime, WitPolicy, WitVerifier, WorkloadId,
};
use lanyard_x509::{Authorizer, SvidSource, X509Bundle, X509BundleSet, X509Svid};
use tokio::sync::Notify;
use tonic::Code;
use tonic::transport::Channel;

use crate::attestor::node::{self, NodeFiles};
use crate::config::AgentConfig;
use crate::error::{AgentError, CredentialError};
use crate::state::{BundleView, HeldSvid, HeldWit, Snapshot, Store};

/// How many CSRs go into one `BatchNewX509Svid` call.
const BATCH: usize = 500;
/// The most JWT-SVIDs the agent caches (across workloads and audiences).
const MAX_CACHED_JWTS: usize = 10_000;
/// How long before its expiry the agent SVID is renewed at the latest.
const RENEW_MARGIN: u64 = 30;

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

/// A JWT-SVID cache key: entry id, entry revision, sorted audience.
type JwtKey = (String, u64, Vec<String>);

#[derive(Clone)]
struct CachedJwt {
    token: String,
    issued_at: UnixTime,
    expires_at: UnixTime,
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
    jwts: Mutex<HashMap<JwtKey, CachedJwt>>,
    /// Entries the agent refused, so each is logged once.
    refused: Mutex<HashSet<String>>,
    /// Entries whose WIT is being minted (one mint per entry at a time).
    wits_in_flight: Mutex<HashSet<String>>,
    health: Mutex<Health>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("agent_id", &self.agent_id())
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// Resumes with the stored agent SVID or attests the node, then connects to the server.
    pub async fn start(config: &AgentConfig, store: Arc<Store>) -> Result<Arc<Manager>, AgentError> {
        config.validate()?;
        let td = config.trust_domain()?;
        let server_id = config.server_spiffe_id()?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let now = clock.now();
        let files = NodeFiles::new(&config.data_dir);
        files.prepare()?;

        // What the agent trusts for the server: the last bundle it received, plus the
        // configured bootstrap bundle.
        let mut trusted = X509BundleSet::new();
        if let Some(bundle) = files.load_bundle(&td)? {
            trusted.insert(X509Bundle::from_spiffe_bundle(&bundle)?);
        } else if let Some(path) = &config.trust_bundle_path {
            trusted.insert(node::read_bootstrap_bundle(path, &td)?);
        } else {
            return Err(AgentError::Config(
                "no trust bundle: set trust_bundle_path (--trust-bundle) to the server's bundle for the first start"
                    .into(),
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
                let (svid, bundle) = if let Some(token) = &config.join_token {
                    node::attest_with_join_token(&mut client, &td, token, &trusted, now).await?
                } else if let Some(pop) = &config.x509pop {
                    node::x509pop::attest(&mut client, &td, pop, &trusted, now).await?
                } else {
                    return Err(AgentError::Attestation(
                        "no valid stored agent SVID, and neither a join token nor an x509pop certificate is configured"
                            .into(),
                    ));
                };
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

        let agent_id = svid.spiffe_id()?;
        let agent_expires = svid.not_after()?;
        let agent_issued = svid.not_before()?;
        let source = Arc::new(SvidSource::new(&svid, trusted)?);
        let tls = lanyard_x509::client_config(Arc::clone(&source), Authorizer::Exact(server_id.clone()))?;
        let client = crate::link::client(&config.server_address, tls)?;
        let trust = Arc::new(TrustStore::new(lanyard_crypto::provider()));
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
            jwts: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashSet::new()),
            wits_in_flight: Mutex::new(HashSet::new()),
            health: Mutex::new(Health {
                agent_id: agent_id.to_string(),
                agent_svid_expires_at: agent_expires.as_secs(),
                ..Health::default()
            }),
            clock,
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

    /// Runs the entry stream, the minter and the agent SVID renewer until the future is
    /// dropped.
    pub async fn run(self: Arc<Self>) {
        tokio::join!(
            Arc::clone(&self).sync_loop(),
            Arc::clone(&self).mint_loop(),
            Arc::clone(&self).renew_loop(),
            Arc::clone(&self).expiry_loop()
        );
    }

    // ----- entry stream -------------------------------------------------------------

    async fn sync_loop(self: Arc<Self>) {
        let mut backoff = Backoff::new();
        loop {
            let result = tokio::select! {
                result = self.sync_once(&mut backoff) => result,
                () = self.restart_sync.notified() => Ok(()),
            };
            let was = self.health();
            self.set_health(|h| h.server_connected = false);
            match result {
                Ok(()) => tracing::debug!("entry stream restarted"),
                Err(status) if status.code() == Code::PermissionDenied => {
                    // Logged once per refusal, not on every retry.
                    if !was.banned {
                        tracing::error!(
                            reason = status.message(),
                            "the server refused this agent; serving nothing"
                        );
                    }
                    self.set_health(|h| {
                        h.banned = true;
                        h.last_error = Some(status.message().to_owned());
                    });
                    self.store.update(|s| {
                        let had = !s.entries.is_empty() || !s.svids.is_empty() || !s.wits.is_empty();
                        s.set_entries(BTreeMap::new());
                        s.svids.clear();
                        s.wits.clear();
                        had
                    });
                }
                Err(status) => {
                    // Logged when the link goes down, then quietly retried.
                    if was.server_connected || was.last_error.is_none() {
                        tracing::warn!(code = ?status.code(), reason = status.message(), "entry stream failed; reconnecting with backoff");
                    } else {
                        tracing::debug!(code = ?status.code(), reason = status.message(), "still cannot reach the server");
                    }
                    self.set_health(|h| h.last_error = Some(format!("{:?}: {}", status.code(), status.message())));
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff.next_delay()) => {}
                () = self.restart_sync.notified() => {}
            }
        }
    }

    async fn sync_once(&self, backoff: &mut Backoff) -> Result<(), tonic::Status> {
        let mut stream = self
            .client()
            .sync_entries(pb::SyncEntriesRequest { known_revision: 0 })
            .await?
            .into_inner();
        self.set_health(|h| {
            h.server_connected = true;
            h.banned = false;
            h.last_error = None;
        });
        let mut chunks: Vec<pb::Entry> = Vec::new();
        while let Some(message) = stream.message().await? {
            backoff.reset();
            match message.event {
                Some(pb::sync_entries_response::Event::Bundles(bundles)) => {
                    if let Err(e) = self.apply_bundles(&bundles) {
                        tracing::error!(error = %e, "refusing bundles from the server");
                    }
                }
                Some(pb::sync_entries_response::Event::Snapshot(snapshot)) => {
                    chunks.extend(snapshot.entries);
                    if snapshot.complete {
                        self.apply_snapshot(snapshot.revision, std::mem::take(&mut chunks));
                    }
                }
                Some(pb::sync_entries_response::Event::Delta(delta)) => self.apply_delta(delta),
                None => {}
            }
        }
        Ok(())
    }

    fn apply_bundles(&self, bundles: &pb::Bundles) -> Result<(), AgentError> {
        let own = bundles
            .bundle
            .as_ref()
            .ok_or_else(|| AgentError::InvalidFromServer("bundles without the own trust domain's".into()))?;
        let mut federated = BTreeMap::new();
        for (key, bundle) in &bundles.federated_bundles {
            match BundleView::from_pb(bundle) {
                Ok(view) if &view.key == key && view.bundle.trust_domain != self.td => {
                    federated.insert(key.clone(), Arc::new(view));
                }
                Ok(_) => tracing::warn!(trust_domain = %key, "ignoring a federated bundle filed under the wrong key"),
                Err(e) => tracing::warn!(trust_domain = %key, error = %e, "ignoring an invalid federated bundle"),
            }
        }
        self.apply_bundle_set(own, federated)
    }

    /// Installs the own trust domain's bundle (from attestation or renewal), keeping the
    /// federated bundles as they are.
    fn apply_own_bundle(&self, own: &pb::Bundle) -> Result<(), AgentError> {
        self.apply_bundle_set(own, self.store.current().federated.clone())
    }

    fn apply_bundle_set(
        &self,
        own: &pb::Bundle,
        federated: BTreeMap<String, Arc<BundleView>>,
    ) -> Result<(), AgentError> {
        let json = own.json.clone();
        let own = BundleView::from_pb(own)?;
        if own.bundle.trust_domain != self.td {
            return Err(AgentError::InvalidFromServer(format!(
                "bundle for {} instead of {}",
                own.bundle.trust_domain.name(),
                self.td.name()
            )));
        }

        // TLS toward the server trusts the new own bundle; JWT/WIT checks trust all.
        let changed = self
            .store
            .current()
            .bundle
            .as_ref()
            .is_none_or(|b| b.sequence != own.sequence || b.bundle != own.bundle);
        if changed {
            self.source
                .update_bundles(X509BundleSet::new().with(X509Bundle::from_spiffe_bundle(&own.bundle)?));
            self.files.save_bundle(&json)?;
        }
        self.trust.set_bundle(&own.bundle)?;
        let current = self.store.current();
        for key in current.federated.keys().filter(|k| !federated.contains_key(*k)) {
            self.trust.remove_trust_domain(key.trim_start_matches("spiffe://"));
        }
        for view in federated.values() {
            self.trust.set_bundle(&view.bundle)?;
        }
        let own = Arc::new(own);
        self.store.update(|s| {
            let same_fed = s.federated.len() == federated.len()
                && s.federated
                    .iter()
                    .all(|(k, v)| federated.get(k).is_some_and(|n| n.bundle == v.bundle));
            if !changed && same_fed {
                return false;
            }
            s.bundle = Some(Arc::clone(&own));
            s.federated = federated;
            true
        });
        Ok(())
    }

    /// Whether the server may send this entry to this agent; logs a refusal once.
    fn acceptable(&self, entry: &pb::Entry) -> bool {
        let Some(reason) = entry_refusal(entry, &self.agent_id(), &self.td) else {
            return true;
        };
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        if refused.insert(format!("{}@{}", entry.id, entry.revision)) {
            tracing::warn!(entry_id = %entry.id, %reason, "refusing an entry sent by the server");
        }
        false
    }

    fn apply_snapshot(&self, revision: u64, entries: Vec<pb::Entry>) {
        let entries: BTreeMap<String, Arc<pb::Entry>> = entries
            .into_iter()
            .filter(|e| self.acceptable(e))
            .map(|e| (e.id.clone(), Arc::new(e)))
            .collect();
        tracing::info!(entries = entries.len(), revision, "entry snapshot applied");
        self.store.update(|s| {
            s.revision = revision;
            s.set_entries(entries);
            s.synced = true;
            drop_orphans(s);
            true
        });
        self.wake_minter.notify_one();
    }

    fn apply_delta(&self, delta: pb::EntriesDelta) {
        let upserts: Vec<pb::Entry> = delta.upserts.into_iter().filter(|e| self.acceptable(e)).collect();
        self.store.update(|s| {
            if delta.revision <= s.revision {
                return false;
            }
            s.revision = delta.revision;
            let mut entries = std::mem::take(&mut s.entries);
            for id in &delta.deleted_entry_ids {
                entries.remove(id);
            }
            for entry in upserts {
                entries.insert(entry.id.clone(), Arc::new(entry));
            }
            s.set_entries(entries);
            drop_orphans(s);
            true
        });
        self.wake_minter.notify_one();
    }

    // ----- X.509-SVID minting and rotation ---------------------------------------

    async fn mint_loop(self: Arc<Self>) {
        loop {
            if let Err(e) = self.mint_due().await {
                tracing::warn!(error = %e, "minting SVIDs failed; retrying");
            }
            if let Err(e) = self.refresh_wits().await {
                tracing::warn!(error = %e, "refreshing WITs failed; retrying");
            }
            tokio::select! {
                () = self.wake_minter.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
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

    /// Mints SVIDs for entries without a current one.
    async fn mint_due(&self) -> Result<(), AgentError> {
        let now = self.now();
        let snap = self.store.current();
        let due: Vec<Arc<pb::Entry>> = snap
            .entries
            .values()
            .filter(|e| e.spiffe_id.starts_with("spiffe://"))
            .filter(|e| {
                snap.svids
                    .get(&e.id)
                    .is_none_or(|svid| svid.entry_revision != e.revision || now >= svid.rotate_at)
            })
            .cloned()
            .collect();
        for batch in due.chunks(BATCH) {
            self.mint_batch(batch, &snap).await?;
        }
        Ok(())
    }

    async fn mint_batch(&self, batch: &[Arc<pb::Entry>], snap: &Snapshot) -> Result<(), AgentError> {
        let Some(own) = &snap.bundle else {
            return Ok(());
        };
        let bundles = X509BundleSet::new().with(X509Bundle::from_spiffe_bundle(&own.bundle)?);
        let entries: Vec<Arc<pb::Entry>> = batch.to_vec();
        // Key generation and CSR signing are CPU work: keep them off the async threads.
        let prepared = tokio::task::spawn_blocking(move || {
            entries
                .into_iter()
                .map(|e| node::key_and_csr(&e.spiffe_id, &e.dns_names).map(|(key, csr)| (e, key, csr)))
                .collect::<Result<Vec<_>, AgentError>>()
        })
        .await
        .map_err(|e| AgentError::Crypto(e.to_string()))??;
        let request = pb::BatchNewX509SvidRequest {
            params: prepared
                .iter()
                .map(|(e, _, csr)| pb::X509SvidParams {
                    entry_id: e.id.clone(),
                    csr: csr.clone(),
                })
                .collect(),
        };
        let response = self
            .client()
            .batch_new_x509_svid(crate::link::timed(request))
            .await?
            .into_inner();
        if response.results.len() != prepared.len() {
            return Err(AgentError::InvalidFromServer(format!(
                "{} results for {} CSRs",
                response.results.len(),
                prepared.len()
            )));
        }
        let now = self.now();
        let accepted = tokio::task::spawn_blocking(move || {
            let mut accepted = Vec::new();
            for ((entry, key, _), result) in prepared.into_iter().zip(response.results) {
                match result.result {
                    Some(pb::x509_svid_result::Result::Svid(svid)) if result.entry_id == entry.id => {
                        match node::accept_svid(&svid, key.clone(), &entry.spiffe_id, &bundles, now) {
                            Ok((_, verified)) => accepted.push((
                                entry.id.clone(),
                                HeldSvid {
                                    spiffe_id: entry.spiffe_id.clone(),
                                    chain: svid.cert_chain,
                                    key_pkcs8: key,
                                    issued_at: verified.not_before,
                                    expires_at: verified.not_after,
                                    rotate_at: rotate_time(verified.not_before.max(now), verified.not_after),
                                    entry_revision: entry.revision,
                                },
                            )),
                            Err(e) => tracing::error!(entry_id = %entry.id, error = %e, "refusing an SVID"),
                        }
                    }
                    Some(pb::x509_svid_result::Result::Error(why)) => {
                        tracing::warn!(entry_id = %entry.id, reason = %why, "the server refused to sign an SVID");
                    }
                    _ => tracing::error!(entry_id = %entry.id, "malformed BatchNewX509Svid result"),
                }
            }
            accepted
        })
        .await
        .map_err(|e| AgentError::Crypto(e.to_string()))?;
        if accepted.is_empty() {
            return Ok(());
        }
        tracing::debug!(count = accepted.len(), "X.509-SVIDs minted");
        self.store.update(|s| {
            for (id, svid) in accepted {
                // The entry may have gone while the request was in flight.
                if s.entries.contains_key(&id) {
                    s.svids.insert(id, Arc::new(svid));
                }
            }
            true
        });
        Ok(())
    }

    // ----- WIT-SVIDs -----------------------------------------------------------------

    /// Makes sure each of `entry_ids` has a current WIT-SVID (minting the missing ones).
    /// From then on the minter keeps them fresh.
    pub async fn ensure_wits(&self, entry_ids: &[String]) -> Result<(), AgentError> {
        let snap = self.store.current();
        let now = self.now();
        for id in entry_ids {
            let Some(entry) = snap.entries.get(id) else { continue };
            if !wit_is_current(&snap, entry, now) {
                self.mint_wit(entry).await?;
            }
        }
        Ok(())
    }

    async fn refresh_wits(&self) -> Result<(), AgentError> {
        let snap = self.store.current();
        let now = self.now();
        for (id, wit) in &snap.wits {
            let Some(entry) = snap.entries.get(id) else { continue };
            if now >= wit.rotate_at || wit.entry_revision != entry.revision {
                self.mint_wit(entry).await?;
            }
        }
        Ok(())
    }

    /// Mints a WIT for `entry` unless one is already being minted (that one will be
    /// published for every stream waiting on it).
    async fn mint_wit(&self, entry: &Arc<pb::Entry>) -> Result<(), AgentError> {
        if !self
            .wits_in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(entry.id.clone())
        {
            return Ok(());
        }
        // Removed on drop too: the caller's future may be cancelled mid-mint (a workload
        // hanging up), and the entry must not stay "in flight" forever.
        let _in_flight = InFlight {
            set: &self.wits_in_flight,
            id: entry.id.clone(),
        };
        self.mint_wit_now(entry).await
    }

    async fn mint_wit_now(&self, entry: &Arc<pb::Entry>) -> Result<(), AgentError> {
        let key = lanyard_crypto::KeyPair::generate(Algorithm::ES256)?;
        let public = key.public_jwk().to_json();
        let response = self
            .client()
            .new_wit(crate::link::timed(pb::NewWitRequest {
                entry_id: entry.id.clone(),
                cnf_jwk: public,
            }))
            .await?
            .into_inner();
        // Check what the server sent before handing it to a workload.
        let verifier = WitVerifier::new(Arc::clone(&self.trust), WitPolicy::wimse());
        let verified = verifier.verify(&response.token, self.now())?;
        let provider = lanyard_crypto::provider();
        let bound =
            verified.cnf_jwk.thumbprint(provider.as_ref())? == key.public_jwk().thumbprint(provider.as_ref())?;
        if verified.sub.as_str() != entry.spiffe_id || !bound {
            return Err(AgentError::InvalidFromServer(format!(
                "WIT for entry {} names {} or binds another key",
                entry.id, verified.sub
            )));
        }
        let issued_at = verified.iat.unwrap_or(self.now());
        let held = HeldWit {
            token: response.token,
            private_jwk: key.private_jwk()?.to_json(),
            issued_at,
            expires_at: verified.exp,
            rotate_at: rotate_time(issued_at.max(self.now()), verified.exp),
            entry_revision: entry.revision,
        };
        let id = entry.id.clone();
        self.store.update(|s| {
            if s.entries.contains_key(&id) {
                s.wits.insert(id, Arc::new(held));
                true
            } else {
                false
            }
        });
        Ok(())
    }

    // ----- JWT-SVIDs -----------------------------------------------------------------

    /// A JWT-SVID for `entry` and `audience`: from the cache while it has more than half
    /// its lifetime left, else freshly minted by the server once `budget` allows it (or,
    /// if the server cannot be reached or the budget is spent, the cached one while it is
    /// still valid).
    pub async fn jwt_svid(
        &self,
        entry: &pb::Entry,
        audience: &[String],
        budget: impl FnOnce() -> Result<(), CredentialError>,
    ) -> Result<String, CredentialError> {
        let mut audience = audience.to_vec();
        audience.sort();
        audience.dedup();
        lanyard_core::spiffe::check_audiences(&audience)
            .map_err(|e| CredentialError::InvalidRequest(format!("audience: {e}")))?;
        let key = (entry.id.clone(), entry.revision, audience.clone());
        let now = self.now();
        let cached = self
            .jwts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned();
        let still_valid = |c: &CachedJwt| c.expires_at.as_secs() > now.as_secs() + 5;
        if let Some(c) = &cached {
            let half = c.issued_at.as_secs() + (c.expires_at.as_secs().saturating_sub(c.issued_at.as_secs())) / 2;
            if now.as_secs() < half {
                return Ok(c.token.clone());
            }
        }
        if let Err(refused) = budget() {
            return match cached {
                Some(c) if still_valid(&c) => Ok(c.token),
                _ => Err(refused),
            };
        }
        let minted = self
            .client()
            .new_jwt_svid(crate::link::timed(pb::NewJwtSvidRequest {
                entry_id: entry.id.clone(),
                audience: audience.clone(),
            }))
            .await;
        match minted {
            Ok(response) => {
                let token = response.into_inner().token;
                // Check what the server sent before handing it to a workload, and cache it
                // by its own claims.
                let verifier = JwtSvidVerifier::new(Arc::clone(&self.trust), JwtSvidPolicy::default());
                let verified = audience
                    .iter()
                    .try_fold(None, |_, aud| verifier.verify(&token, aud, now).map(Some))
                    .ok()
                    .flatten()
                    .filter(|v| v.sub.as_str() == entry.spiffe_id)
                    .ok_or_else(|| {
                        tracing::error!(entry_id = %entry.id, "refusing a JWT-SVID from the server that does not verify");
                        CredentialError::Unavailable("the server returned an invalid JWT-SVID".into())
                    })?;
                let fresh = CachedJwt {
                    token: token.clone(),
                    issued_at: verified.iat.unwrap_or(now),
                    expires_at: verified.exp,
                };
                let mut jwts = self.jwts.lock().unwrap_or_else(PoisonError::into_inner);
                if jwts.len() >= MAX_CACHED_JWTS {
                    jwts.retain(|_, c| c.expires_at > now);
                    if jwts.len() >= MAX_CACHED_JWTS {
                        // Still full of live tokens (a workload asking for many audiences):
                        // start over rather than grow without bound.
                        jwts.clear();
                    }
                }
                jwts.insert(key, fresh);
                Ok(token)
            }
            Err(status) => {
                let error = CredentialError::from_mint("JWT-SVID", &AgentError::Server(status));
                match cached {
                    Some(c) if still_valid(&c) && matches!(error, CredentialError::Unavailable(_)) => {
                        tracing::warn!("server unavailable; serving a cached JWT-SVID");
                        Ok(c.token)
                    }
                    _ => Err(error),
                }
            }
        }
    }

    /// The entries among `entry_ids` that have no current WIT-SVID (each costs a mint).
    pub fn wits_to_mint(&self, entry_ids: &[String]) -> usize {
        let snap = self.store.current();
        let now = self.now();
        entry_ids
            .iter()
            .filter_map(|id| snap.entries.get(id))
            .filter(|entry| !wit_is_current(&snap, entry, now))
            .count()
    }

    // ----- agent SVID renewal -----------------------------------------------------

    async fn renew_loop(self: Arc<Self>) {
        let mut backoff = Backoff::new();
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
        let (svid, bundle) = node::renew(&mut self.client(), &agent_id, &trusted, self.now()).await?;
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

/// Why this agent must not serve `entry`, if it must not: the entry belongs to another
/// node, names an identity outside the trust domain, is malformed, or has no selectors
/// (it would match every workload).
/// Whether `entry` has a WIT-SVID minted for its current revision and not yet expired.
fn wit_is_current(snap: &Snapshot, entry: &pb::Entry, now: UnixTime) -> bool {
    snap.wits
        .get(&entry.id)
        .is_some_and(|w| w.entry_revision == entry.revision && w.expires_at > now)
}

fn entry_refusal(entry: &pb::Entry, agent: &SpiffeId, td: &TrustDomain) -> Option<String> {
    if entry.parent_id != agent.as_str() {
        return Some(format!("its parent is {}, not this agent", entry.parent_id));
    }
    match WorkloadId::parse(&entry.spiffe_id) {
        Err(e) => Some(format!("invalid identity {:?}: {e}", entry.spiffe_id)),
        Ok(id) if id.trust_domain() != td.name() => {
            Some(format!("{} is not in trust domain {}", entry.spiffe_id, td.name()))
        }
        Ok(_) if entry.selectors.is_empty() => Some("it has no selectors".into()),
        Ok(_)
            if entry
                .selectors
                .iter()
                .any(|s| s.r#type.is_empty() || s.value.is_empty()) =>
        {
            Some("it has an empty selector".into())
        }
        Ok(_) => None,
    }
}

/// Takes an entry id out of an in-flight set when dropped.
struct InFlight<'a> {
    set: &'a Mutex<HashSet<String>>,
    id: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

/// Removes SVIDs and WITs whose entry is gone.
fn drop_orphans(s: &mut Snapshot) {
    let entries = &s.entries;
    s.svids.retain(|id, _| entries.contains_key(id));
    s.wits.retain(|id, _| entries.contains_key(id));
}

/// When to replace a credential valid from `issued` to `expires`: at 50–60 % of its
/// lifetime (random jitter, so that a fleet does not renew in lockstep). Callers pass the
/// later of notBefore and the time of receipt as `issued`: issuers backdate notBefore a
/// little for clock skew, which must not make a short-lived credential due at once.
fn rotate_time(issued: UnixTime, expires: UnixTime) -> UnixTime {
    let lifetime = expires.as_secs().saturating_sub(issued.as_secs());
    let mut random = [0u8; 2];
    let jitter_permille = match lanyard_crypto::provider().fill_random(&mut random) {
        Ok(()) => u64::from(u16::from_le_bytes(random) % 100),
        Err(_) => 50,
    };
    // Lifetimes come from server-signed certificates; saturate rather than trust them.
    UnixTime(
        issued
            .as_secs()
            .saturating_add(lifetime.saturating_mul(500 + jitter_permille) / 1000),
    )
}

/// Exponential backoff with jitter: 0.5 s doubling to 30 s.
#[derive(Debug)]
struct Backoff {
    attempt: u32,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff { attempt: 0 }
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }

    fn next_delay(&mut self) -> Duration {
        let base_ms = 500u64.saturating_mul(1 << self.attempt.min(6)).min(30_000);
        self.attempt = self.attempt.saturating_add(1);
        let mut random = [0u8; 2];
        let jitter = match lanyard_crypto::provider().fill_random(&mut random) {
            Ok(()) => u64::from(u16::from_le_bytes(random)) % (base_ms / 4 + 1),
            Err(_) => 0,
        };
        Duration::from_millis(base_ms - base_ms / 8 + jitter)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn entries_for_other_nodes_or_domains_are_refused() {
        let agent = SpiffeId::parse("spiffe://example.org/lanyard/agent/join_token/ab").unwrap();
        let td = TrustDomain::parse("example.org").unwrap();
        let good = pb::Entry {
            id: "1".into(),
            spiffe_id: "spiffe://example.org/web".into(),
            parent_id: agent.to_string(),
            selectors: vec![pb::Selector {
                r#type: "unix".into(),
                value: "uid:1000".into(),
            }],
            ..pb::Entry::default()
        };
        assert_eq!(entry_refusal(&good, &agent, &td), None);
        let cases = [
            pb::Entry {
                parent_id: "spiffe://example.org/lanyard/agent/join_token/cd".into(),
                ..good.clone()
            },
            pb::Entry {
                spiffe_id: "spiffe://other.org/web".into(),
                ..good.clone()
            },
            pb::Entry {
                spiffe_id: "not an id".into(),
                ..good.clone()
            },
            pb::Entry {
                selectors: vec![],
                ..good.clone()
            },
            pb::Entry {
                selectors: vec![pb::Selector::default()],
                ..good.clone()
            },
        ];
        for case in cases {
            assert!(entry_refusal(&case, &agent, &td).is_some(), "{case:?}");
        }
    }

    #[test]
    fn rotation_is_between_half_and_sixty_percent() {
        for _ in 0..100 {
            let at = rotate_time(UnixTime(1000), UnixTime(2000)).as_secs();
            assert!((1500..1600).contains(&at), "{at}");
        }
    }

    #[test]
    fn backoff_grows_and_caps() {
        let mut b = Backoff::new();
        let first = b.next_delay();
        assert!(first <= Duration::from_millis(600), "{first:?}");
        for _ in 0..20 {
            b.next_delay();
        }
        assert!(b.next_delay() <= Duration::from_millis(30_000 + 7_500));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(600));
    }
}
