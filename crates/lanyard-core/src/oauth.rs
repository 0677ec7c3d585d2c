//! OAuth 2.0 for workloads: the wire objects and the verification rules an authorization
//! server, a resource server and a client share, without I/O.
//!
//! One module per specification object:
//!
//! | module | follows |
//! |---|---|
//! | `urn` | grant types, token types, assertion types, auth methods, `token_type` (RFC 6749, RFC 8693 §3, RFC 7523 §2, draft-ietf-oauth-spiffe-client-auth §3.1 and §4) |
//! | `form` | `application/x-www-form-urlencoded` bodies, strictly (RFC 6749 §3.1–3.2, Appendix B) |
//! | `request` | token (RFC 6749 §4.4, RFC 8693 §2.1, RFC 7523 §2.1, RFC 8707), introspection and revocation requests; client authentication (RFC 6749 §2.3) |
//! | `error` | `error` codes and statuses, error bodies, `WWW-Authenticate` (RFC 6749 §5.2, RFC 6750 §3, RFC 8707, RFC 9449, RFC 7009) |
//! | `scope` | scope sets (RFC 6749 §3.3) |
//! | `client_assertion` | `private_key_jwt` (RFC 7523 §3 + draft-ietf-oauth-rfc7523bis-11) and `jwt-spiffe` (draft-ietf-oauth-spiffe-client-auth §3.1) |
//! | `client_attestation` | `spiffe_wit`: a WIT-SVID with the attestation-based client authentication headers (draft-ietf-oauth-spiffe-client-auth, draft-ietf-oauth-attestation-based-client-auth-09) |
//! | `spiffe_client` | the `spiffe_id` authorization rule (draft-ietf-oauth-spiffe-client-auth §5.1) |
//! | `keys` | a client's or an authorization server's JWK Set, parsed once |
//! | `access_token` | RFC 9068 JWT access tokens, `act` (RFC 8693 §4.1) |
//! | `authorization_grant` | JWT authorization grants for identity chaining (draft-ietf-oauth-identity-chaining-17, RFC 7523 §2.1, rfc7523bis `authorization-grant+jwt`) |
//! | `external_token` | JWTs from trusted external issuers (RFC 8725 checks) and the rules mapping their claims to a workload identifier |
//! | `exchange` | the token-exchange decision: delegation, impersonation, `may_act`, scope and lifetime (RFC 8693 §1.1, §4, §5) |
//! | `txn_token` | Transaction Tokens, their replacement and the `Txn-Token` header (draft-ietf-oauth-transaction-tokens-11) |
//! | `dpop` | RFC 9449 proofs; `htu` normalisation in `htu` |
//! | `http` | the access token and its proof in `Authorization` / `DPoP` (RFC 6750 §2.1, RFC 9449 §7.1) |
//! | `confirmation` | `cnf` with `jkt` (RFC 9449 §6) and `x5t#S256` (RFC 8705 §3) |
//! | `metadata` | authorization server metadata (RFC 8414, RFC 8705 §5, RFC 9449 §5.1) |
//! | `response` | token responses (RFC 6749 §5.1, RFC 8693 §2.2.1) and introspection responses (RFC 7662 §2.2) |
//!
//! Every failure is a [`crate::Error`] with a stable `kind()`; the OAuth-specific ones are
//! [`Violation`]s. Which OAuth `error` code a failure becomes depends on the endpoint and
//! is decided in one place by the server ([`ErrorCode`] has the codes and statuses).
//!
//! ```
//! # fn main() -> Result<(), lanyard_core::Error> {
//! use lanyard_core::{Algorithm, JwkSet, UnixTime};
//! use lanyard_core::oauth::{
//!     AccessTokenClaims, AccessTokenPolicy, AccessTokenVerifier, Audience, ClientAssertionParams,
//!     ClientAssertionPolicy, PrivateKeyJwtVerifier, Scope, VerificationKeys, create_client_assertion,
//!     issue_access_token,
//! };
//!
//! let provider = lanyard_crypto::provider();
//! let now = UnixTime(1_800_000_000);
//! let issuer = "https://as.example.org";
//!
//! // A client authenticates with a private_key_jwt assertion...
//! let client_key = provider.generate_key(Algorithm::ES256)?;
//! let assertion = create_client_assertion(client_key.as_ref(),
//!     &ClientAssertionParams::new("billing", issuer), now, provider.as_ref())?;
//! let client_keys = VerificationKeys::from_jwks(provider.as_ref(), "billing",
//!     &JwkSet { keys: vec![client_key.public_jwk()] })?;
//! let verified = PrivateKeyJwtVerifier::new(issuer, ClientAssertionPolicy::default())
//!     .verify(&assertion, "billing", &client_keys, now)?;
//! assert_eq!(verified.client_id, "billing");
//!
//! // ...and receives an RFC 9068 access token, which a resource server verifies.
//! let as_key = provider.generate_key(Algorithm::ES256)?;
//! let claims = AccessTokenClaims {
//!     iss: issuer.into(), sub: "billing".into(), aud: Audience::one("https://ledger.example.org"),
//!     client_id: "billing".into(), scope: Some(Scope::parse("read")?),
//!     iat: now, exp: now.plus(300), nbf: None, jti: "t-1".into(), cnf: None, act: None,
//!     extra: Default::default(),
//! };
//! let token = issue_access_token(as_key.as_ref(), "as-key-1", &claims)?;
//! let mut as_jwk = as_key.public_jwk();
//! as_jwk.kid = Some("as-key-1".into());
//! let as_keys = VerificationKeys::from_jwks(provider.as_ref(), issuer, &JwkSet { keys: vec![as_jwk] })?;
//! let at = AccessTokenVerifier::new(AccessTokenPolicy::new(issuer, "https://ledger.example.org"))
//!     .verify(&token, &as_keys, now)?;
//! at.require_scope(&Scope::parse("read")?)?;
//! # Ok(()) }
//! ```

