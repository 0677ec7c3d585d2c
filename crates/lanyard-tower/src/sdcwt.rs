//! Accepting SD-CWT presentations (draft-ietf-spice-sd-cwt-08, §8–§9): a tower layer
//! ([`SdCwtLayer`]) that verifies the SD-KBT a caller presents and an axum extractor
//! ([`DisclosedClaims`]) that gives handlers the claims it discloses, and only those.
//!
//! **Carriage.** The draft defines the media type of a presentation (`application/kb+cwt`,
//! CoAP Content-Format 294) but no HTTP header, so Lanyard's profile accepts either:
//! - `Authorization: SD-KBT <base64url of the SD-KBT, no padding>` (RFC 9110 §11.6.2
//!   credentials; one such field only), or
//! - a request body of `Content-Type: application/kb+cwt` holding the SD-KBT bytes, for a
//!   route whose body is nothing but the presentation ([`SdCwtCarriage::body`]).
//!
//! Both at once, two `Authorization` fields, bad base64url or a presentation over the
//! size limit are refused before any CBOR is decoded.
//!
//! **Verification** is [`lanyard_core::spice::sd_cwt::SdCwtVerifier`]: the issuer key from
//! the configured set (a COSE_KeySet or a JWK Set), the service's audience, the time rules
//! and the key binding. With [`NoncePolicy::Required`], the SD-KBT's `cnonce` must be a
//! nonce the service's [`NonceSource`] issued and has not seen redeemed; it is redeemed
//! only after the presentation verified, so a forged token cannot burn a nonce.
//!
//! **Failures** are `401` with `WWW-Authenticate: SD-KBT` and an RFC 9457 problem body
//! whose `kind` is the stable error code (`sd_disclosure_unmatched`, `wrong_audience`,
//! `sd_nonce_mismatch`, `too_large`, `missing_credentials`, …). Nothing of the token is
//! logged; the `Authorization` field is marked sensitive before the handler runs. Each
//! outcome is counted in `lanyard_sd_cwt_auth_total` (label `outcome`).

use std::fmt;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt as _;
use lanyard_core::cbor::Value;
use lanyard_core::cose::{CoseKey, CoseKeySet};
use lanyard_core::cwt::{StandardClaims, label};
use lanyard_core::spice::sd_cwt::{
    IssuerKey, KBT_MEDIA_TYPE, PresentationContext, SdCwtErrorKind, SdCwtPolicy, SdCwtVerifier,
};
use lanyard_core::{Algorithm, Clock, CryptoProvider, Error as CoreError, JwkSet, SystemClock};
use tower::Layer;

use crate::guard::{Guard, GuardService};
use crate::server::problem;

pub use lanyard_core::spice::nonce::{InMemoryNonceSource, NonceSource};

/// The `Authorization` scheme of an SD-KBT presentation (Lanyard's profile).
pub const SD_KBT_SCHEME: &str = "SD-KBT";

/// Where a presentation may be carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdCwtCarriage {
    /// `Authorization: SD-KBT <base64url>`.
    pub header: bool,
    /// A body of `Content-Type: application/kb+cwt`.
    pub body: bool,
}

impl Default for SdCwtCarriage {
    /// Both.
    fn default() -> SdCwtCarriage {
        SdCwtCarriage {
            header: true,
            body: true,
        }
    }
}

/// A verifier's nonce endpoint for [`NoncePolicy::Required`] (mount it outside the
/// [`SdCwtLayer`], e.g. `.route("/nonce", post(nonce_endpoint(source, clock)))`): each call
/// answers `{"c_nonce": <base64url>}` with `Cache-Control: no-store`, the shape of the
/// server's `POST /nonce`. The holder decodes it and signs the bytes into its SD-KBT.
pub fn nonce_endpoint(
    source: Arc<dyn NonceSource>,
    clock: Arc<dyn Clock>,
) -> impl Fn() -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    move || {
        let response = match source.issue(clock.now()) {
            Ok(nonce) => {
                let body = serde_json::json!({ "c_nonce": URL_SAFE_NO_PAD.encode(nonce) });
                let mut r = (StatusCode::OK, body.to_string()).into_response();
                r.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                r.headers_mut()
                    .insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            Err(e) => problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                e.kind(),
                "no nonce could be made",
                &HeaderMap::new(),
            ),
        };
        std::future::ready(response)
    }
}

