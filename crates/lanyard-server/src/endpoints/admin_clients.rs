//! The admin API's OAuth client registry (`/v1/oauth/clients`), merged into the admin
//! router: create (the generated secret, for clients with a secret method, is in the
//! answer once and never again), list, show, update, delete. Handlers call
//! [`crate::oauth::clients`] and return [`ServerError`], mapped by `status.rs`. Every
//! client in an answer also shows what its defaults amount to on this server
//! (`effective`: the grant types and the access-token lifetime it actually gets).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::audit;
use crate::error::ServerError;
use crate::model::{OAuthClient, OAuthClientSpec};
use crate::oauth::clients::{self, CreatedClient};
use crate::state::AppState;

/// The client registry routes (state: the admin router's).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/oauth/clients", get(list).post(create))
        .route("/v1/oauth/clients/{client_id}", get(show).put(update).delete(delete))
}

fn audit(action: &str, outcome: &str, client_id: &str) {
    audit::record(audit::Source::Admin, action, outcome, client_id, None);
}

#[derive(Deserialize)]
struct CreateBody {
    client_id: String,
    #[serde(flatten)]
    spec: OAuthClientSpec,
}

/// A client as the admin API shows it: its registration, and under `effective` the grant
/// types it may use and the access-token lifetime it gets here (empty grant types mean
/// `client_credentials`; a lifetime of 0 means the server's, and none exceeds it).
fn view(s: &AppState, client: &OAuthClient) -> Value {
    let mut shown = json!(client);
    shown["effective"] = json!({
        "grant_types": client.spec.allowed_grant_types(),
        "access_token_ttl": client.spec.effective_access_token_ttl(s.config.oauth.access_token_ttl),
    });
    shown
}

/// `{"client": ..., "client_secret": ...}` (the secret only when one was just made).
fn created(s: &AppState, c: CreatedClient, status: StatusCode) -> Response {
    let mut body = json!({ "client": view(s, &c.client) });
    if let Some(secret) = c.secret {
        body["client_secret"] = json!(secret);
    }
    (status, Json(body)).into_response()
}

async fn create(State(s): State<AppState>, Json(body): Json<CreateBody>) -> Result<Response, ServerError> {
    let result = clients::create_client(&s, &body.client_id, body.spec, s.clock.now()).await;
    audit(
        "oauth_client.create",
        result.as_ref().map_or_else(|e| e.kind(), |_| "ok"),
        &body.client_id,
    );
    Ok(created(&s, result?, StatusCode::CREATED))
}

async fn list(State(s): State<AppState>) -> Result<Json<Vec<Value>>, ServerError> {
    let clients = s.stores.clients.list_clients().await?;
    Ok(Json(clients.iter().map(|c| view(&s, c)).collect()))
}

async fn show(State(s): State<AppState>, Path(client_id): Path<String>) -> Result<Json<Value>, ServerError> {
    s.stores
        .clients
        .get_client(&client_id)
        .await?
        .map(|client| Json(view(&s, &client)))
        .ok_or_else(|| ServerError::NotFound(format!("client {client_id:?}")))
}

#[derive(Deserialize)]
struct UpdateBody {
    #[serde(flatten)]
    spec: OAuthClientSpec,
    /// If given, the update fails with 409 when the client's revision differs.
    revision: Option<u64>,
}

async fn update(
    State(s): State<AppState>,
    Path(client_id): Path<String>,
    Json(body): Json<UpdateBody>,
) -> Result<Response, ServerError> {
    let result = clients::update_client(&s, &client_id, body.spec, body.revision).await;
    audit(
        "oauth_client.update",
        result.as_ref().map_or_else(|e| e.kind(), |_| "ok"),
        &client_id,
    );
    Ok(created(&s, result?, StatusCode::OK))
}

async fn delete(State(s): State<AppState>, Path(client_id): Path<String>) -> Result<StatusCode, ServerError> {
    if s.stores.clients.delete_client(&client_id).await? {
        audit("oauth_client.delete", "ok", &client_id);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ServerError::NotFound(format!("client {client_id:?}")))
    }
}
