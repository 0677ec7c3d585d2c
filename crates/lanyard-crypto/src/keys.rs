//! Key types over aws-lc-rs: [`KeyPair`] (private, signs) and [`PublicKey`] (verifies),
//! with JWK (RFC 7517/7518/8037) and PEM (PKCS#8, SubjectPublicKeyInfo) conversion.

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsBigEndian, AsDer};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPairComponents, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair as _, ParsedPublicKey, RsaEncoding, RsaKeyPair,
    VerificationAlgorithm,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lanyard_core::{Algorithm, Error, Jwk, SigningKey, VerifyingKey};
use pkcs1::der::Decode;
use pkcs8::ObjectIdentifier;
use pkcs8::spki::SubjectPublicKeyInfoRef;

/// A public key parsed for one algorithm.
pub struct PublicKey {
    alg: Algorithm,
    key: ParsedPublicKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The aws-lc-rs verification algorithm for the EC and EdDSA JWS algorithms (RSA keys go
/// through [`rsa_params`]).
fn verification_algorithm(alg: Algorithm) -> &'static dyn VerificationAlgorithm {
    match alg.operation() {
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        Algorithm::ES512 => &signature::ECDSA_P521_SHA512_FIXED,
        _ => &signature::ED25519,
    }
}

/// The hash an ECDSA JWS algorithm signs with (RFC 7518 §3.4); `None` for the others.
fn ecdsa_digest(alg: Algorithm) -> Option<&'static digest::Algorithm> {
    match alg.operation() {
        Algorithm::ES256 => Some(&digest::SHA256),
        Algorithm::ES384 => Some(&digest::SHA384),
        Algorithm::ES512 => Some(&digest::SHA512),
        _ => None,
    }
}

fn rsa_params(alg: Algorithm) -> Option<&'static signature::RsaParameters> {
    Some(match alg.operation() {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn rsa_encoding(alg: Algorithm) -> &'static dyn RsaEncoding {
    match alg.operation() {
        Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_SHA512,
        _ => &signature::RSA_PKCS1_SHA256,
    }
}

fn ecdsa_signing(alg: Algorithm) -> Option<&'static EcdsaSigningAlgorithm> {
    Some(match alg.operation() {
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        Algorithm::ES512 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
        _ => return None,
    })
}

/// Bytes of one coordinate on the curve `alg` uses.
fn coordinate_len(alg: Algorithm) -> usize {
    match alg.operation() {
        Algorithm::ES256 => 32,
        Algorithm::ES384 => 48,
        _ => 66,
    }
}

fn key_err(msg: impl Into<String>) -> Error {
    Error::InvalidKey(msg.into())
}

/// Checks that `jwk` is of the type and curve `alg` needs.
fn check_fits(jwk: &Jwk, alg: Algorithm) -> Result<(), Error> {
    if !jwk.fits(alg) {
        return Err(key_err(format!(
            "a {}{} key cannot be used with {alg}",
            jwk.kty,
            jwk.crv.as_deref().map(|c| format!("/{c}")).unwrap_or_default()
        )));
    }
    if let Some(declared) = jwk.alg.as_deref()
        && declared != alg.as_str()
    {
        return Err(key_err(format!("the key is declared for {declared}, not {alg}")));
    }
    Ok(())
}

