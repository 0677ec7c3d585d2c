//! Persistence: one trait per noun the server keeps, each taken only by the code that
//! uses it, and one SQL implementation of all of them ([`SqlDataStore`], per-noun files
//! under `datastore/sql/`) that runs on SQLite (the embedded default) and PostgreSQL (for
//! several server replicas).
//!
//! | trait | noun | used by |
//! |---|---|---|
//! | [`EntryStore`] | registration entries and their change log | admin API, agent API (sync, issuance) |
//! | [`JoinTokenStore`] | one-time join tokens (by hash) | join-token attestation |
//! | [`AgentStore`] | attested agents | agent API, x509pop attestation, admin API |
//! | [`AuthorityStore`] | signing authorities and the bundle sequence | key manager, TLS identities, readiness |
//! | [`FederatedBundleStore`] | foreign trust domains' bundles | federation, agent API |
//! | [`SecretStore`] | server secrets shared by replicas | x509pop challenge key |
//! | [`ClientStore`] | registered OAuth clients | OAuth authorization server, admin API |
//! | [`JtiStore`] | used assertion and proof `jti`s, revoked access tokens | OAuth authorization server |
//!
//! A new noun is a new trait here, a new file under `datastore/sql/` (and its migration),
//! a field of [`Stores`], and a new group of cases in the conformance suite
//! (`tests/datastore.rs`), which runs every case on SQLite and PostgreSQL.
//!
//! Every change that spans rows runs in a transaction; SQLite runs in WAL mode with
//! `synchronous=FULL`, so an acknowledged write survives `kill -9`.

use std::sync::Arc;

use async_trait::async_trait;

use lanyard_core::{SpiffeId, UnixTime};

use crate::model::{Agent, Authority, AuthorityKind, Entry, EntrySpec, OAuthClient};

mod client_cache;
mod group_commit;
mod revocation_mirror;
mod sql;

pub use client_cache::{CLIENT_CACHE_TTL, CachedClients, MAX_CACHED_CLIENTS};
pub use group_commit::GroupCommitJtis;
pub use revocation_mirror::{MAX_MIRRORED_REVOCATIONS, MirroredRevocations, REVOCATION_MIRROR_TTL};

/// The longest key a [`JtiStore`] records, in bytes.
pub const MAX_JTI_KEY: usize = 128;

pub use sql::SqlDataStore;

/// Why a datastore call failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// An equal object already exists.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// A concurrent change won (e.g. an entry's revision moved on).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The input is not acceptable.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The database failed.
    #[error("database: {context}: {source}")]
    Backend {
        /// What the store was doing.
        context: String,
        /// The driver's (or a decoder's) error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database holds something this server cannot use (an unknown enum value, a
    /// missing fixed row) or refused a setting the store needs.
    #[error("database: {0}")]
    Inconsistent(String),
    /// The store holds as much as it may of something that frees itself with time (live
    /// one-time values): the caller may try again later.
    #[error("full: {0}")]
    Full(String),
}

impl StoreError {
    /// [`StoreError::Backend`] for `source` while doing `context`.
    pub fn backend(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Backend {
            context: context.into(),
            source: Box::new(source),
        }
    }
}

/// Which entries to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryFilter {
    /// Only entries with this parent (agent) ID.
    pub parent_id: Option<SpiffeId>,
    /// Only entries with this identity.
    pub spiffe_id: Option<String>,
}

/// A change to the entries, in commit order (`seq` increases), for pushing to agents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryEvent {
    /// Position in the change log.
    pub seq: u64,
    /// The entry that changed.
    pub entry_id: String,
    /// The entry's parent at the time (so only the agents concerned are woken).
    pub parent_id: String,
    /// Whether the entry was deleted.
    pub deleted: bool,
}

/// What happened when a join token was presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenUse {
    /// Valid and now used up.
    Consumed,
    /// It existed but had expired (and is now removed).
    Expired,
    /// Unknown or already used.
    Unknown,
}

