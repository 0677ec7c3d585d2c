//! `lanyard token verify` and `lanyard token inspect`.
//!
//! `verify` recognises the token by its `typ` header (`wit+jwt`, `wpt+jwt`, or
//! `JWT`/`JOSE`/none for a JWT-SVID), checks it against the trust anchors given on the
//! command line, and says why it failed; the exit code is 1 on any failure.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use lanyard_core::jose::decode_unverified;
use lanyard_core::wimse::audience_for;
use lanyard_core::{
    Error, InMemoryReplayCache, JwtSvidPolicy, JwtSvidVerifier, KeyUse, ProofTokens, SpiffeBundle, TrustDomain,
    TrustStore, UnixTime, VerifiedWit, WitPolicy, WitVerifier, WptPolicy, WptVerifier,
};
use serde_json::{Value, json};

use crate::input;
use crate::output::{relative, rfc3339};

#[derive(Subcommand, Debug)]
pub(crate) enum TokenCommand {
    /// Verify a WIT, a WPT (with its WIT) or a JWT-SVID.
    Verify(Box<VerifyArgs>),
    /// Mint a one-time join token for a new agent (on a running server).
    Join(super::admin::JoinTokenArgs),
    /// Decode a token WITHOUT verifying it.
    Inspect {
        /// The token, @file, or - for stdin.
        token: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    /// The token, @file, or - for stdin. For a WPT, pass its WIT with --wit.
    token: String,
    /// The trust domain whose keys are given by --jwks or --bundle.
    #[arg(long)]
    trust_domain: String,
    /// Trusted public keys for the trust domain (a JWK, a JWK Set or a key file); repeatable.
    #[arg(long)]
    jwks: Vec<PathBuf>,
    /// The trust domain's SPIFFE bundle (its jwt-svid and wit-svid keys are trusted).
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// The WIT that accompanies the WPT being verified.
    #[arg(long)]
    wit: Option<String>,
    /// The audience: this service's URI (WPT) or name (JWT-SVID).
    #[arg(long)]
    aud: Option<String>,
    /// WIT rules: wimse (default) or wit-svid (SPIFFE WIT-SVID profile).
    #[arg(long, value_enum, default_value_t = Profile::Wimse)]
    profile: Profile,
    /// The access token sent with the request (checked against the WPT's ath).
    #[arg(long)]
    access_token: Option<String>,
    /// The Txn-Token sent with the request (checked against the WPT's tth).
    #[arg(long)]
    txn_token: Option<String>,
    /// Another context token header sent with the request, NAME=VALUE (checked against oth).
    #[arg(long = "header", value_name = "NAME=VALUE")]
    headers: Vec<String>,
    /// Verify as of this Unix time instead of now.
    #[arg(long)]
    now: Option<u64>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Profile {
    Wimse,
    WitSvid,
}

/// The kinds of token `verify` recognises, by `typ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Wit,
    Wpt,
    JwtSvid,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Wit => "WIT",
            Kind::Wpt => "WPT",
            Kind::JwtSvid => "JWT-SVID",
        }
    }

    fn of(token: &str) -> Result<Kind, Error> {
        let decoded = decode_unverified(token)?;
        match decoded.header.get("typ").and_then(Value::as_str) {
            Some(t) if t.eq_ignore_ascii_case("wit+jwt") || t.eq_ignore_ascii_case("application/wit+jwt") => {
                Ok(Kind::Wit)
            }
            Some(t) if t.eq_ignore_ascii_case("wpt+jwt") || t.eq_ignore_ascii_case("application/wpt+jwt") => {
                Ok(Kind::Wpt)
            }
            None | Some("JWT" | "JOSE") => Ok(Kind::JwtSvid),
            Some(other) => Err(Error::WrongType {
                expected: "wit+jwt, wpt+jwt or JWT",
                found: Some(other.to_owned()),
            }),
        }
    }
}

pub(crate) fn run(cmd: TokenCommand) -> Result<ExitCode> {
    match cmd {
        TokenCommand::Verify(args) => verify(&args),
        TokenCommand::Inspect { token, json } => inspect(&input::token(&token)?, json),
        TokenCommand::Join(args) => super::admin::join_token(args),
    }
}