mod access_token;
mod authorization_grant;
mod client_assertion;
mod client_attestation;
mod confirmation;
mod dpop;
mod error;
mod exchange;
mod external_token;
mod form;
mod http;
mod htu;
mod keys;
mod metadata;
mod request;
mod response;
mod scope;
mod spiffe_client;
mod txn_token;
mod urn;
mod violation;

pub use access_token::{
    AccessTokenClaims, AccessTokenPolicy, AccessTokenVerifier, Actor, Audience, MAX_ACTOR_DEPTH, VerifiedAccessToken,
    issue_access_token,
};
pub use authorization_grant::{
    AuthorizationGrantClaims, AuthorizationGrantPolicy, AuthorizationGrantVerifier, GRANT_CLAIMS, MAX_GRANT_LIFETIME,
    VerifiedAuthorizationGrant, issue_authorization_grant,
};
pub use client_assertion::{
    ClientAssertionParams, ClientAssertionPolicy, MAX_ASSERTION_LIFETIME, PrivateKeyJwtVerifier, SpiffeAssertionPolicy,
    SpiffeAssertionVerifier, VerifiedClientAssertion, VerifiedSpiffeAssertion, create_client_assertion,
    unverified_client_id,
};
pub use client_attestation::{
    ClientAttestationPolicy, ClientAttestationPopParams, ClientAttestationVerifier, VerifiedClientAttestation,
    create_client_attestation_pop,
};
pub use confirmation::{Confirmation, PresentedProof, certificate_thumbprint, check_unbound};
pub use dpop::{
    DpopNonce, DpopPolicy, DpopProofParams, DpopRequest, DpopVerifier, VerifiedDpopProof, access_token_hash,
    create_dpop_proof,
};
pub use error::{Endpoint, ErrorCode, ErrorResponse, MAX_DESCRIPTION_CHARS, www_authenticate};
pub use exchange::{ExchangeOutcome, ExchangeRules, SubjectToken, decide_exchange};
pub use external_token::{
    ClaimCondition, ExternalTokenPolicy, ExternalTokenVerifier, IdentityTemplate, MappingRule, VerifiedExternalToken,
    claim_at, map_identity,
};
pub use form::{Form, FormLimits, REPEATABLE_PARAMETERS, check_content_type, encode_form};
pub use http::{PresentedAccessToken, TokenScheme, extract_access_token, header_once};
pub use htu::normalize_http_uri;
pub use keys::VerificationKeys;
pub use metadata::{
    AuthorizationServerMetadata, RemoteUrl, UrlProblem, WELL_KNOWN_SUFFIX, alg_values, check_discovered_url,
    check_issuer_identifier, check_remote_url, loggable_url, metadata_url,
};
pub use request::{
    ClientAuthHeaders, ClientAuthentication, Credential, Grant, TokenExchange, TokenHintRequest, TokenRequest,
    parse_basic_credentials,
};
pub use response::{ActiveToken, IntrospectionResponse, TokenResponse};
pub use scope::{MAX_SCOPE_TOKENS, Scope};
pub use spiffe_client::{SpiffeIdPattern, authorize_spiffe_id};
pub use txn_token::{
    DEFAULT_TXN_TOKEN_TTL, MAX_CONTEXT_BYTES, MAX_TXN_TOKEN_LIFETIME, TXN_TOKEN_HEADER, TxnTokenClaims, TxnTokenPolicy,
    TxnTokenVerifier, VerifiedTxnToken, check_not_wider, check_replacement, extract_txn_token, issue_txn_token,
    parse_context_object,
};
pub use urn::{AccessTokenType, AuthMethod, ClientAssertionType, GrantType, TokenTypeUri};
pub use violation::Violation;

use crate::crypto::CryptoProvider;
use crate::error::Error as CoreError;
use crate::jose::base64url;

/// The longest `jti` accepted in an assertion or a proof, in bytes (it becomes a key of a
/// shared replay store).
pub const MAX_JTI_BYTES: usize = 256;

/// A fresh `jti`: 128 random bits, base64url.
pub(crate) fn new_jti(provider: &dyn CryptoProvider) -> Result<String, CoreError> {
    let mut bytes = [0u8; 16];
    provider.fill_random(&mut bytes)?;
    Ok(base64url::encode(&bytes))
}

/// A `jti` must be non-empty and at most [`MAX_JTI_BYTES`].
pub(crate) fn check_jti(jti: &str) -> Result<(), CoreError> {
    if jti.is_empty() {
        return Err(CoreError::invalid_claim("jti", "must not be empty"));
    }
    if jti.len() > MAX_JTI_BYTES {
        return Err(CoreError::invalid_claim(
            "jti",
            format!("longer than {MAX_JTI_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// base64url(SHA-256(ASCII token)): `ath` (RFC 9449 §4.2).
pub(crate) fn token_hash(provider: &dyn CryptoProvider, token: &str) -> String {
    base64url::encode(&provider.sha256(token.as_bytes()))
}
