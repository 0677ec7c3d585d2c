//! The crypto provider interface. `lanyard-core` never links a crypto library: it
//! asks a [`CryptoProvider`] (for example `lanyard_crypto::provider()`) to parse keys,
//! sign, verify, hash, encrypt, authenticate and draw random bytes.
//!
//! Every primitive is named by a small closed enum ([`DigestAlgorithm`],
//! [`AeadAlgorithm`], [`MacAlgorithm`]) so that callers ask for an operation, never for a
//! library type, and no crate but the provider's names the crypto library.

use std::fmt;
use std::sync::Arc;

use crate::alg::Algorithm;
use crate::error::Error;
use crate::jose::Jwk;

/// Parses keys and performs the few primitives the protocol code needs.
pub trait CryptoProvider: Send + Sync + fmt::Debug {
    /// Parses the public part of `jwk` into a key that verifies `alg` signatures.
    ///
    /// Fails with [`Error::InvalidKey`] when the key does not fit `alg` (wrong type or
    /// curve, RSA modulus under 2048 bits) or is malformed.
    fn verifying_key(&self, jwk: &Jwk, alg: Algorithm) -> Result<Arc<dyn VerifyingKey>, Error>;

    /// Loads a private JWK (one with `d`) as a signing key for its `alg` member, or for
    /// the algorithm implied by its curve when `alg` is absent (RSA keys need `alg`).
    fn signing_key(&self, jwk: &Jwk) -> Result<Arc<dyn SigningKey>, Error>;

    /// Generates a fresh key pair for `alg` (RSA keys are 2048 bits).
    fn generate_key(&self, alg: Algorithm) -> Result<Arc<dyn SigningKey>, Error>;

    /// SHA-256 of `data`.
    fn sha256(&self, data: &[u8]) -> [u8; 32];

    /// Fills `out` with cryptographically secure random bytes.
    fn fill_random(&self, out: &mut [u8]) -> Result<(), Error>;

    /// Starts an incremental hash computation (for inputs read in pieces, such as files).
    ///
    /// Fails with [`Error::Crypto`] only for an algorithm the provider does not implement.
    fn hasher(&self, alg: DigestAlgorithm) -> Result<Box<dyn Hasher>, Error>;

    /// The digest of `data` under `alg`, in one call.
    fn digest(&self, alg: DigestAlgorithm, data: &[u8]) -> Result<Digest, Error> {
        let mut hasher = self.hasher(alg)?;
        hasher.update(data);
        Ok(hasher.finish())
    }

    /// Encrypts and authenticates `plaintext` (and authenticates `aad`) with `key` and
    /// `nonce`, returning the ciphertext with the authentication tag appended.
    ///
    /// Fails with [`Error::InvalidKey`] when `key` or `nonce` has the wrong length for
    /// `alg`. The caller must never reuse a nonce with the same key.
    fn aead_seal(
        &self,
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error>;

    /// Checks and decrypts `ciphertext_and_tag` (as [`CryptoProvider::aead_seal`] returns
    /// it), returning the plaintext. Fails with [`Error::Decryption`] when the tag does not
    /// verify (wrong key, nonce, `aad`, or altered bytes).
    fn aead_open(
        &self,
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<Vec<u8>, Error>;

    /// The message authentication code of `data` under `key`.
    fn mac(&self, alg: MacAlgorithm, key: &[u8], data: &[u8]) -> Result<Digest, Error>;

    /// Checks `tag` against the MAC of `data` under `key`, in constant time. Fails with
    /// [`Error::BadSignature`] when it does not match.
    fn mac_verify(&self, alg: MacAlgorithm, key: &[u8], data: &[u8], tag: &[u8]) -> Result<(), Error>;
}

/// A hash function a [`CryptoProvider`] computes.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// SHA-256 (FIPS 180-4).
    Sha256,
    /// SHA-384 (FIPS 180-4).
    Sha384,
    /// SHA-512 (FIPS 180-4).
    Sha512,
}

impl DigestAlgorithm {
    /// Every digest algorithm, in a stable order.
    pub const ALL: [DigestAlgorithm; 3] = [
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha384,
        DigestAlgorithm::Sha512,
    ];

