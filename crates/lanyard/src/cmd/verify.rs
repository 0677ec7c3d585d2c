//! `lanyard token verify` and `lanyard token inspect`.
//!
//! `verify` checks one token as one type, against the trust anchors given on the command
//! line. The type is what the caller asks for, never what the token claims to be:
//! `--type`, or the type the options imply (`--wit`, `--access-token`, `--txn-token` and
//! `--header` bind a request, so they mean a WPT; `--aud` means a WPT, a JWT-SVID, an
//! access token or an authorization grant, as a WIT has no audience; `--issuer` means an
//! access token or an authorization grant; `--profile` means a WIT or a WPT). Only when that leaves several
//! types does the token's `typ` header pick one of them, and the output says which type
//! was checked and what chose it. A token of another type is invalid (`wrong_typ`);
//! options that contradict each other are a usage error.
//!
//! Exit statuses (also in `--help` and the README): [`EXIT_VALID`], [`EXIT_INVALID`], and
//! [`EXIT_COULD_NOT_RUN`] (clap's own status for usage errors) when the check could not
//! run: a usage error or an input that cannot be read or used. With `--json` every case
//! prints one JSON object on stdout, usage errors found by clap included (see
//! [`report_usage_error`]).
//!
//! Another token type (an OAuth access token `at+jwt` per RFC 9068, a Txn-Token
//! `txntoken+jwt`, a JWT authorization grant per RFC 7523) is one more [`TokenType`]
//! variant: its name and `typ` values, the options that apply to it in [`type_rules`],
//! and its check in [`check`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use lanyard_core::jose::decode_unverified;
use lanyard_core::wimse::audience_for;
use lanyard_core::{
    Error, InMemoryReplayCache, JwtSvidPolicy, JwtSvidVerifier, KeyUse, ProofTokens, SpiffeBundle, TrustDomain,
    TrustStore, UnixTime, VerifiedWit, WitPolicy, WitVerifier, WptPolicy, WptVerifier,
};
use serde_json::{Value, json};

use crate::cmd::args::ContextTokenArgs;
use crate::input;
use crate::output::{relative, rfc3339};

/// The exit status of a valid token.
pub(crate) const EXIT_VALID: u8 = 0;
/// The exit status of a token that is not valid.
pub(crate) const EXIT_INVALID: u8 = 1;
/// The exit status when the check could not run (usage error, unusable input); clap exits
/// with the same status on the usage errors it finds.
pub(crate) const EXIT_COULD_NOT_RUN: u8 = 2;

const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  the token is valid, as the type printed
  1  the token is invalid; the reason is printed (with --json: error.kind, e.g.
     expired, bad_signature, wrong_typ, wrong_audience)
  2  the check could not run: a usage error (a missing, unknown or contradictory
     option) or an input that cannot be read or used (the token file, --jwks,
     --bundle, --wit); with --json: error.kind is usage or input
With --json, every case prints one JSON object on stdout: {valid, outcome (valid,
invalid or error), type, type_from, details or error {kind, message}}.";

