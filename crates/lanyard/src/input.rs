//! Reading command-line inputs: tokens (literal, `@file` or `-` for stdin), keys (JWK,
//! PKCS#8 PEM or `PUBLIC KEY` PEM files) and identifiers; writing secret files with
//! owner-only permissions.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use lanyard_core::{Algorithm, Clock, Jwk, JwkSet, SigningKey, SystemClock, UnixTime, WorkloadId};
use lanyard_crypto::KeyPair;

/// A token given as the literal value, `@path` to read a file, or `-` for stdin.
pub(crate) fn token(arg: &str) -> Result<String> {
    let text = if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the token from stdin")?;
        s
    } else if let Some(path) = arg.strip_prefix('@') {
        fs::read_to_string(path).with_context(|| format!("reading the token from {path}"))?
    } else {
        arg.to_owned()
    };
    Ok(text.trim().to_owned())
}

/// Reads a file as text, naming it in the error.
pub(crate) fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// A private key from a JWK or PKCS#8 PEM file. `alg` is needed for RSA PEM keys. A PEM
/// key gets the `kid` `lanyard key generate` gives it (see [`thumbprint_kid`]); a JWK keeps
/// its own.
pub(crate) fn signing_key(path: &Path, alg: Option<Algorithm>) -> Result<KeyPair> {
    signing_key_in(path, &read(path)?, alg)
}

fn signing_key_in(path: &Path, text: &str, alg: Option<Algorithm>) -> Result<KeyPair> {
    let key = if text.trim_start().starts_with('{') {
        let jwk = Jwk::from_json(text.as_bytes()).with_context(|| format!("{} is not a valid JWK", path.display()))?;
        if let (Some(want), Some(have)) = (alg, jwk.algorithm()?)
            && want != have
        {
            bail!("{} is an {have} key, not {want}", path.display());
        }
        KeyPair::from_jwk(&jwk)
    } else {
        KeyPair::from_pkcs8_pem(text, alg).and_then(|key| {
            let kid = thumbprint_kid(&key.public_jwk())?;
            Ok(key.with_kid(kid))
        })
    };
    key.with_context(|| format!("loading the private key in {}", path.display()))
}

/// The `kid` a key gets unless one is chosen: its RFC 7638 JWK thumbprint (SHA-256,
/// base64url), the same whether the key was read from a JWK or a PEM file.
pub(crate) fn thumbprint_kid(jwk: &Jwk) -> Result<String, lanyard_core::Error> {
    jwk.thumbprint(lanyard_crypto::provider().as_ref())
}

/// The SubjectPublicKeyInfo (DER) of `text` when it is a `PUBLIC KEY` PEM block.
pub(crate) fn public_key_pem(text: &str) -> Option<Vec<u8>> {
    pem::parse(text)
        .ok()
        .filter(|block| block.tag() == "PUBLIC KEY")
        .map(pem::Pem::into_contents)
}

/// Public keys from a file holding one JWK, a JWK Set, a `PUBLIC KEY` PEM, or a private
/// key (its public part). A key read from PEM gets its thumbprint as `kid`, so it matches
/// the `kid` of tokens signed by a key `lanyard key generate` made.
pub(crate) fn public_keys(path: &Path) -> Result<Vec<Jwk>> {
    let text = read(path)?;
    let bad = || {
        format!(
            "{} is not a JWK, a JWK Set, a PUBLIC KEY PEM or a PEM private key",
            path.display()
        )
    };
    if !text.trim_start().starts_with('{') {
        let Some(spki) = public_key_pem(&text) else {
            let key = signing_key_in(path, &text, None).with_context(bad)?;
            return Ok(vec![key.public_jwk()]);
        };
        let mut jwk = lanyard_x509::public_key_jwk(&spki).with_context(bad)?;
        jwk.kid = Some(thumbprint_kid(&jwk)?);
        return Ok(vec![jwk]);
    }
    let value: serde_json::Value = serde_json::from_str(&text).with_context(bad)?;
    let keys = if value.get("keys").is_some() {
        JwkSet::from_json(text.as_bytes()).with_context(bad)?.keys
    } else {
        vec![Jwk::from_json(text.as_bytes()).with_context(bad)?]
    };
    Ok(keys.iter().map(Jwk::to_public).collect())
}

/// A workload identifier, validated.
pub(crate) fn workload_id(arg: &str) -> Result<WorkloadId> {
    WorkloadId::parse(arg).with_context(|| format!("{arg:?} is not a valid SPIFFE ID or WIMSE identifier"))
}

/// The time to check against: `--now` if given (for old test vectors), else the clock.
pub(crate) fn now(arg: Option<u64>) -> UnixTime {
    arg.map_or_else(|| SystemClock.now(), UnixTime)
}

/// Writes `contents` to `path`; secrets get mode 0600 and are never overwritten silently.
pub(crate) fn write_file(path: &Path, contents: &str, secret: bool) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
