//! Workload-to-workload authentication for HTTP services and clients, in the three
//! WIMSE modes: WIT + Workload Proof Token, WIT + HTTP Message Signature, and mutual TLS
//! with X.509-SVIDs.
//!
//! - Server: [`WorkloadAuthLayer`] (a tower layer) verifies whichever enabled mode a
//!   request uses and hands handlers a [`VerifiedWorkload`] (an axum extractor); an
//!   [`AuthorizeLayer`] restricts a route to given workloads or trust domains;
//!   [`TxnTokenLayer`] verifies the `Txn-Token` a call carries and hands handlers a
//!   [`VerifiedTxn`] (draft-ietf-oauth-transaction-tokens-11).
//! - Client: [`WorkloadAuthMiddleware`] (reqwest-middleware) attaches a WIT + WPT, or
//!   signs the request (and binds a [`TxnToken`] to it), with credentials from a
//!   [`CredentialSource`] — fixed, from files,
//!   or (feature `workload-api`) from the SPIFFE Workload API's WIT-SVID stream
//!   (`WorkloadApiCredentialSource`).
//!
//! - OAuth 2.0 ([`oauth`]): [`oauth::AccessTokenLayer`] verifies RFC 9068 access tokens
//!   (bearer, DPoP-bound or certificate-bound) on a resource server and hands handlers an
//!   [`oauth::VerifiedAccessToken`]; [`oauth::OAuthClientMiddleware`] (reqwest-middleware)
//!   obtains tokens with `client_credentials`, authenticated by the workload's JWT-SVID,
//!   a `private_key_jwt` key or its X.509-SVID (feature `workload-api`:
//!   `WorkloadApiClientCredentials`, fed by the agent), optionally DPoP-bound.
//! - SPICE: [`sdcwt::SdCwtLayer`] verifies SD-CWT presentations (SD-KBTs) and hands
//!   handlers only the disclosed claims ([`sdcwt::DisclosedClaims`]).
//!
//! It does not issue credentials (that is the identity server's job) and does not do the
//! TLS handshake itself: for mTLS it reads the peer identity that
//! [`mtls`] put on the request.
//!
//! # OAuth: a protected route and a client
//!
//! A resource server takes the authorization server's keys from its RFC 8414 metadata and
//! requires a scope on one route; handlers read the verified token:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{Router, routing::{get, post}};
//! use lanyard_core::oauth::Scope;
//! use lanyard_tower::oauth::{AccessTokenConfig, AccessTokenLayer, KeySource, RemoteKeysConfig, VerifiedAccessToken};
//!
//! let keys = KeySource::discover("https://as.example.org", RemoteKeysConfig::default())?;
//! let tokens = AccessTokenLayer::new(keys, AccessTokenConfig::new("https://as.example.org", "https://ledger.example.org"));
//! let app: Router = Router::new()
//!     .route("/balance", get(|t: VerifiedAccessToken| async move { format!("hello {}", t.client_id()) }))
//!     .route("/transfer", post(|| async { "done" }).layer(tokens.require_scope(Scope::parse("ledger.write")?)))
//!     .layer(tokens);
//! # let _ = app; Ok(()) }
//! ```
//!
//! A client gets DPoP-bound tokens for that resource with a `private_key_jwt` key (or, with
//! `workload-api`, `WorkloadApiClientCredentials::jwt_svid` in place of the key source):
//!
//! ```no_run
//! # async fn demo(key: std::sync::Arc<dyn lanyard_core::SigningKey>) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use lanyard_tower::oauth::{OAuthClientConfig, OAuthClientMiddleware, PrivateKeyJwtSource};
//!
//! let mut config = OAuthClientConfig::new("https://as.example.org", "billing");
//! config.resources = vec!["https://ledger.example.org".into()];
//! config.dpop = true;
//! let oauth = OAuthClientMiddleware::new(config, Arc::new(PrivateKeyJwtSource { key, kid: None }))?;
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(oauth).build();
//! let balance = client.get("https://ledger.example.org/balance").send().await?.text().await?;
//! # let _ = balance; Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod client;
mod credentials;
mod error;
mod guard;
pub mod mtls;
pub mod oauth;
pub mod sdcwt;
mod server;
mod txn_token;
#[cfg(feature = "workload-api")]
mod workload_source;

/// The crypto provider a component uses when its configuration names none: the process
/// default, `lanyard_crypto::provider()` (as rustls falls back to its process default).
/// Every component also takes one (a `provider` field of its configuration, or a
/// `with_provider` constructor).
pub(crate) fn default_provider() -> std::sync::Arc<dyn lanyard_core::CryptoProvider> {
    lanyard_crypto::provider()
}

// Public API
pub use client::{ClientMode, TxnToken, VerifiedResponder, WorkloadAuthMiddleware};
pub use credentials::{CredentialSource, FileCredentialSource, StaticCredentials, WorkloadCredentials};
pub use error::Error;
pub use guard::{Guard, GuardService};
pub use server::{
    AuthMode, Authorize, AuthorizeLayer, Modes, ResponseToSign, UnverifiedTxnToken, VerifiedWorkload, WorkloadAuth,
    WorkloadAuthConfig, WorkloadAuthLayer,
};
pub use txn_token::{ForwardableTxnToken, TxnTokenAuth, TxnTokenKeys, TxnTokenLayer, VerifiedTxn};
#[cfg(feature = "workload-api")]
pub use workload_source::{
    WorkloadApiClientCredentials, WorkloadApiCredentialSource, WorkloadApiTrust, WorkloadApiX509Source,
};
