//! Successful token-endpoint and introspection responses.
//!
//! [`TokenResponse`] is RFC 6749 §5.1 with RFC 8693 §2.2.1's `issued_token_type` and RFC
//! 9449 §5's `token_type: DPoP`. It has no `refresh_token` member: none of the grants
//! Lanyard serves issues one (RFC 6749 §4.4.3 for `client_credentials`; Txn-Tokens and
//! token exchange here never do). Send it with `Cache-Control: no-store`.
//!
//! [`IntrospectionResponse`] is RFC 7662 §2.2: `{"active": false}` and nothing else for a
//! token that is not active (unknown, expired, revoked, or not the caller's to see);
//! otherwise `active: true` with the token's `scope`, `client_id`, `token_type`, `exp`,
//! `iat`, `nbf`, `sub`, `aud`, `iss`, `jti`, and its `cnf` (RFC 8705 §3.2, RFC 9449 §6.2)
//! and `act` (RFC 8693 §4.1).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::jose::json;
use crate::oauth::access_token::{AccessTokenClaims, Actor, Audience};
use crate::oauth::confirmation::Confirmation;
use crate::oauth::scope::Scope;
use crate::oauth::urn::{AccessTokenType, TokenTypeUri};
use crate::time::UnixTime;

/// A successful token response.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The issued token (whatever its type, RFC 8693 §2.2.1).
    pub access_token: String,
    /// How to use it: `Bearer`, `DPoP`, or `N_A` for a token that is not an access token.
    pub token_type: AccessTokenType,
    /// Seconds until the token expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// The granted scope (REQUIRED when it differs from the requested one, RFC 6749 §5.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// The type of the issued token (REQUIRED for token exchange, RFC 8693 §2.2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<TokenTypeUri>,
}

impl fmt::Debug for TokenResponse {
    /// Never shows the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("issued_token_type", &self.issued_token_type)
            .finish()
    }
}

impl TokenResponse {
    /// The JSON body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a server's response (a client): strict JSON; an unknown `token_type` is kept
    /// as [`AccessTokenType::Other`] for the caller to refuse.
    pub fn from_json(bytes: &[u8]) -> Result<TokenResponse, Error> {
        let map = json::parse_object(bytes, "token response")?;
        serde_json::from_value(Value::Object(map)).map_err(|e| Error::malformed(format!("token response: {e}")))
    }
}

/// What introspection reveals about an active token.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveToken {
    /// The token's scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// The client it was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// A human-readable identifier of the resource owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `Bearer` or `DPoP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<AccessTokenType>,
    /// Expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<UnixTime>,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<UnixTime>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<UnixTime>,
    /// Subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audiences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Token identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The token's binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// The current actor of a delegated token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// Other members.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ActiveToken {
    /// What introspection says about an access token with these claims: every RFC 7662
    /// member from the token, `token_type` `DPoP` when `cnf.jkt` binds it and `Bearer`
    /// otherwise. The token's other claims are not copied.
    pub fn from_access_token(claims: &AccessTokenClaims) -> ActiveToken {
        let dpop = claims.cnf.as_ref().is_some_and(|c| c.jkt.is_some());
        ActiveToken {
            scope: claims.scope.clone(),
            client_id: Some(claims.client_id.clone()),
            username: None,
            token_type: Some(if dpop {
                AccessTokenType::Dpop
            } else {
                AccessTokenType::Bearer
            }),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            nbf: claims.nbf,
            sub: Some(claims.sub.clone()),
            aud: Some(claims.aud.clone()),
            iss: Some(claims.iss.clone()),
            jti: Some(claims.jti.clone()),
            cnf: claims.cnf.clone(),
            act: claims.act.clone(),
            extra: Map::new(),
        }
    }
}

/// An introspection response (RFC 7662 §2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntrospectionResponse {
    /// `{"active": false}`: nothing else is said.
    Inactive,
    /// `{"active": true, ...}`.
    Active(Box<ActiveToken>),
}

impl IntrospectionResponse {
    /// The JSON body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a server's response (a resource server that introspects): strict JSON,
    /// `active` required; an inactive response is [`IntrospectionResponse::Inactive`]
    /// whatever else it says.
    pub fn from_json(bytes: &[u8]) -> Result<IntrospectionResponse, Error> {
        let map = json::parse_object(bytes, "introspection response")?;
        serde_json::from_value(Value::Object(map)).map_err(|e| Error::malformed(format!("introspection response: {e}")))
    }
}

