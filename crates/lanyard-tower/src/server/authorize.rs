//! Per-route authorization: [`AuthorizeLayer`] lets through only the workloads or trust
//! domains it names; it needs a [`super::WorkloadAuthLayer`] outside it.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, Request, StatusCode};
use lanyard_core::WorkloadId;
use tower::Layer;

use crate::guard::{Guard, GuardService};

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
        GuardService::new(inner, self.clone())
    }
}

/// The service [`AuthorizeLayer`] produces.
pub type Authorize<S> = GuardService<S, AuthorizeLayer>;

impl Guard for AuthorizeLayer {
    type Pass = ();

    async fn admit(&self, request: Request<Body>) -> Result<(Request<Body>, ()), Response> {
        match request.extensions().get::<VerifiedWorkload>() {
            None => Err(problem(
                StatusCode::UNAUTHORIZED,
                "missing_credentials",
                "the caller is not authenticated",
                &HeaderMap::new(),
            )),
            Some(w) if self.allows(w) => Ok((request, ())),
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
        }
    }
}