#[derive(Subcommand, Debug)]
pub(crate) enum TokenCommand {
    /// Verify a WIT, a WPT (with its WIT), a JWT-SVID, an access token, a Txn-Token or a JWT
    /// authorization grant.
    ///
    /// The type checked is --type, or the one the options imply (--wit, --access-token,
    /// --txn-token, --header: a WPT; --aud: a WPT, a JWT-SVID, an access token or an
    /// authorization grant, as a WIT has no audience; --issuer: an access token or an
    /// authorization grant; --profile: a WIT or a WPT). Only when several types remain does the token's typ
    /// header choose among them, and the output says so. Scripts should pass --type.
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

/// The options of `lanyard token verify`.
#[derive(Args, Debug)]
#[command(after_help = EXIT_STATUS_HELP)]
pub(crate) struct VerifyArgs {
    /// The token, @file, or - for stdin. For a WPT, pass its WIT with --wit.
    token: String,
    /// The token type to require; without it, the options imply the type or the token's
    /// typ header chooses among the types they allow.
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    token_type: Option<TokenType>,
    /// The trust domain whose keys are given by --jwks or --bundle: needed for a WIT, a
    /// WPT, a JWT-SVID and a Txn-Token (its aud); an access token or an authorization grant
    /// is checked for --issuer instead.
    #[arg(long)]
    trust_domain: Option<String>,
    /// Trusted public keys for the trust domain (a JWK, a JWK Set, a PUBLIC KEY PEM or a
    /// private key file); repeatable. PEM keys get their RFC 7638 thumbprint as kid.
    #[arg(long)]
    jwks: Vec<PathBuf>,
    /// The trust domain's SPIFFE bundle (its jwt-svid and wit-svid keys are trusted).
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// The WIT that accompanies the WPT being verified (the token must then be a WPT).
    #[arg(long)]
    wit: Option<String>,
    /// The audience: this service's URI (WPT, access token, authorization grant) or name
    /// (JWT-SVID). A WIT has no audience, so with --aud the token must not be a WIT.
    #[arg(long)]
    aud: Option<String>,
    /// WIT rules, for a WIT or a WPT's WIT: wimse (default) or wit-svid (SPIFFE WIT-SVID
    /// profile).
    #[arg(long, value_enum)]
    profile: Option<Profile>,
    /// The access token sent with the request, checked against the WPT's ath (a wpt-01
    /// proof: needs --wpt01; draft-ietf-wimse-wpt-02 proofs never carry an access token).
    #[arg(long)]
    access_token: Option<String>,
    /// Accept a draft-ietf-wimse-wpt-01 proof (the compatibility mode: its ath binds
    /// --access-token).
    #[arg(long)]
    wpt01: bool,
    /// The authorization server's issuer identifier, for an access token (whose keys, the
    /// server's jwks_uri document, go in --jwks).
    #[arg(long)]
    issuer: Option<String>,
    #[command(flatten)]
    context: ContextTokenArgs,
    /// Verify as of this Unix time instead of now.
    #[arg(long)]
    now: Option<u64>,
    /// Print one JSON object on stdout, whatever happens.
    #[arg(long)]
    json: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Profile {
    Wimse,
    WitSvid,
}

/// The token types `verify` checks.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum TokenType {
    /// Workload Identity Token (draft-ietf-wimse-workload-creds), typ wit+jwt.
    Wit,
    /// Workload Proof Token (draft-ietf-wimse-wpt), typ wpt+jwt, checked with its WIT.
    Wpt,
    /// SPIFFE JWT-SVID (JWT-SVID.md), typ JWT, JOSE or none.
    JwtSvid,
    /// OAuth 2.0 access token (RFC 9068), typ at+jwt, checked with --issuer, --aud and
    /// the authorization server's keys in --jwks.
    AccessToken,
    /// Transaction Token (draft-ietf-oauth-transaction-tokens-11), typ txntoken+jwt,
    /// checked for --trust-domain (its aud) with the Transaction Token Service's keys in
    /// --jwks (Lanyard's: the server's /oauth/jwks).
    TxnToken,
    /// JWT authorization grant for identity chaining (draft-ietf-oauth-identity-chaining-17,
    /// rfc7523bis), typ authorization-grant+jwt, checked as the foreign authorization
    /// server does: --issuer the home server, --aud this server's issuer (the sole aud),
    /// the home server's keys in --jwks.
    AuthorizationGrant,
}

impl TokenType {
    const ALL: [TokenType; 6] = [
        TokenType::Wit,
        TokenType::Wpt,
        TokenType::JwtSvid,
        TokenType::AccessToken,
        TokenType::TxnToken,
        TokenType::AuthorizationGrant,
    ];

