//! WIT + Workload Proof Token (draft-ietf-wimse-wpt-02): reading the credentials from the
//! request (`Workload-Identity-Token` and `Authorization: WPT`) and verifying them. A
//! `Bearer` or `DPoP` token beside the WPT is refused, never used; a `Txn-Token` must be
//! bound by `tth` and is handed on as [`super::UnverifiedTxnToken`].

use axum::body::Body;
use http::Request;
use lanyard_core::ProofTokens;
use lanyard_core::wimse::extract_credentials;

use super::config::{AuthMode, VerifiedWorkload};
use super::layer::{Shared, header_view};
use super::rejection::Rejection;

impl Shared {
    /// Verifies the request's WIT and WPT; returns the caller and the Txn-Token the proof binds.
    pub(super) fn verify_wpt(&self, request: &Request<Body>) -> Result<(VerifiedWorkload, Option<String>), Rejection> {
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
        let workload = VerifiedWorkload {
            id: proof.wit.sub.clone(),
            mode: AuthMode::Wpt,
            claims: Some(proof.wit.claims.clone()),
            proof_id: Some(proof.wpt.jti),
        };
        // The verifier accepted the Txn-Token only because `tth` binds it.
        Ok((workload, presented.txn_token.map(str::to_owned)))
    }
}