/// The uncompressed SEC1 point `04 || x || y` of an EC JWK.
fn ec_point(jwk: &Jwk, alg: Algorithm) -> Result<Vec<u8>, Error> {
    let (x, y) = (jwk.member_bytes("x")?, jwk.member_bytes("y")?);
    let len = coordinate_len(alg);
    if x.len() != len || y.len() != len {
        return Err(key_err(format!("EC coordinates must be {len} bytes for {alg}")));
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}

impl PublicKey {
    /// Parses the public part of `jwk` for verifying `alg` signatures.
    pub fn from_jwk(jwk: &Jwk, alg: Algorithm) -> Result<PublicKey, Error> {
        check_fits(jwk, alg)?;
        let rejected = |e: aws_lc_rs::error::KeyRejected| key_err(format!("{alg} public key rejected: {e}"));
        let key = match alg.operation() {
            Algorithm::ES256 | Algorithm::ES384 | Algorithm::ES512 => {
                ParsedPublicKey::new(verification_algorithm(alg), ec_point(jwk, alg)?).map_err(rejected)?
            }
            Algorithm::EdDSA => {
                let x = jwk.member_bytes("x")?;
                if x.len() != 32 {
                    return Err(key_err("Ed25519 public keys are 32 bytes"));
                }
                ParsedPublicKey::new(&signature::ED25519, x).map_err(rejected)?
            }
            _ => {
                let params = rsa_params(alg).ok_or_else(|| key_err("not an RSA algorithm"))?;
                PublicKeyComponents {
                    n: jwk.member_bytes("n")?,
                    e: jwk.member_bytes("e")?,
                }
                .to_parsed_public_key(params)
                .map_err(rejected)?
            }
        };
        Ok(PublicKey { alg, key })
    }
}

/// The public JWK (no `alg`) of a SubjectPublicKeyInfo (DER): an EC key on P-256, P-384 or
/// P-521, an Ed25519 key, or an RSA key.
pub fn jwk_from_spki_der(der: &[u8]) -> Result<Jwk, Error> {
    const EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
    const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    const CURVES: [(&str, &str, usize); 3] = [
        ("1.2.840.10045.3.1.7", "P-256", 32),
        ("1.3.132.0.34", "P-384", 48),
        ("1.3.132.0.35", "P-521", 66),
    ];
    let spki =
        SubjectPublicKeyInfoRef::from_der(der).map_err(|e| key_err(format!("not a SubjectPublicKeyInfo: {e}")))?;
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| key_err("the public key bit string has unused bits"))?;
    let oid = spki.algorithm.oid;
    if oid == EC {
        let curve = spki
            .algorithm
            .parameters_oid()
            .map_err(|e| key_err(format!("EC key without a named curve: {e}")))?;
        let (_, crv, len) = CURVES
            .iter()
            .find(|(id, _, _)| ObjectIdentifier::new(id).ok() == Some(curve))
            .ok_or_else(|| key_err(format!("unsupported EC curve {curve}")))?;
        if key.len() != 1 + 2 * len || key[0] != 4 {
            return Err(key_err(format!("an uncompressed {crv} point is {} bytes", 1 + 2 * len)));
        }
        return Ok(Jwk {
            kty: "EC".into(),
            crv: Some((*crv).into()),
            x: Some(b64(&key[1..=*len])),
            y: Some(b64(&key[1 + len..])),
            ..Jwk::default()
        });
    }
    if oid == ED25519 {
        if key.len() != 32 {
            return Err(key_err("Ed25519 public keys are 32 bytes"));
        }
        return Ok(Jwk {
            kty: "OKP".into(),
            crv: Some("Ed25519".into()),
            x: Some(b64(key)),
            ..Jwk::default()
        });
    }
    if oid == RSA {
        let rsa = pkcs1::RsaPublicKey::from_der(key).map_err(|e| key_err(format!("PKCS#1: {e}")))?;
        return Ok(Jwk {
            kty: "RSA".into(),
            n: Some(b64(rsa.modulus.as_bytes())),
            e: Some(b64(rsa.public_exponent.as_bytes())),
            ..Jwk::default()
        });
    }
    Err(key_err(format!("unsupported public key algorithm {oid}")))
}

/// The public JWK (no `alg`) of a `PUBLIC KEY` PEM (SubjectPublicKeyInfo).
pub fn jwk_from_public_pem(text: &str) -> Result<Jwk, Error> {
    let block = pem::parse(text).map_err(|e| key_err(format!("not PEM: {e}")))?;
    if block.tag() != "PUBLIC KEY" {
        return Err(key_err(format!(
            "expected a PUBLIC KEY PEM block, found {}",
            block.tag()
        )));
    }
    jwk_from_spki_der(block.contents())
}

