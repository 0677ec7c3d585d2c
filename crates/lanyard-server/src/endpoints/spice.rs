//! SD-CWT issuer metadata: Lanyard's profile of SPICE metadata discovery
//! (draft-steele-spice-metadata-discovery-01, an expired individual draft with no working
//! group successor as of 2026-12; the layout below is Lanyard's, following its
//! requirements: URL identifiers, sub-resources by reference only, purpose in the path,
//! content types negotiated by `Accept`, message-level integrity available).
//!
//! | path | what |
//! |---|---|
//! | `/` | the entity document (served by `public`): URLs only, keyed by purpose; this module adds `keys/sd-cwt`, `capabilities` and `nonce`. With `Accept: application/cwt`, the same document as a signed CWT |
//! | `/keys/sd-cwt` | the SD-CWT issuer's keys (PREPARED, ACTIVE, OLD): `application/jwk-set+json` (the default) or `application/cose-key-set` (a COSE_KeySet), by `Accept`; `kid` = the SD-CWT protected header's `kid` (UTF-8 bytes) |
//! | `/capabilities` | credential and presentation types, signature and digest algorithms, confirmation methods, the server's fact claims, the credential endpoint and its authentications; `application/json`, or a signed CWT with `Accept: application/cwt` |
//! | `POST /credentials/sd-cwt` | an SD-CWT (draft-ietf-spice-sd-cwt-08) for the calling workload, bound to a key it proved (see *The credential endpoint*); also served on the OAuth mutual-TLS listener. `application/sd-cwt` |
//! | `POST /nonce` | a fresh verifier nonce for an SD-KBT `cnonce` (`{"c_nonce": base64url, "c_nonce_expires_in": s}`, `Cache-Control: no-store`); single replica, in memory |
//!
//! **Signed documents.** A signed response is a COSE_Sign1 (tag 18) with `typ` 61
//! (`application/cwt`) and `kid`, signed by the ACTIVE SD-CWT issuer key, whose payload is
//! a CWT claims set: `iss` (the public URL), `iat`, `exp` (5 minutes, never past the key's
//! life) and `"document"`: the JSON document converted to CBOR (text keys kept). A relying
//! party verifies it with a key from `/keys/sd-cwt`.
//!
//! Anything else in `Accept` is `406 Not Acceptable`; responses carry `Vary: Accept`.
//!
//! **The credential endpoint.** `POST /credentials/sd-cwt` accepts one of three
//! authentications, each binding the SD-CWT's `cnf` (a COSE_Key, RFC 8747) to a key the
//! caller proved; the first that the request carries is used:
//!
//! | authentication | identity | `cnf` |
//! |---|---|---|
//! | WIT-SVID + WPT (`Workload-Identity-Token`, `Authorization: WPT`; draft-ietf-wimse-wpt-02), WPT `aud` = the URL the request was sent to | the WIT's `sub` | the WIT's `cnf.jwk` |
//! | an access token of this server's OAuth AS (RFC 9068), `aud` containing `<public URL>/credentials/sd-cwt`, sender-constrained: `Authorization: DPoP` with a `DPoP` proof (RFC 9449 §7.1: `htm` POST, `htu` the URL the request was sent to, `ath`, key = `cnf.jkt`), or certificate-bound (RFC 8705 §3: `cnf.x5t#S256` = the client certificate, on the mutual-TLS listener) | the token's `sub`: a SPIFFE ID that the token's client (`client_id`) is registered for (its `spiffe_ids`); a client named like a SPIFFE ID is not enough | the DPoP proof's `jwk`, or the certificate's key |
//! | an X.509-SVID as the TLS client certificate on the mutual-TLS listener: chained to this trust domain's (or a federated one's) bundle, exactly one SPIFFE URI SAN, clientAuth | the URI SAN | the certificate's public key |
//!
//! Answers (errors are `application/problem+json` with a stable `kind`):
//!
//! | status | when |
//! |---|---|
//! | 200 | the SD-CWT (`Cache-Control: no-store`) |
//! | 400 | a malformed `Authorization`/`DPoP` field (`invalid_request`, RFC 6750 §3.1); a holder key that cannot be a COSE_Key |
//! | 401 + `WWW-Authenticate: WPT` and `DPoP algs=...` | no credentials; a WIT or WPT that does not verify or a replayed WPT (`kind` from the verifier, e.g. `replay`); on the mutual-TLS listener, no client certificate (`empty_chain`), one from a foreign CA (`bad_chain`, `unknown_trust_domain`), two URI SANs (`multiple_uri_sans`) |
//! | 401 + `WWW-Authenticate: DPoP` or `Bearer` with `error` | a refused access token (`invalid_token`: bad signature, issuer, audience, expired, revoked, not sender-constrained — a bearer token is refused, the credential must be key-bound; `invalid_dpop_proof`: a bad or replayed proof, a proof key other than `cnf.jkt`; `use_dpop_nonce` with `DPoP-Nonce` when nonces are required) |
//! | 403 | an authenticated identity without an entry (or outside this trust domain, or a token `sub` that is not a SPIFFE ID registered for the token's client) |
//! | 409 | an identity with several entries (one per node): fetch the SD-CWT through the agent |
//!
//! Nothing cacheable is redone per request: the WIT verifier's trust store is updated only
//! when the bundle's `spiffe_sequence` changes (one read of the sequence per request), and
//! WPT and DPoP proof `jti`s are recorded in the datastore's shared
//! [`JtiStore`](crate::datastore::JtiStore), so every replica refuses a replay, also after
//! a restart; access-token keys and client-certificate bundles are the authorization
//! server's, kept parsed in memory.
//!
//! Every request writes one audit line (target `audit`: the authentication method, the
//! subject once known, `ok` or the error's `kind`; never a token).

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lanyard_core::cbor::Value;
use lanyard_core::cose::{CoseKeySet, CoseSign1, header as cose_header};
use lanyard_core::cwt::label;
use lanyard_core::oauth::{PresentedAccessToken, TokenScheme, extract_access_token};
use lanyard_core::spice::nonce::{InMemoryNonceSource, NonceSource};
use lanyard_core::spice::oidc_claims;
use lanyard_core::spice::sd_cwt::{KBT_MEDIA_TYPE, KBT_TYP, SD_CWT_MEDIA_TYPE, SD_CWT_TYP};
use lanyard_core::wimse::{
    AUTHORIZATION, CarriageConfig, WORKLOAD_IDENTITY_TOKEN, extract_credentials, is_wpt_authorization,
};
use lanyard_core::{
    Algorithm, Jwk, ProofTokens, ReplayCache, SpiffeId, TrustStore, UnixTime, WitPolicy, WitVerifier, WptPolicy,
    WptVerifier,
};
use lanyard_net::PeerCertificates;
use rustls::pki_types::CertificateDer;
use serde_json::{Value as Json, json};

