//! The authorization server's one error type, [`OAuthError`], and its one mapping to an
//! RFC 6749 §5.2 error response ([`OAuthError::response`]): the `error` code, the HTTP
//! status (RFC 6749 §5.2; RFC 9449 §7.1 and §8 for DPoP; RFC 8707 §2 `invalid_target`),
//! and whether a `WWW-Authenticate` challenge goes with it. The HTTP edge
//! (`endpoints/oauth.rs`) only copies what this says onto the response.

use lanyard_core::oauth::{Endpoint, ErrorCode, ErrorResponse, TokenScheme, Violation, www_authenticate};

use crate::ca::CaError;
use crate::datastore::StoreError;
use crate::error::ServerError;

/// Why client authentication failed (always `invalid_client`).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// The request names no client at all.
    #[error("no client authentication")]
    Missing,
    /// A SPIFFE method without `client_id` (draft-ietf-oauth-spiffe-client-auth §3, as
    /// revised: `client_id` is required).
    #[error("client_id is required with SPIFFE client authentication")]
    MissingClientId,
    /// No client is registered with that `client_id`.
    #[error("unknown client")]
    UnknownClient,
    /// The client is not registered for this method.
    #[error("the client may not authenticate with this method")]
    MethodNotAllowed,
    /// An assertion type this server does not accept.
    #[error("unsupported client_assertion_type {0:?}")]
    UnsupportedAssertionType(String),
    /// The assertion, SVID or certificate failed verification.
    #[error("{0}")]
    Credential(#[source] lanyard_core::Error),
    /// The assertion's `jti` was used before (RFC 7523 §3 item 7).
    #[error("the client assertion was already used")]
    Replay,
    /// The secret does not match.
    #[error("invalid client secret")]
    BadSecret,
    /// The client's keys could not be obtained (`jwks_uri` unreachable or invalid).
    #[error("the client's keys are unavailable: {0}")]
    Keys(String),
    /// Mutual-TLS client authentication without a usable client certificate.
    #[error("{0}")]
    Certificate(String),
}

impl ClientAuthError {
    /// Whether the reason may be told to any requester: true only for reasons that do not
    /// depend on what is registered (no client named, no `client_id`, an assertion type
    /// the server does not know) and for a replay, which only the holder of a valid
    /// credential reaches. The others (an unknown client, a method it may not use, a
    /// credential that does not verify) would tell whether a client exists.
    pub fn is_public(&self) -> bool {
        matches!(
            self,
            ClientAuthError::Missing
                | ClientAuthError::MissingClientId
                | ClientAuthError::UnsupportedAssertionType(_)
                | ClientAuthError::Replay
        )
    }

    /// A stable lowercase code (audit lines, tests).
    pub fn kind(&self) -> &'static str {
        match self {
            ClientAuthError::Missing => "no_client_auth",
            ClientAuthError::MissingClientId => "missing_client_id",
            ClientAuthError::UnknownClient => "unknown_client",
            ClientAuthError::MethodNotAllowed => "method_not_allowed",
            ClientAuthError::UnsupportedAssertionType(_) => "unsupported_assertion_type",
            ClientAuthError::Credential(e) => e.kind(),
            ClientAuthError::Replay => "replay",
            ClientAuthError::BadSecret => "bad_secret",
            ClientAuthError::Keys(_) => "client_keys_unavailable",
            ClientAuthError::Certificate(_) => "client_certificate",
        }
    }
}

