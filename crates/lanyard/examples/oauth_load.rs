//! A load generator for an OAuth token endpoint (`bench/oauth-load/run.sh`): the same
//! workload as `bench/oauth-load/load.mjs` (client_credentials with pre-signed ES256
//! `private_key_jwt` assertions, distinct `jti`s, 290 s lifetime, `aud` the issuer alone)
//! on HTTP/1.1 keep-alive connections driven by one thread, so that on a small machine the
//! generator takes as little CPU from the server under test as it can: the first answer is
//! read and checked with hyper, the measured requests are written and their answers read
//! (status, `Content-Length`) directly on the connection.
//!
//! The thread looks at its connections on a fixed tick (`--tick-us`, default 500 µs)
//! instead of sleeping until an answer arrives: between two looks it sleeps outside the
//! event loop, so the server's answers are queued on the sockets without waking it. On a
//! machine shared with the server under test, being woken by each answer costs the
//! generator a context switch a request and the server more thread switches and
//! reschedule interrupts; on the two-core machine of docs/benchmarks.md the tick leaves the
//! server 0.06–0.15 more of a core. It adds up to one tick to every measured latency and bounds a run at
//! `--connections` requests a tick. `--tick-us 0` restores waking on each answer.
//!
//! ```text
//! cargo run --release -p lanyard --example oauth_load -- \
//!     --as http://127.0.0.1:18080 --key keys/client.jwk.json --connections 32 --seconds 15
//! ```
//!
//! Prints one JSON line: requests per second, latency percentiles (p50/p90/p99, ms), the
//! totals and the failures, over the `--seconds` after a warm-up of `--warmup` seconds
//! (default 1): requests sent during the warm-up (while connections open and the server
//! under test fills its caches, or a JIT compiles) are sent the same way but not counted. Checks first that an answer is an ES256 JWT (`at+jwt`, or
//! `--expect-typ`).
//!
//! Other grants: `--grant-type` replaces `client_credentials` and each `--param name=value`
//! is added to every request, e.g. a token exchange (`--grant-type
//! urn:ietf:params:oauth:grant-type:token-exchange --param subject_token=... --param
//! subject_token_type=urn:ietf:params:oauth:token-type:access_token`) or a Txn-Token
//! request (`--param requested_token_type=urn:ietf:params:oauth:token-type:txn_token
//! --expect-typ txntoken+jwt`).
//!
//! `--grant-key FILE --grant-issuer ISS` (with `--grant-type
//! urn:ietf:params:oauth:grant-type:jwt-bearer`) signs one JWT authorization grant per
//! request as the home server `ISS` of identity chaining (draft-ietf-oauth-identity-chaining,
//! `typ: authorization-grant+jwt`, `aud` the server under test, 290 s, distinct `jti`s,
//! `sub` alice, `scope` read) and sends it as the `assertion` (RFC 7523 §2.1); the server
//! must trust `ISS` with the key's public half.
//!
//! `--dpop es256` adds a pre-signed DPoP proof (RFC 9449) to every request, made with one
//! fresh P-256 key and the server's nonce (fetched first), and expects `token_type: DPoP`.
//! `--endpoint introspection` posts to the introspection endpoint instead (RFC 7662, no
//! `grant_type` or `scope`; give the token with `--param token=...`) and expects
//! `active: true`.
//!
//! SVID client authentication (draft-ietf-oauth-spiffe-client-auth), with the credentials
//! of the agent at `SPIFFE_ENDPOINT_SOCKET`: `--auth jwt-svid` sends the agent's JWT-SVID for
//! the issuer as a `jwt-spiffe` client assertion (the same one on every request: agents
//! reuse JWT-SVIDs, and the method records no `jti`); `--auth x509-svid` presents the
//! agent's X.509-SVID over mutual TLS at the metadata's `mtls_endpoint_aliases` (RFC 8705)
//! and expects tokens bound to it (`cnf.x5t#S256`). The default, `--auth private-key-jwt`,
//! signs one assertion per request with `--key`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use lanyard_core::oauth::{
    AuthorizationGrantClaims, ClientAssertionParams, DpopProofParams, Scope, create_client_assertion,
    create_dpop_proof, encode_form, issue_authorization_grant,
};
use lanyard_core::{Algorithm, Clock as _, Jwk, SystemClock};
use lanyard_workload::WorkloadApiClient;
use lanyard_x509::tls::{Authorizer, SvidSource, client_config};

