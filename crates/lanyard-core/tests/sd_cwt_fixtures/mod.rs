//! Test-only SD-CWT helpers: a deterministic ECDSA signer (RFC 6979, RustCrypto) that
//! reproduces the SD-CWT draft's example signatures, a fixed salt source, a workload
//! claims set with every kind of redaction, and `cose2` adapters over Lanyard keys (for
//! the `sd-cwt` crate). Shared by the tests and the SD-CWT bench.
//!
//! Production signing goes through the aws-lc-rs provider, whose ECDSA nonces are random;
//! these exist so that the vectors can check issuance and presentation byte for byte.

#![allow(dead_code)]

use std::fmt;
use std::sync::Arc;

use lanyard_core::cbor::Value;
use lanyard_core::cose::CoseKey;
use lanyard_core::cwt::Confirmation;
use lanyard_core::spice::sd_cwt::{SaltRequest, SaltSource};
use lanyard_core::{Algorithm, Error, Jwk, SigningKey, UnixTime, VerifyingKey};
use p256::ecdsa::signature::Signer as _;

// Each user takes what it needs of these.
#[allow(unused_imports)]
pub(crate) use lanyard_core::hex::encode as hex;
#[allow(unused_imports)]
pub(crate) use lanyard_testing::hex::decode as unhex;

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

/// `58(v)`: the To Be Redacted tag around a map key or array element.
pub(crate) fn tbr(v: Value) -> Value {
    Value::Tag(58, Box::new(v))
}

/// A workload credential valid around `now`, bound to `holder`: `env` and `region`
/// selectively disclosable, `build` disclosable with its `commit` nested inside, one of
/// two `selectors` disclosable, a decoy in the array and one in the map.
pub(crate) fn workload_claims(holder: &dyn SigningKey, now: UnixTime) -> Value {
    let now = now.as_secs() as i64;
    let cnf = Confirmation::Key(CoseKey::from_jwk(&holder.public_jwk()).expect("holder key")).to_value();
    Value::map([
        (Value::int(1), Value::text("https://lanyard.example.org")),
        (Value::int(2), Value::text("spiffe://example.org/billing")),
        (Value::int(4), Value::int(now + 3600)),
        (Value::int(5), Value::int(now - 60)),
        (Value::int(6), Value::int(now - 60)),
        (Value::int(8), cnf),
        (tbr(Value::text("env")), Value::text("prod")),
        (tbr(Value::text("region")), Value::text("eu-west-1")),
        (
            tbr(Value::text("build")),
            Value::map([
                (Value::text("repo"), Value::text("git.example.org/billing")),
                (tbr(Value::text("commit")), Value::text("4b825dc")),
            ]),
        ),
        (
            Value::text("selectors"),
            Value::Array(vec![
                Value::text("unix:uid:1000"),
                tbr(Value::text("unix:sha256:ab12")),
                Value::Tag(62, Box::new(Value::int(1))),
            ]),
        ),
        (Value::Tag(62, Box::new(Value::int(2))), Value::Null),
    ])
}

/// A `cose2` signer over a Lanyard key.
pub(crate) struct Cose2Signer<'a>(pub(crate) &'a dyn SigningKey);

impl cose2::Signer for Cose2Signer<'_> {
    fn alg(&self) -> Option<cose2::Label> {
        Some(cose2::Label::Int(self.0.algorithm().cose_id()))
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, cose2::Error> {
        self.0.sign(data).map_err(|e| cose2::Error::custom(e.to_string()))
    }
}

/// A `cose2` verifier over a Lanyard key (the same aws-lc-rs primitive).
pub(crate) struct Cose2Verifier(pub(crate) Arc<dyn VerifyingKey>);

impl cose2::Verifier for Cose2Verifier {
    fn alg(&self) -> Option<cose2::Label> {
        Some(cose2::Label::Int(self.0.algorithm().cose_id()))
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), cose2::Error> {
        self.0
            .verify(data, signature)
            .map_err(|e| cose2::Error::verify(e.to_string()))
    }
}

/// The `sd-cwt` crate verifying an SD-KBT: `cose2` checks the KBT signature with the
/// holder key, then the crate verifies, validates and restores the SD-CWT in `kcwt` (it
/// has no KBT policy of its own). Returns the restored claims and the disclosed count.
pub(crate) fn sd_cwt_crate_verify(
    kbt: &[u8],
    issuer: &Cose2Verifier,
    holder: &Cose2Verifier,
) -> Result<(Value, usize), String> {
    let message = cose2::Sign1Message::from_slice(kbt).map_err(|e| e.to_string())?;
    message.verify(holder, None).map_err(|e| e.to_string())?;
    let kcwt = message.protected.get(13).ok_or("no kcwt")?;
    let sd_cwt = cbor2::to_vec(kcwt).map_err(|e| e.to_string())?;
    let (_, report) = sd_cwt::verify_validate_and_restore_sd_cwt(
        issuer,
        &sd_cwt,
        None,
        sd_cwt::RestoreMode::Verifier,
        sd_cwt::SdCwtValidationOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    let claims = lanyard_core::cbor::decode(&cbor2::to_vec(&report.value).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    Ok((claims, report.disclosed))
}
