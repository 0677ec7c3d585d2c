//! `POST /credentials/sd-cwt` with the authentications other than WIT + WPT (issue 14 item
//! 5; WIT + WPT is in `endpoints.rs`), on a real server over loopback: an X.509-SVID over
//! mutual TLS, a DPoP-bound access token from the server's token endpoint, a
//! certificate-bound access token on the mutual-TLS listener; and a WPT replayed across a
//! restart (the shared jti store). Each good case checks that the SD-CWT's `cnf` is the
//! key the caller proved (the holder API refuses it otherwise) and that it carries decoys;
//! each bad case asserts the status, the `kind` and the `WWW-Authenticate` challenge.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::{Value, json};

use lanyard_core::cose::CoseKey;
use lanyard_core::oauth::{
    AccessTokenClaims, Audience, AuthMethod, ClientAssertionParams, Confirmation, DpopProofParams, SpiffeIdPattern,
    certificate_thumbprint, create_client_assertion, create_dpop_proof, encode_form, issue_access_token,
};
use lanyard_core::spice::sd_cwt::{DisclosureKind, HolderSdCwt, SdCwtPolicy};
use lanyard_core::{Algorithm, Clock, Jwk, JwkSet, SigningKey, SpiffeId, SystemClock, UnixTime};
use lanyard_server::model::{EntrySpec, OAuthClientSpec};
use lanyard_server::oauth::clients::{create_client, update_client};
use lanyard_server::{RunningServer, ServerConfig};
use lanyard_x509::{SubjectKey, X509Authority, X509Svid};

/// The workload with an entry.
const SUB: &str = "spiffe://example.org/payments";
const FORM: &str = "application/x-www-form-urlencoded";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn now() -> UnixTime {
    SystemClock.now()
}

struct Harness {
    server: RunningServer,
    http: reqwest::Client,
    /// The endpoint's public URL.
    public: String,
    /// The public listener's address for it (the public URL may be another name).
    local: String,
    /// The endpoint on the mutual-TLS listener.
    mtls: String,
}

