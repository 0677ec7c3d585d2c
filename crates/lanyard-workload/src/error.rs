//! The crate's error type: gRPC statuses of the Workload API mapped to what a client does
//! about them (digest §5.4), plus connection, validation and file errors.
//!
//! # Error policy
//!
//! - **One error type for the crate**, [`ClientError`]; callers match on it or on its stable
//!   `kind()` code, never on messages.
//! - **Causes are kept**: a variant that wraps another error holds it as `#[source]`.
//! - **No `anyhow`** here: this is library code. Only composition roots (the CLI, the
//!   server's and agent's start-up and configuration) use it.
//! - **No wire mapping here**: this is the one place where the
//!   Workload API's gRPC statuses (inbound) become client errors:
//!   [`ClientError`]'s conversion from `tonic::Status` decides what a client retries.
//! - **Bad input is never a panic**: clippy denies `unwrap`/`expect` outside tests.

use std::path::PathBuf;

use crate::address::AddressError;

/// What can go wrong talking to the Workload API or acting on its answers.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint address is invalid or missing.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// No connection could be made to the endpoint.
    #[error("cannot connect to the Workload API at {address}: {reason}")]
    Connect {
        /// The endpoint, in URI form.
        address: String,
        /// Why the connection failed.
        reason: String,
    },
    /// `PermissionDenied`: the caller has no identity (possibly not provisioned yet); retry
    /// with backoff.
    #[error("the Workload API denied the request: {0}")]
    PermissionDenied(String),
    /// `InvalidArgument` from the server (e.g. the security header is missing), or a request
    /// the client refuses to send (e.g. a JWT-SVID request without an audience). Not
    /// retryable.
    #[error("invalid Workload API request: {0}")]
    InvalidArgument(String),
    /// `Unavailable`: the endpoint is starting, overloaded or unreachable; retry with backoff.
    #[error("the Workload API is unavailable: {0}")]
    Unavailable(String),
    /// `Unimplemented`: the endpoint does not support this RPC (e.g. the WIT-SVID profile).
    /// Not retryable.
    #[error("the Workload API does not implement this call: {0}")]
    Unimplemented(String),
    /// `Unauthenticated`: the endpoint could not attest the caller (e.g. PID reuse).
    #[error("the Workload API could not authenticate the caller: {0}")]
    Unauthenticated(String),
    /// Any other gRPC status.
    #[error("Workload API call failed with {code:?}: {message}")]
    Status {
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
    /// A response is missing a mandatory field or carries malformed or inconsistent data
    /// (e.g. an SVID whose `spiffe_id` is not its leaf's URI SAN). The message is discarded.
    #[error("malformed Workload API response: {0}")]
    Malformed(String),
    /// A stream ended before delivering its first message.
    #[error("the Workload API stream ended without a message")]
    StreamClosed,
    /// Writing credential files failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl ClientError {
    /// Whether retrying later (with backoff) may succeed: true for `Unavailable`,
    /// `PermissionDenied`, connection failures, closed streams and other transient statuses;
    /// false for `InvalidArgument`, `Unimplemented`, bad addresses and malformed answers.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Connect { .. }
            | ClientError::PermissionDenied(_)
            | ClientError::Unavailable(_)
            | ClientError::Unauthenticated(_)
            | ClientError::StreamClosed
            | ClientError::Io { .. } => true,
            ClientError::Status { code, .. } => !matches!(code, tonic::Code::Cancelled),
            ClientError::Address(_)
            | ClientError::InvalidArgument(_)
            | ClientError::Unimplemented(_)
            | ClientError::Malformed(_) => false,
        }
    }

    pub(crate) fn malformed(message: impl Into<String>) -> ClientError {
        ClientError::Malformed(message.into())
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> ClientError {
        ClientError::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> ClientError {
        let message = status.message().to_owned();
        match status.code() {
            tonic::Code::PermissionDenied => ClientError::PermissionDenied(message),
            tonic::Code::InvalidArgument => ClientError::InvalidArgument(message),
            tonic::Code::Unavailable => ClientError::Unavailable(message),
            tonic::Code::Unimplemented => ClientError::Unimplemented(message),
            tonic::Code::Unauthenticated => ClientError::Unauthenticated(message),
            code => ClientError::Status { code, message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_variants() {
        assert!(matches!(
            ClientError::from(tonic::Status::permission_denied("no identity issued")),
            ClientError::PermissionDenied(m) if m == "no identity issued"
        ));
        assert!(matches!(
            ClientError::from(tonic::Status::invalid_argument("x")),
            ClientError::InvalidArgument(_)
        ));
        assert!(matches!(
            ClientError::from(tonic::Status::unavailable("x")),
            ClientError::Unavailable(_)
        ));
        assert!(matches!(
            ClientError::from(tonic::Status::internal("x")),
            ClientError::Status {
                code: tonic::Code::Internal,
                ..
            }
        ));
        assert!(ClientError::Unavailable(String::new()).is_retryable());
        assert!(!ClientError::Unimplemented(String::new()).is_retryable());
        assert!(!ClientError::InvalidArgument(String::new()).is_retryable());
    }
}
