//! Test-only SD-CWT helpers: a deterministic ECDSA signer (RFC 6979, RustCrypto) that
//! reproduces the SD-CWT draft's example signatures, and a fixed salt source.
//!
//! Production signing goes through the aws-lc-rs provider, whose ECDSA nonces are random;
//! these exist so that the vectors can check issuance and presentation byte for byte.

#![allow(dead_code)]

use std::fmt;

use lanyard_core::spice::sd_cwt::{SaltRequest, SaltSource};
use lanyard_core::{Algorithm, Error, Jwk, SigningKey};
use p256::ecdsa::signature::Signer as _;

/// Hex to bytes (test data only).
pub(crate) fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Bytes to lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

enum Inner {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

/// An ES256 or ES384 key that signs with RFC 6979 deterministic nonces.
pub(crate) struct DeterministicSigner {
    alg: Algorithm,
    public: Jwk,
    inner: Inner,
}

impl fmt::Debug for DeterministicSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeterministicSigner")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl DeterministicSigner {
    /// From a private EC JWK (P-256 or P-384); `alg` is the algorithm to sign as (for
    /// example ES256 or ESP256 on P-256).
    pub(crate) fn from_jwk(jwk: &Jwk, alg: Algorithm) -> DeterministicSigner {
        let d = jwk.member_bytes("d").expect("private JWK");
        let inner = match jwk.crv.as_deref() {
            Some("P-256") => Inner::P256(p256::ecdsa::SigningKey::from_slice(&d).expect("P-256 scalar")),
            Some("P-384") => Inner::P384(p384::ecdsa::SigningKey::from_slice(&d).expect("P-384 scalar")),
            other => panic!("unsupported curve {other:?}"),
        };
        let public = Jwk {
            alg: Some(alg.as_str().to_owned()),
            ..jwk.to_public()
        };
        DeterministicSigner { alg, public, inner }
    }
}

impl SigningKey for DeterministicSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(match &self.inner {
            Inner::P256(key) => {
                let sig: p256::ecdsa::Signature = key.sign(message);
                sig.to_bytes().to_vec()
            }
            Inner::P384(key) => {
                let sig: p384::ecdsa::Signature = key.sign(message);
                sig.to_bytes().to_vec()
            }
        })
    }

    fn public_jwk(&self) -> Jwk {
        self.public.clone()
    }
}

/// Salts handed out in a fixed order; running out is an error.
pub(crate) struct FixedSalts(pub(crate) std::collections::VecDeque<[u8; 16]>);

impl FixedSalts {
    /// From hex strings.
    pub(crate) fn from_hex<'a>(salts: impl IntoIterator<Item = &'a str>) -> FixedSalts {
        FixedSalts(
            salts
                .into_iter()
                .map(|s| <[u8; 16]>::try_from(unhex(s).as_slice()).expect("16-byte salt"))
                .collect(),
        )
    }
}

impl SaltSource for FixedSalts {
    fn salt(&mut self, _request: SaltRequest<'_>) -> Result<[u8; 16], Error> {
        self.0
            .pop_front()
            .ok_or_else(|| Error::Crypto("the fixed salt list ran out".into()))
    }
}
