//! JWS algorithms (RFC 7518 §3, RFC 8037 §3.1) and allow-lists.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// An asymmetric JWS algorithm Lanyard can sign and verify.
///
/// `none` and the HMAC family have no variant: they can never be selected, whatever a
/// token or a key says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256 (the WIMSE mandatory-to-implement algorithm).
    ES256,
    /// ECDSA P-384 with SHA-384.
    ES384,
    /// ECDSA P-521 with SHA-512.
    ES512,
    /// Ed25519 (RFC 8037).
    EdDSA,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
}

impl Algorithm {
    /// Every algorithm, in a stable order.
    pub const ALL: [Algorithm; 10] = [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ];

    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::ES512 => "ES512",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
        }
    }

    /// Parses a JOSE `alg` value; `none`, HMAC and unknown names are refused with a reason.
    pub fn parse(name: &str) -> Result<Algorithm, Error> {
        if let Some(alg) = Algorithm::ALL.into_iter().find(|a| a.as_str() == name) {
            return Ok(alg);
        }
        let reason = if name.eq_ignore_ascii_case("none") {
            "unsecured JWS is never accepted"
        } else if name.starts_with("HS") {
            "symmetric (HMAC) algorithms are never accepted"
        } else {
            "unsupported algorithm"
        };
        Err(Error::AlgorithmNotAllowed {
            alg: name.chars().take(32).collect(),
            reason,
        })
    }

    /// The JWK `kty` this algorithm needs.
    pub fn key_type(self) -> &'static str {
        match self {
            Algorithm::ES256 | Algorithm::ES384 | Algorithm::ES512 => "EC",
            Algorithm::EdDSA => "OKP",
            _ => "RSA",
        }
    }

    /// The JWK `crv` this algorithm needs, for EC and OKP keys.
    pub fn curve(self) -> Option<&'static str> {
        match self {
            Algorithm::ES256 => Some("P-256"),
            Algorithm::ES384 => Some("P-384"),
            Algorithm::ES512 => Some("P-521"),
            Algorithm::EdDSA => Some("Ed25519"),
            _ => None,
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::parse(s)
    }
}

/// A set of algorithms: the allow-list a verifier applies to one kind of token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlgSet(u16);

impl AlgSet {
    /// The empty set.
    pub const EMPTY: AlgSet = AlgSet(0);

    /// Every supported algorithm.
    pub fn all() -> AlgSet {
        AlgSet::of(&Algorithm::ALL)
    }

    /// The RSA, ECDSA and RSA-PSS algorithms that JWT-SVID.md §2.1 and WIT-SVID.md allow
    /// (everything Lanyard supports except EdDSA).
    pub fn spiffe() -> AlgSet {
        AlgSet::all().without(Algorithm::EdDSA)
    }

    /// A set of the given algorithms.
    pub fn of(algs: &[Algorithm]) -> AlgSet {
        AlgSet(algs.iter().fold(0, |acc, a| acc | a.bit()))
    }

    /// This set plus `alg`.
    pub fn with(self, alg: Algorithm) -> AlgSet {
        AlgSet(self.0 | alg.bit())
    }

    /// This set minus `alg`.
    pub fn without(self, alg: Algorithm) -> AlgSet {
        AlgSet(self.0 & !alg.bit())
    }

    /// Whether `alg` is in the set.
    pub fn contains(self, alg: Algorithm) -> bool {
        self.0 & alg.bit() != 0
    }

    /// The members, in [`Algorithm::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL.into_iter().filter(move |a| self.contains(*a))
    }
}

impl fmt::Debug for AlgSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_none_and_hmac() {
        for bad in ["none", "None", "HS256", "HS512", "ES256K", ""] {
            assert_eq!(Algorithm::parse(bad).unwrap_err().kind(), "alg_not_allowed", "{bad}");
        }
        assert_eq!(Algorithm::parse("ES256").unwrap(), Algorithm::ES256);
    }

    #[test]
    fn sets() {
        let s = AlgSet::spiffe();
        assert!(s.contains(Algorithm::PS512));
        assert!(!s.contains(Algorithm::EdDSA));
        assert_eq!(s.iter().count(), 9);
    }
}
