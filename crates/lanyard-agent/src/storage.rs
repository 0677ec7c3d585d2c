//! The agent's data directory: its SVID, key and the last trust bundle of its trust
//! domain, kept so that a restarted agent resumes without an operator; and the bootstrap
//! bundle it trusts the server with before it has one.

use std::io::Write;
use std::path::{Path, PathBuf};

use lanyard_core::{SpiffeBundle, TrustDomain};
use lanyard_x509::{X509Bundle, X509Svid};

use crate::error::{AgentError, CryptoError};

/// The agent's files in its data directory: `agent_svid.pem`, `agent_key.pem` (0600) and
/// `bundle.json` (the last bundle of its trust domain).
#[derive(Clone, Debug)]
pub(crate) struct NodeFiles {
    dir: PathBuf,
}

impl NodeFiles {
    pub(crate) fn new(dir: &Path) -> NodeFiles {
        NodeFiles { dir: dir.to_owned() }
    }

    /// Creates the directory (0700).
    pub(crate) fn prepare(&self) -> Result<(), AgentError> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&self.dir).map_err(AgentError::io("creating", &self.dir))?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(AgentError::io("restricting", &self.dir))
    }

    /// The stored agent SVID, if there is one.
    pub(crate) fn load_svid(&self) -> Result<Option<X509Svid>, AgentError> {
        let chain_path = self.dir.join("agent_svid.pem");
        let key_path = self.dir.join("agent_key.pem");
        if !chain_path.exists() || !key_path.exists() {
            return Ok(None);
        }
        let chain = std::fs::read_to_string(&chain_path).map_err(AgentError::io("reading", &chain_path))?;
        let key = std::fs::read_to_string(&key_path).map_err(AgentError::io("reading", &key_path))?;
        Ok(Some(X509Svid::from_pem(&chain, Some(&key))?))
    }

    /// Stores the agent SVID and its key.
    pub(crate) fn save_svid(&self, svid: &X509Svid) -> Result<(), AgentError> {
        let key = svid.key_pem().ok_or(AgentError::Crypto(CryptoError::MissingKey))?;
        write_private(&self.dir.join("agent_key.pem"), key.as_bytes())?;
        write_private(&self.dir.join("agent_svid.pem"), svid.chain_pem().as_bytes())
    }

    /// The stored bundle of `td`, if there is one.
    pub(crate) fn load_bundle(&self, td: &TrustDomain) -> Result<Option<SpiffeBundle>, AgentError> {
        let path = self.dir.join("bundle.json");
        match std::fs::read(&path) {
            Ok(json) => Ok(Some(SpiffeBundle::parse(td.clone(), &json)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AgentError::Io {
                what: "reading",
                path,
                source: e,
            }),
        }
    }

    /// Stores the bundle of the agent's trust domain.
    pub(crate) fn save_bundle(&self, json: &[u8]) -> Result<(), AgentError> {
        write_private(&self.dir.join("bundle.json"), json)
    }
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename) with mode 0600.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AgentError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    // A leftover temporary file (a crash mid-write) may have other permissions: start anew.
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(AgentError::io("creating", &tmp))?;
    file.write_all(bytes).map_err(AgentError::io("writing", &tmp))?;
    file.sync_all().map_err(AgentError::io("syncing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(AgentError::io("renaming", path))
}

/// Bootstrap bundles from a file: a SPIFFE bundle (JSON) or PEM CA certificates.
pub(crate) fn read_bootstrap_bundle(path: &Path, td: &TrustDomain) -> Result<X509Bundle, AgentError> {
    let bytes = std::fs::read(path).map_err(AgentError::io("reading", path))?;
    let trimmed = bytes.trim_ascii_start();
    if trimmed.starts_with(b"{") {
        let bundle = SpiffeBundle::parse(td.clone(), &bytes)?;
        Ok(X509Bundle::from_spiffe_bundle(&bundle)?)
    } else {
        let text = String::from_utf8(bytes)
            .map_err(|_| AgentError::Config(format!("{}: neither a SPIFFE bundle nor PEM", path.display())))?;
        Ok(X509Bundle::from_pem(td.clone(), &text)?)
    }
}
