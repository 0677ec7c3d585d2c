//! Explicit JWT typing (RFC 8725 §3.11) and the guard against token-type confusion.
//!
//! Every verifier that accepts a JWT as a credential checks the `typ` header with a
//! [`TypRule`]. Beyond "is this the type I expect", the rule knows every JWT type in
//! [`TokenType`]'s table: a token whose explicit `typ` belongs to *another* known token
//! type (an access token offered as a WIT, a WPT offered as a JWT-SVID, a DPoP proof
//! offered as a client assertion, ...) is refused with [`Error::TypeConfusion`]
//! (`typ_confusion`), whatever else the verifier would have tolerated. A missing or
//! unknown `typ` that the rule does not accept is [`Error::WrongType`] (`wrong_typ`).
//!
//! `typ` values are media types: compared case-insensitively, with or without the
//! `application/` prefix (RFC 7515 §4.1.9), so `application/WPT+JWT` is a WPT.
//!
//! The same table serves the OAuth side: a `private_key_jwt` client assertion is
//! `TypRule::or_generic(TokenType::ClientAuthentication)`, an RFC 7523 grant
//! `TypRule::or_generic(TokenType::AuthorizationGrant)`, an RFC 9068 access token
//! `TypRule::exactly(TokenType::AccessToken)`.

use std::fmt;

use crate::error::Error;

/// A JWT type with a registered (or drafted) explicit `typ`, and what defines it.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenType {
    /// `at+jwt`: an OAuth 2.0 access token in JWT form (RFC 9068).
    AccessToken,
    /// `dpop+jwt`: a DPoP proof (RFC 9449).
    DpopProof,
    /// `txntoken+jwt`: a Transaction Token (draft-ietf-oauth-transaction-tokens).
    TxnToken,
    /// `wit+jwt`: a Workload Identity Token (draft-ietf-wimse-workload-creds).
    Wit,
    /// `wpt+jwt`: a Workload Proof Token (draft-ietf-wimse-wpt).
    Wpt,
    /// `client-authentication+jwt`: a `private_key_jwt` client assertion
    /// (draft-ietf-oauth-rfc7523bis).
    ClientAuthentication,
    /// `authorization-grant+jwt`: a JWT authorization grant (draft-ietf-oauth-rfc7523bis).
    AuthorizationGrant,
    /// `oauth-client-attestation+jwt`: a client attestation
    /// (draft-ietf-oauth-attestation-based-client-auth).
    ClientAttestation,
    /// `oauth-client-attestation-pop+jwt`: its proof of possession (same draft).
    ClientAttestationPop,
    /// `secevent+jwt`: a Security Event Token (RFC 8417).
    SecurityEvent,
    /// `logout+jwt`: an OpenID Connect back-channel logout token.
    Logout,
    /// `token-introspection+jwt`: a JWT introspection response (RFC 9701).
    Introspection,
    /// `oauth-authz-req+jwt`: a JWT-secured authorization request (RFC 9101).
    AuthorizationRequest,
    /// `oauth-id-jag+jwt`: an identity assertion authorization grant
    /// (draft-ietf-oauth-identity-assertion-authz-grant).
    IdJag,
    /// `kb+jwt`: an SD-JWT key-binding JWT (draft-ietf-oauth-selective-disclosure-jwt).
    KeyBinding,
    /// `jwk-set+jwt`: a signed JWK Set (OpenID Federation, `signed_jwks_uri`).
    SignedJwks,
    /// `entity-statement+jwt`: an OpenID Federation entity statement.
    EntityStatement,
}

impl TokenType {
    /// Every known token type (the table the guard consults).
    pub const ALL: [TokenType; 17] = [
        TokenType::AccessToken,
        TokenType::DpopProof,
        TokenType::TxnToken,
        TokenType::Wit,
        TokenType::Wpt,
        TokenType::ClientAuthentication,
        TokenType::AuthorizationGrant,
        TokenType::ClientAttestation,
        TokenType::ClientAttestationPop,
        TokenType::SecurityEvent,
        TokenType::Logout,
        TokenType::Introspection,
        TokenType::AuthorizationRequest,
        TokenType::IdJag,
        TokenType::KeyBinding,
        TokenType::SignedJwks,
        TokenType::EntityStatement,
    ];