/// Registration entries, and the change log the agent sync pushes from.
#[async_trait]
pub trait EntryStore: Send + Sync + std::fmt::Debug {
    /// Creates an entry; an entry with the same identity, parent and selectors is
    /// [`StoreError::AlreadyExists`].
    async fn create_entry(&self, spec: &EntrySpec, now: UnixTime) -> Result<Entry, StoreError>;
    /// Creates many entries in one transaction: all or none.
    async fn create_entries(&self, specs: &[EntrySpec], now: UnixTime) -> Result<Vec<Entry>, StoreError>;
    /// One entry by ID.
    async fn get_entry(&self, id: &str) -> Result<Option<Entry>, StoreError>;
    /// Replaces an entry's fields and bumps its revision; with `expected_revision`, fails
    /// with [`StoreError::Conflict`] if the entry changed meanwhile.
    async fn update_entry(
        &self,
        id: &str,
        spec: &EntrySpec,
        expected_revision: Option<u64>,
    ) -> Result<Entry, StoreError>;
    /// Deletes an entry; returns whether it existed.
    async fn delete_entry(&self, id: &str) -> Result<bool, StoreError>;
    /// Lists entries, ordered by ID.
    async fn list_entries(&self, filter: &EntryFilter) -> Result<Vec<Entry>, StoreError>;
    /// The newest change-log position (0 if none).
    async fn latest_entry_event(&self) -> Result<u64, StoreError>;
    /// Changes after `seq`, oldest first, at most `limit`.
    async fn entry_events_since(&self, seq: u64, limit: u32) -> Result<Vec<EntryEvent>, StoreError>;
    /// Deletes all but the newest `keep` entry events (agents always start from a
    /// snapshot, and the sync hub reads the log within milliseconds); returns how many
    /// were deleted.
    async fn prune_entry_events(&self, keep: u64) -> Result<u64, StoreError>;

    /// Signalled (coalescing) after every entry write this process commits, so that the
    /// agent sync can push at once rather than at its next poll; `None` if the store cannot
    /// tell. Writes by other replicas are still found by polling.
    fn local_changes(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }
}

/// One-time join tokens, kept by the SHA-256 hex of their value.
#[async_trait]
pub trait JoinTokenStore: Send + Sync + std::fmt::Debug {
    /// Stores a join token (by the SHA-256 hex of its value) until `expires_at`.
    async fn create_join_token(&self, token_hash: &str, expires_at: UnixTime) -> Result<(), StoreError>;
    /// Uses a join token up, atomically: of two concurrent uses, exactly one is `Consumed`.
    async fn consume_join_token(&self, token_hash: &str, now: UnixTime) -> Result<TokenUse, StoreError>;
    /// Deletes the join tokens that expired before `now`; returns how many.
    async fn prune_join_tokens(&self, now: UnixTime) -> Result<u64, StoreError>;
}

/// Attested agents.
#[async_trait]
pub trait AgentStore: Send + Sync + std::fmt::Debug {
    /// Creates or replaces an agent.
    async fn upsert_agent(&self, agent: &Agent) -> Result<(), StoreError>;
    /// Ends the grace of an agent's previous SVID, if `current_serial` is still its current
    /// one (a renewal committed meanwhile is left alone).
    async fn clear_previous_svid_serial(&self, id: &SpiffeId, current_serial: &str) -> Result<(), StoreError>;
    /// One agent.
    async fn get_agent(&self, id: &SpiffeId) -> Result<Option<Agent>, StoreError>;
    /// Every agent, ordered by ID.
    async fn list_agents(&self) -> Result<Vec<Agent>, StoreError>;
    /// Bans an agent; returns whether it existed.
    async fn ban_agent(&self, id: &SpiffeId) -> Result<bool, StoreError>;
}

