//! A load generator for an OAuth token endpoint (`bench/oauth-load/run.sh`): the same
//! workload as `bench/oauth-load/load.mjs` (client_credentials with pre-signed ES256
//! `private_key_jwt` assertions, distinct `jti`s, 290 s lifetime, `aud` the issuer alone)
//! on plain HTTP/1.1 keep-alive connections driven by one thread, so that on a small
//! machine the generator takes as little CPU from the server under test as it can.
//!
//! ```text
//! cargo run --release -p lanyard --example oauth_load -- \
//!     --as http://127.0.0.1:18080 --key keys/client.jwk.json --connections 32 --seconds 15
//! ```
//!
//! Prints one JSON line: requests per second, latency percentiles (p50/p90/p99, ms), the
//! totals and the failures. Checks first that an answer is an ES256 JWT (`at+jwt`, or
//! `--expect-typ`).
//!
//! Other grants: `--grant-type` replaces `client_credentials` and each `--param name=value`
//! is added to every request, e.g. a token exchange (`--grant-type
//! urn:ietf:params:oauth:grant-type:token-exchange --param subject_token=... --param
//! subject_token_type=urn:ietf:params:oauth:token-type:access_token`) or a Txn-Token
//! request (`--param requested_token_type=urn:ietf:params:oauth:token-type:txn_token
//! --expect-typ txntoken+jwt`).
//!
//! `--dpop es256` adds a pre-signed DPoP proof (RFC 9449) to every request, made with one
//! fresh P-256 key and the server's nonce (fetched first), and expects `token_type: DPoP`.
//! `--endpoint introspection` posts to the introspection endpoint instead (RFC 7662, no
//! `grant_type` or `scope`; give the token with `--param token=...`) and expects
//! `active: true`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use lanyard_core::oauth::{
    ClientAssertionParams, DpopProofParams, create_client_assertion, create_dpop_proof, encode_form,
};
use lanyard_core::{Algorithm, Clock as _, Jwk, SystemClock};

/// Command-line options (`--name value`).
struct Options {
    authorization_server: String,
    client_id: String,
    key: String,
    connections: usize,
    seconds: u64,
    assertions: usize,
    scope: String,
    grant_type: String,
    params: Vec<(String, String)>,
    expect_typ: String,
    /// `token` or `introspection`: which endpoint of the metadata to load.
    endpoint: String,
    /// Add a DPoP proof to every request.
    dpop: bool,
}

