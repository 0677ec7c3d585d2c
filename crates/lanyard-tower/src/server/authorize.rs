//! Per-route authorization: [`AuthorizeLayer`] lets through only the workloads or trust
//! domains it names; it needs a [`super::WorkloadAuthLayer`] outside it.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, Request, StatusCode};
use lanyard_core::WorkloadId;
use tower::{Layer, Service};

use super::{BoxFuture, take_ready};

use super::config::VerifiedWorkload;
use super::rejection::{count, problem};

/// A per-route authorization layer: lets through only callers whose identifier is listed
/// or whose trust domain is listed (identifiers compare byte for byte). Needs a
/// [`WorkloadAuthLayer`](crate::WorkloadAuthLayer) outside it.
#[derive(Clone, Debug, Default)]
pub struct AuthorizeLayer {
    ids: Vec<WorkloadId>,
    trust_domains: Vec<String>,
}

impl AuthorizeLayer {
    /// Allow exactly these workloads.
    pub fn workloads(ids: impl IntoIterator<Item = WorkloadId>) -> AuthorizeLayer {
        AuthorizeLayer {
            ids: ids.into_iter().collect(),
            trust_domains: Vec::new(),
        }
    }

    /// Allow any workload of these trust domains.
    pub fn trust_domains<T: Into<String>>(tds: impl IntoIterator<Item = T>) -> AuthorizeLayer {
        AuthorizeLayer {
            ids: Vec::new(),
            trust_domains: tds.into_iter().map(Into::into).collect(),
        }
    }

    /// Also allow these workloads.
    pub fn or_workloads(mut self, ids: impl IntoIterator<Item = WorkloadId>) -> AuthorizeLayer {
        self.ids.extend(ids);
        self
    }

    /// Whether `workload` may call the route.
    pub fn allows(&self, workload: &VerifiedWorkload) -> bool {
        self.ids.contains(&workload.id) || self.trust_domains.iter().any(|td| td == workload.trust_domain())
    }
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Authorize {
            inner,
            policy: Arc::new(self.clone()),
        }
    }
}

/// The service [`AuthorizeLayer`] produces.
#[derive(Clone, Debug)]
pub struct Authorize<S> {
    inner: S,
    policy: Arc<AuthorizeLayer>,
}

impl<S> Service<Request<Body>> for Authorize<S>
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
        let verdict = match request.extensions().get::<VerifiedWorkload>() {
            None => Err(problem(
                StatusCode::UNAUTHORIZED,
                "missing_credentials",
                "the caller is not authenticated",
                &HeaderMap::new(),
            )),
            Some(w) if self.policy.allows(w) => Ok(()),
            Some(w) => {
                count(w.mode.as_str(), "forbidden");
                tracing::info!(workload = %w.id, "workload not allowed on this route");
                Err(problem(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    &format!("{} may not call this route", w.id),
                    &HeaderMap::new(),
                ))
            }
        };
        let mut inner = take_ready(&mut self.inner);
        Box::pin(async move {
            match verdict {
                Ok(()) => inner.call(request).await,
                Err(response) => Ok(response),
            }
        })
    }
}
