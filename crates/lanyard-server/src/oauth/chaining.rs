//! Identity and authorization chaining across trust domains
//! (draft-ietf-oauth-identity-chaining-17), both sides.
//!
//! **Home server (AS-A).** A token exchange whose `audience` or `resource` names a foreign
//! authorization server listed in `[oauth] chaining_foreign_servers` (and registered as
//! one of the client's audiences) yields a JWT authorization grant: `typ`
//! `authorization-grant+jwt` (draft-ietf-oauth-rfc7523bis), `iss` this issuer, `aud` the
//! foreign issuer alone (§2.3: it MUST identify AS-B), `sub` the subject token's, `act`
//! the actor chain (decided as for any exchange: delegation, `may_act`, impersonation),
//! `scope` never wider than the subject token's, `client_id` the requesting client, a
//! fresh `jti`, lifetime `[oauth] authorization_grant_ttl` (60 s) and never beyond the
//! subject token. Exactly one target is allowed (the draft RECOMMENDS a single `aud`);
//! `requested_token_type` is absent or `urn:ietf:params:oauth:token-type:jwt`, which is
//! also the `issued_token_type` (with `token_type` `N_A`). Claims transcription (§2.3)
//! follows the foreign server's `[[oauth.chaining_transcription]]` rule, if any: its
//! `subject` template writes the grant's `sub` (`{sub}` and claims of the subject token;
//! a token lacking a named claim is refused with `invalid_request`), and its `copy_claims`
//! are carried over as they are; without a rule, `sub` is the subject's and nothing else
//! is copied.
//!
//! **Foreign server (AS-B).** The JWT bearer grant (RFC 7523 §2.1) redeems grants from the
//! home servers of `[[oauth.chaining_home_servers]]`: their keys from the configured
//! `jwks_uri`, or from the `jwks_uri` of their RFC 8414 metadata (whose `issuer` must match),
//! cached for 5 minutes and fetched again at most every 30 seconds when a `kid` is unknown
//! (rotation). `AuthorizationGrantVerifier` checks `typ`, `alg`, signature, `iss`, `aud`
//! (this issuer, alone), times and lifetime; the `jti` is recorded in the shared
//! [`JtiStore`](crate::datastore::JtiStore) so a grant is redeemed once across replicas.
//! Every refusal is `invalid_grant` (RFC 7523 §3.1). The client must authenticate and be
//! registered for the grant type; the access token is about the grant's `sub`, keeps its
//! `act`, has a scope within the grant's and the client's (`invalid_scope`), the client's
//! audiences (`invalid_target`) and binding, and the server's access-token lifetime. No
//! refresh token (§2.4).

use lanyard_core::UnixTime;
use lanyard_core::jose::CompactJws;
use lanyard_core::oauth::{
    AccessTokenType, AuthorizationGrantClaims, AuthorizationGrantPolicy, AuthorizationGrantVerifier, ExchangeRules,
    SubjectToken, TokenExchange, TokenRequest, TokenResponse, TokenTypeUri, VerifiedDpopProof, Violation, claim_at,
    decide_exchange, issue_authorization_grant,
};
use serde_json::{Map, Value};

use super::AuthorizationServer;
use super::client_auth::AuthenticatedClient;
use super::error::OAuthError;
use super::grant::{TokenOutcome, access_token_outcome, binding, clip, registered_scope, targets};
use super::remote_keys::KeySource;
use super::tokens::AccessTokenContent;
use crate::config::TranscriptionRuleConfig;
use crate::model::AuthorityKind;

/// How soon keys may be fetched again for an unknown `kid`, in seconds.
const REFETCH_AFTER_SECS: u64 = 30;

impl AuthorizationServer {
    /// The foreign authorization server a token exchange targets, if any: when one
    /// `audience` or `resource` is a configured foreign server, it must be the only target.
    pub(crate) fn chaining_target(&self, request: &TokenRequest) -> Result<Option<String>, OAuthError> {
        let foreign = &self.state.config.oauth.chaining_foreign_servers;
        let all: Vec<&String> = request.resources.iter().chain(&request.audiences).collect();
        if !all.iter().any(|t| foreign.contains(t)) {
            return Ok(None);
        }
        match all.as_slice() {
            [one] => Ok(Some((*one).clone())),
            _ => Err(OAuthError::InvalidTarget(
                "a JWT authorization grant names one foreign authorization server, alone".into(),
            )),
        }
    }

