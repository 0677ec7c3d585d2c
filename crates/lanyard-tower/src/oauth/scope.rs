//! [`RequireScopeLayer`]: a per-route scope requirement behind an
//! [`AccessTokenLayer`](super::AccessTokenLayer) (the same check as
//! [`AccessTokenLayer::require_scope`](super::AccessTokenLayer::require_scope), for routers
//! that apply the token layer once, outside).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use http::Request;
use lanyard_core::oauth::{Scope, TokenScheme};
use tower::{Layer, Service};

use super::rejection::{Challenge, Rejection};
use super::token::{Binding, VerifiedAccessToken};
use crate::server::{BoxFuture, take_ready};

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
        RequireScope {
            inner,
            required: Arc::clone(&self.required),
        }
    }
}

/// The service [`RequireScopeLayer`] produces.
#[derive(Clone, Debug)]
pub struct RequireScope<S> {
    inner: S,
    required: Arc<Scope>,
}

impl<S> Service<Request<Body>> for RequireScope<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let verdict = match request.extensions().get::<VerifiedAccessToken>() {
            None => Err((Rejection::Missing, None)),
            Some(t) if self.required.is_subset_of(&t.scope()) => Ok(()),
            Some(t) => {
                let scheme = match t.binding {
                    Binding::Dpop { .. } => TokenScheme::Dpop,
                    _ => TokenScheme::Bearer,
                };
                Err((
                    Rejection::InsufficientScope(scheme, (*self.required).clone()),
                    Some(scheme),
                ))
            }
        };
        let mut inner = take_ready(&mut self.inner);
        Box::pin(async move {
            match verdict {
                Ok(()) => inner.call(request).await,
                Err((rejection, scheme)) => {
                    let challenge = Challenge {
                        bearer: true,
                        ..Challenge::default()
                    };
                    Ok(rejection.into_response(&challenge, scheme, None))
                }
            }
        })
    }
}