impl VerifyingKey for PublicKey {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> Result<(), Error> {
        // ECDSA: the message is hashed here and the digest verified, which skips the
        // digest context aws-lc-rs otherwise sets up and copies for each call (with
        // signing, 8 of a token request's 185 allocations; docs/benchmarks.md). Same check.
        let verified = match ecdsa_digest(self.alg) {
            Some(hash) => self.key.verify_digest_sig(&digest::digest(hash, message), sig),
            None => self.key.verify_sig(message, sig),
        };
        verified.map_err(|_| Error::BadSignature)
    }
}

enum Inner {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A private key bound to one algorithm, optionally with a `kid`.
pub struct KeyPair {
    alg: Algorithm,
    kid: Option<String>,
    inner: Inner,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl KeyPair {
    /// Generates a key for `alg` (RSA: 2048 bits).
    pub fn generate(alg: Algorithm) -> Result<KeyPair, Error> {
        let failed = |_| Error::Crypto(format!("{alg} key generation failed"));
        let inner = match alg.operation() {
            Algorithm::EdDSA => Inner::Ed25519(Ed25519KeyPair::generate().map_err(failed)?),
            a if a.key_type() == "EC" => {
                let signing = ecdsa_signing(a).ok_or_else(|| key_err("not an ECDSA algorithm"))?;
                Inner::Ecdsa(EcdsaKeyPair::generate(signing).map_err(failed)?)
            }
            _ => Inner::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).map_err(failed)?),
        };
        Ok(KeyPair { alg, kid: None, inner })
    }

    /// Loads a private JWK. Its algorithm is its `alg` member, or the one its curve implies
    /// (RSA keys must say `alg`).
    pub fn from_jwk(jwk: &Jwk) -> Result<KeyPair, Error> {
        if !jwk.is_private() {
            return Err(key_err("the JWK has no private key (d)"));
        }
        let algs = jwk.usable_algorithms()?;
        let alg = match jwk.algorithm()? {
            Some(alg) => alg,
            None => {
                let mut it = algs.iter();
                match (it.next(), it.next()) {
                    (Some(a), None) => a,
                    _ => return Err(key_err("an RSA JWK must name its alg to be used for signing")),
                }
            }
        };
        check_fits(jwk, alg)?;
        let rejected = |e: aws_lc_rs::error::KeyRejected| key_err(format!("{alg} private key rejected: {e}"));
        let inner = match alg.operation() {
            Algorithm::EdDSA => Inner::Ed25519(
                Ed25519KeyPair::from_seed_and_public_key(&jwk.member_bytes("d")?, &jwk.member_bytes("x")?)
                    .map_err(rejected)?,
            ),
            a if a.key_type() == "EC" => {
                let signing = ecdsa_signing(a).ok_or_else(|| key_err("not an ECDSA algorithm"))?;
                let d = jwk.member_bytes("d")?;
                if d.len() != coordinate_len(a) {
                    return Err(key_err(format!(
                        "EC private keys are {} bytes for {a}",
                        coordinate_len(a)
                    )));
                }
                Inner::Ecdsa(
                    EcdsaKeyPair::from_private_key_and_public_key(signing, &d, &ec_point(jwk, a)?).map_err(rejected)?,
                )
            }
            _ => {
                let member = |name| jwk.member_bytes(name);
                let components = KeyPairComponents {
                    public_key: PublicKeyComponents {
                        n: member("n")?,
                        e: member("e")?,
                    },
                    d: member("d")?,
                    p: member("p")?,
                    q: member("q")?,
                    dP: member("dp")?,
                    dQ: member("dq")?,
                    qInv: member("qi")?,
                };
                let key = RsaKeyPair::from_components(&components).map_err(rejected)?;
                if key.public_modulus_len() < 256 {
                    return Err(key_err("RSA keys must be at least 2048 bits"));
                }
                Inner::Rsa(key)
            }
        };
        Ok(KeyPair {
            alg,
            kid: jwk.kid.clone(),
            inner,
        })
    }