use super::oauth::EndpointBase;
use crate::audit;
use crate::datastore::EntryFilter;
use crate::error::ServerError;
use crate::model::AuthorityKind;
use crate::oauth::{AuthorizationServer, ResourceRequest};
use crate::sdcwt::FACT_CLAIMS;
use crate::state::AppState;

/// The media type of a JWK Set.
const JWK_SET: &str = "application/jwk-set+json";
/// The media type of a COSE_KeySet (RFC 9052 §7, IANA media types).
const COSE_KEY_SET: &str = "application/cose-key-set";
/// The media type of a CWT (RFC 8392 §9.1).
const CWT: &str = "application/cwt";
/// The CoAP Content-Format of `application/cwt`, the signed documents' `typ`.
const CWT_TYP: i64 = 61;
/// How long a signed document is valid.
const SIGNED_TTL: u64 = 300;
/// How long a verifier nonce is valid.
const NONCE_TTL: u64 = 300;
/// The most nonces outstanding at once.
const MAX_NONCES: usize = 100_000;
/// The credential endpoint's path.
pub const CREDENTIAL_PATH: &str = "/credentials/sd-cwt";
/// The credential endpoint's authentications, as the capabilities document names them
/// (Lanyard's names: the metadata-discovery draft has none).
const CREDENTIAL_AUTH_METHODS: [&str; 4] = [
    "wit_wpt",
    "dpop_bound_access_token",
    "certificate_bound_access_token",
    "spiffe_x509",
];
/// How many verified WITs the credential endpoint keeps (one signature check per WIT).
const WIT_CACHE: usize = 10_000;

