//! A key host on loopback (feature `key-host`): a small HTTP server that publishes a JWK Set
//! the test can replace, for the code that fetches keys from the network (a client's
//! `jwks_uri`, a trusted issuer's discovery document, a resource server's authorization
//! server).
//!
//! It serves, at `http://127.0.0.1:<port>` (its [`issuer`](KeyHost::issuer)):
//! - `/jwks`: the JWK Set last [published](KeyHost::publish), or 503 while the host is
//!   [down](KeyHost::set_down); each request is counted ([`fetches`](KeyHost::fetches));
//! - `/.well-known/oauth-authorization-server` (RFC 8414) and
//!   `/.well-known/openid-configuration` (OpenID Connect Discovery): the same document,
//!   naming the issuer and `/jwks` as its `jwks_uri`;
//! - `/moved`: a temporary redirect to `/jwks`, for checking that a fetch does not follow
//!   redirects.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::routing::get;
use lanyard_core::JwkSet;

/// What the host's handlers share with the test.
#[derive(Default)]
struct Published {
    jwks: Mutex<String>,
    fetches: AtomicUsize,
    down: AtomicBool,
}

/// A running key host; dropping it stops accepting connections.
pub struct KeyHost {
    issuer: String,
    published: Arc<Published>,
    task: tokio::task::JoinHandle<()>,
}

impl KeyHost {
    /// Starts a host on a free loopback port, publishing `jwks`.
    pub async fn start(jwks: &JwkSet) -> KeyHost {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let published = Arc::new(Published::default());
        let metadata = serde_json::json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["id_token"],
        })
        .to_string();
        let served = Arc::clone(&published);
        let app = axum::Router::new()
            .route(
                "/jwks",
                get(move || async move {
                    served.fetches.fetch_add(1, Ordering::SeqCst);
                    if served.down.load(Ordering::SeqCst) {
                        return Err(StatusCode::SERVICE_UNAVAILABLE);
                    }
                    Ok(served.jwks.lock().unwrap().clone())
                }),
            )
            .route(
                "/.well-known/oauth-authorization-server",
                get({
                    let metadata = metadata.clone();
                    move || async move { metadata }
                }),
            )
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { metadata }),
            )
            .route("/moved", get(|| async { axum::response::Redirect::temporary("/jwks") }));
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let host = KeyHost {
            issuer,
            published,
            task,
        };
        host.publish(jwks);
        host
    }

    /// `http://127.0.0.1:<port>`: the issuer its metadata names.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The URL of the JWK Set.
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    /// Replaces the published JWK Set.
    pub fn publish(&self, jwks: &JwkSet) {
        *self.published.jwks.lock().unwrap() = serde_json::to_string(jwks).unwrap();
    }

    /// While `down`, `/jwks` answers 503 (and still counts the fetch).
    pub fn set_down(&self, down: bool) {
        self.published.down.store(down, Ordering::SeqCst);
    }

    /// How many times `/jwks` has been requested.
    pub fn fetches(&self) -> usize {
        self.published.fetches.load(Ordering::SeqCst)
    }

    /// Stops accepting connections and waits until the listener is closed: new
    /// connections are refused from then on.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for KeyHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}