/// Command-line options (`--name value`).
struct Options {
    authorization_server: String,
    client_id: String,
    key: String,
    connections: usize,
    seconds: u64,
    /// Seconds of load before the measured `seconds`, not counted.
    warmup: u64,
    assertions: usize,
    scope: String,
    grant_type: String,
    params: Vec<(String, String)>,
    expect_typ: String,
    /// `token` or `introspection`: which endpoint of the metadata to load.
    endpoint: String,
    /// Add a DPoP proof to every request.
    dpop: bool,
    /// How the client authenticates.
    auth: ClientAuth,
    /// The home server's signing key (a private JWK file with `kid`) and issuer, for
    /// JWT authorization grants.
    grant_key: Option<String>,
    grant_issuer: Option<String>,
    /// Microseconds between two looks at the connections; 0: woken by each answer.
    tick_us: u64,
}

/// The client authentication method of the run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    /// `private_key_jwt`: a fresh assertion signed with `--key` per request.
    PrivateKeyJwt,
    /// `jwt-spiffe`: the agent's JWT-SVID for the issuer, the same on every request.
    JwtSvid,
    /// Mutual TLS with the agent's X.509-SVID (`tls_client_auth`).
    X509Svid,
}

impl Options {
    fn parse() -> Result<Options> {
        let mut o = Options {
            authorization_server: "http://127.0.0.1:18080".into(),
            client_id: "bench-client".into(),
            key: "keys/client.jwk.json".into(),
            connections: 32,
            seconds: 15,
            warmup: 1,
            assertions: 200_000,
            scope: "read".into(),
            grant_type: "client_credentials".into(),
            params: Vec::new(),
            expect_typ: "at+jwt".into(),
            endpoint: "token".into(),
            dpop: false,
            auth: ClientAuth::PrivateKeyJwt,
            grant_key: None,
            grant_issuer: None,
            tick_us: 500,
        };
        let args: Vec<String> = std::env::args().skip(1).collect();
        for pair in args.chunks(2) {
            let [name, value] = pair else {
                bail!("options come in pairs: --name value")
            };
            match name.as_str() {
                "--as" => o.authorization_server = value.clone(),
                "--client-id" => o.client_id = value.clone(),
                "--key" => o.key = value.clone(),
                "--connections" => o.connections = value.parse()?,
                "--seconds" => o.seconds = value.parse()?,
                "--warmup" => o.warmup = value.parse()?,
                "--assertions" => o.assertions = value.parse()?,
                "--scope" => o.scope = value.clone(),
                "--grant-type" => o.grant_type = value.clone(),
                "--expect-typ" => o.expect_typ = value.clone(),
                "--endpoint" if value == "token" || value == "introspection" => o.endpoint = value.clone(),
                "--dpop" if value.eq_ignore_ascii_case("es256") => o.dpop = true,
                "--grant-key" => o.grant_key = Some(value.clone()),
                "--grant-issuer" => o.grant_issuer = Some(value.clone()),
                "--tick-us" => o.tick_us = value.parse()?,
                "--auth" => {
                    o.auth = match value.as_str() {
                        "private-key-jwt" => ClientAuth::PrivateKeyJwt,
                        "jwt-svid" => ClientAuth::JwtSvid,
                        "x509-svid" => ClientAuth::X509Svid,
                        other => bail!("--auth {other}: private-key-jwt, jwt-svid or x509-svid"),
                    }
                }
                "--param" => {
                    let (k, v) = value.split_once('=').context("--param name=value")?;
                    o.params.push((k.to_owned(), v.to_owned()));
                }
                other => bail!("unknown option {other}"),
            }
        }
        Ok(o)
    }
}