/// The SD-CWT metadata routes (merged into the public router).
pub fn router(state: &AppState) -> Router<AppState> {
    let nonces: Arc<dyn NonceSource> = Arc::new(InMemoryNonceSource::new(
        Arc::clone(&state.crypto),
        NONCE_TTL,
        MAX_NONCES,
    ));
    Router::new()
        .route("/keys/sd-cwt", get(keys))
        .route("/capabilities", get(capabilities))
        .route(
            "/nonce",
            post(move |State(s): State<AppState>| {
                let nonces = Arc::clone(&nonces);
                async move { nonce(&s, nonces.as_ref()) }
            }),
        )
}

/// The entity document's links to this module's resources.
pub fn entity_links(public_url: &str) -> [(&'static str, String); 3] {
    [
        ("keys/sd-cwt", format!("{public_url}/keys/sd-cwt")),
        ("capabilities", format!("{public_url}/capabilities")),
        ("nonce", format!("{public_url}/nonce")),
    ]
}

/// The first of `offered` the client accepts (in the client's order; `*/*`, `type/*` or
/// no `Accept` picks the first offered), or `None` (406). Parameters other than `q=0`
/// are ignored.
fn negotiate(headers: &HeaderMap, offered: &[&'static str]) -> Option<&'static str> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return offered.first().copied();
    };
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        if parts.any(|p| p.replace(' ', "") == "q=0") {
            continue;
        }
        let found = offered.iter().find(|o| {
            media == **o || media == "*/*" || media.strip_suffix("/*").is_some_and(|t| o.split('/').next() == Some(t))
        });
        if let Some(found) = found {
            return Some(found);
        }
    }
    None
}

fn respond(content_type: &'static str, body: Vec<u8>) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("accept"));
    r
}

fn not_acceptable(offered: &[&str]) -> Response {
    let mut r = (
        StatusCode::NOT_ACCEPTABLE,
        format!("acceptable: {}", offered.join(", ")),
    )
        .into_response();
    r.headers_mut().insert(header::VARY, HeaderValue::from_static("accept"));
    r
}

