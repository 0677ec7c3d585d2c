//! COSE_Key and COSE_KeySet (RFC 9052 §7, RFC 9053 §7, RFC 8230 §4) for public signature
//! keys, their JWK equivalents (RFC 7517/7518/8037), and COSE Key Thumbprints (RFC 9679).
//!
//! Only public keys are represented: a COSE_Key that carries a private parameter (`d`,
//! label −4, or RSA private members) is refused, so a private key cannot leak through a
//! `cnf` claim or a published key set.

use std::fmt;

use crate::alg::Algorithm;
use crate::cbor::{self, Value};
use crate::crypto::{CryptoProvider, Digest, DigestAlgorithm, VerifyingKey};
use crate::error::Error;
use crate::jose::Jwk;
use crate::jose::base64url;

/// COSE key types (IANA "COSE Key Types").
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// Octet Key Pair (1): Ed25519 keys.
    Okp,
    /// Elliptic curve with x and y coordinates (2).
    Ec2,
    /// RSA (3, RFC 8230).
    Rsa,
}

impl KeyType {
    /// The `kty` value.
    pub fn id(self) -> i64 {
        match self {
            KeyType::Okp => 1,
            KeyType::Ec2 => 2,
            KeyType::Rsa => 3,
        }
    }
}

/// COSE elliptic curves (IANA "COSE Elliptic Curves") Lanyard implements.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (1).
    P256,
    /// NIST P-384 (2).
    P384,
    /// NIST P-521 (3).
    P521,
    /// Ed25519 (6), with key type OKP.
    Ed25519,
}

impl Curve {
    const ALL: [Curve; 4] = [Curve::P256, Curve::P384, Curve::P521, Curve::Ed25519];

    /// The `crv` value.
    pub fn id(self) -> i64 {
        match self {
            Curve::P256 => 1,
            Curve::P384 => 2,
            Curve::P521 => 3,
            Curve::Ed25519 => 6,
        }
    }

    /// The JWK `crv` name.
    pub fn jwk_name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
            Curve::Ed25519 => "Ed25519",
        }
    }

    /// The length of one coordinate (EC2) or of the public key (OKP), in bytes.
    pub fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
            Curve::Ed25519 => 32,
        }
    }

    fn key_type(self) -> KeyType {
        match self {
            Curve::Ed25519 => KeyType::Okp,
            _ => KeyType::Ec2,
        }
    }

    /// The polymorphic algorithm a key on this curve signs with when it names none.
    fn default_algorithm(self) -> Algorithm {
        match self {
            Curve::P256 => Algorithm::ES256,
            Curve::P384 => Algorithm::ES384,
            Curve::P521 => Algorithm::ES512,
            Curve::Ed25519 => Algorithm::EdDSA,
        }
    }

    fn from_jwk_name(name: &str) -> Option<Curve> {
        Curve::ALL.into_iter().find(|c| c.jwk_name() == name)
    }
}

/// COSE_Key labels (RFC 9052 §7.1, RFC 9053 §7.1–7.2, RFC 8230 §4).
mod label {
    pub(super) const KTY: i64 = 1;
    pub(super) const KID: i64 = 2;
    pub(super) const ALG: i64 = 3;
    pub(super) const CRV: i64 = -1;
    pub(super) const X: i64 = -2;
    pub(super) const Y: i64 = -3;
    pub(super) const D: i64 = -4;
    pub(super) const RSA_N: i64 = -1;
    pub(super) const RSA_E: i64 = -2;
    /// RSA private members d, p, q, dP, dQ, qInv, other, r_i, d_i, t_i (RFC 8230 §4).
    pub(super) const RSA_PRIVATE: std::ops::RangeInclusive<i64> = -12..=-3;
}

/// The public key material of a [`CoseKey`].
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyMaterial {
    /// An EC2 public key: uncompressed coordinates.
    Ec2 {
        /// The curve (P-256, P-384 or P-521).
        crv: Curve,
        /// The x coordinate.
        x: Vec<u8>,
        /// The y coordinate.
        y: Vec<u8>,
    },
    /// An OKP public key.
    Okp {
        /// The curve (Ed25519).
        crv: Curve,
        /// The public key.
        x: Vec<u8>,
    },
    /// An RSA public key.
    Rsa {
        /// The modulus.
        n: Vec<u8>,
        /// The public exponent.
        e: Vec<u8>,
    },
}

/// A public COSE_Key.
#[derive(Clone, PartialEq, Eq)]
pub struct CoseKey {
    /// The key identifier (`kid`, label 2), if any.
    pub kid: Option<Vec<u8>>,
    /// The algorithm the key is restricted to (`alg`, label 3), if any.
    pub alg: Option<Algorithm>,
    /// The key itself.
    pub material: KeyMaterial,
}

