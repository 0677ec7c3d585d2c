//! The server's error type and its one mapping to HTTP responses.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::datastore::StoreError;

/// Why a server operation failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The request is malformed or breaks a rule (bad identifier, unknown selector type...).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The object already exists or changed concurrently.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller may not do this (banned agent, unauthorized identity, used join token).
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A credential could not be issued.
    #[error(transparent)]
    Credential(#[from] lanyard_core::Error),
    /// The CA or key manager failed.
    #[error("key management: {0}")]
    Keys(String),
    /// The datastore failed.
    #[error("datastore: {0}")]
    Store(String),
}

impl From<StoreError> for ServerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ServerError::NotFound(m),
            StoreError::AlreadyExists(m) | StoreError::Conflict(m) => ServerError::Conflict(m),
            StoreError::Invalid(m) => ServerError::Invalid(m),
            other => ServerError::Store(other.to_string()),
        }
    }
}

impl ServerError {
    /// A stable lowercase code.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerError::Invalid(_) => "invalid_request",
            ServerError::NotFound(_) => "not_found",
            ServerError::Conflict(_) => "conflict",
            ServerError::PermissionDenied(_) => "permission_denied",
            ServerError::Credential(e) => e.kind(),
            ServerError::Keys(_) => "key_management",
            ServerError::Store(_) => "datastore",
        }
    }

    /// The HTTP status for this error (the one place statuses are chosen).
    pub fn status(&self) -> StatusCode {
        match self {
            ServerError::Invalid(_) | ServerError::Credential(_) => StatusCode::BAD_REQUEST,
            ServerError::NotFound(_) => StatusCode::NOT_FOUND,
            ServerError::Conflict(_) => StatusCode::CONFLICT,
            ServerError::PermissionDenied(_) => StatusCode::FORBIDDEN,
            ServerError::Keys(_) | ServerError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status = self.status();
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
        response
    }
}
