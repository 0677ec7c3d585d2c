//! The server's domain objects: registration entries, agents, join tokens and signing
//! authorities. Plain data; the datastore persists them and the API layers map them to
//! the wire.

use serde::{Deserialize, Serialize};

use lanyard_core::{SpiffeId, UnixTime, WorkloadId};

pub use crate::sdcwt::EntryClaims;

/// A selector `type:value`, e.g. `unix:uid:1000` (type `unix`, value `uid:1000`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Selector {
    /// The attestor type (`unix`, `k8s`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The value, which may itself contain `:`.
    pub value: String,
}

impl Selector {
    /// Parses `type:value`; both parts must be non-empty.
    pub fn parse(s: &str) -> Option<Selector> {
        let (kind, value) = s.split_once(':')?;
        (!kind.is_empty() && !value.is_empty()).then(|| Selector {
            kind: kind.to_owned(),
            value: value.to_owned(),
        })
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// A registration entry: which workload identity a workload gets, on which agent, when
/// its attested selectors include these selectors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Server-assigned ID.
    pub id: String,
    /// The identity issued (a SPIFFE ID or WIMSE identifier).
    pub spiffe_id: WorkloadId,
    /// The agent (or node alias) that may obtain it.
    pub parent_id: SpiffeId,
    /// Every one of these must be among the workload's attested selectors.
    pub selectors: Vec<Selector>,
    /// X.509-SVID lifetime in seconds (0 = server default).
    pub x509_svid_ttl: u64,
    /// JWT-SVID lifetime in seconds (0 = server default).
    pub jwt_svid_ttl: u64,
    /// WIT lifetime in seconds (0 = server default).
    pub wit_ttl: u64,
    /// DNS names added to X.509-SVIDs.
    pub dns_names: Vec<String>,
    /// Foreign trust domains whose bundles the workload also receives.
    pub federates_with: Vec<String>,
    /// Whether the workload may use the admin API.
    pub admin: bool,
    /// The claims of the entry's SD-CWTs and their disclosure policy.
    #[serde(default, skip_serializing_if = "EntryClaims::is_empty")]
    pub claims: EntryClaims,
    /// Increases on every update.
    pub revision: u64,
    /// Creation time.
    pub created_at: UnixTime,
}

/// What a caller supplies to create or update an entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntrySpec {
    /// The identity issued.
    pub spiffe_id: WorkloadId,
    /// The agent that may obtain it.
    pub parent_id: SpiffeId,
    /// Required selectors (at least one).
    pub selectors: Vec<Selector>,
    /// X.509-SVID TTL (0 = default).
    #[serde(default)]
    pub x509_svid_ttl: u64,
    /// JWT-SVID TTL (0 = default).
    #[serde(default)]
    pub jwt_svid_ttl: u64,
    /// WIT TTL (0 = default).
    #[serde(default)]
    pub wit_ttl: u64,
    /// DNS names.
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// Federated trust domains.
    #[serde(default)]
    pub federates_with: Vec<String>,
    /// Admin flag.
    #[serde(default)]
    pub admin: bool,
    /// The claims of the entry's SD-CWTs and their disclosure policy.
    #[serde(default, skip_serializing_if = "EntryClaims::is_empty")]
    pub claims: EntryClaims,
}

/// An attested node agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// The agent's SPIFFE ID.
    pub id: SpiffeId,
    /// How it attested (`join_token`, `x509pop`).
    pub attestation_type: String,
    /// Serial number of its current agent SVID.
    pub svid_serial: String,
    /// Serial number of the SVID the last renewal replaced, accepted until the agent first
    /// presents the new one; empty when there is none.
    #[serde(default)]
    pub previous_svid_serial: String,
    /// When its current SVID expires.
    pub svid_expires_at: UnixTime,
    /// Selectors the node attestor produced.
    pub selectors: Vec<Selector>,
    /// A banned agent can no longer renew or fetch anything.
    pub banned: bool,
    /// First attestation.
    pub created_at: UnixTime,
}

/// A one-time join token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    /// The secret token (only its hash is stored; see the datastore).
    pub token: String,
    /// Expiry.
    pub expires_at: UnixTime,
}

/// What a signing authority signs.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthorityKind {
    /// The X.509 CA.
    X509,
    /// The JWT-SVID signing key.
    Jwt,
    /// The WIT signing key.
    Wit,
    /// The SD-CWT signing key (`lanyard-server/src/sdcwt.rs`): published at the SD-CWT
    /// issuer key endpoints, never in the SPIFFE bundle.
    SdCwt,
}

impl AuthorityKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorityKind::X509 => "x509",
            AuthorityKind::Jwt => "jwt",
            AuthorityKind::Wit => "wit",
            AuthorityKind::SdCwt => "sd-cwt",
        }
    }
}

/// The lifecycle of a signing authority (SPIRE's journal statuses).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthorityStatus {
    /// Published in the bundle, not yet signing.
    Prepared,
    /// Signing.
    Active,
    /// Replaced; still published until what it signed has expired.
    Old,
}

impl AuthorityStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorityStatus::Prepared => "prepared",
            AuthorityStatus::Active => "active",
            AuthorityStatus::Old => "old",
        }
    }
}

/// A stored signing authority: its public material (for bundles), private key material
/// (PKCS#8, possibly encrypted at rest), and lifecycle.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authority {
    /// Key ID (`kid` for JWT/WIT keys; a stable ID for CAs).
    pub id: String,
    /// What it signs.
    pub kind: AuthorityKind,
    /// Lifecycle state.
    pub status: AuthorityStatus,
    /// For X.509: the CA certificate (DER); for JWT/WIT: the public JWK as JSON bytes.
    pub public: Vec<u8>,
    /// The private key, PKCS#8 DER (encrypted when a key-encryption key is configured).
    pub private_key: Vec<u8>,
    /// Validity start.
    pub not_before: UnixTime,
    /// Validity end: after this (plus the longest credential lifetime) it is dropped.
    pub not_after: UnixTime,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("status", &self.status)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}
