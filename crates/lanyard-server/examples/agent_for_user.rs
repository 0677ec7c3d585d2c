//! An AI agent acting for a user, across two trust domains (issue 13, item 6).
//!
//! Everything is real and on loopback: two Lanyard servers (`example.org`, the home, and
//! `partner.org`), a tool service behind `WorkloadAuthLayer` + `TxnTokenLayer`, HTTP
//! between them all. alice signs in at an external identity provider,
//! `https://idp.example.com`, which the home server trusts (`[[oauth.trusted_issuers]]`,
//! its JWK Set given statically): its token is verified there and alice is mapped to
//! `wimse://example.org/users/alice`, the `sub` of every token after it. The hops, one
//! function each:
//!
//! 1. [`Idp::user_token`]: alice's token, a JWT the external identity provider signed.
//! 2. [`delegate_to_agent`]: the agent exchanges it (RFC 8693): `sub` alice's mapped
//!    identifier, `act` the agent. The same exchange with a token signed by another key is
//!    refused (`invalid_request`).
//! 3. [`txn_token_for`]: the agent gets a Txn-Token for the transaction.
//! 4. [`call_tool`]: the agent calls the tool with its WIT + a WPT whose `tth` binds the Txn-Token.
//! 5. [`tool_handler`]: the tool sees the caller, the user, the transaction and the acting
//!    chain. The chain comes from the Txn-Token's `act` (the TTS copies the subject token's
//!    `act` into it), so the agent sends one context token, not a second access token
//!    (a WPT in `Authorization` cannot travel with one anyway).
//! 6. [`chain_to_partner`]: the tool exchanges the Txn-Token at home for a JWT authorization
//!    grant for partner.org and redeems it there (identity chaining), keeping `sub` and `act`.
//!
//! Each token is printed decoded (header `typ` and claims; never a key), and so is the refusal.
//! Run: `cargo run -p lanyard-server --example agent_for_user`.

#![allow(clippy::print_stdout, dead_code)]

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result, bail};
use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
use lanyard_core::jose::CompactJws;
use lanyard_core::oauth::{
    AuthMethod, ClientAssertionParams, GrantType, SpiffeIdPattern, TokenTypeUri, TxnTokenPolicy, VerificationKeys,
    create_client_assertion, encode_form,
};
use lanyard_core::{Algorithm, Clock, JwkSet, KeyUse, SigningKey, SpiffeId, SystemClock, TrustStore, WorkloadId};
use lanyard_crypto::KeyPair;
use lanyard_server::config::{HomeServerConfig, MappingRuleConfig, OAuthConfig, TrustedIssuerConfig};
use lanyard_server::model::{ExchangePolicy, OAuthClientSpec};
use lanyard_server::oauth::clients::create_client;
use lanyard_server::state::AppState;
use lanyard_server::{RunningServer, ServerConfig};
use lanyard_tower::{
    ClientMode, ForwardableTxnToken, StaticCredentials, TxnTokenKeys, TxnTokenLayer, VerifiedTxn, VerifiedWorkload,
    WorkloadAuthConfig, WorkloadAuthLayer, WorkloadAuthMiddleware, WorkloadCredentials,
};
use serde_json::{Value, json};

const HOME_TD: &str = "example.org";
const PARTNER_TD: &str = "partner.org";
/// partner.org's issuer identifier (the home server only needs to name it).
const PARTNER_ISSUER: &str = "https://as.partner.org";
/// The external identity provider alice signs in at, and the home server's name there
/// (the audience of alice's token, the `audience` the home server requires of it).
const IDP_ISSUER: &str = "https://idp.example.com";
const HOME_AT_IDP: &str = "https://lanyard.example.org";
/// The agent (the party alice's token was issued to, `azp`), the tools, partner.org's API.
const AGENT_API: &str = "https://agent.example.org";
const TOOLS_API: &str = "https://tools.example.org";
const PARTNER_API: &str = "https://rooms.partner.org";
const AT: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const TXN: &str = "urn:ietf:params:oauth:token-type:txn_token";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A token as a reader sees it: its header `typ` and its claims.
#[derive(Clone, Debug)]
pub(crate) struct Decoded {
    /// The JOSE header's `typ`.
    pub(crate) typ: Option<String>,
    /// The payload.
    pub(crate) claims: Value,
}

