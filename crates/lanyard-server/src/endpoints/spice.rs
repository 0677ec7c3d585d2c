//! SD-CWT issuer metadata: Lanyard's profile of SPICE metadata discovery
//! (draft-steele-spice-metadata-discovery-01, an expired individual draft with no working
//! group successor as of 2026-12; the layout below is Lanyard's, following its
//! requirements: URL identifiers, sub-resources by reference only, purpose in the path,
//! content types negotiated by `Accept`, message-level integrity available).
//!
//! | path | what |
//! |---|---|
//! | `/` | the entity document (served by `public`): URLs only, keyed by purpose; this module adds `keys/sd-cwt`, `capabilities` and `nonce`. With `Accept: application/cwt`, the same document as a signed CWT |
//! | `/keys/sd-cwt` | the SD-CWT issuer's keys (PREPARED, ACTIVE, OLD): `application/jwk-set+json` (the default) or `application/cose-key-set` (a COSE_KeySet), by `Accept`; `kid` = the SD-CWT protected header's `kid` (UTF-8 bytes) |
//! | `/capabilities` | credential and presentation types, signature and digest algorithms, confirmation methods, the server's fact claims; `application/json`, or a signed CWT with `Accept: application/cwt` |
//! | `POST /credentials/sd-cwt` | an SD-CWT for the calling workload, authenticated with its WIT-SVID and a WPT (draft-ietf-wimse-wpt-02, audience = this URL), bound to the WIT's `cnf` key; the workload's identity must have exactly one entry (else 409: use the agent). `application/sd-cwt` |
//! | `POST /nonce` | a fresh verifier nonce for an SD-KBT `cnonce` (`{"c_nonce": base64url, "c_nonce_expires_in": s}`, `Cache-Control: no-store`); single replica, in memory |
//!
//! **Signed documents.** A signed response is a COSE_Sign1 (tag 18) with `typ` 61
//! (`application/cwt`) and `kid`, signed by the ACTIVE SD-CWT issuer key, whose payload is
//! a CWT claims set: `iss` (the public URL), `iat`, `exp` (5 minutes, never past the key's
//! life) and `"document"`: the JSON document converted to CBOR (text keys kept). A relying
//! party verifies it with a key from `/keys/sd-cwt`.
//!
//! Anything else in `Accept` is `406 Not Acceptable`; responses carry `Vary: Accept`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lanyard_core::cbor::Value;
use lanyard_core::cose::{CoseKeySet, CoseSign1, header as cose_header};
use lanyard_core::cwt::label;
use lanyard_core::spice::nonce::{InMemoryNonceSource, NonceSource};
use lanyard_core::spice::oidc_claims;
use lanyard_core::spice::sd_cwt::{KBT_MEDIA_TYPE, KBT_TYP, SD_CWT_MEDIA_TYPE, SD_CWT_TYP};
use lanyard_core::wimse::{CarriageConfig, extract_credentials};
use lanyard_core::{
    Algorithm, InMemoryReplayCache, ProofTokens, ReplayCache, TrustStore, UnixTime, WitPolicy, WitVerifier, WptPolicy,
    WptVerifier,
};
use serde_json::{Value as Json, json};

use crate::datastore::EntryFilter;
use crate::error::ServerError;
use crate::model::AuthorityKind;
use crate::sdcwt::FACT_CLAIMS;
use crate::state::AppState;

/// The media type of a JWK Set.
const JWK_SET: &str = "application/jwk-set+json";
/// The media type of a COSE_KeySet (RFC 9052 §7, IANA media types).
const COSE_KEY_SET: &str = "application/cose-key-set";
/// The media type of a CWT (RFC 8392 §9.1).
const CWT: &str = "application/cwt";
/// The CoAP Content-Format of `application/cwt`, the signed documents' `typ`.
const CWT_TYP: i64 = 61;
/// How long a signed document is valid.
const SIGNED_TTL: u64 = 300;
/// How long a verifier nonce is valid.
const NONCE_TTL: u64 = 300;
/// The most nonces outstanding at once.
const MAX_NONCES: usize = 100_000;

