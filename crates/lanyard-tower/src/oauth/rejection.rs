//! The one place where access-token failures become HTTP responses (RFC 6750 §3, RFC 9449
//! §7.1 and §9), and the metric that counts every outcome.

use axum::response::{IntoResponse, Response};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use lanyard_core::Error as CoreError;
use lanyard_core::oauth::{Endpoint, ErrorCode, ErrorResponse, Scope, TokenScheme, Violation, www_authenticate};

/// The `DPoP-Nonce` response header (RFC 9449 §8.1).
pub(super) const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// Why a request was refused.
#[derive(Debug)]
pub(super) enum Rejection {
    /// No access token at all (RFC 6750 §3.1: a challenge without an error code).
    Missing,
    /// The `Authorization` field is malformed or repeated (`invalid_request`, 400).
    InvalidRequest(CoreError),
    /// The token failed verification, or its binding (`invalid_token`, 401).
    InvalidToken(TokenScheme, CoreError),
    /// The DPoP proof failed (`invalid_dpop_proof`, 401).
    InvalidDpopProof(CoreError),
    /// The proof lacks the current server nonce (`use_dpop_nonce`, 401 + `DPoP-Nonce`).
    UseDpopNonce(CoreError),
    /// The token lacks a scope the route requires (`insufficient_scope`, 403).
    InsufficientScope(TokenScheme, Scope),
    /// The authorization server's keys or the replay store are unavailable (503).
    Unavailable(String),
    /// A handler asked for the token on a route without the layer (500).
    NotConfigured,
}

/// What the challenges of one layer say.
#[derive(Clone, Debug, Default)]
pub(super) struct Challenge {
    /// `realm`, if configured.
    pub realm: Option<String>,
    /// The DPoP `algs` parameter (space-separated).
    pub dpop_algs: String,
    /// Whether a `Bearer` challenge is offered.
    pub bearer: bool,
}

pub(super) fn count(scheme: Option<TokenScheme>, outcome: &'static str) {
    let scheme = match scheme {
        Some(TokenScheme::Bearer) => "bearer",
        Some(TokenScheme::Dpop) => "dpop",
        None => "none",
    };
    metrics::counter!("lanyard_access_token_total", "scheme" => scheme, "outcome" => outcome).increment(1);
}

impl Rejection {
    /// A failure of the token itself or of its binding: a DPoP proof key other than the
    /// one `cnf.jkt` names is a proof failure, everything else an `invalid_token`.
    pub(super) fn token(scheme: TokenScheme, e: CoreError) -> Rejection {
        match &e {
            CoreError::OAuth(Violation::ConfirmationMismatch { member: "jkt", .. }) => Rejection::InvalidDpopProof(e),
            _ => Rejection::InvalidToken(scheme, e),
        }
    }

    /// A failure reading `Authorization` / `DPoP`.
    pub(super) fn header(e: CoreError) -> Rejection {
        match &e {
            CoreError::Header { name, .. } if name.eq_ignore_ascii_case("dpop") => Rejection::InvalidDpopProof(e),
            _ => Rejection::InvalidRequest(e),
        }
    }

    /// A failure of the DPoP proof.
    pub(super) fn proof(e: CoreError) -> Rejection {
        match &e {
            CoreError::OAuth(Violation::DpopNonceMissing | Violation::DpopNonceMismatch) => Rejection::UseDpopNonce(e),
            CoreError::ReplayCacheFull { .. } => Rejection::Unavailable(e.to_string()),
            _ => Rejection::InvalidDpopProof(e),
        }
    }

    /// The OAuth code, the scheme the challenge carries it in, and the error (if any).
    fn parts(&self) -> (ErrorCode, Option<TokenScheme>, Option<&CoreError>) {
        match self {
            Rejection::Missing => (ErrorCode::InvalidToken, None, None),
            Rejection::InvalidRequest(e) => (ErrorCode::InvalidRequest, Some(TokenScheme::Bearer), Some(e)),
            Rejection::InvalidToken(s, e) => (ErrorCode::InvalidToken, Some(*s), Some(e)),
            Rejection::InvalidDpopProof(e) => (ErrorCode::InvalidDpopProof, Some(TokenScheme::Dpop), Some(e)),
            Rejection::UseDpopNonce(e) => (ErrorCode::UseDpopNonce, Some(TokenScheme::Dpop), Some(e)),
            Rejection::InsufficientScope(s, _) => (ErrorCode::InsufficientScope, Some(*s), None),
            Rejection::Unavailable(_) => (ErrorCode::TemporarilyUnavailable, None, None),
            Rejection::NotConfigured => (ErrorCode::ServerError, None, None),
        }
    }

