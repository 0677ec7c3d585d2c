//! One tower service for every layer that checks a request before its handler runs.
//!
//! The workload, access-token, Txn-Token and SD-CWT layers and the per-route
//! authorization and scope layers differ only in how they check a request and what they
//! add to the answer; each says that as a [`Guard`], and all of them produce the same
//! service, [`GuardService`]. (Not to be confused with `lanyard_net::Guarded`, a
//! connection that holds its limiter slot.)

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use http::Request;
use tower::Service;

/// How a layer checks a request before its handler runs, and what it adds to the handler's
/// response. This crate's layers implement it; a check of your own can too, served by
/// [`GuardService::new`] from its `Layer`.
pub trait Guard: Send + Sync + 'static {
    /// What a request that was let through hands on to [`Guard::finish`].
    type Pass: Send + 'static;

    /// Lets `request` through, with what was verified in its extensions, or answers it
    /// (a refusal).
    fn admit(
        &self,
        request: Request<Body>,
    ) -> impl Future<Output = Result<(Request<Body>, Self::Pass), Response>> + Send;

    /// Completes the handler's response; by default it is returned as it is.
    fn finish(&self, response: Response, pass: Self::Pass) -> impl Future<Output = Response> + Send {
        let _ = pass;
        std::future::ready(response)
    }
}

/// The service each of this crate's checking layers produces: its [`Guard`], then the
/// inner service. Cheap to clone.
pub struct GuardService<S, G> {
    inner: S,
    guard: Arc<G>,
}

impl<S, G> GuardService<S, G> {
    /// `inner` behind `guard`.
    pub fn new(inner: S, guard: G) -> GuardService<S, G> {
        GuardService {
            inner,
            guard: Arc::new(guard),
        }
    }
}

impl<S: Clone, G> Clone for GuardService<S, G> {
    fn clone(&self) -> Self {
        GuardService {
            inner: self.inner.clone(),
            guard: Arc::clone(&self.guard),
        }
    }
}

impl<S, G: fmt::Debug> fmt::Debug for GuardService<S, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardService")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

impl<S, G> Service<Request<Body>> for GuardService<S, G>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    G: Guard,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let guard = Arc::clone(&self.guard);
        // The clone that was polled ready serves this request; a fresh clone takes its
        // place (tower's usual pattern).
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        Box::pin(async move {
            let (request, pass) = match guard.admit(request).await {
                Ok(admitted) => admitted,
                Err(refusal) => return Ok(refusal),
            };
            let response = inner.call(request).await?;
            Ok(guard.finish(response, pass).await)
        })
    }
}
