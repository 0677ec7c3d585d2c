//! The composition root: builds the subsystems in order and serves the endpoints.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinSet;

use lanyard_core::{Clock, SystemClock, UnixTime};
use lanyard_net::{ConnectionLimiter, serve_http};

use crate::api;
use crate::attest::JoinTokenAttestor;
use crate::attest::x509pop::{ChallengeKey, X509Pop};
use crate::ca::{KeyManager, KeyManagerConfig, KeyStorage, UpstreamCa};
use crate::config::{KeyStorageKind, LogFormat, ServerConfig};
use crate::datastore::{
    CachedClients, DataStore, GroupCommitJtis, MirroredRevocations, SqlDataStore, StoreError, Stores,
};
use crate::endpoints::{admin, bundle_endpoint, oauth as oauth_endpoints, public, spice};
use crate::federation;
use crate::oauth::AuthorizationServer;
use crate::state::AppState;

/// How often authorities are checked for preparation, activation and retirement.
const ROTATION_INTERVAL: Duration = Duration::from_secs(10);
/// How many entry events the datastore keeps (see [`prune`]).
const KEEP_ENTRY_EVENTS: u64 = 100_000;

/// A started server.
#[derive(Debug)]
pub struct RunningServer {
    /// Where the public endpoints listen.
    pub public_addr: SocketAddr,
    /// The public base URL.
    pub public_url: String,
    /// Where the agent API (gRPC over TLS) listens.
    pub agent_addr: SocketAddr,
    /// The admin socket.
    pub admin_socket: PathBuf,
    /// Where the `https_spiffe` bundle endpoint listens, when configured.
    pub bundle_endpoint_addr: Option<SocketAddr>,
    /// Where the OAuth mutual-TLS listener listens, when it runs.
    pub oauth_mtls_addr: Option<SocketAddr>,
    /// The shared state (for tests and embedding).
    pub state: AppState,
    /// The OAuth authorization server.
    pub oauth: Arc<AuthorizationServer>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<Result<()>>,
    /// The lock on a SQLite database file ([`lock_sqlite_file`]), released when the server
    /// is dropped.
    _sqlite_lock: Option<std::fs::File>,
}

impl RunningServer {
    /// Stops every endpoint and task and waits for them.
    pub async fn shutdown(mut self) -> Result<()> {
        let _ = self.shutdown.send(true);
        while let Some(done) = self.tasks.join_next().await {
            done??;
        }
        let _ = std::fs::remove_file(&self.admin_socket);
        Ok(())
    }

    /// Serves until one task fails or `stop` completes, then shuts down.
    pub async fn run_until(mut self, stop: impl std::future::Future<Output = ()>) -> Result<()> {
        tokio::select! {
            () = stop => {}
            Some(done) = self.tasks.join_next() => {
                done??;
                bail!("a server task stopped unexpectedly");
            }
        }
        self.shutdown().await
    }
}

/// Sets up logging to stderr: human-readable by default, JSON on request; `RUST_LOG`-style
/// filter. Colours only at a terminal, and not when `NO_COLOR` is set to a non-empty value.
pub fn init_logging(config: &ServerConfig) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let no_color = std::env::var_os("NO_COLOR");
    let colours = log_colours(std::io::stderr().is_terminal(), no_color.as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colours)
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.compact().try_init(),
    };
}

/// Whether log lines carry ANSI colours: only for a person at a terminal, so that a log
/// file, a pipe or journald gets plain text, and not when `NO_COLOR` is set to a
/// non-empty value (<https://no-color.org>: an empty one does not count).
fn log_colours(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

fn key_storage(config: &ServerConfig) -> Result<KeyStorage> {
    Ok(match config.key_storage {
        KeyStorageKind::Files => KeyStorage::Files(config.data_dir.join("keys")),
        KeyStorageKind::Encrypted => {
            let kek = std::env::var("LANYARD_KEK")
                .context("key_storage = \"encrypted\" needs LANYARD_KEK (32 bytes, base64)")?;
            KeyStorage::kek_from_base64(&kek).context("LANYARD_KEK")?
        }
    })
}

fn prepare_data_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", dir.display()))?;
    }
    Ok(())
}

