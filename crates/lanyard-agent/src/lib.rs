//! The Lanyard node agent (`lanyard agent`).
//!
//! It runs on every node and is a drop-in SPIFFE Workload API endpoint:
//!
//! - [`manager`]: attests the node to the server (join token or x509pop), keeps its agent
//!   SVID renewed, receives the entries the server pushes, pre-mints X.509-SVIDs for them
//!   with keys generated here, rotates them at about half-life, and mints JWT-SVIDs and
//!   WIT-SVIDs on demand;
//! - [`endpoints::workload_api`]: the Workload API on a Unix socket (X.509-SVIDs, JWT-SVIDs, WIT-SVIDs
//!   and bundles), identifying callers with the [`attestor`]s;
//! - [`endpoints::health`]: `/healthz`, `/readyz` and `/status` over HTTP.
//!
//! [`start`] composes them; [`RunningAgent::run_until`] serves until shutdown.

pub mod attestor;
pub mod config;
pub mod endpoints;
pub mod error;
mod link;
pub mod manager;
pub mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lanyard_api::workload::spiffe_workload_api_server::SpiffeWorkloadApiServer;
use lanyard_net::ConnectionLimiter;

use crate::endpoints::{connection, health, mint_budget, socket, workload_api};
use tokio::task::JoinSet;

pub use config::{AgentConfig, LogFormat, X509PopConfig};
pub use error::AgentError;
pub use manager::{Health, Manager};

/// A started agent: the Workload API socket is bound and the manager is running.
#[derive(Debug)]
pub struct RunningAgent {
    /// The Workload API socket.
    pub socket_path: PathBuf,
    /// Who can reach the socket through the directories above it.
    pub socket_access: socket::SocketAccess,
    /// Where the health endpoint listens, if enabled.
    pub health_addr: Option<SocketAddr>,
    /// The manager (state, health).
    pub manager: Arc<Manager>,
    tasks: JoinSet<()>,
}

impl RunningAgent {
    /// Serves until `shutdown` completes (or a task ends), then removes the socket.
    pub async fn run_until(mut self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::select! {
            () = shutdown => tracing::info!("shutting down"),
            done = self.tasks.join_next() => {
                if let Some(Err(e)) = done {
                    tracing::error!(error = %e, "an agent task failed");
                }
            }
        }
        self.tasks.shutdown().await;
        let _ = std::fs::remove_file(&self.socket_path);
    }
}

/// Starts the agent: attests (or resumes), binds the Workload API socket and the health
/// endpoint, and starts syncing with the server.
pub async fn start(mut config: AgentConfig) -> Result<RunningAgent, AgentError> {
    config.validate()?;
    config.fit_limits_to_nofile();
    let store = Arc::new(state::Store::new());
    let manager = Manager::start(&config, Arc::clone(&store)).await?;
    let listener = socket::bind(&config.socket_path)?;
    let socket_access = socket::access(&config.socket_path);
    if let socket::SocketAccess::BlockedBy { .. } = &socket_access {
        tracing::warn!(socket = %config.socket_path.display(), "the Workload API socket is reachable by {socket_access}");
    }

    let mut tasks = JoinSet::new();
    tasks.spawn(Arc::clone(&manager).run());

    let attestors: Vec<Box<dyn attestor::workload::WorkloadAttestor>> = vec![Box::new(
        attestor::workload::unix::UnixAttestor::new(config.discover_workload_path),
    )];
    let service = workload_api::WorkloadApi::new(
        Arc::clone(&manager),
        attestors,
        Duration::from_secs(config.first_svid_timeout),
        mint_budget::MintBudget::new(config.mint_burst_per_uid, config.mints_per_minute_per_uid),
    );
    // Each connection takes a slot for its uid, is pinned to its process, and goes
    // through AuthorityFix, so gRPC C-core clients (py-spiffe, ...) are not refused for
    // the socket path they send as :authority.
    let limits = config.limits.workload_api;
    let (conn_tx, conn_rx) = tokio::sync::mpsc::channel(64);
    tasks.spawn(connection::accept_loop(
        listener,
        ConnectionLimiter::for_listener("Workload API", &limits),
        limits,
        conn_tx,
    ));
    let incoming = tokio_stream::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(conn_rx), |conn| {
        Ok::<_, std::io::Error>(conn)
    });
    tasks.spawn(async move {
        let served = tonic::transport::Server::builder()
            .http2_keepalive_interval(limits.keepalive())
            .http2_keepalive_timeout(limits.keepalive())
            .add_service(SpiffeWorkloadApiServer::new(service))
            .serve_with_incoming(incoming)
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the Workload API server stopped");
        }
    });

    let health_addr = if config.health_address.is_empty() {
        None
    } else {
        let listener = tokio::net::TcpListener::bind(&config.health_address)
            .await
            .map_err(|e| AgentError::Config(format!("health_address {}: {e}", config.health_address)))?;
        let addr = listener
            .local_addr()
            .map_err(AgentError::io("binding", config.health_address.clone()))?;
        tasks.spawn(health::serve(Arc::clone(&manager), listener, config.limits.health));
        Some(addr)
    };

    tracing::info!(
        socket = %config.socket_path.display(),
        agent_id = %manager.agent_id(),
        "lanyard agent started"
    );
    Ok(RunningAgent {
        socket_path: config.socket_path.clone(),
        socket_access,
        health_addr,
        manager,
        tasks,
    })
}