/// Whether a presentation must carry a verifier nonce.
#[derive(Clone, Debug, Default)]
pub enum NoncePolicy {
    /// No `cnonce` is required (one that is present is ignored; replay is bounded by the
    /// SD-KBT's maximum age).
    #[default]
    None,
    /// `cnonce` must be a nonce from this source, redeemed once.
    Required(Arc<dyn NonceSource>),
}

/// How a service accepts SD-CWT presentations.
#[derive(Clone)]
pub struct SdCwtAuthConfig {
    /// The service's audience: the SD-KBT `aud` (and the SD-CWT's, if it has one) must
    /// equal it exactly. From configuration, never from `Host`.
    pub audience: String,
    /// The nonce rule.
    pub nonce: NoncePolicy,
    /// Algorithms, `sd_alg`s, digest input, leeway, size and depth limits, SD-KBT age.
    /// `policy.max_size` bounds the presentation (decoded bytes).
    pub policy: SdCwtPolicy,
    /// Where presentations may be carried.
    pub carriage: SdCwtCarriage,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl fmt::Debug for SdCwtAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdCwtAuthConfig")
            .field("audience", &self.audience)
            .field("nonce", &self.nonce)
            .field("carriage", &self.carriage)
            .finish_non_exhaustive()
    }
}

impl SdCwtAuthConfig {
    /// Defaults for a service known as `audience`: no nonce, [`SdCwtPolicy::default`]
    /// (64 KiB, SD-KBTs at most 5 minutes old), header and body carriage, the system clock.
    pub fn new(audience: impl Into<String>) -> SdCwtAuthConfig {
        SdCwtAuthConfig {
            audience: audience.into(),
            nonce: NoncePolicy::None,
            policy: SdCwtPolicy::default(),
            carriage: SdCwtCarriage::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// The trusted SD-CWT issuer keys: every key of a COSE_KeySet or JWK Set, each for the
/// algorithm it names (or, without `alg`, every algorithm its key type fits), found by
/// `kid` and tied to the issuer name `iss` when one is given.
pub fn issuer_keys(
    set: &CoseKeySet,
    issuer: Option<&str>,
    provider: &dyn CryptoProvider,
) -> Result<Vec<IssuerKey>, CoreError> {
    let mut out = Vec::new();
    for key in &set.keys {
        let algs: Vec<Algorithm> = match key.alg {
            Some(alg) => vec![alg],
            None => Algorithm::every().collect(),
        };
        for alg in algs {
            let Ok(verifying) = key.verifying_key(provider, alg) else {
                continue;
            };
            let mut trusted = IssuerKey::new(verifying);
            if let Some(kid) = &key.kid {
                trusted = trusted.with_kid(kid.clone());
            }
            if let Some(iss) = issuer {
                trusted = trusted.with_issuer(iss);
            }
            out.push(trusted);
        }
    }
    if out.is_empty() {
        return Err(CoreError::InvalidKey(
            "no usable SD-CWT issuer key in the key set".into(),
        ));
    }
    Ok(out)
}

/// [`issuer_keys`] over a JWK Set.
pub fn issuer_keys_from_jwks(
    set: &JwkSet,
    issuer: Option<&str>,
    provider: &dyn CryptoProvider,
) -> Result<Vec<IssuerKey>, CoreError> {
    issuer_keys(&CoseKeySet::from_jwk_set(set)?, issuer, provider)
}

/// The claims a verified presentation disclosed, as a handler extractor: the issuer-signed
/// claims that were never redacted plus the redacted ones the holder chose to disclose.
/// Undisclosed claims are not here in any form.
#[derive(Clone, Debug)]
pub struct DisclosedClaims {
    claims: Value,
    standard: StandardClaims,
    holder_key: CoseKey,
    disclosed: usize,
}

impl DisclosedClaims {
    /// The claims map (CBOR; redactions removed).
    pub fn claims(&self) -> &Value {
        &self.claims
    }

    /// A claim by text key.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.claims.get(&Value::text(name))
    }

    /// A claim by integer label.
    pub fn get_label(&self, label: i64) -> Option<&Value> {
        self.claims.get_int(label)
    }

    /// The registered claims (`iss`, `sub`, times, …).
    pub fn standard(&self) -> &StandardClaims {
        &self.standard
    }

    /// The holder's key (`cnf`), which signed the presentation.
    pub fn holder_key(&self) -> &CoseKey {
        &self.holder_key
    }

    /// How many redacted claims the holder disclosed.
    pub fn disclosed_count(&self) -> usize {
        self.disclosed
    }

    /// The claims as JSON, with registered and OIDC-CWT labels named
    /// (draft-ietf-spice-oidc-cwt), without `cnf` (see [`DisclosedClaims::holder_key`])
    /// and `cti` (see [`DisclosedClaims::standard`]). Fails on a claim that has no JSON
    /// form (an unnamed integer label, a byte string).
    pub fn to_json(&self) -> Result<serde_json::Map<String, serde_json::Value>, CoreError> {
        let entries = self.claims.as_map().unwrap_or_default();
        let without_cnf = Value::Map(
            entries
                .iter()
                .filter(|(k, _)| !matches!(k.as_i64(), Some(label::CNF | label::CTI)))
                .cloned()
                .collect(),
        );
        lanyard_core::spice::oidc_claims::cbor_to_json(&without_cnf)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for DisclosedClaims {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<DisclosedClaims>().cloned().ok_or_else(|| {
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "not_configured",
                "the route has no SdCwtLayer",
                &HeaderMap::new(),
            )
        })
    }
}

/// Why a presentation was refused: the one error type of this module, mapped to `401`
/// in [`Rejection::into_response`].
enum Rejection {
    /// No presentation in any enabled carriage.
    Missing,
    /// A presentation that is badly carried (two fields, header and body, bad base64url).
    Carriage(&'static str),
    /// The presentation failed verification (or the nonce check).
    Failed(CoreError),
}

impl Rejection {
    fn into_response(self) -> Response {
        let (kind, detail) = match &self {
            Rejection::Missing => (
                "missing_credentials",
                "an SD-CWT presentation is required (Authorization: SD-KBT, or an application/kb+cwt body)".to_owned(),
            ),
            Rejection::Carriage(detail) => ("invalid_request", (*detail).to_owned()),
            Rejection::Failed(e) => (e.kind(), e.to_string()),
        };
        metrics::counter!("lanyard_sd_cwt_auth_total", "outcome" => kind).increment(1);
        tracing::info!(kind, "SD-CWT presentation refused");
        let mut challenge = HeaderMap::new();
        challenge.insert(WWW_AUTHENTICATE, HeaderValue::from_static(SD_KBT_SCHEME));
        problem(StatusCode::UNAUTHORIZED, kind, &detail, &challenge)
    }
}

struct Shared {
    config: SdCwtAuthConfig,
    verifier: SdCwtVerifier,
}

/// The tower layer that verifies SD-CWT presentations. Cheap to clone.
#[derive(Clone)]
pub struct SdCwtLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for SdCwtLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdCwtLayer")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl SdCwtLayer {
    /// A layer trusting `issuers` (see [`issuer_keys`]).
    pub fn new(provider: Arc<dyn CryptoProvider>, issuers: Vec<IssuerKey>, config: SdCwtAuthConfig) -> SdCwtLayer {
        let verifier = issuers
            .into_iter()
            .fold(SdCwtVerifier::new(provider, config.policy.clone()), |v, k| {
                v.with_issuer(k)
            });
        SdCwtLayer {
            shared: Arc::new(Shared { config, verifier }),
        }
    }
}

impl<S> Layer<S> for SdCwtLayer {
    type Service = SdCwtAuth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GuardService::new(inner, self.clone())
    }
}

/// The service [`SdCwtLayer`] produces.
pub type SdCwtAuth<S> = GuardService<S, SdCwtLayer>;

impl Guard for SdCwtLayer {
    type Pass = ();

