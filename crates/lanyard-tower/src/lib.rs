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
//! - SPICE: [`sdcwt::SdCwtLayer`] verifies SD-CWT presentations (SD-KBTs) and hands
//!   handlers only the disclosed claims ([`sdcwt::DisclosedClaims`]).
//!
//! It does not issue credentials (that is the identity server's job) and does not do the
//! TLS handshake itself: for mTLS it reads the peer identity that
//! [`mtls`] put on the request.

#![forbid(unsafe_code)]

mod client;
mod credentials;
mod error;
pub mod mtls;
pub mod sdcwt;
mod server;
mod txn_token;
#[cfg(feature = "workload-api")]
mod workload_source;

// Public API
pub use client::{ClientMode, TxnToken, VerifiedResponder, WorkloadAuthMiddleware};
pub use credentials::{CredentialSource, FileCredentialSource, StaticCredentials, WorkloadCredentials};
pub use error::Error;
pub use server::{
    AuthMode, Authorize, AuthorizeLayer, Modes, UnverifiedTxnToken, VerifiedWorkload, WorkloadAuth, WorkloadAuthConfig,
    WorkloadAuthLayer,
};
pub use txn_token::{ForwardableTxnToken, TxnTokenAuth, TxnTokenKeys, TxnTokenLayer, VerifiedTxn};
#[cfg(feature = "workload-api")]
pub use workload_source::{WorkloadApiCredentialSource, WorkloadApiTrust, WorkloadApiX509Source};