impl fmt::Debug for CoseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("CoseKey");
        d.field("kty", &self.key_type());
        if let KeyMaterial::Ec2 { crv, .. } | KeyMaterial::Okp { crv, .. } = &self.material {
            d.field("crv", crv);
        }
        d.field("alg", &self.alg);
        d.field(
            "kid",
            &self.kid.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
        );
        d.finish_non_exhaustive()
    }
}

fn key_err(msg: impl Into<String>) -> Error {
    Error::InvalidKey(msg.into())
}

fn bytes_param(map: &Value, label: i64, name: &str) -> Result<Vec<u8>, Error> {
    map.get_int(label)
        .ok_or_else(|| key_err(format!("COSE_Key without {name}")))?
        .as_bytes()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| key_err(format!("COSE_Key {name} is not a byte string")))
}

impl CoseKey {
    /// Parses a public COSE_Key from a decoded map.
    pub fn from_value(value: &Value) -> Result<CoseKey, Error> {
        let entries = value.as_map().ok_or_else(|| key_err("a COSE_Key must be a map"))?;
        for (k, _) in entries {
            if !matches!(k, Value::Integer(_) | Value::Text(_)) {
                return Err(key_err("COSE_Key labels must be integers or text"));
            }
        }
        let kty = value
            .get_int(label::KTY)
            .ok_or_else(|| key_err("COSE_Key without kty"))?
            .as_i64()
            .ok_or_else(|| key_err("COSE_Key kty must be an integer"))?;
        let kid = match value.get_int(label::KID) {
            None => None,
            Some(Value::Bytes(kid)) => Some(kid.clone()),
            Some(_) => return Err(key_err("COSE_Key kid must be a byte string")),
        };
        let alg = match value.get_int(label::ALG) {
            None => None,
            Some(v) => Some(Algorithm::from_cose_id(
                v.as_i64().ok_or_else(|| key_err("COSE_Key alg must be an integer"))?,
            )?),
        };
        let material = match kty {
            1 | 2 => {
                if value.get_int(label::D).is_some() {
                    return Err(key_err("COSE_Key carries a private key (d)"));
                }
                let crv_id = value
                    .get_int(label::CRV)
                    .and_then(Value::as_i64)
                    .ok_or_else(|| key_err("COSE_Key without an integer crv"))?;
                let crv = Curve::ALL
                    .into_iter()
                    .find(|c| c.id() == crv_id)
                    .ok_or_else(|| key_err(format!("unsupported COSE curve {crv_id}")))?;
                if crv.key_type().id() != kty {
                    return Err(key_err(format!("curve {crv:?} does not fit kty {kty}")));
                }
                let x = bytes_param(value, label::X, "x")?;
                if x.len() != crv.coordinate_len() {
                    return Err(key_err(format!("x must be {} bytes for {crv:?}", crv.coordinate_len())));
                }
                if crv.key_type() == KeyType::Okp {
                    KeyMaterial::Okp { crv, x }
                } else {
                    let y = match value.get_int(label::Y) {
                        Some(Value::Bool(_)) => return Err(key_err("compressed EC points are not supported")),
                        _ => bytes_param(value, label::Y, "y")?,
                    };
                    if y.len() != crv.coordinate_len() {
                        return Err(key_err(format!("y must be {} bytes for {crv:?}", crv.coordinate_len())));
                    }
                    KeyMaterial::Ec2 { crv, x, y }
                }
            }
            3 => {
                if entries
                    .iter()
                    .any(|(k, _)| k.as_i64().is_some_and(|l| label::RSA_PRIVATE.contains(&l)))
                {
                    return Err(key_err("COSE_Key carries an RSA private key"));
                }
                KeyMaterial::Rsa {
                    n: bytes_param(value, label::RSA_N, "n")?,
                    e: bytes_param(value, label::RSA_E, "e")?,
                }
            }
            other => return Err(key_err(format!("unsupported COSE key type {other}"))),
        };
        let key = CoseKey { kid, alg, material };
        if let Some(alg) = key.alg
            && !key.fits(alg)
        {
            return Err(key_err(format!("alg {alg} does not fit this {:?} key", key.key_type())));
        }
        Ok(key)
    }

    /// Decodes a COSE_Key from bytes.
    pub fn decode(bytes: &[u8]) -> Result<CoseKey, Error> {
        CoseKey::from_value(&cbor::decode(bytes)?)
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        match &self.material {
            KeyMaterial::Ec2 { .. } => KeyType::Ec2,
            KeyMaterial::Okp { .. } => KeyType::Okp,
            KeyMaterial::Rsa { .. } => KeyType::Rsa,
        }
    }