/// Binds the admin socket: a stale socket from a previous run is replaced, anything else
/// at that path is an error; the socket is made owner-only.
fn bind_admin_socket(path: &Path) -> Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            bail!("{} exists and is not a socket; refusing to replace it", path.display());
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("{} is in use by another running server", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Raises the open-file limit and scales the listeners' connection caps into it, so that
/// a flood on one listener exhausts its own cap, never the descriptors the others (and
/// the datastore) need.
fn fit_listeners_to_nofile(config: &mut ServerConfig) {
    /// Descriptors kept for the datastore, key files, federation clients and the process.
    const RESERVE: u64 = 256;
    let Some(nofile) = lanyard_net::raise_nofile_limit() else {
        return;
    };
    let l = &mut config.limits;
    let mut listeners = [&mut l.public, &mut l.agent_api, &mut l.bundle_endpoint, &mut l.admin];
    if lanyard_net::fit_to_nofile(&mut listeners, nofile.now, RESERVE) {
        tracing::warn!(
            open_file_limit = nofile.now,
            public = l.public.max_connections,
            agent_api = l.agent_api.max_connections,
            bundle_endpoint = l.bundle_endpoint.max_connections,
            admin = l.admin.max_connections,
            "the open-file limit is low: connection caps were scaled down to fit it"
        );
    }
}

/// Deletes what nothing needs any more: join tokens that expired before `now` (and the
/// OAuth one-time values and revocations that expired), and all but the newest
/// [`KEEP_ENTRY_EVENTS`] entry events. Returns the numbers deleted.
async fn prune(stores: &Stores, now: UnixTime) -> Result<(u64, u64), StoreError> {
    let tokens = stores.join_tokens.prune_join_tokens(now).await? + stores.jtis.prune_jtis(now).await?;
    let events = stores.entries.prune_entry_events(KEEP_ENTRY_EVENTS).await?;
    Ok((tokens, events))
}

/// The mutual-TLS listener's base URL: `https://` and the bound address, its wildcard
/// host replaced by the public URL's host.
fn mtls_base_url(bound: SocketAddr, public_url: &str) -> String {
    if bound.ip().is_unspecified() {
        let host = public_url
            .split_once("://")
            .map_or(public_url, |(_, rest)| rest)
            .split(['/', ':'])
            .next()
            .unwrap_or("localhost");
        format!("https://{host}:{}", bound.port())
    } else {
        format!("https://{bound}")
    }
}

/// Serves the authorization server's POST endpoints and the SD-CWT credential endpoint
/// (`credentials`) over TLS with the server's X.509-SVID (renewed like the bundle
/// endpoint's), client certificates requested (RFC 8705).
async fn serve_oauth_mtls(
    state: AppState,
    oauth: Arc<AuthorizationServer>,
    credentials: axum::Router,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<()> {
    let identity = Arc::new(api::tls::ServerIdentity::new(state.clone()).await?);
    let config = crate::oauth::mtls::tls_config(identity.source(), state.trust_domain.clone())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let base = oauth.mtls_endpoint("").unwrap_or_default();
    let app = oauth_endpoints::router(oauth)
        .merge(credentials)
        .layer(axum::Extension(oauth_endpoints::EndpointBase(base)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let refresher = tokio::spawn(Arc::clone(&identity).keep_fresh(async move {
        let mut stop = stop_rx;
        let _ = stop.wait_for(|s| *s).await;
    }));
    let limits = state.config.limits.public;
    let limiter = ConnectionLimiter::for_listener("OAuth mutual-TLS listener", &limits);
    serve_http(listener, limiter, limits, Some(acceptor), app, shutdown).await;
    let _ = stop_tx.send(true);
    let _ = refresher.await;
    Ok(())
}

/// Starts the server described by `config`:
/// 1. the data directory (mode 0700);
/// 2. the datastore (migrations run on connect);
/// 3. the key manager, with a first rotation so every authority exists;
/// 4. the public endpoints, the agent API (gRPC over TLS), the admin socket and, when
///    configured, the `https_spiffe` bundle endpoint;
/// 5. the OAuth authorization server (on the public listener) and the SD-CWT credential
///    endpoint that accepts its tokens (on the public and the mutual-TLS listener);
/// 6. the rotation loop (which also reloads the authorization server's trust bundles) and
///    one federated-bundle refresher per foreign trust domain.
pub async fn start(mut config: ServerConfig) -> Result<RunningServer> {
    config.validate()?;
    fit_listeners_to_nofile(&mut config);
    prepare_data_dir(&config.data_dir)?;
    // The one crypto provider; every subsystem gets it from here.
    let crypto = lanyard_crypto::provider();
    let sqlite_lock = lock_sqlite_file(&config.database_url())?;
    let sql = SqlDataStore::connect(&config.database_url(), Arc::clone(&crypto))
        .await
        .context("opening the datastore")?;
    let shared_database = sql.backend() == "postgres";
    let store: Arc<dyn DataStore> = Arc::new(sql);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let trust_domain = config.trust_domain()?;
    let mut stores = Stores::new(store);
    // On PostgreSQL, assertion and DPoP-proof jtis are committed in batches: one commit per
    // batch of concurrent token requests (datastore/group_commit.rs). On SQLite, the store
    // decides them in memory and appends them to its journal in one write each: nothing
    // to batch (datastore/sql/jti_journal.rs).
    if shared_database {
        stores.jtis = Arc::new(GroupCommitJtis::spawn(stores.jtis));
    }
    // Revocation checks (token exchange, introspection) read a copy of the revocations at
    // most 1 s old (datastore/revocation_mirror.rs).
    stores.jtis = Arc::new(MirroredRevocations::new(stores.jtis));
    // The token endpoint reads its client on every request (datastore/client_cache.rs).
    stores.clients = Arc::new(CachedClients::new(stores.clients));
    let keys = Arc::new(KeyManager::new(
        Arc::clone(&stores.authorities),
        KeyManagerConfig {
            trust_domain: trust_domain.clone(),
            ca_ttl: config.ca_ttl,
            jwt_key_ttl: config.signing_key_ttl,
            wit_key_ttl: config.signing_key_ttl,
            access_token_key_ttl: config.oauth.signing_key_ttl,
            sd_cwt_key_ttl: config.signing_key_ttl,
            max_credential_ttl: config
                .default_x509_svid_ttl
                .max(config.default_wit_ttl)
                .max(config.default_jwt_svid_ttl)
                .max(config.oauth.access_token_ttl),
            key_storage: key_storage(&config)?,
            refresh_hint: config.bundle_refresh_hint,
            upstream: match (&config.ca.upstream_cert_path, &config.ca.upstream_key_path) {
                (Some(cert), Some(key)) => Some(Arc::new(
                    UpstreamCa::load(Arc::clone(&crypto), cert, key).context("loading the upstream CA")?,
                )),
                _ => None,
            },
        },
        Arc::clone(&crypto),
    ));
    keys.rotate(clock.now())
        .await
        .context("preparing the CA and signing keys")?;
    let x509pop = match &config.node_attestation.x509pop {
        Some(c) => {
            let roots = c.ca_bundle(&trust_domain)?;
            let key = ChallengeKey::load(&*stores.secrets, Arc::clone(&crypto))
                .await
                .context("loading the x509pop challenge key")?;
            Some(X509Pop::new(
                trust_domain.clone(),
                roots,
                key,
                Arc::clone(&stores.agents),
                Arc::clone(&crypto),
            ))
        }
        None => None,
    };

    let listener = TcpListener::bind(&config.public_address)
        .await
        .with_context(|| format!("binding the public address {}", config.public_address))?;
    let public_addr = listener.local_addr()?;
    let public_url = config.public_url(&public_addr.to_string());
    let agent_listener = TcpListener::bind(&config.agent_address)
        .await
        .with_context(|| format!("binding the agent API address {}", config.agent_address))?;
    let agent_addr = agent_listener.local_addr()?;
    let bundle_listener = match &config.bundle_endpoint_address {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .with_context(|| format!("binding the bundle endpoint address {address}"))?,
        ),
        None => None,
    };
    let bundle_endpoint_addr = bundle_listener.as_ref().map(TcpListener::local_addr).transpose()?;
    let mtls_listener = match config.oauth_mtls_address() {
        Some(address) => Some(
            TcpListener::bind(&address)
                .await
                .with_context(|| format!("binding the OAuth mutual-TLS address {address} ([oauth] mtls_address)"))?,
        ),
        None => None,
    };
    let oauth_mtls_addr = mtls_listener.as_ref().map(TcpListener::local_addr).transpose()?;
    if let Some(bound) = bundle_endpoint_addr {
        // What the discovery document advertises: the bound address (port 0 resolved).
        config.bundle_endpoint_address = Some(bound.to_string());
    }
    let relationships = config
        .federation
        .trust_domains
        .iter()
        .map(|f| federation::Relationship::from_config(f).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let admin_socket = config.admin_socket();
    let admin_listener = bind_admin_socket(&admin_socket)?;

    let state = AppState {
        config: Arc::new(config),
        trust_domain,
        stores,
        keys: Arc::clone(&keys),
        clock: Arc::clone(&clock),
        crypto,
        public_url: public_url.clone(),
    };
    // Before anything is served: trust domains dropped from the configuration lose their
    // stored bundles, so no agent is sent one.
    federation::forget_unconfigured(&state, &relationships)
        .await
        .context("deleting the bundles of trust domains no longer federated with")?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok();

    let (shutdown, watcher) = watch::channel(false);
    let stopped = |mut w: watch::Receiver<bool>| async move {
        let _ = w.wait_for(|stop| *stop).await;
    };
    let mut tasks = JoinSet::new();
    let oauth = Arc::new(
        AuthorizationServer::new(state.clone(), oauth_mtls_addr.map(|a| mtls_base_url(a, &public_url)))
            .await
            .context("starting the OAuth authorization server")?,
    );
    // The SD-CWT credential endpoint authenticates with the AS's tokens: one router (one
    // trust store) for the public and the mutual-TLS listener.
    let credentials = spice::credential_router(Arc::clone(&oauth));
    let app = public::router(state.clone(), metrics)
        .merge(oauth_endpoints::router(Arc::clone(&oauth)))
        .merge(credentials.clone());
    let stop = stopped(watcher.clone());
    let limits = &state.config.limits;
    // The https_web profile: the operator's Web PKI certificate; plain HTTP otherwise.
    let public_tls = match &state.config.public_tls {
        Some(tls) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(
            tls.server_config().context("[public_tls]")?,
        ))),
        None => None,
    };
    let limiter = ConnectionLimiter::for_listener("public endpoints", &limits.public);
    let public_limits = limits.public;
    tasks.spawn(async move {
        serve_http(listener, limiter, public_limits, public_tls, app, stop).await;
        Ok(())
    });
    let admin_app = admin::router(state.clone());
    let stop = stopped(watcher.clone());
    let limiter = ConnectionLimiter::for_listener("admin socket", &limits.admin);
    let admin_limits = limits.admin;
    tasks.spawn(async move {
        serve_http(admin_listener, limiter, admin_limits, None, admin_app, stop).await;
        Ok(())
    });
    let attestors = api::service::Attestors {
        join_token: JoinTokenAttestor::new(
            state.trust_domain.clone(),
            Arc::clone(&state.stores.join_tokens),
            Arc::clone(&state.crypto),
        ),
        x509pop,
    };
    let served = api::serve(state.clone(), agent_listener, attestors, stopped(watcher.clone()));
    tasks.spawn(async move { served.await.context("agent API") });
    if let Some(listener) = bundle_listener {
        let served = bundle_endpoint::serve(state.clone(), listener, stopped(watcher.clone()));
        tasks.spawn(async move { served.await.context("bundle endpoint") });
    }
    if let Some(listener) = mtls_listener {
        let served = serve_oauth_mtls(
            state.clone(),
            Arc::clone(&oauth),
            credentials,
            listener,
            stopped(watcher.clone()),
        );
        tasks.spawn(async move { served.await.context("OAuth mutual-TLS listener") });
    }
    federation::spawn(&state, relationships, &watcher, &mut tasks);
    let mut stop = watcher;
    let stores = state.stores.clone();
    let authorization_server = Arc::clone(&oauth);
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(ROTATION_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = keys.rotate(clock.now()).await {
                        tracing::error!(error = %e, "key rotation failed; retrying at the next tick");
                    }
                    if let Err(e) = authorization_server.refresh_trust().await {
                        tracing::warn!(error = %e, "reloading the OAuth trust bundles failed; retrying at the next tick");
                    }
                    match prune(&stores, clock.now()).await {
                        Ok((0, 0)) => {}
                        Ok((tokens, events)) => tracing::debug!(tokens, events, "pruned expired join tokens and old entry events"),
                        Err(e) => tracing::warn!(error = %e, "pruning the datastore failed; retrying at the next tick"),
                    }
                }
                _ = stop.changed() => return Ok(()),
            }
        }
    });
    tracing::info!(%public_addr, %agent_addr, admin_socket = %admin_socket.display(), "lanyard server started");
    Ok(RunningServer {
        public_addr,
        public_url,
        agent_addr,
        admin_socket,
        bundle_endpoint_addr,
        oauth_mtls_addr,
        state,
        oauth,
        shutdown,
        tasks,
        _sqlite_lock: sqlite_lock,
    })
}