/// The signing authorities, and the sequence number of the bundle that publishes them.
#[async_trait]
pub trait AuthorityStore: Send + Sync + std::fmt::Debug {
    /// Creates or updates a signing authority.
    async fn put_authority(&self, authority: &Authority) -> Result<(), StoreError>;
    /// Signing authorities, optionally of one kind, ordered by `not_before`.
    async fn list_authorities(&self, kind: Option<AuthorityKind>) -> Result<Vec<Authority>, StoreError>;
    /// Deletes a signing authority; returns whether it existed.
    async fn delete_authority(&self, id: &str) -> Result<bool, StoreError>;
    /// Advances the bundle's `spiffe_sequence` and returns the new value.
    async fn bump_bundle_sequence(&self) -> Result<u64, StoreError>;
    /// The bundle's current `spiffe_sequence` (0 before the first bump).
    async fn bundle_sequence(&self) -> Result<u64, StoreError>;
}

/// Foreign trust domains' bundle documents, as last fetched.
#[async_trait]
pub trait FederatedBundleStore: Send + Sync + std::fmt::Debug {
    /// Stores a foreign trust domain's bundle document.
    async fn put_federated_bundle(
        &self,
        trust_domain: &str,
        bundle_json: &str,
        fetched_at: UnixTime,
    ) -> Result<(), StoreError>;
    /// A foreign trust domain's bundle document and when it was fetched.
    async fn get_federated_bundle(&self, trust_domain: &str) -> Result<Option<(String, UnixTime)>, StoreError>;
    /// Every stored foreign trust domain.
    async fn list_federated_bundles(&self) -> Result<Vec<String>, StoreError>;
    /// Deletes a foreign trust domain's bundle (one no longer federated with); returns
    /// whether it was stored.
    async fn delete_federated_bundle(&self, trust_domain: &str) -> Result<bool, StoreError>;
}

/// Server secrets that every replica sharing the datastore must agree on.
#[async_trait]
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    /// The server secret `name`: stores `candidate` if the datastore has none by that name
    /// yet, and returns the stored value, so that replicas sharing the datastore agree on
    /// one (the first writer wins).
    async fn get_or_create_secret(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError>;
}

/// Registered OAuth clients of the authorization server.
#[async_trait]
pub trait ClientStore: Send + Sync + std::fmt::Debug {
    /// Registers a client; one with the same `client_id` is [`StoreError::AlreadyExists`].
    async fn create_client(&self, client: &OAuthClient) -> Result<(), StoreError>;
    /// One client by `client_id`.
    async fn get_client(&self, client_id: &str) -> Result<Option<Arc<OAuthClient>>, StoreError>;
    /// Replaces a client's registration and secret hash and bumps its revision; with
    /// `expected_revision`, fails with [`StoreError::Conflict`] if it changed meanwhile.
    /// Returns the stored client ([`StoreError::NotFound`] if there is none).
    async fn update_client(
        &self,
        client: &OAuthClient,
        expected_revision: Option<u64>,
    ) -> Result<OAuthClient, StoreError>;
    /// Deletes a client; returns whether it existed.
    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError>;
    /// Every client, ordered by `client_id`.
    async fn list_clients(&self) -> Result<Vec<OAuthClient>, StoreError>;
    /// Whether any client has a secret (the metadata lists the secret methods only then).
    async fn any_client_has_secret(&self) -> Result<bool, StoreError>;
}