/// What happened, hop by hop.
#[derive(Debug)]
pub(crate) struct Transcript {
    /// 1. alice's token from the external identity provider.
    pub(crate) user_token: Decoded,
    /// 2. The delegated token the agent got by token exchange.
    pub(crate) delegated: Decoded,
    /// 2'. The home server's answer (HTTP status, body) to the same exchange with a user
    /// token signed by another key.
    pub(crate) forged_refused: (u16, Value),
    /// 3. The Txn-Token the agent sent the tool.
    pub(crate) txn_token: Decoded,
    /// 5. What the tool handler saw (`caller`, `user`, `txn`, `rctx`, `act`), as JSON.
    pub(crate) tool_saw: Value,
    /// 5. The tool's answer to the agent.
    pub(crate) tool_answer: Value,
    /// 6a. The JWT authorization grant the home server gave the tool for partner.org.
    pub(crate) grant: Decoded,
    /// 6b. partner.org's access token for the tool.
    pub(crate) partner_token: Decoded,
}

/// Prints a token's `typ` and claims under `step`, and returns them.
fn show(step: &str, token: &str) -> Result<Decoded> {
    let jws = CompactJws::parse(token)?;
    let d = Decoded {
        typ: jws.header().typ.clone(),
        claims: Value::Object(jws.claims()?),
    };
    println!(
        "\n== {step}\n   typ: {}\n{:#}",
        d.typ.as_deref().unwrap_or("-"),
        d.claims
    );
    Ok(d)
}

/// Stands in for the Lanyard agent of each example.org workload (its Workload API): hands
/// out JWT-SVIDs and WITs signed by the home server's authorities.
#[derive(Clone)]
struct LanyardAgent(AppState);

impl LanyardAgent {
    /// A WIT-SVID for `name` bound to `key`, paired with the key for the middleware.
    async fn wit(&self, name: &str, key: Arc<KeyPair>) -> Result<WorkloadCredentials> {
        let id = WorkloadId::parse(&format!("spiffe://{HOME_TD}/{name}"))?;
        let wit = lanyard_server::issue::mint_wit(&self.0, &id, &key.public_jwk(), None)
            .await?
            .token;
        Ok(WorkloadCredentials::new(wit, key, lanyard_crypto::provider().as_ref())?)
    }

    /// A token request by workload `name` to the home server, authenticated with a fresh
    /// JWT-SVID (`jwt-spiffe` client assertion); the issued token.
    async fn home_token(&self, name: &str, params: &[(&str, &str)]) -> Result<String> {
        let issuer = self.0.public_url.as_str();
        let (status, body) = self.home_request(name, params).await?;
        access_token(issuer, status, body)
    }

    /// The same request; the answer's HTTP status and body, whatever they are.
    async fn home_request(&self, name: &str, params: &[(&str, &str)]) -> Result<(u16, Value)> {
        // The home server configures no `[oauth] issuer`: its issuer is its public URL.
        let issuer = self.0.public_url.as_str();
        let id = SpiffeId::parse(&format!("spiffe://{HOME_TD}/{name}"))?;
        let svid = lanyard_server::issue::mint_jwt_svid(&self.0, &id, &[issuer], None)
            .await?
            .token;
        let mut form = vec![("client_id", name), ("client_assertion", &svid)];
        form.push((
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe",
        ));
        form.extend_from_slice(params);
        token_reply(issuer, &form).await
    }
}