    /// Issues a JWT authorization grant for the foreign server `target` (AS-A).
    pub(crate) async fn authorization_grant(
        &self,
        request: &TokenRequest,
        exchange: &TokenExchange,
        client: &AuthenticatedClient,
        dpop: Option<&VerifiedDpopProof>,
        target: String,
        now: UnixTime,
    ) -> Result<TokenOutcome, OAuthError> {
        // The target must also be one of the client's registered audiences.
        targets(request, &client.client.spec)?;
        let max_ttl = self.state.config.oauth.authorization_grant_ttl;
        let (presented, outcome) = self
            .exchange_decision(request, exchange, client, dpop, max_ttl, now)
            .await?;
        let rule = self
            .state
            .config
            .oauth
            .chaining_transcription
            .iter()
            .find(|r| r.foreign_server == target);
        let (sub, extra) =
            transcribe(rule, &outcome.sub, &presented.claims).map_err(|reason| OAuthError::ExchangeToken {
                which: "subject_token",
                reason: Violation::MappedIdentityInvalid { reason }.into(),
            })?;
        let ttl = outcome
            .exp
            .as_secs()
            .saturating_sub(now.as_secs())
            .min(self.state.keys.max_ttl(AuthorityKind::AccessToken, now).await?);
        let claims = AuthorizationGrantClaims {
            iss: self.issuer.clone(),
            sub,
            aud: target,
            iat: now,
            exp: now.plus(ttl),
            jti: self.random_id()?,
            client_id: Some(client.client.client_id.clone()),
            scope: (!outcome.scope.is_empty()).then(|| outcome.scope.clone()),
            act: outcome.act,
            extra,
        };
        let (key, kid) = self.state.keys.access_token_signer().await?;
        let grant = issue_authorization_grant(key.as_ref(), &kid, &claims).map_err(OAuthError::Issue)?;
        Ok(TokenOutcome {
            response: TokenResponse {
                access_token: grant,
                token_type: AccessTokenType::NotApplicable,
                expires_in: Some(ttl),
                scope: claims.scope,
                issued_token_type: Some(TokenTypeUri::Jwt),
            },
            jti: claims.jti,
        })
    }

    /// Redeems a JWT authorization grant from a trusted home server (AS-B, RFC 7523 §2.1).
    pub(crate) async fn jwt_bearer(
        &self,
        request: &TokenRequest,
        assertion: &str,
        client: &AuthenticatedClient,
        dpop: Option<&VerifiedDpopProof>,
        now: UnixTime,
    ) -> Result<TokenOutcome, OAuthError> {
        let iss = CompactJws::parse(assertion)
            .and_then(|jws| jws.claims())
            .map_err(OAuthError::InvalidGrant)?
            .get("iss")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .unwrap_or_default();
        let home = self
            .state
            .config
            .oauth
            .chaining_home_servers
            .iter()
            .find(|h| h.issuer == iss)
            .ok_or_else(|| OAuthError::UntrustedHomeServer(clip(&iss)))?;
        let verifier = AuthorizationGrantVerifier::new(AuthorizationGrantPolicy::new(self.issuer.clone()));
        let source = KeySource {
            issuer: &home.issuer,
            cache_key: &home.issuer,
            jwks_uri: home.jwks_uri.as_deref(),
            openid: false,
            refetch_after: REFETCH_AFTER_SECS,
        };
        let verified = self
            .with_remote_keys(source, now, |keys| verifier.verify(assertion, &home.issuer, keys, now))
            .await
            .map_err(OAuthError::HomeKeys)?
            .map_err(OAuthError::InvalidGrant)?;
        let spec = &client.client.spec;
        let grant = verified.claims;
        let subject = SubjectToken {
            sub: grant.sub.clone(),
            iss: Some(grant.iss.clone()),
            scope: grant.scope.clone(),
            // The verifier checked the times, with leeway.
            exp: grant.exp.max(now.plus(1)),
            act: grant.act.clone(),
            may_act: None,
        };
        let rules = ExchangeRules {
            allow_impersonation: true,
            allow_delegation: false,
            policy_scope: registered_scope(spec)?,
            require_subject_scope: false,
            max_ttl: 0,
        };
        // The scope rules of an exchange; the lifetime is this server's own.
        let outcome =
            decide_exchange(&subject, None, request.scope.as_ref(), &rules, now).map_err(OAuthError::Exchange)?;
        let content = AccessTokenContent {
            sub: &outcome.sub,
            client_id: &client.client.client_id,
            audiences: targets(request, spec)?,
            scope: &outcome.scope,
            cnf: binding(client, dpop)?,
            act: outcome.act,
        };
        // Recorded once the request is otherwise acceptable: a grant is used up by a
        // redemption, not by a request refused for its scope or target.
        if !self
            .first_use(
                "authorization_grant",
                &home.issuer,
                &grant.jti,
                verified.replay_until,
                now,
            )
            .await?
        {
            return Err(OAuthError::GrantReplay);
        }
        let issued = self
            .sign_access_token(content, self.access_token_ttl(spec), now)
            .await?;
        Ok(access_token_outcome(issued, dpop, outcome.scope, None))
    }
}

