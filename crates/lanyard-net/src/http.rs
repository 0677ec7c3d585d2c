//! Serving an axum router on a listener with the limits applied, each request carrying
//! what is known of its connection's peer.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::Request;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::guarded::Guarded;
use crate::limiter::{ConnectionLimiter, PeerKey};
use crate::limits::ListenerLimits;
use crate::request::{DeadlineBody, host_violation};

/// How long a stopping listener waits for its open connections to finish.
const DRAIN: Duration = Duration::from_secs(10);
/// Most concurrent HTTP/2 streams on one connection.
const MAX_STREAMS: u32 = 128;

/// The certificate chain a TLS client presented (leaf first), as its TLS configuration's
/// client certificate verifier accepted it: on every request of that connection, as an
/// axum extension. What it proves depends on that verifier (one that defers validation
/// to the application must be followed by the application's own check). Shared: a copy
/// per request is a reference count, not the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCertificates(pub Arc<[tokio_rustls::rustls::pki_types::CertificateDer<'static>]>);

/// A listener whose accepted connections can be attributed to a peer for the per-peer cap.
pub trait Accepted: Listener {
    /// The peer of an accepted connection.
    fn peer(io: &Self::Io, addr: &Self::Addr) -> PeerKey;

    /// Sets up an accepted connection before it is served (by default, nothing).
    fn prepare(_io: &Self::Io) {}
}

impl Accepted for TcpListener {
    fn peer(_io: &Self::Io, addr: &Self::Addr) -> PeerKey {
        PeerKey::Ip(addr.ip().to_canonical())
    }

    /// No Nagle delay: an answer (or a TLS record of it) goes out as soon as it is written,
    /// not after the peer's delayed ACK of the previous segment.
    fn prepare(io: &Self::Io) {
        if let Err(e) = io.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY could not be set");
        }
    }
}

impl Accepted for UnixListener {
    fn peer(io: &Self::Io, _addr: &Self::Addr) -> PeerKey {
        io.peer_cred().map_or(PeerKey::Unknown, |cred| PeerKey::Uid(cred.uid()))
    }
}

/// Serves `app` on `listener` (over TLS when `tls` is given; HTTP/1.1 and HTTP/2) until
/// `shutdown` completes, then lets open connections finish for up to 10 seconds. Every
/// request carries its connection's [`PeerKey`] as an extension (for audit lines); over
/// TLS, a client certificate chain is handed to `app` as [`PeerCertificates`].
///
/// Each connection takes a slot on `limiter` at accept (or is closed at once), must
/// complete its TLS handshake and start its request within `limits.handshake_timeout`,
/// must send each HTTP/1 request head within `limits.header_read_timeout` (also the
/// idle timeout between kept-alive requests) and each request body within
/// `limits.body_read_timeout` of its head; HTTP/2 connections are pinged every
/// `limits.keepalive_interval` and dropped when they do not answer. An HTTP/1.1 request
/// without exactly one `Host` is answered 400 (RFC 9112 §3.2) before `app` sees it.
pub async fn serve_http<L: Accepted>(
    mut listener: L,
    limiter: ConnectionLimiter,
    limits: ListenerLimits,
    tls: Option<TlsAcceptor>,
    app: Router,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (io, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let Ok(permit) = limiter.try_acquire(L::peer(&io, &addr)) else {
            continue;
        };
        L::prepare(&io);
        let deadline = Instant::now() + limits.handshake();
        let (tls, app, watcher) = (tls.clone(), app.clone(), graceful.watcher());
        tokio::spawn(async move {
            let mut peer = Peer {
                key: permit.peer(),
                certificates: None,
            };
            match tls {
                None => serve_connection(Guarded::new(io, permit, deadline), app, peer, limits, watcher).await,
                Some(acceptor) => match tokio::time::timeout_at(deadline, acceptor.accept(io)).await {
                    Ok(Ok(stream)) => {
                        peer.certificates = match stream.get_ref().1.peer_certificates() {
                            Some(chain) if !chain.is_empty() => {
                                Some(PeerCertificates(chain.iter().map(|c| c.clone().into_owned()).collect()))
                            }
                            _ => None,
                        };
                        serve_connection(Guarded::new(stream, permit, deadline), app, peer, limits, watcher).await;
                    }
                    Ok(Err(e)) => tracing::debug!(peer = %permit.peer(), error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(peer = %permit.peer(), "TLS handshake timed out"),
                },
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::debug!("connections still open after the drain period were closed");
    }
}

/// What a connection's requests learn about its peer (as request extensions); cheap to
/// clone, as hyper clones the service (and so this) for every request.
#[derive(Clone)]
struct Peer {
    key: PeerKey,
    certificates: Option<PeerCertificates>,
}

impl Peer {
    fn annotate<B>(&self, mut request: Request<B>) -> Request<B> {
        let extensions = request.extensions_mut();
        extensions.insert(self.key);
        if let Some(chain) = &self.certificates {
            extensions.insert(chain.clone());
        }
        request
    }
}

/// Serves HTTP on one connection with the timeouts of `limits`, each request annotated
/// with what is known of `peer`.
async fn serve_connection<IO>(io: IO, app: Router, peer: Peer, limits: ListenerLimits, watcher: Watcher)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let body_time = limits.body_read();
    let app = tower::service_fn(move |request: Request<Incoming>| {
        let app = app.clone();
        let refusal = host_violation(&request);
        let request = peer.annotate(request.map(|body| DeadlineBody::new(body, body_time)));
        async move {
            match refusal {
                Some(response) => Ok(response),
                None => app.oneshot(request).await,
            }
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read())
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .keep_alive_interval(limits.keepalive())
        .keep_alive_timeout(limits.keepalive().unwrap_or(Duration::from_secs(20)));
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(app));
    if let Err(e) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::{Accepted, serve_http};
    use crate::{ConnectionLimiter, ListenerLimits, PeerKey};
    use axum::Extension;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn every_request_carries_its_connections_peer() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(|Extension(peer): Extension<PeerKey>| async move { format!("peer={peer}") }),
        );
        let limits = ListenerLimits::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_http(
            listener,
            ConnectionLimiter::for_listener("test", &limits),
            limits,
            None,
            app,
            async {
                let _ = stopped.await;
            },
        ));
        let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("peer=127.0.0.1"), "{answer}");
        let _ = stop.send(());
        server.await.unwrap();
    }

    #[tokio::test]
    async fn accepted_tcp_connections_send_without_nagle_delay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(address).await.unwrap();
        let (io, _) = listener.accept().await.unwrap();
        assert!(!io.nodelay().unwrap());
        TcpListener::prepare(&io);
        assert!(io.nodelay().unwrap());
    }
}
