//! Where the authorities' private keys live: PKCS#8 PEM files next to the server (the
//! database row then holds no private key at all), or in the database row itself,
//! encrypted with AES-256-GCM under a key-encryption key (KEK) the operator supplies.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use lanyard_core::{AeadAlgorithm, CryptoProvider};
use tokio::io::AsyncWriteExt;

use super::CaError;
use crate::model::{Authority, AuthorityKind};

/// The first byte of an encrypted private key: the format version.
const SEALED_V1: u8 = 1;
/// The AEAD that seals keys at rest.
const AEAD: AeadAlgorithm = AeadAlgorithm::Aes256Gcm;
/// The AES-GCM nonce length.
const NONCE_LEN: usize = 12;
/// The AES-GCM tag length.
const TAG_LEN: usize = 16;
/// The longest authority ID accepted as part of a file name.
const MAX_ID_LEN: usize = 128;

/// How the authorities' private keys are kept at rest.
///
/// `Debug` never prints the key-encryption key.
#[non_exhaustive]
#[derive(Clone)]
pub enum KeyStorage {
    /// Each private key is a PKCS#8 `PRIVATE KEY` PEM file, mode 0600, in this directory
    /// (created with mode 0700 if missing), named `<kind>-<id>.pem`; the datastore row's
    /// `private_key` stays empty. With several replicas the directory must be shared.
    Files(PathBuf),
    /// Each private key is stored in its datastore row, encrypted with AES-256-GCM under
    /// `kek`: `0x01 || 12-byte random nonce || ciphertext || 16-byte tag`, with the
    /// authority ID as additional authenticated data (so a row's key cannot be moved to
    /// another row).
    Encrypted {
        /// The 256-bit key-encryption key. Secret.
        kek: [u8; 32],
    },
}

impl fmt::Debug for KeyStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyStorage::Files(dir) => f.debug_tuple("Files").field(dir).finish(),
            KeyStorage::Encrypted { .. } => f.debug_struct("Encrypted").field("kek", &"<redacted>").finish(),
        }
    }
}

impl KeyStorage {
    /// [`KeyStorage::Encrypted`] with a 256-bit key-encryption key given in base64
    /// (standard or URL-safe alphabet, padded or not; surrounding whitespace is ignored),
    /// e.g. the output of `openssl rand -base64 32`.
    pub fn kek_from_base64(text: &str) -> Result<KeyStorage, CaError> {
        let text = text.trim();
        let decoded = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .ok_or_else(|| CaError::InvalidKek("not base64".into()))?;
        let kek = <[u8; 32]>::try_from(decoded.as_slice())
            .map_err(|_| CaError::InvalidKek(format!("it decodes to {} bytes, not 32", decoded.len())))?;
        Ok(KeyStorage::Encrypted { kek })
    }

    /// Stores a new authority's PKCS#8 private key and returns what goes into the
    /// datastore row's `private_key` (empty for files); `crypto` encrypts.
    pub(crate) async fn seal(
        &self,
        kind: AuthorityKind,
        id: &str,
        pkcs8: &[u8],
        crypto: &dyn CryptoProvider,
    ) -> Result<Vec<u8>, CaError> {
        match self {
            KeyStorage::Files(dir) => {
                write_key_file(dir, &file_name(kind, id)?, pkcs8).await?;
                Ok(Vec::new())
            }
            KeyStorage::Encrypted { kek } => encrypt(crypto, kek, id, pkcs8),
        }
    }

    /// The PKCS#8 private key of a stored authority (`crypto` decrypts). Secret.
    pub(crate) async fn open(&self, authority: &Authority, crypto: &dyn CryptoProvider) -> Result<Vec<u8>, CaError> {
        let invalid = |reason: &str| CaError::InvalidAuthority {
            id: authority.id.clone(),
            reason: reason.to_owned(),
        };
        match self {
            KeyStorage::Files(dir) => {
                if !authority.private_key.is_empty() {
                    return Err(invalid(
                        "its private key is in the datastore, but file key storage is configured",
                    ));
                }
                let path = dir.join(file_name(authority.kind, &authority.id)?);
                let text = tokio::fs::read_to_string(&path)
                    .await
                    .map_err(|source| CaError::KeyFile {
                        path: path.clone(),
                        source,
                    })?;
                let block = pem::parse(text).map_err(|e| CaError::KeyFile {
                    path: path.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
                })?;
                if block.tag() != "PRIVATE KEY" {
                    return Err(CaError::KeyFile {
                        path,
                        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not a PRIVATE KEY PEM block"),
                    });
                }
                Ok(block.into_contents())
            }
            KeyStorage::Encrypted { kek } => {
                if authority.private_key.is_empty() {
                    return Err(invalid(
                        "its private key is not in the datastore (it was stored with file key storage)",
                    ));
                }
                decrypt(crypto, kek, &authority.id, &authority.private_key)
            }
        }
    }

    /// Forgets a deleted authority's private key (removes its file; nothing to do for
    /// encrypted storage, whose key went with the row). A missing file is not an error.
    pub(crate) async fn remove(&self, kind: AuthorityKind, id: &str) -> Result<(), CaError> {
        match self {
            KeyStorage::Files(dir) => {
                let path = dir.join(file_name(kind, id)?);
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(source) => Err(CaError::KeyFile { path, source }),
                }
            }
            KeyStorage::Encrypted { .. } => Ok(()),
        }
    }
}

