//! The server side: a tower layer that authenticates every request in one of the
//! enabled WIMSE modes and hands the handler a [`VerifiedWorkload`].
//!
//! Wire formats: WIT + WPT per draft-ietf-wimse-wpt-02 (`Authorization: WPT`, no `ath`;
//! the wpt-01 `Workload-Proof-Token` carriage only with `carriage.accept_legacy_header`),
//! HTTP Message Signatures per draft-ietf-wimse-http-signature-07 (`@path` + `@query`;
//! -06 `@request-target` only with `http_sig_policy.accept_request_target`), mTLS per
//! draft-ietf-wimse-mutual-tls-02.
//!
//! Failures map to the wire in one place (`rejection`):
//! - no credentials, or a WIT/WPT failure: `401` with `WWW-Authenticate: WPT`
//!   (draft-ietf-wimse-wpt-02 §2.1; when WPT is not enabled, see below); a `Bearer` or
//!   `DPoP` token beside a WPT is such a failure, and is never used;
//! - an HTTP Message Signature failure: `400` (draft-ietf-wimse-http-signature-07 §3.6
//!   says 401 is NOT RECOMMENDED there), with `Accept-Signature` naming what to sign;
//! - an authenticated workload that the route does not allow: `403`;
//! - a body that cannot be read within the limit: `413` (the one failure unrelated to
//!   credentials).
//!
//! Bodies are RFC 9457 problem details with a short reason and a stable `kind`; nothing
//! about the credential is logged beyond the workload identifier and the proof's
//! `jti`/nonce (never a raw WIT, WPT or Txn-Token), and credential header values are
//! marked sensitive before the request reaches the handler. Every outcome is counted in the `lanyard_workload_auth_total` metric
//! (labels `mode`, `outcome`).
//!
//! One file per concern: `config` (modes, policies, [`VerifiedWorkload`]), `layer` (the
//! shared [`WorkloadAuthLayer`]), `wpt` (WIT + WPT), `signature` (WIT + HTTP Message
//! Signature, signed responses), `peer` (the mTLS peer identity), `rejection` (failures
//! to responses) and `authorize` ([`AuthorizeLayer`]).

mod authorize;
mod config;
mod layer;
mod peer;
mod rejection;
mod signature;
mod wpt;

pub use authorize::{Authorize, AuthorizeLayer};
pub use config::{AuthMode, Modes, UnverifiedTxnToken, VerifiedWorkload, WorkloadAuthConfig};
pub use layer::{WorkloadAuth, WorkloadAuthLayer};
pub(crate) use layer::{header_view, original_uri};
pub(crate) use rejection::problem;
pub use signature::ResponseToSign;
