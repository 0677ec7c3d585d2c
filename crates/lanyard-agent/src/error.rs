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
    /// The server could not be reached or answered with an error (the status is kept, so
    /// a refusal can be told apart from an outage).
    #[error("server answered {:?}: {}", .0.code(), .0.message())]
    Server(#[source] tonic::Status),
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
        AgentError::Server(status)
    }
}

/// Why a workload's request for a credential (a JWT-SVID or WIT-SVID minted on demand)
/// was not served. The Workload API maps each to one gRPC status: a refusal the caller
/// must not retry unchanged is never reported as `Unavailable`.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The request itself is invalid (e.g. an empty or oversized audience); also when the
    /// server refuses it as invalid.
    #[error("{0}")]
    InvalidRequest(String),
    /// The caller is not entitled to it (the server refused the entry).
    #[error("{0}")]
    Denied(String),
    /// The caller's uid used up its budget of server mints.
    #[error("too many new credentials requested by this uid; retry in {} ms", .retry_after.as_millis())]
    RateLimited {
        /// When the next mint would be allowed.
        retry_after: std::time::Duration,
    },
    /// The server cannot be reached or failed; retrying later may succeed.
    #[error("{0}")]
    Unavailable(String),
}

impl CredentialError {
    /// The workload-facing error for a failed mint: the server's refusals keep their
    /// meaning, everything else is an outage.
    pub fn from_mint(what: &str, error: &AgentError) -> CredentialError {
        match error {
            AgentError::Server(status) => match status.code() {
                tonic::Code::InvalidArgument => CredentialError::InvalidRequest(format!(
                    "{what}: the server refused the request: {}",
                    status.message()
                )),
                tonic::Code::PermissionDenied | tonic::Code::NotFound => {
                    CredentialError::Denied(format!("{what}: the server refused the entry: {}", status.message()))
                }
                _ => CredentialError::Unavailable(format!("could not mint a {what}: {}", status.message())),
            },
            other => CredentialError::Unavailable(format!("could not mint a {what}: {other}")),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_refusals_keep_their_meaning_for_the_workload() {
        let mapped = |code, message: &str| {
            CredentialError::from_mint("JWT-SVID", &AgentError::Server(tonic::Status::new(code, message)))
        };
        assert!(matches!(
            mapped(tonic::Code::InvalidArgument, "audience: too long"),
            CredentialError::InvalidRequest(m) if m.contains("audience: too long")
        ));
        assert!(matches!(
            mapped(tonic::Code::PermissionDenied, "not authorized"),
            CredentialError::Denied(_)
        ));
        assert!(matches!(
            mapped(tonic::Code::NotFound, "no entry"),
            CredentialError::Denied(_)
        ));
        assert!(matches!(
            mapped(tonic::Code::Unavailable, "down"),
            CredentialError::Unavailable(_)
        ));
        assert!(matches!(
            mapped(tonic::Code::Internal, "bug"),
            CredentialError::Unavailable(_)
        ));
    }
}
