//! Mutual TLS (draft-ietf-wimse-mutual-tls-02): serving an axum router over rustls with
//! X.509-SVID client authentication, and putting the verified peer identity on every
//! request for [`crate::WorkloadAuthLayer`].

use lanyard_core::SpiffeId;

/// The SPIFFE ID of the client certificate a connection was authenticated with, placed in
/// the extensions of each request on that connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The client's SPIFFE ID (the one URI SAN of its verified X.509-SVID).
    pub id: SpiffeId,
}
