//! The server↔agent gRPC API (`lanyard.agent.v1.AgentApi`, `crates/lanyard-api`), served
//! over TLS 1.3 on `agent_address`.
//!
//! # Transport and authentication
//!
//! - The server presents its own X.509-SVID, `spiffe://<td>/lanyard/server`, issued by the
//!   ACTIVE CA ([`tls::ServerIdentity`]). It is re-issued at half its life and whenever the
//!   ACTIVE CA changes; the trusted bundle is refreshed when its `spiffe_sequence` moves.
//!   Both take effect at the next handshake.
//! - Client certificates are optional at the TLS layer ([`tls::OptionalClientCertVerifier`]):
//!   `AttestAgent` is called without one. A presented chain must validate against the trust
//!   domain's X.509 authorities (EKU clientAuth), or the handshake fails.
//! - The verified client SVID travels with every request as a [`PeerIdentity`] request
//!   extension (tonic's `Connected::connect_info`). Every RPC except `AttestAgent` requires
//!   one whose SPIFFE ID is an agent ID (`/lanyard/agent/...`) of a known agent
//!   (`Unauthenticated` otherwise) that is not banned (`PermissionDenied`), and whose SVID
//!   has not expired since the handshake.
//!
//! # Entry sync
//!
//! One background task per server ([`sync::Hub`]) polls the datastore's entry change log
//! every [`sync::POLL_INTERVAL`] (50 ms) and broadcasts new events to every open
//! `SyncEntries` stream, so the polling cost does not grow with the number of agents; a
//! stream fetches only the entries that concern its agent. A new or changed entry reaches a
//! connected agent within about that interval (tests measure well under 1 s). The same task
//! watches the bundle sequence and the set of banned agents (every second), ending a banned
//! agent's stream with `PermissionDenied`.

mod bundles;
pub mod service;
pub mod status;
pub mod sync;
pub mod tls;
mod wire;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lanyard_api::agent::v1::agent_api_server::AgentApiServer;
use lanyard_net::{ConnectionLimiter, ConnectionPermit, Guarded, PeerKey, WithPeer};
use lanyard_x509::{Usage, VerifiedSvid, VerifyOptions, verify_svid_chain};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::ServerError;
use crate::state::AppState;

/// Largest gRPC message accepted (a batch of CSRs).
const MAX_MESSAGE: usize = 4 << 20;

/// Who is on the other end of a connection: attached to every request as an extension.
#[derive(Clone, Debug)]
pub struct PeerIdentity {
    /// The client's address.
    pub remote_addr: Option<SocketAddr>,
    /// The client's X.509-SVID, verified against the trust domain's bundle during the
    /// handshake; `None` when the client presented no certificate.
    pub svid: Option<VerifiedSvid>,
}

/// A server-side TLS connection that reports its [`PeerIdentity`] to tonic.
pub type TlsConnection = WithPeer<Guarded<TlsStream<TcpStream>>, PeerIdentity>;

/// Why an accepted connection was dropped before tonic saw it (logged at debug level).
#[derive(Debug, thiserror::Error)]
enum HandshakeError {
    #[error("TLS handshake timed out")]
    Timeout,
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] io::Error),
    #[error("client certificate: {0}")]
    ClientCertificate(#[source] lanyard_x509::Error),
}

/// Completes the TLS handshake of one accepted connection (before `deadline`, by which
/// the client must also have started talking HTTP/2) and extracts the peer identity.
async fn handshake(
    acceptor: TlsAcceptor,
    identity: Arc<tls::ServerIdentity>,
    (tcp, remote_addr): (TcpStream, SocketAddr),
    (permit, deadline): (ConnectionPermit, Instant),
    state: AppState,
) -> Result<TlsConnection, HandshakeError> {
    let stream = tokio::time::timeout_at(deadline, acceptor.accept(tcp))
        .await
        .map_err(|_| HandshakeError::Timeout)?
        .map_err(HandshakeError::Tls)?;
    let svid = match stream.get_ref().1.peer_certificates() {
        None | Some([]) => None,
        Some(chain) => {
            // The verifier already validated this chain; validating again here yields the
            // SPIFFE ID, serial and notAfter for the handlers.
            let verified = verify_svid_chain(
                chain,
                &identity.source().bundles(),
                state.clock.now(),
                &VerifyOptions::for_usage(Usage::ClientAuth),
            )
            .map_err(HandshakeError::ClientCertificate)?;
            Some(verified)
        }
    };
    Ok(WithPeer::new(
        Guarded::new(stream, permit, deadline),
        PeerIdentity {
            remote_addr: Some(remote_addr),
            svid,
        },
    ))
}

/// Accepts TCP connections and hands completed TLS connections to tonic. Each takes a
/// slot on the listener's limiter first (`[limits.agent_api]`; over the cap it is closed
/// at once). Handshakes run concurrently, so a slow client does not hold up the others;
/// failed ones are logged and dropped.
async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    identity: Arc<tls::ServerIdentity>,
    state: AppState,
    out: mpsc::Sender<TlsConnection>,
) {
    let limits = state.config.limits.agent_api;
    let limiter = ConnectionLimiter::for_listener("agent API", &limits);
    loop {
        let (tcp, remote_addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "agent API: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = limiter.try_acquire(PeerKey::Ip(remote_addr.ip().to_canonical())) else {
            continue;
        };
        let deadline = Instant::now() + limits.handshake();
        let _ = tcp.set_nodelay(true);
        let (acceptor, identity, state, out) = (acceptor.clone(), Arc::clone(&identity), state.clone(), out.clone());
        tokio::spawn(async move {
            match handshake(acceptor, identity, (tcp, remote_addr), (permit, deadline), state).await {
                Ok(conn) => {
                    let _ = out.send(conn).await;
                }
                Err(e) => tracing::debug!(%remote_addr, error = %e, "agent API: connection refused"),
            }
        });
    }
}

/// Serves the agent API on `listener` until `shutdown` completes: builds the server's TLS
/// identity, starts the sync hub and the identity refresher, and runs tonic over TLS.
/// Open `SyncEntries` streams end with `Unavailable` at shutdown.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    attestors: service::Attestors,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let identity = Arc::new(tls::ServerIdentity::new(state.clone()).await?);
    let config = tls::server_config(identity.source(), state.trust_domain.clone())?;
    let acceptor = TlsAcceptor::from(Arc::new(config));

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut background = JoinSet::new();
    let hub = sync::Hub::start(state.clone(), stop_rx.clone(), &mut background);
    {
        let mut stop = stop_rx.clone();
        background.spawn(Arc::clone(&identity).keep_fresh(async move { sync::stopped(&mut stop).await }));
    }
    let (conn_tx, conn_rx) = mpsc::channel(64);
    background.spawn(accept_loop(
        listener,
        acceptor,
        Arc::clone(&identity),
        state.clone(),
        conn_tx,
    ));

    let state_limits = state.config.limits.agent_api;
    let service = AgentApiServer::new(service::AgentService::new(state, hub, Arc::new(attestors)))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let incoming = ReceiverStream::new(conn_rx).map(Ok::<_, io::Error>);
    let signal = async move {
        shutdown.await;
        // Ends the long-lived streams, so that the graceful shutdown can complete.
        let _ = stop_tx.send(true);
    };
    let keepalive = state_limits.keepalive();
    let result = tonic::transport::Server::builder()
        // Pings on quiet connections, so that streams to vanished agents end.
        .http2_keepalive_interval(keepalive)
        .http2_keepalive_timeout(keepalive)
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, signal)
        .await;
    background.shutdown().await;
    Ok(result?)
}
