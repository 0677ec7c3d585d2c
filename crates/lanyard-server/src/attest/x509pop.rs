//! x509pop node attestation: proof of possession of a node certificate issued by a CA the
//! server is configured to trust (`[node_attestation.x509pop] ca_bundle_path`), in the
//! two-step flow of `lanyard.agent.v1.AgentApi.AttestAgent`.
//!
//! 1. The agent sends its node certificate chain. The server validates it (to one of the
//!    configured CAs, at the current time, any extended key usage; the leaf must not be a
//!    CA and must allow `digitalSignature`) and answers with a challenge.
//! 2. The agent sends the chain again, the challenge, and a signature by the node key over
//!    [`node::x509pop_signed_message`]`(challenge, csr)`; the server validates the chain again,
//!    checks the challenge and the signature, and issues the agent SVID for the CSR's key.
//!
//! # The challenge
//!
//! Self-authenticating, so no state is kept between the two calls and they may reach
//! different replicas: `version (1) || nonce (16) || expires_at (8, big-endian Unix
//! seconds) || SHA-256(leaf DER) (32) || HMAC-SHA256(key, everything before) (32)`, 89
//! bytes. The MAC key is a random 32-byte server secret kept in the datastore (table
//! `server_secrets`, name [`SECRET_NAME`]): the first replica to start creates it and every
//! replica sharing the datastore uses the same one. It only guards freshness (someone who
//! could forge challenges still needs the node's private key to answer one), so it is
//! stored as is, not under the key-encryption key.
//!
//! # The agent ID
//!
//! `spiffe://<td>/lanyard/agent/x509pop/<SHA-256 of the leaf certificate DER, lowercase
//! hex>` ([`agent_id`]). SPIRE uses the SHA-1 fingerprint under `/spire/agent/x509pop/`;
//! Lanyard uses SHA-256 (no SHA-1 in identifiers). The same node certificate always yields
//! the same agent ID, so a node may attest again (unlike a join token) unless that agent
//! is banned. The agent record carries the node selectors of [`selectors`].

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use lanyard_api::agent::v1 as pb;
use lanyard_api::node;
use lanyard_core::{Algorithm, CryptoProvider, MacAlgorithm, SpiffeId, TrustDomain, UnixTime, hex};
use lanyard_x509::{VerifiedCert, X509Bundle, verify_cert_chain, x509_authority_jwk};

use super::{AttestError, Challenge, Identified, NodeAttestor, Proof};
use crate::datastore::{AgentStore, SecretStore, StoreError};
use crate::model::Selector;

/// How long a challenge is accepted, in seconds.
pub const CHALLENGE_TTL: u64 = 60;
/// The signature algorithms accepted in `X509PopChallengeResponse.signature_algorithm`.
pub const ALGORITHMS: [Algorithm; 4] = [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA, Algorithm::PS256];
/// The name of the challenge MAC key in the datastore's server secrets.
pub const SECRET_NAME: &str = "x509pop-challenge-mac-key";
/// The `attestation_type` recorded for agents attested this way.
pub const ATTESTATION_TYPE: &str = "x509pop";

const VERSION: u8 = 1;
const NONCE_LEN: usize = 16;
const HASH_LEN: usize = 32;
const MAC_LEN: usize = 32;
const BODY_LEN: usize = 1 + NONCE_LEN + 8 + HASH_LEN;
/// The length of a challenge.
pub const CHALLENGE_LEN: usize = BODY_LEN + MAC_LEN;

/// The agent ID of a node certificate:
/// `spiffe://<td>/lanyard/agent/x509pop/<SHA-256 hex of the leaf DER>`.
pub fn agent_id(
    trust_domain: &TrustDomain,
    leaf_der: &[u8],
    crypto: &dyn CryptoProvider,
) -> Result<SpiffeId, X509PopError> {
    node::x509pop_agent_id(trust_domain, leaf_der, crypto).map_err(X509PopError::Internal)
}

