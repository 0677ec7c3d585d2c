//! Requests to the token, introspection and revocation endpoints, read from a strictly
//! parsed [`Form`] (and, for client authentication, two or three headers).
//!
//! - [`TokenRequest`]: `grant_type` with its grant's parameters: `client_credentials`
//!   (RFC 6749 §4.4.2), token exchange (RFC 8693 §2.1: `subject_token` and
//!   `subject_token_type` required, `actor_token_type` exactly when `actor_token` is
//!   present, plus the Txn-Token `request_context` / `request_details`), the JWT bearer
//!   grant (RFC 7523 §2.1: one `assertion`); `scope` (RFC 6749 §3.3), `resource` (RFC 8707
//!   §2: absolute URIs without fragment, repeatable) and `audience` (RFC 8693, repeatable).
//!   An unknown `grant_type` is [`Grant::Unsupported`] for the server to answer
//!   `unsupported_grant_type`.
//! - [`ClientAuthentication`]: the one client authentication method a request uses (RFC
//!   6749 §2.3: more than one is refused): HTTP Basic (`client_secret_basic`, §2.3.1 with
//!   form-encoded credentials), `client_secret` in the body, a `client_assertion` (RFC 7521
//!   §4.2) of any type, the attestation-based headers (`OAuth-Client-Attestation` and
//!   `-PoP`, the WIT-SVID method of draft-ietf-oauth-spiffe-client-auth §3.3), or only a
//!   `client_id` (mutual TLS when the connection has a client certificate).
//! - [`TokenHintRequest`]: `token` and `token_type_hint` (RFC 7662 §2.1, RFC 7009 §2.1).
//!
//! Values that are credentials are [`Credential`]s, whose `Debug` never shows them.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::Error;
use crate::oauth::form::{Form, decode_component};
use crate::oauth::scope::Scope;
use crate::oauth::urn::{ClientAssertionType, GrantType, TokenTypeUri};
use crate::oauth::violation::{Violation, clip};

/// A secret or token from a request. `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential(String);

impl Credential {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Credential {
        Credential(value.into())
    }

    /// The value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credential(<{} bytes>)", self.0.len())
    }
}

/// A token request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// The grant and its parameters.
    pub grant: Grant,
    /// `scope`, if requested.
    pub scope: Option<Scope>,
    /// Every `resource` (RFC 8707).
    pub resources: Vec<String>,
    /// Every `audience` (RFC 8693).
    pub audiences: Vec<String>,
}

/// The grant a token request asks for.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// `client_credentials` (RFC 6749 §4.4).
    ClientCredentials,
    /// Token exchange (RFC 8693 §2.1).
    TokenExchange(TokenExchange),
    /// The JWT bearer grant (RFC 7523 §2.1): the assertion to redeem.
    JwtBearer {
        /// The JWT authorization grant.
        assertion: Credential,
    },
    /// A grant type this server does not serve (`unsupported_grant_type`).
    Unsupported(GrantType),
}

impl Grant {
    /// The `grant_type` value.
    pub fn grant_type(&self) -> GrantType {
        match self {
            Grant::ClientCredentials => GrantType::ClientCredentials,
            Grant::TokenExchange(_) => GrantType::TokenExchange,
            Grant::JwtBearer { .. } => GrantType::JwtBearer,
            Grant::Unsupported(other) => other.clone(),
        }
    }
}

/// The parameters of a token exchange (RFC 8693 §2.1), with the Txn-Token request's
/// context (draft-ietf-oauth-transaction-tokens).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenExchange {
    /// The token for the party on whose behalf the request is made.
    pub subject_token: Credential,
    /// Its type.
    pub subject_token_type: TokenTypeUri,
    /// The acting party's token and its type, when present.
    pub actor: Option<(Credential, TokenTypeUri)>,
    /// The type of token asked for (the server chooses when absent).
    pub requested_token_type: Option<TokenTypeUri>,
    /// `request_context` (Txn-Token requests), as sent.
    pub request_context: Option<String>,
    /// `request_details` (Txn-Token requests), as sent.
    pub request_details: Option<String>,
}