impl Options {
    fn parse() -> Result<Options> {
        let mut o = Options {
            authorization_server: "http://127.0.0.1:18080".into(),
            client_id: "bench-client".into(),
            key: "keys/client.jwk.json".into(),
            connections: 32,
            seconds: 15,
            assertions: 200_000,
            scope: "read".into(),
            grant_type: "client_credentials".into(),
            params: Vec::new(),
            expect_typ: "at+jwt".into(),
            endpoint: "token".into(),
            dpop: false,
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
                "--assertions" => o.assertions = value.parse()?,
                "--scope" => o.scope = value.clone(),
                "--grant-type" => o.grant_type = value.clone(),
                "--expect-typ" => o.expect_typ = value.clone(),
                "--endpoint" if value == "token" || value == "introspection" => o.endpoint = value.clone(),
                "--dpop" if value.eq_ignore_ascii_case("es256") => o.dpop = true,
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

/// `host:port` and path of an `http://` URL.
fn split_http_url(url: &str) -> Result<(String, String)> {
    let rest = url.strip_prefix("http://").context("only http:// URLs")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    Ok((
        authority.to_owned(),
        if path.is_empty() { "/".into() } else { path.to_owned() },
    ))
}

/// One HTTP/1.1 keep-alive connection.
async fn connect(authority: &str) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
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
}

/// The requests: one per assertion, each with its own assertion and proof.
fn prepare(o: &Options, target: &Target<'_>) -> Result<Vec<Prepared>> {
    let provider = lanyard_crypto::provider();
    let jwk = Jwk::from_json(std::fs::read(&o.key).with_context(|| o.key.clone())?.as_slice())?;
    let kid = jwk.kid.clone();
    let key = provider.signing_key(&jwk)?;
    let now = SystemClock.now();
    let mut out = Vec::with_capacity(o.assertions);
    for _ in 0..o.assertions {
        let params = ClientAssertionParams {
            kid: kid.as_deref(),
            lifetime: 290,
            ..ClientAssertionParams::new(&o.client_id, target.issuer)
        };
        let assertion = create_client_assertion(key.as_ref(), &params, now, provider.as_ref())?;
        let mut pairs = Vec::new();
        if o.endpoint == "token" {
            pairs.extend([("grant_type", o.grant_type.as_str()), ("scope", o.scope.as_str())]);
        }
        pairs.extend([
            ("client_id", o.client_id.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ]);
        pairs.extend(o.params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let dpop = match target.dpop {
            Some((dpop_key, nonce)) => Some(proof(dpop_key, target.endpoint, Some(nonce))?),
            None => None,
        };
        out.push(Prepared {
            body: Bytes::from(encode_form(pairs)),
            dpop,
        });
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
async fn dpop_nonce(authority: &str, path: &str, endpoint: &str, key: &dyn lanyard_core::SigningKey) -> Result<String> {
    let mut sender = connect(authority).await?;
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
    let endpoint = metadata[format!("{}_endpoint", o.endpoint)]
        .as_str()
        .with_context(|| format!("metadata without {}_endpoint", o.endpoint))?;
    let (authority, path) = split_http_url(endpoint)?;
    let dpop_key = if o.dpop {
        Some(lanyard_crypto::provider().generate_key(Algorithm::ES256)?)
    } else {
        None
    };
    let nonce = match &dpop_key {
        Some(key) => Some(dpop_nonce(&authority, &path, endpoint, key.as_ref()).await?),
        None => None,
    };
    let target = Target {
        issuer,
        endpoint,
        dpop: dpop_key.as_deref().zip(nonce.as_deref()),
    };
    let mut bodies = prepare(&o, &target)?;

    // One request by hand: the answer must be what the run expects.
    let first = bodies.pop().context("no assertions")?;
    let mut sender = connect(&authority).await?;
    let response = sender.send_request(post(&authority, &path, &first)?).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let answer: serde_json::Value = serde_json::from_slice(&body)?;
    check_answer(&o, status, &answer)?;

    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..o.connections {
        let (bodies, next, authority, path) = (Arc::clone(&bodies), Arc::clone(&next), authority.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let (mut non_2xx, mut errors) = (0u64, 0u64);
            let Ok(mut sender) = connect(&authority).await else {
                return (latencies, non_2xx, 1);
            };
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(prepared) = bodies.get(i) else { break };
                let Ok(request) = post(&authority, &path, prepared) else {
                    break;
                };
                let sent = Instant::now();
                match sender.send_request(request).await {
                    Ok(response) => {
                        let ok = response.status().is_success();
                        if response.into_body().collect().await.is_err() {
                            errors += 1;
                            break;
                        }
                        latencies.push(sent.elapsed().as_micros() as u64);
                        non_2xx += u64::from(!ok);
                    }
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
            (latencies, non_2xx, errors)
        }));
    }
    let (mut latencies, mut non_2xx, mut errors) = (Vec::new(), 0, 0);
    for task in tasks {
        let (l, n, e) = task.await?;
        latencies.extend(l);
        non_2xx += n;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len().max(1)) - 1;
        latencies.get(i).map_or(0.0, |us| *us as f64 / 1000.0)
    };
    println!(
        "{}",
        serde_json::json!({
            "as": o.authorization_server,
            "generator": "oauth_load (Rust, hyper HTTP/1.1, one thread)",
            "endpoint": o.endpoint,
            "grant_type": if o.endpoint == "token" { o.grant_type.as_str() } else { "-" },
            "dpop": o.dpop,
            "connections": o.connections,
            "requests_per_second": (latencies.len() as f64 / elapsed).round(),
            "latency_ms": {"p50": percentile(0.50), "p90": percentile(0.90), "p99": percentile(0.99)},
            "total": latencies.len(),
            "non_2xx": non_2xx,
            "errors": errors,
        })
    );
    Ok(())
}