/// The node selectors recorded for an attested node (SPIRE's x509pop selectors, with
/// SHA-256 fingerprints): `x509pop:subject:cn:<CN>` (when the leaf has one),
/// `x509pop:serialnumber:<hex>` and `x509pop:leaf:fingerprint:<SHA-256 hex>`.
pub fn selectors(leaf_der: &[u8], verified: &VerifiedCert, crypto: &dyn CryptoProvider) -> Vec<Selector> {
    let selector = |value: String| Selector {
        kind: ATTESTATION_TYPE.to_owned(),
        value,
    };
    let mut out = Vec::new();
    if let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf_der)
        && let Some(cn) = cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok())
    {
        out.push(selector(format!("subject:cn:{cn}")));
    }
    out.push(selector(format!("serialnumber:{}", verified.serial)));
    out.push(selector(format!(
        "leaf:fingerprint:{}",
        hex::encode(&crypto.sha256(leaf_der))
    )));
    out
}

/// Why an x509pop attestation failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum X509PopError {
    /// The server has no `[node_attestation.x509pop]` configuration.
    #[error("x509pop node attestation is not enabled on this server")]
    Disabled,
    /// The request is malformed (no chain, unknown algorithm, missing CSR...).
    #[error("invalid x509pop request: {0}")]
    Invalid(String),
    /// The node certificate chain does not validate against the configured CAs.
    #[error("node certificate rejected: {0}")]
    Certificate(#[from] lanyard_x509::Error),
    /// The challenge was not issued by this server (or was altered).
    #[error("the challenge is not authentic")]
    ForgedChallenge,
    /// The challenge has expired.
    #[error("the challenge expired at {0}")]
    ExpiredChallenge(UnixTime),
    /// The challenge was issued for another node certificate.
    #[error("the challenge was issued for another node certificate")]
    OtherCertificate,
    /// The signature algorithm does not fit the node certificate's key.
    #[error("signature algorithm {alg} does not fit the node certificate's key: {reason}")]
    AlgorithmMismatch {
        /// The requested algorithm.
        alg: String,
        /// Why it does not fit.
        reason: String,
    },
    /// The signature does not verify with the node certificate's key.
    #[error("the challenge signature does not verify with the node certificate's key")]
    BadSignature,
    /// The agent this certificate attests is banned.
    #[error("agent {0} is banned")]
    Banned(String),
    /// A server-side failure (random source, MAC, agent ID).
    #[error("x509pop: {0}")]
    Internal(#[source] lanyard_core::Error),
    /// The datastore failed (loading the challenge key).
    #[error("x509pop: {0}")]
    Store(#[from] StoreError),
}

impl X509PopError {
    /// A stable lowercase code, for audit lines.
    pub fn kind(&self) -> &'static str {
        match self {
            X509PopError::Disabled => "disabled",
            X509PopError::Invalid(_) => "invalid_request",
            X509PopError::Certificate(e) => e.kind(),
            X509PopError::ForgedChallenge => "forged_challenge",
            X509PopError::ExpiredChallenge(_) => "expired_challenge",
            X509PopError::OtherCertificate => "challenge_for_other_certificate",
            X509PopError::AlgorithmMismatch { .. } => "algorithm_mismatch",
            X509PopError::BadSignature => "bad_signature",
            X509PopError::Banned(_) => "banned",
            X509PopError::Internal(_) => "internal",
            X509PopError::Store(_) => "datastore",
        }
    }
}

/// The challenge MAC key (HMAC-SHA256), with the provider that computes the MACs. Its
/// `Debug` output shows nothing of the key.
pub struct ChallengeKey {
    secret: Vec<u8>,
    crypto: Arc<dyn CryptoProvider>,
}

impl fmt::Debug for ChallengeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChallengeKey(..)")
    }
}

impl ChallengeKey {
    /// A key from secret bytes; `crypto` draws nonces and computes digests and MACs.
    pub fn new(secret: &[u8], crypto: Arc<dyn CryptoProvider>) -> ChallengeKey {
        ChallengeKey {
            secret: secret.to_vec(),
            crypto,
        }
    }