/// A token request to `server`'s token endpoint; the answer's HTTP status and body.
async fn token_reply(server: &str, form: &[(&str, &str)]) -> Result<(u16, Value)> {
    let r = reqwest::Client::new()
        .post(format!("{server}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode_form(form.iter().copied()))
        .send()
        .await?;
    Ok((r.status().as_u16(), r.json().await?))
}

/// A token request to `server`'s token endpoint; the issued token, or an error with the answer.
async fn token_request(server: &str, form: &[(&str, &str)]) -> Result<String> {
    let (status, body) = token_reply(server, form).await?;
    access_token(server, status, body)
}

/// The `access_token` of a successful token response, or an error with the answer.
fn access_token(server: &str, status: u16, body: Value) -> Result<String> {
    match body["access_token"].as_str() {
        Some(token) if (200..300).contains(&status) => Ok(token.to_owned()),
        _ => bail!("token endpoint {server}: {status} {body}"),
    }
}

/// The external identity provider alice signs in at (an OpenID provider of her company,
/// say): only its issuer identifier and its signing key. It publishes no endpoint here:
/// the home server is given its JWK Set in its configuration ([`Idp::trusted_by_home`]).
struct Idp {
    key: KeyPair,
}

impl Idp {
    /// The provider's key id; the impostor of the negative step uses it too, so that only
    /// the signature tells the keys apart.
    const KID: &'static str = "idp-2026-12";

    /// A provider with a fresh ES256 key.
    fn new() -> Result<Idp> {
        Ok(Idp {
            key: KeyPair::generate(Algorithm::ES256)?.with_kid(Idp::KID),
        })
    }

    /// How the home server trusts it: tokens of issuer `https://idp.example.com` for the
    /// audience `https://lanyard.example.org`, ES256 only, checked against its JWK Set, and
    /// one mapping rule. The rule names the user inside the home trust domain: a WIMSE
    /// identifier of example.org under `/users/` (the rules render SPIFFE IDs or WIMSE
    /// identifiers of this trust domain only; `{sub}` is checked to be one safe segment).
    fn trusted_by_home(&self) -> Result<TrustedIssuerConfig> {
        let mut jwk = self.key.public_jwk();
        jwk.kid = Some(Idp::KID.into());
        Ok(TrustedIssuerConfig {
            issuer: IDP_ISSUER.into(),
            jwks_uri: None,
            jwks: Some(serde_json::to_string(&JwkSet { keys: vec![jwk] })?),
            audience: HOME_AT_IDP.into(),
            algorithms: vec!["ES256".into()],
            leeway: 60,
            max_token_lifetime: 3600,
            jwks_refetch_interval: 30,
            rules: vec![MappingRuleConfig {
                identity: "wimse://{td}/users/{sub}".into(),
                require: Vec::new(),
            }],
        })
    }

    /// Hop 1. alice's token, as the provider issued it when she signed in to the agent:
    /// a JWT (`typ` `JWT`) with `iss`, `sub`, `aud` the home server's name at the provider,
    /// `iat`, `exp` five minutes on, and her `email` (carried, not used by the rule).
    fn user_token(&self, sub: &str) -> Result<String> {
        let t = SystemClock.now().as_secs();
        let claims = json!({
            "iss": IDP_ISSUER, "sub": sub, "aud": HOME_AT_IDP, "azp": AGENT_API,
            "email": format!("{sub}@example.com"), "iat": t, "exp": t + 300, "jti": format!("idp-{sub}-{t}"),
        });
        Ok(lanyard_core::jose::sign_compact(
            Some("JWT"),
            Some(Idp::KID),
            &claims,
            &self.key,
        )?)
    }
}

/// The form of hop 2: a delegation exchange of `user` (a JWT of the external identity
/// provider, `subject_token_type` `...:jwt`) for a token for the tools, `calendar.read`.
fn delegation_params(user: &str) -> [(&str, &str); 5] {
    [
        ("grant_type", EXCHANGE),
        ("subject_token", user),
        ("subject_token_type", JWT),
        ("audience", TOOLS_API),
        ("scope", "calendar.read"),
    ]
}

/// Hop 2. Token exchange (RFC 8693) with delegation: the agent trades alice's token of the
/// external provider for one about alice (`sub` her mapped identifier) for the tools, with
/// itself as actor (`act`; its policy allows delegation, so no `actor_token` is needed),
/// scope `calendar.read` (the provider's token carries no scope: the agent's registered
/// scopes bound it). The home server verifies the token by the provider's configuration
/// and the agent's policy lists the provider.
async fn delegate_to_agent(lanyard: &LanyardAgent, user: &str) -> Result<String> {
    lanyard.home_token("agent", &delegation_params(user)).await
}

/// Hop 3. The Transaction Token Service: the delegated token becomes a Txn-Token
/// (`requested_token_type` txn_token, `audience` the trust domain) with a fresh `txn`,
/// the request context (`rctx`) and details (`tctx`), and the `act` chain kept.
async fn txn_token_for(lanyard: &LanyardAgent, delegated: &str) -> Result<String> {
    let params = [
        ("grant_type", EXCHANGE),
        ("requested_token_type", TXN),
        ("subject_token", delegated),
        ("subject_token_type", AT),
        ("audience", HOME_TD),
        ("scope", "calendar.read"),
        ("request_context", r#"{"req_ip":"192.0.2.7","channel":"chat"}"#),
        ("request_details", r#"{"action":"book_room","when":"tomorrow 10:00"}"#),
    ];
    lanyard.home_token("agent", &params).await
}

/// Hop 4. The agent calls the tool: `WorkloadAuthMiddleware` adds its WIT and a WPT whose
/// `tth` binds the `Txn-Token` header.
async fn call_tool(tool_url: &str, creds: WorkloadCredentials, txn_token: &str) -> Result<Value> {
    let source = Arc::new(StaticCredentials(Arc::new(creds)));
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(WorkloadAuthMiddleware::new(source, ClientMode::default()))
        .build();
    let r = client.post(format!("{tool_url}/book")).header("txn-token", txn_token);
    let r = r.send().await?;
    let (status, body): (_, Value) = (r.status(), r.json().await?);
    if !status.is_success() {
        bail!("tool: {status} {body}");
    }
    Ok(body)
}

/// What the tool handler saw and the two tokens it got in partner.org, kept for the
/// transcript (the agent only gets the tool's answer).
type ToolLog = Arc<Mutex<Option<(Value, Decoded, Decoded)>>>;

/// What the tool service holds: its Lanyard agent, the key partner.org knows it by,
/// partner.org's URL, and its log.
#[derive(Clone)]
struct Tool {
    lanyard: LanyardAgent,
    key: Arc<KeyPair>,
    partner: String,
    log: ToolLog,
}

/// Hop 5. The tool's handler: both layers verified the call, so it reads who calls (the
/// WIT), for whom (`sub`), in which transaction (`txn`, `rctx`, `tctx`) and through whom
/// (`act`), then crosses into partner.org with the Txn-Token it was given.
async fn tool_handler(
    State(tool): State<Tool>,
    caller: VerifiedWorkload,
    txn: VerifiedTxn,
    forward: ForwardableTxnToken,
) -> (StatusCode, Json<Value>) {
    let c = txn.claims();
    let saw = json!({
        "caller": caller.id.as_str(), "user": c.sub, "txn": c.txn, "req_wl": c.req_wl,
        "rctx": c.rctx, "tctx": c.tctx, "act": c.extra.get("act"),
    });
    println!("\n== 5. the tool handler saw\n{saw:#}");
    let crossed = chain_to_partner(&tool, forward.as_str())
        .await
        .and_then(|(grant, local)| {
            let grant = show("6a. the tool's JWT authorization grant for partner.org", &grant)?;
            Ok((grant, show("6b. partner.org's access token for the tool", &local)?))
        });
    match crossed {
        Ok((grant, local)) => {
            let answer = json!({"booked": "room 4.2 at partner.org", "for": c.sub, "txn": c.txn});
            *tool.log.lock().unwrap_or_else(PoisonError::into_inner) = Some((saw, grant, local));
            (StatusCode::OK, Json(answer))
        }
        Err(e) => (StatusCode::BAD_GATEWAY, Json(json!({"error": format!("{e:#}")}))),
    }
}

/// Hop 6. Identity chaining (draft-ietf-oauth-identity-chaining): at home, a token
/// exchange of the Txn-Token with `audience` partner.org's issuer yields a JWT
/// authorization grant (the tool delegating: `act` = tool, then agent); at partner.org the
/// tool redeems it with the JWT bearer grant (RFC 7523 §2.1), authenticated with its key
/// (`private_key_jwt`), for a local access token. Returns both tokens.
async fn chain_to_partner(tool: &Tool, txn_token: &str) -> Result<(String, String)> {
    let params = [
        ("grant_type", EXCHANGE),
        ("subject_token", txn_token),
        ("subject_token_type", TXN),
        ("audience", PARTNER_ISSUER),
        ("scope", "calendar.read"),
    ];
    let grant = tool.lanyard.home_token("tool", &params).await?;
    let params = ClientAssertionParams::new("example-tool", PARTNER_ISSUER);
    let provider = lanyard_crypto::provider();
    let assertion = create_client_assertion(tool.key.as_ref(), &params, SystemClock.now(), provider.as_ref())?;
    let form = [
        ("grant_type", JWT_BEARER),
        ("assertion", &grant),
        ("scope", "calendar.read"),
        ("client_id", "example-tool"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", &assertion),
    ];
    let local = token_request(&tool.partner, &form).await?;
    Ok((grant, local))
}

/// A JWK Set from `url`.
async fn jwks(url: String) -> Result<JwkSet> {
    Ok(serde_json::from_str(&reqwest::get(url).await?.text().await?)?)
}

/// Starts the tool service on loopback: `WorkloadAuthLayer` (WITs of example.org, keys
/// from the home server's `/keys/wit`) outside `TxnTokenLayer` (Txn-Tokens for
/// example.org, keys from `/oauth/jwks`), and registers it at partner.org by its key.
/// Returns its base URL.
async fn start_tool(home: &RunningServer, partner: &RunningServer, log: ToolLog) -> Result<String> {
    let provider = lanyard_crypto::provider();
    let store = Arc::new(TrustStore::new(provider.clone()));
    for key in jwks(format!("{}/keys/wit", home.public_url)).await?.keys {
        store.add_key(HOME_TD, KeyUse::WitSvid, &key)?;
    }
    let set = jwks(format!("{}/oauth/jwks", home.public_url)).await?;
    let txn_keys = TxnTokenKeys::new(VerificationKeys::from_jwks(
        provider.as_ref(),
        home.oauth.issuer(),
        &set,
    )?);
    let tool = Tool {
        lanyard: LanyardAgent(home.state.clone()),
        key: Arc::new(KeyPair::generate(Algorithm::ES256)?.with_kid("tool-1")),
        partner: partner.public_url.clone(),
        log,
    };
    let mut spec = client_spec(AuthMethod::PrivateKeyJwt, &[], vec![GrantType::JwtBearer], PARTNER_API)?;
    spec.jwks = Some(JwkSet {
        keys: vec![tool.key.public_jwk()],
    });
    create_client(&partner.state, "example-tool", spec, SystemClock.now()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = Router::new()
        .route("/book", post(tool_handler))
        .with_state(tool)
        .layer(TxnTokenLayer::new(TxnTokenPolicy::new(HOME_TD), txn_keys))
        .layer(WorkloadAuthLayer::new(store, WorkloadAuthConfig::new(base.clone())));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}

/// A client registration with the calendar scopes and one audience, no exchange policy.
fn client_spec(method: AuthMethod, ids: &[&str], grants: Vec<GrantType>, audience: &str) -> Result<OAuthClientSpec> {
    Ok(OAuthClientSpec {
        spiffe_ids: ids
            .iter()
            .map(|id| SpiffeIdPattern::parse(id))
            .collect::<Result<_, _>>()?,
        auth_methods: vec![method],
        jwks: None,
        jwks_uri: None,
        grant_types: grants,
        scopes: vec!["calendar.read".into(), "calendar.write".into()],
        audiences: vec![audience.into()],
        access_token_ttl: 0,
        require_dpop: false,
        require_certificate_binding: false,
        exchange: ExchangePolicy::default(),
    })
}

/// The two servers: the home one (trusting `idp`, chaining to partner.org) with the
/// `agent` and `tool` clients (authenticated by JWT-SVID, allowed to delegate; the agent
/// may present tokens of `idp`), and partner.org, trusting the home server's grants (its
/// keys from its metadata).
async fn start_servers(dir: &std::path::Path, idp: &Idp) -> Result<(RunningServer, RunningServer)> {
    let config = |td: &str, oauth| ServerConfig {
        data_dir: dir.join(td),
        public_address: "127.0.0.1:0".into(),
        agent_address: "127.0.0.1:0".into(),
        log_level: "warn".into(),
        trust_domain: td.into(),
        oauth,
        ..ServerConfig::default()
    };
    let oauth = OAuthConfig {
        chaining_foreign_servers: vec![PARTNER_ISSUER.into()],
        trusted_issuers: vec![idp.trusted_by_home()?],
        ..OAuthConfig::default()
    };
    let home = lanyard_server::start(config(HOME_TD, oauth)).await?;
    let home_server = HomeServerConfig {
        issuer: home.oauth.issuer().to_owned(),
        jwks_uri: None,
    };
    let oauth = OAuthConfig {
        issuer: Some(PARTNER_ISSUER.into()),
        chaining_home_servers: vec![home_server],
        ..OAuthConfig::default()
    };
    let partner = lanyard_server::start(config(PARTNER_TD, oauth)).await?;
    // The agent exchanges user tokens of the provider (JWTs) and gets Txn-Tokens for its
    // delegated access tokens; the tool chains Txn-Tokens.
    for (name, subjects, txn_tokens, audience, issuers) in [
        (
            "agent",
            vec![TokenTypeUri::Jwt, TokenTypeUri::AccessToken],
            true,
            TOOLS_API,
            vec![IDP_ISSUER.to_owned()],
        ),
        ("tool", vec![TokenTypeUri::TxnToken], false, PARTNER_ISSUER, Vec::new()),
    ] {
        let id = format!("spiffe://{HOME_TD}/{name}");
        let mut spec = client_spec(AuthMethod::SpiffeJwt, &[&id], vec![GrantType::TokenExchange], audience)?;
        spec.exchange = ExchangePolicy {
            delegate: true,
            subject_token_types: subjects,
            subject_audiences: vec![TOOLS_API.into()],
            txn_tokens,
            trusted_issuers: issuers,
            ..ExchangePolicy::default()
        };
        create_client(&home.state, name, spec, SystemClock.now()).await?;
    }
    Ok((home, partner))
}

/// Runs the whole flow, printing each token, and returns what each hop produced.
pub(crate) async fn run() -> Result<Transcript> {
    let dir = tempfile::tempdir()?;
    let idp = Idp::new()?;
    let (home, partner) = start_servers(dir.path(), &idp).await?;
    let log = ToolLog::default();
    let tool_url = start_tool(&home, &partner, log.clone()).await?;
    let lanyard = LanyardAgent(home.state.clone());

    let user = idp.user_token("alice")?;
    let user_token = show("1. alice's token (from the external identity provider)", &user)?;
    let delegated = delegate_to_agent(&lanyard, &user).await?;
    let delegated_d = show("2. token exchange: delegated to the agent", &delegated)?;
    // The same exchange with a token that claims the same issuer and kid but is signed by
    // another key: refused.
    let forged = Idp::new()?.user_token("alice")?;
    let forged_refused = lanyard.home_request("agent", &delegation_params(&forged)).await?;
    println!(
        "\n== 2'. the same exchange, alice's token signed by another key: refused\n   HTTP {}\n{:#}",
        forged_refused.0, forged_refused.1
    );
    let txn = txn_token_for(&lanyard, &delegated).await?;
    let txn_token = show("3. Txn-Token for the transaction", &txn)?;
    let creds = lanyard
        .wit("agent", Arc::new(KeyPair::generate(Algorithm::ES256)?))
        .await?;
    show("4. the agent's WIT (its proof key stays with it)", &creds.wit)?;
    let tool_answer = call_tool(&tool_url, creds, &txn).await?;
    println!("\n== the tool's answer to the agent\n{tool_answer:#}");
    let logged = log.lock().unwrap_or_else(PoisonError::into_inner).take();
    let (tool_saw, grant, partner_token) = logged.context("the tool logged nothing")?;
    home.shutdown().await?;
    partner.shutdown().await?;
    Ok(Transcript {
        user_token,
        delegated: delegated_d,
        forged_refused,
        txn_token,
        tool_saw,
        tool_answer,
        grant,
        partner_token,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    run().await?;
    Ok(())
}
