//! The OAuth authorization server from the command line: `lanyard client ...` manages
//! registered clients through the admin API; `lanyard oauth token` gets an access token
//! as a client (`client_credentials`), `lanyard oauth exchange` exchanges a token (RFC
//! 8693, delegation with an actor token) and `lanyard oauth txn-token` asks the
//! Transaction Token Service for a Txn-Token (draft-ietf-oauth-transaction-tokens-11);
//! `lanyard oauth redeem` redeems a home server's JWT authorization grant at a foreign
//! server (draft-ietf-oauth-identity-chaining-17, RFC 7523 §2.1).
//! Every command authenticates the client with `private_key_jwt` (`--key`), a JWT-SVID
//! from the local agent (`--jwt-svid-from-agent`, the `jwt-spiffe` assertion of
//! draft-ietf-oauth-spiffe-client-auth) or a WIT-SVID from it (`--wit-from-agent`, the
//! `spiffe_wit` method: `OAuth-Client-Attestation` and `-PoP` headers, for servers with it
//! switched on) or its X.509-SVID over mutual TLS (`--x509-from-agent`: RFC 8705
//! `tls_client_auth`/`spiffe_x509` at the metadata's `mtls_endpoint_aliases`, the server
//! authenticated as an SVID of the workload's trust domain), optionally DPoP-bound (RFC
//! 9449, `--dpop`). Subject and actor tokens come
//! from the command line, a file (`@FILE`), stdin (`-`) or the agent
//! (`--subject-from-agent`, `--actor-from-agent`: a JWT-SVID for the issuer).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use lanyard_core::oauth::{
    AuthorizationServerMetadata, ClientAssertionParams, ClientAttestationPopParams, DpopProofParams, ErrorResponse,
    TokenResponse, check_discovered_url, check_remote_url, create_client_assertion, create_client_attestation_pop,
    create_dpop_proof, encode_form, metadata_url,
};
use lanyard_core::{Algorithm, JwkSet, SigningKey, SpiffeId};

use super::admin::{SocketArg, encode};
use super::workload::EndpointArg;
use crate::input;

