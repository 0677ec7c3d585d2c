//! Mutual TLS (draft-ietf-wimse-mutual-tls-02): serving an axum router over rustls with
//! X.509-SVID client authentication, and putting the verified peer identity on every
//! request for [`crate::WorkloadAuthLayer`].
//!
//! The handshake (chain validation against the bundle of the peer's trust domain and
//! the [`lanyard_x509::tls::Authorizer`] check) is done by the rustls config from
//! [`lanyard_x509::tls::server_config`]; certificates and bundles rotate through its
//! `SvidSource` without restarting the listener or dropping open connections.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use lanyard_core::SpiffeId;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// How long open connections may take to finish their requests at shutdown.
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The SPIFFE ID of the client certificate a connection was authenticated with, placed in
/// the extensions of each request on that connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The client's SPIFFE ID (the one URI SAN of its verified X.509-SVID).
    pub id: SpiffeId,
}

/// The DER of the client certificate (the leaf) a connection was authenticated with,
/// placed beside [`PeerIdentity`] in the extensions of each request on that connection:
/// certificate-bound access tokens (`cnf.x5t#S256`, RFC 8705 §3) are checked against it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCertificate(pub Arc<[u8]>);

impl PeerCertificate {
    /// The certificate's DER.
    pub fn der(&self) -> &[u8] {
        &self.0
    }
}

/// Serves `app` over TLS on `listener` until `shutdown` completes. Each connection's
/// verified client identity is added to its requests as a [`PeerIdentity`], and its
/// certificate as a [`PeerCertificate`].
///
/// A failed handshake (untrusted or unauthorized client) closes that connection only.
/// On shutdown, open connections finish their in-flight requests (for at most
/// [`DRAIN_TIMEOUT`]) before this returns.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match acceptor.accept(tcp).await {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::info!(%remote, error = %e, "mTLS handshake refused");
                    metrics::counter!("lanyard_mtls_handshakes_total", "outcome" => "refused").increment(1);
                    return;
                }
            };
            metrics::counter!("lanyard_mtls_handshakes_total", "outcome" => "ok").increment(1);
            let peer = lanyard_x509::tls::peer_spiffe_id(stream.get_ref().1).map(|id| PeerIdentity { id });
            let certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| PeerCertificate(Arc::from(leaf.as_ref())));
            let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
                if let Some(peer) = &peer {
                    request.extensions_mut().insert(peer.clone());
                }
                if let Some(certificate) = &certificate {
                    request.extensions_mut().insert(certificate.clone());
                }
                app.clone().oneshot(request.map(Body::new))
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
    Ok(())
}