    /// The key shared through `store` (created with 32 random bytes by the first caller).
    pub async fn load(store: &dyn SecretStore, crypto: Arc<dyn CryptoProvider>) -> Result<ChallengeKey, X509PopError> {
        let mut candidate = [0u8; 32];
        crypto.fill_random(&mut candidate).map_err(X509PopError::Internal)?;
        let secret = store.get_or_create_secret(SECRET_NAME, &candidate).await?;
        if secret.len() < 32 {
            return Err(StoreError::Inconsistent(format!("the stored {SECRET_NAME} is too short")).into());
        }
        Ok(ChallengeKey::new(&secret, crypto))
    }

    /// A challenge for `leaf_der`, accepted until `expires_at`.
    pub fn issue(&self, leaf_der: &[u8], expires_at: UnixTime) -> Result<Vec<u8>, X509PopError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.crypto.fill_random(&mut nonce).map_err(X509PopError::Internal)?;
        let mut challenge = Vec::with_capacity(CHALLENGE_LEN);
        challenge.push(VERSION);
        challenge.extend_from_slice(&nonce);
        challenge.extend_from_slice(&expires_at.as_secs().to_be_bytes());
        challenge.extend_from_slice(&self.crypto.sha256(leaf_der));
        let tag = self
            .crypto
            .mac(MacAlgorithm::HmacSha256, &self.secret, &challenge)
            .map_err(X509PopError::Internal)?;
        challenge.extend_from_slice(tag.as_ref());
        Ok(challenge)
    }

    /// Checks that `challenge` was issued by this key for `leaf_der` and is still valid
    /// at `now`.
    pub fn check(&self, challenge: &[u8], leaf_der: &[u8], now: UnixTime) -> Result<(), X509PopError> {
        if challenge.len() != CHALLENGE_LEN || challenge[0] != VERSION {
            return Err(X509PopError::ForgedChallenge);
        }
        let (body, tag) = challenge.split_at(BODY_LEN);
        self.crypto
            .mac_verify(MacAlgorithm::HmacSha256, &self.secret, body, tag)
            .map_err(|_| X509PopError::ForgedChallenge)?;
        let expiry_at = 1 + NONCE_LEN;
        let mut expiry = [0u8; 8];
        expiry.copy_from_slice(&body[expiry_at..expiry_at + 8]);
        let expires_at = UnixTime(u64::from_be_bytes(expiry));
        if now >= expires_at {
            return Err(X509PopError::ExpiredChallenge(expires_at));
        }
        if body[expiry_at + 8..] != self.crypto.sha256(leaf_der) {
            return Err(X509PopError::OtherCertificate);
        }
        Ok(())
    }
}

/// The x509pop [`NodeAttestor`]: the trusted node CAs, the challenge key, and the agents
/// (a banned agent's node cannot attest again).
#[derive(Debug)]
pub struct X509Pop {
    trust_domain: TrustDomain,
    roots: X509Bundle,
    key: ChallengeKey,
    agents: Arc<dyn AgentStore>,
    crypto: Arc<dyn CryptoProvider>,
}

impl X509Pop {
    /// An attestor for agents of `trust_domain`, trusting the CA certificates in `roots`
    /// (their bundle's trust domain is only a label: node certificates carry no SPIFFE ID),
    /// with `key` for challenges, the agents in `agents`, and `crypto` for digests and
    /// signature checks.
    pub fn new(
        trust_domain: TrustDomain,
        roots: X509Bundle,
        key: ChallengeKey,
        agents: Arc<dyn AgentStore>,
        crypto: Arc<dyn CryptoProvider>,
    ) -> X509Pop {
        X509Pop {
            trust_domain,
            roots,
            key,
            agents,
            crypto,
        }
    }

