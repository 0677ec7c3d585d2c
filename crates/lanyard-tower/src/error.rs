//! The crate's error type: what goes wrong in the middleware outside of verifying a
//! credential (loading the workload's own credentials, reaching the authorization server,
//! a response that fails its check).
//!
//! # Error policy
//!
//! - **Two kinds of failure.** A request a layer refuses is not an [`Error`]: it is
//!   answered on the spot, mapped to HTTP in one function per layer: `server/rejection.rs`
//!   (WIT+WPT and HTTP signatures: 400/401/403 with `WWW-Authenticate`),
//!   `oauth/rejection.rs` (RFC 6750 / RFC 9449 access-token challenges), `txn_token.rs`
//!   (`Refusal::into_response`: the `Txn-Token` header) and `sdcwt.rs`
//!   (`Rejection::into_response`: SD-CWT presentations);
//!   the extractors answer 500 when their layer is missing (`server/config.rs`) and
//!   [`crate::Authorize`] 401/403. What fails on the client side, or in setting a layer up,
//!   is an [`Error`] returned to the caller.
//! - **Causes are kept** (`#[source]`, or the core error itself through `#[from]`), and
//!   the core error's stable `kind()` travels into problem documents and challenges.
//! - **No `anyhow`**: this is library code.
//! - **Bad input is never a panic**: clippy denies `unwrap`/`expect` outside tests.

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
    /// A layer or client was set up with something it cannot use (a `jwks_uri` that is
    /// not https, an HTTP client that cannot be built).
    #[error("configuration: {0}")]
    Config(String),
    /// The token endpoint refused to issue a token (its OAuth `error` and description).
    #[error("the token endpoint refused: {0}")]
    TokenEndpoint(String),
}
