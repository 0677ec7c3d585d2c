//! Workload credentials issued by token exchange (issue 13 items 1 and 2): WITs behind
//! `[oauth] issue_wits`, JWT-SVIDs behind `[oauth] issue_jwt_svids`.
//!
//! **WIT**: `requested_token_type=urn:lanyard:params:oauth:token-type:wit`: Lanyard's own
//! URN, because WIMSE registers no token type for a WIT (spec updates 2026-12 §5; to be
//! renamed when it does), and the same URN is the `issued_token_type`, with `token_type`
//! `N_A` (RFC 8693 §2.2.1: not an access token). The WIT (draft-ietf-wimse-workload-creds,
//! `typ` `wit+jwt`) binds the key the request proves with its DPoP proof (RFC 9449 §4: the
//! proof's `jwk`, with the proof's `alg`, becomes `cnf.jwk`), so a bearer platform token
//! never becomes a proof-of-possession credential for a key nobody proved. It lives at most
//! `default_wit_ttl`.
//!
//! **JWT-SVID**: `requested_token_type=urn:ietf:params:oauth:token-type:jwt` when the
//! request names no foreign authorization server (that is identity chaining,
//! `chaining.rs`): a JWT-SVID (SPIFFE JWT-SVID.md) for the subject, whose `aud` is the
//! request's `audience`/`resource` values (at least one, each registered for the client,
//! RFC 8707), `issued_token_type` `...:jwt`, `token_type` `N_A`. It is a
//! bearer credential, so it is off by default. It lives at most `default_jwt_svid_ttl`.
//!
//! Both: the subject is the exchange's subject, which must be a workload of this trust
//! domain (a trusted issuer's mapped identity, a JWT-SVID; for a JWT-SVID a `spiffe://`
//! ID); neither names an actor, so only impersonation is served; neither outlives the
//! subject token.

use lanyard_core::oauth::{
    AccessTokenType, TokenExchange, TokenRequest, TokenResponse, TokenTypeUri, VerifiedDpopProof, Violation,
};
use lanyard_core::{SpiffeId, UnixTime, WorkloadId};