impl Serialize for IntrospectionResponse {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            active: bool,
            #[serde(flatten)]
            token: Option<&'a ActiveToken>,
        }
        match self {
            IntrospectionResponse::Inactive => Out {
                active: false,
                token: None,
            }
            .serialize(s),
            IntrospectionResponse::Active(token) => Out {
                active: true,
                token: Some(token),
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for IntrospectionResponse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<IntrospectionResponse, D::Error> {
        let mut map = Map::<String, Value>::deserialize(d)?;
        match map.remove("active") {
            Some(Value::Bool(false)) => Ok(IntrospectionResponse::Inactive),
            Some(Value::Bool(true)) => serde_json::from_value(Value::Object(map))
                .map(|t| IntrospectionResponse::Active(Box::new(t)))
                .map_err(serde::de::Error::custom),
            Some(_) => Err(serde::de::Error::custom("active must be a boolean")),
            None => Err(serde::de::Error::custom("active is required")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::access_token::Audience;
    use serde_json::json;

    #[test]
    fn token_response_has_no_nulls_and_no_refresh_token() {
        let r = TokenResponse {
            access_token: "at".into(),
            token_type: AccessTokenType::Dpop,
            expires_in: Some(300),
            scope: Some(Scope::parse("read").unwrap()),
            issued_token_type: None,
        };
        assert_eq!(
            r.to_json(),
            r#"{"access_token":"at","token_type":"DPoP","expires_in":300,"scope":"read"}"#
        );
        assert!(!format!("{r:?}").contains("\"at\""));
        let txn = TokenResponse {
            access_token: "tt".into(),
            token_type: AccessTokenType::NotApplicable,
            expires_in: None,
            scope: None,
            issued_token_type: Some(TokenTypeUri::TxnToken),
        };
        assert_eq!(
            txn.to_json(),
            r#"{"access_token":"tt","token_type":"N_A","issued_token_type":"urn:ietf:params:oauth:token-type:txn_token"}"#
        );
        let parsed =
            TokenResponse::from_json(br#"{"access_token":"x","token_type":"bearer","refresh_token":"r"}"#).unwrap();
        assert_eq!(parsed.token_type, AccessTokenType::Bearer);
        assert!(TokenResponse::from_json(br#"{"token_type":"Bearer"}"#).is_err());
    }

    #[test]
    fn introspection_inactive_says_nothing_else() {
        assert_eq!(IntrospectionResponse::Inactive.to_json(), r#"{"active":false}"#);
        let parsed = IntrospectionResponse::from_json(br#"{"active":false,"sub":"leak"}"#).unwrap();
        assert_eq!(parsed, IntrospectionResponse::Inactive);
        assert!(IntrospectionResponse::from_json(br#"{"sub":"x"}"#).is_err());
        assert!(IntrospectionResponse::from_json(br#"{"active":"true"}"#).is_err());
    }

    #[test]
    fn introspection_active_carries_cnf_and_act() {
        let claims = AccessTokenClaims {
            iss: "https://as.example".into(),
            sub: "c1".into(),
            aud: Audience::one("https://rs.example"),
            client_id: "c1".into(),
            scope: Some(Scope::parse("read write").unwrap()),
            iat: UnixTime(100),
            exp: UnixTime(400),
            nbf: None,
            jti: "j".into(),
            cnf: Some(Confirmation::dpop("thumb")),
            act: Some(Actor::new("agent")),
            extra: Map::from_iter([("private".to_owned(), json!("not copied"))]),
        };
        let r = IntrospectionResponse::Active(Box::new(ActiveToken::from_access_token(&claims)));
        let value: Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(
            value,
            json!({"active": true, "scope": "read write", "client_id": "c1", "token_type": "DPoP",
                   "exp": 400, "iat": 100, "sub": "c1", "aud": "https://rs.example",
                   "iss": "https://as.example", "jti": "j", "cnf": {"jkt": "thumb"}, "act": {"sub": "agent"}})
        );
        assert_eq!(IntrospectionResponse::from_json(r.to_json().as_bytes()).unwrap(), r);
    }
}
