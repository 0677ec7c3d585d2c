//! `lanyard httpsig sign|verify`: sign a request, or check the WIMSE HTTP Message
//! Signature (draft-ietf-wimse-http-signature-07: `@path` + `@query`) of a captured request
//! or response. The -06 `@request-target` form is signed with `--request-target` and
//! accepted with `--accept-request-target`.
//!
//! Messages are read as HTTP/1.1 text: a start line, header lines, a blank line, the body
//! (the form the draft's examples use).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use lanyard_core::httpsig::{
    self, HttpSigPolicy, HttpSigVerifier, RequestParts, RequestSigning, ResponseParts, SignatureCheck, TargetComponents,
};
use lanyard_core::wimse::audience_for;
use lanyard_core::{Algorithm, InMemoryReplayCache, KeyUse, TrustDomain, TrustStore, WitPolicy, WitVerifier};
use serde_json::json;

use crate::cmd::args::ProofArgs;
use crate::input;

#[derive(Subcommand, Debug)]
pub(crate) enum HttpsigCommand {
    /// Sign a request (HTTP/1.1 text) with a workload key and its WIT; prints the signed request.
    Sign(SignArgs),
    /// Verify the signature of a captured request (or, with --response, of a response).
    Verify(Box<VerifyArgs>),
}

#[derive(Args, Debug)]
pub(crate) struct SignArgs {
    /// The request as HTTP/1.1 text.
    #[arg(long)]
    request: PathBuf,
    /// The workload's key and WIT, wimse-aud (the target URI) and the signature's lifetime.
    #[command(flatten)]
    proof: ProofArgs,
    /// Ask the server to sign its response (wimse-sign-response).
    #[arg(long)]
    sign_response: bool,
    /// Cover @request-target instead of @path and @query (draft-ietf-wimse-http-signature-06),
    /// for a peer that has not moved to -07.
    #[arg(long)]
    request_target: bool,
    /// Cover @path and @query (the -07 default; kept for older scripts).
    #[arg(long, hide = true, conflicts_with = "request_target")]
    path_query: bool,
    /// Sign as of this Unix time instead of now.
    #[arg(long)]
    now: Option<u64>,
}

#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    /// The request as HTTP/1.1 text.
    #[arg(long)]
    request: PathBuf,
    /// Verify this response (HTTP/1.1 text) to the request instead of the request.
    #[arg(long)]
    response: Option<PathBuf>,
    /// This service's audience (requests): its URI for the request's path.
    #[arg(long)]
    aud: Option<String>,
    /// The trust domain of the WIT issuer keys given with --jwks.
    #[arg(long)]
    trust_domain: Option<String>,
    /// Trusted WIT issuer keys; the sender's WIT is verified before the signature.
    #[arg(long)]
    jwks: Vec<PathBuf>,
    /// Skip WIT verification and check the message signature with this public key
    /// (for captures whose WIT issuer is unknown, like the draft's examples).
    #[arg(long, conflicts_with = "jwks")]
    signer_key: Option<PathBuf>,
    /// The request's nonce that wimse-req-nonce must match (responses).
    #[arg(long)]
    request_nonce: Option<String>,
    /// Also accept the -06 form, @request-target instead of @path and @query (off by default).
    #[arg(long)]
    accept_request_target: bool,
    /// Print the signature base.
    #[arg(long)]
    show_base: bool,
    /// Verify as of this Unix time instead of now.
    #[arg(long)]
    now: Option<u64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// A parsed HTTP/1.1 message.
struct HttpText {
    start: Vec<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpText {
    fn read(path: &PathBuf) -> Result<HttpText> {
        let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let (head, body) = match find(&raw, b"\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| find(&raw, b"\n\n").map(|i| (i, 2)))
        {
            Some((i, sep)) => (&raw[..i], raw[i + sep..].to_vec()),
            None => (&raw[..], Vec::new()),
        };
        let head = std::str::from_utf8(head).with_context(|| format!("{}: headers are not UTF-8", path.display()))?;
        let mut lines = head.lines().map(|l| l.trim_end_matches('\r'));
        let start: Vec<String> = lines.next().unwrap_or_default().split(' ').map(str::to_owned).collect();
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .with_context(|| format!("{}: header line without ':': {line:?}", path.display()))?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        Ok(HttpText { start, headers, body })
    }

    fn header_view(&self) -> Vec<(&str, &[u8])> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect()
    }

    fn request(&self) -> Result<RequestParts<'_>> {
        let [method, target, ..] = self.start.as_slice() else {
            bail!("the request line must be `METHOD target HTTP/1.1`");
        };
        let authority = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.as_str());
        Ok(RequestParts {
            method,
            target,
            authority,
            scheme: Some("https"),
            headers: self.header_view(),
        })
    }

    fn response(&self) -> Result<ResponseParts<'_>> {
        let status = self
            .start
            .get(1)
            .and_then(|s| s.parse().ok())
            .context("the status line must be `HTTP/1.1 <code> <reason>`")?;
        Ok(ResponseParts {
            status,
            headers: self.header_view(),
        })
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn run(cmd: HttpsigCommand) -> Result<ExitCode> {
    match cmd {
        HttpsigCommand::Sign(a) => sign(&a),
        HttpsigCommand::Verify(a) => verify(&a),
    }
}

