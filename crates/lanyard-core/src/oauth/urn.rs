//! The URIs OAuth names things with: grant types (RFC 6749 §4.4, RFC 8693 §2.1, RFC 7523
//! §2.1), token types (RFC 8693 §3 and the drafts that register more), client assertion
//! types (RFC 7523 §2.2, draft-ietf-oauth-spiffe-client-auth §3.1), and the token type of a
//! token response (RFC 6749 §7.1, RFC 9449 §5, RFC 8693 §2.2.1).
//!
//! Every enum keeps a value it does not know as `Other`, so the token endpoint can answer
//! `unsupported_grant_type` (or `invalid_request`) naming exactly what it received, and
//! serializes as the wire string.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::jose::TokenType;

/// Declares an enum of known wire strings plus `Other(String)`, with `as_str`, `parse`,
/// `Display` and string serde.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $wire:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[non_exhaustive]
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know, kept as received.
            Other(String),
        }

        impl $name {
            /// Every known value.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The wire string.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )+
                    $name::Other(other) => other,
                }
            }

            /// Reads a wire string (exact, case-sensitive); unknown values become `Other`.
            pub fn parse(value: &str) -> $name {
                match value {
                    $( $wire => $name::$variant, )+
                    other => $name::Other(other.to_owned()),
                }
            }

            /// Whether this is a value this version knows.
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Other(_))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let value = String::deserialize(d)?;
                Ok($name::parse(&value))
            }
        }
    };
}

wire_enum! {
    /// An OAuth grant type (`grant_type`).
    GrantType {
        /// `client_credentials` (RFC 6749 §4.4).
        ClientCredentials = "client_credentials",
        /// `urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693 §2.1).
        TokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange",
        /// `urn:ietf:params:oauth:grant-type:jwt-bearer` (RFC 7523 §2.1).
        JwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer",
        /// `authorization_code` (RFC 6749 §4.1; never granted by Lanyard, named so it is
        /// recognised and refused as unsupported).
        AuthorizationCode = "authorization_code",
        /// `refresh_token` (RFC 6749 §6; likewise).
        RefreshToken = "refresh_token",
        /// `password` (RFC 6749 §4.3; forbidden by RFC 9700 §2.4).
        Password = "password",
    }
}

wire_enum! {
    /// A token type identifier (RFC 8693 §3; IANA "OAuth URI" registry).
    TokenTypeUri {
        /// `urn:ietf:params:oauth:token-type:access_token`.
        AccessToken = "urn:ietf:params:oauth:token-type:access_token",
        /// `urn:ietf:params:oauth:token-type:refresh_token`.
        RefreshToken = "urn:ietf:params:oauth:token-type:refresh_token",
        /// `urn:ietf:params:oauth:token-type:id_token`.
        IdToken = "urn:ietf:params:oauth:token-type:id_token",
        /// `urn:ietf:params:oauth:token-type:saml1`.
        Saml1 = "urn:ietf:params:oauth:token-type:saml1",
        /// `urn:ietf:params:oauth:token-type:saml2`.
        Saml2 = "urn:ietf:params:oauth:token-type:saml2",
        /// `urn:ietf:params:oauth:token-type:jwt` (any JWT).
        Jwt = "urn:ietf:params:oauth:token-type:jwt",
        /// `urn:ietf:params:oauth:token-type:txn_token` (draft-ietf-oauth-transaction-tokens).
        TxnToken = "urn:ietf:params:oauth:token-type:txn_token",
        /// `urn:ietf:params:oauth:token-type:self_signed` (a self-signed subject token for a
        /// Txn-Token request, draft-ietf-oauth-transaction-tokens).
        SelfSigned = "urn:ietf:params:oauth:token-type:self_signed",
        /// `urn:ietf:params:oauth:token-type:unsigned_json` (an unsigned JSON subject token,
        /// same draft).
        UnsignedJson = "urn:ietf:params:oauth:token-type:unsigned_json",
        /// `urn:ietf:params:oauth:token-type:id-jag` (draft-ietf-oauth-identity-assertion-authz-grant).
        IdJag = "urn:ietf:params:oauth:token-type:id-jag",
        /// `urn:lanyard:params:oauth:token-type:wit`: a Workload Identity Token
        /// (draft-ietf-wimse-workload-creds). Lanyard's own URN: WIMSE registers no token
        /// type for a WIT yet (spec updates 2026-12 §5); to be renamed when it does.
        LanyardWit = "urn:lanyard:params:oauth:token-type:wit",
    }
}

impl TokenTypeUri {
    /// The explicit JWT `typ` a token of this type carries when it is a JWT with one
    /// (an access token in RFC 9068 form, a Txn-Token, an ID-JAG).
    pub fn jwt_type(&self) -> Option<TokenType> {
        match self {
            TokenTypeUri::AccessToken => Some(TokenType::AccessToken),
            TokenTypeUri::TxnToken => Some(TokenType::TxnToken),
            TokenTypeUri::IdJag => Some(TokenType::IdJag),
            TokenTypeUri::LanyardWit => Some(TokenType::Wit),
            _ => None,
        }
    }
}

