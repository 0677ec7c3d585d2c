//! The public endpoints and the admin API, in-process (`tower::ServiceExt::oneshot`):
//! what a relying party fetches, what an operator can do, and how bad input is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use lanyard_core::{
    Algorithm, JwkSet, JwtSvidPolicy, JwtSvidVerifier, KeyUse, SpiffeBundle, TrustDomain, TrustStore, WitPolicy,
    WitVerifier,
};
use lanyard_server::ServerConfig;
use lanyard_server::ca::{KeyManager, KeyManagerConfig, KeyStorage};
use lanyard_server::datastore::{DataStore, SqlDataStore, Stores};
use lanyard_server::endpoints::{admin, public, spice};
use lanyard_server::state::AppState;
use lanyard_testing::{NOW, fixed_clock};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Fixture {
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn DataStore> = Arc::new(
        SqlDataStore::connect("sqlite::memory:", lanyard_crypto::provider())
            .await
            .unwrap(),
    );
    let td = TrustDomain::parse("example.org").unwrap();
    let keys = Arc::new(KeyManager::new(
        store.clone(),
        KeyManagerConfig::new(td.clone(), KeyStorage::Files(dir.path().join("keys"))),
        lanyard_crypto::provider(),
    ));
    keys.rotate(NOW).await.unwrap();
    let state = AppState {
        config: Arc::new(ServerConfig::default()),
        trust_domain: td,
        stores: Stores::new(store),
        keys,
        clock: fixed_clock(),
        crypto: lanyard_crypto::provider(),
        public_url: "https://lanyard.example.org".into(),
    };
    Fixture { state, _dir: dir }
}

async fn call(app: &Router, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value, String) {
    let mut req = Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let (status, headers, bytes) = raw(app, req).await;
    let content_type = header(&headers, "content-type");
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value, content_type)
}

/// Sends `req`; the status, headers and body bytes.
async fn raw(app: &Router, req: Request<Body>) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, bytes)
}

/// A header's value as text ("" when absent).
fn header(headers: &http::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn public_endpoints_publish_what_relying_parties_need() {
    let f = fixture().await;
    let app = public::router(f.state.clone(), None);

    let (status, bundle, ct) = call(&app, "GET", "/bundle", None).await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "application/json"));
    let td = TrustDomain::parse("example.org").unwrap();
    let parsed = SpiffeBundle::parse(td, bundle.to_string().as_bytes()).unwrap();
    assert_eq!(
        (
            parsed.x509_authorities.len(),
            parsed.jwt_authorities.len(),
            parsed.wit_authorities.len()
        ),
        (1, 1, 1)
    );
    assert!(parsed.sequence.unwrap() >= 1);
    assert_eq!(parsed.refresh_hint, Some(300));

    for path in ["/keys/wit", "/keys/jwt-svid"] {
        let (status, jwks, ct) = call(&app, "GET", path, None).await;
        assert_eq!(
            (status, ct.as_str()),
            (StatusCode::OK, "application/jwk-set+json"),
            "{path}"
        );
        let set = JwkSet::from_json(jwks.to_string().as_bytes()).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert!(!set.keys[0].is_private(), "{path} must not publish private keys");
        assert!(set.keys[0].kid.is_some());
    }

    let (_, doc, _) = call(&app, "GET", "/.well-known/lanyard-configuration", None).await;
    assert_eq!(doc["issuer"], "https://lanyard.example.org");
    assert_eq!(doc["spiffe_bundle_endpoint"], "https://lanyard.example.org/bundle");
    assert_eq!(doc["spiffe_bundle_endpoint_profile"], "https_web");
    assert_eq!(doc["wit_jwks_uri"], "https://lanyard.example.org/keys/wit");
    let (_, entity, _) = call(&app, "GET", "/", None).await;
    assert_eq!(entity["keys/wit"], "https://lanyard.example.org/keys/wit");
    let (_, td_doc, ct) = call(&app, "GET", "/.well-known/wimse-trust-domain", None).await;
    assert_eq!(ct, "application/wimse-trust-domain-metadata+json");
    assert_eq!(td_doc["trust_domain"], "example.org");
    assert_eq!(call(&app, "GET", "/readyz", None).await.0, StatusCode::OK);
    assert_eq!(call(&app, "GET", "/healthz", None).await.0, StatusCode::OK);
}

