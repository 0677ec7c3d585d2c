//! The crypto provider interface. `lanyard-core` never links a crypto library: it
//! asks a [`CryptoProvider`] (for example `lanyard_crypto::provider()`) to parse keys,
//! sign, verify, hash and draw random bytes.

use std::fmt;
use std::sync::Arc;

use crate::error::Error;
use crate::jose::{Algorithm, Jwk};

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
