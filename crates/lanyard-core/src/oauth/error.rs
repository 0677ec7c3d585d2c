//! OAuth error responses: the `error` codes of RFC 6749 §5.2 and of the specifications
//! that add to them (RFC 8707 §2 / RFC 8693 §2.2.2 `invalid_target`, RFC 9449 §7.1 and §8
//! `invalid_dpop_proof` / `use_dpop_nonce`, RFC 7009 §2.2.1 `unsupported_token_type`,
//! RFC 6750 §3.1 `invalid_token` / `insufficient_scope`), their HTTP status at each kind of
//! endpoint, the JSON error body, and the `WWW-Authenticate` challenge a resource server
//! sends (RFC 6750 §3, RFC 9449 §7.1).
//!
//! `error_description` is for developers, never for secrets: [`ErrorResponse`] keeps it to
//! the characters RFC 6749 §5.2 allows (`%x20-21 / %x23-5B / %x5D-7E`), at most 200 of
//! them, and blanks out anything shaped like a compact JWS, so a token that slipped into a
//! message does not leave the server.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An OAuth `error` code.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `invalid_request` (RFC 6749 §5.2): malformed or missing parameters, a parameter
    /// repeated, more than one client authentication method, an unusable subject token
    /// (RFC 8693 §2.2.2).
    InvalidRequest,
    /// `invalid_client` (RFC 6749 §5.2): client authentication failed.
    InvalidClient,
    /// `invalid_grant` (RFC 6749 §5.2, RFC 7523 §3.1): the grant or assertion is invalid.
    InvalidGrant,
    /// `unauthorized_client` (RFC 6749 §5.2): the client may not use this grant type.
    UnauthorizedClient,
    /// `unsupported_grant_type` (RFC 6749 §5.2).
    UnsupportedGrantType,
    /// `invalid_scope` (RFC 6749 §5.2): the scope is malformed or exceeds what the client
    /// may request.
    InvalidScope,
    /// `invalid_target` (RFC 8707 §2, RFC 8693 §2.2.2): a `resource` or `audience` the
    /// server will not issue for.
    InvalidTarget,
    /// `invalid_dpop_proof` (RFC 9449 §7.1).
    InvalidDpopProof,
    /// `use_dpop_nonce` (RFC 9449 §8, §9): retry with the nonce in `DPoP-Nonce`.
    UseDpopNonce,
    /// `unsupported_token_type` (RFC 7009 §2.2.1): the server cannot revoke that type.
    UnsupportedTokenType,
    /// `invalid_token` (RFC 6750 §3.1): the access token is expired, revoked, malformed or
    /// invalid for this resource.
    InvalidToken,
    /// `insufficient_scope` (RFC 6750 §3.1).
    InsufficientScope,
    /// `server_error`: an internal failure. RFC 6749 §4.1.2.1 defines it for the
    /// authorization endpoint; token endpoints answer it with 500 by common practice.
    ServerError,
    /// `temporarily_unavailable` (RFC 6749 §4.1.2.1, likewise; 503).
    TemporarilyUnavailable,
    /// Another code, kept as received (a client reading a server's error).
    Other(String),
}

/// Which kind of endpoint answers: statuses differ between the authorization server's
/// endpoints and a protected resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// The token, introspection or revocation endpoint.
    AuthorizationServer,
    /// A protected resource checking an access token (RFC 6750 §3.1, RFC 9449 §7.1).
    ResourceServer,
}

impl ErrorCode {
    /// Every known code.
    pub const KNOWN: [ErrorCode; 14] = [
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidClient,
        ErrorCode::InvalidGrant,
        ErrorCode::UnauthorizedClient,
        ErrorCode::UnsupportedGrantType,
        ErrorCode::InvalidScope,
        ErrorCode::InvalidTarget,
        ErrorCode::InvalidDpopProof,
        ErrorCode::UseDpopNonce,
        ErrorCode::UnsupportedTokenType,
        ErrorCode::InvalidToken,
        ErrorCode::InsufficientScope,
        ErrorCode::ServerError,
        ErrorCode::TemporarilyUnavailable,
    ];