    fn name(self) -> &'static str {
        match self {
            TokenType::Wit => "WIT",
            TokenType::Wpt => "WPT",
            TokenType::JwtSvid => "JWT-SVID",
            TokenType::AccessToken => "access token",
            TokenType::TxnToken => "Txn-Token",
            TokenType::AuthorizationGrant => "authorization grant",
        }
    }

    /// The value of `--type` for this type.
    fn option_value(self) -> &'static str {
        match self {
            TokenType::Wit => "wit",
            TokenType::Wpt => "wpt",
            TokenType::JwtSvid => "jwt-svid",
            TokenType::AccessToken => "access-token",
            TokenType::TxnToken => "txn-token",
            TokenType::AuthorizationGrant => "authorization-grant",
        }
    }

    /// The `typ` header values this type is sent with; `None` is a token without `typ`.
    fn typ_values(self) -> &'static [Option<&'static str>] {
        match self {
            TokenType::Wit => &[Some("wit+jwt")],
            TokenType::Wpt => &[Some("wpt+jwt")],
            TokenType::JwtSvid => &[None, Some("JWT"), Some("JOSE")],
            TokenType::AccessToken => &[Some("at+jwt")],
            TokenType::TxnToken => &[Some("txntoken+jwt")],
            TokenType::AuthorizationGrant => &[Some("authorization-grant+jwt")],
        }
    }

    /// Whether a token with header `typ` can be of this type. Media types compare
    /// case-insensitively, with or without `application/` (RFC 7515 §4.1.9); the type's
    /// own verifier checks `typ` again, strictly.
    fn carries(self, typ: Option<&str>) -> bool {
        let typ = typ.map(|t| match t.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &t[12..],
            _ => t,
        });
        self.typ_values().iter().any(|value| match (value, typ) {
            (None, None) => true,
            (Some(value), Some(typ)) => value.eq_ignore_ascii_case(typ),
            _ => false,
        })
    }

    /// The types among `candidates` a token with header `typ` can be.
    fn fitting(candidates: &[TokenType], typ: Option<&str>) -> Vec<TokenType> {
        candidates.iter().copied().filter(|t| t.carries(typ)).collect()
    }
}

/// `WIT`, `WIT or WPT`, `WIT, WPT or JWT-SVID`.
fn names(types: &[TokenType]) -> String {
    let names: Vec<&str> = types.iter().map(|t| t.name()).collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => "no type".to_owned(),
    }
}

/// The options that apply to some token types only: (given, option, types it applies to).
fn type_rules(args: &VerifyArgs) -> [(bool, &'static str, &'static [TokenType]); 8] {
    use TokenType::{AccessToken, AuthorizationGrant, JwtSvid, Wit, Wpt};
    [
        (args.wit.is_some(), "--wit", &[Wpt]),
        (args.access_token.is_some(), "--access-token", &[Wpt]),
        (args.wpt01, "--wpt01", &[Wpt]),
        (args.context.txn_token.is_some(), "--txn-token", &[Wpt]),
        (!args.context.headers.is_empty(), "--header", &[Wpt]),
        (
            args.aud.is_some(),
            "--aud",
            &[Wpt, JwtSvid, AccessToken, AuthorizationGrant],
        ),
        (args.issuer.is_some(), "--issuer", &[AccessToken, AuthorizationGrant]),
        (args.profile.is_some(), "--profile", &[Wit, Wpt]),
    ]
}

/// The token types the command line accepts, and the options that narrowed them down
/// (`--type`, or e.g. `--aud and --profile`; `None` when every type is accepted).
struct Accepted {
    types: Vec<TokenType>,
    decided_by: Option<String>,
}