/// `<kind>-<id>.pem`, refusing IDs that are not plain base64url (a datastore row must not
/// be able to point outside the key directory).
fn file_name(kind: AuthorityKind, id: &str) -> Result<String, CaError> {
    let plain = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !plain {
        return Err(CaError::InvalidAuthority {
            id: id.chars().take(MAX_ID_LEN).collect(),
            reason: "the ID is not usable as a key file name".into(),
        });
    }
    Ok(format!("{}-{id}.pem", kind.as_str()))
}

/// Writes `pkcs8` as PEM to `dir/name` atomically (temporary file, fsync, rename, fsync
/// of the directory), mode 0600 from the start.
async fn write_key_file(dir: &Path, name: &str, pkcs8: &[u8]) -> Result<(), CaError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CaError::KeyFile { path, source }
    };
    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .await
        .map_err(io_err(dir))?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.to_vec()));
    let written = async {
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .await?;
        // The file may have existed with looser permissions: tighten before writing.
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).await?;
        file.write_all(pem.as_bytes()).await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&tmp, &path).await
    }
    .await;
    if let Err(source) = written {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(CaError::KeyFile { path, source });
    }
    // Make the rename itself durable before the datastore row refers to the file.
    let handle = tokio::fs::File::open(dir).await.map_err(io_err(dir))?;
    handle.sync_all().await.map_err(io_err(dir))
}

/// `0x01 || nonce || AES-256-GCM(kek, nonce, aad = id, plaintext) || tag`.
fn encrypt(provider: &dyn CryptoProvider, kek: &[u8; 32], id: &str, plaintext: &[u8]) -> Result<Vec<u8>, CaError> {
    let mut nonce = [0u8; NONCE_LEN];
    provider
        .fill_random(&mut nonce)
        .map_err(|_| CaError::Encrypt("no randomness for the nonce".into()))?;
    let body = provider
        .aead_seal(AEAD, kek, &nonce, id.as_bytes(), plaintext)
        .map_err(|_| CaError::Encrypt("AES-GCM sealing failed".into()))?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + body.len());
    out.push(SEALED_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reverses [`encrypt`]; any mismatch (wrong KEK, another row's key, tampering) is
/// [`CaError::Decrypt`].
fn decrypt(provider: &dyn CryptoProvider, kek: &[u8; 32], id: &str, sealed: &[u8]) -> Result<Vec<u8>, CaError> {
    let failed = || CaError::Decrypt { id: id.to_owned() };
    let (&version, rest) = sealed.split_first().ok_or_else(failed)?;
    if version != SEALED_V1 || rest.len() < NONCE_LEN + TAG_LEN {
        return Err(failed());
    }
    let (nonce, body) = rest.split_at(NONCE_LEN);
    provider
        .aead_open(AEAD, kek, nonce, id.as_bytes(), body)
        .map_err(|_| failed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_binding() {
        let kek = [7u8; 32];
        let crypto = lanyard_crypto::provider();
        let crypto = crypto.as_ref();
        let sealed = encrypt(crypto, &kek, "abc", b"secret pkcs8").unwrap();
        assert_eq!(sealed[0], SEALED_V1);
        assert_eq!(sealed.len(), 1 + NONCE_LEN + 12 + TAG_LEN);
        assert_eq!(decrypt(crypto, &kek, "abc", &sealed).unwrap(), b"secret pkcs8");
        // Another ID (AAD), another KEK, a flipped bit, or a truncation all fail.
        assert!(matches!(
            decrypt(crypto, &kek, "abd", &sealed),
            Err(CaError::Decrypt { .. })
        ));
        assert!(matches!(
            decrypt(crypto, &[8u8; 32], "abc", &sealed),
            Err(CaError::Decrypt { .. })
        ));
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(matches!(
            decrypt(crypto, &kek, "abc", &flipped),
            Err(CaError::Decrypt { .. })
        ));
        assert!(matches!(
            decrypt(crypto, &kek, "abc", &sealed[..10]),
            Err(CaError::Decrypt { .. })
        ));
        // Nonces are random: two seals differ.
        assert_ne!(
            encrypt(crypto, &kek, "abc", b"x").unwrap(),
            encrypt(crypto, &kek, "abc", b"x").unwrap()
        );
    }

    #[test]
    fn kek_parsing() {
        let kek = |text: &str| match KeyStorage::kek_from_base64(text).unwrap() {
            KeyStorage::Encrypted { kek } => kek,
            KeyStorage::Files(_) => panic!("not encrypted"),
        };
        let b64 = STANDARD.encode([1u8; 32]);
        assert_eq!(kek(&format!(" {b64}\n")), [1u8; 32]);
        assert_eq!(kek(&URL_SAFE_NO_PAD.encode([0xfbu8; 32])), [0xfbu8; 32]);
        assert!(matches!(
            KeyStorage::kek_from_base64(&STANDARD.encode([1u8; 16])),
            Err(CaError::InvalidKek(_))
        ));
        assert!(matches!(
            KeyStorage::kek_from_base64("%%%"),
            Err(CaError::InvalidKek(_))
        ));
    }

    #[test]
    fn debug_redacts_the_kek() {
        let s = format!("{:?}", KeyStorage::Encrypted { kek: [0x42; 32] });
        assert!(!s.contains("66"), "{s}");
        assert!(s.contains("redacted"));
    }

    #[test]
    fn file_names_stay_in_the_directory() {
        assert_eq!(file_name(AuthorityKind::Jwt, "aB-_9").unwrap(), "jwt-aB-_9.pem");
        for bad in ["", "../x", "a/b", "a.b", &"x".repeat(200)] {
            assert!(file_name(AuthorityKind::X509, bad).is_err(), "{bad}");
        }
    }
}