    /// The wire string.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::Other(other) => other,
        }
    }

    /// Reads a wire string; unknown codes become [`ErrorCode::Other`].
    pub fn parse(value: &str) -> ErrorCode {
        ErrorCode::KNOWN
            .into_iter()
            .find(|c| c.as_str() == value)
            .unwrap_or_else(|| ErrorCode::Other(value.to_owned()))
    }

    /// The HTTP status for this code at `endpoint`.
    ///
    /// At the authorization server: 401 for `invalid_client` (RFC 6749 §5.2 requires it
    /// when the client used the `Authorization` header, and allows it otherwise; Lanyard
    /// answers 401 always), 500/503 for the server errors, 400 for everything else
    /// (including `invalid_dpop_proof` and `use_dpop_nonce`, RFC 9449 §8). At a resource
    /// server: 401 for `invalid_token`, `invalid_dpop_proof` and `use_dpop_nonce` (RFC
    /// 6750 §3.1, RFC 9449 §7.1 and §9), 403 for `insufficient_scope`, 400 otherwise.
    pub fn http_status(&self, endpoint: Endpoint) -> u16 {
        match (self, endpoint) {
            (ErrorCode::ServerError, _) => 500,
            (ErrorCode::TemporarilyUnavailable, _) => 503,
            (ErrorCode::InvalidClient, Endpoint::AuthorizationServer) => 401,
            (
                ErrorCode::InvalidToken | ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce,
                Endpoint::ResourceServer,
            ) => 401,
            (ErrorCode::InsufficientScope, Endpoint::ResourceServer) => 403,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ErrorCode, D::Error> {
        Ok(ErrorCode::parse(&String::deserialize(d)?))
    }
}

/// The longest `error_description` sent.
pub const MAX_DESCRIPTION_CHARS: usize = 200;

/// An OAuth error response body (RFC 6749 §5.2), serialized without absent members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The code.
    pub error: ErrorCode,
    /// A human-readable explanation, safe to send (see [`ErrorResponse::with_description`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// A page describing the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

impl ErrorResponse {
    /// A response with just the code.
    pub fn new(error: ErrorCode) -> ErrorResponse {
        ErrorResponse {
            error,
            error_description: None,
            error_uri: None,
        }
    }

    /// Adds a description, made safe to send: anything shaped like a compact JWS (three
    /// or more dot-separated base64url runs, 40 characters or more) is replaced by
    /// `[token]`, a `"` becomes `'` (so that quoted values stay readable), other characters
    /// outside RFC 6749 §5.2's set become `?`, and the text is cut to
    /// [`MAX_DESCRIPTION_CHARS`].
    pub fn with_description(mut self, description: impl AsRef<str>) -> ErrorResponse {
        let text = sanitize_description(description.as_ref());
        self.error_description = (!text.is_empty()).then_some(text);
        self
    }

    /// Adds an `error_uri`.
    pub fn with_uri(mut self, uri: impl Into<String>) -> ErrorResponse {
        self.error_uri = Some(uri.into());
        self
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The HTTP status at `endpoint` ([`ErrorCode::http_status`]).
    pub fn http_status(&self, endpoint: Endpoint) -> u16 {
        self.error.http_status(endpoint)
    }
}

fn looks_like_token(word: &str) -> bool {
    let is_b64 = |part: &str| {
        part.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
    };
    let parts: Vec<&str> = word.split('.').collect();
    word.len() >= 40 && parts.len() >= 3 && parts.iter().all(|p| is_b64(p))
}

fn sanitize_description(text: &str) -> String {
    let is_separator = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '(' | ')' | ';');
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(if looks_like_token(word) { "[token]" } else { word });
        word.clear();
    };
    for c in text.chars() {
        if is_separator(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out.chars()
        .map(|c| match c {
            '\u{20}'..='\u{21}' | '\u{23}'..='\u{5b}' | '\u{5d}'..='\u{7e}' => c,
            '"' => '\'',
            _ => '?',
        })
        .take(MAX_DESCRIPTION_CHARS)
        .collect()
}

/// A `WWW-Authenticate` challenge (RFC 6750 §3, RFC 9449 §7.1): `scheme` (`Bearer` or
/// `DPoP`), then `realm`/`algs`/... from `params`, then `error` and `error_description`
/// from `error` when given. Parameter values are quoted; the description is sanitized as
/// in [`ErrorResponse::with_description`], and other values lose `"` and `\`.
pub fn www_authenticate(scheme: &str, error: Option<&ErrorResponse>, params: &[(&str, &str)]) -> String {
    let mut parts: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", value.replace(['"', '\\'], "")))
        .collect();
    if let Some(e) = error {
        parts.push(format!("error=\"{}\"", e.error.as_str().replace(['"', '\\'], "")));
        if let Some(d) = &e.error_description {
            parts.push(format!("error_description=\"{}\"", sanitize_description(d)));
        }
    }
    if parts.is_empty() {
        scheme.to_owned()
    } else {
        format!("{scheme} {}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_with_statuses() {
        for code in ErrorCode::KNOWN {
            assert_eq!(ErrorCode::parse(code.as_str()), code);
        }
        assert_eq!(
            ErrorCode::parse("custom_error"),
            ErrorCode::Other("custom_error".into())
        );
        let at = |c: ErrorCode| {
            (
                c.http_status(Endpoint::AuthorizationServer),
                c.http_status(Endpoint::ResourceServer),
            )
        };
        assert_eq!(at(ErrorCode::InvalidClient), (401, 400));
        assert_eq!(at(ErrorCode::InvalidRequest), (400, 400));
        assert_eq!(at(ErrorCode::UseDpopNonce), (400, 401));
        assert_eq!(at(ErrorCode::InvalidDpopProof), (400, 401));
        assert_eq!(at(ErrorCode::InvalidToken), (400, 401));
        assert_eq!(at(ErrorCode::InsufficientScope), (400, 403));
        assert_eq!(at(ErrorCode::ServerError), (500, 500));
    }

    #[test]
    fn serializes_without_absent_members() {
        let e = ErrorResponse::new(ErrorCode::InvalidTarget);
        assert_eq!(e.to_json(), r#"{"error":"invalid_target"}"#);
        let e = e
            .with_description("resource not allowed")
            .with_uri("https://docs.example/e");
        assert_eq!(
            e.to_json(),
            r#"{"error":"invalid_target","error_description":"resource not allowed","error_uri":"https://docs.example/e"}"#
        );
        let parsed: ErrorResponse = serde_json::from_str(r#"{"error":"use_dpop_nonce"}"#).unwrap();
        assert_eq!(parsed.error, ErrorCode::UseDpopNonce);
    }

    #[test]
    fn descriptions_lose_tokens_and_forbidden_characters() {
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLWJ5dGVzLWhlcmU";
        let e = ErrorResponse::new(ErrorCode::InvalidGrant)
            .with_description(format!("bad \"assertion\" {jwt}, see\nlogs \\ é"));
        let d = e.error_description.unwrap();
        assert!(!d.contains(jwt), "{d}");
        assert_eq!(d, "bad 'assertion' [token], see?logs ? ?");
        let long = "x".repeat(500);
        let e = ErrorResponse::new(ErrorCode::InvalidRequest).with_description(&long);
        assert_eq!(e.error_description.unwrap().len(), MAX_DESCRIPTION_CHARS);
        // Ordinary dotted words are kept.
        let e = ErrorResponse::new(ErrorCode::InvalidRequest).with_description("see rfc6749.section.5.2");
        assert_eq!(e.error_description.as_deref(), Some("see rfc6749.section.5.2"));
    }

    #[test]
    fn challenges() {
        assert_eq!(www_authenticate("Bearer", None, &[]), "Bearer");
        let e = ErrorResponse::new(ErrorCode::InvalidToken).with_description("token expired");
        assert_eq!(
            www_authenticate("DPoP", Some(&e), &[("algs", "ES256 EdDSA")]),
            r#"DPoP algs="ES256 EdDSA", error="invalid_token", error_description="token expired""#
        );
        assert_eq!(
            www_authenticate("Bearer", None, &[("realm", "a\"b\\c")]),
            r#"Bearer realm="abc""#
        );
    }
}
