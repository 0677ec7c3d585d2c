//! The HTTP edge's one error mapping: a [`ServerError`] becomes an HTTP status and an RFC 9457
//! `application/problem+json` body (with the error's stable `kind`), plus the
//! `WWW-Authenticate` challenges of a 401 (and RFC 6750's for a refused access token).
//! Handlers return `Result<_, ServerError>` and never choose an error status themselves.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use lanyard_core::oauth::{DpopPolicy, Endpoint, ErrorCode, ErrorResponse, TokenScheme, alg_values, www_authenticate};

use crate::error::ServerError;

/// The HTTP status for `e` (the one place error statuses are chosen).
fn status(e: &ServerError) -> StatusCode {
    match e {
        ServerError::Invalid(_) | ServerError::Credential(_) | ServerError::Csr(_) => StatusCode::BAD_REQUEST,
        ServerError::NotFound(_) => StatusCode::NOT_FOUND,
        ServerError::Conflict(_) => StatusCode::CONFLICT,
        ServerError::PermissionDenied(_) => StatusCode::FORBIDDEN,
        ServerError::Unauthenticated(_) | ServerError::ClientCertificate(_) => StatusCode::UNAUTHORIZED,
        ServerError::AccessToken { reason, .. } => {
            StatusCode::from_u16(reason.code().http_status(Endpoint::ResourceServer))
                .unwrap_or(StatusCode::UNAUTHORIZED)
        }
        ServerError::Store(crate::datastore::StoreError::Full(_)) => StatusCode::SERVICE_UNAVAILABLE,
        ServerError::Keys(_)
        | ServerError::X509 { .. }
        | ServerError::Tls(_)
        | ServerError::Store(_)
        | ServerError::Transport(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status = status(&self);
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": self.to_string(),
            "kind": self.kind(),
        });
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/problem+json"),
        );
        for challenge in challenges(&self) {
            if let Ok(value) = http::HeaderValue::from_str(&challenge) {
                response.headers_mut().append(http::header::WWW_AUTHENTICATE, value);
            }
        }
        if let ServerError::AccessToken {
            reason,
            dpop_nonce: Some(nonce),
            ..
        } = &self
            && matches!(reason.code(), ErrorCode::UseDpopNonce | ErrorCode::InvalidDpopProof)
            && let Ok(value) = http::HeaderValue::from_str(nonce)
        {
            response
                .headers_mut()
                .insert(http::HeaderName::from_static("dpop-nonce"), value);
        }
        response
    }
}

/// The `WWW-Authenticate` challenges of an error: a refused access token gets one for its
/// scheme with the RFC 6750 / RFC 9449 error; other authentication failures list the
/// schemes HTTP callers authenticate with: `WPT` (draft-ietf-wimse-wpt-02 §2.1) and `DPoP`
/// (RFC 9449 §7.1, with `algs`); a refused client certificate gets the same list, as no
/// HTTP scheme names a certificate.
fn challenges(e: &ServerError) -> Vec<String> {
    let dpop_algs = || alg_values(DpopPolicy::default().algorithms).join(" ");
    match e {
        ServerError::AccessToken { scheme, reason, .. } => {
            let body = ErrorResponse::new(reason.code()).with_description(reason.to_string());
            let algs = dpop_algs();
            let params: &[(&str, &str)] = match scheme {
                TokenScheme::Dpop => &[("algs", algs.as_str())],
                TokenScheme::Bearer => &[],
            };
            vec![www_authenticate(scheme.as_str(), Some(&body), params)]
        }
        ServerError::Unauthenticated(_) | ServerError::ClientCertificate(_) => vec![
            lanyard_core::wimse::WPT_SCHEME.to_owned(),
            www_authenticate(TokenScheme::Dpop.as_str(), None, &[("algs", &dpop_algs())]),
        ],
        _ => Vec::new(),
    }
}
