//! The HTTP edge's one error mapping: a [`ServerError`] becomes an HTTP status and an RFC 9457
//! `application/problem+json` body (with the error's stable `kind`). Handlers return
//! `Result<_, ServerError>` and never choose an error status themselves.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::ServerError;

/// The HTTP status for `e` (the one place error statuses are chosen).
fn status(e: &ServerError) -> StatusCode {
    match e {
        ServerError::Invalid(_) | ServerError::Credential(_) | ServerError::Csr(_) => StatusCode::BAD_REQUEST,
        ServerError::NotFound(_) => StatusCode::NOT_FOUND,
        ServerError::Conflict(_) => StatusCode::CONFLICT,
        ServerError::PermissionDenied(_) => StatusCode::FORBIDDEN,
        ServerError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
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
        if status == StatusCode::UNAUTHORIZED {
            // draft-ietf-wimse-wpt-02 §2.1: the one scheme the server authenticates HTTP
            // callers with.
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static(lanyard_core::wimse::WPT_SCHEME),
            );
        }
        response
    }
}
