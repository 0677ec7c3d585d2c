//! Node attestation: how an agent proves which node it runs on, and so which agent ID
//! (`spiffe://<td>/lanyard/agent/...`, see `lanyard_api::node`) and agent SVID it gets, in
//! `lanyard.agent.v1.AgentApi.AttestAgent`.
//!
//! Each method is a [`NodeAttestor`]:
//! - [`join_token::JoinTokenAttestor`]: a one-time token an operator created through the
//!   admin API; the agent ID is derived from the token's hash;
//! - [`x509pop::X509Pop`]: proof of possession of a node certificate from a CA the server
//!   trusts, in two calls (challenge, answer); the agent ID is derived from the certificate.
//!
//! Every attestation runs the same steps ([`attest`]): **identify** (check the evidence's
//! form, name the agent) → **prove** (check the evidence, or answer with a challenge) →
//! **sign** the agent SVID for the CSR → **redeem** (use up one-time evidence; after
//! signing, so that a bad CSR does not waste a join token) → check the SVID against the
//! bundle → **record** the agent (created, or updated on re-attestation; a ban is never
//! lifted). Every outcome is written as an audit event `agent.attest.<type>` with the
//! agent ID (or, before it is known, the join token's ID; never the token).

pub mod join_token;
pub mod x509pop;

use async_trait::async_trait;
use lanyard_core::{SpiffeBundle, SpiffeId, UnixTime};
use lanyard_x509::X509Svid;

use crate::datastore::StoreError;
use crate::error::ServerError;
use crate::issue;
use crate::model::{Agent, Selector};
use crate::state::AppState;

pub use join_token::{JoinTokenAttestor, JoinTokenError};
pub use x509pop::{X509Pop, X509PopError};

/// A node attestation method.
#[async_trait]
pub trait NodeAttestor: Send + Sync {
    /// The evidence an agent presents (a `lanyard.agent.v1` message).
    type Evidence: Send + Sync;
    /// What [`NodeAttestor::identify`] learned about the node, for the later steps.
    type Node: Send + Sync;

    /// The `attestation_type` recorded for agents attested this way.
    const ATTESTATION_TYPE: &'static str;
    /// The audit action of this method's attestations (`agent.attest.<type>`).
    const AUDIT_ACTION: &'static str;

    /// Checks the evidence's form and names the agent it is for.
    async fn identify(&self, evidence: &Self::Evidence, now: UnixTime) -> Result<Identified<Self::Node>, AttestError>;

    /// Checks the evidence (with the CSR the agent SVID will be signed from), or asks the
    /// agent for more: a challenge to answer in a second call.
    async fn prove(
        &self,
        evidence: &Self::Evidence,
        node: &Identified<Self::Node>,
        csr: &[u8],
        now: UnixTime,
    ) -> Result<Proof, AttestError>;

    /// Uses up one-time evidence, after the agent SVID is signed and before it is handed
    /// out. Evidence that may be presented again needs nothing here.
    async fn redeem(&self, _evidence: &Self::Evidence, _now: UnixTime) -> Result<(), AttestError> {
        Ok(())
    }
}

/// The agent a piece of evidence is for.
#[derive(Clone, Debug)]
pub struct Identified<N> {
    /// The agent ID the evidence attests.
    pub agent_id: SpiffeId,
    /// What audit lines name until the attestation succeeds (the agent ID, or a join
    /// token's ID).
    pub subject: String,
    /// Method-specific facts about the node.
    pub node: N,
}

/// What [`NodeAttestor::prove`] concluded.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proof {
    /// The agent must answer this challenge in a second call.
    Challenge(Challenge),
    /// The node is who it claims to be; these selectors describe it.
    Proven {
        /// The node selectors recorded with the agent.
        selectors: Vec<Selector>,
    },
}

/// A challenge an attestor issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The opaque challenge bytes.
    pub challenge: Vec<u8>,
    /// Until when an answer is accepted.
    pub expires_at: UnixTime,
}

/// What an attestation produced.
#[non_exhaustive]
#[derive(Debug)]
pub enum Attestation {
    /// The agent must answer a challenge.
    Challenge(Challenge),
    /// The agent is attested and recorded.
    Attested(Box<Attested>),
}

/// An attested agent.
#[derive(Debug)]
pub struct Attested {
    /// The stored agent record.
    pub agent: Agent,
    /// Its new agent SVID (certificate chain, no key).
    pub svid: X509Svid,
    /// The trust domain's bundle the SVID was checked against.
    pub bundle: SpiffeBundle,
}

/// Why an attestation failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// Join-token attestation failed.
    #[error(transparent)]
    JoinToken(#[from] JoinTokenError),
    /// x509pop attestation failed.
    #[error(transparent)]
    X509Pop(#[from] X509PopError),
    /// Signing or checking the agent SVID, or the datastore, failed.
    #[error(transparent)]
    Server(#[from] ServerError),
}

impl From<StoreError> for AttestError {
    fn from(e: StoreError) -> Self {
        AttestError::Server(e.into())
    }
}

impl AttestError {
    /// A stable lowercase code, for audit lines.
    pub fn kind(&self) -> &'static str {
        match self {
            AttestError::JoinToken(e) => e.kind(),
            AttestError::X509Pop(e) => e.kind(),
            AttestError::Server(e) => e.kind(),
        }
    }
}

/// Runs one `AttestAgent` call through `attestor` (the steps of the module
/// documentation). `audit(outcome, subject)` writes an audit event for the attestor's
/// action.
pub async fn attest<A: NodeAttestor>(
    state: &AppState,
    attestor: &A,
    evidence: &A::Evidence,
    csr: &[u8],
    audit: &(dyn Fn(&str, &str) + Send + Sync),
) -> Result<Attestation, AttestError> {
    let now = state.clock.now();
    let fail = |e: AttestError, subject: &str| {
        audit(e.kind(), subject);
        e
    };
    let identified = attestor.identify(evidence, now).await.map_err(|e| fail(e, ""))?;
    let subject = identified.subject.as_str();
    let selectors = match attestor
        .prove(evidence, &identified, csr, now)
        .await
        .map_err(|e| fail(e, subject))?
    {
        Proof::Challenge(challenge) => {
            audit("challenged", subject);
            return Ok(Attestation::Challenge(challenge));
        }
        Proof::Proven { selectors } => selectors,
    };
    let agent_id = &identified.agent_id;
    let svid = issue::agent_svid(state, agent_id, csr)
        .await
        .map_err(|e| fail(e.into(), subject))?;
    attestor.redeem(evidence, now).await.map_err(|e| fail(e, subject))?;
    let (verified, bundle) = issue::check_agent_svid(state, &svid)
        .await
        .map_err(|e| fail(e.into(), agent_id.as_str()))?;
    let agent = Agent {
        id: agent_id.clone(),
        attestation_type: A::ATTESTATION_TYPE.to_owned(),
        svid_serial: verified.serial,
        previous_svid_serial: String::new(),
        svid_expires_at: verified.not_after,
        selectors,
        banned: false,
        created_at: state.clock.now(),
    };
    state.stores.agents.upsert_agent(&agent).await?;
    audit("ok", agent_id.as_str());
    Ok(Attestation::Attested(Box::new(Attested { agent, svid, bundle })))
}
