//! The one place where authentication failures become HTTP responses, and the metric
//! that counts every outcome.

use axum::response::{IntoResponse, Response};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use lanyard_core::wimse::WPT_SCHEME;

use super::config::{AuthMode, Modes, WorkloadAuthConfig};

/// Why a request was refused.
pub(super) enum Rejection {
    /// No credentials for any enabled mode.
    Missing,
    /// Credentials were presented and failed.
    Failed(AuthMode, lanyard_core::Error),
    /// The body could not be read or is too large.
    Body(String),
}

pub(super) fn count(mode: &'static str, outcome: &'static str) {
    metrics::counter!("lanyard_workload_auth_total", "mode" => mode, "outcome" => outcome).increment(1);
}

/// An RFC 9457 problem-details response.
pub(crate) fn problem(status: StatusCode, kind: &str, detail: &str, extra: &HeaderMap) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "kind": kind,
    });
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    for (name, value) in extra {
        response.headers_mut().append(name, value.clone());
    }
    response
}

/// What to ask for: `WWW-Authenticate: WPT` and/or an `Accept-Signature` template.
fn challenges(modes: Modes) -> HeaderMap {
    let mut h = HeaderMap::new();
    if modes.wpt {
        h.insert(http::header::WWW_AUTHENTICATE, HeaderValue::from_static(WPT_SCHEME));
    }
    if modes.http_signature {
        h.insert(
            HeaderName::from_static("accept-signature"),
            HeaderValue::from_static(
                "wimse=(\"@method\" \"@path\" \"@query\" \"workload-identity-token\");tag=\"wimse-workload-to-workload\"",
            ),
        );
    }
    h
}

impl Rejection {
    /// The one place where authentication failures become HTTP responses.
    pub(super) fn into_response(self, config: &WorkloadAuthConfig) -> Response {
        let modes = config.modes;
        match self {
            Rejection::Missing => {
                count("none", "missing");
                let status = if modes.wpt {
                    StatusCode::UNAUTHORIZED
                } else if modes.http_signature {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::FORBIDDEN
                };
                let detail = match (modes.wpt, modes.http_signature, modes.mtls) {
                    (false, false, true) => "a client certificate (X.509-SVID) is required",
                    _ => {
                        "no workload credentials: send a Workload-Identity-Token with a WPT or an HTTP message signature"
                    }
                };
                problem(status, "missing_credentials", detail, &challenges(modes))
            }
            Rejection::Failed(mode, e) => {
                count(mode.as_str(), e.kind());
                tracing::info!(mode = mode.as_str(), kind = e.kind(), "workload authentication failed");
                let (status, extra) = match mode {
                    AuthMode::HttpSignature => (StatusCode::BAD_REQUEST, challenges(Modes { wpt: false, ..modes })),
                    _ => (
                        StatusCode::UNAUTHORIZED,
                        challenges(Modes {
                            http_signature: false,
                            ..modes
                        }),
                    ),
                };
                problem(status, e.kind(), &e.to_string(), &extra)
            }
            Rejection::Body(detail) => {
                count("http_signature", "body");
                problem(StatusCode::PAYLOAD_TOO_LARGE, "body", &detail, &HeaderMap::new())
            }
        }
    }
}
