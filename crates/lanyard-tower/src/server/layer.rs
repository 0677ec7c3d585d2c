//! The shared layer: [`WorkloadAuthLayer`], whose [`Guard`] picks the mode a
//! request uses, hands it to the mode's verifier, and puts the result on the request.

use std::fmt;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, Request};
use lanyard_core::httpsig::HttpSigVerifier;
use lanyard_core::wimse::{WORKLOAD_PROOF_TOKEN, is_wpt_authorization};
use lanyard_core::{CryptoProvider, InMemoryReplayCache, TrustStore, WitVerifier, WptVerifier};
use tower::Layer;

use super::config::{UnverifiedTxnToken, WorkloadAuthConfig};
use super::peer;
use super::rejection::{Rejection, count};
use super::signature::ResponseToSign;
use crate::guard::{Guard, GuardService};
use crate::mtls::PeerIdentity;

/// What every clone of the layer and its services shares.
pub(super) struct Shared {
    pub(super) config: WorkloadAuthConfig,
    pub(super) wpt: WptVerifier,
    pub(super) http_sig: HttpSigVerifier,
    /// The trust store's provider, which also signs responses.
    pub(super) provider: Arc<dyn CryptoProvider>,
}

/// The tower layer that authenticates requests. Cheap to clone.
#[derive(Clone)]
pub struct WorkloadAuthLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for WorkloadAuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadAuthLayer")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl WorkloadAuthLayer {
    /// A layer trusting the WIT keys in `store`.
    pub fn new(store: Arc<TrustStore>, mut config: WorkloadAuthConfig) -> WorkloadAuthLayer {
        // One wpt-01 switch for the layer: the legacy carriage brings the legacy `ath` rules.
        config.wpt_policy.accept_wpt01 |= config.carriage.accept_legacy_header;
        let provider = Arc::clone(store.provider());
        let mut wit = WitVerifier::new(store, config.wit_policy);
        if config.wit_cache_capacity > 0 {
            wit = wit.with_cache(config.wit_cache_capacity);
        }
        let replay = config
            .replay_cache
            .clone()
            .unwrap_or_else(|| Arc::new(InMemoryReplayCache::default()));
        let shared = Shared {
            wpt: WptVerifier::new(wit.clone(), config.wpt_policy, Arc::clone(&replay)),
            http_sig: HttpSigVerifier::new(wit, config.http_sig_policy, replay),
            config,
            provider,
        };
        WorkloadAuthLayer {
            shared: Arc::new(shared),
        }
    }
}

impl<S> Layer<S> for WorkloadAuthLayer {
    type Service = WorkloadAuth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GuardService::new(inner, self.clone())
    }
}

/// The service [`WorkloadAuthLayer`] produces.
pub type WorkloadAuth<S> = GuardService<S, WorkloadAuthLayer>;

impl Guard for WorkloadAuthLayer {
    /// The response signature owed to a signed request.
    type Pass = Option<ResponseToSign>;

    async fn admit(&self, request: Request<Body>) -> Result<(Request<Body>, Self::Pass), Response> {
        let shared = &self.shared;
        shared
            .authenticate(request)
            .await
            .map_err(|rejection| rejection.into_response(&shared.config))
    }

    async fn finish(&self, response: Response, sign: Self::Pass) -> Response {
        match sign {
            Some(sign) => self.shared.sign_response(response, sign).await,
            None => response,
        }
    }
}

pub(crate) fn header_view(headers: &HeaderMap) -> Vec<(&str, &[u8])> {
    headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect()
}

/// The URI the client sent. Inside `Router::nest` axum strips the prefix from
/// `request.uri()` but keeps the original in [`OriginalUri`](axum::extract::OriginalUri); the audience and the signed
/// `@request-target` are about the original.
pub(crate) fn original_uri(request: &Request<Body>) -> &http::Uri {
    request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| request.uri(), |o| &o.0)
}

impl Shared {
    pub(super) fn audience(&self, request: &Request<Body>) -> String {
        format!("{}{}", self.config.audience_base, original_uri(request).path())
    }

    /// Authenticates `request`, returning it (with the body restored if it was read and
    /// the [`VerifiedWorkload`](super::VerifiedWorkload) in its extensions) and whether the response must be signed.
    ///
    /// Credential header values are marked sensitive first, so a handler or layer that
    /// logs the request's headers shows `Sensitive` instead of a WIT, WPT or Txn-Token.
    pub(super) async fn authenticate(
        &self,
        mut request: Request<Body>,
    ) -> Result<(Request<Body>, Option<ResponseToSign>), Rejection> {
        hide_credentials(request.headers_mut());
        let modes = self.config.modes;
        let headers = request.headers();
        let signed = modes.http_signature && headers.contains_key("signature-input");
        // Any `Authorization: WPT` field (even beside another one, which the WPT check
        // then refuses) or a wpt-01 header makes this a WPT request.
        let wpt = modes.wpt
            && (headers.contains_key(WORKLOAD_PROOF_TOKEN)
                || headers
                    .get_all(http::header::AUTHORIZATION)
                    .iter()
                    .any(|v| v.to_str().is_ok_and(is_wpt_authorization)));
        let peer = request.extensions().get::<PeerIdentity>().cloned();
        let (verified, to_sign, txn_token) = if signed {
            self.verify_signed(&mut request).await?
        } else if wpt {
            let (verified, txn_token) = self.verify_wpt(&request)?;
            (verified, None, txn_token)
        } else if let (true, Some(peer)) = (modes.mtls, peer) {
            (peer::verified(peer), None, None)
        } else {
            return Err(Rejection::Missing);
        };
        count(verified.mode.as_str(), "ok");
        tracing::debug!(workload = %verified.id, mode = verified.mode.as_str(), proof = ?verified.proof_id, "workload authenticated");
        request.extensions_mut().insert(verified);
        if let Some(token) = txn_token {
            request.extensions_mut().insert(UnverifiedTxnToken(token));
        }
        Ok((request, to_sign))
    }
}

/// The header fields that carry credentials or proofs.
const CREDENTIAL_FIELDS: [&str; 6] = [
    "authorization",
    "workload-identity-token",
    "workload-proof-token",
    "txn-token",
    "signature",
    "dpop",
];

fn hide_credentials(headers: &mut HeaderMap) {
    for (name, value) in headers.iter_mut() {
        if CREDENTIAL_FIELDS.contains(&name.as_str()) {
            value.set_sensitive(true);
        }
    }
}
