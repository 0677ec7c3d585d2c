//! Public, unauthenticated HTTP endpoints:
//!
//! | path | what |
//! |---|---|
//! | `/` | entity document: links only, keyed by purpose (SPICE metadata-discovery style) |
//! | `/bundle` | the SPIFFE bundle (SPIFFE_Federation.md `https_web` endpoint; `application/json`) |
//! | `/keys/jwt-svid`, `/keys/wit` | JWK Sets of the JWT-SVID and WIT signing keys (`application/jwk-set+json`) |
//! | `/.well-known/lanyard-configuration` | RFC 8414-style metadata: issuer, the bundle endpoints served, key sets, algorithms |
//! | `/.well-known/wimse-trust-domain` | draft-schwenkschuster-wimse-trust-domain-discovery-00 metadata |
//! | `/keys/sd-cwt`, `/capabilities`, `POST /nonce` | SD-CWT issuer metadata (module `spice`: Lanyard's profile of SPICE metadata discovery) |
//! | `POST /credentials/sd-cwt` | not in this router: `spice::credential_router`, merged by the composition root (it needs the OAuth authorization server) |
//! | `/healthz`, `/readyz` | liveness, readiness (datastore reachable, signing keys active) |
//! | `/metrics` | Prometheus text format |

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::error::ServerError;
use crate::model::AuthorityKind;
use crate::state::AppState;

/// The public router.
pub fn router(state: AppState, metrics: Option<metrics_exporter_prometheus::PrometheusHandle>) -> Router {
    Router::new()
        .route("/", get(entity))
        .merge(super::spice::router(&state))
        .route("/bundle", get(bundle))
        .route("/keys/jwt-svid", get(jwt_keys))
        .route("/keys/wit", get(wit_keys))
        .route("/.well-known/lanyard-configuration", get(configuration))
        .route("/.well-known/wimse-trust-domain", get(wimse_trust_domain))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route(
            "/metrics",
            get(move || {
                let body = metrics
                    .as_ref()
                    .map(metrics_exporter_prometheus::PrometheusHandle::render);
                async move { body.unwrap_or_default() }
            }),
        )
        .with_state(state)
}

fn typed(content_type: &'static str, body: String) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// The entity document: JSON, or a signed CWT with `Accept: application/cwt` (see
/// `spice`).
async fn entity(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Result<Response, ServerError> {
    let u = &s.public_url;
    let mut doc = json!({
        "id": u,
        "trust_domain": s.trust_domain.name(),
        "bundle": format!("{u}/bundle"),
        "keys/jwt-svid": format!("{u}/keys/jwt-svid"),
        "keys/wit": format!("{u}/keys/wit"),
        "configuration": format!("{u}/.well-known/lanyard-configuration"),
    });
    for (purpose, url) in super::spice::entity_links(u) {
        doc[purpose] = url.into();
    }
    super::spice::document(&s, &headers, doc).await
}

/// The trust domain's SPIFFE bundle (`/bundle` here, `/` on the `https_spiffe` endpoint).
pub(crate) async fn bundle(State(s): State<AppState>) -> Result<Response, ServerError> {
    let bundle = s.keys.bundle().await?;
    Ok(typed("application/json", bundle.to_json()))
}

async fn keys(s: &AppState, kind: AuthorityKind) -> Result<Response, ServerError> {
    let set = s.keys.jwks(kind).await?;
    Ok(typed("application/jwk-set+json", set.to_json_pretty()))
}

async fn jwt_keys(State(s): State<AppState>) -> Result<Response, ServerError> {
    keys(&s, AuthorityKind::Jwt).await
}

async fn wit_keys(State(s): State<AppState>) -> Result<Response, ServerError> {
    keys(&s, AuthorityKind::Wit).await
}

/// `/.well-known/lanyard-configuration`. Only what is served is published, never a `null`:
/// `spiffe_bundle_endpoints` lists the SPIFFE bundle endpoints (SPIFFE Federation §5.2)
/// that run, `https_web` (this endpoint's `/bundle`, when it is reached over HTTPS) then
/// `https_spiffe` (`bundle_endpoint_address`, with the SPIFFE ID it authenticates as); the
/// first is repeated as `spiffe_bundle_endpoint`, `spiffe_bundle_endpoint_profile` (and
/// `spiffe_bundle_endpoint_spiffe_id`). Without any, those members are absent and
/// `bundle_uri` still names the bundle document.
async fn configuration(State(s): State<AppState>) -> Response {
    let u = &s.public_url;
    let mut endpoints = Vec::new();
    if u.starts_with("https://") {
        endpoints.push(json!({"url": format!("{u}/bundle"), "profile": "https_web"}));
    }
    if let Some(url) = https_spiffe_url(&s)
        && let Ok(id) = crate::api::tls::server_id(&s.trust_domain)
    {
        endpoints.push(json!({"url": url, "profile": "https_spiffe", "endpoint_spiffe_id": id.as_str()}));
    }
    let mut doc = json!({
        "issuer": u,
        "trust_domain": s.trust_domain.name(),
        "bundle_uri": format!("{u}/bundle"),
        "jwks_uri": format!("{u}/keys/jwt-svid"),
        "wit_jwks_uri": format!("{u}/keys/wit"),
        "jwt_svid_signing_alg_values_supported": ["ES256"],
        "wit_signing_alg_values_supported": ["ES256"],
        "wit_cnf_alg_values_supported": ["ES256", "ES384", "ES512", "EdDSA", "RS256", "PS256"],
        "wit_typ": "wit+jwt",
    });
    if let Some(first) = endpoints.first() {
        doc["spiffe_bundle_endpoint"] = first["url"].clone();
        doc["spiffe_bundle_endpoint_profile"] = first["profile"].clone();
        if let Some(id) = first.get("endpoint_spiffe_id") {
            doc["spiffe_bundle_endpoint_spiffe_id"] = id.clone();
        }
        doc["spiffe_bundle_endpoints"] = endpoints.into();
    }
    typed("application/json", doc.to_string())
}

/// The URL of the `https_spiffe` bundle endpoint when one is served: `https://` and
/// `bundle_endpoint_address`, whose wildcard host (`0.0.0.0`, `[::]`) is replaced by the
/// public URL's host. `None` when the endpoint is not configured (or configured with port 0
/// and not started: `server::start` records the bound address in the configuration).
fn https_spiffe_url(s: &AppState) -> Option<String> {
    let address = s.config.bundle_endpoint_address.as_deref()?;
    let (host, port) = address.rsplit_once(':')?;
    if port.parse::<u16>().ok()? == 0 {
        return None;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let wildcard = bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_unspecified());
    let host = if wildcard {
        let public: axum::http::Uri = s.public_url.parse().ok()?;
        public.host()?.to_owned()
    } else {
        host.to_owned()
    };
    Some(format!("https://{host}:{port}/"))
}

async fn wimse_trust_domain(State(s): State<AppState>) -> Response {
    typed(
        "application/wimse-trust-domain-metadata+json",
        json!({
            "trust_domain": s.trust_domain.name(),
            "trust_bundle_endpoint": format!("{}/bundle", s.public_url),
        })
        .to_string(),
    )
}

async fn ready(State(s): State<AppState>) -> Result<&'static str, ServerError> {
    s.stores.authorities.bundle_sequence().await?;
    s.keys.wit_signer().await?;
    Ok("ready")
}