/// The SD-CWT metadata routes (merged into the public router).
pub fn router(state: &AppState) -> Router<AppState> {
    let nonces: Arc<dyn NonceSource> = Arc::new(InMemoryNonceSource::new(
        Arc::clone(&state.crypto),
        NONCE_TTL,
        MAX_NONCES,
    ));
    let replay: Arc<dyn ReplayCache> = Arc::new(InMemoryReplayCache::default());
    Router::new()
        .route("/keys/sd-cwt", get(keys))
        .route("/capabilities", get(capabilities))
        .route(
            "/credentials/sd-cwt",
            post(move |State(s): State<AppState>, headers: HeaderMap| {
                let replay = Arc::clone(&replay);
                async move { credential(&s, &headers, replay).await }
            }),
        )
        .route(
            "/nonce",
            post(move |State(s): State<AppState>| {
                let nonces = Arc::clone(&nonces);
                async move { nonce(&s, nonces.as_ref()) }
            }),
        )
}

/// The entity document's links to this module's resources.
pub fn entity_links(public_url: &str) -> [(&'static str, String); 3] {
    [
        ("keys/sd-cwt", format!("{public_url}/keys/sd-cwt")),
        ("capabilities", format!("{public_url}/capabilities")),
        ("nonce", format!("{public_url}/nonce")),
    ]
}

/// The first of `offered` the client accepts (in the client's order; `*/*`, `type/*` or
/// no `Accept` picks the first offered), or `None` (406). Parameters other than `q=0`
/// are ignored.
fn negotiate(headers: &HeaderMap, offered: &[&'static str]) -> Option<&'static str> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return offered.first().copied();
    };
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        if parts.any(|p| p.replace(' ', "") == "q=0") {
            continue;
        }
        let found = offered.iter().find(|o| {
            media == **o || media == "*/*" || media.strip_suffix("/*").is_some_and(|t| o.split('/').next() == Some(t))
        });
        if let Some(found) = found {
            return Some(found);
        }
    }
    None
}

fn respond(content_type: &'static str, body: Vec<u8>) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("accept"));
    r
}

fn not_acceptable(offered: &[&str]) -> Response {
    let mut r = (
        StatusCode::NOT_ACCEPTABLE,
        format!("acceptable: {}", offered.join(", ")),
    )
        .into_response();
    r.headers_mut().insert(header::VARY, HeaderValue::from_static("accept"));
    r
}

