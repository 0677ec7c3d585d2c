//! The `https_spiffe` SPIFFE bundle endpoint (SPIFFE Federation §5.2.2): `GET /` answers the
//! trust domain's bundle over TLS, the server authenticating with its X.509-SVID
//! `spiffe://<td>/lanyard/server` (issued by the ACTIVE CA, renewed at half-life and when
//! the CA rotates, like the agent API's). No client authentication (§5.2.2.3). Served on
//! `bundle_endpoint_address` when it is set.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use lanyard_x509::SvidResolver;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::api::tls::ServerIdentity;
use crate::endpoints::public;
use crate::state::AppState;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The rustls config: TLS 1.3 and 1.2, the identity's SVID, no client authentication,
/// ALPN `h2` and `http/1.1`.
fn tls_config(identity: &ServerIdentity) -> Result<rustls::ServerConfig> {
    let source = identity.source();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(source.provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SvidResolver::new(source)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves the bundle endpoint on `listener` until `shutdown` completes.
pub async fn serve(state: AppState, listener: TcpListener, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
    let identity = Arc::new(
        ServerIdentity::new(state.clone())
            .await
            .context("issuing the bundle endpoint's server SVID")?,
    );
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(&identity)?));
    let app = Router::new().route("/", get(public::bundle)).with_state(state);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let refresher = tokio::spawn(Arc::clone(&identity).keep_fresh(async move {
        let mut stop = stop_rx;
        let _ = stop.wait_for(|s| *s).await;
    }));
    tokio::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "bundle endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%remote, error = %e, "bundle endpoint: TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, "bundle endpoint: TLS handshake timed out");
                    return;
                }
            };
            let service = TowerToHyperService::new(app);
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%remote, error = %e, "bundle endpoint: connection ended with an error");
            }
        });
    }
    let _ = stop_tx.send(true);
    let _ = refresher.await;
    Ok(())
}
