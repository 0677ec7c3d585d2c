//! Signature algorithms, named for both JOSE and COSE.
//!
//! One [`Algorithm`] is one asymmetric signature operation. It knows its JOSE `alg` name
//! (RFC 7518 §3, RFC 8037 §3.1) and its COSE algorithm identifier (RFC 9053 §2, RFC 8230
//! §2, RFC 8812 §2), including the fully specified identifiers of RFC 9864 §2 (`ESP256`,
//! `ESP384`, `ESP512`, `Ed25519`), which name the curve as well as the operation. JOSE code
//! and COSE code share the enum, so a key bound to an algorithm means the same thing in a
//! JWS and in a COSE_Sign1.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// An asymmetric signature algorithm Lanyard can sign and verify.
///
/// `none`, the HMAC family and every symmetric algorithm have no variant: they can never
/// be selected, whatever a token or a key says.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256 (the WIMSE mandatory-to-implement algorithm).
    ES256,
    /// ECDSA P-384 with SHA-384.
    ES384,
    /// ECDSA P-521 with SHA-512.
    ES512,
    /// EdDSA (RFC 8037), which Lanyard only uses with Ed25519 keys.
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
    /// ECDSA P-256 with SHA-256, fully specified (RFC 9864 §2.1): the same operation as
    /// `ES256`, under an identifier that also names the curve.
    ESP256,
    /// ECDSA P-384 with SHA-384, fully specified (RFC 9864 §2.1).
    ESP384,
    /// ECDSA P-521 with SHA-512, fully specified (RFC 9864 §2.1).
    ESP512,
    /// EdDSA on Ed25519, fully specified (RFC 9864 §2.2).
    Ed25519,
}

impl Algorithm {
    /// The polymorphic JWS algorithms of RFC 7518 and RFC 8037, in a stable order: what
    /// JOSE verification accepts by default, and the algorithms a JWK without `alg` may be
    /// used with. The fully specified identifiers are in [`Algorithm::FULLY_SPECIFIED`].
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

    /// The fully specified signature algorithms of RFC 9864 §2 that Lanyard implements
    /// (Ed448 is not implemented).
    pub const FULLY_SPECIFIED: [Algorithm; 4] = [
        Algorithm::ESP256,
        Algorithm::ESP384,
        Algorithm::ESP512,
        Algorithm::Ed25519,
    ];