fn required<'a>(form: &'a Form, name: &'static str) -> Result<&'a str, Error> {
    form.get(name).ok_or_else(|| Violation::MissingParameter(name).into())
}

impl TokenRequest {
    /// Reads a token request from `form`.
    pub fn from_form(form: &Form) -> Result<TokenRequest, Error> {
        let grant_type = GrantType::parse(required(form, "grant_type")?);
        let grant = match grant_type {
            GrantType::ClientCredentials => Grant::ClientCredentials,
            GrantType::TokenExchange => Grant::TokenExchange(TokenExchange::from_form(form)?),
            GrantType::JwtBearer => Grant::JwtBearer {
                assertion: Credential::new(required(form, "assertion")?),
            },
            other => Grant::Unsupported(other),
        };
        let scope = form.get("scope").map(Scope::parse).transpose()?;
        let resources = form.values("resource").to_vec();
        for resource in &resources {
            check_resource(resource)?;
        }
        Ok(TokenRequest {
            grant,
            scope,
            resources,
            audiences: form.values("audience").to_vec(),
        })
    }
}

impl TokenExchange {
    fn from_form(form: &Form) -> Result<TokenExchange, Error> {
        let actor = match (form.get("actor_token"), form.get("actor_token_type")) {
            (Some(token), Some(kind)) => Some((Credential::new(token), TokenTypeUri::parse(kind))),
            (None, None) => None,
            (Some(_), None) => return Err(Violation::MissingParameter("actor_token_type").into()),
            (None, Some(_)) => {
                return Err(Violation::InvalidParameter {
                    name: "actor_token_type",
                    reason: "must not appear without actor_token (RFC 8693 §2.1)".into(),
                }
                .into());
            }
        };
        Ok(TokenExchange {
            subject_token: Credential::new(required(form, "subject_token")?),
            subject_token_type: TokenTypeUri::parse(required(form, "subject_token_type")?),
            actor,
            requested_token_type: form.get("requested_token_type").map(TokenTypeUri::parse),
            request_context: form.get("request_context").map(str::to_owned),
            request_details: form.get("request_details").map(str::to_owned),
        })
    }
}

/// RFC 8707 §2: an absolute URI (RFC 3986 §4.3: a scheme, no fragment).
fn check_resource(resource: &str) -> Result<(), Error> {
    let scheme_ok = resource.split_once(':').is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    let printable = resource.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if scheme_ok && printable && !resource.contains('#') {
        Ok(())
    } else {
        Err(Violation::InvalidResource {
            resource: clip(resource, 256),
        }
        .into())
    }
}

/// The headers, besides the form, that can carry client credentials.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientAuthHeaders<'a> {
    /// `Authorization` (only the `Basic` scheme authenticates a client here).
    pub authorization: Option<&'a str>,
    /// `OAuth-Client-Attestation`.
    pub attestation: Option<&'a str>,
    /// `OAuth-Client-Attestation-PoP`.
    pub attestation_pop: Option<&'a str>,
}

/// The client authentication a request uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientAuthentication {
    /// `client_secret_basic`: HTTP Basic with the form-encoded client id and secret.
    SecretBasic {
        /// The client.
        client_id: String,
        /// The secret.
        secret: Credential,
    },
    /// `client_secret_post`: `client_id` and `client_secret` in the body.
    SecretPost {
        /// The client.
        client_id: String,
        /// The secret.
        secret: Credential,
    },
    /// A client assertion (`private_key_jwt`, `jwt-spiffe`, or a type the server may not
    /// support).
    Assertion {
        /// `client_id`, if sent (required with `jwt-spiffe`, optional with
        /// `private_key_jwt`: the server decides, see [`ClientAuthentication::client_id`]).
        client_id: Option<String>,
        /// `client_assertion_type`.
        assertion_type: ClientAssertionType,
        /// `client_assertion`.
        assertion: Credential,
    },
    /// Attestation-based client authentication (a WIT-SVID and its proof of possession).
    Attestation {
        /// `client_id`, if sent.
        client_id: Option<String>,
        /// `OAuth-Client-Attestation`.
        attestation: Credential,
        /// `OAuth-Client-Attestation-PoP`.
        pop: Credential,
    },
    /// Only a `client_id`: mutual-TLS client authentication when the connection carries a
    /// client certificate (RFC 8705 §2), otherwise an unauthenticated client.
    ClientIdOnly {
        /// The client.
        client_id: String,
    },
    /// No client identification at all.
    None,
}