fn accepted_types(args: &VerifyArgs) -> Result<Accepted, Failure> {
    let mut accepted = match args.token_type {
        Some(t) => Accepted {
            types: vec![t],
            decided_by: Some("--type".to_owned()),
        },
        None => Accepted {
            types: TokenType::ALL.to_vec(),
            decided_by: None,
        },
    };
    for (given, option, applies) in type_rules(args) {
        if !given {
            continue;
        }
        let narrowed: Vec<TokenType> = accepted.types.iter().copied().filter(|t| applies.contains(t)).collect();
        if narrowed.is_empty() {
            return Err(Failure::usage(format!(
                "{option} applies to a {} only, but {} asks for a {}",
                names(applies),
                accepted.decided_by.as_deref().unwrap_or("another option"),
                names(&accepted.types)
            )));
        }
        if narrowed.len() < accepted.types.len() {
            accepted.decided_by = Some(match accepted.decided_by.take() {
                Some(before) => format!("{before} and {option}"),
                None => option.to_owned(),
            });
        }
        accepted.types = narrowed;
    }
    Ok(accepted)
}

/// Why `verify` did not print "valid".
#[derive(Debug)]
enum Failure {
    /// The token is not valid as the type checked (exit status 1); `kind` is the reason
    /// code ([`Error::kind`]).
    Invalid { kind: &'static str, message: String },
    /// The check could not run (exit status 2); `kind` is `usage` or `input`.
    CouldNotRun { kind: &'static str, message: String },
}

impl Failure {
    fn usage(message: impl Into<String>) -> Failure {
        Failure::CouldNotRun {
            kind: "usage",
            message: message.into(),
        }
    }

    fn input(error: &anyhow::Error) -> Failure {
        Failure::CouldNotRun {
            kind: "input",
            message: format!("{error:#}"),
        }
    }

    fn parts(&self) -> (&'static str, &str) {
        match self {
            Failure::Invalid { kind, message } | Failure::CouldNotRun { kind, message } => (kind, message),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Invalid {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// What chose the type checked.
#[derive(Clone, Debug)]
enum ChosenBy {
    /// `--type` or the options named.
    Options(String),
    /// The token's `typ` header, among the types the options allow.
    TypHeader,
}

/// The type checked and what chose it.
#[derive(Clone, Debug)]
struct Chosen {
    token_type: TokenType,
    by: ChosenBy,
}

impl Chosen {
    /// `--type`, the options, or `typ header` (the JSON `type_from`).
    fn source(&self) -> &str {
        match &self.by {
            ChosenBy::Options(options) => options,
            ChosenBy::TypHeader => "typ header",
        }
    }
}

/// What `verify` found: the type (when known) and the details or the failure.
struct Outcome {
    chosen: Option<Chosen>,
    result: Result<Value, Failure>,
}

pub(crate) fn run(cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCommand::Verify(args) => Ok(report(&verify(&args), args.json)),
        TokenCommand::Inspect { token, json } => inspect(&input::token(&token)?, json),
        TokenCommand::Join(args) => super::admin::join_token(args),
    }
}

/// Whether the command line (all of it, program name first) is `lanyard token verify`
/// with `--json`, so that a usage error clap finds is reported as JSON too.
pub(crate) fn wants_json(args: &[std::ffi::OsString]) -> bool {
    let words: Vec<&str> = args.iter().skip(1).filter_map(|a| a.to_str()).collect();
    words.starts_with(&["token", "verify"]) && words.iter().take_while(|w| **w != "--").any(|w| *w == "--json")
}

/// Reports a usage error clap found in `lanyard token verify --json ...`: the JSON object
/// on stdout, clap's text on stderr, exit status [`EXIT_COULD_NOT_RUN`].
pub(crate) fn report_usage_error(clap_text: &str) -> ExitCode {
    eprint!("{clap_text}");
    let first = clap_text.split("\n\n").next().unwrap_or_default().trim();
    let message = first.strip_prefix("error: ").unwrap_or(first);
    let outcome = Outcome {
        chosen: None,
        result: Err(Failure::usage(message)),
    };
    print_json(&outcome);
    ExitCode::from(EXIT_COULD_NOT_RUN)
}

fn verify(args: &VerifyArgs) -> Outcome {
    let mut chosen = None;
    let result = verify_into(args, &mut chosen);
    Outcome { chosen, result }
}

/// The steps of `verify`, in the order their failures are reported: the options, the
/// token inputs, the token's type, then the check (which reads the keys that type needs).
/// `chosen` is set once the type is known.
fn verify_into(args: &VerifyArgs, chosen: &mut Option<Chosen>) -> Result<Value, Failure> {
    let accepted = accepted_types(args)?;
    let headers = args.context.header_pairs().map_err(Failure::usage)?;
    let token = input::token(&args.token).map_err(|e| Failure::input(&e))?;
    let wit = args
        .wit
        .as_deref()
        .map(input::token)
        .transpose()
        .map_err(|e| Failure::input(&e))?;
    let now = input::now(args.now);
    let picked = choose_type(&accepted, &token, chosen)?;
    let request = Request {
        wit: wit.as_deref(),
        headers: &headers,
    };
    check(picked, args, &request, &token, now)
}

/// Picks the type to check `token` as (see the module docs) and records it in `chosen`.
fn choose_type(accepted: &Accepted, token: &str, chosen: &mut Option<Chosen>) -> Result<TokenType, Failure> {
    if let ([only], Some(options)) = (accepted.types.as_slice(), &accepted.decided_by) {
        *chosen = Some(Chosen {
            token_type: *only,
            by: ChosenBy::Options(options.clone()),
        });
    }
    let decoded = decode_unverified(token)?;
    let typ = decoded.header.get("typ").and_then(Value::as_str);
    let fitting = TokenType::fitting(&accepted.types, typ);
    let found = typ.map_or_else(|| "no typ".to_owned(), |t| format!("typ {t:?}"));
    match fitting.as_slice() {
        [one] => {
            chosen.get_or_insert(Chosen {
                token_type: *one,
                by: ChosenBy::TypHeader,
            });
            Ok(*one)
        }
        [] => Err(Failure::Invalid {
            kind: "wrong_typ",
            message: format!("not a {}: the token has {found}", names(&accepted.types)),
        }),
        several => Err(Failure::usage(format!(
            "a token with {found} can be a {}; pass --type",
            names(several)
        ))),
    }
}

/// The request parts a WPT is checked against, read from the command line.
struct Request<'a> {
    wit: Option<&'a str>,
    headers: &'a [(&'a str, &'a str)],
}

/// Checks `token` as `token_type`.
fn check(
    token_type: TokenType,
    args: &VerifyArgs,
    request: &Request<'_>,
    token: &str,
    now: UnixTime,
) -> Result<Value, Failure> {
    // WITs, WPTs and JWT-SVIDs are checked with the keys of --trust-domain.
    let store = || {
        let why = format!("a {} is checked with its trust domain's keys", token_type.name());
        trust_store(args, required(args.trust_domain.as_deref(), "--trust-domain", &why)?)
    };
    match token_type {
        TokenType::Wit => {
            let wit = wit_verifier(args, store()?).verify(token, now)?;
            Ok(describe_wit(&wit, now))
        }
        TokenType::Wpt => verify_wpt(args, request, store()?, token, now),
        TokenType::JwtSvid => verify_jwt_svid(args, store()?, token, now),
        TokenType::AccessToken => verify_access_token(args, token, now),
        TokenType::TxnToken => verify_txn_token(args, token, now),
        TokenType::AuthorizationGrant => verify_authorization_grant(args, token, now),
    }
}

/// Prints the outcome (text, or JSON with `--json`) and returns the exit status.
fn report(outcome: &Outcome, as_json: bool) -> ExitCode {
    if as_json {
        print_json(outcome);
    } else {
        print_text(outcome);
    }
    ExitCode::from(match &outcome.result {
        Ok(_) => EXIT_VALID,
        Err(Failure::Invalid { .. }) => EXIT_INVALID,
        Err(Failure::CouldNotRun { .. }) => EXIT_COULD_NOT_RUN,
    })
}

fn print_json(outcome: &Outcome) {
    let mut doc = json!({
        "type": outcome.chosen.as_ref().map(|c| c.token_type.name()),
        "type_from": outcome.chosen.as_ref().map(Chosen::source),
    });
    match &outcome.result {
        Ok(details) => {
            doc["valid"] = json!(true);
            doc["outcome"] = json!("valid");
            doc["details"] = details.clone();
        }
        Err(failure) => {
            let (kind, message) = failure.parts();
            doc["valid"] = json!(false);
            doc["outcome"] = json!(match failure {
                Failure::Invalid { .. } => "invalid",
                Failure::CouldNotRun { .. } => "error",
            });
            doc["error"] = json!({"kind": kind, "message": message});
        }
    }
    println!("{doc}");
}

fn print_text(outcome: &Outcome) {
    let name = outcome.chosen.as_ref().map_or("token", |c| c.token_type.name());
    match &outcome.result {
        Ok(details) => {
            println!("valid {name}");
            if let Some(chosen) = &outcome.chosen {
                let how = match &chosen.by {
                    ChosenBy::TypHeader => format!(
                        "detected from the typ header; pass --type {} to require it",
                        chosen.token_type.option_value()
                    ),
                    ChosenBy::Options(options) => format!("required by {options}"),
                };
                println!("  {:<13}{name} ({how})", "type");
            }
            print_details(details);
        }
        Err(Failure::Invalid { kind, message }) => eprintln!("invalid {name}: {message}\n  reason: {kind}"),
        Err(Failure::CouldNotRun { message, .. }) => eprintln!("error: {message}"),
    }
}

/// The trust anchors named on the command line, for the one trust domain given.
fn trust_store(args: &VerifyArgs, trust_domain: &str) -> Result<Arc<TrustStore>, Failure> {
    let td = TrustDomain::parse(trust_domain).map_err(|e| {
        Failure::usage(format!(
            "--trust-domain {trust_domain:?} is not a valid trust domain: {e}"
        ))
    })?;
    if args.bundle.is_none() && args.jwks.is_empty() {
        return Err(Failure::usage(
            "give the trust domain's keys with --jwks FILE or --bundle FILE",
        ));
    }
    let store = Arc::new(TrustStore::new(lanyard_crypto::provider()));
    let trusted = (|| -> anyhow::Result<()> {
        use anyhow::Context;
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
        Ok(())
    })();
    trusted.map_err(|e| Failure::input(&e))?;
    Ok(store)
}

fn wit_verifier(args: &VerifyArgs, store: Arc<TrustStore>) -> WitVerifier {
    let policy = match args.profile.unwrap_or(Profile::Wimse) {
        Profile::Wimse => WitPolicy::wimse(),
        Profile::WitSvid => WitPolicy::wit_svid(),
    };
    WitVerifier::new(store, policy)
}

/// An option the type being checked needs: missing, it is a usage error.
fn required<'a>(value: Option<&'a str>, option: &str, why: &str) -> Result<&'a str, Failure> {
    value.ok_or_else(|| Failure::usage(format!("{option} is needed: {why}")))
}

fn verify_wpt(
    args: &VerifyArgs,
    request: &Request<'_>,
    store: Arc<TrustStore>,
    wpt: &str,
    now: UnixTime,
) -> Result<Value, Failure> {
    let wit = required(request.wit, "--wit", "a WPT is checked together with its WIT")?;
    let aud = required(
        args.aud.as_deref(),
        "--aud",
        "a WPT is checked for an audience (this service's URI)",
    )?;
    let verifier = WptVerifier::new(
        wit_verifier(args, store),
        WptPolicy {
            accept_wpt01: args.wpt01,
            ..WptPolicy::default()
        },
        Arc::new(InMemoryReplayCache::new(16)),
    );
    let tokens = ProofTokens {
        wit,
        wpt,
        access_token: args.access_token.as_deref(),
        txn_token: args.context.txn_token.as_deref(),
        other_tokens: request.headers,
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
            "txn_token": args.context.txn_token.is_some(),
            "other": proof.wpt.oth,
        },
    });
    Ok(details)
}

