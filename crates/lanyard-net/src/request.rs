//! Rules every request on a Lanyard listener follows before a service sees it: its body
//! must arrive in time, and an HTTP/1.1 request names exactly one `Host`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, Version, header};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The error a [`DeadlineBody`] ends with when its deadline passes first.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(Duration);

/// A request body that must arrive whole before a deadline counted from the moment its
/// request head was read. Without it, a client that sends a head and then stalls or
/// trickles the body holds its connection (and its slot under the per-peer cap) for as
/// long as it likes: the header-read timeout ends when the head is complete. A body that
/// is already buffered with its head (the common case) never starts a timer.
pub struct DeadlineBody<B> {
    inner: B,
    deadline: Instant,
    allowed: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> DeadlineBody<B> {
    /// `inner`, which must end within `allowed` from now.
    pub fn new(inner: B, allowed: Duration) -> DeadlineBody<B> {
        DeadlineBody {
            inner,
            deadline: Instant::now() + allowed,
            allowed,
            timer: None,
        }
    }
}

impl<B> HttpBody for DeadlineBody<B>
where
    B: HttpBody + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = B::Data;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimedOut(self.allowed).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The answer to a request whose `Host` breaks RFC 9112 §3.2 (none in an HTTP/1.1
/// request, or more than one in any request), or `None` when it is fine. HTTP/2 requests
/// name their authority in `:authority` and may leave `Host` out.
pub fn host_violation<B>(request: &Request<B>) -> Option<Response<Body>> {
    let hosts = request.headers().get_all(header::HOST).iter().count();
    let refused = hosts > 1 || (hosts == 0 && request.version() == Version::HTTP_11);
    refused.then(|| {
        let mut response = Response::new(Body::from(
            "an HTTP/1.1 request carries exactly one Host header (RFC 9112 section 3.2)\n",
        ));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain"));
        headers.insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        response
    })
}

#[cfg(test)]
mod tests {
    use super::{BodyTimedOut, DeadlineBody, host_violation};
    use axum::body::Bytes;
    use axum::http::{Request, StatusCode, Version};
    use http_body_util::BodyExt;
    use hyper::body::Frame;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    #[tokio::test]
    async fn a_body_that_arrives_in_time_is_read_whole() {
        let body = DeadlineBody::new(String::from("grant_type=x"), Duration::from_millis(50));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"grant_type=x");
    }

    /// A body that sends one frame and then nothing, forever.
    struct Stalled(bool);

    impl hyper::body::Body for Stalled {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if std::mem::replace(&mut self.0, true) {
                Poll::Pending
            } else {
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"grant")))))
            }
        }
    }

    #[tokio::test]
    async fn a_stalled_body_ends_with_an_error_at_its_deadline() {
        let body = DeadlineBody::new(Stalled(false), Duration::from_millis(200));
        let started = tokio::time::Instant::now();
        let error = body.collect().await.unwrap_err();
        assert!(error.is::<BodyTimedOut>(), "{error}");
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn host_rules_of_rfc_9112() {
        let request = |version: Version, hosts: &[&str]| {
            let mut builder = Request::builder().uri("/").version(version);
            for host in hosts {
                builder = builder.header("host", *host);
            }
            builder.body(()).unwrap()
        };
        assert!(host_violation(&request(Version::HTTP_11, &["a"])).is_none());
        assert!(host_violation(&request(Version::HTTP_10, &[])).is_none());
        assert!(host_violation(&request(Version::HTTP_2, &[])).is_none());
        for bad in [
            request(Version::HTTP_11, &[]),
            request(Version::HTTP_11, &["a", "b"]),
            request(Version::HTTP_10, &["a", "a"]),
        ] {
            assert_eq!(host_violation(&bad).unwrap().status(), StatusCode::BAD_REQUEST);
        }
    }
}
