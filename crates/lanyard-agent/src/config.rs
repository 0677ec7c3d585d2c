//! Agent configuration: a TOML file (every option is documented in `conf/agent.toml`),
//! then `LANYARD_AGENT_*` environment variables, then command-line flags, over built-in
//! defaults.

use std::path::{Path, PathBuf};

use lanyard_core::{SpiffeId, TrustDomain};
use lanyard_net::ListenerLimits;
use serde::Deserialize;

use crate::error::AgentError;

/// How the agent proves its node's identity to the server.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct X509PopConfig {
    /// PEM certificate chain of the node certificate (leaf first).
    pub cert_path: PathBuf,
    /// PEM PKCS#8 private key of the node certificate.
    pub key_path: PathBuf,
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Compact human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// The agent's configuration. `Debug` shows everything but the join token.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// The trust domain of the server (and of every SVID this agent serves).
    pub trust_domain: String,
    /// Address of the server's agent API (`host:port`).
    pub server_address: String,
    /// The SPIFFE ID the server must present; default `spiffe://<trust domain>/lanyard/server`.
    pub server_spiffe_id: Option<String>,
    /// Bootstrap trust bundle (SPIFFE bundle JSON or PEM CA certificates) used to
    /// authenticate the server before the agent has a bundle of its own.
    pub trust_bundle_path: Option<PathBuf>,
    /// One-time join token for the first attestation.
    pub join_token: Option<String>,
    /// Node certificate for x509pop attestation (used when there is no join token).
    pub x509pop: Option<X509PopConfig>,
    /// Where the agent keeps its SVID, key and bundle between restarts.
    pub data_dir: PathBuf,
    /// Path of the Workload API Unix socket.
    pub socket_path: PathBuf,
    /// Address of the health endpoint (`/healthz`, `/readyz`, `/status`); empty disables it.
    pub health_address: String,
    /// Add the `unix:path` and `unix:sha256` selectors (reads each workload's executable).
    pub discover_workload_path: bool,
    /// How long a workload waits for a freshly matched entry's first SVID, in seconds.
    pub first_svid_timeout: u64,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (`info`, `lanyard_agent=debug`, ...).
    pub log_level: String,
    /// Connection caps and timeouts (`[limits.workload_api]`, `[limits.health]`).
    pub limits: AgentLimits,
    /// JWT-SVIDs and WIT-SVIDs the server mints for the workloads of one uid (cache
    /// misses only): a burst of this many, ...
    pub mint_burst_per_uid: u32,
    /// ... refilled at this many per minute. 0 disables the limit.
    pub mints_per_minute_per_uid: u32,
}

/// `[limits.<listener>]`: connection caps and timeouts of the agent's listeners.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AgentLimits {
    /// The Workload API socket; the per-peer cap applies per uid.
    pub workload_api: ListenerLimits,
    /// The health endpoint.
    pub health: ListenerLimits,
}

impl Default for AgentLimits {
    fn default() -> Self {
        AgentLimits {
            workload_api: ListenerLimits {
                max_connections: 2048,
                max_connections_per_peer: 256,
                ..ListenerLimits::default()
            },
            health: ListenerLimits {
                max_connections: 64,
                max_connections_per_peer: 0,
                ..ListenerLimits::default()
            },
        }
    }
}

impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConfig")
            .field("trust_domain", &self.trust_domain)
            .field("server_address", &self.server_address)
            .field("server_spiffe_id", &self.server_spiffe_id)
            .field("trust_bundle_path", &self.trust_bundle_path)
            .field("join_token", &self.join_token.as_ref().map(|_| "<redacted>"))
            .field("x509pop", &self.x509pop)
            .field("data_dir", &self.data_dir)
            .field("socket_path", &self.socket_path)
            .field("health_address", &self.health_address)
            .field("discover_workload_path", &self.discover_workload_path)
            .field("first_svid_timeout", &self.first_svid_timeout)
            .field("log_format", &self.log_format)
            .field("log_level", &self.log_level)
            .field("limits", &self.limits)
            .field("mint_burst_per_uid", &self.mint_burst_per_uid)
            .field("mints_per_minute_per_uid", &self.mints_per_minute_per_uid)
            .finish()
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            trust_domain: "example.org".into(),
            server_address: "127.0.0.1:8081".into(),
            server_spiffe_id: None,
            trust_bundle_path: None,
            join_token: None,
            x509pop: None,
            data_dir: PathBuf::from("lanyard-agent-data"),
            socket_path: PathBuf::from("lanyard-agent-socket/api.sock"),
            health_address: "127.0.0.1:8082".into(),
            discover_workload_path: true,
            first_svid_timeout: 10,
            log_format: LogFormat::Human,
            log_level: "info".into(),
            limits: AgentLimits::default(),
            mint_burst_per_uid: 50,
            mints_per_minute_per_uid: 600,
        }
    }
}