#[derive(Subcommand, Debug)]
pub(crate) enum ClientCommand {
    /// Register a client. A client with a secret method gets a generated secret, printed
    /// once (only its hash is stored).
    Create {
        /// The client_id (any string: a SPIFFE ID, a URL, a name).
        client_id: String,
        #[command(flatten)]
        fields: ClientFields,
    },
    /// List clients.
    List {
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Show one client.
    Show {
        /// The client_id.
        client_id: String,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Replace a client's registration (its secret is kept).
    Update {
        /// The client_id.
        client_id: String,
        /// Only update if the client is still at this revision.
        #[arg(long)]
        revision: Option<u64>,
        #[command(flatten)]
        fields: ClientFields,
    },
    /// Delete a client.
    Delete {
        /// The client_id.
        client_id: String,
        #[command(flatten)]
        socket: SocketArg,
    },
}

#[derive(Args, Debug)]
pub(crate) struct ClientFields {
    /// An authentication method (private_key_jwt, spiffe_jwt, spiffe_x509, spiffe_wit,
    /// tls_client_auth, client_secret_basic, client_secret_post); repeatable. Default:
    /// private_key_jwt with --jwks/--jwks-uri, spiffe_jwt and spiffe_x509 with --spiffe-id.
    #[arg(long = "auth-method")]
    auth_methods: Vec<String>,
    /// A SPIFFE ID allowed to authenticate as the client (a trailing /* admits every ID
    /// below it); repeatable.
    #[arg(long = "spiffe-id")]
    spiffe_ids: Vec<String>,
    /// The client's public keys for private_key_jwt (a JWK, a JWK Set, a PEM key);
    /// repeatable.
    #[arg(long)]
    jwks: Vec<PathBuf>,
    /// Where the client publishes its keys instead.
    #[arg(long)]
    jwks_uri: Option<String>,
    /// A scope value it may request; repeatable.
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// A resource or audience it may request (the first ones its tokens get by default);
    /// repeatable.
    #[arg(long = "audience")]
    audiences: Vec<String>,
    /// A grant type it may use (default client_credentials); repeatable.
    #[arg(long = "grant-type")]
    grant_types: Vec<String>,
    /// Access-token lifetime in seconds (0: the server default).
    #[arg(long, default_value_t = 0)]
    access_token_ttl: u64,
    /// Tokens must be DPoP-bound.
    #[arg(long)]
    require_dpop: bool,
    /// Tokens must be certificate-bound (mutual TLS only).
    #[arg(long)]
    require_certificate_binding: bool,
    /// Token exchange (RFC 8693): it may ask for delegation (`act`; without an actor
    /// token the client itself acts).
    #[arg(long)]
    exchange_delegate: bool,
    /// Token exchange: it may ask for impersonation (no new actor).
    #[arg(long)]
    exchange_impersonate: bool,
    /// Token exchange: a subject_token_type it may present (access_token, jwt, txn_token, wit or
    /// the full URI); repeatable.
    #[arg(long = "exchange-subject-type")]
    exchange_subject_types: Vec<String>,
    /// Token exchange: an actor_token_type it may present (access_token, jwt); repeatable.
    #[arg(long = "exchange-actor-type")]
    exchange_actor_types: Vec<String>,
    /// Token exchange: an `aud` accepted on presented access tokens besides the issuer and
    /// the client_id (a resource it serves); repeatable.
    #[arg(long = "exchange-subject-audience")]
    exchange_subject_audiences: Vec<String>,
    /// It may ask the Transaction Token Service for Txn-Tokens and replacements.
    #[arg(long)]
    txn_tokens: bool,
    /// Token exchange: a trusted external issuer (`[[oauth.trusted_issuers]]`) whose tokens
    /// it may present; repeatable.
    #[arg(long = "exchange-trusted-issuer")]
    exchange_trusted_issuers: Vec<String>,
    #[command(flatten)]
    socket: SocketArg,
}

impl ClientFields {
    /// The registration as the admin API takes it.
    fn spec(&self) -> Result<Value> {
        let mut keys = Vec::new();
        for path in &self.jwks {
            keys.extend(input::public_keys(path)?);
        }
        let mut methods = self.auth_methods.clone();
        if methods.is_empty() {
            if !keys.is_empty() || self.jwks_uri.is_some() {
                methods.push("private_key_jwt".into());
            }
            if !self.spiffe_ids.is_empty() {
                methods.extend(["spiffe_jwt".to_owned(), "spiffe_x509".to_owned()]);
            }
        }
        if methods.is_empty() {
            bail!("give --auth-method, or --jwks/--jwks-uri or --spiffe-id to imply one");
        }
        let mut spec = json!({
            "auth_methods": methods, "spiffe_ids": self.spiffe_ids, "scopes": self.scopes,
            "audiences": self.audiences, "grant_types": self.grant_types,
            "access_token_ttl": self.access_token_ttl, "require_dpop": self.require_dpop,
            "require_certificate_binding": self.require_certificate_binding,
        });
        if !keys.is_empty() {
            spec["jwks"] = serde_json::to_value(JwkSet { keys })?;
        }
        if let Some(uri) = &self.jwks_uri {
            spec["jwks_uri"] = json!(uri);
        }
        let exchange = json!({
            "delegate": self.exchange_delegate, "impersonate": self.exchange_impersonate,
            "subject_token_types": token_type_uris(&self.exchange_subject_types),
            "actor_token_types": token_type_uris(&self.exchange_actor_types),
            "subject_audiences": self.exchange_subject_audiences, "txn_tokens": self.txn_tokens,
            "trusted_issuers": self.exchange_trusted_issuers,
        });
        if exchange
            .as_object()
            .is_some_and(|m| m.values().any(|v| v != &json!(false) && v != &json!([])))
        {
            spec["exchange"] = exchange;
        }
        Ok(spec)
    }
}

/// Token type names as RFC 8693 URIs: a short name (`access_token`) gets the
/// `urn:ietf:params:oauth:token-type:` prefix; a URI is kept (the server checks it).
fn token_type_uris(names: &[String]) -> Vec<String> {
    names.iter().map(|n| token_type_uri(n)).collect()
}

/// One token type name as an RFC 8693 URI (see [`token_type_uris`]).
fn token_type_uri(name: &str) -> String {
    if name.contains(':') {
        name.to_owned()
    } else if name == "wit" {
        // WIMSE registers no token type for a WIT yet: Lanyard's own URN.
        lanyard_core::oauth::TokenTypeUri::LanyardWit.as_str().to_owned()
    } else {
        format!("urn:ietf:params:oauth:token-type:{name}")
    }
}

fn print(v: &Value) -> Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(ExitCode::SUCCESS)
}

/// Prints a create/update answer, with a note when it holds a secret shown only now.
fn print_with_secret(v: &Value) -> Result<ExitCode> {
    if v.get("client_secret").is_some() {
        eprintln!("note: client_secret is shown only now; the server keeps only its hash");
    }
    print(v)
}

pub(crate) fn run_client(cmd: ClientCommand) -> Result<ExitCode> {
    match cmd {
        ClientCommand::Create { client_id, fields } => {
            let mut body = fields.spec()?;
            body["client_id"] = json!(client_id);
            print_with_secret(&fields.socket.call("POST", "/v1/oauth/clients", Some(&body))?)
        }
        ClientCommand::List { socket } => print(&socket.call("GET", "/v1/oauth/clients", None)?),
        ClientCommand::Show { client_id, socket } => {
            print(&socket.call("GET", &format!("/v1/oauth/clients/{}", encode(&client_id)), None)?)
        }
        ClientCommand::Update {
            client_id,
            revision,
            fields,
        } => {
            let mut body = fields.spec()?;
            body["revision"] = json!(revision);
            print_with_secret(&fields.socket.call(
                "PUT",
                &format!("/v1/oauth/clients/{}", encode(&client_id)),
                Some(&body),
            )?)
        }
        ClientCommand::Delete { client_id, socket } => {
            socket.call("DELETE", &format!("/v1/oauth/clients/{}", encode(&client_id)), None)?;
            println!("deleted {client_id}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum OAuthCommand {
    /// Get an access token as a client (client_credentials). Prints the token response.
    Token(Box<TokenArgs>),
    /// Exchange a token (RFC 8693): delegation with --actor-token (or the client itself
    /// acting, when its policy allows), impersonation without. Prints the token response.
    Exchange(Box<ExchangeArgs>),
    /// Get a Txn-Token from the Transaction Token Service
    /// (draft-ietf-oauth-transaction-tokens-11), or replace one (--subject-token-type
    /// txn_token). Prints the token response.
    TxnToken(Box<TxnTokenArgs>),
    /// Redeem a JWT authorization grant from a home server (identity chaining: the JWT
    /// bearer grant of RFC 7523 §2.1) for a local access token. Prints the token response.
    Redeem(Box<RedeemArgs>),
}

/// Who the client is and how it authenticates, shared by every `lanyard oauth` command.
#[derive(Args, Debug)]
pub(crate) struct ClientArgs {
    /// The authorization server's issuer identifier (its metadata is read from
    /// `<issuer>/.well-known/oauth-authorization-server`).
    #[arg(long)]
    issuer: String,
    /// The client_id.
    #[arg(long)]
    client_id: String,
    /// Authenticate with private_key_jwt signed by this private key (JWK or PEM).
    #[arg(long, conflicts_with_all = ["jwt_svid_from_agent", "wit_from_agent", "x509_from_agent"])]
    key: Option<PathBuf>,
    /// Authenticate with a JWT-SVID (audience: the issuer) fetched from the local agent.
    #[arg(long, conflicts_with_all = ["wit_from_agent", "x509_from_agent"])]
    jwt_svid_from_agent: bool,
    /// Authenticate over mutual TLS with the X.509-SVID fetched from the local agent, at
    /// the server's mutual-TLS token endpoint (`mtls_endpoint_aliases`); the token is bound
    /// to the certificate (`cnf.x5t#S256`).
    #[arg(long, conflicts_with = "wit_from_agent")]
    x509_from_agent: bool,
    /// Authenticate with a WIT-SVID fetched from the local agent and a proof signed with
    /// its key (`spiffe_wit`; the server must have `[oauth] wit_client_auth` on).
    #[arg(long)]
    wit_from_agent: bool,
    /// The SPIFFE ID to fetch from the agent (default: the agent's first).
    #[arg(long)]
    spiffe_id: Option<String>,
    #[command(flatten)]
    endpoint: EndpointArg,
    /// Bind the token to a DPoP key (RFC 9449): the key in --dpop-key, or a new one.
    #[arg(long)]
    dpop: bool,
    /// The DPoP private key (JWK or PEM); implies --dpop.
    #[arg(long)]
    dpop_key: Option<PathBuf>,
    /// Print only the issued token.
    #[arg(long)]
    raw: bool,
}

/// What a token may be for: scope and targets (RFC 6749 §3.3, RFC 8707, RFC 8693 §2.1).
#[derive(Args, Debug)]
pub(crate) struct TargetArgs {
    /// The scope to request.
    #[arg(long)]
    scope: Option<String>,
    /// A resource (RFC 8707) to request; repeatable.
    #[arg(long)]
    resource: Vec<String>,
    /// An audience (RFC 8693) to request; repeatable.
    #[arg(long)]
    audience: Vec<String>,
}

impl TargetArgs {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(scope) = &self.scope {
            pairs.push(("scope", scope.clone()));
        }
        pairs.extend(self.resource.iter().map(|r| ("resource", r.clone())));
        pairs.extend(self.audience.iter().map(|a| ("audience", a.clone())));
        pairs
    }
}

#[derive(Args, Debug)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    target: TargetArgs,
}

/// The subject token of an exchange or a Txn-Token request.
#[derive(Args, Debug)]
pub(crate) struct SubjectArgs {
    /// The subject token: the value, @FILE, or - for stdin.
    #[arg(long, required_unless_present = "subject_from_agent")]
    subject_token: Option<String>,
    /// Its type: access_token (the default), jwt, txn_token, or a full token-type URI.
    #[arg(long, default_value = "access_token")]
    subject_token_type: String,
    /// Use a JWT-SVID from the local agent (audience: the issuer; for --spiffe-id, or the
    /// agent's first identity) as the subject token, of type jwt.
    #[arg(long, conflicts_with_all = ["subject_token", "subject_token_type"])]
    subject_from_agent: bool,
}

#[derive(Args, Debug)]
pub(crate) struct ExchangeArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    subject: SubjectArgs,
    /// The actor token (delegation): the value, @FILE, or - for stdin.
    #[arg(long, conflicts_with = "actor_from_agent")]
    actor_token: Option<String>,
    /// Its type: access_token, jwt (the default), or a full token-type URI.
    #[arg(long, default_value = "jwt")]
    actor_token_type: String,
    /// Use a JWT-SVID from the local agent (audience: the issuer) as the actor token.
    #[arg(long)]
    actor_from_agent: bool,
    /// The token type to issue (access_token by default; jwt for an identity-chaining
    /// grant; txn_token; or a full URI).
    #[arg(long)]
    requested_token_type: Option<String>,
    #[command(flatten)]
    target: TargetArgs,
}

#[derive(Args, Debug)]
pub(crate) struct TxnTokenArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    subject: SubjectArgs,
    /// `request_context`: a JSON object (or @FILE), e.g. '{"req_ip":"10.0.0.1"}'.
    #[arg(long)]
    request_context: Option<String>,
    /// `request_details`: a JSON object (or @FILE).
    #[arg(long)]
    request_details: Option<String>,
    /// The scope of the transaction (required by the draft; never wider than the subject
    /// token's).
    #[arg(long)]
    scope: String,
    /// The trust domain the Txn-Token is for (its `aud`; Lanyard's: the server's trust
    /// domain name, e.g. example.org).
    #[arg(long)]
    audience: String,
}

