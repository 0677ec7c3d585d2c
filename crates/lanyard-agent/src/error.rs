//! The agent's errors, and the one place where they meet the wire.
//!
//! # Error policy
//!
//! - [`AgentError`] is the crate's error: everything that stops the agent from starting,
//!   or a background job (entry stream, minter, renewal) from finishing a step, which it
//!   then logs and retries. Configuration, the socket, node attestation, the server's
//!   answers, data the server sent that fails a check, files, keys and certificates each
//!   have a variant; [`NodeAttestationError`] and [`CryptoError`] are its parts, reached
//!   through `From`.
//! - [`WorkloadApiError`] is why the Workload API refused one call: a missing security
//!   header, a caller that cannot be attested, no identity, an identity the caller is not
//!   entitled to, a bad request, the mint budget, an outage. The service returns nothing
//!   else, and the manager's on-demand mints (JWT-SVIDs, WIT-SVIDs) answer with it too.
//!   [`AttestError`] is what a workload attestor reports; it becomes
//!   [`WorkloadApiError::Attestation`].
//!
//! Each gRPC edge is mapped in this file and nowhere else:
//!
//! - inbound (the server's answers to the agent): `From<tonic::Status> for AgentError`
//!   keeps the status as [`AgentError::Server`]; only the methods here read its code
//!   (`AgentError::is_agent_refused`, [`WorkloadApiError::from_mint`]);
//! - outbound (the Workload API's answers to workloads): `From<WorkloadApiError> for
//!   tonic::Status` chooses every code the Workload API sends. A refusal the caller must
//!   not retry unchanged is never `Unavailable`.
//!
//! Domain code (the manager and its jobs, the attestors, the state, the data directory)
//! never names `tonic::Status` or a gRPC code. Errors keep their cause as `#[source]`
//! rather than as text; messages are lowercase. The enums are `#[non_exhaustive]`: new
//! attestors, jobs and RPCs add variants.
//!
//! `anyhow` has no place in this crate: it is for composition roots and configuration
//! loading in binaries (the `lanyard` CLI), which only report errors. Library code
//! returns these types, so that callers (and tests) can tell failures apart.

use std::path::PathBuf;
use std::time::Duration;

use tonic::{Code, Status};

use crate::attestor::workload::AttestError;