/// A SQLite database file belongs to one server process, which keeps the used one-time
/// values in memory (`datastore/sql/live_jtis.rs`): two processes on one file would accept
/// each other's replays. So the server holds an exclusive lock on `<file>.lock` while it
/// runs, and does not start while another process holds it. `None` for PostgreSQL and
/// in-memory SQLite.
fn lock_sqlite_file(database_url: &str) -> Result<Option<std::fs::File>> {
    let Some(path) = SqlDataStore::sqlite_file(database_url) else {
        return Ok(None);
    };
    // The lock names the database's real path, so that two servers reaching one file by
    // different paths (a symlink, `..`) still meet at one lock. (A hard link is not
    // resolved.) A database not created yet has no real path: its directory's is used.
    let path = std::path::Path::new(path);
    let real = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(_) => match (path.parent(), path.file_name()) {
            (Some(dir), Some(name)) => {
                let dir = if dir.as_os_str().is_empty() {
                    std::path::Path::new(".")
                } else {
                    dir
                };
                std::fs::canonicalize(dir)
                    .map(|d| d.join(name))
                    .unwrap_or_else(|_| path.to_owned())
            }
            _ => path.to_owned(),
        },
    };
    let lock_path = format!("{}.lock", real.display());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening the lock file {lock_path}"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another process holds {lock_path}: a SQLite database belongs to one lanyard server \
             (replicas share a PostgreSQL database)"
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {lock_path}")),
    }
}

#[cfg(test)]
mod tests {
    use super::log_colours;

    #[test]
    fn log_lines_are_coloured_only_at_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(log_colours(true, None));
        assert!(log_colours(true, Some(OsStr::new(""))));
        assert!(!log_colours(true, Some(OsStr::new("1"))));
        assert!(!log_colours(false, None));
        assert!(!log_colours(false, Some(OsStr::new("1"))));
    }
}
