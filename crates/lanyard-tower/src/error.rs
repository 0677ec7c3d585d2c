//! The crate's error type.

/// What can go wrong in the middleware outside of credential verification itself.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A credential could not be issued, parsed or verified.
    #[error(transparent)]
    Credential(#[from] lanyard_core::Error),
    /// The workload's own credentials could not be loaded.
    #[error("loading workload credentials from {path}: {reason}")]
    CredentialSource {
        /// The file or source that failed.
        path: String,
        /// Why.
        reason: String,
    },
    /// A request or response body could not be read or is too large to sign.
    #[error("message body: {0}")]
    Body(String),
    /// The outgoing request cannot be signed as configured (e.g. a streaming body).
    #[error("cannot authenticate the request: {0}")]
    Request(String),
    /// A signed response was required and is missing or invalid.
    #[error("response signature: {0}")]
    Response(lanyard_core::Error),
    /// A document (metadata, JWK Set) or token could not be fetched.
    #[error("fetching {what}: {reason}")]
    Fetch {
        /// The URL or what was fetched.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// The token endpoint refused to issue a token (its OAuth `error` and description).
    #[error("the token endpoint refused: {0}")]
    TokenEndpoint(String),
}
