//! Token exchange (RFC 8693) at the token endpoint, under the client's [`ExchangePolicy`].
//!
//! Subject and actor tokens this server accepts (each type also listed in the client's
//! policy, else `invalid_request`):
//!
//! | token type URI | what it must be |
//! |---|---|
//! | `urn:ietf:params:oauth:token-type:access_token` | an RFC 9068 access token this server issued (its own keys, `iss` this issuer), not revoked, whose `aud` names this issuer, the client's `client_id` or one of the policy's `subject_audiences` (a resource server exchanges the tokens sent to it) |
//! | `urn:ietf:params:oauth:token-type:jwt` | a JWT-SVID of the server's own or a federated trust domain whose `aud` names this issuer (JWT-SVID.md §3, `typ` absent or `JWT`: an `at+jwt` sent as `jwt` is `typ_confusion`) |
//! | `urn:ietf:params:oauth:token-type:jwt`, `...:id_token`, `...:access_token` | a JWT of a trusted external issuer the client's policy lists (`issuers.rs`): verified by that issuer's configuration and mapped to a workload identifier, which becomes the subject (or actor) |
//! | `urn:lanyard:params:oauth:token-type:wit` | a WIT (draft-ietf-wimse-workload-creds, `wit+jwt`) of the server's own or a federated trust domain, presented by its holder: the request's DPoP proof must be signed with the WIT's `cnf.jwk` (a WIT is bound to a key; accepting it without that proof would make it a bearer token). Lanyard's own URN, as for WITs issued by exchange (`wit.rs`) |
//! | `urn:ietf:params:oauth:token-type:txn_token` | a Txn-Token of this server's Transaction Token Service: only as the subject of a Txn-Token request (a replacement, `txn.rs`) or of a JWT authorization grant (`chaining.rs`); a Txn-Token is never exchanged for an access token (draft-ietf-oauth-transaction-tokens-11: it is not one) |
//!
//! The decision is `lanyard_core::oauth::decide_exchange`: delegation when an actor is
//! named (an `actor_token`, or, without one, the client itself when its policy allows
//! delegation), with the subject token's `act` chain nested; `may_act` honoured;
//! impersonation only for a client that may impersonate but not delegate; scope never wider
//! than the subject token's or the client's registered scopes (`invalid_scope`); the
//! issued token never outlives the subject token. The issued token (RFC 8693 §2.2.1) is an
//! RFC 9068 access token (`issued_token_type` `...:access_token`, `token_type` `Bearer` or
//! `DPoP`), `sub` the subject's, `client_id` the requesting client, `act` the actor chain,
//! `aud` limited to the client's registered audiences (`invalid_target`), bound like a
//! `client_credentials` token. Every refusal is an [`OAuthError`] the token endpoint maps
//! and audits once.

use std::sync::Arc;

use lanyard_core::oauth::{
    AccessTokenPolicy, Actor, Confirmation, Credential, ExchangeOutcome, ExchangeRules, SubjectToken, TokenExchange,
    TokenRequest, TokenTypeUri, TxnTokenPolicy, TxnTokenVerifier, VerifiedDpopProof, Violation, decide_exchange,
};
use lanyard_core::{JwtSvidPolicy, JwtSvidVerifier, UnixTime, WitPolicy, WitVerifier};
use serde_json::{Map, Value};

use super::AuthorizationServer;
use super::client_auth::AuthenticatedClient;
use super::error::OAuthError;
use super::grant::{TokenOutcome, access_token_outcome, binding, clip, registered_scope, targets};
use super::tokens::{AccessTokenContent, OwnTokenRefused};
use crate::error::ServerError;
use crate::model::ExchangePolicy;

/// The subject token types this server can verify.
const SUBJECT_TYPES: [TokenTypeUri; 5] = [
    TokenTypeUri::AccessToken,
    TokenTypeUri::Jwt,
    TokenTypeUri::IdToken,
    TokenTypeUri::TxnToken,
    TokenTypeUri::LanyardWit,
];

/// The actor token types this server can verify (a Txn-Token identifies no actor).
const ACTOR_TYPES: [TokenTypeUri; 4] = [
    TokenTypeUri::AccessToken,
    TokenTypeUri::Jwt,
    TokenTypeUri::IdToken,
    TokenTypeUri::LanyardWit,
];