use super::AuthorizationServer;
use super::client_auth::AuthenticatedClient;
use super::error::OAuthError;
use super::grant::{TokenOutcome, targets};
use crate::error::ServerError;
use crate::issue::Minted;

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
        let (sub, ttl) = self
            .workload_subject(request, exchange, client, dpop, Issued::Wit, now)
            .await?;
        let mut cnf = proof.jwk.clone();
        cnf.alg = Some(proof.algorithm.as_str().to_owned());
        let wit = crate::issue::mint_wit_at(&self.state, &sub, &cnf, Some(ttl), now)
            .await
            .map_err(issue_error)?;
        self.credential_outcome(wit, TokenTypeUri::LanyardWit, now)
    }

    /// Serves a token exchange that asks for a JWT-SVID (see the module documentation).
    pub(crate) async fn jwt_svid_exchange(
        &self,
        request: &TokenRequest,
        exchange: &TokenExchange,
        client: &AuthenticatedClient,
        dpop: Option<&VerifiedDpopProof>,
        now: UnixTime,
    ) -> Result<TokenOutcome, OAuthError> {
        if !self.state.config.oauth.issue_jwt_svids {
            return Err(OAuthError::InvalidTarget(
                "a JWT is issued only as an authorization grant for a configured foreign authorization server \
                 (JWT-SVIDs by token exchange are off: [oauth] issue_jwt_svids)"
                    .into(),
            ));
        }
        // A bearer JWT-SVID names only the audiences asked for, never every registered one.
        if request.resources.is_empty() && request.audiences.is_empty() {
            return Err(OAuthError::InvalidTarget(
                "a JWT-SVID needs an audience or resource to be issued for".into(),
            ));
        }
        let audiences = targets(request, &client.client.spec)?;
        let (sub, ttl) = self
            .workload_subject(request, exchange, client, dpop, Issued::JwtSvid, now)
            .await?;
        let sub = SpiffeId::parse(sub.as_str()).map_err(|e| OAuthError::ExchangeToken {
            which: "subject_token",
            reason: Violation::MappedIdentityInvalid {
                reason: format!("a JWT-SVID names a SPIFFE ID: {e}"),
            }
            .into(),
        })?;
        let svid = crate::issue::mint_jwt_svid_at(&self.state, &sub, &audiences, Some(ttl), now)
            .await
            .map_err(issue_error)?;
        self.credential_outcome(svid, TokenTypeUri::Jwt, now)
    }

    /// The exchange's subject as a workload of this trust domain, and the lifetime of the
    /// credential `issued` for it (never beyond the subject token). Delegation is refused:
    /// these credentials name no actor.
    async fn workload_subject(
        &self,
        request: &TokenRequest,
        exchange: &TokenExchange,
        client: &AuthenticatedClient,
        dpop: Option<&VerifiedDpopProof>,
        issued: Issued,
        now: UnixTime,
    ) -> Result<(WorkloadId, u64), OAuthError> {
        super::exchange::txn_token_not_exchanged(exchange, issued.name())?;
        let max_ttl = match issued {
            Issued::Wit => self.state.config.default_wit_ttl,
            Issued::JwtSvid => self.state.config.default_jwt_svid_ttl,
        };
        let (_, outcome) = self
            .exchange_decision(request, exchange, client, dpop, max_ttl, now)
            .await?;
        if outcome.act.is_some() {
            let mode = match issued {
                Issued::Wit => "delegation with a WIT (a WIT names no actor)",
                Issued::JwtSvid => "delegation with a JWT-SVID (a JWT-SVID names no actor)",
            };
            return Err(OAuthError::Exchange(Violation::ExchangeNotAllowed { mode }.into()));
        }
        let not_workload = |reason: String| OAuthError::ExchangeToken {
            which: "subject_token",
            reason: Violation::MappedIdentityInvalid { reason }.into(),
        };
        let sub = WorkloadId::parse(&outcome.sub).map_err(|e| not_workload(e.to_string()))?;
        if sub.trust_domain() != self.state.trust_domain.name() {
            return Err(not_workload(format!(
                "{} is issued for this trust domain's workloads only, not for {}",
                issued.name(),
                sub.trust_domain()
            )));
        }
        Ok((sub, outcome.exp.as_secs().saturating_sub(now.as_secs())))
    }

    /// The answer for a workload credential issued by exchange (RFC 8693 §2.2.1: not an
    /// access token, so `token_type` `N_A`).
    fn credential_outcome(
        &self,
        credential: Minted,
        issued: TokenTypeUri,
        now: UnixTime,
    ) -> Result<TokenOutcome, OAuthError> {
        Ok(TokenOutcome {
            response: TokenResponse {
                access_token: credential.token,
                token_type: AccessTokenType::NotApplicable,
                // What the credential says: minting may have shortened the lifetime to the
                // signing key's remaining life.
                expires_in: Some(credential.expires_at.as_secs().saturating_sub(now.as_secs())),
                scope: None,
                issued_token_type: Some(issued),
            },
            jti: self.random_id()?,
        })
    }
}

/// The workload credentials a token exchange issues.
#[derive(Clone, Copy, Debug)]
enum Issued {
    Wit,
    JwtSvid,
}

impl Issued {
    fn name(self) -> &'static str {
        match self {
            Issued::Wit => "a WIT",
            Issued::JwtSvid => "a JWT-SVID",
        }
    }
}

/// A failure to sign a workload credential, as the token endpoint reports it.
fn issue_error(e: ServerError) -> OAuthError {
    match e {
        ServerError::Keys(e) => OAuthError::Keys(e),
        ServerError::Store(e) => OAuthError::Store(e),
        ServerError::Credential(e) => OAuthError::Issue(e),
        other => OAuthError::Issue(lanyard_core::Error::InvalidKey(other.to_string())),
    }
}