    /// The `typ` value senders emit (the media type without `application/`).
    pub fn typ(self) -> &'static str {
        match self {
            TokenType::AccessToken => "at+jwt",
            TokenType::DpopProof => "dpop+jwt",
            TokenType::TxnToken => "txntoken+jwt",
            TokenType::Wit => "wit+jwt",
            TokenType::Wpt => "wpt+jwt",
            TokenType::ClientAuthentication => "client-authentication+jwt",
            TokenType::AuthorizationGrant => "authorization-grant+jwt",
            TokenType::ClientAttestation => "oauth-client-attestation+jwt",
            TokenType::ClientAttestationPop => "oauth-client-attestation-pop+jwt",
            TokenType::SecurityEvent => "secevent+jwt",
            TokenType::Logout => "logout+jwt",
            TokenType::Introspection => "token-introspection+jwt",
            TokenType::AuthorizationRequest => "oauth-authz-req+jwt",
            TokenType::IdJag => "oauth-id-jag+jwt",
            TokenType::KeyBinding => "kb+jwt",
            TokenType::SignedJwks => "jwk-set+jwt",
            TokenType::EntityStatement => "entity-statement+jwt",
        }
    }

    /// The full media type, `application/<typ>`.
    pub fn media_type(self) -> String {
        format!("application/{}", self.typ())
    }

    /// A short name for messages (`WPT`, `DPoP proof`, ...).
    pub fn name(self) -> &'static str {
        match self {
            TokenType::AccessToken => "OAuth access token",
            TokenType::DpopProof => "DPoP proof",
            TokenType::TxnToken => "Txn-Token",
            TokenType::Wit => "WIT",
            TokenType::Wpt => "WPT",
            TokenType::ClientAuthentication => "client assertion",
            TokenType::AuthorizationGrant => "JWT authorization grant",
            TokenType::ClientAttestation => "client attestation",
            TokenType::ClientAttestationPop => "client attestation PoP",
            TokenType::SecurityEvent => "security event token",
            TokenType::Logout => "logout token",
            TokenType::Introspection => "introspection response",
            TokenType::AuthorizationRequest => "request object",
            TokenType::IdJag => "ID-JAG",
            TokenType::KeyBinding => "key-binding JWT",
            TokenType::SignedJwks => "signed JWK Set",
            TokenType::EntityStatement => "entity statement",
        }
    }

    /// The known token type a `typ` value names, if any: case-insensitive, with or
    /// without `application/`.
    pub fn from_typ(typ: &str) -> Option<TokenType> {
        let bare = strip_application(typ);
        TokenType::ALL.into_iter().find(|t| bare.eq_ignore_ascii_case(t.typ()))
    }
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.typ())
    }
}

fn strip_application(typ: &str) -> &str {
    match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    }
}

/// What a verifier accepts in `typ`: one explicit token type, the generic forms (no
/// `typ`, `JWT` or `JOSE`), or either. Whatever it accepts, an explicit `typ` of another
/// [`TokenType`] is refused as [`Error::TypeConfusion`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypRule {
    /// The explicit type accepted, if any.
    pub token: Option<TokenType>,
    /// Whether a token without `typ`, or with the generic `JWT` or `JOSE`, is accepted.
    pub generic: bool,
    /// A second explicit type accepted as well (one format known under two names, such
    /// as a WIT-SVID presented as a client attestation).
    pub also: Option<TokenType>,
}

impl TypRule {
    /// Only `token`'s explicit `typ` (WIT, WPT, RFC 9068 access tokens).
    pub const fn exactly(token: TokenType) -> TypRule {
        TypRule {
            token: Some(token),
            generic: false,
            also: None,
        }
    }