/// `host:port` and path of an `http://` or `https://` URL.
fn split_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .context("only http:// and https:// URLs")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    Ok((
        authority.to_owned(),
        if path.is_empty() { "/".into() } else { path.to_owned() },
    ))
}

/// How connections are opened: plain TCP, or TLS presenting the agent's X.509-SVID.
#[derive(Clone)]
enum Connector {
    Plain,
    Tls(tokio_rustls::TlsConnector),
}

impl Connector {
    /// One HTTP/1.1 keep-alive connection to `authority` (TLS handshake included).
    async fn connect(&self, authority: &str) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(authority).await?;
        stream.set_nodelay(true)?;
        match self {
            Connector::Plain => handshake(stream).await,
            Connector::Tls(tls) => {
                let host = authority.rsplit_once(':').map_or(authority, |(host, _)| host);
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())?;
                handshake(tls.connect(name, stream).await?).await
            }
        }
    }
}

/// An open connection, before any HTTP.
enum Stream {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

impl Connector {
    /// One connection to `authority` for [`Load::drive`] (TLS handshake included).
    async fn open(&self, authority: &str) -> Result<Stream> {
        let stream = tokio::net::TcpStream::connect(authority).await?;
        stream.set_nodelay(true)?;
        Ok(match self {
            Connector::Plain => Stream::Plain(stream),
            Connector::Tls(tls) => {
                let host = authority.rsplit_once(':').map_or(authority, |(host, _)| host);
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())?;
                Stream::Tls(Box::new(tls.connect(name, stream).await?))
            }
        })
    }
}

/// What one connection counted.
#[derive(Default)]
struct Tally {
    /// Microseconds per measured request.
    latencies: Vec<u64>,
    non_2xx: u64,
    errors: u64,
    warmup_non_2xx: u64,
}

/// The measured loop's shared inputs.
struct Load<'a> {
    bodies: &'a [Prepared],
    next: &'a AtomicUsize,
    authority: &'a str,
    path: &'a str,
    measured_from: Instant,
    deadline: Instant,
}

impl Load<'_> {
    /// Sends prepared requests on `stream` one after another until the deadline, reading
    /// each answer's status and `Content-Length` body. The first request's full answer was
    /// checked with hyper; here the HTTP/1.1 messages are written and read directly, so
    /// that the generator takes as little of the machine as it can.
    async fn drive<S>(&self, stream: &mut S, tally: &mut Tally) -> Result<()>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let (mut request, mut answer) = (Vec::with_capacity(2048), Vec::with_capacity(4096));
        while Instant::now() < self.deadline {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(prepared) = self.bodies.get(i) else { break };
            request.clear();
            write_request(&mut request, self.authority, self.path, prepared);
            let sent = Instant::now();
            stream.write_all(&request).await?;
            // TLS: write_all may leave the last record in rustls's buffer.
            stream.flush().await?;
            answer.clear();
            let status = loop {
                if let Some((status, length)) = answer_length(&answer)?
                    && answer.len() >= length
                {
                    // One request in flight: anything after its answer means the
                    // connection is out of step.
                    if answer.len() > length {
                        bail!("the server sent more than one answer to one request");
                    }
                    break status;
                }
                if stream.read_buf(&mut answer).await? == 0 {
                    bail!("the server closed the connection");
                }
            };
            let ok = (200..300).contains(&status);
            if sent >= self.measured_from {
                tally.latencies.push(sent.elapsed().as_micros() as u64);
                tally.non_2xx += u64::from(!ok);
            } else if !ok {
                tally.warmup_non_2xx += 1;
            }
        }
        Ok(())
    }
}

