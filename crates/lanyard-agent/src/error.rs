//! The agent's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the agent, outside per-request Workload API errors
/// (those are gRPC statuses).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The Workload API socket path cannot be used safely.
    #[error("workload API socket {path}: {reason}")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// Node attestation failed or is impossible with what is configured.
    #[error("node attestation: {0}")]
    Attestation(String),
    /// The server could not be reached or answered with an error.
    #[error("server: {0}")]
    Server(String),
    /// The server sent something the agent refuses (e.g. an SVID for another identity).
    #[error("server sent invalid data: {0}")]
    InvalidFromServer(String),
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
    /// A key or certificate operation failed.
    #[error("crypto: {0}")]
    Crypto(String),
}

impl AgentError {
    /// An [`AgentError::Io`] for `path`.
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> AgentError {
        let path = path.into();
        move |source| AgentError::Io { what, path, source }
    }
}

impl From<tonic::Status> for AgentError {
    fn from(status: tonic::Status) -> Self {
        AgentError::Server(format!("{:?}: {}", status.code(), status.message()))
    }
}

impl From<lanyard_x509::Error> for AgentError {
    fn from(e: lanyard_x509::Error) -> Self {
        AgentError::Crypto(e.to_string())
    }
}

impl From<lanyard_core::Error> for AgentError {
    fn from(e: lanyard_core::Error) -> Self {
        AgentError::Crypto(e.to_string())
    }
}