#[derive(Args, Debug)]
pub(crate) struct RedeemArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The grant (an `authorization-grant+jwt` from `lanyard oauth exchange
    /// --requested-token-type jwt --audience <this issuer>` at the home server): the
    /// value, @FILE, or - for stdin.
    #[arg(long)]
    assertion: String,
    #[command(flatten)]
    target: TargetArgs,
}

pub(crate) fn run_oauth(cmd: OAuthCommand) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        match cmd {
            OAuthCommand::Token(args) => {
                let mut grant = vec![("grant_type", "client_credentials".to_owned())];
                grant.extend(args.target.pairs());
                request_token(&args.client, grant).await
            }
            OAuthCommand::Exchange(args) => {
                let mut grant = vec![("grant_type", TOKEN_EXCHANGE.to_owned())];
                grant.extend(args.subject.pairs(&args.client).await?);
                let actor = match (&args.actor_token, args.actor_from_agent) {
                    (Some(token), _) => Some(input::token(token)?),
                    (None, true) => Some(agent_jwt_svid(&args.client).await?),
                    (None, false) => None,
                };
                if let Some(actor) = actor {
                    grant.push(("actor_token", actor));
                    grant.push(("actor_token_type", token_type_uri(&args.actor_token_type)));
                }
                if let Some(t) = &args.requested_token_type {
                    grant.push(("requested_token_type", token_type_uri(t)));
                }
                grant.extend(args.target.pairs());
                request_token(&args.client, grant).await
            }
            OAuthCommand::Redeem(args) => {
                let mut grant = vec![
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned()),
                    ("assertion", input::token(&args.assertion)?),
                ];
                grant.extend(args.target.pairs());
                request_token(&args.client, grant).await
            }
            OAuthCommand::TxnToken(args) => {
                let mut grant = vec![
                    ("grant_type", TOKEN_EXCHANGE.to_owned()),
                    ("requested_token_type", token_type_uri("txn_token")),
                ];
                grant.extend(args.subject.pairs(&args.client).await?);
                for (name, value) in [
                    ("request_context", &args.request_context),
                    ("request_details", &args.request_details),
                ] {
                    if let Some(value) = value {
                        let text = json_object_arg(name, value)?;
                        grant.push((name, text));
                    }
                }
                grant.push(("scope", args.scope.clone()));
                grant.push(("audience", args.audience.clone()));
                request_token(&args.client, grant).await
            }
        }
    })
}