impl ClientAuthentication {
    /// Finds the one client authentication method of a request (RFC 6749 §2.3).
    ///
    /// Refuses more than one method ([`Violation::MultipleClientAuthentication`]), a
    /// `client_id` in the body that differs from the Basic one, half of an assertion pair
    /// or of the attestation header pair ([`Violation::MissingParameter`]), and malformed
    /// Basic credentials.
    pub fn from_request(form: &Form, headers: &ClientAuthHeaders<'_>) -> Result<ClientAuthentication, Error> {
        let basic = headers
            .authorization
            .filter(|v| scheme_is(v, "Basic"))
            .map(parse_basic_credentials)
            .transpose()?;
        let mut methods = Vec::new();
        if basic.is_some() {
            methods.push("client_secret_basic");
        }
        if form.contains("client_secret") {
            methods.push("client_secret_post");
        }
        if form.contains("client_assertion") || form.contains("client_assertion_type") {
            methods.push("client_assertion");
        }
        if headers.attestation.is_some() || headers.attestation_pop.is_some() {
            methods.push("attestation");
        }
        if methods.len() > 1 {
            return Err(Violation::MultipleClientAuthentication { methods }.into());
        }
        let client_id = form.get("client_id").map(str::to_owned);
        if let Some((basic_id, secret)) = basic {
            if client_id.as_ref().is_some_and(|id| *id != basic_id) {
                return Err(Violation::InvalidParameter {
                    name: "client_id",
                    reason: "differs from the client of the Authorization header".into(),
                }
                .into());
            }
            return Ok(ClientAuthentication::SecretBasic {
                client_id: basic_id,
                secret: Credential::new(secret),
            });
        }
        if let Some(secret) = form.get("client_secret") {
            return Ok(ClientAuthentication::SecretPost {
                client_id: client_id.ok_or(Violation::MissingParameter("client_id"))?,
                secret: Credential::new(secret),
            });
        }
        if methods.first() == Some(&"client_assertion") {
            return Ok(ClientAuthentication::Assertion {
                client_id,
                assertion_type: ClientAssertionType::parse(required(form, "client_assertion_type")?),
                assertion: Credential::new(required(form, "client_assertion")?),
            });
        }
        if methods.first() == Some(&"attestation") {
            let (Some(attestation), Some(pop)) = (headers.attestation, headers.attestation_pop) else {
                return Err(Violation::MissingParameter(if headers.attestation.is_none() {
                    "OAuth-Client-Attestation"
                } else {
                    "OAuth-Client-Attestation-PoP"
                })
                .into());
            };
            return Ok(ClientAuthentication::Attestation {
                client_id,
                attestation: Credential::new(attestation),
                pop: Credential::new(pop),
            });
        }
        Ok(match client_id {
            Some(client_id) => ClientAuthentication::ClientIdOnly { client_id },
            None => ClientAuthentication::None,
        })
    }

    /// The `client_id` the request names, if any.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            ClientAuthentication::SecretBasic { client_id, .. }
            | ClientAuthentication::SecretPost { client_id, .. }
            | ClientAuthentication::ClientIdOnly { client_id } => Some(client_id),
            ClientAuthentication::Assertion { client_id, .. } | ClientAuthentication::Attestation { client_id, .. } => {
                client_id.as_deref()
            }
            ClientAuthentication::None => None,
        }
    }
}

fn scheme_is(value: &str, scheme: &str) -> bool {
    value
        .split_once(' ')
        .is_some_and(|(s, _)| s.eq_ignore_ascii_case(scheme))
}

