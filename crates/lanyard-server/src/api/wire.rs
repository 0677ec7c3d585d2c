//! The agent API's wire forms: domain objects (entries, bundles, SVIDs, challenges) as
//! `lanyard.agent.v1` messages. Pure conversions, no I/O.

use lanyard_api::agent::v1 as pb;
use lanyard_core::{SpiffeBundle, SpiffeId, TrustDomain, UnixTime};
use lanyard_x509::X509Svid;

use crate::attest::Challenge;
use crate::error::ServerError;
use crate::model::Entry;

/// Unix seconds as the wire's `int64` (saturating).
pub(crate) fn secs(t: UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

fn ttl32(ttl: u64) -> u32 {
    u32::try_from(ttl).unwrap_or(u32::MAX)
}

/// `spiffe://<name>` for a trust domain given in either form.
pub(crate) fn trust_domain_key(td: &str) -> String {
    TrustDomain::parse(td).map_or_else(|_| td.to_owned(), |t| format!("spiffe://{}", t.name()))
}

/// A bundle on the wire.
pub(crate) fn bundle(bundle: &SpiffeBundle) -> pb::Bundle {
    pb::Bundle {
        trust_domain: format!("spiffe://{}", bundle.trust_domain.name()),
        json: bundle.to_json().into_bytes(),
        sequence: bundle.sequence.unwrap_or(0),
    }
}

/// An entry on the wire. `revision` is the entry's own revision unless the caller knows
/// the server-wide one.
pub(crate) fn entry(entry: &Entry, revision: Option<u64>) -> pb::Entry {
    pb::Entry {
        id: entry.id.clone(),
        spiffe_id: entry.spiffe_id.as_str().to_owned(),
        parent_id: entry.parent_id.as_str().to_owned(),
        selectors: entry
            .selectors
            .iter()
            .map(|s| pb::Selector {
                r#type: s.kind.clone(),
                value: s.value.clone(),
            })
            .collect(),
        x509_svid_ttl: ttl32(entry.x509_svid_ttl),
        jwt_svid_ttl: ttl32(entry.jwt_svid_ttl),
        wit_svid_ttl: ttl32(entry.wit_ttl),
        dns_names: entry.dns_names.clone(),
        federates_with: entry.federates_with.iter().map(|t| trust_domain_key(t)).collect(),
        hint: String::new(),
        revision: revision.unwrap_or(entry.revision),
    }
}

/// An X.509-SVID the server issued for `id`, on the wire.
pub(crate) fn svid(svid: &X509Svid, id: &SpiffeId) -> Result<pb::X509Svid, ServerError> {
    let expires_at = svid.not_after().map_err(|source| ServerError::X509 {
        context: "reading the issued SVID",
        source,
    })?;
    Ok(pb::X509Svid {
        spiffe_id: id.as_str().to_owned(),
        cert_chain: svid.chain.iter().map(|c| c.to_vec()).collect(),
        expires_at: secs(expires_at),
    })
}

/// An agent's credentials: its new SVID and the trust domain's bundle.
pub(crate) fn credentials(
    agent_svid: &X509Svid,
    id: &SpiffeId,
    own_bundle: &SpiffeBundle,
) -> Result<pb::AgentCredentials, ServerError> {
    Ok(pb::AgentCredentials {
        svid: Some(svid(agent_svid, id)?),
        bundle: Some(bundle(own_bundle)),
    })
}

/// An x509pop challenge on the wire.
pub(crate) fn challenge(challenge: Challenge) -> pb::X509PopChallenge {
    pb::X509PopChallenge {
        challenge: challenge.challenge,
        expires_at: secs(challenge.expires_at),
    }
}
