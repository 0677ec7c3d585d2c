//! The OAuth authorization server from the command line: `lanyard client ...` manages
//! registered clients through the admin API; `lanyard oauth token` gets an access token
//! as a client (`client_credentials`), authenticating with `private_key_jwt` (`--key`) or
//! a JWT-SVID from the local agent (`--jwt-svid-from-agent`, the `jwt-spiffe` assertion of
//! draft-ietf-oauth-spiffe-client-auth), optionally DPoP-bound (RFC 9449, `--dpop`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use lanyard_core::oauth::{
    AuthorizationServerMetadata, ClientAssertionParams, DpopProofParams, ErrorResponse, TokenResponse,
    create_client_assertion, create_dpop_proof, encode_form, metadata_url,
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
    /// An authentication method (private_key_jwt, spiffe_jwt, spiffe_x509,
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
    /// Token exchange: a subject_token_type it may present (access_token, jwt, txn_token or
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
    names
        .iter()
        .map(|n| {
            if n.contains(':') {
                n.clone()
            } else {
                format!("urn:ietf:params:oauth:token-type:{n}")
            }
        })
        .collect()
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
}

#[derive(Args, Debug)]
pub(crate) struct TokenArgs {
    /// The authorization server's issuer identifier (its metadata is read from
    /// `<issuer>/.well-known/oauth-authorization-server`).
    #[arg(long)]
    issuer: String,
    /// The client_id.
    #[arg(long)]
    client_id: String,
    /// Authenticate with private_key_jwt signed by this private key (JWK or PEM).
    #[arg(long, conflicts_with = "jwt_svid_from_agent")]
    key: Option<PathBuf>,
    /// Authenticate with a JWT-SVID (audience: the issuer) fetched from the local agent.
    #[arg(long)]
    jwt_svid_from_agent: bool,
    /// With --jwt-svid-from-agent: the SPIFFE ID to fetch (default: the agent's first).
    #[arg(long)]
    spiffe_id: Option<String>,
    #[command(flatten)]
    endpoint: EndpointArg,
    /// The scope to request.
    #[arg(long)]
    scope: Option<String>,
    /// A resource (RFC 8707) to request; repeatable.
    #[arg(long)]
    resource: Vec<String>,
    /// An audience (RFC 8693) to request; repeatable.
    #[arg(long)]
    audience: Vec<String>,
    /// Bind the token to a DPoP key (RFC 9449): the key in --dpop-key, or a new one.
    #[arg(long)]
    dpop: bool,
    /// The DPoP private key (JWK or PEM); implies --dpop.
    #[arg(long)]
    dpop_key: Option<PathBuf>,
    /// Print only the access token.
    #[arg(long)]
    raw: bool,
}

pub(crate) fn run_oauth(cmd: OAuthCommand) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match cmd {
        OAuthCommand::Token(args) => runtime.block_on(token(&args)),
    }
}

/// The client authentication form parameters of one attempt.
async fn client_auth(args: &TokenArgs, issuer: &str) -> Result<Vec<(&'static str, String)>> {
    let provider = lanyard_crypto::provider();
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
        ]);
    }
    if args.jwt_svid_from_agent {
        let wanted = args
            .spiffe_id
            .as_deref()
            .map(SpiffeId::parse)
            .transpose()
            .context("--spiffe-id")?;
        let svids = args
            .endpoint
            .connect()
            .await?
            .fetch_jwt_svid(&[issuer], wanted.as_ref())
            .await?;
        let svid = svids.into_iter().next().context("the agent returned no JWT-SVID")?;
        return Ok(vec![
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe".into(),
            ),
            ("client_assertion", svid.token),
        ]);
    }
    bail!("give --key (private_key_jwt) or --jwt-svid-from-agent (jwt-spiffe)")
}

async fn token(args: &TokenArgs) -> Result<ExitCode> {
    let http = reqwest::Client::new();
    let issuer = args.issuer.trim().to_owned();
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
    let token_endpoint = metadata.token_endpoint.context("the metadata has no token_endpoint")?;
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
        let mut pairs: Vec<(&str, String)> = vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", args.client_id.clone()),
        ];
        pairs.extend(client_auth(args, &issuer).await?);
        if let Some(scope) = &args.scope {
            pairs.push(("scope", scope.clone()));
        }
        pairs.extend(args.resource.iter().map(|r| ("resource", r.clone())));
        pairs.extend(args.audience.iter().map(|a| ("audience", a.clone())));
        let form = encode_form(pairs.iter().map(|(k, v)| (*k, v.as_str())));
        let mut request = http
            .post(&token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form);
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
        if error.error.as_str() == "use_dpop_nonce" && nonce.is_none() && fresh_nonce.is_some() {
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