/// The grant's `sub` and copied claims under `rule` (identity chaining §2.3), for the
/// subject `sub` whose token carried `claims`; an error names a claim the template needs
/// and the token lacks.
pub(crate) fn transcribe(
    rule: Option<&TranscriptionRuleConfig>,
    sub: &str,
    claims: &Map<String, Value>,
) -> Result<(String, Map<String, Value>), String> {
    let Some(rule) = rule else {
        return Ok((sub.to_owned(), Map::new()));
    };
    let subject = match &rule.subject {
        Some(template) => render_subject(template, sub, claims)?,
        None => sub.to_owned(),
    };
    let copied = rule
        .copy_claims
        .iter()
        .filter_map(|name| claims.get(name).map(|v| (name.clone(), v.clone())))
        .collect();
    Ok((subject, copied))
}

/// Checks a transcription `subject` template: balanced, non-empty `{placeholders}`.
pub(crate) fn check_subject_template(template: &str) -> Result<(), String> {
    render(template, |_| Ok(String::new())).map(|_| ())
}

fn render_subject(template: &str, sub: &str, claims: &Map<String, Value>) -> Result<String, String> {
    let rendered = render(template, |name| {
        if name == "sub" {
            return Ok(sub.to_owned());
        }
        match claim_at(claims, name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
            Some(_) => Err(format!("claim {name} is not a string, number or boolean")),
            None => Err(format!("the subject token has no {name} claim for the grant's sub")),
        }
    })?;
    if rendered.is_empty() {
        return Err("the transcribed sub is empty".into());
    }
    Ok(rendered)
}

/// `template` with each `{name}` replaced by `value(name)`.
fn render(template: &str, value: impl Fn(&str) -> Result<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(format!("unbalanced }} in {template:?}"));
        }
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| format!("unclosed {{ in {template:?}"))?;
        let name = &after[..close];
        if name.is_empty() || name.contains('{') {
            return Err(format!("bad placeholder in {template:?}"));
        }
        out.push_str(&value(name)?);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(subject: Option<&str>, copy: &[&str]) -> TranscriptionRuleConfig {
        TranscriptionRuleConfig {
            foreign_server: "https://as-b.example".into(),
            subject: subject.map(str::to_owned),
            copy_claims: copy.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    #[test]
    fn transcription_rules() {
        let claims = json!({"email": "alice@example.com", "tenant": "acme", "org": {"id": 7}});
        let claims = claims.as_object().unwrap();
        assert_eq!(transcribe(None, "alice", claims).unwrap(), ("alice".into(), Map::new()));
        let (sub, extra) = transcribe(
            Some(&rule(Some("{org.id}:{email}"), &["tenant", "missing"])),
            "alice",
            claims,
        )
        .unwrap();
        assert_eq!(sub, "7:alice@example.com");
        assert_eq!(Value::Object(extra), json!({"tenant": "acme"}));
        assert_eq!(
            transcribe(Some(&rule(Some("acme:{sub}"), &[])), "alice", claims)
                .unwrap()
                .0,
            "acme:alice"
        );
        let lacking = transcribe(Some(&rule(Some("{phone}"), &[])), "alice", claims).unwrap_err();
        assert!(lacking.contains("no phone claim"), "{lacking}");
        assert!(transcribe(Some(&rule(Some("{org}"), &[])), "alice", claims).is_err());
        for bad in ["{", "}", "{}", "a{b", "{a{b}}"] {
            assert!(check_subject_template(bad).is_err(), "{bad}");
        }
        assert!(check_subject_template("user:{email}").is_ok());
    }
}
