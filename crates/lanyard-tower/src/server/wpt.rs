//! WIT + Workload Proof Token: reading the credentials from the request and verifying them.

use axum::body::Body;
use http::Request;
use lanyard_core::ProofTokens;
use lanyard_core::wimse::extract_credentials;

use super::config::{AuthMode, VerifiedWorkload};
use super::layer::{Shared, header_view};
use super::rejection::Rejection;

impl Shared {
    pub(super) fn verify_wpt(&self, request: &Request<Body>) -> Result<VerifiedWorkload, Rejection> {
        let fail = |e| Rejection::Failed(AuthMode::Wpt, e);
        let headers = header_view(request.headers());
        let presented = extract_credentials(headers.iter().copied(), &self.config.carriage).map_err(fail)?;
        let mut other = Vec::new();
        for name in &self.config.other_token_headers {
            if let Some(v) = request.headers().get(name.as_str()) {
                let v = v.to_str().map_err(|_| {
                    fail(lanyard_core::Error::Header {
                        name: "oth",
                        reason: "a bound context token is not visible ASCII",
                    })
                })?;
                other.push((name.as_str(), v));
            }
        }
        let tokens = ProofTokens {
            wit: presented.wit,
            wpt: presented.wpt,
            access_token: presented.access_token,
            txn_token: presented.txn_token,
            other_tokens: &other,
        };
        let now = self.config.clock.now();
        let proof = self.wpt.verify(&tokens, &self.audience(request), now).map_err(fail)?;
        Ok(VerifiedWorkload {
            id: proof.wit.sub.clone(),
            mode: AuthMode::Wpt,
            claims: Some(proof.wit.claims.clone()),
            proof_id: Some(proof.wpt.jti),
        })
    }
}