    /// Whether the key can be used with `alg` (type and curve).
    pub fn fits(&self, alg: Algorithm) -> bool {
        match &self.material {
            KeyMaterial::Ec2 { crv, .. } | KeyMaterial::Okp { crv, .. } => {
                alg.curve() == Some(crv.jwk_name()) && alg.key_type() == self.jwk_kty()
            }
            KeyMaterial::Rsa { .. } => alg.key_type() == "RSA",
        }
    }

    fn jwk_kty(&self) -> &'static str {
        match self.key_type() {
            KeyType::Ec2 => "EC",
            KeyType::Okp => "OKP",
            _ => "RSA",
        }
    }

    /// The COSE_Key map (deterministically ordered when encoded).
    pub fn to_value(&self) -> Value {
        let mut entries = vec![(Value::int(label::KTY), Value::int(self.key_type().id()))];
        if let Some(kid) = &self.kid {
            entries.push((Value::int(label::KID), Value::bytes(kid.clone())));
        }
        if let Some(alg) = self.alg {
            entries.push((Value::int(label::ALG), Value::int(alg.cose_id())));
        }
        entries.extend(self.thumbprint_params());
        Value::Map(entries)
    }

    /// The encoded COSE_Key.
    pub fn to_vec(&self) -> Vec<u8> {
        self.to_value().to_vec()
    }

    /// The key parameters RFC 9679 §3 requires for the thumbprint (without `kty`).
    fn thumbprint_params(&self) -> Vec<(Value, Value)> {
        match &self.material {
            KeyMaterial::Ec2 { crv, x, y } => vec![
                (Value::int(label::CRV), Value::int(crv.id())),
                (Value::int(label::X), Value::bytes(x.clone())),
                (Value::int(label::Y), Value::bytes(y.clone())),
            ],
            KeyMaterial::Okp { crv, x } => vec![
                (Value::int(label::CRV), Value::int(crv.id())),
                (Value::int(label::X), Value::bytes(x.clone())),
            ],
            KeyMaterial::Rsa { n, e } => vec![
                (Value::int(label::RSA_N), Value::bytes(n.clone())),
                (Value::int(label::RSA_E), Value::bytes(e.clone())),
            ],
        }
    }

    /// The RFC 9679 §3 thumbprint input: the required parameters only, deterministically
    /// encoded.
    pub fn thumbprint_input(&self) -> Vec<u8> {
        let mut entries = vec![(Value::int(label::KTY), Value::int(self.key_type().id()))];
        entries.extend(self.thumbprint_params());
        Value::Map(entries).to_vec()
    }

    /// The COSE Key Thumbprint (RFC 9679 §3) under `alg`.
    pub fn thumbprint(&self, provider: &dyn CryptoProvider, alg: DigestAlgorithm) -> Result<Digest, Error> {
        provider.digest(alg, &self.thumbprint_input())
    }

    /// The COSE Key Thumbprint URI (RFC 9679 §6):
    /// `urn:ietf:params:oauth:ckt:sha-256:<base64url thumbprint>`.
    pub fn thumbprint_uri(&self, provider: &dyn CryptoProvider) -> Result<String, Error> {
        let digest = self.thumbprint(provider, DigestAlgorithm::Sha256)?;
        Ok(format!(
            "urn:ietf:params:oauth:ckt:sha-256:{}",
            base64url::encode(digest.as_bytes())
        ))
    }

    /// The equivalent public JWK: the same key, `alg` and (if UTF-8) `kid`; a `kid` that
    /// is not UTF-8 becomes its base64url form.
    pub fn to_jwk(&self) -> Jwk {
        let mut jwk = Jwk {
            kty: self.jwk_kty().to_owned(),
            alg: self.alg.map(|a| a.as_str().to_owned()),
            kid: self.kid.as_ref().map(|k| match std::str::from_utf8(k) {
                Ok(s) => s.to_owned(),
                Err(_) => base64url::encode(k),
            }),
            ..Jwk::default()
        };
        match &self.material {
            KeyMaterial::Ec2 { crv, x, y } => {
                jwk.crv = Some(crv.jwk_name().to_owned());
                jwk.x = Some(base64url::encode(x));
                jwk.y = Some(base64url::encode(y));
            }
            KeyMaterial::Okp { crv, x } => {
                jwk.crv = Some(crv.jwk_name().to_owned());
                jwk.x = Some(base64url::encode(x));
            }
            KeyMaterial::Rsa { n, e } => {
                jwk.n = Some(base64url::encode(n));
                jwk.e = Some(base64url::encode(e));
            }
        }
        jwk
    }

    /// The COSE_Key for a public JWK (private members are refused; the `kid` string
    /// becomes its UTF-8 bytes).
    pub fn from_jwk(jwk: &Jwk) -> Result<CoseKey, Error> {
        if jwk.is_private() {
            return Err(key_err("the JWK carries a private key"));
        }
        let alg = jwk.algorithm()?;
        let material = match jwk.kty.as_str() {
            "EC" | "OKP" => {
                let crv = jwk
                    .crv
                    .as_deref()
                    .and_then(Curve::from_jwk_name)
                    .ok_or_else(|| key_err(format!("unsupported curve {:?}", jwk.crv)))?;
                if crv.key_type().id() != if jwk.kty == "EC" { 2 } else { 1 } {
                    return Err(key_err(format!(
                        "curve {} does not fit kty {}",
                        crv.jwk_name(),
                        jwk.kty
                    )));
                }
                let x = jwk.member_bytes("x")?;
                if x.len() != crv.coordinate_len() {
                    return Err(key_err(format!(
                        "x must be {} bytes for {}",
                        crv.coordinate_len(),
                        crv.jwk_name()
                    )));
                }
                if crv == Curve::Ed25519 {
                    KeyMaterial::Okp { crv, x }
                } else {
                    let y = jwk.member_bytes("y")?;
                    if y.len() != crv.coordinate_len() {
                        return Err(key_err(format!(
                            "y must be {} bytes for {}",
                            crv.coordinate_len(),
                            crv.jwk_name()
                        )));
                    }
                    KeyMaterial::Ec2 { crv, x, y }
                }
            }
            "RSA" => KeyMaterial::Rsa {
                n: jwk.member_bytes("n")?,
                e: jwk.member_bytes("e")?,
            },
            other => return Err(key_err(format!("unsupported key type {other:?}"))),
        };
        let key = CoseKey {
            kid: jwk.kid.as_ref().map(|k| k.as_bytes().to_vec()),
            alg,
            material,
        };
        if let Some(alg) = alg
            && !key.fits(alg)
        {
            return Err(key_err(format!("alg {alg} does not fit this key")));
        }
        Ok(key)
    }

    /// A verifying key for `alg` through `provider`. The key's own `alg`, when set, must be
    /// `alg`; without one, any algorithm that fits the key type and curve is allowed.
    pub fn verifying_key(
        &self,
        provider: &dyn CryptoProvider,
        alg: Algorithm,
    ) -> Result<std::sync::Arc<dyn VerifyingKey>, Error> {
        if let Some(own) = self.alg
            && own != alg
        {
            return Err(Error::AlgorithmMismatch {
                expected: own.to_string(),
                found: alg.to_string(),
            });
        }
        if !self.fits(alg) {
            return Err(key_err(format!(
                "a {:?} key cannot be used with {alg}",
                self.key_type()
            )));
        }
        let jwk = Jwk {
            alg: None,
            kid: None,
            ..self.to_jwk()
        };
        provider.verifying_key(&jwk, alg)
    }

    /// The algorithm to sign or verify with: the key's `alg`, or for EC and OKP keys the
    /// polymorphic algorithm its curve implies.
    pub fn default_algorithm(&self) -> Option<Algorithm> {
        self.alg.or(match &self.material {
            KeyMaterial::Ec2 { crv, .. } | KeyMaterial::Okp { crv, .. } => Some(crv.default_algorithm()),
            KeyMaterial::Rsa { .. } => None,
        })
    }
}