/// `/keys/sd-cwt`.
async fn keys(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ServerError> {
    const OFFERED: [&str; 3] = [JWK_SET, "application/json", COSE_KEY_SET];
    let Some(media) = negotiate(&headers, &OFFERED) else {
        return Ok(not_acceptable(&OFFERED));
    };
    let jwks = s.keys.jwks(AuthorityKind::SdCwt).await?;
    if media == COSE_KEY_SET {
        let mut set = CoseKeySet::from_jwk_set(&jwks)?;
        for key in &mut set.keys {
            key.alg.get_or_insert(Algorithm::ES256);
        }
        return Ok(respond(COSE_KEY_SET, set.to_vec()));
    }
    Ok(respond(JWK_SET, jwks.to_json_pretty().into_bytes()))
}

/// The capabilities document.
fn capabilities_document(s: &AppState) -> Json {
    let u = &s.public_url;
    let algs: Vec<Json> = Algorithm::every()
        .map(|a| json!({"name": a.as_str(), "cose": a.cose_id()}))
        .collect();
    json!({
        "id": u,
        "credential_types": [{"media_type": SD_CWT_MEDIA_TYPE, "typ": SD_CWT_TYP}],
        "presentation_types": [{"media_type": KBT_MEDIA_TYPE, "typ": KBT_TYP}],
        "alg_values_supported": [{"name": "ES256", "cose": Algorithm::ES256.cose_id()}],
        "kbt_alg_values_supported": algs,
        "sd_alg_values_supported": [{"name": "sha-256", "cose": -16}],
        "sd_digest_input": "full-item",
        "sd_aead_values_supported": [],
        "cnf_methods_supported": ["COSE_Key"],
        "fact_claims": FACT_CLAIMS,
        "keys/sd-cwt": format!("{u}/keys/sd-cwt"),
        "nonce": format!("{u}/nonce"),
        "credential_endpoint": format!("{u}{CREDENTIAL_PATH}"),
        "credential_endpoint_auth_methods_supported": CREDENTIAL_AUTH_METHODS,
    })
}

/// `/capabilities`.
async fn capabilities(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ServerError> {
    document(&s, &headers, capabilities_document(&s)).await
}

/// Serves `doc` as JSON or, when asked, as a signed CWT.
pub async fn document(s: &AppState, headers: &HeaderMap, doc: Json) -> Result<Response, ServerError> {
    const OFFERED: [&str; 2] = ["application/json", CWT];
    match negotiate(headers, &OFFERED) {
        Some(CWT) => Ok(respond(CWT, signed(s, &doc).await?)),
        Some(_) => Ok(respond("application/json", doc.to_string().into_bytes())),
        None => Ok(not_acceptable(&OFFERED)),
    }
}

/// `doc` in a CWT signed by the ACTIVE SD-CWT issuer key.
async fn signed(s: &AppState, doc: &Json) -> Result<Vec<u8>, ServerError> {
    let now = s.clock.now();
    let ttl = SIGNED_TTL.min(s.keys.max_ttl(AuthorityKind::SdCwt, now).await?);
    let (key, kid) = s.keys.sd_cwt_signer().await?;
    let mut wrapped = serde_json::Map::new();
    wrapped.insert("document".into(), doc.clone());
    let document = oidc_claims::json_to_cbor(&wrapped)?;
    let time = |t: UnixTime| Value::int(i64::try_from(t.as_secs()).unwrap_or(i64::MAX));
    let mut claims = vec![
        (Value::int(label::ISS), Value::text(s.public_url.as_str())),
        (Value::int(label::IAT), time(now)),
        (Value::int(label::EXP), time(now.plus(ttl))),
    ];
    claims.extend(document.as_map().unwrap_or_default().iter().cloned());
    let protected = vec![
        (Value::int(cose_header::KID), Value::bytes(kid.into_bytes())),
        (Value::int(cose_header::TYP), Value::int(CWT_TYP)),
    ];
    let token = CoseSign1::sign(protected, Vec::new(), Value::Map(claims).to_vec(), key.as_ref())?;
    Ok(token.to_vec())
}

/// `POST /nonce`.
fn nonce(s: &AppState, nonces: &dyn NonceSource) -> Result<Response, ServerError> {
    let nonce = nonces.issue(s.clock.now())?;
    let body = json!({
        "c_nonce": URL_SAFE_NO_PAD.encode(&nonce),
        "c_nonce_expires_in": NONCE_TTL,
    });
    let mut r = respond("application/json", body.to_string().into_bytes());
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// The `POST /credentials/sd-cwt` route (see the module documentation), for the public
/// listener and the OAuth mutual-TLS listener (clone the router for both: they then share
/// the trust store).
pub fn credential_router(oauth: Arc<AuthorizationServer>) -> Router {
    Router::new()
        .route(CREDENTIAL_PATH, post(credential))
        .with_state(Arc::new(CredentialEndpoint::new(oauth)))
}

/// What the credential endpoint keeps between requests.
struct CredentialEndpoint {
    oauth: Arc<AuthorizationServer>,
    /// This trust domain's WIT authorities, updated when the bundle changes.
    trust: Arc<TrustStore>,
    /// The `spiffe_sequence` of the bundle `trust` holds.
    sequence: Mutex<Option<u64>>,
    /// WIT-SVID + WPT verification over `trust`, with a cache of verified WITs.
    wpt: WptVerifier,
}

/// The WPT verifier's replay hook accepts every proof: the endpoint records each verified
/// proof in the shared [`JtiStore`](crate::datastore::JtiStore) itself, right after
/// verification (the store is asynchronous, the hook is not).
#[derive(Debug)]
struct RecordedInSharedStore;

impl ReplayCache for RecordedInSharedStore {
    fn check_and_record(&self, _: &str, _: &str, _: UnixTime, _: UnixTime) -> Result<(), lanyard_core::Error> {
        Ok(())
    }
}

/// A caller the endpoint authenticated: its identity and the key it proved.
struct Caller {
    subject: String,
    key: Jwk,
}

impl CredentialEndpoint {
    fn new(oauth: Arc<AuthorizationServer>) -> CredentialEndpoint {
        let state = oauth.state();
        let trust = Arc::new(TrustStore::new(Arc::clone(&state.crypto)));
        let wit = WitVerifier::new(Arc::clone(&trust), WitPolicy::wit_svid()).with_cache(WIT_CACHE);
        CredentialEndpoint {
            wpt: WptVerifier::new(wit, WptPolicy::default(), Arc::new(RecordedInSharedStore)),
            trust,
            sequence: Mutex::new(None),
            oauth,
        }
    }

    fn state(&self) -> &AppState {
        self.oauth.state()
    }

    /// Brings the trust store up to the stored bundle when its sequence moved.
    async fn refresh_trust(&self) -> Result<(), ServerError> {
        let s = self.state();
        let current = s.stores.authorities.bundle_sequence().await?;
        if *self.sequence.lock().unwrap_or_else(PoisonError::into_inner) == Some(current) {
            return Ok(());
        }
        let bundle = s.keys.bundle().await?;
        self.trust.set_bundle(&bundle)?;
        *self.sequence.lock().unwrap_or_else(PoisonError::into_inner) = bundle.sequence;
        Ok(())
    }

    /// WIT-SVID + WPT for a request sent to `uri`; the proof is spent in the shared store.
    async fn wit_and_wpt(&self, headers: &HeaderMap, uri: &str, now: UnixTime) -> Result<Caller, ServerError> {
        let view: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
        let presented = extract_credentials(view.iter().copied(), &CarriageConfig::default())
            .map_err(ServerError::Unauthenticated)?;
        self.refresh_trust().await?;
        let tokens = ProofTokens {
            wit: presented.wit,
            wpt: presented.wpt,
            access_token: presented.access_token,
            txn_token: presented.txn_token,
            other_tokens: &[],
        };
        let proof = self
            .wpt
            .verify(&tokens, uri, now)
            .map_err(ServerError::Unauthenticated)?;
        let sender = proof.wit.sub.as_str();
        let key = self.oauth.replay_key("wpt", sender, &proof.wpt.jti);
        let until = proof.wpt.exp.plus(WptPolicy::default().leeway);
        if !self.state().stores.jtis.record_jti(&key, until, now).await? {
            return Err(ServerError::Unauthenticated(lanyard_core::Error::Replay {
                issuer: sender.to_owned(),
                jti: proof.wpt.jti.clone(),
            }));
        }
        Ok(Caller {
            subject: sender.to_owned(),
            key: proof.wit.cnf_jwk.clone(),
        })
    }

    /// A sender-constrained access token of this server's AS.
    async fn access_token(
        &self,
        presented: &PresentedAccessToken<'_>,
        uri: &str,
        leaf: Option<&[u8]>,
        now: UnixTime,
    ) -> Result<Caller, ServerError> {
        let s = self.state();
        let audience = format!("{}{CREDENTIAL_PATH}", s.public_url.trim_end_matches('/'));
        let request = ResourceRequest {
            audience: &audience,
            method: "POST",
            uri,
            client_certificate: leaf,
        };
        let nonce = s.config.oauth.require_dpop_nonce.then(|| self.oauth.dpop_nonce(now));
        let token = self
            .oauth
            .verify_bound_token(presented, &request, now)
            .await
            .map_err(|e| e.at_resource(presented.scheme, nonce))?;
        let key = match (token.dpop, leaf) {
            (Some(proof), _) => proof.jwk,
            // Certificate-bound: verify_bound_token matched the certificate's hash.
            (None, Some(leaf)) => certificate_key(leaf)?,
            (None, None) => {
                return Err(crate::oauth::OAuthError::AccessTokenUnbound.at_resource(presented.scheme, None));
            }
        };
        // A client_id that merely looks like a SPIFFE ID proves nothing: the subject must be
        // one the token's client is registered to authenticate as (its `spiffe_ids`).
        let authorized = match SpiffeId::parse(&token.claims.sub) {
            Ok(id) => s
                .stores
                .clients
                .get_client(&token.claims.client_id)
                .await?
                .is_some_and(|client| client.spec.spiffe_ids.iter().any(|p| p.matches(&id))),
            Err(_) => false,
        };
        if !authorized {
            return Err(ServerError::PermissionDenied(format!(
                "the access token's subject is not a SPIFFE ID registered for its client {:?} (spiffe_ids)",
                token.claims.client_id
            )));
        }
        Ok(Caller {
            subject: token.claims.sub,
            key,
        })
    }

    /// An X.509-SVID client certificate from the mutual-TLS listener.
    fn certificate(&self, chain: &[CertificateDer<'static>], now: UnixTime) -> Result<Caller, ServerError> {
        let svid = self
            .oauth
            .verify_client_svid(chain, now)
            .map_err(ServerError::ClientCertificate)?;
        let leaf = chain.first().map(|c| c.as_ref()).unwrap_or_default();
        Ok(Caller {
            subject: svid.spiffe_id.as_str().to_owned(),
            key: certificate_key(leaf)?,
        })
    }
}

/// The public key of a certificate (DER) as a JWK.
fn certificate_key(der: &[u8]) -> Result<Jwk, ServerError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| ServerError::Invalid(format!("client certificate: {e}")))?;
    lanyard_x509::public_key_jwk(cert.public_key().raw).map_err(ServerError::ClientCertificate)
}

/// What the audit line of a credential request names.
struct Seen {
    /// How the caller authenticated (`wit_wpt`, `dpop_access_token`,
    /// `bearer_access_token`, `spiffe_x509`, `none`).
    method: &'static str,
    /// The authenticated subject, once known.
    subject: Option<String>,
}

/// `POST /credentials/sd-cwt`: one audit line per request (never a token) around [`issue`].
async fn credential(State(c): State<Arc<CredentialEndpoint>>, request: Request<Body>) -> Result<Response, ServerError> {
    let mut seen = Seen {
        method: "none",
        subject: None,
    };
    let result = issue(&c, request, &mut seen).await;
    let outcome = result.as_ref().map_or_else(ServerError::kind, |_| "ok");
    audit::credential(seen.method, seen.subject.as_deref().unwrap_or("-"), outcome);
    result
}

/// Authenticates the caller (WIT-SVID + WPT, a sender-constrained access token, or an
/// X.509-SVID on the mutual-TLS listener), finds its one entry, and issues an SD-CWT bound
/// to the key it proved.
async fn issue(c: &CredentialEndpoint, request: Request<Body>, seen: &mut Seen) -> Result<Response, ServerError> {
    let (parts, _) = request.into_parts();
    let headers = &parts.headers;
    let s = c.state();
    let now = s.clock.now();
    let base = parts.extensions.get::<EndpointBase>().map(|b| b.0.as_str());
    let on_mtls = base.is_some();
    let uri = format!(
        "{}{CREDENTIAL_PATH}",
        base.unwrap_or(s.public_url.as_str()).trim_end_matches('/')
    );
    let chain = parts
        .extensions
        .get::<PeerCertificates>()
        .map(|p| &*p.0)
        .filter(|c| !c.is_empty());
    let wpt = headers.contains_key(WORKLOAD_IDENTITY_TOKEN)
        || headers
            .get_all(AUTHORIZATION)
            .iter()
            .any(|v| v.to_str().is_ok_and(is_wpt_authorization));
    let caller = if wpt {
        seen.method = "wit_wpt";
        c.wit_and_wpt(headers, &uri, now).await?
    } else {
        let view: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
        let presented = extract_access_token(view.iter().copied())
            .map_err(|e| crate::oauth::OAuthError::Request(e).at_resource(TokenScheme::Dpop, None))?;
        match (presented, chain) {
            (Some(token), chain) => {
                seen.method = match token.scheme {
                    TokenScheme::Dpop => "dpop_access_token",
                    TokenScheme::Bearer => "bearer_access_token",
                };
                let leaf = chain.and_then(<[_]>::first).map(|c| c.as_ref());
                c.access_token(&token, &uri, leaf, now).await?
            }
            (None, Some(chain)) => {
                seen.method = "spiffe_x509";
                c.certificate(chain, now)?
            }
            (None, None) if on_mtls => return Err(ServerError::ClientCertificate(lanyard_x509::Error::EmptyChain)),
            (None, None) => {
                return Err(ServerError::Unauthenticated(lanyard_core::Error::Header {
                    name: WORKLOAD_IDENTITY_TOKEN,
                    reason: "missing (present a WIT-SVID and a WPT, a DPoP-bound access token, or an X.509-SVID on the mutual-TLS listener)",
                }));
            }
        }
    };
    seen.subject = Some(caller.subject.clone());
    let Ok(subject) = SpiffeId::parse(&caller.subject) else {
        return Err(ServerError::PermissionDenied(
            "the authenticated subject is not a SPIFFE ID".into(),
        ));
    };
    let filter = EntryFilter {
        parent_id: None,
        spiffe_id: Some(subject.as_str().to_owned()),
    };
    let mut entries = s.stores.entries.list_entries(&filter).await?;
    let entry = match (entries.pop(), entries.is_empty()) {
        (Some(entry), true) => entry,
        (None, _) => {
            return Err(ServerError::PermissionDenied(format!("{subject} has no entry")));
        }
        (Some(_), false) => {
            return Err(ServerError::Conflict(format!(
                "{subject} has several entries (one per node); fetch the SD-CWT through the agent"
            )));
        }
    };
    let minted = crate::sdcwt::mint_sd_cwt(s, &entry, &caller.key, None).await?;
    let mut r = respond(SD_CWT_MEDIA_TYPE, minted.token);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