/// Why a token, introspection or revocation request failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The request is malformed: content type, size, encoding, a repeated or missing
    /// parameter, two authentication methods, a bad `resource` or `scope` syntax.
    #[error("{0}")]
    Request(#[source] lanyard_core::Error),
    /// Client authentication failed.
    #[error("client authentication failed ({method}): {reason}")]
    InvalidClient {
        /// The method tried (`private_key_jwt`, `spiffe_jwt`, ...).
        method: &'static str,
        /// Why.
        #[source]
        reason: ClientAuthError,
    },
    /// `grant_type` is not one this server serves.
    #[error("unsupported grant_type {0:?}")]
    UnsupportedGrantType(String),
    /// The client may not use this grant type.
    #[error("the client may not use grant_type {0:?}")]
    UnauthorizedClient(String),
    /// A requested scope is outside the client's registration.
    #[error("scope {0:?} is not registered for the client")]
    InvalidScope(String),
    /// A requested `resource` or `audience` is outside the client's registration, or none
    /// can be chosen.
    #[error("{0}")]
    InvalidTarget(String),
    /// The DPoP proof is invalid (or its nonce is missing or stale, which asks the client
    /// to retry with a fresh one).
    #[error("invalid DPoP proof: {0}")]
    Dpop(#[source] lanyard_core::Error),
    /// The DPoP proof was used before.
    #[error("the DPoP proof was already used")]
    DpopReplay,
    /// The client must present a DPoP proof (or a client certificate) and did not.
    #[error("{0}")]
    BindingRequired(&'static str),
    /// A token exchange's `subject_token` (`Subject`) or `actor_token` (`Actor`) is
    /// invalid: its signature, type, issuer, audience or times (RFC 8693 §2.2.2:
    /// `invalid_request`).
    #[error("invalid {which}: {reason}")]
    ExchangeToken {
        /// `subject_token` or `actor_token`.
        which: &'static str,
        /// Why.
        #[source]
        reason: lanyard_core::Error,
    },
    /// A token exchange presents a token this server revoked (`invalid_request`).
    #[error("the {0} was revoked")]
    RevokedToken(&'static str),
    /// A revocation request for a token issued to another client: RFC 7009 §2.1 refuses
    /// it and tells the client (`invalid_request`, as oidc-provider answers a
    /// confidential client).
    #[error("the token was issued to another client")]
    NotTheTokensClient,
    /// A token type the client's policy does not accept, or this server does not
    /// exchange or issue, in `subject_token_type`, `actor_token_type` or
    /// `requested_token_type` (`invalid_request`).
    #[error("{param} {value:?} is not accepted for this client")]
    TokenTypeRefused {
        /// The parameter.
        param: &'static str,
        /// Its value (clipped).
        value: String,
    },
    /// The exchange decision or a Txn-Token replacement refused: a scope wider than the
    /// subject token's (`invalid_scope`), delegation or impersonation the policy does not
    /// allow, a `may_act` that does not name the actor, an expired subject token, a
    /// replacement changing `txn`, `sub` or `aud` (all `invalid_request`, RFC 8693
    /// §2.2.2).
    #[error("{0}")]
    Exchange(#[source] lanyard_core::Error),
    /// A JWT authorization grant (RFC 7523 §2.1) failed verification (`invalid_grant`,
    /// RFC 7523 §3.1).
    #[error("invalid authorization grant: {0}")]
    InvalidGrant(#[source] lanyard_core::Error),
    /// A JWT authorization grant from a home server this server does not trust
    /// (`invalid_grant`).
    #[error("authorization grants from {0:?} are not accepted")]
    UntrustedHomeServer(String),
    /// A JWT authorization grant was redeemed before (`invalid_grant`).
    #[error("the authorization grant was already used")]
    GrantReplay,
    /// The home server's keys could not be obtained (`invalid_grant`: the grant cannot be
    /// verified).
    #[error("the home server's keys are unavailable: {0}")]
    HomeKeys(String),
    /// An access token presented to a protected resource of this server failed
    /// verification (signature, type, issuer, audience, times) or its binding
    /// (`invalid_token`, RFC 6750 §3.1).
    #[error("invalid access token: {0}")]
    AccessToken(#[source] lanyard_core::Error),
    /// An access token presented to a protected resource of this server was revoked
    /// (`invalid_token`).
    #[error("the access token was revoked")]
    AccessTokenRevoked,
    /// A bearer (unbound) access token presented where only sender-constrained ones are
    /// accepted (`invalid_token`): the credential issued must be bound to a key the caller
    /// proves.
    #[error("the access token is not sender-constrained (DPoP or certificate-bound)")]
    AccessTokenUnbound,
    /// The datastore failed.
    #[error("datastore: {0}")]
    Store(#[from] StoreError),
    /// The signing keys are unavailable.
    #[error("key management: {0}")]
    Keys(#[from] CaError),
    /// Signing the access token failed.
    #[error("issuing the access token: {0}")]
    Issue(#[source] lanyard_core::Error),
    /// The authorization server could not be set up (at start).
    #[error("setting up the authorization server: {0}")]
    Setup(String),
}

/// What an [`OAuthError`] looks like on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: ErrorResponse,
    /// The `WWW-Authenticate` value, when one is due.
    pub www_authenticate: Option<String>,
    /// Whether a fresh `DPoP-Nonce` goes with it (RFC 9449 §8).
    pub dpop_nonce: bool,
}

impl OAuthError {
    /// The RFC 6749 §5.2 (and extensions') `error` code: the one place codes are chosen.
    pub fn code(&self) -> ErrorCode {
        match self {
            OAuthError::Request(e) => match e {
                lanyard_core::Error::OAuth(Violation::InvalidResource { .. }) => ErrorCode::InvalidTarget,
                lanyard_core::Error::OAuth(Violation::ScopeSyntax(_)) => ErrorCode::InvalidScope,
                _ => ErrorCode::InvalidRequest,
            },
            OAuthError::InvalidClient { .. } => ErrorCode::InvalidClient,
            OAuthError::UnsupportedGrantType(_) => ErrorCode::UnsupportedGrantType,
            OAuthError::UnauthorizedClient(_) => ErrorCode::UnauthorizedClient,
            OAuthError::InvalidScope(_) => ErrorCode::InvalidScope,
            OAuthError::InvalidTarget(_) => ErrorCode::InvalidTarget,
            OAuthError::Dpop(lanyard_core::Error::OAuth(
                Violation::DpopNonceMissing | Violation::DpopNonceMismatch,
            )) => ErrorCode::UseDpopNonce,
            OAuthError::Dpop(_) | OAuthError::DpopReplay => ErrorCode::InvalidDpopProof,
            OAuthError::BindingRequired(_)
            | OAuthError::ExchangeToken { .. }
            | OAuthError::RevokedToken(_)
            | OAuthError::NotTheTokensClient
            | OAuthError::TokenTypeRefused { .. } => ErrorCode::InvalidRequest,
            OAuthError::Exchange(lanyard_core::Error::OAuth(Violation::ScopeWidened { .. })) => ErrorCode::InvalidScope,
            OAuthError::Exchange(_) => ErrorCode::InvalidRequest,
            OAuthError::AccessToken(_) | OAuthError::AccessTokenRevoked | OAuthError::AccessTokenUnbound => {
                ErrorCode::InvalidToken
            }
            OAuthError::InvalidGrant(_)
            | OAuthError::UntrustedHomeServer(_)
            | OAuthError::GrantReplay
            | OAuthError::HomeKeys(_) => ErrorCode::InvalidGrant,
            OAuthError::Store(StoreError::Full(_)) => ErrorCode::TemporarilyUnavailable,
            OAuthError::Store(_) | OAuthError::Keys(_) | OAuthError::Issue(_) | OAuthError::Setup(_) => {
                ErrorCode::ServerError
            }
        }
    }

    /// A stable lowercase reason (audit lines, metrics, tests): the code's finer cause.
    pub fn kind(&self) -> &'static str {
        match self {
            OAuthError::Request(e)
            | OAuthError::Dpop(e)
            | OAuthError::Issue(e)
            | OAuthError::Exchange(e)
            | OAuthError::AccessToken(e)
            | OAuthError::InvalidGrant(e) => e.kind(),
            OAuthError::AccessTokenRevoked => "revoked",
            OAuthError::AccessTokenUnbound => "unbound_token",
            OAuthError::UntrustedHomeServer(_) => "untrusted_home_server",
            OAuthError::GrantReplay => "grant_replay",
            OAuthError::HomeKeys(_) => "home_keys_unavailable",
            OAuthError::ExchangeToken { reason, .. } => reason.kind(),
            OAuthError::RevokedToken(_) => "revoked",
            OAuthError::NotTheTokensClient => "not_the_tokens_client",
            OAuthError::TokenTypeRefused { .. } => "token_type_refused",
            OAuthError::InvalidClient { reason, .. } => reason.kind(),
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::InvalidScope(_) => "scope_not_registered",
            OAuthError::InvalidTarget(_) => "target_not_registered",
            OAuthError::DpopReplay => "dpop_replay",
            OAuthError::BindingRequired(_) => "binding_required",
            OAuthError::Store(_) => "datastore",
            OAuthError::Keys(_) => "key_management",
            OAuthError::Setup(_) => "setup",
        }
    }

    /// The error response (RFC 6749 §5.2): `used_authorization_header` says whether the
    /// client authenticated with the `Authorization` header, in which case
    /// `invalid_client` carries `WWW-Authenticate: Basic` (RFC 6749 §5.2). Server failures
    /// say nothing of their cause; a failed client authentication names its reason only
    /// when [`ClientAuthError::is_public`] or `client_details` (`[oauth]
    /// client_error_details`) allows it.
    pub fn response(&self, used_authorization_header: bool, client_details: bool) -> WireError {
        let code = self.code();
        let status = code.http_status(Endpoint::AuthorizationServer);
        let description = match self {
            OAuthError::InvalidClient { method, reason } if !client_details && !reason.is_public() => {
                format!("client authentication failed ({method})")
            }
            _ => self.to_string(),
        };
        let body = match code {
            ErrorCode::ServerError => ErrorResponse::new(code.clone()),
            _ => ErrorResponse::new(code.clone()).with_description(description),
        };
        let www_authenticate = (code == ErrorCode::InvalidClient && used_authorization_header)
            .then(|| www_authenticate("Basic", Some(&body), &[("realm", "lanyard")]));
        WireError {
            status,
            dpop_nonce: matches!(code, ErrorCode::UseDpopNonce | ErrorCode::InvalidDpopProof),
            body,
            www_authenticate,
        }
    }

    /// This error as a protected resource of this server answers it (RFC 6750 §3.1, RFC
    /// 9449 §7.1), for a token presented with `scheme`: the server's own failures
    /// (datastore, keys) stay what they are; everything else is a refused access token,
    /// with the DPoP nonce to retry with when the server requires nonces.
    pub(crate) fn at_resource(self, scheme: TokenScheme, dpop_nonce: Option<String>) -> ServerError {
        match self {
            OAuthError::Store(e) => e.into(),
            OAuthError::Keys(e) => e.into(),
            reason => ServerError::AccessToken {
                scheme,
                reason: Box::new(reason),
                dpop_nonce,
            },
        }
    }

    pub(crate) fn client(method: &'static str, reason: ClientAuthError) -> OAuthError {
        OAuthError::InvalidClient { method, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_replay_store_is_temporarily_unavailable() {
        let full = OAuthError::Store(StoreError::Full("no room".into()));
        assert_eq!(full.code(), ErrorCode::TemporarilyUnavailable);
        let broken = OAuthError::Store(StoreError::Inconsistent("broken".into()));
        assert_eq!(broken.code(), ErrorCode::ServerError);
    }
}