    /// Every variant: [`Algorithm::ALL`], then [`Algorithm::FULLY_SPECIFIED`].
    pub fn every() -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL.into_iter().chain(Algorithm::FULLY_SPECIFIED)
    }

    /// The JOSE name (the `alg` header value).
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
            Algorithm::ESP256 => "ESP256",
            Algorithm::ESP384 => "ESP384",
            Algorithm::ESP512 => "ESP512",
            Algorithm::Ed25519 => "Ed25519",
        }
    }

    /// The COSE algorithm identifier (the value of COSE header `alg`, label 1), from the
    /// IANA "COSE Algorithms" registry.
    pub fn cose_id(self) -> i64 {
        match self {
            Algorithm::ES256 => -7,
            Algorithm::ES384 => -35,
            Algorithm::ES512 => -36,
            Algorithm::EdDSA => -8,
            Algorithm::RS256 => -257,
            Algorithm::RS384 => -258,
            Algorithm::RS512 => -259,
            Algorithm::PS256 => -37,
            Algorithm::PS384 => -38,
            Algorithm::PS512 => -39,
            Algorithm::ESP256 => -9,
            Algorithm::ESP384 => -51,
            Algorithm::ESP512 => -52,
            Algorithm::Ed25519 => -19,
        }
    }

    /// The algorithm with COSE identifier `id`; unknown and symmetric identifiers are
    /// refused with a reason.
    pub fn from_cose_id(id: i64) -> Result<Algorithm, Error> {
        if let Some(alg) = Algorithm::every().find(|a| a.cose_id() == id) {
            return Ok(alg);
        }
        let reason = match id {
            // HMAC 256/64, 256/256, 384/384, 512/512 (RFC 9053 §3.1).
            4..=7 => "symmetric (HMAC) algorithms are never accepted",
            _ => "unsupported algorithm",
        };
        Err(Error::AlgorithmNotAllowed {
            alg: id.to_string(),
            reason,
        })
    }

    /// Parses a JOSE `alg` value; `none`, HMAC and unknown names are refused with a reason.
    pub fn parse(name: &str) -> Result<Algorithm, Error> {
        if let Some(alg) = Algorithm::every().find(|a| a.as_str() == name) {
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

    /// Whether the identifier names the curve as well as the operation (RFC 9864).
    /// ECDSA and RSA identifiers other than these are polymorphic only in the JOSE sense
    /// that the key type is implied; EdDSA is polymorphic over curves.
    pub fn is_fully_specified(self) -> bool {
        matches!(
            self,
            Algorithm::ESP256 | Algorithm::ESP384 | Algorithm::ESP512 | Algorithm::Ed25519
        )
    }

    /// The polymorphic algorithm performing the same operation: `ES256` for `ESP256`,
    /// `EdDSA` for `Ed25519`, the algorithm itself otherwise. Crypto providers choose the
    /// primitive from this.
    pub fn operation(self) -> Algorithm {
        match self {
            Algorithm::ESP256 => Algorithm::ES256,
            Algorithm::ESP384 => Algorithm::ES384,
            Algorithm::ESP512 => Algorithm::ES512,
            Algorithm::Ed25519 => Algorithm::EdDSA,
            other => other,
        }
    }

    /// The JWK `kty` this algorithm needs.
    pub fn key_type(self) -> &'static str {
        match self.operation() {
            Algorithm::ES256 | Algorithm::ES384 | Algorithm::ES512 => "EC",
            Algorithm::EdDSA => "OKP",
            _ => "RSA",
        }
    }

    /// The JWK `crv` this algorithm needs, for EC and OKP keys.
    pub fn curve(self) -> Option<&'static str> {
        match self.operation() {
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

    /// The JOSE algorithms of [`Algorithm::ALL`]: the default allow-list for JWS.
    pub fn all() -> AlgSet {
        AlgSet::of(&Algorithm::ALL)
    }

    /// Every algorithm Lanyard implements, the fully specified ones included.
    pub fn every() -> AlgSet {
        AlgSet::of(&Algorithm::every().collect::<Vec<_>>())
    }

    /// The RSA, ECDSA and RSA-PSS algorithms that JWT-SVID.md §2.1 and WIT-SVID.md allow
    /// (the JOSE algorithms except EdDSA).
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

    /// The members, in [`Algorithm::every`] order.
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::every().filter(move |a| self.contains(*a))
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
        assert_eq!(AlgSet::all().iter().count(), 10);
        assert!(AlgSet::every().contains(Algorithm::ESP256));
        assert!(!AlgSet::all().contains(Algorithm::ESP256));
        assert_eq!(AlgSet::every().iter().count(), 14);
    }

    #[test]
    fn cose_identifiers() {
        // RFC 9053 §2.1/§2.2, RFC 8230 §2, RFC 8812 §2, RFC 9864 §2.1/§2.2.
        let expected = [
            (Algorithm::ES256, -7),
            (Algorithm::ES384, -35),
            (Algorithm::ES512, -36),
            (Algorithm::EdDSA, -8),
            (Algorithm::PS256, -37),
            (Algorithm::PS384, -38),
            (Algorithm::PS512, -39),
            (Algorithm::RS256, -257),
            (Algorithm::RS384, -258),
            (Algorithm::RS512, -259),
            (Algorithm::ESP256, -9),
            (Algorithm::ESP384, -51),
            (Algorithm::ESP512, -52),
            (Algorithm::Ed25519, -19),
        ];
        for (alg, id) in expected {
            assert_eq!(alg.cose_id(), id, "{alg}");
            assert_eq!(Algorithm::from_cose_id(id).unwrap(), alg);
            assert_eq!(Algorithm::parse(alg.as_str()).unwrap(), alg);
        }
        assert_eq!(expected.len(), Algorithm::every().count());
        assert_eq!(Algorithm::from_cose_id(5).unwrap_err().kind(), "alg_not_allowed");
        assert_eq!(Algorithm::from_cose_id(-53).unwrap_err().kind(), "alg_not_allowed");
        assert_eq!(Algorithm::ESP384.operation(), Algorithm::ES384);
        assert_eq!(Algorithm::Ed25519.curve(), Some("Ed25519"));
        assert_eq!(Algorithm::ESP256.key_type(), "EC");
    }
}