    /// The digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 32,
            DigestAlgorithm::Sha384 => 48,
            DigestAlgorithm::Sha512 => 64,
        }
    }

    /// The COSE algorithm identifier (IANA "COSE Algorithms", RFC 9054 §2): -16, -43, -44.
    pub fn cose_id(self) -> i64 {
        match self {
            DigestAlgorithm::Sha256 => -16,
            DigestAlgorithm::Sha384 => -43,
            DigestAlgorithm::Sha512 => -44,
        }
    }

    /// The digest algorithm with COSE identifier `id`, if Lanyard implements it.
    pub fn from_cose_id(id: i64) -> Option<DigestAlgorithm> {
        DigestAlgorithm::ALL.into_iter().find(|a| a.cose_id() == id)
    }

    /// The name in the IANA "Named Information Hash Algorithm" registry (`sha-256`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha-256",
            DigestAlgorithm::Sha384 => "sha-384",
            DigestAlgorithm::Sha512 => "sha-512",
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The output of a hash function or MAC: at most 64 bytes, held without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    len: u8,
    bytes: [u8; Digest::MAX_LEN],
}

impl Digest {
    /// The longest digest held (SHA-512).
    pub const MAX_LEN: usize = 64;

    /// A digest with these bytes; `None` when longer than [`Digest::MAX_LEN`].
    pub fn from_slice(value: &[u8]) -> Option<Digest> {
        let mut bytes = [0u8; Digest::MAX_LEN];
        bytes.get_mut(..value.len())?.copy_from_slice(value);
        Some(Digest {
            len: u8::try_from(value.len()).ok()?,
            bytes,
        })
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::hash::Hash for Digest {
    /// Hashes the digest bytes only (not the unused tail of the buffer).
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl AsRef<[u8]> for Digest {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// An incremental hash computation, made by [`CryptoProvider::hasher`].
pub trait Hasher: Send {
    /// Feeds more input.
    fn update(&mut self, data: &[u8]);

    /// The digest of everything fed so far.
    fn finish(self: Box<Self>) -> Digest;
}

/// An authenticated encryption algorithm (RFC 5116) a [`CryptoProvider`] implements.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AeadAlgorithm {
    /// AES-128 in Galois/Counter Mode with a 16-byte tag (RFC 5116 §5.1).
    Aes128Gcm,
    /// AES-256 in Galois/Counter Mode with a 16-byte tag (RFC 5116 §5.2).
    Aes256Gcm,
}

impl AeadAlgorithm {
    /// The key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            AeadAlgorithm::Aes128Gcm => 16,
            AeadAlgorithm::Aes256Gcm => 32,
        }
    }

    /// The nonce length in bytes (`N_MIN` = `N_MAX` = 12 for AES-GCM).
    pub fn nonce_len(self) -> usize {
        12
    }

    /// The authentication tag length in bytes.
    pub fn tag_len(self) -> usize {
        16
    }

    /// The numeric identifier in the IANA "AEAD Algorithms" registry (RFC 5116 §6):
    /// `AEAD_AES_128_GCM` = 1, `AEAD_AES_256_GCM` = 2.
    pub fn iana_id(self) -> u64 {
        match self {
            AeadAlgorithm::Aes128Gcm => 1,
            AeadAlgorithm::Aes256Gcm => 2,
        }
    }

    /// The algorithm with IANA AEAD identifier `id`, if Lanyard implements it.
    pub fn from_iana_id(id: u64) -> Option<AeadAlgorithm> {
        [AeadAlgorithm::Aes128Gcm, AeadAlgorithm::Aes256Gcm]
            .into_iter()
            .find(|a| a.iana_id() == id)
    }
}

/// A message authentication code a [`CryptoProvider`] computes.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MacAlgorithm {
    /// HMAC (RFC 2104) with SHA-256; 32-byte tags.
    HmacSha256,
}

impl MacAlgorithm {
    /// The tag length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            MacAlgorithm::HmacSha256 => 32,
        }
    }
}

/// A parsed public key bound to exactly one algorithm.
pub trait VerifyingKey: Send + Sync + fmt::Debug {
    /// The one algorithm this key verifies.
    fn algorithm(&self) -> Algorithm;

    /// Checks a JWS signature (raw `r||s` for ECDSA) over `message`.
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), Error>;
}

/// A private key bound to exactly one algorithm. Its `Debug` output never shows secrets.
pub trait SigningKey: Send + Sync + fmt::Debug {
    /// The one algorithm this key signs with.
    fn algorithm(&self) -> Algorithm;

    /// Signs `message`, returning a JWS signature (raw `r||s` for ECDSA).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error>;

    /// The public key as a JWK, with `alg` set (and `kid` when the key has one).
    fn public_jwk(&self) -> Jwk;
}
