//! Mutual TLS: the identity of the client certificate that [`crate::mtls`] verified
//! during the handshake, as the authenticated caller.

use lanyard_core::WorkloadId;

use super::config::{AuthMode, VerifiedWorkload};
use crate::mtls::PeerIdentity;

/// The caller of a request that arrived on a connection authenticated with `peer`.
pub(super) fn verified(peer: PeerIdentity) -> VerifiedWorkload {
    VerifiedWorkload {
        id: WorkloadId::Spiffe(peer.id),
        mode: AuthMode::Mtls,
        claims: None,
        proof_id: None,
    }
}
