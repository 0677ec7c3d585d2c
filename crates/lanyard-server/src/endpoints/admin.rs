//! The admin API: REST with JSON bodies, served only on a local Unix socket (mode 0600),
//! so only the server's own user (and root) can reach it. Its OpenAPI document is at
//! `GET /openapi.json`.
//!
//! Every change is written as an audit event (`target: "audit"`): action, outcome, and
//! the object's identifiers, never secrets.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use lanyard_core::{Jwk, SpiffeId, UnixTime, WorkloadId};

use crate::attest::join_token;
use crate::audit;
use crate::datastore::EntryFilter;
use crate::entries;
use crate::error::ServerError;
use crate::issue;
use crate::model::{Entry, EntrySpec};
use crate::state::AppState;

/// Largest admin request body.
const MAX_BODY: usize = 1 << 20;

/// The admin router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/v1/entries", post(create_entry).get(list_entries))
        .route("/v1/entries/batch", post(create_entries))
        .route(
            "/v1/entries/{id}",
            get(get_entry).put(update_entry).delete(delete_entry),
        )
        .route("/v1/join-tokens", post(create_join_token))
        .route("/v1/agents", get(list_agents))
        .route("/v1/agents/ban", post(ban_agent))
        .route("/v1/wits", post(mint_wit))
        .route("/v1/jwt-svids", post(mint_jwt_svid))
        .route("/v1/bundle", get(bundle))
        .merge(super::admin_clients::routes())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn audit(action: &str, outcome: &str, subject: &str) {
    audit::record(audit::Source::Admin, action, outcome, subject, None);
}

/// The entry rules, with this server's trust domain and CA lifetime.
fn validate(s: &AppState, spec: &EntrySpec) -> Result<(), ServerError> {
    entries::validate_entry(spec, &s.trust_domain, s.config.ca_ttl)
}

async fn create_entry(State(s): State<AppState>, Json(spec): Json<EntrySpec>) -> Result<Response, ServerError> {
    let result = async {
        validate(&s, &spec)?;
        Ok::<_, ServerError>(s.stores.entries.create_entry(&spec, s.clock.now()).await?)
    }
    .await;
    match result {
        Ok(entry) => {
            audit("entry.create", "ok", &entry.id);
            Ok((StatusCode::CREATED, Json(entry)).into_response())
        }
        Err(e) => {
            audit("entry.create", e.kind(), spec.spiffe_id.as_str());
            Err(e)
        }
    }
}

async fn create_entries(State(s): State<AppState>, Json(specs): Json<Vec<EntrySpec>>) -> Result<Response, ServerError> {
    for (i, spec) in specs.iter().enumerate() {
        validate(&s, spec).map_err(|e| ServerError::Invalid(format!("entry {i}: {e}")))?;
    }
    let entries = s
        .stores
        .entries
        .create_entries(&specs, s.clock.now())
        .await
        .inspect_err(|e| {
            audit("entry.create_batch", e.to_string().as_str(), &specs.len().to_string());
        })?;
    audit("entry.create_batch", "ok", &entries.len().to_string());
    Ok((StatusCode::CREATED, Json(entries)).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    parent_id: Option<String>,
    spiffe_id: Option<String>,
}

async fn list_entries(State(s): State<AppState>, Query(q): Query<ListQuery>) -> Result<Json<Vec<Entry>>, ServerError> {
    let parent_id = q
        .parent_id
        .map(|p| SpiffeId::parse(&p).map_err(|e| ServerError::Invalid(format!("parent_id: {e}"))))
        .transpose()?;
    let filter = EntryFilter {
        parent_id,
        spiffe_id: q.spiffe_id,
    };
    Ok(Json(s.stores.entries.list_entries(&filter).await?))
}

async fn get_entry(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Entry>, ServerError> {
    s.stores
        .entries
        .get_entry(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ServerError::NotFound(format!("entry {id}")))
}

#[derive(Deserialize)]
struct UpdateBody {
    #[serde(flatten)]
    spec: EntrySpec,
    /// If given, the update fails with 409 when the entry's revision differs.
    revision: Option<u64>,
}

async fn update_entry(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<UpdateBody>,
) -> Result<Json<Entry>, ServerError> {
    validate(&s, &body.spec)?;
    let entry = s
        .stores
        .entries
        .update_entry(&id, &body.spec, body.revision)
        .await
        .inspect_err(|e| {
            audit("entry.update", &e.to_string(), &id);
        })?;
    audit("entry.update", "ok", &id);
    Ok(Json(entry))
}

async fn delete_entry(State(s): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ServerError> {
    if s.stores.entries.delete_entry(&id).await? {
        audit("entry.delete", "ok", &id);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ServerError::NotFound(format!("entry {id}")))
    }
}

#[derive(Deserialize, Default)]
struct JoinTokenBody {
    ttl: Option<u64>,
}

async fn create_join_token(
    State(s): State<AppState>,
    body: Option<Json<JoinTokenBody>>,
) -> Result<Response, ServerError> {
    let ttl = body.and_then(|b| b.0.ttl).unwrap_or(s.config.join_token_ttl);
    let (token, expires_at) = new_join_token(&s, ttl).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": token, "expires_at": expires_at})),
    )
        .into_response())
}