fn sign(a: &SignArgs) -> Result<ExitCode> {
    let text = HttpText::read(&a.request)?;
    let request = text.request()?;
    let (key, wit) = a.proof.load()?;
    let opts = RequestSigning {
        wit: &wit,
        audience: audience_for(&a.proof.aud),
        lifetime: a.proof.ttl,
        sign_response: a.sign_response,
        target: if a.request_target {
            TargetComponents::RequestTarget
        } else {
            TargetComponents::PathAndQuery
        },
    };
    let provider = lanyard_crypto::provider();
    let signed = httpsig::sign_request(&key, &request, &text.body, &opts, input::now(a.now), provider.as_ref())?;
    println!("{} {} HTTP/1.1", request.method, request.target);
    for (n, v) in &text.headers {
        if !signed.headers.iter().any(|(s, _)| s.eq_ignore_ascii_case(n)) {
            println!("{n}: {v}");
        }
    }
    for (n, v) in &signed.headers {
        println!("{n}: {v}");
    }
    println!();
    print!("{}", String::from_utf8_lossy(&text.body));
    eprintln!("nonce: {}", signed.nonce);
    Ok(ExitCode::SUCCESS)
}

fn verify(a: &VerifyArgs) -> Result<ExitCode> {
    let request_text = HttpText::read(&a.request)?;
    let request = request_text.request()?;
    let response_text = a.response.as_ref().map(HttpText::read).transpose()?;
    let response = response_text.as_ref().map(HttpText::response).transpose()?;
    let now = input::now(a.now);
    let provider = lanyard_crypto::provider();
    let policy = HttpSigPolicy {
        accept_request_target: a.accept_request_target,
        ..HttpSigPolicy::default()
    };
    let base = match &response {
        Some(r) => httpsig::response_signature_base(r, &request),
        None => httpsig::request_signature_base(&request),
    };
    if a.show_base {
        match &base {
            Ok(b) => eprintln!("signature base:\n{b}\n"),
            Err(e) => eprintln!("no signature base: {e}\n"),
        }
    }
    let body = response_text.as_ref().map_or(&request_text.body, |r| &r.body);
    let outcome = if let Some(path) = &a.signer_key {
        let jwk = input::public_keys(path)?
            .into_iter()
            .next()
            .context("no key in --signer-key")?;
        let alg = jwk
            .algorithm()?
            .or_else(|| jwk.usable_algorithms().ok()?.iter().next())
            .unwrap_or(Algorithm::EdDSA);
        let key = provider.verifying_key(&jwk, alg)?;
        let check = SignatureCheck {
            key: key.as_ref(),
            policy: &policy,
            now,
            provider: provider.as_ref(),
        };
        match &response {
            Some(r) => httpsig::verify_response_signature(r, body, &request, a.request_nonce.as_deref(), &check)
                .map(|info| (None, info)),
            None => {
                let aud = a.aud.as_deref().context("--aud is required to verify a request")?;
                httpsig::verify_request_signature(&request, body, audience_for(aud), &check).map(|info| (None, info))
            }
        }
    } else {
        let td = a
            .trust_domain
            .as_deref()
            .context("--trust-domain and --jwks (or --signer-key) are required")?;
        let td = TrustDomain::parse(td).context("--trust-domain")?;
        let store = Arc::new(TrustStore::new(provider.clone()));
        for path in &a.jwks {
            for jwk in input::public_keys(path)? {
                store.add_key(td.name(), KeyUse::WitSvid, &jwk)?;
            }
        }
        let verifier = HttpSigVerifier::new(
            WitVerifier::new(store, WitPolicy::wimse()),
            policy,
            Arc::new(InMemoryReplayCache::new(16)),
        );
        let result = match &response {
            Some(r) => {
                let nonce = a
                    .request_nonce
                    .as_deref()
                    .context("--request-nonce is required to verify a response")?;
                verifier.verify_response(r, body, &request, nonce, now)
            }
            None => {
                let aud = a.aud.as_deref().context("--aud is required to verify a request")?;
                verifier.verify_request(&request, body, audience_for(aud), now)
            }
        };
        result.map(|v| (Some(v.wit.sub.to_string()), v.signature))
    };
    let what = if response.is_some() { "response" } else { "request" };
    match outcome {
        Ok((sender, info)) => {
            if a.json {
                println!(
                    "{}",
                    json!({"valid": true, "message": what, "sender": sender, "label": info.label,
                        "nonce": info.nonce, "created": info.created.as_secs(), "expires": info.expires.as_secs(),
                        "wimse_aud": info.audience, "wimse_req_nonce": info.request_nonce,
                        "sign_response": info.sign_response, "covered": info.covered})
                );
            } else {
                println!("valid signed {what}");
                if let Some(s) = sender {
                    println!("  sender       {s}");
                } else {
                    println!("  sender       (WIT not verified: checked with --signer-key)");
                }
                println!("  covers       {}", info.covered.join(" "));
                println!("  nonce        {}", info.nonce);
                if let Some(aud) = &info.audience {
                    println!("  wimse-aud    {aud}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if a.json {
                println!(
                    "{}",
                    json!({"valid": false, "message": what, "error": {"kind": e.kind(), "message": e.to_string()}})
                );
            } else {
                eprintln!("invalid signed {what}: {e}\n  reason: {}", e.kind());
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