/// Checks a client's exchange policy when it is registered: only token types this server
/// verifies, non-empty audiences.
pub(crate) fn validate_policy(policy: &ExchangePolicy) -> Result<(), ServerError> {
    let invalid = |m: String| Err(ServerError::Invalid(m));
    if let Some(t) = policy.subject_token_types.iter().find(|t| !SUBJECT_TYPES.contains(t)) {
        return invalid(format!("subject token type {t} cannot be exchanged"));
    }
    if let Some(t) = policy.actor_token_types.iter().find(|t| !ACTOR_TYPES.contains(t)) {
        return invalid(format!("actor token type {t} cannot be exchanged"));
    }
    if policy
        .subject_audiences
        .iter()
        .any(|a| a.is_empty() || a.chars().any(char::is_control))
    {
        return invalid("exchange subject_audiences must be non-empty strings".into());
    }
    if policy
        .trusted_issuers
        .iter()
        .any(|i| lanyard_core::oauth::check_issuer_identifier(i).is_err())
    {
        return invalid("exchange trusted_issuers must be issuer identifiers".into());
    }
    Ok(())
}

/// A presented token after verification: what the exchange decision needs, and the
/// identity it gives an actor.
pub(crate) struct Presented {
    /// The token as a subject.
    pub(crate) subject: SubjectToken,
    /// The Txn-Token's claims, when the token is one (a replacement's input).
    pub(crate) txn: Option<lanyard_core::oauth::TxnTokenClaims>,
    /// The token's other claims (those beyond the registered ones its format defines;
    /// every claim of a trusted issuer's token), for claims transcription (`chaining.rs`).
    pub(crate) claims: Map<String, Value>,
}

impl Presented {
    /// The party the token identifies, as an actor (`sub`, and `iss` when the token is
    /// this server's).
    fn as_actor(&self) -> Actor {
        Actor {
            iss: self.subject.iss.clone(),
            ..Actor::new(self.subject.sub.clone())
        }
    }
}

impl AuthorizationServer {
    /// Serves a token exchange from an authenticated client (the grant type was checked):
    /// a Txn-Token (`txn.rs`), a JWT authorization grant for a foreign server
    /// (`chaining.rs`), or an access token.
    pub(crate) async fn token_exchange(
        &self,
        request: &TokenRequest,
        exchange: &TokenExchange,
        client: &AuthenticatedClient,
        dpop: Option<&VerifiedDpopProof>,
        now: UnixTime,
    ) -> Result<TokenOutcome, OAuthError> {
        let requested = exchange.requested_token_type.as_ref();
        if requested == Some(&TokenTypeUri::TxnToken) {
            return self.txn_token(request, exchange, client, dpop, now).await;
        }
        if requested == Some(&TokenTypeUri::LanyardWit) {
            return self.wit_exchange(request, exchange, client, dpop, now).await;
        }
        match (requested, self.chaining_target(request)?) {
            (None | Some(TokenTypeUri::Jwt), Some(target)) => {
                return self
                    .authorization_grant(request, exchange, client, dpop, target, now)
                    .await;
            }
            (Some(TokenTypeUri::Jwt), None) => {
                return self.jwt_svid_exchange(request, exchange, client, dpop, now).await;
            }
            (None | Some(TokenTypeUri::AccessToken), _) => {}
            (Some(other), _) => {
                return Err(OAuthError::TokenTypeRefused {
                    param: "requested_token_type",
                    value: clip(other.as_str()),
                });
            }
        }
        txn_token_not_exchanged(exchange, "an access token")?;
        let spec = &client.client.spec;
        let (_, outcome) = self
            .exchange_decision(request, exchange, client, dpop, self.access_token_ttl(spec), now)
            .await?;
        let audiences = targets(request, spec)?;
        let cnf = binding(client, dpop)?;
        let content = AccessTokenContent {
            sub: &outcome.sub,
            client_id: &client.client.client_id,
            audiences,
            scope: &outcome.scope,
            cnf,
            act: outcome.act,
        };
        let ttl = outcome.exp.as_secs().saturating_sub(now.as_secs());
        let issued = self.sign_access_token(content, ttl, now).await?;
        Ok(access_token_outcome(
            issued,
            dpop,
            outcome.scope,
            Some(TokenTypeUri::AccessToken),
        ))
    }