    /// Validates a node certificate chain (DER, leaf first) at `now`.
    pub fn verify_chain(&self, chain: &[Vec<u8>], now: UnixTime) -> Result<VerifiedCert, X509PopError> {
        if chain.is_empty() {
            return Err(X509PopError::Invalid("x509pop.cert_chain is required".into()));
        }
        Ok(verify_cert_chain(chain, self.roots.authorities(), now, true)?)
    }

    /// Step 1: a challenge for the (already verified) leaf certificate.
    pub fn challenge(&self, leaf_der: &[u8], now: UnixTime) -> Result<Challenge, X509PopError> {
        let expires_at = now.plus(CHALLENGE_TTL);
        Ok(Challenge {
            challenge: self.key.issue(leaf_der, expires_at)?,
            expires_at,
        })
    }

    /// Step 2: checks the challenge and the signature over
    /// [`node::x509pop_signed_message`]`(challenge, csr)` with the (already verified) leaf's key.
    pub fn check_response(
        &self,
        leaf_der: &[u8],
        response: &pb::X509PopChallengeResponse,
        csr: &[u8],
        now: UnixTime,
    ) -> Result<(), X509PopError> {
        self.key.check(&response.challenge, leaf_der, now)?;
        let alg = Algorithm::parse(&response.signature_algorithm)
            .ok()
            .filter(|a| ALGORITHMS.contains(a))
            .ok_or_else(|| {
                X509PopError::Invalid(format!(
                    "signature_algorithm must be one of ES256, ES384, EdDSA, PS256, got {:?}",
                    response.signature_algorithm.chars().take(32).collect::<String>()
                ))
            })?;
        let jwk = x509_authority_jwk(leaf_der)?;
        let key = self
            .crypto
            .verifying_key(&jwk, alg)
            .map_err(|e| X509PopError::AlgorithmMismatch {
                alg: alg.as_str().to_owned(),
                reason: e.to_string(),
            })?;
        key.verify(
            &node::x509pop_signed_message(&response.challenge, csr, &*self.crypto),
            &response.signature,
        )
        .map_err(|_| X509PopError::BadSignature)
    }
}

/// The leaf certificate (DER) of the evidence's chain; `verify_chain` refused an empty one.
fn leaf(evidence: &pb::X509PopAttestation) -> &[u8] {
    evidence.cert_chain.first().map(Vec::as_slice).unwrap_or_default()
}

#[async_trait]
impl NodeAttestor for X509Pop {
    type Evidence = pb::X509PopAttestation;
    type Node = VerifiedCert;

    const ATTESTATION_TYPE: &'static str = ATTESTATION_TYPE;
    const AUDIT_ACTION: &'static str = "agent.attest.x509pop";

    async fn identify(
        &self,
        evidence: &Self::Evidence,
        now: UnixTime,
    ) -> Result<Identified<VerifiedCert>, AttestError> {
        let node = self.verify_chain(&evidence.cert_chain, now)?;
        let agent_id = agent_id(&self.trust_domain, leaf(evidence), &*self.crypto)?;
        Ok(Identified {
            subject: agent_id.as_str().to_owned(),
            agent_id,
            node,
        })
    }

    async fn prove(
        &self,
        evidence: &Self::Evidence,
        node: &Identified<VerifiedCert>,
        csr: &[u8],
        now: UnixTime,
    ) -> Result<Proof, AttestError> {
        let leaf = leaf(evidence);
        let Some(response) = &evidence.challenge_response else {
            return Ok(Proof::Challenge(self.challenge(leaf, now)?));
        };
        if csr.is_empty() {
            return Err(X509PopError::Invalid("csr is required in step 2".into()).into());
        }
        self.check_response(leaf, response, csr, now)?;
        let known = self
            .agents
            .get_agent(&node.agent_id)
            .await
            .map_err(X509PopError::Store)?;
        if known.is_some_and(|a| a.banned) {
            return Err(X509PopError::Banned(node.subject.clone()).into());
        }
        Ok(Proof::Proven {
            selectors: selectors(leaf, &node.node, &*self.crypto),
        })
    }
}