/// `/keys/sd-cwt`.
async fn keys(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ServerError> {
    const OFFERED: [&str; 3] = [JWK_SET, "application/json", COSE_KEY_SET];
    let Some(media) = negotiate(&headers, &OFFERED) else {
        return Ok(not_acceptable(&OFFERED));
    };
    let jwks = s.keys.jwks(AuthorityKind::SdCwt).await?;
    if media == COSE_KEY_SET {
        let mut set = CoseKeySet::from_jwk_set(&jwks)?;
        for key in &mut set.keys {
            key.alg.get_or_insert(Algorithm::ES256);
        }
        return Ok(respond(COSE_KEY_SET, set.to_vec()));
    }
    Ok(respond(JWK_SET, jwks.to_json_pretty().into_bytes()))
}

/// The capabilities document.
fn capabilities_document(s: &AppState) -> Json {
    let u = &s.public_url;
    let algs: Vec<Json> = Algorithm::every()
        .map(|a| json!({"name": a.as_str(), "cose": a.cose_id()}))
        .collect();
    json!({
        "id": u,
        "credential_types": [{"media_type": SD_CWT_MEDIA_TYPE, "typ": SD_CWT_TYP}],
        "presentation_types": [{"media_type": KBT_MEDIA_TYPE, "typ": KBT_TYP}],
        "alg_values_supported": [{"name": "ES256", "cose": Algorithm::ES256.cose_id()}],
        "kbt_alg_values_supported": algs,
        "sd_alg_values_supported": [{"name": "sha-256", "cose": -16}],
        "sd_digest_input": "full-item",
        "sd_aead_values_supported": [],
        "cnf_methods_supported": ["COSE_Key"],
        "fact_claims": FACT_CLAIMS,
        "keys/sd-cwt": format!("{u}/keys/sd-cwt"),
        "nonce": format!("{u}/nonce"),
    })
}

/// `/capabilities`.
async fn capabilities(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ServerError> {
    document(&s, &headers, capabilities_document(&s)).await
}

/// Serves `doc` as JSON or, when asked, as a signed CWT.
pub async fn document(s: &AppState, headers: &HeaderMap, doc: Json) -> Result<Response, ServerError> {
    const OFFERED: [&str; 2] = ["application/json", CWT];
    match negotiate(headers, &OFFERED) {
        Some(CWT) => Ok(respond(CWT, signed(s, &doc).await?)),
        Some(_) => Ok(respond("application/json", doc.to_string().into_bytes())),
        None => Ok(not_acceptable(&OFFERED)),
    }
}

/// `doc` in a CWT signed by the ACTIVE SD-CWT issuer key.
async fn signed(s: &AppState, doc: &Json) -> Result<Vec<u8>, ServerError> {
    let now = s.clock.now();
    let ttl = SIGNED_TTL.min(s.keys.max_ttl(AuthorityKind::SdCwt, now).await?);
    let (key, kid) = s.keys.sd_cwt_signer().await?;
    let mut wrapped = serde_json::Map::new();
    wrapped.insert("document".into(), doc.clone());
    let document = oidc_claims::json_to_cbor(&wrapped)?;
    let time = |t: UnixTime| Value::int(i64::try_from(t.as_secs()).unwrap_or(i64::MAX));
    let mut claims = vec![
        (Value::int(label::ISS), Value::text(s.public_url.as_str())),
        (Value::int(label::IAT), time(now)),
        (Value::int(label::EXP), time(now.plus(ttl))),
    ];
    claims.extend(document.as_map().unwrap_or_default().iter().cloned());
    let protected = vec![
        (Value::int(cose_header::KID), Value::bytes(kid.into_bytes())),
        (Value::int(cose_header::TYP), Value::int(CWT_TYP)),
    ];
    let token = CoseSign1::sign(protected, Vec::new(), Value::Map(claims).to_vec(), key.as_ref())?;
    Ok(token.to_vec())
}

/// `POST /nonce`.
fn nonce(s: &AppState, nonces: &dyn NonceSource) -> Result<Response, ServerError> {
    let nonce = nonces.issue(s.clock.now())?;
    let body = json!({
        "c_nonce": URL_SAFE_NO_PAD.encode(&nonce),
        "c_nonce_expires_in": NONCE_TTL,
    });
    let mut r = respond("application/json", body.to_string().into_bytes());
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `POST /credentials/sd-cwt`: verifies the caller's WIT-SVID (against this trust domain's
/// bundle) and WPT, finds its one entry, and issues an SD-CWT bound to the WIT's key.
async fn credential(s: &AppState, headers: &HeaderMap, replay: Arc<dyn ReplayCache>) -> Result<Response, ServerError> {
    let view: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
    let presented =
        extract_credentials(view.iter().copied(), &CarriageConfig::default()).map_err(ServerError::Unauthenticated)?;
    let trust = Arc::new(TrustStore::new(Arc::clone(&s.crypto)));
    trust.set_bundle(&s.keys.bundle().await?)?;
    let verifier = WptVerifier::new(
        WitVerifier::new(trust, WitPolicy::wit_svid()),
        WptPolicy::default(),
        replay,
    );
    let tokens = ProofTokens {
        wit: presented.wit,
        wpt: presented.wpt,
        access_token: presented.access_token,
        txn_token: presented.txn_token,
        other_tokens: &[],
    };
    let audience = format!("{}/credentials/sd-cwt", s.public_url);
    let proof = verifier
        .verify(&tokens, &audience, s.clock.now())
        .map_err(ServerError::Unauthenticated)?;
    let filter = EntryFilter {
        parent_id: None,
        spiffe_id: Some(proof.wit.sub.as_str().to_owned()),
    };
    let mut entries = s.stores.entries.list_entries(&filter).await?;
    let entry = match (entries.pop(), entries.is_empty()) {
        (Some(entry), true) => entry,
        (None, _) => {
            return Err(ServerError::PermissionDenied(format!("{} has no entry", proof.wit.sub)));
        }
        (Some(_), false) => {
            return Err(ServerError::Conflict(format!(
                "{} has several entries (one per node); fetch the SD-CWT through the agent",
                proof.wit.sub
            )));
        }
    };
    let minted = crate::sdcwt::mint_sd_cwt(s, &entry, &proof.wit.cnf_jwk, None).await?;
    let mut r = respond(SD_CWT_MEDIA_TYPE, minted.token);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
