//! The OAuth authorization server's HTTP edge (thin: extract, call
//! [`AuthorizationServer`], map [`OAuthError`] with [`OAuthError::response`]):
//!
//! | path | what |
//! |---|---|
//! | `POST /oauth/token` | token endpoint (RFC 6749 §3.2, §4.4; DPoP RFC 9449 §5) |
//! | `POST /oauth/introspect` | introspection (RFC 7662), client authentication required |
//! | `POST /oauth/revoke` | revocation (RFC 7009), client authentication required |
//! | `GET /oauth/jwks` | the access-token JWK Set (`jwks_uri`) |
//! | `GET /.well-known/oauth-authorization-server` | metadata (RFC 8414 §3) |
//!
//! Requests must be `application/x-www-form-urlencoded` with a body of at most
//! `[oauth] max_body_bytes`; parameters may not repeat (but `resource` and `audience`).
//! Every answer of the POST endpoints carries `Cache-Control: no-store` (RFC 6749 §5.1),
//! errors are RFC 6749 §5.2 JSON (never problem+json), and every token request, issued
//! or refused, writes one audit line and counts in
//! `lanyard_oauth_token_requests_total{grant, outcome}`.
//!
//! On the mutual-TLS listener, the connection's client certificate chain
//! ([`PeerCertificates`], from `lanyard-net`) is what mutual-TLS client authentication
//! validates and binds tokens to, and [`EndpointBase`] names that listener's URL.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use lanyard_core::oauth::{
    ClientAuthHeaders, ClientAuthentication, Form, FormLimits, TokenHintRequest, TokenRequest, Violation,
    check_content_type, header_once,
};

use crate::audit::{self, TokenEvent};
use lanyard_net::{PeerCertificates, PeerKey};
use rustls::pki_types::CertificateDer;

use crate::oauth::{AuthenticatedClient, AuthorizationServer, DpopContext, OAuthError, paths};

/// The base URL a request came in on, when not the public URL (the mutual-TLS listener's),
/// for DPoP `htu` checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointBase(pub String);

/// The authorization server's routes.
pub fn router(oauth: Arc<AuthorizationServer>) -> Router {
    Router::new()
        .route(paths::TOKEN, post(token))
        .route(paths::INTROSPECT, post(introspect))
        .route(paths::REVOKE, post(revoke))
        .route(paths::JWKS, get(jwks))
        .route(paths::METADATA, get(metadata))
        .with_state(oauth)
}

const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// A JSON answer that must not be cached (RFC 6749 §5.1, RFC 7662 §2.2).
fn no_store(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// The one place an [`OAuthError`] becomes an HTTP response.
fn error_response(s: &AuthorizationServer, e: &OAuthError, used_authorization_header: bool) -> Response {
    let wire = e.response(used_authorization_header, s.state().config.oauth.client_error_details);
    if wire.status >= 500 {
        tracing::error!(error = %e, "oauth request failed");
    }
    let status = StatusCode::from_u16(wire.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = no_store(status, wire.body.to_json());
    if let Some(challenge) = wire.www_authenticate.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
    }
    if wire.dpop_nonce
        && let Ok(nonce) = HeaderValue::from_str(&s.dpop_nonce(s.state().clock.now()))
    {
        r.headers_mut().insert(DPOP_NONCE, nonce);
    }
    r
}

/// A parsed form request: the form, the client authentication it carries, the DPoP
/// header, the connection's client certificate and the URL it was sent to.
struct FormRequest {
    form: Form,
    auth: Result<ClientAuthentication, OAuthError>,
    used_authorization_header: bool,
    dpop: Option<String>,
    certificate: Option<Arc<[CertificateDer<'static>]>>,
    uri: String,
}

/// Reads a form POST within the size limit (RFC 6749 §3.2: form-encoded only, not
/// content-coded). The headers a request carries at most once (`Content-Type`,
/// `Authorization`, `DPoP` (RFC 9449 §4.3), the attestation headers) are refused when
/// repeated rather than read first-wins.
async fn read_form(s: &AuthorizationServer, request: Request<Body>, path: &str) -> Result<FormRequest, OAuthError> {
    let (parts, body) = request.into_parts();
    let headers: &HeaderMap = &parts.headers;
    let text = |name: &'static str| single_header(headers, name).map_err(OAuthError::Request);
    check_content_type(text("Content-Type")?).map_err(OAuthError::Request)?;
    if headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
    {
        return Err(OAuthError::Request(lanyard_core::Error::Header {
            name: "Content-Encoding",
            reason: "is not accepted: send the form without content coding",
        }));
    }
    let limit = s.state().config.oauth.max_body_bytes;
    let too_large = |actual: usize| OAuthError::Request(Violation::FormTooLarge { limit, actual }.into());
    // hyper has checked the framing headers; this only refuses an announced body early.
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        && length > limit
    {
        return Err(too_large(length));
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        if is_length_limit(&e) {
            too_large(limit + 1)
        } else {
            OAuthError::Request(Violation::BodyUnreadable.into())
        }
    })?;
    let form = Form::parse(
        &bytes,
        FormLimits {
            max_bytes: limit,
            ..FormLimits::default()
        },
    )
    .map_err(OAuthError::Request)?;
    let dpop = single_header(headers, "DPoP").map_err(OAuthError::Dpop)?;
    let client_headers = ClientAuthHeaders {
        authorization: text("Authorization")?,
        attestation: text("OAuth-Client-Attestation")?,
        attestation_pop: text("OAuth-Client-Attestation-PoP")?,
    };
    let auth = ClientAuthentication::from_request(&form, &client_headers).map_err(OAuthError::Request);
    // RFC 6749 §5.2: a client that tried the Authorization header (any scheme, even one
    // that could not be read) is answered 401 with a challenge when it fails.
    let used_authorization_header = headers.contains_key(header::AUTHORIZATION);
    let base = parts
        .extensions
        .get::<EndpointBase>()
        .map_or_else(|| s.endpoint(""), |b| b.0.clone());
    Ok(FormRequest {
        auth,
        used_authorization_header,
        dpop: dpop.map(str::to_owned),
        certificate: parts.extensions.get::<PeerCertificates>().map(|p| Arc::clone(&p.0)),
        uri: format!("{}{path}", base.trim_end_matches('/')),
        form,
    })
}

/// [`header_once`] over `headers` (`name` as the specs spell it; the lookup ignores case).
fn single_header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<Option<&'h str>, lanyard_core::Error> {
    header_once(name, headers.get_all(name).iter().map(HeaderValue::as_bytes))
}

