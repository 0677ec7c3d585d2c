//! The `https_spiffe` SPIFFE bundle endpoint (SPIFFE Federation §5.2.2): `GET /` answers the
//! trust domain's bundle over TLS, the server authenticating with its X.509-SVID
//! `spiffe://<td>/lanyard/server` (issued by the ACTIVE CA, renewed at half-life and when
//! the CA rotates, like the agent API's). No client authentication (§5.2.2.3). Served on
//! `bundle_endpoint_address` when it is set.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use lanyard_net::{ConnectionLimiter, serve_http};
use lanyard_x509::SvidResolver;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::api::tls::ServerIdentity;
use crate::endpoints::public;
use crate::error::ServerError;
use crate::state::AppState;

/// The rustls config: TLS 1.3 and 1.2, the identity's SVID, no client authentication,
/// ALPN `h2` and `http/1.1`.
fn tls_config(identity: &ServerIdentity) -> Result<rustls::ServerConfig, rustls::Error> {
    let source = identity.source();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(source.provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SvidResolver::new(source)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves the bundle endpoint on `listener` until `shutdown` completes.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let identity = Arc::new(ServerIdentity::new(state.clone()).await?);
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(&identity)?));
    let limits = state.config.limits.bundle_endpoint;
    let app = Router::new().route("/", get(public::bundle)).with_state(state);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let refresher = tokio::spawn(Arc::clone(&identity).keep_fresh(async move {
        let mut stop = stop_rx;
        let _ = stop.wait_for(|s| *s).await;
    }));
    let limiter = ConnectionLimiter::for_listener("bundle endpoint", &limits);
    serve_http(listener, limiter, limits, Some(acceptor), app, shutdown).await;
    let _ = stop_tx.send(true);
    let _ = refresher.await;
    Ok(())
}