impl AgentConfig {
    /// Loads `path` (if given) and applies `LANYARD_AGENT_*` overrides from `env`.
    pub fn load(path: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<AgentConfig, AgentError> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(AgentError::io("reading", path))?;
                toml::from_str(&text).map_err(AgentError::setting(path.display().to_string()))?
            }
            None => AgentConfig::default(),
        };
        let text = |name: &str| env(&format!("LANYARD_AGENT_{name}"));
        if let Some(v) = text("TRUST_DOMAIN") {
            config.trust_domain = v;
        }
        if let Some(v) = text("SERVER_ADDRESS") {
            config.server_address = v;
        }
        if let Some(v) = text("SERVER_SPIFFE_ID") {
            config.server_spiffe_id = Some(v);
        }
        if let Some(v) = text("TRUST_BUNDLE") {
            config.trust_bundle_path = Some(v.into());
        }
        if let Some(v) = text("JOIN_TOKEN") {
            config.join_token = Some(v);
        }
        if let Some(v) = text("DATA_DIR") {
            config.data_dir = v.into();
        }
        if let Some(v) = text("SOCKET") {
            config.socket_path = v.into();
        }
        if let Some(v) = text("HEALTH_ADDRESS") {
            config.health_address = v;
        }
        if let Some(v) = text("LOG_FORMAT") {
            config.log_format = match v.as_str() {
                "human" => LogFormat::Human,
                "json" => LogFormat::Json,
                other => {
                    return Err(AgentError::Config(format!(
                        "LANYARD_AGENT_LOG_FORMAT {other:?} is not human or json"
                    )));
                }
            };
        }
        if let Some(v) = text("LOG") {
            config.log_level = v;
        }
        Ok(config)
    }

    /// Checks the values that can be checked without touching the network.
    pub fn validate(&self) -> Result<(), AgentError> {
        self.trust_domain()?;
        self.server_spiffe_id()?;
        if self.server_address.trim().is_empty() {
            return Err(AgentError::Config("server_address is empty".into()));
        }
        if !self.socket_path.is_absolute() && self.socket_path.as_os_str().is_empty() {
            return Err(AgentError::Config("socket_path is empty".into()));
        }
        if self.socket_path.starts_with(&self.data_dir) {
            return Err(AgentError::Config(format!(
                "socket_path {} is inside data_dir {}: the data directory is private (0700), so no other user could reach the socket; put the socket in its own directory",
                self.socket_path.display(),
                self.data_dir.display()
            )));
        }
        self.limits
            .workload_api
            .validate("limits.workload_api")
            .and_then(|()| self.limits.health.validate("limits.health"))
            .map_err(AgentError::Config)?;
        Ok(())
    }

    /// Raises the open-file limit and scales the listeners' connection caps into it.
    pub fn fit_limits_to_nofile(&mut self) {
        /// Descriptors kept for the server connection, data files and the process.
        const RESERVE: u64 = 128;
        let Some(nofile) = lanyard_net::raise_nofile_limit() else {
            return;
        };
        let l = &mut self.limits;
        if lanyard_net::fit_to_nofile(&mut [&mut l.workload_api, &mut l.health], nofile.now, RESERVE) {
            tracing::warn!(
                open_file_limit = nofile.now,
                workload_api = l.workload_api.max_connections,
                health = l.health.max_connections,
                "the open-file limit is low: connection caps were scaled down to fit it"
            );
        }
    }

    /// The parsed trust domain.
    pub fn trust_domain(&self) -> Result<TrustDomain, AgentError> {
        TrustDomain::parse(&self.trust_domain).map_err(AgentError::setting("trust_domain"))
    }

    /// The SPIFFE ID the server must present.
    pub fn server_spiffe_id(&self) -> Result<SpiffeId, AgentError> {
        let text = match &self.server_spiffe_id {
            Some(id) => id.clone(),
            None => format!("spiffe://{}/lanyard/server", self.trust_domain),
        };
        let id = SpiffeId::parse(&text).map_err(AgentError::setting("server_spiffe_id"))?;
        if id.trust_domain().name() != self.trust_domain {
            return Err(AgentError::Config(format!(
                "server_spiffe_id {id} is not in trust domain {}",
                self.trust_domain
            )));
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_env_and_validation() {
        let c = AgentConfig::load(None, |k| {
            (k == "LANYARD_AGENT_TRUST_DOMAIN").then(|| "prod.example".to_owned())
        })
        .unwrap();
        assert_eq!(c.trust_domain, "prod.example");
        c.validate().unwrap();
        assert_eq!(
            c.server_spiffe_id().unwrap().to_string(),
            "spiffe://prod.example/lanyard/server"
        );
        let bad = AgentConfig {
            trust_domain: "Bad Domain".into(),
            ..AgentConfig::default()
        };
        assert!(bad.validate().is_err());
        let foreign = AgentConfig {
            server_spiffe_id: Some("spiffe://other.org/lanyard/server".into()),
            ..AgentConfig::default()
        };
        assert!(foreign.validate().is_err());
        assert!(AgentConfig::load(None, |k| (k == "LANYARD_AGENT_LOG_FORMAT").then(|| "xml".to_owned())).is_err());
    }

    #[test]
    fn documented_file_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/agent.toml");
        let c = AgentConfig::load(Some(&path), |_| None).unwrap();
        let d = AgentConfig::default();
        assert_eq!(
            (
                c.trust_domain,
                c.server_address,
                c.data_dir,
                c.socket_path,
                c.health_address
            ),
            (
                d.trust_domain,
                d.server_address,
                d.data_dir,
                d.socket_path,
                d.health_address
            )
        );
        assert_eq!(
            (c.discover_workload_path, c.first_svid_timeout),
            (d.discover_workload_path, d.first_svid_timeout)
        );
        assert_eq!(
            (c.limits, c.mint_burst_per_uid, c.mints_per_minute_per_uid),
            (d.limits, d.mint_burst_per_uid, d.mints_per_minute_per_uid)
        );
        // The socket must not sit in the private data directory.
        let inside = AgentConfig {
            socket_path: AgentConfig::default().data_dir.join("public/api.sock"),
            ..AgentConfig::default()
        };
        assert!(inside.validate().unwrap_err().to_string().contains("inside data_dir"));
    }
}