/// Whether reading a body failed on the size limit (not on a broken or stalled body).
fn is_length_limit(error: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Characters of a value the requester claims (a `client_id` before authentication, a
/// grant type) that an audit line keeps.
const CLAIMED_CHARS: usize = 256;

/// A value as the requester claims it, for the audit line: at most [`CLAIMED_CHARS`]
/// characters, marked when cut, so that a request cannot make its line as long as its body.
fn claimed(value: &str) -> String {
    match value.char_indices().nth(CLAIMED_CHARS) {
        Some((end, _)) => format!("{}...(cut)", &value[..end]),
        None => value.to_owned(),
    }
}

/// What the audit line of a token request names.
struct Seen {
    remote: Option<PeerKey>,
    client: Option<String>,
    method: String,
    grant: Option<String>,
    jti: Option<String>,
}

impl Seen {
    /// Nothing seen yet but the peer the request's connection came from (set by
    /// `lanyard_net::serve_http`).
    fn of(request: &Request<Body>) -> Seen {
        Seen {
            remote: request.extensions().get::<PeerKey>().copied(),
            client: None,
            method: "none".into(),
            grant: None,
            jti: None,
        }
    }
}

async fn token(State(s): State<Arc<AuthorizationServer>>, request: Request<Body>) -> Response {
    let now = s.state().clock.now();
    let mut seen = Seen::of(&request);
    let mut used_header = false;
    let result = async {
        let r = read_form(&s, request, paths::TOKEN).await?;
        used_header = r.used_authorization_header;
        let auth = r.auth?;
        seen.client = auth.client_id().map(claimed);
        seen.method = crate::oauth::method_name(&auth, r.certificate.is_some()).to_owned();
        let token_request = TokenRequest::from_form(&r.form).map_err(OAuthError::Request)?;
        seen.grant = Some(claimed(token_request.grant.grant_type().as_str()));
        // The DPoP proof is checked first (a missing nonce must not use up the client's
        // assertion) and spent once the client is authenticated (an unauthenticated
        // requester records no one-time value).
        let proof = match &r.dpop {
            Some(proof) => Some(s.check_dpop(
                DpopContext {
                    proof,
                    method: "POST",
                    uri: &r.uri,
                    access_token: None,
                },
                now,
            )?),
            None => None,
        };
        let client: AuthenticatedClient = s.authenticate(&auth, r.certificate.as_deref(), now).await?;
        seen.client = Some(client.client.client_id.clone());
        seen.method = client.method.as_str().to_owned();
        if let Some(proof) = &proof {
            s.spend_dpop(proof, now).await?;
        }
        let outcome = s.token(&token_request, &client, proof.as_ref(), now).await?;
        seen.jti = Some(outcome.jti.clone());
        Ok::<_, OAuthError>((outcome, proof.is_some()))
    }
    .await;
    let grant = seen.grant.clone().unwrap_or_else(|| "-".into());
    let (response, outcome, reason) = match &result {
        Ok((outcome, dpop)) => {
            let mut r = no_store(StatusCode::OK, outcome.response.to_json());
            if *dpop && let Ok(nonce) = HeaderValue::from_str(&s.dpop_nonce(now)) {
                r.headers_mut().insert(DPOP_NONCE, nonce);
            }
            (r, "ok".to_owned(), "-")
        }
        Err(e) => (
            error_response(&s, e, used_header),
            e.code().as_str().to_owned(),
            e.kind(),
        ),
    };
    audit::token(
        &TokenEvent {
            endpoint: "token",
            client: seen.client.as_deref().unwrap_or("-"),
            method: &seen.method,
            grant: &grant,
            jti: seen.jti.as_deref().unwrap_or("-"),
            outcome: &outcome,
            reason,
        },
        seen.remote,
    );
    metrics::counter!("lanyard_oauth_token_requests_total", "grant" => metric_grant(&grant), "outcome" => outcome)
        .increment(1);
    response
}

/// A bounded label: the grant types served, or `other`.
fn metric_grant(grant: &str) -> &'static str {
    match grant {
        "client_credentials" => "client_credentials",
        "urn:ietf:params:oauth:grant-type:token-exchange" => "token_exchange",
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => "jwt_bearer",
        _ => "other",
    }
}

/// Reads a token-hint request (introspection, revocation) and authenticates its client.
async fn hint_request(
    s: &AuthorizationServer,
    request: Request<Body>,
    path: &str,
    used_header: &mut bool,
    seen: &mut Seen,
) -> Result<(TokenHintRequest, AuthenticatedClient), OAuthError> {
    let now = s.state().clock.now();
    let r = read_form(s, request, path).await?;
    *used_header = r.used_authorization_header;
    let auth = r.auth?;
    seen.client = auth.client_id().map(claimed);
    seen.method = crate::oauth::method_name(&auth, r.certificate.is_some()).to_owned();
    let hint = TokenHintRequest::from_form(&r.form).map_err(OAuthError::Request)?;
    let client = s.authenticate(&auth, r.certificate.as_deref(), now).await?;
    seen.client = Some(client.client.client_id.clone());
    Ok((hint, client))
}

fn audit_hint(endpoint: &str, seen: &Seen, result: Result<(), &OAuthError>) {
    let (outcome, reason) = match result {
        Ok(()) => ("ok".to_owned(), "-"),
        Err(e) => (e.code().as_str().to_owned(), e.kind()),
    };
    audit::token(
        &TokenEvent {
            endpoint,
            client: seen.client.as_deref().unwrap_or("-"),
            method: &seen.method,
            grant: "-",
            jti: "-",
            outcome: &outcome,
            reason,
        },
        seen.remote,
    );
}

async fn introspect(State(s): State<Arc<AuthorizationServer>>, request: Request<Body>) -> Response {
    let mut used_header = false;
    let mut seen = Seen::of(&request);
    let result = async {
        let (hint, _client) = hint_request(&s, request, paths::INTROSPECT, &mut used_header, &mut seen).await?;
        s.introspect(hint.token.expose(), s.state().clock.now()).await
    }
    .await;
    audit_hint("introspect", &seen, result.as_ref().map(|_| ()));
    match result {
        Ok(answer) => no_store(StatusCode::OK, answer.to_json()),
        Err(e) => error_response(&s, &e, used_header),
    }
}

async fn revoke(State(s): State<Arc<AuthorizationServer>>, request: Request<Body>) -> Response {
    let mut used_header = false;
    let mut seen = Seen::of(&request);
    let result = async {
        let (hint, client) = hint_request(&s, request, paths::REVOKE, &mut used_header, &mut seen).await?;
        s.revoke(hint.token.expose(), &client.client.client_id, s.state().clock.now())
            .await
    }
    .await;
    audit_hint("revoke", &seen, result.as_ref().map(|_| ()));
    match result {
        // RFC 7009 §2.2: 200 whether or not the token was valid; the body is empty, so it
        // names no content type.
        Ok(_) => {
            let mut r = no_store(StatusCode::OK, String::new());
            r.headers_mut().remove(header::CONTENT_TYPE);
            r
        }
        Err(e) => error_response(&s, &e, used_header),
    }
}

async fn jwks(State(s): State<Arc<AuthorizationServer>>) -> Response {
    match s.jwks().await {
        Ok(set) => {
            let mut r = set.to_json_pretty().into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/jwk-set+json"),
            );
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
            r
        }
        Err(e) => error_response(&s, &e, false),
    }
}

async fn metadata(State(s): State<Arc<AuthorizationServer>>) -> Response {
    match s.metadata().await {
        Ok(m) => {
            let mut r = m.to_json().into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
            r
        }
        Err(e) => error_response(&s, &e, false),
    }
}

#[cfg(test)]
mod tests {
    use super::{CLAIMED_CHARS, claimed};

    #[test]
    fn claimed_values_are_cut_for_the_audit_line() {
        assert_eq!(claimed("billing"), "billing");
        let long = "é".repeat(10_000);
        let cut = claimed(&long);
        assert_eq!(cut.chars().count(), CLAIMED_CHARS + "...(cut)".len());
        assert!(cut.ends_with("...(cut)"));
    }
}
