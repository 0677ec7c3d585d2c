//! WIT + HTTP Message Signature (draft-ietf-wimse-http-signature-07): verifying signed
//! requests and signing responses, each response in the target form its request used and
//! always with `wimse-req-nonce`.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use lanyard_core::httpsig::{self, RequestParts, ResponseParts, ResponseSigning, TargetComponents};
use lanyard_core::wimse::TXN_TOKEN;

use super::config::{AuthMode, VerifiedWorkload};
use super::layer::{Shared, header_view, original_uri};
use super::rejection::{Rejection, count, problem};

/// What a signed request is owed: its response, signed too. Produced and consumed by
/// [`WorkloadAuthLayer`](crate::WorkloadAuthLayer) (its [`Guard::Pass`](crate::Guard::Pass)); it has nothing
/// public but its name.
pub struct ResponseToSign {
    method: String,
    target: String,
    nonce: String,
    /// How the request covered its target; the response's `;req` components match it.
    form: TargetComponents,
}

impl Shared {
    /// Verifies a signed request; returns the caller, what signing its response needs (if
    /// it must be signed) and the Txn-Token the signature covers.
    pub(super) async fn verify_signed(
        &self,
        request: &mut Request<Body>,
    ) -> Result<(VerifiedWorkload, Option<ResponseToSign>, Option<String>), Rejection> {
        let body = std::mem::take(request.body_mut());
        let bytes = read_limited(body, self.config.max_body_bytes)
            .await
            .map_err(Rejection::Body)?;
        let uri = original_uri(request).clone();
        let target = uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
        let method = request.method().as_str().to_owned();
        let authority = uri.authority().map(|a| a.as_str().to_owned());
        let audience = self.audience(request);
        let parts = RequestParts {
            method: &method,
            target: &target,
            authority: authority.as_deref(),
            scheme: uri.scheme_str(),
            headers: header_view(request.headers()),
        };
        let now = self.config.clock.now();
        let verified = self
            .http_sig
            .verify_request(&parts, &bytes, &audience, now)
            .map_err(|e| Rejection::Failed(AuthMode::HttpSignature, e))?;
        *request.body_mut() = Body::from(bytes);
        let to_sign = (verified.signature.sign_response || self.config.sign_all_responses).then(|| ResponseToSign {
            method,
            target,
            nonce: verified.signature.nonce.clone(),
            form: verified.signature.target,
        });
        // The profile requires a present Txn-Token to be covered, so it is bound to the
        // caller; it is handed on only when it is one field (its covered value is then exact).
        let mut txn_fields = request.headers().get_all(TXN_TOKEN).iter();
        let txn_token = match (txn_fields.next(), txn_fields.next()) {
            (Some(v), None) => v.to_str().ok().map(|v| v.trim_matches([' ', '\t']).to_owned()),
            _ => None,
        };
        let workload = VerifiedWorkload {
            id: verified.wit.sub.clone(),
            mode: AuthMode::HttpSignature,
            claims: Some(verified.wit.claims.clone()),
            proof_id: Some(verified.signature.nonce),
        };
        Ok((workload, to_sign, txn_token))
    }

    /// Signs a response (-07 §3.4). If it cannot, the caller gets an error, never a
    /// successful unsigned response.
    pub(super) async fn sign_response(&self, response: Response, sign: ResponseToSign) -> Response {
        let cannot = |detail: &str| {
            count("http_signature", "response_not_signed");
            problem(
                StatusCode::NOT_IMPLEMENTED,
                "response_not_signed",
                detail,
                &HeaderMap::new(),
            )
        };
        let Some(source) = &self.config.response_credentials else {
            return cannot("a signed response was requested but this service has no credentials to sign with");
        };
        let creds = match source.credentials() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot load the credentials to sign a response");
                return cannot("the service's signing credentials are unavailable");
            }
        };
        let (mut parts, body) = response.into_parts();
        let Ok(bytes) = read_limited(body, self.config.max_body_bytes).await else {
            return cannot("the response is too large to sign");
        };
        let request = RequestParts {
            method: &sign.method,
            target: &sign.target,
            ..RequestParts::default()
        };
        let unsigned = ResponseParts {
            status: parts.status.as_u16(),
            headers: header_view(&parts.headers),
        };
        let opts = ResponseSigning {
            wit: &creds.wit,
            request_nonce: &sign.nonce,
            lifetime: 60,
            target: sign.form,
        };
        let provider = &self.provider;
        let now = self.config.clock.now();
        let signed = match httpsig::sign_response(
            creds.key.as_ref(),
            &unsigned,
            &bytes,
            &request,
            &opts,
            now,
            provider.as_ref(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "signing a response failed");
                return cannot("the response could not be signed");
            }
        };
        for (name, value) in signed.headers {
            if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                parts.headers.insert(n, v);
            }
        }
        Response::from_parts(parts, Body::from(bytes))
    }
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes, String> {
    let limited = http_body_util::Limited::new(body, limit);
    limited
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|e| format!("cannot read the body (limit {limit} bytes): {e}"))
}