/// Decodes `Authorization: Basic <base64(urlencode(id) ":" urlencode(secret))>` (RFC 6749
/// §2.3.1, RFC 7617). The id and secret must be non-empty.
pub fn parse_basic_credentials(header: &str) -> Result<(String, String), Error> {
    let invalid = |reason: &str| -> Error {
        Violation::InvalidParameter {
            name: "Authorization",
            reason: reason.to_owned(),
        }
        .into()
    };
    let (scheme, credentials) = header.split_once(' ').ok_or_else(|| invalid("not Basic credentials"))?;
    if !scheme.eq_ignore_ascii_case("Basic") {
        return Err(invalid("not the Basic scheme"));
    }
    let decoded = STANDARD
        .decode(credentials.trim_matches(' '))
        .map_err(|_| invalid("the Basic credentials are not base64"))?;
    let colon = decoded
        .iter()
        .position(|b| *b == b':')
        .ok_or_else(|| invalid("the Basic credentials have no ':'"))?;
    // Each part is itself form-encoded (RFC 6749 §2.3.1).
    let id = decode_component(&decoded[..colon])?;
    let secret = decode_component(&decoded[colon + 1..])?;
    if id.is_empty() || secret.is_empty() {
        return Err(invalid("the Basic client id and secret must not be empty"));
    }
    Ok((id, secret))
}

/// An introspection (RFC 7662 §2.1) or revocation (RFC 7009 §2.1) request: the token and an
/// optional hint of its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenHintRequest {
    /// The token.
    pub token: Credential,
    /// `token_type_hint` (`access_token`, `refresh_token`, ...), as sent.
    pub token_type_hint: Option<String>,
}