/// The discovery document of a server with `public_url` and `bundle_endpoint_address`.
async fn discovery(public_url: &str, bundle_endpoint_address: Option<&str>) -> Value {
    let f = fixture().await;
    let config = ServerConfig {
        bundle_endpoint_address: bundle_endpoint_address.map(str::to_owned),
        ..ServerConfig::default()
    };
    let state = AppState {
        config: Arc::new(config),
        public_url: public_url.to_owned(),
        ..f.state.clone()
    };
    let app = public::router(state, None);
    let (status, doc, _) = call(&app, "GET", "/.well-known/lanyard-configuration", None).await;
    assert_eq!(status, StatusCode::OK);
    let nulls: Vec<&String> = doc
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v.is_null())
        .map(|(k, _)| k)
        .collect();
    assert!(nulls.is_empty(), "members published as null: {nulls:?} in {doc}");
    doc
}

#[tokio::test]
async fn discovery_publishes_the_bundle_endpoints_served_and_no_other() {
    // Plain HTTP and no https_spiffe endpoint: no SPIFFE bundle endpoint at all (the
    // https_web profile needs TLS), only the bundle document.
    let doc = discovery("http://127.0.0.1:8080", None).await;
    assert_eq!(doc["bundle_uri"], "http://127.0.0.1:8080/bundle");
    for member in [
        "spiffe_bundle_endpoint",
        "spiffe_bundle_endpoint_profile",
        "spiffe_bundle_endpoints",
    ] {
        assert!(doc.get(member).is_none(), "{member} in {doc}");
    }

    // The https_spiffe endpoint, on the public host when bound to every address.
    let doc = discovery("http://lanyard.example.org:8080", Some("0.0.0.0:8443")).await;
    let spiffe = json!({
        "url": "https://lanyard.example.org:8443/",
        "profile": "https_spiffe",
        "endpoint_spiffe_id": "spiffe://example.org/lanyard/server",
    });
    assert_eq!(doc["spiffe_bundle_endpoints"], json!([spiffe.clone()]), "{doc}");
    assert_eq!(doc["spiffe_bundle_endpoint"], "https://lanyard.example.org:8443/");
    assert_eq!(doc["spiffe_bundle_endpoint_profile"], "https_spiffe");
    assert_eq!(
        doc["spiffe_bundle_endpoint_spiffe_id"],
        "spiffe://example.org/lanyard/server"
    );

    // Both profiles; https_web first. A specific address is published as bound.
    let doc = discovery("https://lanyard.example.org", Some("192.0.2.7:8443")).await;
    let web = json!({"url": "https://lanyard.example.org/bundle", "profile": "https_web"});
    let mut spiffe = spiffe;
    spiffe["url"] = json!("https://192.0.2.7:8443/");
    assert_eq!(doc["spiffe_bundle_endpoints"], json!([web, spiffe]), "{doc}");
    assert_eq!(doc["spiffe_bundle_endpoint_profile"], "https_web");
    assert!(doc.get("spiffe_bundle_endpoint_spiffe_id").is_none(), "{doc}");
    let doc = discovery("https://lanyard.example.org", Some("[::]:8443")).await;
    assert_eq!(
        doc["spiffe_bundle_endpoints"][1]["url"],
        "https://lanyard.example.org:8443/"
    );
}