/// The HTTP/1.1 request for `prepared`, as [`post`] builds it.
fn write_request(out: &mut Vec<u8>, authority: &str, path: &str, prepared: &Prepared) {
    use std::io::Write as _;
    let _ = write!(
        out,
        "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n",
        prepared.body.len()
    );
    if let Some(proof) = &prepared.dpop {
        let _ = write!(out, "dpop: {proof}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&prepared.body);
}

/// Once `answer` holds a whole HTTP/1.1 response head: the status and the length of the
/// whole response (head and `Content-Length` body). A response without one plain decimal
/// `Content-Length`, or with a `Transfer-Encoding`, is refused (both servers measured send
/// a `Content-Length`).
fn answer_length(answer: &[u8]) -> Result<Option<(u16, usize)>> {
    let Some(head_end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&answer[..head_end]).context("a response head that is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1.1 "))
        .and_then(|l| l.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
        .context("a response without an HTTP/1.1 status line")?;
    let (mut length, mut lengths) = (None, 0);
    for (name, value) in lines.filter_map(|l| l.split_once(':')) {
        if name.trim().eq_ignore_ascii_case("transfer-encoding") {
            bail!("a response with Transfer-Encoding");
        }
        if name.trim().eq_ignore_ascii_case("content-length") {
            let value = value.trim();
            lengths += 1;
            length = value
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| value.parse::<usize>().ok())
                .flatten();
        }
    }
    let length = length
        .filter(|_| lengths == 1)
        .context("a response without one valid Content-Length")?;
    let total = (head_end + 4)
        .checked_add(length)
        .context("a Content-Length too large")?;
    Ok(Some((status, total)))
}

/// The HTTP/1.1 handshake on an open stream; the connection runs on its own task.
async fn handshake<S>(stream: S) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// A TLS connector presenting the agent's default X.509-SVID and accepting a server with
/// an X.509-SVID of the same trust domain (validated against the agent's bundles).
async fn agent_tls() -> Result<Connector> {
    let context = WorkloadApiClient::connect_env().await?.fetch_x509_context().await?;
    let svid = context.default_svid().context("the agent returned no X.509-SVID")?;
    let trust_domain = svid.spiffe_id.trust_domain();
    let source = SvidSource::new(&svid.to_x509_svid(), context.bundle_set()?)?;
    let config = client_config(Arc::new(source), Authorizer::TrustDomain(trust_domain))?;
    Ok(Connector::Tls(tokio_rustls::TlsConnector::from(Arc::new(config))))
}

/// The agent's JWT-SVID for `audience`.
async fn agent_jwt_svid(audience: &str) -> Result<String> {
    let svids = WorkloadApiClient::connect_env()
        .await?
        .fetch_jwt_svid(&[audience], None)
        .await?;
    Ok(svids
        .into_iter()
        .next()
        .context("the agent returned no JWT-SVID")?
        .token)
}

/// One request: its form body (with its own assertion) and its DPoP proof, if any.
#[derive(Clone)]
struct Prepared {
    body: Bytes,
    dpop: Option<String>,
}

/// What every request is signed for.
struct Target<'a> {
    issuer: &'a str,
    endpoint: &'a str,
    /// The key and the server's nonce, for DPoP proofs.
    dpop: Option<(&'a dyn lanyard_core::SigningKey, &'a str)>,
    /// The agent's JWT-SVID (`--auth jwt-svid`).
    jwt_svid: Option<&'a str>,
}

/// Signs JWT authorization grants as a home server (`--grant-key`, `--grant-issuer`).
struct GrantSigner {
    key: Arc<dyn lanyard_core::SigningKey>,
    kid: String,
    issuer: String,
}

impl GrantSigner {
    fn new(o: &Options) -> Result<Option<GrantSigner>> {
        let (Some(path), Some(issuer)) = (&o.grant_key, &o.grant_issuer) else {
            return Ok(None);
        };
        let jwk = Jwk::from_json(std::fs::read(path).with_context(|| path.clone())?.as_slice())?;
        Ok(Some(GrantSigner {
            key: lanyard_crypto::provider().signing_key(&jwk)?,
            kid: jwk.kid.context("--grant-key needs a kid")?,
            issuer: issuer.clone(),
        }))
    }

