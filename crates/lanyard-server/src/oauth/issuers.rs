//! Trusted external issuers (issue 13 item 2): a workload without an agent exchanges a
//! platform token (a Kubernetes service-account token, a CI system's OIDC token, another
//! authorization server's RFC 9068 access token) for a credential of its mapped workload
//! identity.
//!
//! A subject or actor token of type `urn:ietf:params:oauth:token-type:jwt`, `...:id_token`
//! or `...:access_token` whose unverified `iss` is one of `[[oauth.trusted_issuers]]` is
//! verified by that issuer's configuration alone (the unverified `iss` only selects it):
//! `lanyard_core::oauth::ExternalTokenVerifier` (RFC 8725: `typ`, asymmetric `alg`,
//! signature, `iss`, `aud`, times with bounded skew), with a static JWK Set or keys fetched
//! through `remote_keys.rs` (discovery, cache, rate-limited refetch for an unknown `kid`).
//! The claims then map to a workload identifier with the issuer's rules
//! (`lanyard_core::oauth::map_identity`), and the token stands in the exchange for that
//! identity: `sub` the identifier, no scope of its own (the client's registered scopes
//! bound the result), `exp` the token's.
//!
//! The client must list the issuer in its policy's `trusted_issuers` and the token type in
//! its `subject_token_types` (or `actor_token_types`). Every refusal (an untrusted issuer,
//! a bad token, claims matching no rule, an unsafe claim value) is `invalid_request`:
//! RFC 8693 §2.2.2 prescribes it for a subject or actor token that "is invalid for any
//! reason, or is unacceptable based on policy"; `invalid_grant` belongs to grants such as
//! RFC 7523's assertions, which these tokens are not.

use lanyard_core::jose::CompactJws;
use lanyard_core::oauth::{
    Credential, ExternalTokenVerifier, MappingRule, SubjectToken, TokenTypeUri, VerificationKeys, Violation,
    map_identity,
};
use lanyard_core::{CryptoProvider, UnixTime, WorkloadId};
use serde_json::Value;

use super::AuthorizationServer;
use super::client_auth::AuthenticatedClient;
use super::error::OAuthError;
use super::exchange::Presented;
use super::remote_keys::KeySource;
use crate::config::OAuthConfig;

/// One trusted external issuer, compiled from its configuration.
#[derive(Debug)]
struct TrustedIssuer {
    issuer: String,
    jwks_uri: Option<String>,
    refetch_after: u64,
    verifier: ExternalTokenVerifier,
    rules: Vec<MappingRule>,
    static_keys: Option<VerificationKeys>,
}

/// The trusted external issuers of `[[oauth.trusted_issuers]]`.
#[derive(Debug, Default)]
pub(crate) struct TrustedIssuers {
    issuers: Vec<TrustedIssuer>,
}

impl TrustedIssuers {
    /// Compiles the configured issuers for the trust domain `trust_domain` (the
    /// configuration was validated; this repeats the checks that produce the values).
    pub(crate) fn new(
        config: &OAuthConfig,
        trust_domain: &str,
        crypto: &dyn CryptoProvider,
    ) -> Result<TrustedIssuers, lanyard_core::Error> {
        let invalid =
            |issuer: &str, m: String| lanyard_core::Error::InvalidKey(format!("oauth.trusted_issuers[{issuer}]: {m}"));
        let issuers = config
            .trusted_issuers
            .iter()
            .map(|t| {
                let static_keys = match t.static_jwks().map_err(|m| invalid(&t.issuer, m))? {
                    Some(jwks) => Some(VerificationKeys::from_jwks(crypto, t.issuer.clone(), &jwks)?),
                    None => None,
                };
                Ok(TrustedIssuer {
                    issuer: t.issuer.clone(),
                    jwks_uri: t.jwks_uri.clone(),
                    refetch_after: t.jwks_refetch_interval,
                    verifier: ExternalTokenVerifier::new(t.policy().map_err(|m| invalid(&t.issuer, m))?),
                    rules: t.rules(trust_domain).map_err(|m| invalid(&t.issuer, m))?,
                    static_keys,
                })
            })
            .collect::<Result<_, lanyard_core::Error>>()?;
        Ok(TrustedIssuers { issuers })
    }