/// A boxed error kept as the cause of a variant whose causes come from several libraries.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the agent, outside per-request Workload API errors
/// (those are [`WorkloadApiError`]s).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// A configured value (or file) does not parse, or cannot be used as configured.
    #[error("configuration: {setting}: {source}")]
    InvalidSetting {
        /// The setting (or the file) at fault.
        setting: String,
        /// Why it was refused.
        source: BoxError,
    },
    /// The Workload API socket path cannot be used safely.
    #[error("workload API socket {path}: {reason}")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// Preparing or binding the Workload API socket failed.
    #[error("workload API socket {path}: {what}: {source}")]
    SocketIo {
        /// The socket path.
        path: PathBuf,
        /// What the agent was doing.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Node attestation failed or is impossible with what is configured.
    #[error("node attestation: {0}")]
    Attestation(#[source] NodeAttestationError),
    /// The server could not be reached or answered with an error (the status is kept, so
    /// a refusal can be told apart from an outage).
    #[error("server answered {:?}: {}", .0.code(), .0.message())]
    Server(#[source] Status),
    /// The server sent something the agent refuses (e.g. an SVID for another identity).
    #[error("server sent invalid data: {0}")]
    InvalidFromServer(String),
    /// The server sent something that fails a check; the check's error is kept.
    #[error("server sent invalid data: {what}: {source}")]
    RejectedFromServer {
        /// What was refused.
        what: String,
        /// Why.
        source: BoxError,
    },
    /// Reading or writing the agent's data directory failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What the agent was doing.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key, certificate or token operation failed.
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
}

/// Why node attestation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeAttestationError {
    /// There is no stored agent SVID to resume with, and no way to attest is configured.
    #[error("no valid stored agent SVID, and neither a join token nor an x509pop certificate is configured")]
    NotConfigured,
    /// The server refused the attestation, or could not be reached.
    #[error("{:?}: {}", .0.code(), .0.message())]
    Server(#[source] Status),
}

/// A key, certificate or token operation that failed, with the library's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A protocol-library check or operation (JOSE, bundles, identifiers).
    #[error(transparent)]
    Core(lanyard_core::Error),
    /// An X.509 operation (chains, SVIDs, TLS configuration).
    #[error(transparent)]
    X509(lanyard_x509::Error),
    /// Generating a key or a CSR.
    #[error(transparent)]
    Csr(rcgen::Error),
    /// The blocking task doing key or certificate work failed.
    #[error(transparent)]
    Task(tokio::task::JoinError),
    /// The agent SVID to store has no private key.
    #[error("agent SVID without its key")]
    MissingKey,
}

impl AgentError {
    /// An [`AgentError::Io`] for `path`.
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> AgentError {
        let path = path.into();
        move |source| AgentError::Io { what, path, source }
    }

    /// An [`AgentError::InvalidSetting`] for `setting`.
    pub(crate) fn setting<E: Into<BoxError>>(setting: impl Into<String>) -> impl FnOnce(E) -> AgentError {
        let setting = setting.into();
        move |source| AgentError::InvalidSetting {
            setting,
            source: source.into(),
        }
    }

    /// An [`AgentError::RejectedFromServer`] for `what`.
    pub(crate) fn rejected<E: Into<BoxError>>(what: impl Into<String>) -> impl FnOnce(E) -> AgentError {
        let what = what.into();
        move |source| AgentError::RejectedFromServer {
            what,
            source: source.into(),
        }
    }

    /// The same error, seen as a failure of node attestation: the server's answer to an
    /// attestation call is an attestation failure; other errors stay what they are.
    pub(crate) fn in_attestation(self) -> AgentError {
        match self {
            AgentError::Server(status) => AgentError::Attestation(NodeAttestationError::Server(status)),
            other => other,
        }
    }

    /// Whether the server refused this agent itself (`PermissionDenied` on the agent
    /// API: it was banned, or is not known).
    pub(crate) fn is_agent_refused(&self) -> bool {
        matches!(self, AgentError::Server(status) if status.code() == Code::PermissionDenied)
    }

    /// The server's own words for a server answer, else this error's message.
    pub(crate) fn reason(&self) -> String {
        match self {
            AgentError::Server(status) => status.message().to_owned(),
            other => other.to_string(),
        }
    }

    /// `Code: reason` for a server answer (what the health report shows), else this
    /// error's message.
    pub(crate) fn summary(&self) -> String {
        match self {
            AgentError::Server(status) => format!("{:?}: {}", status.code(), status.message()),
            other => other.to_string(),
        }
    }
}

impl From<Status> for AgentError {
    fn from(status: Status) -> Self {
        AgentError::Server(status)
    }
}

impl From<lanyard_x509::Error> for AgentError {
    fn from(e: lanyard_x509::Error) -> Self {
        AgentError::Crypto(CryptoError::X509(e))
    }
}

impl From<lanyard_core::Error> for AgentError {
    fn from(e: lanyard_core::Error) -> Self {
        AgentError::Crypto(CryptoError::Core(e))
    }
}

impl From<rcgen::Error> for AgentError {
    fn from(e: rcgen::Error) -> Self {
        AgentError::Crypto(CryptoError::Csr(e))
    }
}

impl From<tokio::task::JoinError> for AgentError {
    fn from(e: tokio::task::JoinError) -> Self {
        AgentError::Crypto(CryptoError::Task(e))
    }
}

/// Why the Workload API refused a call. The service maps each to one gRPC status (in
/// `From<WorkloadApiError> for tonic::Status`, below); the message is the status message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadApiError {
    /// The call lacks the `workload.spiffe.io: true` metadata.
    #[error("security header missing from request")]
    MissingSecurityHeader,
    /// The connection carries no peer credentials to attest the caller with.
    #[error("the caller's process credentials are not available")]
    NoPeerCredentials,
    /// The caller could not be attested (e.g. it exited, or changed its credentials).
    #[error("could not attest the caller: {0}")]
    Attestation(#[source] AttestError),
    /// The task attesting the caller failed.
    #[error("workload attestation failed")]
    AttestationTask(#[source] tokio::task::JoinError),
    /// The caller matches no entry.
    #[error("no identity issued")]
    NoIdentity,
    /// The caller matches no entry that can have a JWT-SVID.
    #[error("no JWT-SVID identity issued")]
    NoJwtIdentity,
    /// The caller asked for an identity it does not have.
    #[error("the caller is not entitled to {0}")]
    NotEntitled(String),
    /// The request itself is invalid (a required field is empty).
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// The audience is invalid (e.g. too many or too long audiences).
    #[error("audience: {0}")]
    InvalidAudience(#[source] lanyard_core::Error),
    /// The JWT-SVID to validate does not verify.
    #[error("invalid JWT-SVID: {0}")]
    InvalidJwtSvid(#[source] lanyard_core::Error),
    /// The server refused the request as invalid.
    #[error("{what}: the server refused the request: {}", .source.message())]
    RequestRefused {
        /// The credential asked for (`JWT-SVID`, `WIT-SVID`).
        what: &'static str,
        /// The server's answer.
        source: Status,
    },
    /// The server refused the entry: the caller is not entitled to the credential.
    #[error("{what}: the server refused the entry: {}", .source.message())]
    EntryRefused {
        /// The credential asked for.
        what: &'static str,
        /// The server's answer.
        source: Status,
    },
    /// The caller's uid used up its budget of server mints.
    #[error("too many new credentials requested by this uid; retry in {} ms", .retry_after.as_millis())]
    RateLimited {
        /// When the next mint would be allowed.
        retry_after: Duration,
    },
    /// The server cannot be reached or failed; retrying later may succeed.
    #[error("could not mint a {what}: {}", .source.reason())]
    MintFailed {
        /// The credential asked for.
        what: &'static str,
        /// What failed.
        source: AgentError,
    },
    /// The server returned a JWT-SVID that does not verify or names another identity.
    #[error("the server returned an invalid JWT-SVID")]
    InvalidJwtSvidFromServer,
    /// The caller's credentials have not been minted within the first-SVID timeout.
    #[error("the caller's credentials are not available yet")]
    NotReady,
}

impl WorkloadApiError {
    /// The workload-facing error for a failed mint of `what`: the server's refusals keep
    /// their meaning, everything else is an outage.
    pub fn from_mint(what: &'static str, error: AgentError) -> WorkloadApiError {
        match error {
            AgentError::Server(status) if status.code() == Code::InvalidArgument => {
                WorkloadApiError::RequestRefused { what, source: status }
            }
            AgentError::Server(status) if matches!(status.code(), Code::PermissionDenied | Code::NotFound) => {
                WorkloadApiError::EntryRefused { what, source: status }
            }
            other => WorkloadApiError::MintFailed { what, source: other },
        }
    }

    /// Whether this is an outage (the server could not mint), not a refusal.
    pub fn is_outage(&self) -> bool {
        matches!(self, WorkloadApiError::MintFailed { .. })
    }
}

impl From<WorkloadApiError> for Status {
    fn from(error: WorkloadApiError) -> Status {
        use WorkloadApiError as E;
        let code = match &error {
            E::MissingSecurityHeader
            | E::InvalidRequest(_)
            | E::InvalidAudience(_)
            | E::InvalidJwtSvid(_)
            | E::RequestRefused { .. } => Code::InvalidArgument,
            E::NoPeerCredentials
            | E::Attestation(_)
            | E::NoIdentity
            | E::NoJwtIdentity
            | E::NotEntitled(_)
            | E::EntryRefused { .. } => Code::PermissionDenied,
            E::AttestationTask(_) => Code::Internal,
            E::RateLimited { .. } => Code::ResourceExhausted,
            E::MintFailed { .. } | E::InvalidJwtSvidFromServer | E::NotReady => Code::Unavailable,
        };
        Status::new(code, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_refusals_keep_their_meaning_for_the_workload() {
        let mapped = |code, message: &str| {
            Status::from(WorkloadApiError::from_mint(
                "JWT-SVID",
                AgentError::Server(Status::new(code, message)),
            ))
        };
        let invalid = mapped(Code::InvalidArgument, "audience: too long");
        assert_eq!(invalid.code(), Code::InvalidArgument);
        assert!(invalid.message().contains("audience: too long"), "{invalid:?}");
        assert_eq!(
            mapped(Code::PermissionDenied, "not authorized").code(),
            Code::PermissionDenied
        );
        assert_eq!(mapped(Code::NotFound, "no entry").code(), Code::PermissionDenied);
        assert_eq!(mapped(Code::Unavailable, "down").code(), Code::Unavailable);
        assert_eq!(mapped(Code::Internal, "bug").code(), Code::Unavailable);
    }
}