    /// Only the generic forms: absent, `JWT` or `JOSE` (JWT-SVID.md §2.3).
    pub const fn generic() -> TypRule {
        TypRule {
            token: None,
            generic: true,
            also: None,
        }
    }

    /// `token`'s explicit `typ` or the generic forms (for JWT profiles whose explicit type
    /// came later than their deployments, such as RFC 7523 client assertions).
    pub const fn or_generic(token: TokenType) -> TypRule {
        TypRule {
            token: Some(token),
            generic: true,
            also: None,
        }
    }

    /// This rule, also accepting `other`'s explicit `typ`.
    pub const fn or_also(self, other: TokenType) -> TypRule {
        TypRule {
            also: Some(other),
            ..self
        }
    }

    /// Checks a header's `typ` against the rule.
    pub fn check(&self, typ: Option<&str>) -> Result<(), Error> {
        let expected = self.token.map_or("JWT", TokenType::typ);
        let Some(typ) = typ else {
            return if self.generic {
                Ok(())
            } else {
                Err(Error::WrongType { expected, found: None })
            };
        };
        match TokenType::from_typ(typ) {
            Some(found) if Some(found) == self.token || Some(found) == self.also => Ok(()),
            Some(found) => Err(Error::TypeConfusion { expected, found }),
            // JWT-SVID.md §2.3 names exactly these two values.
            None if self.generic && (typ == "JWT" || typ == "JOSE") => Ok(()),
            None => Err(Error::WrongType {
                expected,
                found: Some(typ.to_owned()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_one_to_one_and_reads_both_spellings() {
        for t in TokenType::ALL {
            assert_eq!(TokenType::from_typ(t.typ()), Some(t));
            assert_eq!(TokenType::from_typ(&t.media_type()), Some(t));
            assert_eq!(TokenType::from_typ(&t.media_type().to_ascii_uppercase()), Some(t));
        }
        let mut typs: Vec<&str> = TokenType::ALL.iter().map(|t| t.typ()).collect();
        typs.sort_unstable();
        typs.dedup();
        assert_eq!(typs.len(), TokenType::ALL.len());
        for unknown in ["JWT", "JOSE", "wimse-id+jwt", "application/", "", "jwt"] {
            assert_eq!(TokenType::from_typ(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn rules() {
        let kind = |rule: TypRule, typ: Option<&str>| rule.check(typ).err().map(|e| e.kind());
        let wit = TypRule::exactly(TokenType::Wit);
        assert_eq!(kind(wit, Some("wit+jwt")), None);
        assert_eq!(kind(wit, Some("application/wit+jwt")), None);
        assert_eq!(kind(wit, None), Some("wrong_typ"));
        assert_eq!(kind(wit, Some("JWT")), Some("wrong_typ"));
        assert_eq!(kind(wit, Some("wimse-id+jwt")), Some("wrong_typ"));
        assert_eq!(kind(wit, Some("wpt+jwt")), Some("typ_confusion"));
        assert_eq!(kind(wit, Some("application/at+jwt")), Some("typ_confusion"));

        let svid = TypRule::generic();
        for ok in [None, Some("JWT"), Some("JOSE")] {
            assert_eq!(kind(svid, ok), None, "{ok:?}");
        }
        assert_eq!(kind(svid, Some("jwt")), Some("wrong_typ"));
        assert_eq!(kind(svid, Some("foo+jwt")), Some("wrong_typ"));
        for other in TokenType::ALL {
            assert_eq!(kind(svid, Some(other.typ())), Some("typ_confusion"), "{other:?}");
        }

        let assertion = TypRule::or_generic(TokenType::ClientAuthentication);
        assert_eq!(kind(assertion, None), None);
        assert_eq!(kind(assertion, Some("client-authentication+jwt")), None);
        assert_eq!(kind(assertion, Some("dpop+jwt")), Some("typ_confusion"));
        assert!(matches!(
            assertion.check(Some("at+jwt")),
            Err(Error::TypeConfusion {
                expected: "client-authentication+jwt",
                found: TokenType::AccessToken
            })
        ));
    }
}
