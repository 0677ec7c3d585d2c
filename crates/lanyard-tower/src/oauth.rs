//! OAuth 2.0 for resource servers and clients: a tower layer that verifies RFC 9068 JWT
//! access tokens (bearer, DPoP-bound or certificate-bound) and a reqwest middleware that
//! obtains them with `client_credentials`.
//!
//! **Resource server.** [`AccessTokenLayer`] reads `Authorization: Bearer` (RFC 6750 §2.1)
//! or `Authorization: DPoP` + `DPoP` (RFC 9449 §7.1), and verifies:
//! - the token as RFC 9068 §4 says (`typ` exactly `at+jwt`, another token type's `typ`
//!   refused as `typ_confusion` by `lanyard_core::jose::typ`; `alg` on the allow-list;
//!   the signature by the authorization server's key; `iss`; `aud` one of this service's
//!   identifiers; `exp`/`nbf`/`iat` with bounded skew), with keys configured or fetched
//!   from the authorization server's RFC 8414 metadata `jwks_uri` ([`KeySource`]);
//! - a DPoP proof (RFC 9449 §4.3: `htm`, `htu` rebuilt from the configured public base URL
//!   and the request path, never from `Host`; `ath`; the `iat` window; `jti` replay in a
//!   [`lanyard_core::ReplayCache`]; and, when [`DpopNonces`] are configured, a server
//!   nonce: `401` with `DPoP-Nonce` and `use_dpop_nonce`, RFC 9449 §9);
//! - the binding (`cnf.jkt` needs the DPoP proof of that key, `cnf.x5t#S256` the TLS client
//!   certificate of the connection, RFC 8705 §3; a bound token sent as `Bearer` is refused,
//!   and so is a DPoP proof with an unbound token);
//! - per-route scopes ([`AccessTokenLayer::require_scope`], [`RequireScopeLayer`]).
//!
//! Failures map to the wire in one place (`rejection`), per RFC 6750 §3 and RFC 9449 §7.1:
//! `401` + `WWW-Authenticate: Bearer`/`DPoP` with `error="invalid_token"`,
//! `"invalid_dpop_proof"` or `"use_dpop_nonce"`; `403` with `"insufficient_scope"`; `400`
//! `"invalid_request"` for a malformed `Authorization` field; `503` when the keys cannot be
//! had. The body is the same error as an RFC 6749 §5.2 JSON object. Tokens and proofs are
//! never logged; header values are marked sensitive. Every outcome is counted in
//! `lanyard_access_token_total` (labels `scheme`, `outcome`). Handlers get a
//! [`VerifiedAccessToken`] (an axum extractor).
//!
//! **Client.** [`OAuthClientMiddleware`] gets tokens from the token endpoint with
//! `client_credentials` (RFC 6749 §4.4), authenticating with a `jwt-spiffe` JWT-SVID
//! (draft-ietf-oauth-spiffe-client-auth, editor's copy after PR #44: `client_id`
//! required), a `private_key_jwt` assertion (RFC 7523 with draft-ietf-oauth-rfc7523bis-11:
//! `aud` the issuer alone, `typ: client-authentication+jwt`) or an X.509-SVID over mutual
//! TLS (RFC 8705 §2), from a [`ClientCredentialSource`]; caches them per scope and
//! resource, refreshes them in the background before they expire (a request waits only
//! when no usable token is cached, and concurrent requests then share one fetch),
//! and optionally binds them with DPoP (RFC 9449), retrying once on `use_dpop_nonce`.

mod client;
mod config;
mod credentials;
mod keys;
mod layer;
mod nonce;
mod rejection;
mod scope;
mod token;

pub use client::{OAuthClientConfig, OAuthClientMiddleware, TokenOptions, TxnTokenReplacement};
pub use config::AccessTokenConfig;
pub use credentials::{
    ClientCredential, ClientCredentialSource, MtlsClientCredentials, PrivateKeyJwtSource, StaticJwtSvid,
};
pub use keys::{KeySource, RemoteKeysConfig};
pub use layer::{AccessTokenAuth, AccessTokenLayer};
pub use nonce::DpopNonces;
pub use scope::{RequireScope, RequireScopeLayer};
pub use token::{Binding, VerifiedAccessToken};
