//! The token request (RFC 6749 §4.4, RFC 8707, RFC 9068): grant dispatch and the
//! `client_credentials` grant.
//!
//! [`AuthorizationServer::token`] dispatches on the grant: `client_credentials` here;
//! token exchange (RFC 8693) and the JWT bearer grant (RFC 7523 §2.1) are parsed by
//! `lanyard_core::oauth::TokenRequest` and answer `unsupported_grant_type` until their
//! arm is added. A client may use only the grant types it is registered for
//! (`unauthorized_client`).
//!
//! `client_credentials`: the requested `scope` must be a subset of the registered scopes
//! (`invalid_scope`), every `resource` and `audience` one of the registered audiences
//! (`invalid_target`). Without `scope`, every registered scope is granted (RFC 6749 §3.3
//! lets the server apply a default); without targets, every registered audience is the
//! token's `aud`. No refresh token (RFC 6749 §4.4.3).

use lanyard_core::UnixTime;
use lanyard_core::oauth::{
    AccessTokenType, Confirmation, Grant, Scope, TokenRequest, TokenResponse, VerifiedDpopProof,
};

use super::AuthorizationServer;
use super::client_auth::AuthenticatedClient;
use super::error::OAuthError;

/// An issued token, with what the audit line needs.
#[derive(Clone, Debug)]
pub struct TokenOutcome {
    /// The response body.
    pub response: TokenResponse,
    /// The access token's `jti`.
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
        if !matches!(request.grant, Grant::ClientCredentials) {
            return Err(OAuthError::UnsupportedGrantType(clip(grant_type.as_str())));
        }
        if !client.client.spec.allowed_grant_types().contains(&grant_type) {
            return Err(OAuthError::UnauthorizedClient(clip(grant_type.as_str())));
        }
        self.client_credentials(request, client, dpop, now).await
    }

    async fn client_credentials(
        &self,
        request: &TokenRequest,
        client: &AuthenticatedClient,
        dpop: Option<&VerifiedDpopProof>,
        now: UnixTime,
    ) -> Result<TokenOutcome, OAuthError> {
        let spec = &client.client.spec;
        let registered = Scope::from_tokens(spec.scopes.iter()).map_err(OAuthError::Request)?;
        let scope = match &request.scope {
            Some(asked) if !asked.is_subset_of(&registered) => {
                return Err(OAuthError::InvalidScope(asked.difference(&registered).to_string()));
            }
            Some(asked) => asked.clone(),
            None => registered,
        };
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
        let default_ttl = self.state.config.oauth.access_token_ttl;
        let ttl = match spec.access_token_ttl {
            0 => default_ttl,
            asked => asked.min(default_ttl),
        };
        let issued = self
            .issue_access_token(&client.client.client_id, audiences, &scope, cnf, ttl, now)
            .await?;
        Ok(TokenOutcome {
            response: TokenResponse {
                access_token: issued.token,
                token_type: if dpop.is_some() {
                    AccessTokenType::Dpop
                } else {
                    AccessTokenType::Bearer
                },
                expires_in: Some(issued.expires_in),
                scope: (!scope.is_empty()).then_some(scope),
                issued_token_type: None,
            },
            jti: issued.jti,
        })
    }
}

/// The first 100 characters of an untrusted value, for a message.
fn clip(value: &str) -> String {
    value.chars().take(100).collect()
}