wire_enum! {
    /// A client assertion type (`client_assertion_type`, RFC 7521 §4.2).
    ClientAssertionType {
        /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`: a `private_key_jwt`
        /// assertion (RFC 7523 §2.2).
        JwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        /// `urn:ietf:params:oauth:client-assertion-type:jwt-spiffe`: a JWT-SVID
        /// (draft-ietf-oauth-spiffe-client-auth §3.1).
        JwtSpiffe = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe",
    }
}

wire_enum! {
    /// A client authentication method at the token, introspection or revocation endpoint
    /// (RFC 8414 §2 `token_endpoint_auth_methods_supported`; IANA "OAuth Token Endpoint
    /// Authentication Methods").
    ///
    /// The `spiffe_*` values come from draft-ietf-oauth-spiffe-client-auth §4 and are not
    /// IANA-registered yet (the draft's issue #48 may rename them), so peers' spellings
    /// that differ are kept as `Other` rather than refused.
    AuthMethod {
        /// `private_key_jwt` (RFC 7523 §2.2 with draft-ietf-oauth-rfc7523bis).
        PrivateKeyJwt = "private_key_jwt",
        /// `tls_client_auth` (RFC 8705 §2.1).
        TlsClientAuth = "tls_client_auth",
        /// `self_signed_tls_client_auth` (RFC 8705 §2.2).
        SelfSignedTlsClientAuth = "self_signed_tls_client_auth",
        /// `spiffe_jwt`: a JWT-SVID as `jwt-spiffe` client assertion.
        SpiffeJwt = "spiffe_jwt",
        /// `spiffe_x509`: an X.509-SVID over mutual TLS.
        SpiffeX509 = "spiffe_x509",
        /// `spiffe_wit`: a WIT-SVID with attestation-based client authentication headers.
        SpiffeWit = "spiffe_wit",
        /// `client_secret_basic` (RFC 6749 §2.3.1, HTTP Basic).
        ClientSecretBasic = "client_secret_basic",
        /// `client_secret_post` (RFC 6749 §2.3.1, form parameters).
        ClientSecretPost = "client_secret_post",
        /// `none`: a public client (never accepted by Lanyard).
        None = "none",
    }
}

/// How a token response says the token is used (`token_type`).
///
/// RFC 6749 §7.1 makes the value case-insensitive, so [`AccessTokenType::parse`] reads
/// `bearer` as [`AccessTokenType::Bearer`]; the server always writes the canonical form.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AccessTokenType {
    /// `Bearer` (RFC 6750).
    Bearer,
    /// `DPoP` (RFC 9449 §5): the token is bound to the proof key.
    Dpop,
    /// `N_A` (RFC 8693 §2.2.1): the issued token is not an access token (a Txn-Token, a
    /// JWT authorization grant).
    NotApplicable,
    /// Another value, kept as received.
    Other(String),
}

impl AccessTokenType {
    /// The canonical wire string.
    pub fn as_str(&self) -> &str {
        match self {
            AccessTokenType::Bearer => "Bearer",
            AccessTokenType::Dpop => "DPoP",
            AccessTokenType::NotApplicable => "N_A",
            AccessTokenType::Other(other) => other,
        }
    }

    /// Reads a `token_type` value, case-insensitively.
    pub fn parse(value: &str) -> AccessTokenType {
        [
            AccessTokenType::Bearer,
            AccessTokenType::Dpop,
            AccessTokenType::NotApplicable,
        ]
        .into_iter()
        .find(|known| known.as_str().eq_ignore_ascii_case(value))
        .unwrap_or_else(|| AccessTokenType::Other(value.to_owned()))
    }
}

impl fmt::Display for AccessTokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AccessTokenType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AccessTokenType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AccessTokenType, D::Error> {
        let value = String::deserialize(d)?;
        Ok(AccessTokenType::parse(&value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_round_trip_and_unknown_ones_stay_distinct() {
        for g in GrantType::KNOWN {
            assert_eq!(&GrantType::parse(g.as_str()), g);
            assert!(g.is_known());
        }
        for t in TokenTypeUri::KNOWN {
            assert_eq!(&TokenTypeUri::parse(t.as_str()), t);
        }
        for a in ClientAssertionType::KNOWN {
            assert_eq!(&ClientAssertionType::parse(a.as_str()), a);
        }
        let odd = GrantType::parse("urn:example:grant");
        assert_eq!(odd, GrantType::Other("urn:example:grant".into()));
        assert!(!odd.is_known());
        // Exact match: case differences are other values.
        assert!(!GrantType::parse("Client_Credentials").is_known());
        assert_eq!(
            serde_json::to_string(&TokenTypeUri::TxnToken).unwrap(),
            r#""urn:ietf:params:oauth:token-type:txn_token""#
        );
        let parsed: ClientAssertionType =
            serde_json::from_str(r#""urn:ietf:params:oauth:client-assertion-type:jwt-spiffe""#).unwrap();
        assert_eq!(parsed, ClientAssertionType::JwtSpiffe);
        assert_eq!(TokenTypeUri::TxnToken.jwt_type(), Some(TokenType::TxnToken));
        assert_eq!(TokenTypeUri::Jwt.jwt_type(), None);
    }

    #[test]
    fn token_type_is_case_insensitive_on_input() {
        assert_eq!(AccessTokenType::parse("bearer"), AccessTokenType::Bearer);
        assert_eq!(AccessTokenType::parse("DPOP"), AccessTokenType::Dpop);
        assert_eq!(AccessTokenType::parse("n_a"), AccessTokenType::NotApplicable);
        assert_eq!(AccessTokenType::Dpop.as_str(), "DPoP");
        assert_eq!(AccessTokenType::parse("MAC"), AccessTokenType::Other("MAC".into()));
    }
}