    /// Verifies the subject and actor tokens and decides the exchange under the client's
    /// policy, for a token living at most `max_ttl` seconds.
    pub(crate) async fn exchange_decision(
        &self,
        request: &TokenRequest,
        exchange: &TokenExchange,
        client: &AuthenticatedClient,
        dpop: Option<&VerifiedDpopProof>,
        max_ttl: u64,
        now: UnixTime,
    ) -> Result<(Presented, ExchangeOutcome), OAuthError> {
        let spec = &client.client.spec;
        let policy = &spec.exchange;
        let subject = self.verify_subject(exchange, client, dpop, now).await?;
        let actor = match &exchange.actor {
            Some((token, token_type)) => Some(
                self.verify_presented("actor_token", token, token_type, client, dpop, now)
                    .await?
                    .as_actor(),
            ),
            None if policy.delegate => Some(client_actor(client, &self.issuer)),
            None => None,
        };
        let rules = ExchangeRules {
            allow_impersonation: policy.impersonate,
            allow_delegation: policy.delegate,
            policy_scope: registered_scope(spec)?,
            require_subject_scope: false,
            max_ttl,
        };
        let outcome = decide_exchange(&subject.subject, actor.as_ref(), request.scope.as_ref(), &rules, now)
            .map_err(OAuthError::Exchange)?;
        Ok((subject, outcome))
    }

    /// Verifies the exchange's `subject_token`.
    pub(crate) async fn verify_subject(
        &self,
        exchange: &TokenExchange,
        client: &AuthenticatedClient,
        dpop: Option<&VerifiedDpopProof>,
        now: UnixTime,
    ) -> Result<Presented, OAuthError> {
        let (token, token_type) = (&exchange.subject_token, &exchange.subject_token_type);
        self.verify_presented("subject_token", token, token_type, client, dpop, now)
            .await
    }

    /// Verifies a `subject_token` or `actor_token` (`which`) of `token_type`: the type
    /// must be one the client's policy accepts in that role, the token valid at `now`, and
    /// a sender-constrained one presented by its holder (`dpop` is the token request's
    /// verified proof).
    async fn verify_presented(
        &self,
        which: &'static str,
        token: &Credential,
        token_type: &TokenTypeUri,
        client: &AuthenticatedClient,
        dpop: Option<&VerifiedDpopProof>,
        now: UnixTime,
    ) -> Result<Presented, OAuthError> {
        let policy = &client.client.spec.exchange;
        let (param, accepted) = if which == "actor_token" {
            ("actor_token_type", &policy.actor_token_types)
        } else {
            ("subject_token_type", &policy.subject_token_types)
        };
        let usable = if which == "actor_token" {
            ACTOR_TYPES.contains(token_type)
        } else {
            SUBJECT_TYPES.contains(token_type)
        };
        if !usable || !accepted.contains(token_type) {
            return Err(OAuthError::TokenTypeRefused {
                param,
                value: clip(token_type.as_str()),
            });
        }
        if let Some(external) = self.verify_external(which, token, token_type, client, now).await? {
            return Ok(external);
        }
        let invalid = |reason| OAuthError::ExchangeToken { which, reason };
        match token_type {
            TokenTypeUri::AccessToken => {
                let mut audiences = vec![self.issuer.clone(), client.client.client_id.clone()];
                audiences.extend(policy.subject_audiences.iter().cloned());
                let mut p = AccessTokenPolicy::new(self.issuer.clone(), self.issuer.clone());
                p.audiences = audiences;
                let verified = match self.check_own_access_token(token.expose(), p, now).await? {
                    Ok(verified) => verified,
                    Err(OwnTokenRefused::Invalid(e)) => return Err(invalid(e)),
                    Err(OwnTokenRefused::Revoked) => return Err(OAuthError::RevokedToken(which)),
                };
                if let Some(cnf) = &verified.claims.cnf {
                    check_holder(cnf, client, dpop).map_err(invalid)?;
                }
                let c = verified.claims;
                Ok(Presented {
                    subject: SubjectToken {
                        sub: c.sub.clone(),
                        iss: Some(c.iss.clone()),
                        scope: Some(c.scope_or_empty()),
                        exp: c.exp,
                        act: c.act.clone(),
                        may_act: may_act(&c.extra).map_err(invalid)?,
                    },
                    txn: None,
                    claims: c.extra,
                })
            }
            TokenTypeUri::Jwt => {
                let verifier = JwtSvidVerifier::new(Arc::clone(&self.trust), JwtSvidPolicy::default());
                let svid = verifier.verify(token.expose(), &self.issuer, now).map_err(invalid)?;
                Ok(Presented {
                    subject: SubjectToken {
                        sub: svid.sub.as_str().to_owned(),
                        iss: None,
                        scope: None,
                        exp: svid.exp,
                        act: None,
                        may_act: may_act(&svid.claims).map_err(invalid)?,
                    },
                    txn: None,
                    claims: svid.claims,
                })
            }
            TokenTypeUri::TxnToken => {
                let verifier = TxnTokenVerifier::new(TxnTokenPolicy::new(self.state.trust_domain.name()));
                let keys = self.own_keys().await?;
                let verified = verifier.verify(token.expose(), &keys, now).map_err(invalid)?;
                let c = verified.claims;
                Ok(Presented {
                    subject: SubjectToken {
                        sub: c.sub.clone(),
                        iss: c.iss.clone(),
                        scope: Some(c.scope.clone()),
                        exp: c.exp,
                        act: c
                            .extra
                            .get("act")
                            .map(|v| Actor::from_value(v, "act"))
                            .transpose()
                            .map_err(invalid)?,
                        may_act: None,
                    },
                    claims: c.extra.clone(),
                    txn: Some(c),
                })
            }
            TokenTypeUri::LanyardWit => {
                let verifier = WitVerifier::new(Arc::clone(&self.trust), WitPolicy::wit_svid());
                let wit = verifier.verify(token.expose(), now).map_err(invalid)?;
                let holder = wit.cnf_jwk.thumbprint(self.state.crypto.as_ref()).map_err(invalid)?;
                match dpop {
                    None => Err(invalid(
                        Violation::ConfirmationMissing {
                            member: "jwk",
                            what: "DPoP proof",
                        }
                        .into(),
                    )),
                    Some(proof) if proof.jkt != holder => Err(invalid(
                        Violation::ConfirmationMismatch {
                            member: "jwk",
                            what: "DPoP proof key",
                        }
                        .into(),
                    )),
                    Some(_) => Ok(Presented {
                        subject: SubjectToken {
                            sub: wit.sub.as_str().to_owned(),
                            iss: None,
                            scope: None,
                            exp: wit.exp,
                            act: None,
                            may_act: may_act(&wit.claims).map_err(invalid)?,
                        },
                        txn: None,
                        claims: wit.claims.clone(),
                    }),
                }
            }
            // An `id_token` comes only from a trusted external issuer (`verify_external`).
            _ => Err(OAuthError::TokenTypeRefused {
                param,
                value: clip(token_type.as_str()),
            }),
        }
    }
}

