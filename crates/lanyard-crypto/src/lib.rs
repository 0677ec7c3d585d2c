//! The aws-lc-rs crypto provider for `lanyard-core`: key parsing and generation, JWS and
//! COSE signing and verification, SHA-2 digests (one-shot and incremental), AES-GCM,
//! HMAC-SHA256 and randomness.
//!
//! This is the only Lanyard crate that links C crypto, and the only one that names
//! aws-lc-rs: the TLS stack gets its provider from [`rustls_provider`] (feature `rustls`).
//! It implements no primitive itself; everything is delegated to aws-lc-rs. Keys are
//! parsed once (public keys into aws-lc-rs `ParsedPublicKey`), so a verification costs
//! the primitive and little else.
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

use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::digest;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use lanyard_core::{
    AeadAlgorithm, Algorithm, CryptoProvider, Digest, DigestAlgorithm, Error, Hasher, Jwk, MacAlgorithm, SigningKey,
    VerifyingKey,
};

pub use keys::{KeyPair, PublicKey, jwk_from_public_pem, jwk_from_spki_der};

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

    fn hasher(&self, alg: DigestAlgorithm) -> Result<Box<dyn Hasher>, Error> {
        Ok(Box::new(IncrementalDigest(digest::Context::new(digest_algorithm(
            alg,
        )?))))
    }

    fn digest(&self, alg: DigestAlgorithm, data: &[u8]) -> Result<Digest, Error> {
        Ok(to_digest(digest::digest(digest_algorithm(alg)?, data).as_ref()))
    }

    fn aead_seal(
        &self,
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let (key, nonce) = aead_key_and_nonce(alg, key, nonce)?;
        let mut sealed = plaintext.to_vec();
        key.seal_in_place_append_tag(nonce, Aad::from(aad), &mut sealed)
            .map_err(|_| Error::Crypto(format!("{alg:?} sealing failed")))?;
        Ok(sealed)
    }

    fn aead_open(
        &self,
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let (key, nonce) = aead_key_and_nonce(alg, key, nonce)?;
        let mut buffer = ciphertext_and_tag.to_vec();
        let len = key
            .open_in_place(nonce, Aad::from(aad), &mut buffer)
            .map_err(|_| Error::Decryption("the authentication tag does not verify"))?
            .len();
        buffer.truncate(len);
        Ok(buffer)
    }

    fn mac(&self, alg: MacAlgorithm, key: &[u8], data: &[u8]) -> Result<Digest, Error> {
        Ok(to_digest(hmac::sign(&hmac_key(alg, key)?, data).as_ref()))
    }

    fn mac_verify(&self, alg: MacAlgorithm, key: &[u8], data: &[u8], tag: &[u8]) -> Result<(), Error> {
        hmac::verify(&hmac_key(alg, key)?, data, tag).map_err(|_| Error::BadSignature)
    }
}

/// The error for an algorithm a newer `lanyard-core` defines and this provider lacks.
fn not_implemented(what: impl std::fmt::Debug) -> Error {
    Error::Crypto(format!("{what:?} is not implemented by the aws-lc-rs provider"))
}

fn digest_algorithm(alg: DigestAlgorithm) -> Result<&'static digest::Algorithm, Error> {
    match alg {
        DigestAlgorithm::Sha256 => Ok(&digest::SHA256),
        DigestAlgorithm::Sha384 => Ok(&digest::SHA384),
        DigestAlgorithm::Sha512 => Ok(&digest::SHA512),
        other => Err(not_implemented(other)),
    }
}

/// aws-lc-rs digests are at most 64 bytes, which [`Digest`] always holds.
fn to_digest(bytes: &[u8]) -> Digest {
    Digest::from_slice(bytes).unwrap_or_else(|| unreachable!("digests are at most 64 bytes"))
}

/// An aws-lc-rs digest context behind the [`Hasher`] interface.
struct IncrementalDigest(digest::Context);

impl Hasher for IncrementalDigest {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finish(self: Box<Self>) -> Digest {
        to_digest(self.0.finish().as_ref())
    }
}

fn aead_key_and_nonce(alg: AeadAlgorithm, key: &[u8], nonce: &[u8]) -> Result<(LessSafeKey, Nonce), Error> {
    let algorithm = match alg {
        AeadAlgorithm::Aes128Gcm => &AES_128_GCM,
        AeadAlgorithm::Aes256Gcm => &AES_256_GCM,
        other => return Err(not_implemented(other)),
    };
    if key.len() != alg.key_len() {
        return Err(Error::InvalidKey(format!("{alg:?} needs a {}-byte key", alg.key_len())));
    }
    let key = UnboundKey::new(algorithm, key).map_err(|_| Error::InvalidKey(format!("{alg:?} key rejected")))?;
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| Error::InvalidKey(format!("{alg:?} needs a {}-byte nonce", alg.nonce_len())))?;
    Ok((LessSafeKey::new(key), nonce))
}

fn hmac_key(alg: MacAlgorithm, key: &[u8]) -> Result<hmac::Key, Error> {
    match alg {
        MacAlgorithm::HmacSha256 => Ok(hmac::Key::new(hmac::HMAC_SHA256, key)),
        other => Err(not_implemented(other)),
    }
}

/// The rustls crypto provider backed by aws-lc-rs, for every TLS client and server
/// config Lanyard builds (`builder_with_provider`, never the process default).
#[cfg(feature = "rustls")]
pub fn rustls_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}
