//! Join-token node attestation: an operator creates a one-time token through the admin API
//! ([`create`]); an agent presents it once in `AttestAgent` and becomes
//! `spiffe://<td>/lanyard/agent/join_token/<token id>` (`lanyard_api::node`).
//!
//! The server stores only the token's SHA-256 (hex), with its expiry. A token is used up
//! atomically by the datastore (of two concurrent uses exactly one wins), after the agent
//! SVID was signed from the CSR, so a bad CSR does not waste it. Audit lines name the
//! token by its ID (the first 16 hex digits of its SHA-256), never by the token.

use std::sync::Arc;

use async_trait::async_trait;
use lanyard_api::agent::v1 as pb;
use lanyard_api::node;
use lanyard_core::{CryptoProvider, TrustDomain, UnixTime, hex};

use super::{AttestError, Identified, NodeAttestor, Proof};
use crate::datastore::{JoinTokenStore, TokenUse};
use crate::error::ServerError;

/// The longest join-token lifetime the admin API accepts: 7 days.
pub const MAX_TTL: u64 = 7 * 24 * 3600;
/// Random bytes in a join token (it is their lowercase hex).
const TOKEN_BYTES: usize = 24;

/// Why a join-token attestation failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum JoinTokenError {
    /// `join_token.token` is empty.
    #[error("join_token.token is required")]
    Missing,
    /// The token existed but has expired (it is now removed).
    #[error("join token expired")]
    Expired,
    /// The token is unknown or was used already.
    #[error("join token unknown or already used")]
    Unknown,
}

impl JoinTokenError {
    /// A stable lowercase code, for audit lines.
    pub fn kind(&self) -> &'static str {
        match self {
            JoinTokenError::Missing => "invalid_request",
            JoinTokenError::Expired => "token_expired",
            JoinTokenError::Unknown => "token_unknown",
        }
    }
}

/// A new one-time join token, valid for `ttl` seconds from `now` (1 s to [`MAX_TTL`]):
/// stores its hash in `store` and returns the token (shown once) and its expiry.
pub async fn create(
    store: &dyn JoinTokenStore,
    crypto: &dyn CryptoProvider,
    ttl: u64,
    now: UnixTime,
) -> Result<(String, UnixTime), ServerError> {
    if ttl == 0 || ttl > MAX_TTL {
        return Err(ServerError::Invalid("ttl must be between 1 s and 7 days".into()));
    }
    let mut secret = [0u8; TOKEN_BYTES];
    crypto.fill_random(&mut secret)?;
    let token = hex::encode(&secret);
    let expires_at = now.plus(ttl);
    store
        .create_join_token(&node::join_token_hash(&token, crypto), expires_at)
        .await?;
    Ok((token, expires_at))
}

/// The join-token [`NodeAttestor`].
#[derive(Debug)]
pub struct JoinTokenAttestor {
    trust_domain: TrustDomain,
    store: Arc<dyn JoinTokenStore>,
    crypto: Arc<dyn CryptoProvider>,
}

impl JoinTokenAttestor {
    /// Attests agents of `trust_domain` with the tokens in `store`.
    pub fn new(trust_domain: TrustDomain, store: Arc<dyn JoinTokenStore>, crypto: Arc<dyn CryptoProvider>) -> Self {
        JoinTokenAttestor {
            trust_domain,
            store,
            crypto,
        }
    }
}

#[async_trait]
impl NodeAttestor for JoinTokenAttestor {
    type Evidence = pb::JoinTokenAttestation;
    type Node = ();

    const ATTESTATION_TYPE: &'static str = "join_token";
    const AUDIT_ACTION: &'static str = "agent.attest.join_token";

    async fn identify(&self, evidence: &Self::Evidence, _now: UnixTime) -> Result<Identified<()>, AttestError> {
        let token = evidence.token.as_str();
        if token.is_empty() {
            return Err(JoinTokenError::Missing.into());
        }
        let agent_id =
            node::join_token_agent_id(&self.trust_domain, token, &*self.crypto).map_err(ServerError::from)?;
        Ok(Identified {
            agent_id,
            subject: node::join_token_id(token, &*self.crypto),
            node: (),
        })
    }

    async fn prove(
        &self,
        _evidence: &Self::Evidence,
        _node: &Identified<()>,
        _csr: &[u8],
        _now: UnixTime,
    ) -> Result<Proof, AttestError> {
        // The token is the proof; it is checked when it is used up, after signing.
        Ok(Proof::Proven { selectors: Vec::new() })
    }

    async fn redeem(&self, evidence: &Self::Evidence, now: UnixTime) -> Result<(), AttestError> {
        let hash = node::join_token_hash(&evidence.token, &*self.crypto);
        match self.store.consume_join_token(&hash, now).await? {
            TokenUse::Consumed => Ok(()),
            TokenUse::Expired => Err(JoinTokenError::Expired.into()),
            TokenUse::Unknown => Err(JoinTokenError::Unknown.into()),
        }
    }
}