    /// Loads a PKCS#8 private key (DER). `alg` picks the algorithm for RSA keys (EC and
    /// Ed25519 keys imply theirs, and must agree with `alg` when it is given; a fully
    /// specified `alg` such as `ESP256` agrees with the key its operation needs).
    pub fn from_pkcs8_der(der: &[u8], alg: Option<Algorithm>) -> Result<KeyPair, Error> {
        let wanted = |a: Algorithm| alg.is_none_or(|w| w.operation() == a);
        if let Ok(k) = Ed25519KeyPair::from_pkcs8(der)
            && wanted(Algorithm::EdDSA)
        {
            return Ok(KeyPair {
                alg: alg.unwrap_or(Algorithm::EdDSA),
                kid: None,
                inner: Inner::Ed25519(k),
            });
        }
        for a in [Algorithm::ES256, Algorithm::ES384, Algorithm::ES512] {
            let signing = ecdsa_signing(a).ok_or_else(|| key_err("not an ECDSA algorithm"))?;
            if let Ok(k) = EcdsaKeyPair::from_pkcs8(signing, der) {
                if wanted(a) {
                    return Ok(KeyPair {
                        alg: alg.unwrap_or(a),
                        kid: None,
                        inner: Inner::Ecdsa(k),
                    });
                }
                return Err(key_err(format!(
                    "the key is for {a}, not {}",
                    alg.map(|a| a.as_str()).unwrap_or("?")
                )));
            }
        }
        if let Ok(k) = RsaKeyPair::from_pkcs8(der) {
            let a = alg.unwrap_or(Algorithm::RS256);
            if a.key_type() != "RSA" {
                return Err(key_err(format!("an RSA key cannot be used with {a}")));
            }
            return Ok(KeyPair {
                alg: a,
                kid: None,
                inner: Inner::Rsa(k),
            });
        }
        Err(key_err("not a PKCS#8 EC (P-256/384/521), Ed25519 or RSA private key"))
    }

    /// Loads a `PRIVATE KEY` PEM (PKCS#8).
    pub fn from_pkcs8_pem(text: &str, alg: Option<Algorithm>) -> Result<KeyPair, Error> {
        let block = pem::parse(text).map_err(|e| key_err(format!("not PEM: {e}")))?;
        if block.tag() != "PRIVATE KEY" {
            return Err(key_err(format!(
                "expected a PRIVATE KEY PEM block, found {}",
                block.tag()
            )));
        }
        KeyPair::from_pkcs8_der(block.contents(), alg)
    }

    /// The same key with `kid` set.
    pub fn with_kid(mut self, kid: impl Into<String>) -> KeyPair {
        self.kid = Some(kid.into());
        self
    }

    /// The key's `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The private key as PKCS#8 DER. Secret.
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, Error> {
        let failed = |_| Error::Crypto("private key export failed".into());
        Ok(match &self.inner {
            Inner::Ecdsa(k) => k.to_pkcs8v1().map_err(failed)?.as_ref().to_vec(),
            Inner::Ed25519(k) => k.to_pkcs8v1().map_err(failed)?.as_ref().to_vec(),
            Inner::Rsa(k) => AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(k)
                .map_err(failed)?
                .as_ref()
                .to_vec(),
        })
    }

    /// The private key as a `PRIVATE KEY` PEM. Secret.
    pub fn to_pkcs8_pem(&self) -> Result<String, Error> {
        Ok(pem::encode(&pem::Pem::new("PRIVATE KEY", self.to_pkcs8_der()?)))
    }