    async fn admit(&self, request: Request<Body>) -> Result<(Request<Body>, ()), Response> {
        match self.shared.authenticate(request).await {
            Ok(request) => Ok((request, ())),
            Err(rejection) => Err(rejection.into_response()),
        }
    }
}

impl Shared {
    async fn authenticate(&self, mut request: Request<Body>) -> Result<Request<Body>, Rejection> {
        for (name, value) in request.headers_mut().iter_mut() {
            if name == AUTHORIZATION {
                value.set_sensitive(true);
            }
        }
        let presentation = self.take_presentation(&mut request).await?;
        let now = self.config.clock.now();
        let context = PresentationContext {
            audience: &self.config.audience,
            nonce: None,
        };
        let verified = self
            .verifier
            .verify(&presentation, &context, now)
            .map_err(Rejection::Failed)?;
        if let NoncePolicy::Required(source) = &self.config.nonce {
            let fresh = verified
                .kbt
                .cnonce
                .as_deref()
                .is_some_and(|nonce| source.redeem(nonce, now));
            if !fresh {
                return Err(Rejection::Failed(CoreError::SdCwt {
                    kind: SdCwtErrorKind::NonceMismatch,
                    detail: "cnonce is missing, unknown, expired or already used".into(),
                }));
            }
        }
        metrics::counter!("lanyard_sd_cwt_auth_total", "outcome" => "ok").increment(1);
        tracing::debug!(
            iss = verified.standard.iss.as_deref().unwrap_or(""),
            disclosed = verified.disclosed,
            "SD-CWT presentation verified"
        );
        request.extensions_mut().insert(DisclosedClaims {
            claims: verified.claims,
            standard: verified.standard,
            holder_key: verified.holder_key,
            disclosed: verified.disclosed,
        });
        Ok(request)
    }