    /// One grant for `audience` (the server under test), valid 290 s from `now`.
    fn sign(&self, audience: &str, now: lanyard_core::UnixTime) -> Result<String> {
        let mut jti = [0u8; 16];
        lanyard_crypto::provider().fill_random(&mut jti)?;
        let claims = AuthorizationGrantClaims {
            iss: self.issuer.clone(),
            sub: "alice".into(),
            aud: audience.into(),
            iat: now,
            exp: now.plus(290),
            jti: jti.iter().map(|b| format!("{b:02x}")).collect(),
            client_id: None,
            scope: Some(Scope::parse("read")?),
            act: None,
            extra: serde_json::Map::new(),
        };
        Ok(issue_authorization_grant(self.key.as_ref(), &self.kid, &claims)?)
    }
}

/// The requests: one per assertion, each with its own assertion and proof (with
/// `--auth jwt-svid` or `x509-svid`, one body shared by all, since nothing in it is
/// single-use; DPoP proofs still differ).
fn prepare(o: &Options, target: &Target<'_>) -> Result<Vec<Prepared>> {
    let provider = lanyard_crypto::provider();
    let signer = match o.auth {
        ClientAuth::PrivateKeyJwt => {
            let jwk = Jwk::from_json(std::fs::read(&o.key).with_context(|| o.key.clone())?.as_slice())?;
            Some((provider.signing_key(&jwk)?, jwk.kid))
        }
        ClientAuth::JwtSvid | ClientAuth::X509Svid => None,
    };
    let grants = GrantSigner::new(o)?;
    let now = SystemClock.now();
    let mut shared: Option<Bytes> = None;
    let mut out = Vec::with_capacity(o.assertions);
    for _ in 0..o.assertions {
        let grant = grants.as_ref().map(|g| g.sign(target.issuer, now)).transpose()?;
        let body = match (&signer, &shared) {
            (None, Some(body)) if grant.is_none() => body.clone(),
            _ => {
                let assertion = match &signer {
                    Some((key, kid)) => {
                        let params = ClientAssertionParams {
                            kid: kid.as_deref(),
                            lifetime: 290,
                            ..ClientAssertionParams::new(&o.client_id, target.issuer)
                        };
                        Some((
                            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                            create_client_assertion(key.as_ref(), &params, now, provider.as_ref())?,
                        ))
                    }
                    None => target.jwt_svid.map(|svid| {
                        (
                            "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe",
                            svid.to_owned(),
                        )
                    }),
                };
                let mut pairs = Vec::new();
                if o.endpoint == "token" {
                    pairs.extend([("grant_type", o.grant_type.as_str()), ("scope", o.scope.as_str())]);
                }
                pairs.push(("client_id", o.client_id.as_str()));
                if let Some((kind, assertion)) = &assertion {
                    pairs.extend([
                        ("client_assertion_type", *kind),
                        ("client_assertion", assertion.as_str()),
                    ]);
                }
                if let Some(grant) = &grant {
                    pairs.push(("assertion", grant.as_str()));
                }
                pairs.extend(o.params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                let body = Bytes::from(encode_form(pairs));
                if signer.is_none() && grant.is_none() {
                    shared = Some(body.clone());
                }
                body
            }
        };
        let dpop = match target.dpop {
            Some((dpop_key, nonce)) => Some(proof(dpop_key, target.endpoint, Some(nonce))?),
            None => None,
        };
        out.push(Prepared { body, dpop });
    }
    Ok(out)
}

/// A DPoP proof for a POST to `endpoint`.
fn proof(key: &dyn lanyard_core::SigningKey, endpoint: &str, nonce: Option<&str>) -> Result<String> {
    let provider = lanyard_crypto::provider();
    let params = DpopProofParams {
        method: "POST",
        uri: endpoint,
        access_token: None,
        nonce,
    };
    Ok(create_dpop_proof(key, &params, SystemClock.now(), provider.as_ref())?)
}

fn post(authority: &str, path: &str, request: &Prepared) -> Result<Request<Full<Bytes>>> {
    let mut builder = Request::post(path)
        .header("host", authority)
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(proof) = &request.dpop {
        builder = builder.header("dpop", proof.as_str());
    }
    Ok(builder.body(Full::new(request.body.clone()))?)
}

/// The server's current DPoP nonce: the `DPoP-Nonce` of its answer to a request whose
/// proof has none (RFC 9449 §8).
async fn dpop_nonce(
    connector: &Connector,
    authority: &str,
    path: &str,
    endpoint: &str,
    key: &dyn lanyard_core::SigningKey,
) -> Result<String> {
    let mut sender = connector.connect(authority).await?;
    let request = Prepared {
        body: Bytes::from(encode_form([("grant_type", "client_credentials")])),
        dpop: Some(proof(key, endpoint, None)?),
    };
    let response = sender.send_request(post(authority, path, &request)?).await?;
    Ok(response
        .headers()
        .get("dpop-nonce")
        .context("the server answered a proof without nonce with no DPoP-Nonce")?
        .to_str()?
        .to_owned())
}

/// Checks one answer: an ES256 JWT of the expected type (and `token_type: DPoP` with
/// `--dpop`), or `active: true` from the introspection endpoint.
fn check_answer(o: &Options, status: hyper::StatusCode, answer: &serde_json::Value) -> Result<()> {
    if o.endpoint == "introspection" {
        if answer["active"] != serde_json::Value::Bool(true) {
            bail!("{status}: {answer}");
        }
        return Ok(());
    }
    let token = answer["access_token"]
        .as_str()
        .with_context(|| format!("{status}: {answer}"))?;
    let header = lanyard_core::jose::CompactJws::parse(token)?.header().members.clone();
    if header.get("typ").and_then(|v| v.as_str()) != Some(o.expect_typ.as_str())
        || header.get("alg").and_then(|v| v.as_str()) != Some("ES256")
    {
        bail!("unexpected token header {header:?}");
    }
    if o.dpop && answer["token_type"] != "DPoP" {
        bail!("a DPoP proof was sent, but the answer is {answer}");
    }
    if o.auth == ClientAuth::X509Svid {
        let claims = lanyard_core::jose::CompactJws::parse(token)?.claims()?;
        if claims.get("cnf").and_then(|c| c.get("x5t#S256")).is_none() {
            bail!("mutual TLS, but the token is not bound to the certificate: {claims:?}");
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let o = Options::parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(o))
}

async fn run(o: Options) -> Result<()> {
    let metadata: serde_json::Value = reqwest::get(format!(
        "{}/.well-known/oauth-authorization-server",
        o.authorization_server.trim_end_matches('/')
    ))
    .await?
    .json()
    .await?;
    let issuer = metadata["issuer"].as_str().context("metadata without issuer")?;
    let endpoints = match o.auth {
        ClientAuth::X509Svid => &metadata["mtls_endpoint_aliases"],
        ClientAuth::PrivateKeyJwt | ClientAuth::JwtSvid => &metadata,
    };
    let endpoint = endpoints[format!("{}_endpoint", o.endpoint)]
        .as_str()
        .with_context(|| format!("metadata without {}_endpoint", o.endpoint))?;
    let (authority, path) = split_url(endpoint)?;
    let connector = match o.auth {
        ClientAuth::X509Svid => agent_tls().await?,
        ClientAuth::PrivateKeyJwt | ClientAuth::JwtSvid => Connector::Plain,
    };
    let jwt_svid = match o.auth {
        ClientAuth::JwtSvid => Some(agent_jwt_svid(issuer).await?),
        ClientAuth::PrivateKeyJwt | ClientAuth::X509Svid => None,
    };
    let dpop_key = if o.dpop {
        Some(lanyard_crypto::provider().generate_key(Algorithm::ES256)?)
    } else {
        None
    };
    let nonce = match &dpop_key {
        Some(key) => Some(dpop_nonce(&connector, &authority, &path, endpoint, key.as_ref()).await?),
        None => None,
    };
    let target = Target {
        issuer,
        endpoint,
        dpop: dpop_key.as_deref().zip(nonce.as_deref()),
        jwt_svid: jwt_svid.as_deref(),
    };
    let mut bodies = prepare(&o, &target)?;

    // One request by hand: the answer must be what the run expects.
    let first = bodies.pop().context("no assertions")?;
    let mut sender = connector.connect(&authority).await?;
    let response = sender.send_request(post(&authority, &path, &first)?).await?;
    let status = response.status();
    if !response.headers().contains_key(hyper::header::CONTENT_LENGTH) {
        bail!("the server answered without Content-Length, which the load loop needs");
    }
    let body = response.into_body().collect().await?.to_bytes();
    let answer: serde_json::Value = serde_json::from_slice(&body)?;
    check_answer(&o, status, &answer)?;

    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let measured_from = Instant::now() + Duration::from_secs(o.warmup);
    let deadline = measured_from + Duration::from_secs(o.seconds);
    let mut tasks = Vec::new();
    if o.tick_us > 0 {
        // The tick: this task blocks the runtime's only thread until the next tick, then
        // yields, which makes the runtime collect the ready sockets without waiting (a
        // yielded task is run again after the I/O driver has been polled) and run the
        // connections that have an answer; the thread so never waits in the event loop.
        let tick = Duration::from_micros(o.tick_us);
        tokio::spawn(async move {
            let mut next = Instant::now();
            while next < deadline {
                // After falling behind (a long preemption), the next look is now.
                let now = Instant::now();
                next = (next + tick).max(now);
                std::thread::sleep(next - now);
                tokio::task::yield_now().await;
            }
        });
    }
    for _ in 0..o.connections {
        let (bodies, next, authority, path) = (Arc::clone(&bodies), Arc::clone(&next), authority.clone(), path.clone());
        let connector = connector.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let load = Load {
                bodies: &bodies,
                next: &next,
                authority: &authority,
                path: &path,
                measured_from,
                deadline,
            };
            let outcome = match connector.open(&authority).await {
                Ok(Stream::Plain(mut tcp)) => load.drive(&mut tcp, &mut tally).await,
                Ok(Stream::Tls(mut tls)) => load.drive(tls.as_mut(), &mut tally).await,
                Err(e) => Err(e),
            };
            tally.errors += u64::from(outcome.is_err());
            tally
        }));
    }
    let (mut latencies, mut non_2xx, mut errors, mut warmup_non_2xx) = (Vec::new(), 0, 0, 0);
    for task in tasks {
        let t = task.await?;
        latencies.extend(t.latencies);
        non_2xx += t.non_2xx;
        errors += t.errors;
        warmup_non_2xx += t.warmup_non_2xx;
    }
    let elapsed = measured_from.elapsed().as_secs_f64();
    // Out of prepared requests before the deadline: the run was shorter than asked.
    let ran_out = next.load(Ordering::Relaxed) >= bodies.len();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len().max(1)) - 1;
        latencies.get(i).map_or(0.0, |us| *us as f64 / 1000.0)
    };
    println!(
        "{}",
        serde_json::json!({
            "as": o.authorization_server,
            "generator": "oauth_load (Rust, HTTP/1.1 keep-alive, one thread)",
            "tick_us": o.tick_us,
            "endpoint": o.endpoint,
            "grant_type": if o.endpoint == "token" { o.grant_type.as_str() } else { "-" },
            "dpop": o.dpop,
            "client_auth": match o.auth {
                ClientAuth::PrivateKeyJwt => "private_key_jwt",
                ClientAuth::JwtSvid => "jwt-spiffe",
                ClientAuth::X509Svid => "tls_client_auth",
            },
            "connections": o.connections,
            "warmup_seconds": o.warmup,
            "requests_per_second": if elapsed > 0.0 { (latencies.len() as f64 / elapsed).round() } else { 0.0 },
            "latency_ms": {"p50": percentile(0.50), "p90": percentile(0.90), "p99": percentile(0.99)},
            "total": latencies.len(),
            "ran_out_of_prepared_requests": ran_out,
            "non_2xx": non_2xx,
            "warmup_non_2xx": warmup_non_2xx,
            "errors": errors,
        })
    );
    Ok(())
}
