//! Agent configuration: a TOML file (every option is documented in `conf/agent.toml`),
//! then `LANYARD_AGENT_*` environment variables, then command-line flags, over built-in
//! defaults.

use std::path::{Path, PathBuf};

use lanyard_core::{SpiffeId, TrustDomain};
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
            socket_path: PathBuf::from("lanyard-agent-data/public/api.sock"),
            health_address: "127.0.0.1:8082".into(),
            discover_workload_path: true,
            first_svid_timeout: 10,
            log_format: LogFormat::Human,
            log_level: "info".into(),
        }
    }
}

impl AgentConfig {
    /// Loads `path` (if given) and applies `LANYARD_AGENT_*` overrides from `env`.
    pub fn load(path: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<AgentConfig, AgentError> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(AgentError::io("reading", path))?;
                toml::from_str(&text).map_err(|e| AgentError::Config(format!("{}: {e}", path.display())))?
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
        Ok(())
    }

    /// The parsed trust domain.
    pub fn trust_domain(&self) -> Result<TrustDomain, AgentError> {
        TrustDomain::parse(&self.trust_domain).map_err(|e| AgentError::Config(format!("trust_domain: {e}")))
    }

    /// The SPIFFE ID the server must present.
    pub fn server_spiffe_id(&self) -> Result<SpiffeId, AgentError> {
        let text = match &self.server_spiffe_id {
            Some(id) => id.clone(),
            None => format!("spiffe://{}/lanyard/server", self.trust_domain),
        };
        let id = SpiffeId::parse(&text).map_err(|e| AgentError::Config(format!("server_spiffe_id: {e}")))?;
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
    }
}