/// The RFC 8693 grant type.
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

impl SubjectArgs {
    /// `subject_token` and `subject_token_type`, the token read from the arguments or
    /// fetched from the agent `client` names.
    async fn pairs(&self, client: &ClientArgs) -> Result<Vec<(&'static str, String)>> {
        let (token, token_type) = match &self.subject_token {
            Some(token) => (input::token(token)?, token_type_uri(&self.subject_token_type)),
            None => (agent_jwt_svid(client).await?, token_type_uri("jwt")),
        };
        Ok(vec![("subject_token", token), ("subject_token_type", token_type)])
    }
}

/// A JSON object given inline or as @FILE, checked here so that a typo fails before the
/// request (the server checks it again).
fn json_object_arg(name: &str, value: &str) -> Result<String> {
    let text = match value.strip_prefix('@') {
        Some(path) => input::read(std::path::Path::new(path))?,
        None => value.to_owned(),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(_)) => Ok(text.trim().to_owned()),
        Ok(_) => bail!("--{} must be a JSON object", name.replace('_', "-")),
        Err(e) => bail!("--{}: {e}", name.replace('_', "-")),
    }
}

/// A JWT-SVID for audience `issuer` from the local agent.
async fn agent_jwt_svid(client: &ClientArgs) -> Result<String> {
    let wanted = client
        .spiffe_id
        .as_deref()
        .map(SpiffeId::parse)
        .transpose()
        .context("--spiffe-id")?;
    let svids = client
        .endpoint
        .connect()
        .await?
        .fetch_jwt_svid(&[client.issuer.trim()], wanted.as_ref())
        .await?;
    Ok(svids
        .into_iter()
        .next()
        .context("the agent returned no JWT-SVID")?
        .token)
}

