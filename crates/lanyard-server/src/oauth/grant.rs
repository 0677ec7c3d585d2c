//! The token request (RFC 6749 §4.4, RFC 8707, RFC 9068): grant dispatch and the
//! `client_credentials` grant.
//!
//! [`AuthorizationServer::token`] dispatches on the grant: `client_credentials` here,
//! token exchange (RFC 8693) in `exchange.rs`, the JWT bearer grant (RFC 7523 §2.1) in
//! `chaining.rs` (served only when home servers are configured; `unsupported_grant_type`
//! otherwise). A client may use only the grant types it is registered for
//! (`unauthorized_client`).
//!
//! Token exchange (RFC 8693, with the Transaction Token Service) is `exchange.rs` and
//! `txn.rs`; it shares the target, binding and lifetime rules below.
//!
//! `client_credentials`: the requested `scope` must be a subset of the registered scopes
//! (`invalid_scope`), every `resource` and `audience` one of the registered audiences
//! (`invalid_target`). Without `scope`, every registered scope is granted (RFC 6749 §3.3
//! lets the server apply a default); without targets, every registered audience is the
//! token's `aud`. No refresh token (RFC 6749 §4.4.3).

use lanyard_core::UnixTime;
use lanyard_core::oauth::{
    AccessTokenType, Confirmation, Grant, Scope, TokenRequest, TokenResponse, TokenTypeUri, VerifiedDpopProof,
};

use super::AuthorizationServer;
use super::client_auth::AuthenticatedClient;
use super::error::OAuthError;
use super::tokens::Issued;
use crate::model::OAuthClientSpec;

/// An issued token, with what the audit line needs.
#[derive(Clone, Debug)]
pub struct TokenOutcome {
    /// The response body.
    pub response: TokenResponse,
    /// The access token's `jti` (a Txn-Token's `txn`).
    pub jti: String,
}

impl AuthorizationServer {
    /// Serves a token request from an authenticated client; `dpop` is the request's
    /// verified (and recorded) DPoP proof, if any.
    pub async fn token(
        &self,
        request: &TokenRequest,
        client: &AuthenticatedClient,
        dpop: Option<&VerifiedDpopProof>,
        now: UnixTime,
    ) -> Result<TokenOutcome, OAuthError> {
        let grant_type = request.grant.grant_type();
        let chaining_b = !self.state.config.oauth.chaining_home_servers.is_empty();
        let served = match &request.grant {
            Grant::ClientCredentials | Grant::TokenExchange(_) => true,
            Grant::JwtBearer { .. } => chaining_b,
            _ => false,
        };
        if !served {
            return Err(OAuthError::UnsupportedGrantType(clip(grant_type.as_str())));
        }
        if !client.client.spec.allowed_grant_types().contains(&grant_type) {
            return Err(OAuthError::UnauthorizedClient(clip(grant_type.as_str())));
        }
        match &request.grant {
            Grant::TokenExchange(exchange) => self.token_exchange(request, exchange, client, dpop, now).await,
            Grant::JwtBearer { assertion } => self.jwt_bearer(request, assertion.expose(), client, dpop, now).await,
            _ => self.client_credentials(request, client, dpop, now).await,
        }
    }

    async fn client_credentials(
        &self,
        request: &TokenRequest,
        client: &AuthenticatedClient,
        dpop: Option<&VerifiedDpopProof>,
        now: UnixTime,
    ) -> Result<TokenOutcome, OAuthError> {
        let spec = &client.client.spec;
        let registered = registered_scope(spec)?;
        let scope = match &request.scope {
            Some(asked) if !asked.is_subset_of(&registered) => {
                return Err(OAuthError::InvalidScope(asked.difference(&registered).to_string()));
            }
            Some(asked) => asked.clone(),
            None => registered,
        };
        let audiences = targets(request, spec)?;
        let cnf = binding(client, dpop)?;
        let ttl = self.access_token_ttl(spec);
        let issued = self
            .issue_access_token(&client.client.client_id, audiences, &scope, cnf, ttl, now)
            .await?;
        Ok(access_token_outcome(issued, dpop, scope, None))
    }

    /// The access-token lifetime for a client: its registered one, capped by the server's.
    pub(crate) fn access_token_ttl(&self, spec: &OAuthClientSpec) -> u64 {
        spec.effective_access_token_ttl(self.state.config.oauth.access_token_ttl)
    }
}

/// The client's registered scopes.
pub(crate) fn registered_scope(spec: &OAuthClientSpec) -> Result<Scope, OAuthError> {
    Scope::from_tokens(spec.scopes.iter()).map_err(OAuthError::Request)
}

/// The access token's audiences (RFC 8707 `resource`, RFC 8693 `audience`): every one
/// requested must be registered for the client (`invalid_target`); none requested means
/// every registered audience.
pub(crate) fn targets(request: &TokenRequest, spec: &OAuthClientSpec) -> Result<Vec<String>, OAuthError> {
    let mut audiences: Vec<String> = Vec::new();
    for target in request.resources.iter().chain(&request.audiences) {
        if !spec.audiences.contains(target) {
            return Err(OAuthError::InvalidTarget(format!(
                "{:?} is not a registered resource or audience of the client",
                clip(target)
            )));
        }
        if !audiences.contains(target) {
            audiences.push(target.clone());
        }
    }
    if audiences.is_empty() {
        audiences = spec.audiences.clone();
    }
    if audiences.is_empty() {
        return Err(OAuthError::InvalidTarget(
            "the client has no registered audience".into(),
        ));
    }
    Ok(audiences)
}

/// The access token's `cnf`: the DPoP proof's key (RFC 9449 §6) and the client
/// certificate (RFC 8705 §3), refusing a client that must bind and did not.
pub(crate) fn binding(
    client: &AuthenticatedClient,
    dpop: Option<&VerifiedDpopProof>,
) -> Result<Confirmation, OAuthError> {
    let spec = &client.client.spec;
    let mut cnf = Confirmation::default();
    if let Some(proof) = dpop {
        cnf.jkt = Some(proof.jkt.clone());
    } else if spec.require_dpop {
        return Err(OAuthError::BindingRequired("the client must present a DPoP proof"));
    }
    match &client.certificate_thumbprint {
        Some(thumbprint) => cnf.x5t_s256 = Some(thumbprint.clone()),
        None if spec.require_certificate_binding => {
            return Err(OAuthError::BindingRequired(
                "the client must authenticate with mutual TLS",
            ));
        }
        None => {}
    }
    Ok(cnf)
}

/// The answer for an access token just signed: `token_type` `DPoP` for a DPoP-bound
/// token, `Bearer` otherwise; `issued_token_type` for a token exchange (RFC 8693 §2.2.1).
pub(crate) fn access_token_outcome(
    issued: Issued,
    dpop: Option<&VerifiedDpopProof>,
    scope: Scope,
    issued_token_type: Option<TokenTypeUri>,
) -> TokenOutcome {
    TokenOutcome {
        response: TokenResponse {
            access_token: issued.token,
            token_type: if dpop.is_some() {
                AccessTokenType::Dpop
            } else {
                AccessTokenType::Bearer
            },
            expires_in: Some(issued.expires_in),
            scope: (!scope.is_empty()).then_some(scope),
            issued_token_type,
        },
        jti: issued.jti,
    }
}

/// The first 100 characters of an untrusted value, for a message.
pub(crate) fn clip(value: &str) -> String {
    value.chars().take(100).collect()
}