impl TokenHintRequest {
    /// Reads the request from `form`.
    pub fn from_form(form: &Form) -> Result<TokenHintRequest, Error> {
        Ok(TokenHintRequest {
            token: Credential::new(required(form, "token")?),
            token_type_hint: form.get("token_type_hint").map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::oauth::form::FormLimits;

    fn form(body: &str) -> Form {
        Form::parse(body.as_bytes(), FormLimits::default()).unwrap()
    }

    #[test]
    fn client_credentials_with_targets() {
        let r = TokenRequest::from_form(&form(
            "grant_type=client_credentials&scope=read&resource=https%3A%2F%2Fa.example%2Fapi&resource=urn:example:b&audience=ledger",
        ))
        .unwrap();
        assert_eq!(r.grant, Grant::ClientCredentials);
        assert_eq!(r.scope, Some(Scope::parse("read").unwrap()));
        assert_eq!(r.resources, ["https://a.example/api", "urn:example:b"]);
        assert_eq!(r.audiences, ["ledger"]);
        let kind = |body: &str| TokenRequest::from_form(&form(body)).unwrap_err().kind();
        assert_eq!(kind("scope=read"), "missing_parameter");
        assert_eq!(
            kind("grant_type=client_credentials&resource=https://a.example/%23x#frag"),
            "invalid_resource"
        );
        assert_eq!(
            kind("grant_type=client_credentials&resource=/relative"),
            "invalid_resource"
        );
        assert_eq!(kind("grant_type=client_credentials&scope=a%20%20b"), "scope_syntax");
        let odd = TokenRequest::from_form(&form("grant_type=password")).unwrap();
        assert_eq!(odd.grant, Grant::Unsupported(GrantType::Password));
        assert_eq!(odd.grant.grant_type().as_str(), "password");
    }

    #[test]
    fn token_exchange_pairs_actor_parameters() {
        let base = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=s&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token";
        let r = TokenRequest::from_form(&form(&format!(
            "{base}&actor_token=a&actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Atxn_token&request_context=%7B%7D"
        )))
        .unwrap();
        let Grant::TokenExchange(te) = r.grant else {
            panic!("not an exchange")
        };
        assert_eq!(te.subject_token.expose(), "s");
        assert_eq!(te.subject_token_type, TokenTypeUri::AccessToken);
        assert_eq!(te.actor, Some((Credential::new("a"), TokenTypeUri::Jwt)));
        assert_eq!(te.requested_token_type, Some(TokenTypeUri::TxnToken));
        assert_eq!(te.request_context.as_deref(), Some("{}"));
        assert!(!format!("{te:?}").contains("\"s\""));
        let kind = |body: String| TokenRequest::from_form(&form(&body)).unwrap_err().kind();
        assert_eq!(kind(format!("{base}&actor_token=a")), "missing_parameter");
        assert_eq!(
            kind(format!(
                "{base}&actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt"
            )),
            "invalid_parameter"
        );
        assert_eq!(
            kind("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=s".into()),
            "missing_parameter"
        );
        assert_eq!(
            kind("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer".into()),
            "missing_parameter"
        );
    }

    #[test]
    fn exactly_one_client_authentication_method() {
        let none = ClientAuthHeaders::default();
        let basic = "Basic ".to_owned() + &STANDARD.encode("my%3Aclient:s%20cret");
        let with_basic = ClientAuthHeaders {
            authorization: Some(&basic),
            ..ClientAuthHeaders::default()
        };
        let auth = ClientAuthentication::from_request(&form("grant_type=client_credentials"), &with_basic).unwrap();
        assert_eq!(
            auth,
            ClientAuthentication::SecretBasic {
                client_id: "my:client".into(),
                secret: Credential::new("s cret")
            }
        );
        let assertion = "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-spiffe&client_assertion=eyJ.x.y&client_id=spiffe%3A%2F%2Fexample.org%2Fc";
        let auth = ClientAuthentication::from_request(&form(assertion), &none).unwrap();
        assert_eq!(auth.client_id(), Some("spiffe://example.org/c"));
        assert!(matches!(
            auth,
            ClientAuthentication::Assertion {
                assertion_type: ClientAssertionType::JwtSpiffe,
                ..
            }
        ));
        let kind = |body: &str, h: &ClientAuthHeaders<'_>| {
            ClientAuthentication::from_request(&form(body), h).unwrap_err().kind()
        };
        assert_eq!(kind(assertion, &with_basic), "multiple_client_auth");
        assert_eq!(
            kind(
                "client_id=a&client_secret=b&client_assertion=x&client_assertion_type=y",
                &none
            ),
            "multiple_client_auth"
        );
        assert_eq!(kind("client_assertion=x", &none), "missing_parameter");
        assert_eq!(kind("client_secret=b", &none), "missing_parameter");
        assert_eq!(kind("client_id=other", &with_basic), "invalid_parameter");
        let half = ClientAuthHeaders {
            attestation: Some("wit"),
            ..ClientAuthHeaders::default()
        };
        assert_eq!(kind("client_id=a", &half), "missing_parameter");
        assert_eq!(
            ClientAuthentication::from_request(&form("client_id=a"), &none).unwrap(),
            ClientAuthentication::ClientIdOnly { client_id: "a".into() }
        );
        assert_eq!(
            ClientAuthentication::from_request(&form("grant_type=x"), &none).unwrap(),
            ClientAuthentication::None
        );
        // A bearer or DPoP Authorization header is not client authentication.
        let bearer = ClientAuthHeaders {
            authorization: Some("DPoP abc"),
            ..ClientAuthHeaders::default()
        };
        assert_eq!(
            ClientAuthentication::from_request(&form("client_id=a"), &bearer).unwrap(),
            ClientAuthentication::ClientIdOnly { client_id: "a".into() }
        );
    }

    #[test]
    fn basic_credentials() {
        for bad in [
            "Basic !!!",
            "Bearer x",
            "Basic",
            &format!("Basic {}", STANDARD.encode("nocolon")),
        ] {
            assert_eq!(
                parse_basic_credentials(bad).unwrap_err().kind(),
                "invalid_parameter",
                "{bad}"
            );
        }
        assert!(parse_basic_credentials(&format!("basic {}", STANDARD.encode(":s"))).is_err());
        assert_eq!(
            parse_basic_credentials(&format!("basic {}", STANDARD.encode("a:b:c"))).unwrap(),
            ("a".into(), "b:c".into())
        );
    }

    #[test]
    fn token_hint_requests() {
        let r = TokenHintRequest::from_form(&form("token=abc&token_type_hint=access_token")).unwrap();
        assert_eq!(r.token.expose(), "abc");
        assert_eq!(r.token_type_hint.as_deref(), Some("access_token"));
        assert_eq!(
            TokenHintRequest::from_form(&form("x=1")).unwrap_err().kind(),
            "missing_parameter"
        );
    }
}
