//! Registration entry rules: which entries the server accepts, how selectors are written,
//! and which entries an agent may use. The admin API, the CLI and the agent API all apply
//! these, so each rule is written once.

use lanyard_core::{SpiffeId, TrustDomain};

use crate::datastore::{EntryFilter, EntryStore, StoreError};
use crate::error::ServerError;
use crate::model::{Entry, EntrySpec, Selector};

/// Selector types the server accepts in entries (the attestors Lanyard has or plans).
pub const KNOWN_SELECTOR_TYPES: [&str; 5] = ["unix", "k8s", "docker", "systemd", "x509pop"];
/// The longest selector value, in bytes.
pub const MAX_SELECTOR_VALUE: usize = 1024;

/// Rejects entries the server could never serve correctly: identities and parents outside
/// `trust_domain`, an identity without a path, no or unknown selectors, lifetimes over a
/// sixth of `ca_ttl` (the shortest life left in an ACTIVE CA), DNS names that are not
/// lowercase, federated trust domains that do not parse, and SD-CWT claims the server
/// could not issue ([`crate::model::EntryClaims::validate`]).
pub fn validate_entry(spec: &EntrySpec, trust_domain: &TrustDomain, ca_ttl: u64) -> Result<(), ServerError> {
    let td = trust_domain.name();
    if spec.spiffe_id.trust_domain() != td {
        return Err(ServerError::Invalid(format!(
            "{} is not in the trust domain {td}",
            spec.spiffe_id
        )));
    }
    if spec.parent_id.trust_domain_name() != td {
        return Err(ServerError::Invalid(format!(
            "parent {} is not in the trust domain {td}",
            spec.parent_id
        )));
    }
    if spec.spiffe_id.path().is_empty() {
        return Err(ServerError::Invalid("an entry's identity needs a path".into()));
    }
    if spec.selectors.is_empty() {
        return Err(ServerError::Invalid("an entry needs at least one selector".into()));
    }
    for s in &spec.selectors {
        if !KNOWN_SELECTOR_TYPES.contains(&s.kind.as_str()) {
            return Err(ServerError::Invalid(format!(
                "selector type {:?} is unknown (known: {})",
                s.kind,
                KNOWN_SELECTOR_TYPES.join(", ")
            )));
        }
        if s.value.is_empty() || s.value.len() > MAX_SELECTOR_VALUE {
            return Err(ServerError::Invalid(format!(
                "selector {s} has an empty or oversized value"
            )));
        }
    }
    let max = ca_ttl / 6;
    for (name, ttl) in [
        ("x509_svid_ttl", spec.x509_svid_ttl),
        ("jwt_svid_ttl", spec.jwt_svid_ttl),
        ("wit_ttl", spec.wit_ttl),
    ] {
        if ttl > max {
            return Err(ServerError::Invalid(format!(
                "{name} {ttl}s exceeds the maximum {max}s (a sixth of ca_ttl)"
            )));
        }
    }
    for dns in &spec.dns_names {
        let ok = !dns.is_empty()
            && dns.len() <= 253
            && dns.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            });
        if !ok {
            return Err(ServerError::Invalid(format!(
                "{dns:?} is not a valid lowercase DNS name"
            )));
        }
    }
    for td in &spec.federates_with {
        TrustDomain::parse(td).map_err(|e| ServerError::Invalid(format!("federates_with {td:?}: {e}")))?;
    }
    spec.claims.validate()
}

/// Parses `type:value` selectors given as strings (CLI arguments, bulk files).
pub fn parse_selectors(items: &[String]) -> Result<Vec<Selector>, ServerError> {
    items
        .iter()
        .map(|s| Selector::parse(s).ok_or_else(|| ServerError::Invalid(format!("{s:?} is not type:value"))))
        .collect()
}

/// Whether `entry` is authorized for `agent`: its parent is the agent's SPIFFE ID (node
/// aliases are not implemented yet).
pub fn is_authorized(entry: &Entry, agent: &SpiffeId) -> bool {
    entry.parent_id == *agent
}

/// Every entry authorized for `agent`, ordered by ID.
pub async fn authorized_entries(store: &dyn EntryStore, agent: &SpiffeId) -> Result<Vec<Entry>, StoreError> {
    let filter = EntryFilter {
        parent_id: Some(agent.clone()),
        spiffe_id: None,
    };
    store.list_entries(&filter).await
}