    /// The public key as SubjectPublicKeyInfo DER.
    pub fn public_spki_der(&self) -> Result<Vec<u8>, Error> {
        let failed = |_| Error::Crypto("public key export failed".into());
        Ok(match &self.inner {
            Inner::Ecdsa(k) => k.public_key().as_der().map_err(failed)?.as_ref().to_vec(),
            Inner::Ed25519(k) => k.public_key().as_der().map_err(failed)?.as_ref().to_vec(),
            Inner::Rsa(k) => k.public_key().as_der().map_err(failed)?.as_ref().to_vec(),
        })
    }

    /// The public key as a `PUBLIC KEY` PEM.
    pub fn public_pem(&self) -> Result<String, Error> {
        Ok(pem::encode(&pem::Pem::new("PUBLIC KEY", self.public_spki_der()?)))
    }

    /// The full private JWK (with `alg` and `kid`). Secret.
    pub fn private_jwk(&self) -> Result<Jwk, Error> {
        let failed = |_| Error::Crypto("private key export failed".into());
        let mut jwk = self.public_jwk();
        match &self.inner {
            Inner::Ecdsa(k) => jwk.d = Some(b64(k.private_key().as_be_bytes().map_err(failed)?.as_ref())),
            Inner::Ed25519(k) => jwk.d = Some(b64(k.seed().map_err(failed)?.as_be_bytes().map_err(failed)?.as_ref())),
            Inner::Rsa(_) => {
                let der = self.to_pkcs8_der()?;
                let info = pkcs8::PrivateKeyInfo::from_der(&der).map_err(|e| key_err(format!("PKCS#8: {e}")))?;
                let rsa =
                    pkcs1::RsaPrivateKey::from_der(info.private_key).map_err(|e| key_err(format!("PKCS#1: {e}")))?;
                let v = |u: pkcs1::UintRef<'_>| Some(b64(u.as_bytes()));
                jwk.d = v(rsa.private_exponent);
                jwk.p = v(rsa.prime1);
                jwk.q = v(rsa.prime2);
                jwk.dp = v(rsa.exponent1);
                jwk.dq = v(rsa.exponent2);
                jwk.qi = v(rsa.coefficient);
            }
        }
        Ok(jwk)
    }
}

impl SigningKey for KeyPair {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let rng = SystemRandom::new();
        let failed = |_| Error::Crypto(format!("{} signing failed", self.alg));
        match &self.inner {
            // The digest is signed, as in `PublicKey::verify` (the key pair's algorithm fixes
            // the hash; aws-lc-rs refuses a digest of another).
            Inner::Ecdsa(k) => {
                let hash = ecdsa_digest(self.alg).ok_or_else(|| failed(aws_lc_rs::error::Unspecified))?;
                let signature = k.sign_digest(&digest::digest(hash, message)).map_err(failed)?;
                Ok(signature.as_ref().to_vec())
            }
            Inner::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
            Inner::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(rsa_encoding(self.alg), &rng, message, &mut sig)
                    .map_err(failed)?;
                Ok(sig)
            }
        }
    }

    fn public_jwk(&self) -> Jwk {
        let mut jwk = Jwk {
            alg: Some(self.alg.as_str().to_owned()),
            kid: self.kid.clone(),
            kty: self.alg.key_type().to_owned(),
            crv: self.alg.curve().map(str::to_owned),
            ..Jwk::default()
        };
        match &self.inner {
            Inner::Ecdsa(k) => {
                let point = k.public_key().as_ref();
                let len = (point.len() - 1) / 2;
                jwk.x = Some(b64(&point[1..=len]));
                jwk.y = Some(b64(&point[1 + len..]));
            }
            Inner::Ed25519(k) => jwk.x = Some(b64(k.public_key().as_ref())),
            Inner::Rsa(k) => {
                let components = PublicKeyComponents::<Vec<u8>>::from(k.public_key());
                jwk.n = Some(b64(&components.n));
                jwk.e = Some(b64(&components.e));
            }
        }
        jwk
    }
}