/// What the endpoint answered.
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    async fn from(r: reqwest::Response) -> Reply {
        Reply {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.bytes().await.unwrap().to_vec(),
        }
    }

    fn problem(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Every `WWW-Authenticate` value, joined with " | ".
    fn challenges(&self) -> String {
        self.headers
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// Asserts a refusal: status, problem `kind`, and a fragment of the challenges.
    #[track_caller]
    fn refused(&self, status: u16, kind: &str, challenge: &str) {
        let problem = self.problem();
        assert_eq!(self.status, status, "{problem}");
        assert_eq!(problem["kind"], kind, "{problem}");
        let challenges = self.challenges();
        assert!(challenges.contains(challenge), "{challenges:?} lacks {challenge:?}");
    }
}

impl Harness {
    async fn start(dir: &Path) -> Harness {
        Harness::start_with(dir, None, true).await
    }

    /// A server in `dir` with `public_url` (else its bound address), with the entry of
    /// [`SUB`] created when `create_entry`.
    async fn start_with(dir: &Path, public_url: Option<&str>, create_entry: bool) -> Harness {
        let config = ServerConfig {
            data_dir: dir.join("data"),
            public_address: "127.0.0.1:0".into(),
            public_url: public_url.map(str::to_owned),
            agent_address: "127.0.0.1:0".into(),
            log_level: "warn".into(),
            ..ServerConfig::default()
        };
        let server = lanyard_server::start(config).await.unwrap();
        if create_entry {
            let spec: EntrySpec = serde_json::from_value(json!({
                "spiffe_id": SUB,
                "parent_id": "spiffe://example.org/lanyard/agent/join_token/aaaaaaaaaaaaaaaa",
                "selectors": [{"type": "unix", "value": "uid:1000"}],
                "claims": {"claims": {"env": "prod"}, "always_disclosed": ["env"]},
            }))
            .unwrap();
            server.state.stores.entries.create_entry(&spec, now()).await.unwrap();
        }
        let address = server.public_addr;
        Harness {
            public: format!("{}/credentials/sd-cwt", server.public_url),
            local: format!("http://{address}/credentials/sd-cwt"),
            mtls: format!("https://{}/credentials/sd-cwt", server.oauth_mtls_addr.unwrap()),
            http: reqwest::Client::new(),
            server,
        }
    }

    /// POSTs to `url` with `headers`, over `client` (the plain one by default).
    async fn post(&self, client: Option<&reqwest::Client>, url: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = client.unwrap_or(&self.http).post(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Reply::from(request.send().await.unwrap()).await
    }

    /// POSTs `token` with the DPoP scheme and `proof` to the public endpoint.
    async fn dpop(&self, token: &str, proof: &str) -> Reply {
        let authorization = format!("DPoP {token}");
        self.post(
            None,
            &self.public,
            &[("authorization", &authorization), ("dpop", proof)],
        )
        .await
    }

    /// Checks an issued SD-CWT as its holder with `holder` as the expected `cnf`: the
    /// subject, and the decoys.
    async fn check_sd_cwt(&self, reply: &Reply, holder: &Jwk) {
        assert_eq!(reply.status, 200, "{}", reply.problem());
        assert_eq!(
            reply.headers.get("content-type").unwrap().to_str().unwrap(),
            "application/sd-cwt"
        );
        let provider = lanyard_crypto::provider();
        let (issuer, _) = self.server.state.keys.sd_cwt_signer().await.unwrap();
        let issuer = provider.verifying_key(&issuer.public_jwk(), Algorithm::ES256).unwrap();
        let held = HolderSdCwt::receive(
            &reply.body,
            issuer.as_ref(),
            &CoseKey::from_jwk(holder).unwrap(),
            provider.as_ref(),
            &SdCwtPolicy::default(),
            now(),
        )
        .unwrap();
        assert_eq!(held.standard_claims().sub.as_deref(), Some(SUB));
        let decoys = held
            .disclosures()
            .iter()
            .filter(|d| *d.kind() == DisclosureKind::Decoy)
            .count();
        assert_eq!(decoys, usize::from(lanyard_server::sdcwt::DEFAULT_DECOYS));
    }

    /// An access token signed with the server's access-token key, as if issued to the
    /// client `workload` (see [`Harness::register_workload_client`]).
    async fn token(&self, sub: &str, audience: &str, cnf: Option<Confirmation>, exp: UnixTime) -> String {
        let (key, kid) = self.server.state.keys.access_token_signer().await.unwrap();
        let claims = AccessTokenClaims {
            iss: self.server.oauth.issuer().to_owned(),
            sub: sub.into(),
            aud: Audience::new(vec![audience.to_owned()]).unwrap(),
            client_id: "workload".into(),
            scope: None,
            iat: UnixTime(now().as_secs().min(exp.as_secs() - 60)),
            exp,
            nbf: None,
            jti: random_jti(),
            cnf,
            act: None,
            extra: Default::default(),
        };
        issue_access_token(key.as_ref(), &kid, &claims).unwrap()
    }

    /// Registers the client `workload`, authorized for the SPIFFE ID `SUB` (mutual TLS).
    async fn register_workload_client(&self) {
        let spec = OAuthClientSpec {
            spiffe_ids: vec![SpiffeIdPattern::parse(SUB).unwrap()],
            auth_methods: vec![AuthMethod::SpiffeX509],
            jwks: None,
            jwks_uri: None,
            grant_types: Vec::new(),
            scopes: Vec::new(),
            audiences: vec![self.public.clone()],
            access_token_ttl: 0,
            require_dpop: false,
            require_certificate_binding: false,
            exchange: Default::default(),
        };
        create_client(&self.server.state, "workload", spec, now())
            .await
            .unwrap();
    }
}

fn random_jti() -> String {
    let mut b = [0u8; 12];
    lanyard_crypto::provider().fill_random(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A client for the mutual-TLS listener (whose certificate is not checked here),
/// presenting `identity` (PEM chain and key) when given.
fn mtls_client(identity: Option<String>) -> reqwest::Client {
    let builder = reqwest::Client::builder().danger_accept_invalid_certs(true);
    match identity {
        Some(pem) => builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap()),
        None => builder,
    }
    .build()
    .unwrap()
}

/// An SVID's chain and key, PEM.
fn svid_pem(svid: &X509Svid) -> String {
    format!("{}{}", svid.chain_pem(), svid.key_pem().unwrap())
}

/// The public key of an SVID's leaf.
fn leaf_key(svid: &X509Svid) -> Jwk {
    let (_, cert) = x509_parser::parse_x509_certificate(&svid.chain[0]).unwrap();
    lanyard_x509::public_key_jwk(cert.public_key().raw).unwrap()
}

/// An SVID for `id` from a new root CA of its trust domain, which the server does not
/// trust.
fn foreign_svid(id: &str) -> X509Svid {
    let id = SpiffeId::parse(id).unwrap();
    let root = X509Authority::new_root(lanyard_crypto::provider(), &id.trust_domain(), None, 3600, now()).unwrap();
    root.issue_svid(&id, SubjectKey::Generate, 600, &[], now()).unwrap()
}

async fn svid(h: &Harness, id: &str) -> X509Svid {
    let ca = h.server.state.keys.x509_ca().await.unwrap();
    ca.issue_svid(&SpiffeId::parse(id).unwrap(), SubjectKey::Generate, 600, &[], now())
        .unwrap()
}

#[tokio::test]
async fn an_x509_svid_over_mutual_tls_gets_an_sd_cwt_bound_to_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path()).await;
    let good = svid(&h, SUB).await;
    let reply = h.post(Some(&mtls_client(Some(svid_pem(&good)))), &h.mtls, &[]).await;
    h.check_sd_cwt(&reply, &leaf_key(&good)).await;

    // No certificate on the mutual-TLS listener, and no other credentials.
    h.post(Some(&mtls_client(None)), &h.mtls, &[])
        .await
        .refused(401, "empty_chain", "DPoP algs=");
    // No credentials at all on the public listener: every accepted scheme is offered.
    h.post(None, &h.local, &[]).await.refused(401, "header", "WPT | DPoP");
    // An SVID signed by a foreign CA (same trust domain name, another key).
    let forged = foreign_svid(SUB);
    h.post(Some(&mtls_client(Some(svid_pem(&forged)))), &h.mtls, &[])
        .await
        .refused(401, "bad_chain", "WPT");
    // A trust domain the server does not know.
    let stranger = foreign_svid("spiffe://elsewhere.org/payments");
    h.post(Some(&mtls_client(Some(svid_pem(&stranger)))), &h.mtls, &[])
        .await
        .refused(401, "unknown_trust_domain", "WPT");
    // A certificate with two URI SANs.
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![
        rcgen::SanType::URI(SUB.try_into().unwrap()),
        rcgen::SanType::URI("spiffe://example.org/other".try_into().unwrap()),
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let two = format!("{}{}", cert.pem(), key.serialize_pem());
    h.post(Some(&mtls_client(Some(two))), &h.mtls, &[])
        .await
        .refused(401, "multiple_uri_sans", "WPT");
    // A valid SVID of an identity without an entry.
    let nobody = svid(&h, "spiffe://example.org/nobody").await;
    let reply = h.post(Some(&mtls_client(Some(svid_pem(&nobody)))), &h.mtls, &[]).await;
    assert_eq!(reply.status, 403, "{}", reply.problem());
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_dpop_bound_access_token_gets_an_sd_cwt_bound_to_the_proof_key() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path()).await;
    let provider = lanyard_crypto::provider();
    let issuer = h.server.oauth.issuer().to_owned();

    // A client whose identity is the workload's (registered for its SPIFFE ID), allowed
    // the credential endpoint as audience, DPoP required.
    let client_key = provider.generate_key(Algorithm::ES256).unwrap();
    let mut jwk = client_key.public_jwk();
    jwk.kid = Some("k1".into());
    let spec = OAuthClientSpec {
        spiffe_ids: vec![SpiffeIdPattern::parse(SUB).unwrap()],
        auth_methods: vec![AuthMethod::PrivateKeyJwt],
        jwks: Some(JwkSet { keys: vec![jwk] }),
        jwks_uri: None,
        grant_types: Vec::new(),
        scopes: Vec::new(),
        audiences: vec![h.public.clone()],
        access_token_ttl: 0,
        require_dpop: true,
        require_certificate_binding: false,
        exchange: Default::default(),
    };
    create_client(&h.server.state, SUB, spec.clone(), now()).await.unwrap();
    let dpop_key = provider.generate_key(Algorithm::ES256).unwrap();
    let token_url = format!("{}/oauth/token", h.server.public_url);
    let assertion = create_client_assertion(
        client_key.as_ref(),
        &ClientAssertionParams {
            kid: Some("k1"),
            ..ClientAssertionParams::new(SUB, &issuer)
        },
        now(),
        provider.as_ref(),
    )
    .unwrap();
    // The server requires DPoP nonces (the default); any replica's current one.
    let nonce = h.server.oauth.dpop_nonce(now());
    let with_nonce = |key: &dyn SigningKey, uri: &str, token: Option<&str>, nonce: Option<&str>| {
        let params = DpopProofParams {
            method: "POST",
            uri,
            access_token: token,
            nonce,
        };
        create_dpop_proof(key, &params, now(), lanyard_crypto::provider().as_ref()).unwrap()
    };
    let proof = |key: &dyn SigningKey, uri: &str, token: Option<&str>| with_nonce(key, uri, token, Some(&nonce));
    let form = encode_form([
        ("grant_type", "client_credentials"),
        ("client_id", SUB),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion.as_str()),
    ]);
    let reply = h
        .http
        .post(&token_url)
        .header("content-type", FORM)
        .header("dpop", proof(dpop_key.as_ref(), &token_url, None))
        .body(form)
        .send()
        .await
        .unwrap();
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();

    // The token with a proof for this request: an SD-CWT bound to the proof key.
    let good = proof(dpop_key.as_ref(), &h.public, Some(&token));
    let reply = h.dpop(&token, &good).await;
    h.check_sd_cwt(&reply, &dpop_key.public_jwk()).await;

    // The same proof again.
    h.dpop(&token, &good).await.refused(401, "dpop_replay", "DPoP algs=");
    assert!(
        h.dpop(&token, &good)
            .await
            .challenges()
            .contains("error=\"invalid_dpop_proof\"")
    );
    // A proof without the server's nonce: retry with the one in `DPoP-Nonce`.
    let reply = h
        .dpop(&token, &with_nonce(dpop_key.as_ref(), &h.public, Some(&token), None))
        .await;
    reply.refused(401, "dpop_nonce_missing", "error=\"use_dpop_nonce\"");
    assert_eq!(reply.headers.get("dpop-nonce").unwrap().to_str().unwrap(), nonce);
    // A proof for another URL, a proof without `ath`, a proof by another key.
    let elsewhere = format!("{}/credentials/other", h.server.public_url);
    h.dpop(&token, &proof(dpop_key.as_ref(), &elsewhere, Some(&token)))
        .await
        .refused(401, "htu_mismatch", "invalid_dpop_proof");
    h.dpop(&token, &proof(dpop_key.as_ref(), &h.public, None))
        .await
        .refused(401, "missing_claim", "invalid_dpop_proof");
    let thief = provider.generate_key(Algorithm::ES256).unwrap();
    h.dpop(&token, &proof(thief.as_ref(), &h.public, Some(&token)))
        .await
        .refused(401, "cnf_mismatch", "invalid_dpop_proof");
    // The DPoP-bound token as a bearer token.
    h.post(None, &h.local, &[("authorization", &format!("Bearer {token}"))])
        .await
        .refused(401, "cnf_missing_proof", "Bearer error=\"invalid_token\"");
    // A malformed Authorization field.
    let reply = h.post(None, &h.local, &[("authorization", "DPoP a b")]).await;
    assert_eq!(reply.status, 400, "{}", reply.problem());
    // The same client no longer registered for the SPIFFE ID (its name alone is no proof of
    // the identity): refused, though the token and proof are good.
    let unregistered = OAuthClientSpec {
        spiffe_ids: Vec::new(),
        ..spec
    };
    update_client(&h.server.state, SUB, unregistered, None).await.unwrap();
    let reply = h.dpop(&token, &proof(dpop_key.as_ref(), &h.public, Some(&token))).await;
    assert_eq!(reply.status, 403, "{}", reply.problem());
    assert_eq!(reply.problem()["kind"], "permission_denied", "{}", reply.problem());
    // Revoked by its client: refused from then on.
    assert!(h.server.oauth.revoke(&token, SUB, now()).await.unwrap());
    h.dpop(&token, &proof(dpop_key.as_ref(), &h.public, Some(&token)))
        .await
        .refused(401, "revoked", "error=\"invalid_token\"");

    // Tokens the token endpoint would not issue here, signed with the server's key.
    let bound = || {
        Some(Confirmation::dpop(
            dpop_key.public_jwk().thumbprint(provider.as_ref()).unwrap(),
        ))
    };
    let later = now().plus(300);
    let send = |token: String| {
        let (h, dpop_key) = (&h, &dpop_key);
        async move { h.dpop(&token, &proof(dpop_key.as_ref(), &h.public, Some(&token))).await }
    };
    // A bearer (unbound) token: the credential must be key-bound.
    let unbound = h.token(SUB, &h.public, None, later).await;
    h.post(None, &h.local, &[("authorization", &format!("Bearer {unbound}"))])
        .await
        .refused(401, "unbound_token", "Bearer error=\"invalid_token\"");
    // Another audience; expired; a subject without an entry; a subject that is no SPIFFE ID.
    send(h.token(SUB, "https://ledger.example.org", bound(), later).await)
        .await
        .refused(401, "wrong_audience", "DPoP algs=");
    send(h.token(SUB, &h.public, bound(), UnixTime(now().as_secs() - 120)).await)
        .await
        .refused(401, "expired", "error=\"invalid_token\"");
    assert_eq!(
        send(h.token("spiffe://example.org/nobody", &h.public, bound(), later).await)
            .await
            .status,
        403
    );
    assert_eq!(
        send(h.token("billing", &h.public, bound(), later).await).await.status,
        403
    );
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_certificate_bound_access_token_on_mutual_tls_gets_an_sd_cwt_bound_to_the_certificate_key() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path()).await;
    let provider = lanyard_crypto::provider();
    // The certificate need not name the workload: the token's `sub` does.
    let holder = svid(&h, "spiffe://example.org/payments-sidecar").await;
    let cnf = Confirmation::certificate(provider.as_ref(), &holder.chain[0]);
    assert_eq!(
        cnf.x5t_s256.as_deref(),
        Some(certificate_thumbprint(provider.as_ref(), &holder.chain[0]).as_str())
    );
    h.register_workload_client().await;
    let token = h.token(SUB, &h.public, Some(cnf), now().plus(300)).await;
    let authorization = format!("Bearer {token}");
    let client = mtls_client(Some(svid_pem(&holder)));
    let reply = h
        .post(Some(&client), &h.mtls, &[("authorization", &authorization)])
        .await;
    h.check_sd_cwt(&reply, &leaf_key(&holder)).await;

    // Another certificate, no certificate (the public listener).
    let other = svid(&h, SUB).await;
    h.post(
        Some(&mtls_client(Some(svid_pem(&other)))),
        &h.mtls,
        &[("authorization", &authorization)],
    )
    .await
    .refused(401, "cnf_mismatch", "Bearer error=\"invalid_token\"");
    h.post(None, &h.local, &[("authorization", &authorization)])
        .await
        .refused(401, "cnf_missing_proof", "Bearer error=\"invalid_token\"");
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_wpt_used_before_a_restart_is_refused_after_it() {
    use lanyard_core::{WorkloadId, WptParams, create_wpt};
    let dir = tempfile::tempdir().unwrap();
    // A fixed public URL (the WPT's audience): the restarted server listens elsewhere.
    let url = Some("https://lanyard.example.org");
    let h = Harness::start_with(dir.path(), url, true).await;
    let provider = lanyard_crypto::provider();
    let workload = provider.generate_key(Algorithm::ES256).unwrap();
    let sub = WorkloadId::parse(SUB).unwrap();
    let wit = lanyard_server::issue::mint_wit(&h.server.state, &sub, &workload.public_jwk(), None)
        .await
        .unwrap()
        .token;
    let wpt = |wit: &str| {
        let params = WptParams {
            wit,
            audience: "https://lanyard.example.org/credentials/sd-cwt",
            lifetime: 60,
            access_token: None,
            txn_token: None,
            other_tokens: &[],
            wpt01: false,
        };
        format!(
            "WPT {}",
            create_wpt(workload.as_ref(), &params, now(), provider.as_ref()).unwrap()
        )
    };
    let used = wpt(&wit);
    let send = |h: &Harness, authorization: String| {
        let headers = [
            ("workload-identity-token", wit.clone()),
            ("authorization", authorization),
        ];
        let url = h.local.clone();
        let http = h.http.clone();
        async move {
            let mut request = http.post(url);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            Reply::from(request.send().await.unwrap()).await
        }
    };
    h.check_sd_cwt(&send(&h, used.clone()).await, &workload.public_jwk())
        .await;
    h.server.shutdown().await.unwrap();

    let again = Harness::start_with(dir.path(), url, false).await;
    send(&again, used).await.refused(401, "replay", "WPT");
    again
        .check_sd_cwt(&send(&again, wpt(&wit)).await, &workload.public_jwk())
        .await;
    again.server.shutdown().await.unwrap();
}
