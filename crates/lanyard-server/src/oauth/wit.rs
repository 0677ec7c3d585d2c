//! WITs issued by token exchange (issue 13 items 1 and 2), behind `[oauth] issue_wits`.
//!
//! `requested_token_type=urn:lanyard:params:oauth:token-type:wit`: Lanyard's own URN,
//! because WIMSE registers no token type for a WIT (spec updates 2026-12 §5; to be renamed
//! when it does), and the same URN is the `issued_token_type`, with `token_type` `N_A`
//! (RFC 8693 §2.2.1: not an access token). The WIT (draft-ietf-wimse-workload-creds, `typ`
//! `wit+jwt`) binds the key the request proves with its DPoP proof (RFC 9449 §4: the
//! proof's `jwk`, with the proof's `alg`, becomes `cnf.jwk`), so a bearer platform token
//! never becomes a proof-of-possession credential for a key nobody proved. Its `sub` is the
//! exchange's subject, which must be a workload identifier of this trust domain (a trusted
//! issuer's mapped identity, a JWT-SVID); a WIT names no actor, so only impersonation is
//! served. It lives at most `default_wit_ttl` and never beyond the subject token.

use lanyard_core::UnixTime;
use lanyard_core::WorkloadId;
use lanyard_core::oauth::{
    AccessTokenType, TokenExchange, TokenRequest, TokenResponse, TokenTypeUri, VerifiedDpopProof, Violation,
};

use super::AuthorizationServer;
use super::client_auth::AuthenticatedClient;
use super::error::OAuthError;
use super::grant::TokenOutcome;
use crate::error::ServerError;

impl AuthorizationServer {
    /// Serves a token exchange that asks for a WIT (see the module documentation).
    pub(crate) async fn wit_exchange(
        &self,
        request: &TokenRequest,
        exchange: &TokenExchange,
        client: &AuthenticatedClient,
        dpop: Option<&VerifiedDpopProof>,
        now: UnixTime,
    ) -> Result<TokenOutcome, OAuthError> {
        if !self.state.config.oauth.issue_wits {
            return Err(OAuthError::TokenTypeRefused {
                param: "requested_token_type",
                value: TokenTypeUri::LanyardWit.as_str().to_owned(),
            });
        }
        let proof = dpop.ok_or(OAuthError::BindingRequired(
            "a WIT binds the key of the request's DPoP proof (RFC 9449), and none was sent",
        ))?;
        let max_ttl = self.state.config.default_wit_ttl;
        let (_, outcome) = self
            .exchange_decision(request, exchange, client, dpop, max_ttl, now)
            .await?;
        if outcome.act.is_some() {
            return Err(OAuthError::Exchange(
                Violation::ExchangeNotAllowed {
                    mode: "delegation with a WIT (a WIT names no actor)",
                }
                .into(),
            ));
        }
        let not_workload = |reason: String| OAuthError::ExchangeToken {
            which: "subject_token",
            reason: Violation::MappedIdentityInvalid { reason }.into(),
        };
        let sub = WorkloadId::parse(&outcome.sub).map_err(|e| not_workload(e.to_string()))?;
        if sub.trust_domain() != self.state.trust_domain.name() {
            return Err(not_workload(format!(
                "a WIT is issued for this trust domain's workloads only, not for {}",
                sub.trust_domain()
            )));
        }
        let mut cnf = proof.jwk.clone();
        cnf.alg = Some(proof.algorithm.as_str().to_owned());
        let ttl = outcome.exp.as_secs().saturating_sub(now.as_secs());
        let wit = crate::issue::mint_wit(&self.state, &sub, &cnf, Some(ttl))
            .await
            .map_err(|e| match e {
                ServerError::Keys(e) => OAuthError::Keys(e),
                ServerError::Store(e) => OAuthError::Store(e),
                ServerError::Credential(e) => OAuthError::Issue(e),
                other => OAuthError::Issue(lanyard_core::Error::InvalidKey(other.to_string())),
            })?;
        Ok(TokenOutcome {
            response: TokenResponse {
                access_token: wit,
                token_type: AccessTokenType::NotApplicable,
                expires_in: Some(ttl),
                scope: None,
                issued_token_type: Some(TokenTypeUri::LanyardWit),
            },
            jti: self.random_id()?,
        })
    }
}
