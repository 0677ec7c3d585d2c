//! The key manager's error type.

use std::path::PathBuf;

use crate::datastore::StoreError;
use crate::model::AuthorityKind;

/// Why a key-manager operation failed. No variant carries private key material.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The datastore failed.
    #[error("datastore: {0}")]
    Store(#[from] StoreError),
    /// Building or loading the X.509 CA failed.
    #[error("X.509 CA: {0}")]
    X509(#[from] lanyard_x509::Error),
    /// Generating, exporting or loading a signing key failed.
    #[error("signing key: {0}")]
    Key(#[from] lanyard_core::Error),
    /// A private key file could not be written or read.
    #[error("key file {}: {source}", path.display())]
    KeyFile {
        /// The file (or directory).
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// An encrypted private key did not decrypt: wrong key-encryption key, a key copied
    /// from another row, or tampering.
    #[error("cannot decrypt the private key of authority {id}: wrong key-encryption key or altered data")]
    Decrypt {
        /// The authority.
        id: String,
    },
    /// Encrypting a private key failed.
    #[error("cannot encrypt a private key: {0}")]
    Encrypt(String),
    /// The key-encryption key is unusable.
    #[error("invalid key-encryption key: {0}")]
    InvalidKek(String),
    /// A stored authority is inconsistent (bad public key, key/ID mismatch, another trust
    /// domain, key kept by another storage mode).
    #[error("stored authority {id} is invalid: {reason}")]
    InvalidAuthority {
        /// The authority.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// There is no active authority of this kind (run [`super::KeyManager::rotate`]).
    #[error("no active {} authority", .0.as_str())]
    NoActiveAuthority(AuthorityKind),
    /// The configuration is unusable.
    #[error("invalid key manager configuration: {0}")]
    Config(String),
}