/// One-time values shared by every replica (on PostgreSQL; a SQLite file has one server
/// process): the `jti`s of client assertions and DPoP proofs already used, and the
/// `jti`s of revoked access tokens (RFC 7009).
#[async_trait]
pub trait JtiStore: Send + Sync + std::fmt::Debug {
    /// Records `key` (an opaque key of at most 128 bytes: the caller hashes the issuer
    /// and `jti`) as used until `expires_at`. Returns `true` when it was fresh, `false`
    /// when it is a replay (recorded and not yet expired at `now`). Atomic: of
    /// concurrent calls with one key, on any replica, exactly one gets `true`.
    async fn record_jti(&self, key: &str, expires_at: UnixTime, now: UnixTime) -> Result<bool, StoreError>;
    /// Records several keys at once, as one transaction (one commit, so one disk flush,
    /// for all of them): element `i` of the answer is what [`JtiStore::record_jti`] would
    /// answer for `keys[i]` had the keys been recorded one after the other (a key that
    /// appears twice is fresh once). The default records them one by one.
    async fn record_jtis(&self, keys: &[(String, UnixTime)], now: UnixTime) -> Result<Vec<bool>, StoreError> {
        let mut fresh = Vec::with_capacity(keys.len());
        for (key, expires_at) in keys {
            fresh.push(self.record_jti(key, *expires_at, now).await?);
        }
        Ok(fresh)
    }
    /// Marks an access token (by `jti`) revoked until `expires_at`.
    async fn revoke_token(&self, jti: &str, expires_at: UnixTime) -> Result<(), StoreError>;
    /// Whether the access token `jti` is revoked.
    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError>;
    /// [`JtiStore::is_revoked`] for several `jti`s at once (one query): element `i` of the
    /// answer is for `jtis[i]`. The default asks one by one.
    async fn revoked_among(&self, jtis: &[String]) -> Result<Vec<bool>, StoreError> {
        let mut revoked = Vec::with_capacity(jtis.len());
        for jti in jtis {
            revoked.push(self.is_revoked(jti).await?);
        }
        Ok(revoked)
    }
    /// Every revoked `jti` (the ones [`JtiStore::is_revoked`] would answer `true` for), or
    /// `None` when there are more than `limit` or the store cannot list them (the default):
    /// [`MirroredRevocations`] keeps a copy of them.
    async fn all_revocations(&self, limit: usize) -> Result<Option<std::collections::HashSet<String>>, StoreError> {
        let _ = limit;
        Ok(None)
    }
    /// Deletes recorded `jti`s and revocations that expired before `now`; returns how many.
    async fn prune_jtis(&self, now: UnixTime) -> Result<u64, StoreError>;
}

/// A complete datastore: every noun's trait, as one backend implements them. Only the
/// composition root (and tests) hold one; it hands each subsystem the traits it uses,
/// through [`Stores`].
pub trait DataStore:
    EntryStore + JoinTokenStore + AgentStore + AuthorityStore + FederatedBundleStore + SecretStore + ClientStore + JtiStore
{
}

impl<T> DataStore for T where
    T: EntryStore
        + JoinTokenStore
        + AgentStore
        + AuthorityStore
        + FederatedBundleStore
        + SecretStore
        + ClientStore
        + JtiStore
{
}

/// One handle per noun, all backed by one datastore: what request handlers reach through
/// [`AppState`](crate::state::AppState). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Stores {
    /// Registration entries and their change log.
    pub entries: Arc<dyn EntryStore>,
    /// One-time join tokens.
    pub join_tokens: Arc<dyn JoinTokenStore>,
    /// Attested agents.
    pub agents: Arc<dyn AgentStore>,
    /// Signing authorities and the bundle sequence.
    pub authorities: Arc<dyn AuthorityStore>,
    /// Foreign trust domains' bundles.
    pub federated_bundles: Arc<dyn FederatedBundleStore>,
    /// Server secrets.
    pub secrets: Arc<dyn SecretStore>,
    /// Registered OAuth clients.
    pub clients: Arc<dyn ClientStore>,
    /// Used and revoked `jti`s.
    pub jtis: Arc<dyn JtiStore>,
}

impl Stores {
    /// Every noun's handle, backed by `store`.
    pub fn new(store: Arc<dyn DataStore>) -> Stores {
        Stores {
            entries: store.clone(),
            join_tokens: store.clone(),
            agents: store.clone(),
            authorities: store.clone(),
            federated_bundles: store.clone(),
            secrets: store.clone(),
            clients: store.clone(),
            jtis: store,
        }
    }
}
