//! Client secrets at rest: Argon2id (RFC 9106) through the RustCrypto `argon2` crate, in
//! the PHC string format (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`, unpadded base64), so
//! that only a slow hash is stored and the parameters can be raised later.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use lanyard_core::CryptoProvider;

/// Memory cost in KiB, iterations and lanes (the OWASP minimum for Argon2id).
const M_COST: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
const HASH_LEN: usize = 32;
const SALT_LEN: usize = 16;

fn argon2(m: u32, t: u32, p: u32) -> Option<argon2::Argon2<'static>> {
    let params = argon2::Params::new(m, t, p, Some(HASH_LEN)).ok()?;
    Some(argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    ))
}

/// Hashes `secret` with a fresh random salt; `None` if randomness or hashing failed.
pub(crate) fn hash_secret(secret: &str, crypto: &dyn CryptoProvider) -> Option<String> {
    let mut salt = [0u8; SALT_LEN];
    crypto.fill_random(&mut salt).ok()?;
    let mut out = [0u8; HASH_LEN];
    argon2(M_COST, T_COST, P_COST)?
        .hash_password_into(secret.as_bytes(), &salt, &mut out)
        .ok()?;
    Some(format!(
        "$argon2id$v=19$m={M_COST},t={T_COST},p={P_COST}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

/// Whether `secret` matches the PHC string `stored` (compared in constant time). A
/// malformed `stored` never matches.
pub(crate) fn verify_secret(secret: &str, stored: &str) -> bool {
    let parts: Vec<&str> = stored.split('$').collect();
    let ["", "argon2id", "v=19", params, salt, hash] = parts.as_slice() else {
        return false;
    };
    let mut m = None;
    let mut t = None;
    let mut p = None;
    for kv in params.split(',') {
        match kv.split_once('=') {
            Some(("m", v)) => m = v.parse::<u32>().ok(),
            Some(("t", v)) => t = v.parse::<u32>().ok(),
            Some(("p", v)) => p = v.parse::<u32>().ok(),
            _ => return false,
        }
    }
    let (Some(m), Some(t), Some(p)) = (m, t, p) else {
        return false;
    };
    let (Ok(salt), Ok(expected)) = (STANDARD_NO_PAD.decode(salt), STANDARD_NO_PAD.decode(hash)) else {
        return false;
    };
    let Some(hasher) = argon2(m, t, p) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    if expected.is_empty() || hasher.hash_password_into(secret.as_bytes(), &salt, &mut out).is_err() {
        return false;
    }
    out.iter().zip(&expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let crypto = lanyard_crypto::provider();
        let stored = hash_secret("s3cret", crypto.as_ref()).unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!stored.contains("s3cret"));
        assert!(verify_secret("s3cret", &stored));
        assert!(!verify_secret("s3cret!", &stored));
        assert!(!verify_secret("", &stored));
        // Two hashes of one secret differ (fresh salt).
        assert_ne!(stored, hash_secret("s3cret", crypto.as_ref()).unwrap());
        for bad in [
            "",
            "plain",
            "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
            "$argon2id$v=19$m=x$a$b",
        ] {
            assert!(!verify_secret("s3cret", bad), "{bad}");
        }
    }
}
