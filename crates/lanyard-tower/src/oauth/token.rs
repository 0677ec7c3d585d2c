//! What a handler learns about the access token of its request: [`VerifiedAccessToken`].

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::Response;
use http::request::Parts;
use lanyard_core::UnixTime;
use lanyard_core::oauth::{AccessTokenClaims, Actor, Audience, Confirmation, Scope, TokenScheme};

use super::rejection::Rejection;

/// How the token was bound to its presenter.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Binding {
    /// A bearer token (no `cnf`).
    Bearer,
    /// DPoP-bound (`cnf.jkt`, RFC 9449); the proof of that key came with the request.
    Dpop {
        /// The RFC 7638 thumbprint of the proof key.
        jkt: String,
        /// The proof's `jti`.
        proof_jti: String,
    },
    /// Certificate-bound (`cnf.x5t#S256`, RFC 8705 §3); the connection's client certificate
    /// matched.
    Certificate,
}

/// A verified access token, put in the request's extensions by
/// [`AccessTokenLayer`](super::AccessTokenLayer) and available to handlers as an axum
/// extractor (`Option<VerifiedAccessToken>` where the layer is optional). Its `Debug` form
/// shows claims, never the token.
#[derive(Clone, Debug)]
pub struct VerifiedAccessToken {
    /// The token's claims (RFC 9068 §2.2).
    pub claims: AccessTokenClaims,
    /// How it was bound.
    pub binding: Binding,
    /// The `kid` of the authorization server key that signed it.
    pub kid: Option<String>,
}

impl VerifiedAccessToken {
    /// The subject (the client itself for `client_credentials`).
    pub fn sub(&self) -> &str {
        &self.claims.sub
    }

    /// The client the token was issued to.
    pub fn client_id(&self) -> &str {
        &self.claims.client_id
    }

    /// The granted scope (empty when the token has none).
    pub fn scope(&self) -> Scope {
        self.claims.scope_or_empty()
    }

    /// The audiences.
    pub fn aud(&self) -> &Audience {
        &self.claims.aud
    }

    /// The current actor of a delegated token (RFC 8693 §4.1), the one to authorize.
    pub fn act(&self) -> Option<&Actor> {
        self.claims.act.as_ref()
    }

    /// The confirmation (`cnf`), if the token is sender-constrained.
    pub fn cnf(&self) -> Option<&Confirmation> {
        self.claims.cnf.as_ref()
    }

    /// The token's identifier.
    pub fn jti(&self) -> &str {
        &self.claims.jti
    }

    /// When it expires.
    pub fn exp(&self) -> UnixTime {
        self.claims.exp
    }

    /// The authorization scheme it was presented with: `DPoP` for a DPoP-bound token,
    /// `Bearer` otherwise.
    pub(crate) fn scheme(&self) -> TokenScheme {
        match self.binding {
            Binding::Dpop { .. } => TokenScheme::Dpop,
            Binding::Bearer | Binding::Certificate => TokenScheme::Bearer,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for VerifiedAccessToken {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<VerifiedAccessToken>()
            .cloned()
            .ok_or_else(|| Rejection::NotConfigured.into_bare_response())
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for VerifiedAccessToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<VerifiedAccessToken>().cloned())
    }
}
