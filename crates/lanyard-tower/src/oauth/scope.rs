//! [`RequireScopeLayer`]: a per-route scope requirement behind an
//! [`AccessTokenLayer`](super::AccessTokenLayer) (the same check as
//! [`AccessTokenLayer::require_scope`](super::AccessTokenLayer::require_scope), for routers
//! that apply the token layer once, outside).

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::Request;
use lanyard_core::oauth::Scope;
use tower::Layer;

use super::rejection::{Challenge, Rejection};
use super::token::VerifiedAccessToken;
use crate::guard::{Guard, GuardService};

/// Lets through only requests whose verified access token grants every token of a scope;
/// `403` + `insufficient_scope` otherwise, `401` when no token was verified.
#[derive(Clone, Debug)]
pub struct RequireScopeLayer {
    required: Arc<Scope>,
}

impl RequireScopeLayer {
    /// Requires `scope`.
    pub fn new(scope: Scope) -> RequireScopeLayer {
        RequireScopeLayer {
            required: Arc::new(scope),
        }
    }
}

impl<S> Layer<S> for RequireScopeLayer {
    type Service = RequireScope<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GuardService::new(inner, self.clone())
    }
}

/// The service [`RequireScopeLayer`] produces.
pub type RequireScope<S> = GuardService<S, RequireScopeLayer>;

impl Guard for RequireScopeLayer {
    type Pass = ();

    async fn admit(&self, request: Request<Body>) -> Result<(Request<Body>, ()), Response> {
        let (rejection, scheme) = match request.extensions().get::<VerifiedAccessToken>() {
            None => (Rejection::Missing, None),
            Some(t) if self.required.is_subset_of(&t.scope()) => return Ok((request, ())),
            Some(t) => {
                let scheme = t.scheme();
                (
                    Rejection::InsufficientScope(scheme, (*self.required).clone()),
                    Some(scheme),
                )
            }
        };
        let challenge = Challenge {
            bearer: true,
            ..Challenge::default()
        };
        Err(rejection.into_response(&challenge, scheme, None))
    }
}