fn verify(args: &VerifyArgs) -> Result<ExitCode> {
    let token = input::token(&args.token)?;
    let store = trust_store(args)?;
    let now = input::now(args.now);
    let kind = Kind::of(&token);
    let name = kind.as_ref().map_or("token", |k| k.name());
    let outcome = kind.and_then(|kind| match kind {
        Kind::Wit => wit_verifier(args, store)
            .verify(&token, now)
            .map(|wit| describe_wit(&wit, now)),
        Kind::Wpt => verify_wpt(args, store, &token, now),
        Kind::JwtSvid => verify_jwt_svid(args, store, &token, now),
    });
    match outcome {
        Ok(details) => {
            if args.json {
                println!("{}", json!({"valid": true, "type": name, "details": details}));
            } else {
                println!("valid {name}");
                print_details(&details);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    json!({"valid": false, "type": name, "error": {"kind": e.kind(), "message": e.to_string()}})
                );
            } else {
                eprintln!("invalid {name}: {e}\n  reason: {}", e.kind());
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The trust anchors named on the command line, for the one trust domain given.
fn trust_store(args: &VerifyArgs) -> Result<Arc<TrustStore>> {
    let td = TrustDomain::parse(&args.trust_domain)
        .with_context(|| format!("--trust-domain {:?} is not a valid trust domain", args.trust_domain))?;
    let store = Arc::new(TrustStore::new(lanyard_crypto::provider()));
    if let Some(path) = &args.bundle {
        let bundle = SpiffeBundle::parse(td.clone(), input::read(path)?.as_bytes())
            .with_context(|| format!("reading the bundle in {}", path.display()))?;
        store.set_bundle(&bundle)?;
    }
    for path in &args.jwks {
        for jwk in input::public_keys(path)? {
            for key_use in [KeyUse::WitSvid, KeyUse::JwtSvid] {
                store
                    .add_key(td.name(), key_use, &jwk)
                    .with_context(|| format!("trusting the key in {}", path.display()))?;
            }
        }
    }
    if args.bundle.is_none() && args.jwks.is_empty() {
        bail!("give the trust domain's keys with --jwks FILE or --bundle FILE");
    }
    Ok(store)
}

fn wit_verifier(args: &VerifyArgs, store: Arc<TrustStore>) -> WitVerifier {
    let policy = match args.profile {
        Profile::Wimse => WitPolicy::wimse(),
        Profile::WitSvid => WitPolicy::wit_svid(),
    };
    WitVerifier::new(store, policy)
}

fn required<'a>(value: &'a Option<String>, flag: &'static str, why: &'static str) -> Result<&'a str, Error> {
    value.as_deref().ok_or(Error::Header {
        name: flag,
        reason: why,
    })
}

fn verify_wpt(args: &VerifyArgs, store: Arc<TrustStore>, wpt: &str, now: UnixTime) -> Result<Value, Error> {
    let wit = input::token(required(&args.wit, "--wit", "a WPT is checked together with its WIT")?)
        .map_err(|e| Error::Malformed(format!("{e:#}")))?;
    let aud = required(
        &args.aud,
        "--aud",
        "a WPT is checked for an audience (this service's URI)",
    )?;
    let headers: Vec<(&str, &str)> = args.headers.iter().filter_map(|h| h.split_once('=')).collect();
    let verifier = WptVerifier::new(
        wit_verifier(args, store),
        WptPolicy::default(),
        Arc::new(InMemoryReplayCache::new(16)),
    );
    let tokens = ProofTokens {
        wit: &wit,
        wpt,
        access_token: args.access_token.as_deref(),
        txn_token: args.txn_token.as_deref(),
        other_tokens: &headers,
    };
    let proof = verifier.verify(&tokens, audience_for(aud), now)?;
    let mut details = describe_wit(&proof.wit, now);
    details["wpt"] = json!({
        "aud": proof.wpt.aud,
        "exp": proof.wpt.exp.as_secs(),
        "expires": format!("{} ({})", rfc3339(proof.wpt.exp), relative(proof.wpt.exp, now)),
        "jti": proof.wpt.jti,
        "binds": {
            "access_token": args.access_token.is_some(),
            "txn_token": args.txn_token.is_some(),
            "other": proof.wpt.oth,
        },
    });
    Ok(details)
}

fn verify_jwt_svid(args: &VerifyArgs, store: Arc<TrustStore>, token: &str, now: UnixTime) -> Result<Value, Error> {
    let aud = required(&args.aud, "--aud", "a JWT-SVID is checked for an audience")?;
    let svid = JwtSvidVerifier::new(store, JwtSvidPolicy::default()).verify(token, aud, now)?;
    Ok(json!({
        "subject": svid.sub.as_str(),
        "trust_domain": svid.sub.trust_domain_name(),
        "audience": svid.aud,
        "kid": svid.kid,
        "exp": svid.exp.as_secs(),
        "expires": format!("{} ({})", rfc3339(svid.exp), relative(svid.exp, now)),
        "claims": svid.claims,
    }))
}

fn describe_wit(wit: &VerifiedWit, now: UnixTime) -> Value {
    let provider = lanyard_crypto::provider();
    json!({
        "subject": wit.sub.as_str(),
        "trust_domain": wit.sub.trust_domain(),
        "issuer": wit.iss,
        "kid": wit.kid,
        "jti": wit.jti,
        "exp": wit.exp.as_secs(),
        "expires": format!("{} ({})", rfc3339(wit.exp), relative(wit.exp, now)),
        "cnf": {
            "alg": wit.pop_algorithm().as_str(),
            "kty": wit.cnf_jwk.kty,
            "crv": wit.cnf_jwk.crv,
            "thumbprint": wit.cnf_jwk.thumbprint(provider.as_ref()).ok(),
        },
        "claims": wit.claims,
    })
}

/// Prints the interesting fields of a verification result as aligned text.
fn print_details(details: &Value) {
    let show = |label: &str, v: Option<&Value>| {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            println!("  {label:<13}{text}");
        }
    };
    show("subject", details.get("subject"));
    show("trust domain", details.get("trust_domain"));
    show("audience", details.get("audience"));
    show("issuer", details.get("issuer"));
    show("signed by", details.get("kid"));
    show("expires", details.get("expires"));
    if let Some(cnf) = details.get("cnf") {
        let crv = cnf["crv"].as_str().map(|c| format!(" {c}")).unwrap_or_default();
        println!(
            "  {:<13}{}{crv}, proofs must use {} (thumbprint {})",
            "key (cnf)",
            cnf["kty"].as_str().unwrap_or("?"),
            cnf["alg"].as_str().unwrap_or("?"),
            cnf["thumbprint"].as_str().unwrap_or("?")
        );
    }
    if let Some(wpt) = details.get("wpt") {
        println!("  proof (WPT)");
        show("  audience", wpt.get("aud"));
        show("  expires", wpt.get("expires"));
        show("  jti", wpt.get("jti"));
    }
}

fn inspect(token: &str, as_json: bool) -> Result<ExitCode> {
    let decoded = decode_unverified(token).map_err(|e| anyhow::anyhow!("cannot decode the token: {e}"))?;
    let kind = Kind::of(token).map(Kind::name).unwrap_or("unrecognised token");
    if as_json {
        println!(
            "{}",
            json!({"verified": false, "type": kind, "header": decoded.header, "claims": decoded.claims})
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("NOT VERIFIED: decoded only; nothing below has been checked. Use `lanyard token verify`.");
    println!("type: {kind}");
    println!("header:\n{}", serde_json::to_string_pretty(&decoded.header)?);
    println!("claims:\n{}", serde_json::to_string_pretty(&decoded.claims)?);
    for claim in ["iat", "nbf", "exp"] {
        if let Some(t) = decoded.claims.get(claim).and_then(Value::as_u64) {
            let now = input::now(None);
            println!("{claim}: {} ({})", rfc3339(UnixTime(t)), relative(UnixTime(t), now));
        }
    }
    Ok(ExitCode::SUCCESS)
}
