//! The aws-lc-rs crypto provider for `lanyard-core`: key parsing and generation, JWS
//! signing and verification, SHA-256 and randomness.
//!
//! This is the only Lanyard crate that links C crypto. It implements no primitive
//! itself; everything is delegated to aws-lc-rs. Keys are parsed once (public keys into
//! aws-lc-rs `ParsedPublicKey`), so a verification costs the primitive and little else.
//!
//! ```
//! use lanyard_core::Algorithm;
//! let provider = lanyard_crypto::provider();
//! let key = provider.generate_key(Algorithm::EdDSA).unwrap();
//! let jwk = key.public_jwk();
//! let sig = key.sign(b"hello").unwrap();
//! provider.verifying_key(&jwk, Algorithm::EdDSA).unwrap().verify(b"hello", &sig).unwrap();
//! ```

#![forbid(unsafe_code)]

mod keys;

use std::sync::{Arc, LazyLock};

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use lanyard_core::{Algorithm, CryptoProvider, Error, Jwk, SigningKey, VerifyingKey};

pub use keys::{KeyPair, PublicKey};

/// The aws-lc-rs [`CryptoProvider`].
#[derive(Debug, Default, Clone, Copy)]
pub struct AwsLcProvider;

static PROVIDER: LazyLock<Arc<dyn CryptoProvider>> = LazyLock::new(|| Arc::new(AwsLcProvider));

/// The shared provider instance.
pub fn provider() -> Arc<dyn CryptoProvider> {
    Arc::clone(&PROVIDER)
}

impl CryptoProvider for AwsLcProvider {
    fn verifying_key(&self, jwk: &Jwk, alg: Algorithm) -> Result<Arc<dyn VerifyingKey>, Error> {
        Ok(Arc::new(PublicKey::from_jwk(jwk, alg)?))
    }

    fn signing_key(&self, jwk: &Jwk) -> Result<Arc<dyn SigningKey>, Error> {
        Ok(Arc::new(KeyPair::from_jwk(jwk)?))
    }

    fn generate_key(&self, alg: Algorithm) -> Result<Arc<dyn SigningKey>, Error> {
        Ok(Arc::new(KeyPair::generate(alg)?))
    }

    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        let d = digest::digest(&digest::SHA256, data);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }

    fn fill_random(&self, out: &mut [u8]) -> Result<(), Error> {
        SystemRandom::new()
            .fill(out)
            .map_err(|_| Error::Crypto("the system random source failed".into()))
    }
}