    /// The SD-KBT bytes from the one carriage the request uses.
    async fn take_presentation(&self, request: &mut Request<Body>) -> Result<Vec<u8>, Rejection> {
        let carriage = self.config.carriage;
        let max = self.config.policy.max_size;
        let mut fields = request
            .headers()
            .get_all(AUTHORIZATION)
            .iter()
            .filter(|v| v.to_str().is_ok_and(scheme_matches));
        let field = if carriage.header { fields.next() } else { None };
        if carriage.header && fields.next().is_some() {
            return Err(Rejection::Carriage("more than one SD-KBT Authorization field"));
        }
        let in_body = carriage.body
            && request
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| {
                    ct.split(';')
                        .next()
                        .is_some_and(|t| t.trim().eq_ignore_ascii_case(KBT_MEDIA_TYPE))
                });
        match (field, in_body) {
            (Some(_), true) => Err(Rejection::Carriage(
                "an SD-KBT in both the Authorization field and the body",
            )),
            (Some(value), false) => {
                let text = value.to_str().unwrap_or_default();
                let encoded = text[SD_KBT_SCHEME.len()..].trim_start_matches(' ');
                if encoded.len() > max.div_ceil(3) * 4 {
                    return Err(Rejection::Failed(CoreError::TooLarge {
                        limit: max,
                        actual: encoded.len() / 4 * 3,
                    }));
                }
                URL_SAFE_NO_PAD
                    .decode(encoded)
                    .map_err(|_| Rejection::Carriage("the SD-KBT is not base64url without padding"))
            }
            (None, true) => {
                let body = std::mem::take(request.body_mut());
                let limited = http_body_util::Limited::new(body, max);
                match limited.collect().await {
                    Ok(collected) => Ok(collected.to_bytes().to_vec()),
                    Err(_) => Err(Rejection::Failed(CoreError::TooLarge {
                        limit: max,
                        actual: max + 1,
                    })),
                }
            }
            (None, false) => Err(Rejection::Missing),
        }
    }
}

/// Whether an `Authorization` value uses the SD-KBT scheme (case-insensitive, then a space).
fn scheme_matches(value: &str) -> bool {
    value.len() > SD_KBT_SCHEME.len()
        && value.as_bytes()[SD_KBT_SCHEME.len()] == b' '
        && value.as_bytes()[..SD_KBT_SCHEME.len()].eq_ignore_ascii_case(SD_KBT_SCHEME.as_bytes())
}
