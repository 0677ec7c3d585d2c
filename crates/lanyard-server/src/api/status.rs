//! The agent API's errors and their one mapping to gRPC: every RPC of [`AgentService`]
//! (and every `SyncEntries` stream) fails with an [`AgentApiError`], and
//! `From<AgentApiError> for tonic::Status` below is the only place a gRPC code is chosen.
//!
//! | error | code |
//! |---|---|
//! | no, expired, unknown or superseded agent SVID; failed x509pop proof | `Unauthenticated` |
//! | banned agent, entry of another agent, used or expired join token, identity outside the trust domain | `PermissionDenied` |
//! | malformed request (missing field, bad CSR, bad JWK, too many items) | `InvalidArgument` |
//! | x509pop not configured | `Unimplemented` |
//! | datastore, keys or TLS failure; server shutting down | `Unavailable` |
//!
//! [`AgentService`]: crate::api::service::AgentService

use lanyard_core::{IdError, SpiffeId};
use tonic::{Code, Status};

use crate::attest::{AttestError, JoinTokenError, X509PopError};
use crate::datastore::StoreError;
use crate::error::ServerError;

/// The most items one `BatchNewX509Svid` call may carry.
pub const MAX_BATCH: usize = 1000;
/// The item error for entries that do not exist or belong to another agent (the same text
/// for both, so that an agent cannot probe for other agents' entries).
pub const NOT_AUTHORIZED: &str = "entry not authorized for this agent";

/// Why an agent API call failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum AgentApiError {
    /// The call needs an agent SVID as TLS client certificate and came without one.
    #[error("an agent X.509-SVID (TLS client certificate) is required")]
    NoAgentSvid,
    /// The agent SVID expired after the handshake.
    #[error("the agent SVID has expired")]
    AgentSvidExpired,
    /// The client certificate is an SVID, but not an agent's.
    #[error("{0} is not an agent SPIFFE ID")]
    NotAnAgent(SpiffeId),
    /// No agent with this ID has attested.
    #[error("unknown agent {0}")]
    UnknownAgent(SpiffeId),
    /// The agent is banned.
    #[error("agent {0} is banned")]
    AgentBanned(SpiffeId),
    /// The presented SVID was replaced by a renewal whose SVID has been used since.
    #[error("this SVID of agent {0} has been superseded by a renewal")]
    SupersededSvid(SpiffeId),
    /// `AttestAgent` without an attestation method.
    #[error("an attestation method is required")]
    NoAttestationMethod,
    /// Node attestation failed.
    #[error(transparent)]
    Attest(#[from] AttestError),
    /// `BatchNewX509Svid` with more than [`MAX_BATCH`] items.
    #[error("at most {MAX_BATCH} items per request")]
    BatchTooLarge,
    /// The requested JWT-SVID audiences are not acceptable.
    #[error("audience: {0}")]
    Audience(#[source] lanyard_core::Error),
    /// The entry does not exist or belongs to another agent.
    #[error("{NOT_AUTHORIZED}")]
    EntryNotAuthorized,
    /// A JWT-SVID was asked for an entry whose identity is not a SPIFFE ID.
    #[error("the entry's identity is not a SPIFFE ID: {0}")]
    EntryNotSpiffeId(#[source] IdError),
    /// `NewWit` without `cnf_jwk`.
    #[error("cnf_jwk is required")]
    NoCnfJwk,
    /// `cnf_jwk` does not parse as a JWK.
    #[error("cnf_jwk is not a JWK: {0}")]
    InvalidCnfJwk(#[source] serde_json::Error),
    /// The server is stopping; the agent should reconnect (to another replica).
    #[error("the server is shutting down; reconnect")]
    ShuttingDown,
    /// The operation behind the call failed (issuance, datastore, keys).
    #[error(transparent)]
    Server(#[from] ServerError),
}

impl From<StoreError> for AgentApiError {
    fn from(e: StoreError) -> Self {
        AgentApiError::Server(e.into())
    }
}

impl AgentApiError {
    /// The gRPC code this error is answered with.
    pub fn code(&self) -> Code {
        match self {
            AgentApiError::NoAgentSvid
            | AgentApiError::AgentSvidExpired
            | AgentApiError::NotAnAgent(_)
            | AgentApiError::UnknownAgent(_)
            | AgentApiError::SupersededSvid(_) => Code::Unauthenticated,
            AgentApiError::AgentBanned(_) | AgentApiError::EntryNotAuthorized => Code::PermissionDenied,
            AgentApiError::NoAttestationMethod
            | AgentApiError::BatchTooLarge
            | AgentApiError::Audience(_)
            | AgentApiError::EntryNotSpiffeId(_)
            | AgentApiError::NoCnfJwk
            | AgentApiError::InvalidCnfJwk(_) => Code::InvalidArgument,
            AgentApiError::ShuttingDown => Code::Unavailable,
            AgentApiError::Attest(AttestError::JoinToken(e)) => match e {
                JoinTokenError::Missing => Code::InvalidArgument,
                JoinTokenError::Expired | JoinTokenError::Unknown => Code::PermissionDenied,
            },
            AgentApiError::Attest(AttestError::X509Pop(e)) => match e {
                X509PopError::Disabled => Code::Unimplemented,
                X509PopError::Invalid(_) | X509PopError::AlgorithmMismatch { .. } => Code::InvalidArgument,
                X509PopError::Certificate(_)
                | X509PopError::ForgedChallenge
                | X509PopError::ExpiredChallenge(_)
                | X509PopError::OtherCertificate
                | X509PopError::BadSignature => Code::Unauthenticated,
                X509PopError::Banned(_) => Code::PermissionDenied,
                X509PopError::Internal(_) | X509PopError::Store(_) => Code::Unavailable,
            },
            AgentApiError::Attest(AttestError::Server(e)) | AgentApiError::Server(e) => server_code(e),
        }
    }
}

/// The code of an error of the operation behind a call.
fn server_code(e: &ServerError) -> Code {
    match e {
        ServerError::Invalid(_) | ServerError::Credential(_) | ServerError::Csr(_) => Code::InvalidArgument,
        ServerError::NotFound(_) => Code::NotFound,
        ServerError::Conflict(_) => Code::Aborted,
        ServerError::PermissionDenied(_) => Code::PermissionDenied,
        ServerError::Unauthenticated(_) | ServerError::AccessToken { .. } | ServerError::ClientCertificate(_) => {
            Code::Unauthenticated
        }
        ServerError::Keys(_)
        | ServerError::X509 { .. }
        | ServerError::Tls(_)
        | ServerError::Store(_)
        | ServerError::Transport(_) => Code::Unavailable,
    }
}

impl From<AgentApiError> for Status {
    fn from(e: AgentApiError) -> Status {
        let code = e.code();
        let message = match &e {
            AgentApiError::Attest(AttestError::Server(e)) | AgentApiError::Server(e) => match e {
                // The rule that was broken, without the "invalid request: " prefix of its
                // display (the code says that already).
                ServerError::Invalid(m)
                | ServerError::NotFound(m)
                | ServerError::Conflict(m)
                | ServerError::PermissionDenied(m) => m.clone(),
                ServerError::Credential(e) => e.to_string(),
                ServerError::Csr(e) => e.to_string(),
                internal => {
                    tracing::error!(error = %internal, "agent API request failed");
                    internal.to_string()
                }
            },
            other => other.to_string(),
        };
        Status::new(code, message)
    }
}