/// The client authentication of one attempt: form parameters and headers.
#[derive(Default)]
struct ClientAuth {
    form: Vec<(&'static str, String)>,
    headers: Vec<(&'static str, String)>,
}

impl From<Vec<(&'static str, String)>> for ClientAuth {
    fn from(form: Vec<(&'static str, String)>) -> Self {
        ClientAuth {
            form,
            headers: Vec::new(),
        }
    }
}

/// The client authentication of one attempt.
async fn client_auth(args: &ClientArgs, issuer: &str) -> Result<ClientAuth> {
    let provider = lanyard_crypto::provider();
    let wanted = args
        .spiffe_id
        .as_deref()
        .map(SpiffeId::parse)
        .transpose()
        .context("--spiffe-id")?;
    if args.wit_from_agent {
        let svids = args.endpoint.connect().await?.fetch_wit_svids(wanted.as_ref()).await?;
        let svid = svids.into_iter().next().context("the agent returned no WIT-SVID")?;
        let key = provider.signing_key(&svid.key()?)?;
        let params = ClientAttestationPopParams {
            issuer,
            spiffe_id: svid.spiffe_id.as_str(),
            challenge: None,
        };
        let pop = create_client_attestation_pop(key.as_ref(), &params, input::now(None), provider.as_ref())?;
        return Ok(ClientAuth {
            form: Vec::new(),
            headers: vec![
                ("oauth-client-attestation", svid.token),
                ("oauth-client-attestation-pop", pop),
            ],
        });
    }
    if let Some(path) = &args.key {
        let key = input::signing_key(path, None)?;
        let params = ClientAssertionParams::new(&args.client_id, issuer);
        let assertion = create_client_assertion(&key, &params, input::now(None), provider.as_ref())?;
        return Ok(vec![
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            ),
            ("client_assertion", assertion),
        ]
        .into());
    }
    if args.jwt_svid_from_agent {
        return Ok(vec![
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe".into(),
            ),
            ("client_assertion", agent_jwt_svid(args).await?),
        ]
        .into());
    }
    if args.x509_from_agent {
        // The certificate of the TLS connection authenticates; the form names the client.
        return Ok(ClientAuth::default());
    }
    bail!(
        "give --key (private_key_jwt), --jwt-svid-from-agent (jwt-spiffe), --x509-from-agent (mutual TLS) \
         or --wit-from-agent (spiffe_wit)"
    )
}

/// An HTTP client that presents the local agent's X.509-SVID (for `--spiffe-id`, or the
/// default one) and accepts a server with an X.509-SVID of the same trust domain, validated
/// against the agent's bundles.
async fn agent_mtls_client(args: &ClientArgs) -> Result<reqwest::Client> {
    let context = args.endpoint.connect().await?.fetch_x509_context().await?;
    let svid = match args.spiffe_id.as_deref() {
        Some(id) => context.svid_for(&SpiffeId::parse(id).context("--spiffe-id")?),
        None => context.default_svid(),
    }
    .context("the agent returned no X.509-SVID for this identity")?;
    let trust_domain = svid.spiffe_id.trust_domain();
    let source = lanyard_x509::tls::SvidSource::new(&svid.to_x509_svid(), context.bundle_set()?)?;
    let tls = lanyard_x509::tls::client_config(
        std::sync::Arc::new(source),
        lanyard_x509::tls::Authorizer::TrustDomain(trust_domain),
    )?;
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// Sends `grant` (the grant type and its parameters) to the token endpoint as the client
/// `args` describes, retrying once with a DPoP nonce when asked; prints the response.
async fn request_token(args: &ClientArgs, grant: Vec<(&'static str, String)>) -> Result<ExitCode> {
    // No redirects: one could carry the client's credentials to another host.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let issuer = args.issuer.trim().to_owned();
    if let Err(problem) = check_remote_url(&issuer) {
        anyhow::bail!("--issuer {}", problem.as_str());
    }
    let url = metadata_url(&issuer).or_else(|_| -> Result<String> {
        // A plain-HTTP issuer on loopback (a development server).
        Ok(format!(
            "{}/.well-known/oauth-authorization-server",
            issuer.trim_end_matches('/')
        ))
    })?;
    let body = http
        .get(&url)
        .send()
        .await
        .with_context(|| format!("fetching {url}"))?
        .bytes()
        .await?;
    let metadata = AuthorizationServerMetadata::from_json(&body, &issuer).context("the server's metadata")?;
    let (http, token_endpoint) = if args.x509_from_agent {
        // RFC 8705 §5: the mutual-TLS alias when the server has one.
        let alias = metadata
            .mtls_endpoint_aliases
            .as_ref()
            .and_then(|aliases| aliases.get("token_endpoint"))
            .cloned();
        let endpoint = alias
            .or(metadata.token_endpoint)
            .context("the metadata has no token_endpoint")?;
        (agent_mtls_client(args).await?, endpoint)
    } else {
        (
            http,
            metadata.token_endpoint.context("the metadata has no token_endpoint")?,
        )
    };
    // The client's credentials go there: the rules for URLs found in metadata.
    if let Err(problem) = check_discovered_url(&token_endpoint, &url) {
        anyhow::bail!("the server's token endpoint {problem}");
    }
    let provider = lanyard_crypto::provider();
    let dpop_key: Option<std::sync::Arc<dyn SigningKey>> = match &args.dpop_key {
        Some(path) => Some(std::sync::Arc::new(input::signing_key(path, None)?)),
        None if args.dpop => {
            eprintln!("note: a new DPoP key is used and not kept; pass --dpop-key to keep it");
            Some(provider.generate_key(Algorithm::ES256)?)
        }
        None => None,
    };
    let mut nonce: Option<String> = None;
    for _attempt in 0..2 {
        let mut pairs = grant.clone();
        pairs.push(("client_id", args.client_id.clone()));
        let auth = client_auth(args, &issuer).await?;
        pairs.extend(auth.form);
        let form = encode_form(pairs.iter().map(|(k, v)| (*k, v.as_str())));
        let mut request = http
            .post(&token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form);
        for (name, value) in auth.headers {
            request = request.header(name, value);
        }
        if let Some(key) = &dpop_key {
            let proof = create_dpop_proof(
                key.as_ref(),
                &DpopProofParams {
                    method: "POST",
                    uri: &token_endpoint,
                    access_token: None,
                    nonce: nonce.as_deref(),
                },
                input::now(None),
                provider.as_ref(),
            )?;
            request = request.header("dpop", proof);
        }
        let response = request.send().await.with_context(|| format!("POST {token_endpoint}"))?;
        let status = response.status();
        let fresh_nonce = response
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await?;
        if status.is_success() {
            let answer = TokenResponse::from_json(&body)?;
            if args.raw {
                println!("{}", answer.access_token);
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::from_slice::<Value>(&body)?)?
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        let error: ErrorResponse = serde_json::from_slice(&body)
            .with_context(|| format!("the token endpoint answered {status} without an OAuth error"))?;
        if error.error == lanyard_core::oauth::ErrorCode::UseDpopNonce && nonce.is_none() && fresh_nonce.is_some() {
            nonce = fresh_nonce;
            continue;
        }
        bail!(
            "the token endpoint refused ({status}): {}{}",
            error.error,
            error.error_description.map(|d| format!(": {d}")).unwrap_or_default()
        );
    }
    bail!("the token endpoint kept asking for a DPoP nonce")
}
