//! The composition root: [`start`] builds the agent's subsystems in order and
//! [`RunningAgent`] serves until shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lanyard_api::spice::v1::sd_cwt_server::SdCwtServer;
use lanyard_api::workload::spiffe_workload_api_server::SpiffeWorkloadApiServer;
use lanyard_core::{Clock, CryptoProvider, SystemClock};
use lanyard_net::ConnectionLimiter;
use tokio::task::JoinSet;

use crate::attestor::workload::WorkloadAttestor;
use crate::attestor::workload::unix::UnixAttestor;
use crate::config::AgentConfig;
use crate::endpoints::mint_budget::MintBudget;
use crate::endpoints::socket::{self, SocketAccess};
use crate::endpoints::workload_api::WorkloadApi;
use crate::endpoints::{connection, health};
use crate::error::AgentError;
use crate::manager::Manager;
use crate::state::Store;
use crate::storage::NodeFiles;

/// A started agent: the Workload API socket is bound and the manager is running.
#[derive(Debug)]
pub struct RunningAgent {
    /// The Workload API socket.
    pub socket_path: PathBuf,
    /// Who can reach the socket through the directories above it.
    pub socket_access: SocketAccess,
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
///
/// `crypto` is the provider every part of the agent verifies, hashes and draws random
/// numbers with (the application picks it: `lanyard_crypto::provider()` in the CLI).
pub async fn start(mut config: AgentConfig, crypto: Arc<dyn CryptoProvider>) -> Result<RunningAgent, AgentError> {
    // 1. The configuration, checked before anything is touched; the connection caps are
    //    fitted to the open-file limit.
    config.validate()?;
    config.fit_limits_to_nofile();
    let td = config.trust_domain()?;
    let server_id = config.server_spiffe_id()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    // 2. The agent's own identity: the SVID stored in the data directory, or node
    //    attestation. Nothing is served before the agent knows who it is.
    let files = NodeFiles::new(&config.data_dir);
    files.prepare()?;
    let identity =
        crate::attestor::node::resume_or_attest(&config, &td, &server_id, &files, crypto.as_ref(), clock.now()).await?;

    // 3. The manager, connected to the server as that identity; it publishes to the store
    //    every endpoint reads.
    let store = Arc::new(Store::new());
    let manager = Manager::new(&config, identity, files, store, clock, Arc::clone(&crypto))?;

    // 4. The Workload API socket, bound only now: a workload that connects earlier finds
    //    no socket rather than an agent that cannot answer.
    let listener = socket::bind(&config.socket_path)?;
    let socket_access = socket::access(&config.socket_path);
    if let SocketAccess::BlockedBy { .. } = &socket_access {
        tracing::warn!(socket = %config.socket_path.display(), "the Workload API socket is reachable by {socket_access}");
    }

    // 5. The manager's jobs: from here on, entries, SVIDs and bundles flow in.
    let mut tasks = JoinSet::new();
    tasks.spawn(Arc::clone(&manager).run());

    // 6. The Workload API: callers identified by the workload attestors, server mints on
    //    their behalf limited per uid.
    let attestors: Vec<Box<dyn WorkloadAttestor>> =
        vec![Box::new(UnixAttestor::new(crypto, config.discover_workload_path))];
    let service = WorkloadApi::new(
        Arc::clone(&manager),
        attestors,
        Duration::from_secs(config.first_svid_timeout),
        MintBudget::new(config.mint_burst_per_uid, config.mints_per_minute_per_uid),
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
            .add_service(SpiffeWorkloadApiServer::new(service.clone()))
            .add_service(SdCwtServer::new(service))
            .serve_with_incoming(incoming)
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the Workload API server stopped");
        }
    });

    // 7. The health endpoint, if configured.
    let health_addr = if config.health_address.is_empty() {
        None
    } else {
        let listener = tokio::net::TcpListener::bind(&config.health_address)
            .await
            .map_err(AgentError::setting(format!("health_address {}", config.health_address)))?;
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