/// A COSE_KeySet: an array of COSE_Keys (RFC 9052 §7).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoseKeySet {
    /// The keys.
    pub keys: Vec<CoseKey>,
}

impl CoseKeySet {
    /// Decodes a COSE_KeySet; every key must parse.
    pub fn decode(bytes: &[u8]) -> Result<CoseKeySet, Error> {
        let value = cbor::decode(bytes)?;
        let items = value
            .as_array()
            .ok_or_else(|| key_err("a COSE_KeySet must be an array"))?;
        Ok(CoseKeySet {
            keys: items.iter().map(CoseKey::from_value).collect::<Result<_, _>>()?,
        })
    }

    /// The encoded COSE_KeySet.
    pub fn to_vec(&self) -> Vec<u8> {
        Value::Array(self.keys.iter().map(CoseKey::to_value).collect()).to_vec()
    }

    /// The same keys as a JWK Set.
    pub fn to_jwk_set(&self) -> crate::jose::JwkSet {
        crate::jose::JwkSet {
            keys: self.keys.iter().map(CoseKey::to_jwk).collect(),
        }
    }

    /// The same keys from a JWK Set (public keys only).
    pub fn from_jwk_set(set: &crate::jose::JwkSet) -> Result<CoseKeySet, Error> {
        Ok(CoseKeySet {
            keys: set.keys.iter().map(CoseKey::from_jwk).collect::<Result<_, _>>()?,
        })
    }

    /// The key with this `kid`, if any.
    pub fn find(&self, kid: &[u8]) -> Option<&CoseKey> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }
}
