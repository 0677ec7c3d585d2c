//! An AI agent acting for a user, across two trust domains (issue 13, item 6).
//!
//! Everything is real and on loopback: two Lanyard servers (`example.org`, the home, and
//! `partner.org`), a tool service behind `WorkloadAuthLayer` + `TxnTokenLayer`, HTTP
//! between them all. The hops, one function each:
//!
//! 1. [`user_token`]: alice's access token, issued to the `portal` client.
//! 2. [`delegate_to_agent`]: the agent exchanges it (RFC 8693): `sub` alice, `act` the agent.
//! 3. [`txn_token_for`]: the agent gets a Txn-Token for the transaction.
//! 4. [`call_tool`]: the agent calls the tool with its WIT + a WPT whose `tth` binds the Txn-Token.
//! 5. [`tool_handler`]: the tool sees the caller, the user, the transaction and the acting
//!    chain. The chain comes from the Txn-Token's `act` (the TTS copies the subject token's
//!    `act` into it), so the agent sends one context token, not a second access token
//!    (a WPT in `Authorization` cannot travel with one anyway).
//! 6. [`chain_to_partner`]: the tool exchanges the Txn-Token at home for a JWT authorization
//!    grant for partner.org and redeems it there (identity chaining), keeping `sub` and `act`.
//!
//! Each token is printed decoded (header `typ` and claims; never a key).
//! Run: `cargo run -p lanyard-server --example agent_for_user`.

#![allow(clippy::print_stdout, dead_code)]

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result, bail};
use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
use lanyard_core::jose::CompactJws;
use lanyard_core::oauth::{
    AccessTokenClaims, AuthMethod, ClientAssertionParams, GrantType, SpiffeIdPattern, TokenTypeUri, TxnTokenPolicy,
    VerificationKeys, create_client_assertion, encode_form, issue_access_token,
};
use lanyard_core::{Algorithm, Clock, JwkSet, KeyUse, SigningKey, SpiffeId, SystemClock, TrustStore, WorkloadId};
use lanyard_crypto::KeyPair;
use lanyard_server::config::{HomeServerConfig, OAuthConfig};
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
/// The resources: the agent (audience of alice's token), the tools, partner.org's API.
const AGENT_API: &str = "https://agent.example.org";
const TOOLS_API: &str = "https://tools.example.org";
const PARTNER_API: &str = "https://rooms.partner.org";
const AT: &str = "urn:ietf:params:oauth:token-type:access_token";
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
    /// 1. alice's token from the portal.
    pub(crate) user_token: Decoded,
    /// 2. The delegated token the agent got by token exchange.
    pub(crate) delegated: Decoded,
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
        let wit = lanyard_server::issue::mint_wit(&self.0, &id, &key.public_jwk(), None).await?;
        Ok(WorkloadCredentials::new(wit, key, lanyard_crypto::provider().as_ref())?)
    }

    /// A token request by workload `name` to the home server, authenticated with a fresh
    /// JWT-SVID (`jwt-spiffe` client assertion); the issued token.
    async fn home_token(&self, name: &str, params: &[(&str, &str)]) -> Result<String> {
        // The home server configures no `[oauth] issuer`: its issuer is its public URL.
        let issuer = self.0.public_url.as_str();
        let id = SpiffeId::parse(&format!("spiffe://{HOME_TD}/{name}"))?;
        let svid = lanyard_server::issue::mint_jwt_svid(&self.0, &id, &[issuer], None).await?;
        let mut form = vec![("client_id", name), ("client_assertion", &svid)];
        form.push((
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe",
        ));
        form.extend_from_slice(params);
        token_request(issuer, &form).await
    }
}

/// A token request to `server`'s token endpoint; the issued token, or an error with the answer.
async fn token_request(server: &str, form: &[(&str, &str)]) -> Result<String> {
    let r = reqwest::Client::new()
        .post(format!("{server}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode_form(form.iter().copied()))
        .send()
        .await?;
    let (status, body): (_, Value) = (r.status(), r.json().await?);
    match body["access_token"].as_str() {
        Some(token) if status.is_success() => Ok(token.to_owned()),
        _ => bail!("token endpoint {server}: {status} {body}"),
    }
}

/// Hop 1. Alice's token, as the `portal` client got it when she signed in: an RFC 9068
/// access token of the home server for the agent's API, signed with its key. The user
/// token comes from here alone: once trusted external issuers land, this is where a token
/// of an external IdP comes in instead.
async fn user_token(home: &RunningServer) -> Result<String> {
    let t = SystemClock.now().as_secs();
    let claims = json!({
        "iss": home.oauth.issuer(), "sub": "alice", "aud": AGENT_API, "client_id": "portal",
        "scope": "calendar.read calendar.write", "iat": t, "exp": t + 300, "jti": format!("portal-{t}"),
    });
    let claims = AccessTokenClaims::from_claims(claims.as_object().context("claims")?)?;
    let (key, kid) = home.state.keys.access_token_signer().await?;
    Ok(issue_access_token(key.as_ref(), &kid, &claims)?)
}

/// Hop 2. Token exchange (RFC 8693) with delegation: the agent trades alice's token for
/// one about alice (`sub`) for the tools, with itself as actor (`act`; its policy allows
/// delegation, so no `actor_token` is needed), scope narrowed to `calendar.read`.
async fn delegate_to_agent(lanyard: &LanyardAgent, user: &str) -> Result<String> {
    let params = [
        ("grant_type", EXCHANGE),
        ("subject_token", user),
        ("subject_token_type", AT),
    ];
    let target = [("audience", TOOLS_API), ("scope", "calendar.read")];
    lanyard.home_token("agent", &[&params[..], &target].concat()).await
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

/// The two servers: the home one (chaining to partner.org) with the `agent` and `tool`
/// clients (authenticated by JWT-SVID, allowed to delegate), and partner.org, trusting
/// the home server's grants (its keys from its metadata).
async fn start_servers(dir: &std::path::Path) -> Result<(RunningServer, RunningServer)> {
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
    // The agent exchanges user tokens and gets Txn-Tokens; the tool chains Txn-Tokens.
    for (name, subject, txn_tokens, audience) in [
        ("agent", TokenTypeUri::AccessToken, true, TOOLS_API),
        ("tool", TokenTypeUri::TxnToken, false, PARTNER_ISSUER),
    ] {
        let id = format!("spiffe://{HOME_TD}/{name}");
        let mut spec = client_spec(AuthMethod::SpiffeJwt, &[&id], vec![GrantType::TokenExchange], audience)?;
        spec.exchange = ExchangePolicy {
            delegate: true,
            subject_token_types: vec![subject],
            subject_audiences: vec![AGENT_API.into(), TOOLS_API.into()],
            txn_tokens,
            ..ExchangePolicy::default()
        };
        create_client(&home.state, name, spec, SystemClock.now()).await?;
    }
    Ok((home, partner))
}

/// Runs the whole flow, printing each token, and returns what each hop produced.
pub(crate) async fn run() -> Result<Transcript> {
    let dir = tempfile::tempdir()?;
    let (home, partner) = start_servers(dir.path()).await?;
    let log = ToolLog::default();
    let tool_url = start_tool(&home, &partner, log.clone()).await?;
    let lanyard = LanyardAgent(home.state.clone());

    let user = user_token(&home).await?;
    let user_token = show("1. alice's token (from the portal)", &user)?;
    let delegated = delegate_to_agent(&lanyard, &user).await?;
    let delegated_d = show("2. token exchange: delegated to the agent", &delegated)?;
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
