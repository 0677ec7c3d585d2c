//! What the agent holds for its workloads: entries, SVIDs, WITs and bundles, published as
//! immutable snapshots through a watch channel. Writers (the manager) build a new snapshot
//! and swap it in; readers (Workload API calls and streams) take the current one and are
//! woken on every change.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use lanyard_api::agent::v1 as pb;
use lanyard_core::{Jwk, SpiffeBundle, TrustDomain, UnixTime};
use tokio::sync::watch;

use crate::error::AgentError;

/// An X.509-SVID the agent holds for an entry, with the private key it generated.
#[derive(Clone)]
pub struct HeldSvid {
    /// The SPIFFE ID in the certificate.
    pub spiffe_id: String,
    /// Certificate chain, DER, leaf first.
    pub chain: Vec<Vec<u8>>,
    /// The private key, PKCS#8 DER. Never logged.
    pub key_pkcs8: Vec<u8>,
    /// notBefore.
    pub issued_at: UnixTime,
    /// notAfter.
    pub expires_at: UnixTime,
    /// When the agent replaces it (about half its lifetime, with jitter).
    pub rotate_at: UnixTime,
    /// The entry revision it was issued for; a changed entry gets a new SVID.
    pub entry_revision: u64,
}

impl std::fmt::Debug for HeldSvid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldSvid")
            .field("spiffe_id", &self.spiffe_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A WIT-SVID the agent holds for an entry, with the key its `cnf` claim binds.
#[derive(Clone)]
pub struct HeldWit {
    /// The WIT, JWS compact serialization.
    pub token: String,
    /// The private key as a JWK JSON object (what the Workload API returns). Never logged.
    pub private_jwk: String,
    /// `iat`.
    pub issued_at: UnixTime,
    /// `exp`.
    pub expires_at: UnixTime,
    /// When the agent replaces it.
    pub rotate_at: UnixTime,
    /// The entry revision it was issued for.
    pub entry_revision: u64,
}

impl std::fmt::Debug for HeldWit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldWit")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// One trust domain's bundle in the encodings the Workload API serves.
#[derive(Clone, Debug)]
pub struct BundleView {
    /// `spiffe://<trust domain>`: the key of every Workload API bundle map.
    pub key: String,
    /// The parsed bundle.
    pub bundle: SpiffeBundle,
    /// The X.509 authorities as concatenated DER certificates.
    pub x509_der: Vec<u8>,
    /// The JWT-SVID keys as a JWK Set (JSON).
    pub jwt_jwks: Vec<u8>,
    /// The WIT-SVID keys as a JWK Set (JSON).
    pub wit_jwks: String,
    /// `spiffe_sequence`.
    pub sequence: u64,
}

impl BundleView {
    /// Parses a bundle received from the server.
    pub fn from_pb(bundle: &pb::Bundle) -> Result<BundleView, AgentError> {
        let name = bundle
            .trust_domain
            .strip_prefix("spiffe://")
            .unwrap_or(&bundle.trust_domain);
        let td = TrustDomain::parse(name).map_err(AgentError::rejected(format!(
            "bundle trust domain {:?}",
            bundle.trust_domain
        )))?;
        let parsed = SpiffeBundle::parse(td, &bundle.json)
            .map_err(AgentError::rejected(format!("bundle for {}", bundle.trust_domain)))?;
        BundleView::from_bundle(parsed)
    }

    /// The views of a parsed bundle.
    pub fn from_bundle(bundle: SpiffeBundle) -> Result<BundleView, AgentError> {
        let mut x509_der = Vec::new();
        for jwk in &bundle.x509_authorities {
            for cert in jwk.x5c.iter().flatten() {
                let der =
                    base64_std(cert).ok_or_else(|| AgentError::InvalidFromServer("x5c is not valid base64".into()))?;
                x509_der.extend_from_slice(&der);
            }
        }
        let jwks = |keys: &[Jwk]| serde_json::json!({ "keys": keys }).to_string();
        Ok(BundleView {
            key: format!("spiffe://{}", bundle.trust_domain.name()),
            x509_der,
            jwt_jwks: jwks(&bundle.jwt_authorities).into_bytes(),
            wit_jwks: jwks(&bundle.wit_authorities),
            sequence: bundle.sequence.unwrap_or(0),
            bundle,
        })
    }
}

fn base64_std(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Everything the Workload API serves, at one instant.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The last entry revision applied from the server.
    pub revision: u64,
    /// Entries authorized for this agent, by entry id.
    pub entries: BTreeMap<String, Arc<pb::Entry>>,
    /// Entry ids by selector (`type:value`); rebuilt by [`Snapshot::set_entries`].
    pub by_selector: Arc<HashMap<String, Vec<String>>>,
    /// X.509-SVIDs by entry id.
    pub svids: BTreeMap<String, Arc<HeldSvid>>,
    /// WIT-SVIDs by entry id (minted on first request, then kept fresh).
    pub wits: BTreeMap<String, Arc<HeldWit>>,
    /// The agent's own trust domain's bundle.
    pub bundle: Option<Arc<BundleView>>,
    /// Federated bundles, by `spiffe://<trust domain>`.
    pub federated: BTreeMap<String, Arc<BundleView>>,
    /// Whether a complete entry set has been received since start.
    pub synced: bool,
}

impl Snapshot {
    /// Replaces the entries and rebuilds the selector index.
    pub fn set_entries(&mut self, entries: BTreeMap<String, Arc<pb::Entry>>) {
        let mut index: HashMap<String, Vec<String>> = HashMap::new();
        for (id, entry) in &entries {
            for selector in &entry.selectors {
                index
                    .entry(format!("{}:{}", selector.r#type, selector.value))
                    .or_default()
                    .push(id.clone());
            }
        }
        self.entries = entries;
        self.by_selector = Arc::new(index);
    }
}

/// The published state: a watch channel of snapshots.
#[derive(Debug)]
pub struct Store {
    tx: watch::Sender<Arc<Snapshot>>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    /// An empty store.
    pub fn new() -> Store {
        Store {
            tx: watch::Sender::new(Arc::new(Snapshot::default())),
        }
    }

    /// The current snapshot.
    pub fn current(&self) -> Arc<Snapshot> {
        Arc::clone(&self.tx.borrow())
    }

    /// A receiver woken on every published change.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.tx.subscribe()
    }

    /// Applies `change` to a copy of the current snapshot and publishes it (if `change`
    /// returns true; false means nothing changed and nobody is woken).
    pub fn update(&self, change: impl FnOnce(&mut Snapshot) -> bool) {
        self.tx.send_if_modified(|current| {
            let mut next = Snapshot::clone(current);
            if change(&mut next) {
                *current = Arc::new(next);
                true
            } else {
                false
            }
        });
    }
}
