//! A workload's own credentials — its WIT and the private key the WIT binds — and where
//! the middleware gets them: fixed values, files re-read when they change, or (feature
//! `workload-api`, in `workload_source.rs`) the node agent's Workload API.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use lanyard_core::jose::decode_unverified;
use lanyard_core::{CryptoProvider, Jwk, SigningKey, UnixTime, WorkloadId};

use crate::error::Error;

/// A WIT and the private key of its `cnf.jwk`.
pub struct WorkloadCredentials {
    /// The WIT, as sent in `Workload-Identity-Token`.
    pub wit: String,
    /// The private key whose public half is the WIT's `cnf.jwk`.
    pub key: Arc<dyn SigningKey>,
    /// The WIT's subject.
    pub id: WorkloadId,
    /// The WIT's `exp`.
    pub expires: UnixTime,
}

impl fmt::Debug for WorkloadCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadCredentials")
            .field("id", &self.id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl WorkloadCredentials {
    /// Pairs a WIT with its key, checking (without verifying the WIT's signature, which
    /// is the receiver's job) that the key is the one the WIT binds.
    pub fn new(wit: String, key: Arc<dyn SigningKey>, provider: &dyn CryptoProvider) -> Result<Self, Error> {
        let decoded = decode_unverified(&wit)?;
        let sub = decoded.claims.get("sub").and_then(|v| v.as_str()).unwrap_or_default();
        let id = WorkloadId::parse(sub)
            .map_err(|source| lanyard_core::Error::InvalidIdentifier { context: "sub", source })?;
        let expires = UnixTime(
            decoded
                .claims
                .get("exp")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0),
        );
        let cnf = decoded
            .claims
            .get("cnf")
            .and_then(|c| c.get("jwk"))
            .ok_or(lanyard_core::Error::MissingClaim("cnf.jwk"))?;
        let cnf = Jwk::from_json(cnf.to_string().as_bytes())?;
        if cnf.thumbprint(provider)? != key.public_jwk().thumbprint(provider)? {
            return Err(lanyard_core::Error::InvalidKey("the key is not the WIT's cnf.jwk".into()).into());
        }
        Ok(WorkloadCredentials { wit, key, id, expires })
    }
}

/// Supplies the current credentials; called for every outgoing request or signed
/// response, so implementations should be cheap when nothing changed.
pub trait CredentialSource: Send + Sync + fmt::Debug {
    /// The credentials to use now.
    fn credentials(&self) -> Result<Arc<WorkloadCredentials>, Error>;
}

/// Credentials that never change.
#[derive(Debug, Clone)]
pub struct StaticCredentials(pub Arc<WorkloadCredentials>);

impl CredentialSource for StaticCredentials {
    fn credentials(&self) -> Result<Arc<WorkloadCredentials>, Error> {
        Ok(Arc::clone(&self.0))
    }
}

/// Credentials read from a WIT file and a private-key file (JWK or PKCS#8 PEM), read
/// again whenever either file's modification time or size changes (for example when
/// an agent rotates them).
#[derive(Debug)]
pub struct FileCredentialSource {
    wit_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<dyn CryptoProvider>,
    loaded: Mutex<Option<(Stamp, Arc<WorkloadCredentials>)>>,
}

type Stamp = [(Option<SystemTime>, u64); 2];

fn stamp(path: &Path) -> (Option<SystemTime>, u64) {
    std::fs::metadata(path).map_or((None, 0), |m| (m.modified().ok(), m.len()))
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::CredentialSource {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

impl FileCredentialSource {
    /// A source reading the WIT from `wit_path` and the key from `key_path`.
    pub fn new(wit_path: impl Into<PathBuf>, key_path: impl Into<PathBuf>, provider: Arc<dyn CryptoProvider>) -> Self {
        FileCredentialSource {
            wit_path: wit_path.into(),
            key_path: key_path.into(),
            provider,
            loaded: Mutex::new(None),
        }
    }

    fn load(&self) -> Result<Arc<WorkloadCredentials>, Error> {
        let wit = read(&self.wit_path)?.trim().to_owned();
        let key_text = read(&self.key_path)?;
        let bad_key = |e: lanyard_core::Error| Error::CredentialSource {
            path: self.key_path.display().to_string(),
            reason: e.to_string(),
        };
        let key: Arc<dyn SigningKey> = if key_text.trim_start().starts_with('{') {
            let jwk = Jwk::from_json(key_text.as_bytes()).map_err(bad_key)?;
            self.provider.signing_key(&jwk).map_err(bad_key)?
        } else {
            Arc::new(lanyard_crypto::KeyPair::from_pkcs8_pem(&key_text, None).map_err(bad_key)?)
        };
        Ok(Arc::new(WorkloadCredentials::new(wit, key, self.provider.as_ref())?))
    }
}

impl CredentialSource for FileCredentialSource {
    fn credentials(&self) -> Result<Arc<WorkloadCredentials>, Error> {
        let now = [stamp(&self.wit_path), stamp(&self.key_path)];
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((seen, creds)) = loaded.as_ref()
            && *seen == now
        {
            return Ok(Arc::clone(creds));
        }
        let creds = self.load()?;
        *loaded = Some((now, Arc::clone(&creds)));
        Ok(creds)
    }
}