fn verify_jwt_svid(args: &VerifyArgs, store: Arc<TrustStore>, token: &str, now: UnixTime) -> Result<Value, Failure> {
    let aud = required(args.aud.as_deref(), "--aud", "a JWT-SVID is checked for an audience")?;
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

/// An RFC 9068 access token, with the authorization server's keys from `--jwks`.
fn verify_access_token(args: &VerifyArgs, token: &str, now: UnixTime) -> Result<Value, Failure> {
    use lanyard_core::oauth::{AccessTokenPolicy, AccessTokenVerifier};
    let issuer = required(
        args.issuer.as_deref(),
        "--issuer",
        "an access token is checked for its issuer",
    )?;
    let aud = required(
        args.aud.as_deref(),
        "--aud",
        "an access token is checked for an audience",
    )?;
    let keys = signer_keys(args, issuer, "the authorization server's")?;
    let at = AccessTokenVerifier::new(AccessTokenPolicy::new(issuer, aud)).verify(token, &keys, now)?;
    let c = &at.claims;
    Ok(json!({
        "subject": c.sub,
        "client_id": c.client_id,
        "issuer": c.iss,
        "audience": c.aud.as_slice(),
        "scope": c.scope.as_ref().map(ToString::to_string),
        "kid": at.kid,
        "jti": c.jti,
        "exp": c.exp.as_secs(),
        "expires": format!("{} ({})", rfc3339(c.exp), relative(c.exp, now)),
        "cnf": c.cnf,
        "act": c.act,
    }))
}

/// The keys of `owner` (an authorization server, a Transaction Token Service) from --jwks.
fn signer_keys(args: &VerifyArgs, owner: &str, whose: &str) -> Result<lanyard_core::oauth::VerificationKeys, Failure> {
    if args.jwks.is_empty() {
        return Err(Failure::usage(format!("give {whose} keys with --jwks FILE")));
    }
    let mut keys = Vec::new();
    for path in &args.jwks {
        keys.extend(input::public_keys(path).map_err(|e| Failure::input(&e))?);
    }
    let provider = lanyard_crypto::provider();
    Ok(lanyard_core::oauth::VerificationKeys::from_jwks(
        provider.as_ref(),
        owner,
        &lanyard_core::JwkSet { keys },
    )?)
}

fn verify_txn_token(args: &VerifyArgs, token: &str, now: UnixTime) -> Result<Value, Failure> {
    use lanyard_core::oauth::{TxnTokenPolicy, TxnTokenVerifier};
    let trust_domain = required(
        args.trust_domain.as_deref(),
        "--trust-domain",
        "a Txn-Token is checked for its audience, the trust domain",
    )?;
    let keys = signer_keys(args, trust_domain, "the Transaction Token Service's")?;
    let txn = TxnTokenVerifier::new(TxnTokenPolicy::new(trust_domain)).verify(token, &keys, now)?;
    let c = &txn.claims;
    Ok(json!({
        "subject": c.sub,
        "txn": c.txn,
        "trust_domain": c.aud,
        "scope": c.scope.to_string(),
        "requesting_workload": c.req_wl,
        "tctx": c.tctx,
        "rctx": c.rctx,
        "kid": txn.kid,
        "exp": c.exp.as_secs(),
        "expires": format!("{} ({})", rfc3339(c.exp), relative(c.exp, now)),
    }))
}

/// A JWT authorization grant, as the foreign authorization server `--aud` redeems it from
/// the home server `--issuer` (keys in `--jwks`). Its `jti` is not recorded here.
fn verify_authorization_grant(args: &VerifyArgs, token: &str, now: UnixTime) -> Result<Value, Failure> {
    use lanyard_core::oauth::{AuthorizationGrantPolicy, AuthorizationGrantVerifier};
    let home = required(
        args.issuer.as_deref(),
        "--issuer",
        "a grant is checked for its home server",
    )?;
    let aud = required(
        args.aud.as_deref(),
        "--aud",
        "a grant is checked for the foreign server it names",
    )?;
    let keys = signer_keys(args, home, "the home server's")?;
    let grant = AuthorizationGrantVerifier::new(AuthorizationGrantPolicy::new(aud)).verify(token, home, &keys, now)?;
    let c = &grant.claims;
    Ok(json!({
        "subject": c.sub,
        "issuer": c.iss,
        "audience": c.aud,
        "client_id": c.client_id,
        "scope": c.scope.as_ref().map(ToString::to_string),
        "act": c.act,
        "kid": grant.kid,
        "jti": c.jti,
        "exp": c.exp.as_secs(),
        "expires": format!("{} ({})", rfc3339(c.exp), relative(c.exp, now)),
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
    show("client", details.get("client_id"));
    show("scope", details.get("scope"));
    show("trust domain", details.get("trust_domain"));
    show("audience", details.get("audience"));
    show("issuer", details.get("issuer"));
    show("signed by", details.get("kid"));
    show("expires", details.get("expires"));
    if let Some(chain) = details.get("act").and_then(describe_actors) {
        println!("  {:<13}{chain}", "acting (act)");
    }
    show("txn", details.get("txn"));
    show("requester", details.get("requesting_workload"));
    show("tctx", details.get("tctx"));
    show("rctx", details.get("rctx"));
    if let Some(cnf) = details.get("cnf") {
        println!("  {:<13}{}", "key (cnf)", describe_cnf(cnf));
    }
    if let Some(wpt) = details.get("wpt") {
        println!("  proof (WPT)");
        show("  audience", wpt.get("aud"));
        show("  expires", wpt.get("expires"));
        show("  jti", wpt.get("jti"));
    }
}

/// The `act` line (RFC 8693 §4.1): the current actor first, then the earlier ones its
/// `act` nests, most recent first, e.g. `agent (earlier actors: gateway, frontend)`;
/// `None` without an actor.
fn describe_actors(act: &Value) -> Option<String> {
    let mut actors = Vec::new();
    let mut current = act;
    while let Some(sub) = current.get("sub") {
        actors.push(sub.as_str().map_or_else(|| sub.to_string(), str::to_owned));
        current = &current["act"];
    }
    let (first, earlier) = actors.split_first()?;
    Some(if earlier.is_empty() {
        first.clone()
    } else {
        format!("{first} (earlier actors: {})", earlier.join(", "))
    })
}

/// The `cnf` line: a WIT's key (RFC 7800 `jwk`), an access token's binding (RFC 9449
/// `jkt`, RFC 8705 `x5t#S256`), or none (a bearer token).
fn describe_cnf(cnf: &Value) -> String {
    if let Some(kty) = cnf["kty"].as_str() {
        let crv = cnf["crv"].as_str().map(|c| format!(" {c}")).unwrap_or_default();
        format!(
            "{kty}{crv}, proofs must use {} (thumbprint {})",
            cnf["alg"].as_str().unwrap_or("?"),
            cnf["thumbprint"].as_str().unwrap_or("?")
        )
    } else if let Some(jkt) = cnf["jkt"].as_str() {
        format!("DPoP-bound: proofs by the key with thumbprint {jkt}")
    } else if let Some(x5t) = cnf["x5t#S256"].as_str() {
        format!("certificate-bound: the client certificate with SHA-256 {x5t}")
    } else if cnf.is_null() {
        "none (a bearer token)".to_owned()
    } else {
        cnf.to_string()
    }
}

fn inspect(token: &str, as_json: bool) -> anyhow::Result<ExitCode> {
    let decoded = decode_unverified(token).map_err(|e| anyhow::anyhow!("cannot decode the token: {e}"))?;
    let typ = decoded.header.get("typ").and_then(Value::as_str);
    let kind = match TokenType::fitting(&TokenType::ALL, typ).as_slice() {
        [one] => one.name(),
        _ => "unrecognised token",
    };
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