/// A Txn-Token is only replaced (`txn.rs`) or chained (`chaining.rs`): exchanged for
/// anything else (`what`: an access token, a WIT, a JWT-SVID), an internal call-chain token
/// would become a credential usable outside its transaction.
pub(crate) fn txn_token_not_exchanged(exchange: &TokenExchange, what: &str) -> Result<(), OAuthError> {
    if exchange.subject_token_type == TokenTypeUri::TxnToken {
        return Err(OAuthError::TokenTypeRefused {
            param: "subject_token_type",
            value: format!("{} (for {what})", TokenTypeUri::TxnToken),
        });
    }
    Ok(())
}

/// A sender-constrained token is exchanged only by its holder: the token request proves
/// the key of `cnf.jkt` with its DPoP proof (RFC 9449), or comes over mutual TLS with the
/// certificate of `cnf.x5t#S256` (RFC 8705 §3). Otherwise a stolen bound token would become
/// usable as a bearer one through the exchange.
fn check_holder(
    cnf: &Confirmation,
    client: &AuthenticatedClient,
    dpop: Option<&VerifiedDpopProof>,
) -> Result<(), lanyard_core::Error> {
    cnf.check_holder(dpop.map(|proof| proof.jkt.as_str()), || {
        client.certificate_thumbprint.clone()
    })
}

/// The `may_act` claim of a token's claims, if any (RFC 8693 §4.4).
fn may_act(claims: &Map<String, Value>) -> Result<Option<Actor>, lanyard_core::Error> {
    claims
        .get("may_act")
        .map(|v| Actor::from_value(v, "may_act"))
        .transpose()
}

/// The authenticated client as an actor: its SPIFFE ID when it authenticated with an SVID
/// (globally unique, no `iss`), else its `client_id`, scoped by this server's `issuer`.
pub(crate) fn client_actor(client: &AuthenticatedClient, issuer: &str) -> Actor {
    match &client.spiffe_id {
        Some(id) => Actor::new(id.as_str()),
        None => Actor {
            iss: Some(issuer.to_owned()),
            ..Actor::new(client.client.client_id.clone())
        },
    }
}

/// The requesting workload's identifier (`req_wl` of a Txn-Token): its SPIFFE ID, or its
/// `client_id`.
pub(crate) fn requesting_workload(client: &AuthenticatedClient) -> String {
    client
        .spiffe_id
        .as_ref()
        .map_or_else(|| client.client.client_id.clone(), |id| id.as_str().to_owned())
}
