//! Node-attestation conventions of the server↔agent API (`lanyard.agent.v1`,
//! `proto/lanyard/agent/v1/agent.proto`), shared by the server, which checks them, and the
//! agent, which follows them: the SPIFFE IDs attested agents get, how join tokens are
//! hashed, and the message an x509pop proof signs.
//!
//! Digests come from the [`CryptoProvider`] the caller passes; this module links no crypto
//! library and does no I/O.

use lanyard_core::{CryptoProvider, Error, SigningKey, SpiffeId, TrustDomain, hex};

use crate::agent::v1 as pb;

/// Every agent ID's path starts with this: `spiffe://<td>/lanyard/agent/...`.
pub const AGENT_PATH_PREFIX: &str = "/lanyard/agent/";

/// The domain-separation prefix of the x509pop proof.
pub const X509POP_SIGNATURE_CONTEXT: &[u8] = b"lanyard-x509pop-v1";

/// How many hex digits of a join token's SHA-256 name it in its agent ID and audit lines.
pub const JOIN_TOKEN_ID_LEN: usize = 16;

/// Whether `id` is a Lanyard agent ID (`spiffe://<td>/lanyard/agent/...`).
pub fn is_agent_id(id: &SpiffeId) -> bool {
    id.path().starts_with(AGENT_PATH_PREFIX)
}

fn agent_id(td: &TrustDomain, rest: &str) -> Result<SpiffeId, Error> {
    SpiffeId::from_parts(td, &format!("{AGENT_PATH_PREFIX}{rest}")).map_err(|source| Error::InvalidIdentifier {
        context: "agent ID",
        source,
    })
}

/// SHA-256 of a join token in lowercase hex (what the server stores instead of the token).
pub fn join_token_hash(token: &str, crypto: &dyn CryptoProvider) -> String {
    hex::encode(&crypto.sha256(token.as_bytes()))
}

/// A join token's ID: the first [`JOIN_TOKEN_ID_LEN`] hex digits of its SHA-256, safe to log.
pub fn join_token_id(token: &str, crypto: &dyn CryptoProvider) -> String {
    let mut id = join_token_hash(token, crypto);
    id.truncate(JOIN_TOKEN_ID_LEN);
    id
}

/// The agent ID a join token attests: `spiffe://<td>/lanyard/agent/join_token/<token id>`
/// (see [`join_token_id`]).
pub fn join_token_agent_id(td: &TrustDomain, token: &str, crypto: &dyn CryptoProvider) -> Result<SpiffeId, Error> {
    agent_id(td, &format!("join_token/{}", join_token_id(token, crypto)))
}

/// The agent ID of a node certificate:
/// `spiffe://<td>/lanyard/agent/x509pop/<SHA-256 hex of the leaf DER>`.
pub fn x509pop_agent_id(td: &TrustDomain, leaf_der: &[u8], crypto: &dyn CryptoProvider) -> Result<SpiffeId, Error> {
    agent_id(td, &format!("x509pop/{}", hex::encode(&crypto.sha256(leaf_der))))
}

/// The bytes an x509pop proof signs:
/// `"lanyard-x509pop-v1" || 0x00 || challenge || SHA-256(csr)`.
pub fn x509pop_signed_message(challenge: &[u8], csr: &[u8], crypto: &dyn CryptoProvider) -> Vec<u8> {
    let mut message = Vec::with_capacity(X509POP_SIGNATURE_CONTEXT.len() + 1 + challenge.len() + 32);
    message.extend_from_slice(X509POP_SIGNATURE_CONTEXT);
    message.push(0);
    message.extend_from_slice(challenge);
    message.extend_from_slice(&crypto.sha256(csr));
    message
}

/// The agent's answer to an x509pop challenge: signs [`x509pop_signed_message`] with the
/// node key and names the key's algorithm.
pub fn x509pop_challenge_response(
    node_key: &dyn SigningKey,
    challenge: &[u8],
    csr: &[u8],
    crypto: &dyn CryptoProvider,
) -> Result<pb::X509PopChallengeResponse, Error> {
    let signature = node_key.sign(&x509pop_signed_message(challenge, csr, crypto))?;
    Ok(pb::X509PopChallengeResponse {
        challenge: challenge.to_vec(),
        signature_algorithm: node_key.algorithm().as_str().to_owned(),
        signature,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_and_message() {
        let crypto = lanyard_crypto::provider();
        let crypto = crypto.as_ref();
        let td = TrustDomain::parse("example.org").unwrap();
        let id = join_token_agent_id(&td, "abc", crypto).unwrap();
        // SHA-256("abc") = ba7816bf8f01cfea...
        assert_eq!(
            id.as_str(),
            "spiffe://example.org/lanyard/agent/join_token/ba7816bf8f01cfea"
        );
        assert!(is_agent_id(&id));
        assert_eq!(join_token_id("abc", crypto), "ba7816bf8f01cfea");
        let id = x509pop_agent_id(&td, b"abc", crypto).unwrap();
        assert!(
            id.as_str()
                .ends_with("/x509pop/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert!(!is_agent_id(
            &SpiffeId::parse("spiffe://example.org/lanyard/server").unwrap()
        ));
        let m = x509pop_signed_message(b"xyz", b"abc", crypto);
        assert!(m.starts_with(b"lanyard-x509pop-v1\0xyz"));
        assert_eq!(m.len(), 18 + 1 + 3 + 32);
    }
}