/// Creates a one-time join token valid for `ttl` seconds (1 s to 7 days), as
/// `POST /v1/join-tokens` does. Returns the token (shown once; only its SHA-256 is
/// stored) and its expiry.
pub async fn new_join_token(s: &AppState, ttl: u64) -> Result<(String, UnixTime), ServerError> {
    let (token, expires_at) = join_token::create(&*s.stores.join_tokens, &*s.crypto, ttl, s.clock.now()).await?;
    audit(
        "join_token.create",
        "ok",
        &lanyard_api::node::join_token_id(&token, &*s.crypto),
    );
    Ok((token, expires_at))
}

async fn list_agents(State(s): State<AppState>) -> Result<Response, ServerError> {
    Ok(Json(s.stores.agents.list_agents().await?).into_response())
}

#[derive(Deserialize)]
struct BanBody {
    id: String,
}

async fn ban_agent(State(s): State<AppState>, Json(body): Json<BanBody>) -> Result<StatusCode, ServerError> {
    let id = SpiffeId::parse(&body.id).map_err(|e| ServerError::Invalid(format!("id: {e}")))?;
    if s.stores.agents.ban_agent(&id).await? {
        audit("agent.ban", "ok", id.as_str());
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ServerError::NotFound(format!("agent {id}")))
    }
}

#[derive(Deserialize)]
struct WitBody {
    spiffe_id: String,
    cnf: Jwk,
    ttl: Option<u64>,
}

async fn mint_wit(State(s): State<AppState>, Json(body): Json<WitBody>) -> Result<Response, ServerError> {
    let sub = WorkloadId::parse(&body.spiffe_id).map_err(|e| ServerError::Invalid(format!("spiffe_id: {e}")))?;
    let wit = issue::mint_wit(&s, &sub, &body.cnf, body.ttl).await?.token;
    audit("wit.mint", "ok", sub.as_str());
    Ok(Json(json!({"wit": wit})).into_response())
}

#[derive(Deserialize)]
struct JwtSvidBody {
    spiffe_id: String,
    audience: String,
    ttl: Option<u64>,
}

async fn mint_jwt_svid(State(s): State<AppState>, Json(body): Json<JwtSvidBody>) -> Result<Response, ServerError> {
    let sub = SpiffeId::parse(&body.spiffe_id).map_err(|e| ServerError::Invalid(format!("spiffe_id: {e}")))?;
    let token = issue::mint_jwt_svid(&s, &sub, &[body.audience.as_str()], body.ttl)
        .await?
        .token;
    audit("jwt_svid.mint", "ok", sub.as_str());
    Ok(Json(json!({"token": token})).into_response())
}

async fn bundle(State(s): State<AppState>) -> Result<Response, ServerError> {
    let bundle = s.keys.bundle().await?;
    Ok(([(http::header::CONTENT_TYPE, "application/json")], bundle.to_json()).into_response())
}

async fn openapi() -> impl IntoResponse {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}
