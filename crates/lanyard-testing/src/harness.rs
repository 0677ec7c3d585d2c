//! A real server in process (SQLite in a temporary directory, listeners on loopback)
//! (feature `server`), and agents attested to it (feature `harness`): the world of the
//! server's agent-API tests and of the agent's end-to-end tests.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
#[cfg(feature = "harness")]
use std::time::{Duration, Instant};

#[cfg(feature = "harness")]
use lanyard_agent::state::Snapshot;
#[cfg(feature = "harness")]
use lanyard_agent::{AgentConfig, RunningAgent};
use lanyard_core::{SpiffeBundle, SpiffeId, UnixTime, WorkloadId};
use lanyard_server::model::{EntrySpec, Selector};
use lanyard_server::{RunningServer, ServerConfig};
use tempfile::TempDir;

/// The trust domain of the harness's server (`ServerConfig::default()`'s).
pub const TRUST_DOMAIN: &str = "example.org";

/// A running server and the directory it and its agents keep their files in.
pub struct Harness {
    /// The running server.
    pub server: RunningServer,
    /// The directory: `server/` (the server's data), `bundle.json` (its bundle, the
    /// agents' bootstrap), and whatever the test puts there.
    pub dir: TempDir,
}

impl Harness {
    /// A server for [`TRUST_DOMAIN`] with the default configuration, listening on
    /// ephemeral loopback ports.
    pub async fn start() -> Harness {
        Harness::start_with(|_, _| {}).await
    }

    /// Like [`Harness::start`], with `adjust` applied to the configuration first (it gets
    /// the directory, to write files the configuration names).
    pub async fn start_with(adjust: impl FnOnce(&mut ServerConfig, &Path)) -> Harness {
        Harness::start_in(tempfile::tempdir().unwrap(), adjust).await
    }

    /// Stops the server and starts it again on the same directory and data, configured by
    /// `adjust`.
    pub async fn restart_with(self, adjust: impl FnOnce(&mut ServerConfig, &Path)) -> Harness {
        let Harness { server, dir } = self;
        server.shutdown().await.unwrap();
        Harness::start_in(dir, adjust).await
    }

    /// Like [`Harness::start_with`] in `dir` (which may already hold files the
    /// configuration names).
    pub async fn start_in(dir: TempDir, adjust: impl FnOnce(&mut ServerConfig, &Path)) -> Harness {
        let mut config = ServerConfig {
            trust_domain: TRUST_DOMAIN.into(),
            data_dir: dir.path().join("server"),
            public_address: "127.0.0.1:0".into(),
            agent_address: "127.0.0.1:0".into(),
            ..ServerConfig::default()
        };
        adjust(&mut config, dir.path());
        let server = lanyard_server::start(config).await.unwrap();
        let bundle = server.state.keys.bundle().await.unwrap();
        std::fs::write(dir.path().join("bundle.json"), bundle.to_json()).unwrap();
        Harness { server, dir }
    }

    /// `name` inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The server's clock.
    pub fn now(&self) -> UnixTime {
        self.server.state.clock.now()
    }

    /// The server's current bundle.
    pub async fn bundle(&self) -> SpiffeBundle {
        self.server.state.keys.bundle().await.unwrap()
    }

    /// A new join token, valid for ten minutes.
    pub async fn join_token(&self) -> String {
        lanyard_server::endpoints::admin::new_join_token(&self.server.state, 600)
            .await
            .unwrap()
            .0
    }

    /// A fresh join token, the agent ID it attests to ([`join_token_agent_id`]), and a
    /// unix selector matching this process.
    pub async fn enroll(&self) -> (String, String, String) {
        let token = self.join_token().await;
        let agent_id = join_token_agent_id(&token);
        (token, agent_id, format!("unix:uid:{}", my_uid()))
    }

    /// Creates an entry for `spiffe_id` under `parent` with `selectors` ([`entry_spec`]); its ID.
    pub async fn entry(&self, spiffe_id: &str, parent: &str, selectors: &[&str]) -> String {
        self.create(&entry_spec(spiffe_id, parent, selectors)).await
    }

    /// Creates the entry `spec`; its ID.
    pub async fn create(&self, spec: &EntrySpec) -> String {
        self.server
            .state
            .stores
            .entries
            .create_entry(spec, self.now())
            .await
            .unwrap()
            .id
    }

    #[cfg(feature = "harness")]
    /// An agent configuration for this server: bootstrap bundle `bundle.json`, data in
    /// `<agent>/data`, the Workload API socket `<agent>-socket/api.sock`
    /// ([`Harness::socket`]), no health listener unless the test sets one.
    pub fn agent_config(&self, agent: &str, join_token: Option<String>) -> AgentConfig {
        AgentConfig {
            trust_domain: TRUST_DOMAIN.into(),
            server_address: self.server.agent_addr.to_string(),
            trust_bundle_path: Some(self.path("bundle.json")),
            join_token,
            data_dir: self.path(agent).join("data"),
            socket_path: self.socket(agent),
            health_address: String::new(),
            ..AgentConfig::default()
        }
    }

    #[cfg(feature = "harness")]
    /// The Workload API socket of the agent configured by [`Harness::agent_config`].
    pub fn socket(&self, agent: &str) -> PathBuf {
        self.path(&format!("{agent}-socket")).join("api.sock")
    }
}

#[cfg(feature = "harness")]
/// Starts an agent with `config` and the production provider.
pub async fn start_agent(config: AgentConfig) -> RunningAgent {
    lanyard_agent::start(config, lanyard_crypto::provider()).await.unwrap()
}

/// An entry for `spiffe_id` under `parent` with `selectors` and the tests' usual TTLs
/// (X.509-SVID 600 s, JWT-SVID 300 s, WIT 600 s).
pub fn entry_spec(spiffe_id: &str, parent: &str, selectors: &[&str]) -> EntrySpec {
    EntrySpec {
        spiffe_id: WorkloadId::parse(spiffe_id).unwrap(),
        parent_id: SpiffeId::parse(parent).unwrap(),
        selectors: selectors.iter().map(|s| Selector::parse(s).unwrap()).collect(),
        x509_svid_ttl: 600,
        jwt_svid_ttl: 300,
        wit_ttl: 600,
        dns_names: vec![],
        federates_with: Vec::new(),
        admin: false,
        claims: Default::default(),
    }
}

/// The uid of this process (the unix selector that matches it).
pub fn my_uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

/// The agent ID a join token attests to, computed here independently of the server and
/// agent code: `spiffe://<td>/lanyard/agent/join_token/<first 16 hex digits of SHA-256>`.
pub fn join_token_agent_id(token: &str) -> String {
    let digest = lanyard_core::hex::encode(&lanyard_crypto::provider().sha256(token.as_bytes()));
    format!("spiffe://{TRUST_DOMAIN}/lanyard/agent/join_token/{}", &digest[..16])
}

#[cfg(feature = "harness")]
/// Waits (up to 10 s, else panics naming `what`) until the agent's state satisfies `ready`.
pub async fn wait_for(agent: &RunningAgent, what: &str, ready: impl Fn(&Snapshot) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut changes = agent.manager.store().subscribe();
    loop {
        if ready(&changes.borrow_and_update()) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        let _ = tokio::time::timeout(Duration::from_millis(200), changes.changed()).await;
    }
}