    /// The response, with the layer's challenges and, for DPoP, the current nonce.
    pub(super) fn into_response(
        self,
        challenge: &Challenge,
        scheme: Option<TokenScheme>,
        nonce: Option<&str>,
    ) -> Response {
        let (code, error_scheme, error) = self.parts();
        let outcome = match &self {
            Rejection::Missing => "missing",
            _ => static_code(&code),
        };
        count(scheme, outcome);
        if let Some(e) = error {
            // Kinds and codes only: never the token, the proof or the error text.
            tracing::info!(code = code.as_str(), kind = e.kind(), "access token refused");
        } else if !matches!(self, Rejection::Missing) {
            tracing::info!(code = code.as_str(), "access token refused");
        }
        let description = match &self {
            Rejection::Missing => None,
            Rejection::InsufficientScope(_, required) => Some(format!("this route requires the scope \"{required}\"")),
            Rejection::Unavailable(reason) => {
                tracing::warn!(reason = ?reason.to_string(), "access token cannot be checked");
                Some("the token cannot be checked now; retry later".to_owned())
            }
            Rejection::NotConfigured => Some("the route has no AccessTokenLayer".to_owned()),
            _ => error.map(ToString::to_string),
        };
        let body = description.map_or_else(
            || ErrorResponse::new(code.clone()),
            |d| ErrorResponse::new(code.clone()).with_description(d),
        );
        let status = StatusCode::from_u16(code.http_status(Endpoint::ResourceServer))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut headers = HeaderMap::new();
        let realm = challenge.realm.as_deref().map(|r| ("realm", r));
        let with_error = !matches!(
            self,
            Rejection::Missing | Rejection::Unavailable(_) | Rejection::NotConfigured
        );
        let scope = match &self {
            Rejection::InsufficientScope(_, required) => Some(required.to_string()),
            _ => None,
        };
        let offer = |s: TokenScheme| match s {
            TokenScheme::Bearer => challenge.bearer || error_scheme == Some(TokenScheme::Bearer),
            TokenScheme::Dpop => true,
        };
        if !matches!(self, Rejection::NotConfigured) {
            for s in [TokenScheme::Bearer, TokenScheme::Dpop]
                .into_iter()
                .filter(|s| offer(*s))
            {
                let mut params: Vec<(&str, &str)> = realm.into_iter().collect();
                if s == TokenScheme::Dpop && !challenge.dpop_algs.is_empty() {
                    params.push(("algs", &challenge.dpop_algs));
                }
                let carries = with_error && error_scheme == Some(s);
                if carries && let Some(scope) = &scope {
                    params.push(("scope", scope));
                }
                let value = www_authenticate(s.as_str(), carries.then_some(&body), &params);
                if let Ok(v) = HeaderValue::try_from(value) {
                    headers.append(http::header::WWW_AUTHENTICATE, v);
                }
            }
        }
        if let Some(n) = nonce.and_then(|n| HeaderValue::try_from(n).ok()) {
            headers.insert(DPOP_NONCE, n);
        }
        respond(status, &body, headers)
    }

    /// The response of a rejection outside a layer (no challenges).
    pub(super) fn into_bare_response(self) -> Response {
        self.into_response(&Challenge::default(), None, None)
    }
}

fn static_code(code: &ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidRequest => "invalid_request",
        ErrorCode::InvalidToken => "invalid_token",
        ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
        ErrorCode::UseDpopNonce => "use_dpop_nonce",
        ErrorCode::InsufficientScope => "insufficient_scope",
        ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        _ => "server_error",
    }
}

fn respond(status: StatusCode, body: &ErrorResponse, headers: HeaderMap) -> Response {
    let mut response = (status, body.to_json()).into_response();
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
        .headers_mut()
        .insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().extend(headers);
    response
}
