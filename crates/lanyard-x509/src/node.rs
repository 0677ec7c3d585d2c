//! Node attestation conventions shared by the server and the agent: the SPIFFE IDs agents
//! get, and the message an x509pop proof signs (`proto/lanyard/agent/v1/agent.proto`,
//! `X509PopChallengeResponse`).

use lanyard_core::{SpiffeId, TrustDomain, hex};

use crate::error::Error;

/// Every agent ID's path starts with this: `spiffe://<td>/lanyard/agent/...`.
pub const AGENT_PATH_PREFIX: &str = "/lanyard/agent/";

/// The domain-separation prefix of the x509pop proof.
pub const X509POP_SIGNATURE_CONTEXT: &[u8] = b"lanyard-x509pop-v1";

fn agent_id(td: &TrustDomain, rest: &str) -> Result<SpiffeId, Error> {
    SpiffeId::from_parts(td, &format!("{AGENT_PATH_PREFIX}{rest}")).map_err(|source| Error::InvalidIdentifier {
        context: "agent ID",
        source,
    })
}

/// SHA-256 of a join token in lowercase hex (what the server stores instead of the token).
pub fn join_token_hash(token: &str) -> String {
    hex::encode(&lanyard_crypto::provider().sha256(token.as_bytes()))
}

/// The agent ID a join token attests: `spiffe://<td>/lanyard/agent/join_token/<token id>`,
/// where the token id is the first 16 hex digits of the token's SHA-256.
pub fn join_token_agent_id(td: &TrustDomain, token: &str) -> Result<SpiffeId, Error> {
    agent_id(td, &format!("join_token/{}", &join_token_hash(token)[..16]))
}

/// The agent ID of a node certificate:
/// `spiffe://<td>/lanyard/agent/x509pop/<SHA-256 hex of the leaf DER>`.
pub fn x509pop_agent_id(td: &TrustDomain, leaf_der: &[u8]) -> Result<SpiffeId, Error> {
    agent_id(
        td,
        &format!("x509pop/{}", hex::encode(&lanyard_crypto::provider().sha256(leaf_der))),
    )
}

/// The bytes an x509pop proof signs:
/// `"lanyard-x509pop-v1" || 0x00 || challenge || SHA-256(csr)`.
pub fn x509pop_signed_message(challenge: &[u8], csr: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(X509POP_SIGNATURE_CONTEXT.len() + 1 + challenge.len() + 32);
    message.extend_from_slice(X509POP_SIGNATURE_CONTEXT);
    message.push(0);
    message.extend_from_slice(challenge);
    message.extend_from_slice(&lanyard_crypto::provider().sha256(csr));
    message
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_and_message() {
        let td = TrustDomain::parse("example.org").unwrap();
        let id = join_token_agent_id(&td, "abc").unwrap();
        // SHA-256("abc") = ba7816bf8f01cfea...
        assert_eq!(
            id.as_str(),
            "spiffe://example.org/lanyard/agent/join_token/ba7816bf8f01cfea"
        );
        let id = x509pop_agent_id(&td, b"abc").unwrap();
        assert!(
            id.as_str()
                .ends_with("/x509pop/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        let m = x509pop_signed_message(b"xyz", b"abc");
        assert!(m.starts_with(b"lanyard-x509pop-v1\0xyz"));
        assert_eq!(m.len(), 18 + 1 + 3 + 32);
    }
}