    fn find(&self, issuer: &str) -> Option<&TrustedIssuer> {
        self.issuers.iter().find(|t| t.issuer == issuer)
    }
}

impl AuthorizationServer {
    /// Verifies `token`, presented as `which` (`subject_token` or `actor_token`) with
    /// `token_type`, when it comes from a trusted external issuer; `None` when it does not
    /// (a token of this server, a JWT-SVID), so the caller verifies it as one of those.
    /// An `id_token`, an access token of a foreign issuer, or a JWT with an `iss` that
    /// cannot be a JWT-SVID's (its `sub` is no SPIFFE ID) from an issuer that is not
    /// trusted, or not trusted for this client, is `untrusted_issuer`.
    pub(crate) async fn verify_external(
        &self,
        which: &'static str,
        token: &Credential,
        token_type: &TokenTypeUri,
        client: &AuthenticatedClient,
        now: UnixTime,
    ) -> Result<Option<Presented>, OAuthError> {
        let invalid = |reason: lanyard_core::Error| OAuthError::ExchangeToken { which, reason };
        // Unverified: only to choose the issuer whose configuration verifies the token.
        let claims = CompactJws::parse(token.expose()).and_then(|jws| jws.claims()).ok();
        let claim = |name: &str| claims.as_ref().and_then(|c| c.get(name)).and_then(Value::as_str);
        let (iss, sub) = (claim("iss"), claim("sub"));
        if iss == Some(self.issuer.as_str()) {
            // This server's own token (even if an issuer were configured with its name).
            return Ok(None);
        }
        let foreign = match token_type {
            TokenTypeUri::IdToken => true,
            TokenTypeUri::AccessToken => iss.is_some(),
            TokenTypeUri::Jwt => iss.is_some() && !sub.is_some_and(|s| s.starts_with("spiffe://")),
            _ => false,
        };
        let trusted = iss.and_then(|i| self.trusted_issuers.find(i));
        let Some(trusted) = trusted else {
            return if foreign {
                Err(invalid(untrusted(iss.unwrap_or_default())))
            } else {
                Ok(None)
            };
        };
        if !client.client.spec.exchange.trusted_issuers.contains(&trusted.issuer) {
            return Err(invalid(untrusted(&trusted.issuer)));
        }
        let verify = |keys: &VerificationKeys| trusted.verifier.verify(token.expose(), keys, now);
        let verified = match &trusted.static_keys {
            Some(keys) => verify(keys),
            None => {
                let source = KeySource {
                    issuer: &trusted.issuer,
                    cache_key: &trusted.issuer,
                    jwks_uri: trusted.jwks_uri.as_deref(),
                    openid: true,
                    refetch_after: trusted.refetch_after,
                };
                self.with_remote_keys(source, now, verify).await.map_err(|m| {
                    invalid(lanyard_core::Error::InvalidKey(format!(
                        "the keys of {} are unavailable: {m}",
                        trusted.issuer
                    )))
                })?
            }
        }
        .map_err(invalid)?;
        let id: WorkloadId = map_identity(&trusted.rules, &verified.claims).map_err(invalid)?;
        let verified_claim = |name: &str| verified.claims.get(name).and_then(Value::as_str).unwrap_or("-");
        crate::audit::external_token(
            &trusted.issuer,
            verified_claim("jti"),
            verified_claim("sub"),
            id.as_str(),
            &client.client.client_id,
            which,
        );
        Ok(Some(Presented {
            subject: SubjectToken {
                sub: id.as_str().to_owned(),
                // The identifier is this server's own: no issuer qualifies it.
                iss: None,
                scope: None,
                exp: verified.exp,
                act: None,
                may_act: None,
            },
            txn: None,
            claims: verified.claims,
        }))
    }
}

/// The refusal of an issuer that is not trusted (for this client).
fn untrusted(issuer: &str) -> lanyard_core::Error {
    Violation::UntrustedIssuer {
        issuer: issuer.chars().take(256).collect(),
    }
    .into()
}