#[tokio::test]
async fn minted_credentials_verify_against_the_published_keys() {
    let f = fixture().await;
    let admin = admin::router(f.state.clone());
    let public = public::router(f.state.clone(), None);
    let workload = lanyard_crypto::provider().generate_key(Algorithm::ES256).unwrap();

    let (status, body, _) = call(
        &admin,
        "POST",
        "/v1/wits",
        Some(json!({"spiffe_id": "spiffe://example.org/web", "cnf": workload.public_jwk()})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let wit = body["wit"].as_str().unwrap().to_owned();

    let (_, bundle, _) = call(&public, "GET", "/bundle", None).await;
    let store = Arc::new(TrustStore::new(lanyard_crypto::provider()));
    let td = TrustDomain::parse("example.org").unwrap();
    store
        .set_bundle(&SpiffeBundle::parse(td, bundle.to_string().as_bytes()).unwrap())
        .unwrap();
    let verified = WitVerifier::new(store.clone(), WitPolicy::wit_svid())
        .verify(&wit, NOW)
        .unwrap();
    assert_eq!(verified.sub.as_str(), "spiffe://example.org/web");
    assert_eq!(verified.exp, NOW.plus(3600));
    assert_eq!(verified.iss.as_deref(), Some("https://lanyard.example.org"));

    let (status, body, _) = call(
        &admin,
        "POST",
        "/v1/jwt-svids",
        Some(json!({"spiffe_id": "spiffe://example.org/web", "audience": "db"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let svid = JwtSvidVerifier::new(store, JwtSvidPolicy::default())
        .verify(body["token"].as_str().unwrap(), "db", NOW)
        .unwrap();
    assert_eq!(svid.sub.as_str(), "spiffe://example.org/web");

    // Other trust domains, private keys and keys without alg are refused.
    let (status, body, _) = call(
        &admin,
        "POST",
        "/v1/wits",
        Some(json!({"spiffe_id": "spiffe://other.org/web", "cnf": workload.public_jwk()})),
    )
    .await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (StatusCode::FORBIDDEN, Some("permission_denied"))
    );
    let private = lanyard_crypto::KeyPair::generate(Algorithm::ES256)
        .unwrap()
        .private_jwk()
        .unwrap();
    let (status, _, _) = call(
        &admin,
        "POST",
        "/v1/wits",
        Some(json!({"spiffe_id": "spiffe://example.org/web", "cnf": private})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let mut no_alg = workload.public_jwk();
    no_alg.alg = None;
    let (status, body, _) = call(
        &admin,
        "POST",
        "/v1/wits",
        Some(json!({"spiffe_id": "spiffe://example.org/web", "cnf": no_alg})),
    )
    .await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_claim"))
    );
}

fn entry(spiffe_id: &str, selectors: Value) -> Value {
    json!({"spiffe_id": spiffe_id, "parent_id": "spiffe://example.org/agent/node-1", "selectors": selectors})
}

#[tokio::test]
async fn entries_are_validated_and_audited() {
    let f = fixture().await;
    let admin = admin::router(f.state.clone());
    let uid = json!([{"type": "unix", "value": "uid:1000"}]);

    let (status, created, ct) = call(
        &admin,
        "POST",
        "/v1/entries",
        Some(entry("spiffe://example.org/web", uid.clone())),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(ct, "application/json");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["revision"], 1);

    let bad = [
        (
            entry("spiffe://example.org/web", uid.clone()),
            StatusCode::CONFLICT,
            "duplicate",
        ),
        (
            entry("spiffe://other.org/web", uid.clone()),
            StatusCode::BAD_REQUEST,
            "foreign trust domain",
        ),
        (
            entry("spiffe://example.org/x", json!([{"type": "bogus", "value": "a"}])),
            StatusCode::BAD_REQUEST,
            "unknown selector type",
        ),
        (
            entry("spiffe://example.org/x", json!([])),
            StatusCode::BAD_REQUEST,
            "no selectors",
        ),
        (
            entry("spiffe://Example.org/x", uid.clone()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "non-canonical ID",
        ),
        (
            entry("spiffe://example.org", uid.clone()),
            StatusCode::BAD_REQUEST,
            "no path",
        ),
    ];
    for (body, expected, why) in bad {
        let (status, detail, _) = call(&admin, "POST", "/v1/entries", Some(body)).await;
        assert_eq!(status, expected, "{why}: {detail}");
    }
    let mut long_ttl = entry("spiffe://example.org/y", uid.clone());
    long_ttl["x509_svid_ttl"] = json!(86_400);
    assert_eq!(
        call(&admin, "POST", "/v1/entries", Some(long_ttl)).await.0,
        StatusCode::BAD_REQUEST
    );

    // Update with the right revision, then a stale one.
    let mut update = entry(
        "spiffe://example.org/web",
        json!([{"type": "unix", "value": "uid:1001"}]),
    );
    update["revision"] = json!(1);
    let (status, updated, _) = call(&admin, "PUT", &format!("/v1/entries/{id}"), Some(update.clone())).await;
    assert_eq!((status, updated["revision"].as_u64()), (StatusCode::OK, Some(2)));
    assert_eq!(
        call(&admin, "PUT", &format!("/v1/entries/{id}"), Some(update)).await.0,
        StatusCode::CONFLICT
    );

    let (_, list, _) = call(
        &admin,
        "GET",
        "/v1/entries?parent_id=spiffe%3A%2F%2Fexample.org%2Fagent%2Fnode-1",
        None,
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    // A batch with one bad entry creates nothing.
    let batch = json!([
        entry("spiffe://example.org/a", uid.clone()),
        entry("spiffe://example.org/b", json!([{"type": "nope", "value": "x"}]))
    ]);
    assert_eq!(
        call(&admin, "POST", "/v1/entries/batch", Some(batch)).await.0,
        StatusCode::BAD_REQUEST
    );
    let (_, all, _) = call(&admin, "GET", "/v1/entries", None).await;
    assert_eq!(all.as_array().unwrap().len(), 1);

    assert_eq!(
        call(&admin, "DELETE", &format!("/v1/entries/{id}"), None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&admin, "GET", &format!("/v1/entries/{id}"), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&admin, "DELETE", &format!("/v1/entries/{id}"), None).await.0,
        StatusCode::NOT_FOUND
    );

    // Oversized request bodies are refused before parsing.
    let huge = json!({"spiffe_id": "x".repeat(2 << 20)});
    assert_eq!(
        call(&admin, "POST", "/v1/entries", Some(huge)).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[tokio::test]
async fn join_tokens_are_one_time_and_stored_hashed() {
    let f = fixture().await;
    let admin = admin::router(f.state.clone());
    let (status, body, _) = call(&admin, "POST", "/v1/join-tokens", Some(json!({"ttl": 60}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.len(), 48);
    assert_eq!(body["expires_at"], NOW.plus(60).as_secs());
    let hash = lanyard_core::hex::encode(&lanyard_crypto::provider().sha256(token.as_bytes()));
    use lanyard_server::datastore::TokenUse;
    assert_eq!(
        f.state.stores.join_tokens.consume_join_token(&hash, NOW).await.unwrap(),
        TokenUse::Consumed
    );
    assert_eq!(
        f.state.stores.join_tokens.consume_join_token(&hash, NOW).await.unwrap(),
        TokenUse::Unknown
    );
    assert_eq!(
        call(&admin, "POST", "/v1/join-tokens", Some(json!({"ttl": 0}))).await.0,
        StatusCode::BAD_REQUEST
    );
    let _ = KeyUse::WitSvid;
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let f = fixture().await;
    let admin = admin::router(f.state.clone());
    let (status, doc, _) = call(&admin, "GET", "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/v1/entries",
        "/v1/entries/{id}",
        "/v1/entries/batch",
        "/v1/join-tokens",
        "/v1/agents",
        "/v1/agents/ban",
        "/v1/wits",
        "/v1/jwt-svids",
        "/v1/bundle",
        "/v1/oauth/clients",
        "/v1/oauth/clients/{client_id}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing from openapi.json");
    }
}

/// `GET path` with `Accept: accept`.
async fn get_as(app: &Router, path: &str, accept: &str) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let req = Request::get(path).header("accept", accept).body(Body::empty()).unwrap();
    raw(app, req).await
}

/// SPICE metadata discovery (Lanyard's profile): the entity document links the SD-CWT
/// resources; the issuer keys negotiate JWK Set vs COSE_KeySet; the entity document and
/// the capabilities come signed on request; the nonce endpoint hands out fresh nonces; an
/// SD-CWT the server issues verifies with the published COSE key.
#[tokio::test]
async fn sd_cwt_metadata_is_discoverable_and_signed() {
    use lanyard_core::cbor::{Limits, Value as Cbor};
    use lanyard_core::cose::{CoseKey, CoseKeySet, CoseSign1};
    use lanyard_core::spice::sd_cwt::{HolderSdCwt, SdCwtPolicy};

    let f = fixture().await;
    let app = public::router(f.state.clone(), None);
    let u = "https://lanyard.example.org";

    let (_, entity, ct) = call(&app, "GET", "/", None).await;
    assert_eq!(ct, "application/json");
    for (purpose, path) in [
        ("keys/sd-cwt", "/keys/sd-cwt"),
        ("capabilities", "/capabilities"),
        ("nonce", "/nonce"),
    ] {
        assert_eq!(entity[purpose], format!("{u}{path}"), "{purpose}");
    }
    assert!(
        entity.as_object().unwrap().values().all(Value::is_string),
        "URLs only: {entity}"
    );

    // Keys, by Accept.
    let (status, headers, body) = get_as(&app, "/keys/sd-cwt", "application/jwk-set+json").await;
    assert_eq!(
        (status, header(&headers, "content-type").as_str()),
        (StatusCode::OK, "application/jwk-set+json")
    );
    assert_eq!(header(&headers, "vary"), "accept");
    let jwks = JwkSet::from_json(&body).unwrap();
    assert_eq!(jwks.keys.len(), 1);
    assert!(!jwks.keys[0].is_private());
    let kid = jwks.keys[0].kid.clone().unwrap();
    let (status, headers, body) = get_as(&app, "/keys/sd-cwt", "text/html;q=0.9, application/cose-key-set").await;
    assert_eq!(
        (status, header(&headers, "content-type").as_str()),
        (StatusCode::OK, "application/cose-key-set")
    );
    let set = CoseKeySet::decode(&body).unwrap();
    let key = set.find(kid.as_bytes()).unwrap();
    assert_eq!(key.alg, Some(Algorithm::ES256));
    assert_eq!(
        get_as(&app, "/keys/sd-cwt", "text/html").await.0,
        StatusCode::NOT_ACCEPTABLE
    );
    assert_eq!(
        get_as(&app, "/keys/sd-cwt", "application/cose-key-set;q=0").await.0,
        StatusCode::NOT_ACCEPTABLE
    );
    // Not a SPIFFE trust anchor.
    let (_, bundle, _) = call(&app, "GET", "/bundle", None).await;
    assert!(
        !bundle.to_string().contains(&kid),
        "the SD-CWT key is not in the bundle"
    );

    // Capabilities, plain and signed.
    let (_, caps, _) = call(&app, "GET", "/capabilities", None).await;
    assert_eq!(caps["credential_types"][0]["typ"], 293);
    assert_eq!(caps["presentation_types"][0]["media_type"], "application/kb+cwt");
    assert_eq!(caps["sd_alg_values_supported"][0]["cose"], -16);
    assert_eq!(caps["cnf_methods_supported"], json!(["COSE_Key"]));
    assert_eq!(caps["nonce"], format!("{u}/nonce"));
    assert_eq!(caps["credential_endpoint"], format!("{u}/credentials/sd-cwt"));
    assert_eq!(
        caps["credential_endpoint_auth_methods_supported"],
        json!([
            "wit_wpt",
            "dpop_bound_access_token",
            "certificate_bound_access_token",
            "spiffe_x509"
        ])
    );
    let verifying = key
        .verifying_key(&*lanyard_crypto::provider(), Algorithm::ES256)
        .unwrap();
    for (path, field, expected) in [("/", "id", u), ("/capabilities", "id", u)] {
        let (status, headers, body) = get_as(&app, path, "application/cwt").await;
        assert_eq!(
            (status, header(&headers, "content-type").as_str()),
            (StatusCode::OK, "application/cwt"),
            "{path}"
        );
        let cwt = CoseSign1::decode(&body, &Limits::default()).unwrap();
        assert_eq!(cwt.kid(), Some(kid.as_bytes()));
        assert_eq!(cwt.protected_value(16).and_then(Cbor::as_i64), Some(61));
        cwt.verify(verifying.as_ref()).unwrap();
        let claims = lanyard_core::cbor::decode(cwt.payload()).unwrap();
        assert_eq!(claims.get_int(1).and_then(Cbor::as_text), Some(u));
        let doc = claims.get(&Cbor::text("document")).unwrap();
        assert_eq!(
            doc.get(&Cbor::text(field)).and_then(Cbor::as_text),
            Some(expected),
            "{path}"
        );
    }

    // Nonces: fresh each time, 16 bytes, not cached.
    let req = || Request::post("/nonce").body(Body::empty()).unwrap();
    let (status, headers, first) = raw(&app, req()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "cache-control"), "no-store");
    let (_, _, second) = raw(&app, req()).await;
    let nonce = |b: &[u8]| {
        serde_json::from_slice::<Value>(b).unwrap()["c_nonce"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_ne!(nonce(&first), nonce(&second));
    assert_eq!(nonce(&first).len(), 22, "16 bytes in base64url");

    // An issued SD-CWT verifies with the published COSE key.
    let spec: lanyard_server::model::EntrySpec = serde_json::from_value(json!({
        "spiffe_id": "spiffe://example.org/payments",
        "parent_id": "spiffe://example.org/lanyard/agent/join_token/aaaaaaaaaaaaaaaa",
        "selectors": [{"type": "unix", "value": "uid:1000"}],
        "claims": {"claims": {"env": "prod"}},
    }))
    .unwrap();
    let entry = f.state.stores.entries.create_entry(&spec, NOW).await.unwrap();
    assert_eq!(entry.claims.claims["env"], "prod");
    let holder = lanyard_crypto::KeyPair::generate(Algorithm::ES256).unwrap();
    let holder_jwk = lanyard_core::SigningKey::public_jwk(&holder);
    let minted = lanyard_server::sdcwt::mint_sd_cwt(&f.state, &entry, &holder_jwk, Some(60))
        .await
        .unwrap();
    assert_eq!(minted.expires_at, NOW.plus(60));
    let held = HolderSdCwt::receive(
        &minted.token,
        verifying.as_ref(),
        &CoseKey::from_jwk(&holder_jwk).unwrap(),
        &*lanyard_crypto::provider(),
        &SdCwtPolicy::default(),
        NOW,
    )
    .unwrap();
    assert_eq!(redacted(&held), 3, "env, node and selectors are redacted");
    let decoys = held.disclosures().len() - redacted(&held);
    assert_eq!(decoys, usize::from(lanyard_server::sdcwt::DEFAULT_DECOYS));
    let private = holder.private_jwk().unwrap();
    let err = lanyard_server::sdcwt::mint_sd_cwt(&f.state, &entry, &private, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("public key"), "{err}");
}

/// How many of a held SD-CWT's disclosures are claims or elements (not decoys).
fn redacted(held: &lanyard_core::spice::sd_cwt::HolderSdCwt) -> usize {
    use lanyard_core::spice::sd_cwt::DisclosureKind;
    held.disclosures()
        .iter()
        .filter(|d| *d.kind() != DisclosureKind::Decoy)
        .count()
}

/// The public router with the SD-CWT credential endpoint (as the composition root merges
/// it), over its own authorization server: one replica.
async fn replica(state: &AppState) -> Router {
    let oauth = lanyard_server::oauth::AuthorizationServer::new(state.clone(), None)
        .await
        .unwrap();
    public::router(state.clone(), None).merge(spice::credential_router(Arc::new(oauth)))
}

/// `POST /credentials/sd-cwt`: a workload authenticated with its WIT-SVID and a WPT gets an
/// SD-CWT about itself bound to the WIT's key; no or bad credentials are 401 with
/// `WWW-Authenticate: WPT` (and `DPoP`), an identity without an entry 403; a proof used on
/// one replica is refused on another (the shared jti store).
#[tokio::test]
async fn a_workload_with_a_wit_and_wpt_gets_its_sd_cwt() {
    use lanyard_core::cose::{CoseKey, CoseKeySet};
    use lanyard_core::spice::sd_cwt::{HolderSdCwt, SdCwtPolicy};
    use lanyard_core::{WorkloadId, WptParams, create_wpt};

    let f = fixture().await;
    let app = replica(&f.state).await;
    let other_replica = replica(&f.state).await;
    let audience = "https://lanyard.example.org/credentials/sd-cwt";
    let spec: lanyard_server::model::EntrySpec = serde_json::from_value(json!({
        "spiffe_id": "spiffe://example.org/payments",
        "parent_id": "spiffe://example.org/lanyard/agent/join_token/aaaaaaaaaaaaaaaa",
        "selectors": [{"type": "unix", "value": "uid:1000"}],
        "claims": {"claims": {"env": "prod"}, "always_disclosed": ["env"]},
    }))
    .unwrap();
    f.state.stores.entries.create_entry(&spec, NOW).await.unwrap();
    let provider = lanyard_crypto::provider();
    let workload = lanyard_crypto::KeyPair::generate(Algorithm::ES256).unwrap();
    let public_jwk = lanyard_core::SigningKey::public_jwk(&workload);
    let request = |id: &str| {
        let sub = WorkloadId::parse(id).unwrap();
        let state = f.state.clone();
        let public_jwk = public_jwk.clone();
        let workload = &workload;
        let provider = provider.clone();
        async move {
            let wit = lanyard_server::issue::mint_wit(&state, &sub, &public_jwk, None)
                .await
                .unwrap()
                .token;
            let params = WptParams {
                wit: &wit,
                audience,
                lifetime: 60,
                access_token: None,
                txn_token: None,
                other_tokens: &[],
                wpt01: false,
            };
            let wpt = create_wpt(workload, &params, NOW, provider.as_ref()).unwrap();
            Request::post("/credentials/sd-cwt")
                .header("workload-identity-token", wit)
                .header("authorization", format!("WPT {wpt}"))
                .body(Body::empty())
                .unwrap()
        }
    };

    let (status, headers, body) = raw(&app, request("spiffe://example.org/payments").await).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(header(&headers, "content-type"), "application/sd-cwt");
    let (_, _, keys) = get_as(&app, "/keys/sd-cwt", "application/cose-key-set").await;
    let issuer = CoseKeySet::decode(&keys).unwrap().keys[0]
        .verifying_key(provider.as_ref(), Algorithm::ES256)
        .unwrap();
    let held = HolderSdCwt::receive(
        &body,
        issuer.as_ref(),
        &CoseKey::from_jwk(&public_jwk).unwrap(),
        provider.as_ref(),
        &SdCwtPolicy::default(),
        NOW,
    )
    .unwrap();
    assert_eq!(
        held.standard_claims().sub.as_deref(),
        Some("spiffe://example.org/payments")
    );
    assert_eq!(redacted(&held), 2, "node and selectors");

    // No credentials, a replayed proof, an identity without an entry.
    let (status, body, _) = call(&app, "POST", "/credentials/sd-cwt", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let replayed = request("spiffe://example.org/payments").await;
    let copy = Request::post("/credentials/sd-cwt")
        .header(
            "workload-identity-token",
            replayed.headers()["workload-identity-token"].clone(),
        )
        .header("authorization", replayed.headers()["authorization"].clone())
        .body(Body::empty())
        .unwrap();
    assert_eq!(raw(&app, replayed).await.0, StatusCode::OK);
    let (status, headers, body) = raw(&other_replica, copy).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(header(&headers, "www-authenticate"), "WPT");
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["kind"], "replay", "{problem}");
    assert_eq!(
        raw(&app, request("spiffe://example.org/nobody").await).await.0,
        StatusCode::FORBIDDEN
    );
}
