//! `lanyard sdcwt`: issue, present, verify and inspect SD-CWTs (draft-ietf-spice-sd-cwt),
//! and `lanyard sdcwt interop`, the working group's interop harness contract
//! (`interop/INTEROP.md` of the draft's repository @2db464c: issue / present / verify /
//! target over stdin and stdout).
//!
//! Tokens are binary CBOR. They are read from `@file` or `-` (stdin), raw or as hex text,
//! or given as a hex literal; they are written raw to stdout (refused on a terminal) or as
//! hex with `--hex`.

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use lanyard_core::cbor::{self, DiagOptions, Value};
use lanyard_core::cose::{CoseKey, CoseSign1, header as cose_header};
use lanyard_core::cwt::{Confirmation, NumericDate, StandardClaims};
use lanyard_core::hex::encode as hex;
use lanyard_core::spice::oidc_claims;
use lanyard_core::spice::sd_cwt::{
    DigestInput, Disclosure, DisclosureKind, HolderSdCwt, IssuerKey, KbtParams, PresentationContext, RandomSalts,
    SaltRequest, SaltSource, SdCwtIssuer, SdCwtPolicy, SdCwtVerifier, TO_BE_DECOY_TAG, TO_BE_REDACTED_TAG, header,
    path_to_string,
};
use lanyard_core::{Algorithm, CryptoProvider, DigestAlgorithm, Jwk, SigningKey, UnixTime, VerifyingKey};
use lanyard_crypto::KeyPair;

use crate::input;

#[derive(Subcommand, Debug)]
pub(crate) enum SdcwtCommand {
    /// Issue an SD-CWT about a holder, with some claims selectively disclosable.
    Issue(IssueArgs),
    /// Present a held SD-CWT to a verifier: choose disclosures, sign an SD-KBT.
    Present(PresentArgs),
    /// Verify an SD-KBT presentation and print the claims it discloses.
    Verify(VerifyArgs),
    /// Decode an SD-CWT or SD-KBT WITHOUT verifying it, showing what is redacted.
    Inspect {
        /// The token: @file, - for stdin, or hex.
        token: String,
    },
    /// The SPICE working group's interop harness contract (INTEROP.md).
    #[command(subcommand)]
    Interop(InteropCommand),
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum SdAlg {
    #[value(name = "sha-256")]
    Sha256,
    #[value(name = "sha-384")]
    Sha384,
    #[value(name = "sha-512")]
    Sha512,
}

impl SdAlg {
    fn digest(self) -> DigestAlgorithm {
        match self {
            SdAlg::Sha256 => DigestAlgorithm::Sha256,
            SdAlg::Sha384 => DigestAlgorithm::Sha384,
            SdAlg::Sha512 => DigestAlgorithm::Sha512,
        }
    }
}

/// Options every SD-CWT command shares.
#[derive(Args, Debug)]
struct Common {
    /// Digests cover only the disclosure arrays (as the `sd-cwt` crate does), not the
    /// whole byte strings.
    #[arg(long)]
    content_only: bool,
    /// Act as of this Unix time instead of now.
    #[arg(long)]
    now: Option<u64>,
}

/// Where a token goes: raw CBOR on stdout, or hex.
#[derive(Args, Debug)]
struct Output {
    /// Print the token as hex instead of raw CBOR.
    #[arg(long)]
    hex: bool,
}

#[derive(Args, Debug)]
pub(crate) struct IssueArgs {
    /// The issuer's private key (JWK or PKCS#8 PEM). P-256 signs as ESP256, P-384 as
    /// ESP384, Ed25519 as Ed25519 (fully specified algorithms, draft §7.1).
    #[arg(long)]
    key: PathBuf,
    /// The holder's public key (JWK, or a key file): it becomes the `cnf` claim.
    #[arg(long)]
    holder: PathBuf,
    /// `iss`.
    #[arg(long)]
    iss: String,
    /// `sub`.
    #[arg(long)]
    sub: String,
    /// More claims, a JSON object (OIDC claim names map to their CWT labels).
    #[arg(long)]
    claims: Option<PathBuf>,
    /// A claim or array element to make selectively disclosable, as a path
    /// (`region`, `build.commit`, `selectors[1]`); repeatable.
    #[arg(long, value_name = "PATH")]
    redact: Vec<String>,
    /// Decoy digests to add to the top-level claims.
    #[arg(long, default_value_t = 0)]
    decoys: u64,
    /// Lifetime in seconds (`exp` = `iat` + this).
    #[arg(long, default_value_t = 3600)]
    lifetime: u64,
    /// `kid` of the issuer key in the protected header (text).
    #[arg(long)]
    kid: Option<String>,
    /// The disclosure digest algorithm.
    #[arg(long, value_enum, default_value_t = SdAlg::Sha256)]
    sd_alg: SdAlg,
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    output: Output,
}

#[derive(Args, Debug)]
pub(crate) struct PresentArgs {
    /// The SD-CWT the holder received: @file, - for stdin, or hex.
    token: String,
    /// The holder's private key (JWK or PKCS#8 PEM): the `cnf` key.
    #[arg(long)]
    key: PathBuf,
    /// The issuer's public key, to validate the SD-CWT first.
    #[arg(long)]
    issuer: PathBuf,
    /// The verifier (`aud` of the SD-KBT).
    #[arg(long)]
    aud: String,
    /// A claim or element to disclose, by path as `inspect` shows it; repeatable. Nested
    /// claims bring their parents along.
    #[arg(long, value_name = "PATH")]
    disclose: Vec<String>,
    /// Disclose every claim (decoys stay back).
    #[arg(long)]
    disclose_all: bool,
    /// The verifier's nonce (hex), signed as `cnonce`.
    #[arg(long)]
    nonce: Option<String>,
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    output: Output,
}

#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    /// The SD-KBT: @file, - for stdin, or hex.
    token: String,
    /// The issuer's public key (JWK, JWK Set, PEM public or private key); repeatable.
    #[arg(long, required = true)]
    issuer: Vec<PathBuf>,
    /// The `iss` the SD-CWT must carry.
    #[arg(long)]
    iss: Option<String>,
    /// This verifier's audience.
    #[arg(long)]
    aud: String,
    /// The nonce this verifier issued (hex): the SD-KBT's `cnonce` must be it.
    #[arg(long)]
    nonce: Option<String>,
    #[command(flatten)]
    common: Common,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(cmd: SdcwtCommand) -> Result<ExitCode> {
    match cmd {
        SdcwtCommand::Issue(args) => issue(&args),
        SdcwtCommand::Present(args) => present(&args),
        SdcwtCommand::Verify(args) => verify(&args),
        SdcwtCommand::Inspect { token } => inspect(&read_token(&token)?),
        SdcwtCommand::Interop(cmd) => interop(cmd),
    }
}

// ---- Input and output ---------------------------------------------------------------

fn unhex(text: &str) -> Option<Vec<u8>> {
    let text: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    lanyard_core::hex::decode(&text)
}

/// Raw CBOR or hex text from `@file`, `-` (stdin), or a hex literal.
fn read_token(arg: &str) -> Result<Vec<u8>> {
    let raw = if arg == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).context("reading stdin")?;
        buf
    } else if let Some(path) = arg.strip_prefix('@') {
        std::fs::read(path).with_context(|| format!("reading {path}"))?
    } else {
        arg.as_bytes().to_vec()
    };
    // Tag 18 (0xd2) starts every COSE_Sign1; anything else is read as hex.
    if raw.first() == Some(&0xd2) {
        return Ok(raw);
    }
    std::str::from_utf8(&raw)
        .ok()
        .and_then(unhex)
        .ok_or_else(|| anyhow!("the token is neither CBOR (a tagged COSE_Sign1) nor hex"))
}

fn write_token(bytes: &[u8], output: &Output) -> Result<()> {
    if output.hex {
        println!("{}", hex(bytes));
        return Ok(());
    }
    let mut stdout = std::io::stdout();
    if stdout.is_terminal() {
        bail!("the token is binary CBOR: redirect stdout to a file, or add --hex");
    }
    stdout.write_all(bytes).context("writing the token")?;
    Ok(())
}

fn nonce(arg: &Option<String>) -> Result<Option<Vec<u8>>> {
    arg.as_deref()
        .map(|n| unhex(n).ok_or_else(|| anyhow!("--nonce must be hex")))
        .transpose()
}

/// A public key from a JWK, a JWK Set (its only key), a PEM public key or a private key file.
fn public_jwk(path: &Path) -> Result<Jwk> {
    let text = input::read(path)?;
    if text.contains("-----BEGIN PUBLIC KEY-----") {
        return lanyard_crypto::jwk_from_public_pem(&text).with_context(|| format!("reading {}", path.display()));
    }
    let mut keys = input::public_keys(path)?;
    match (keys.pop(), keys.is_empty()) {
        (Some(key), true) => Ok(key),
        _ => bail!("{} must hold exactly one key", path.display()),
    }
}

/// The fully specified algorithm for a key's curve (draft §7.1), RSA as its JWK says.
fn fully_specified(jwk: &Jwk, declared: Algorithm) -> Algorithm {
    match jwk.crv.as_deref() {
        Some("P-256") => Algorithm::ESP256,
        Some("P-384") => Algorithm::ESP384,
        Some("P-521") => Algorithm::ESP512,
        Some("Ed25519") => Algorithm::Ed25519,
        _ => declared,
    }
}

/// A private key, re-bound to the fully specified algorithm of its curve.
fn signing_key(path: &Path) -> Result<Arc<KeyPair>> {
    let key = input::signing_key(path, None)?;
    let alg = fully_specified(&key.public_jwk(), key.algorithm());
    let jwk = Jwk {
        alg: Some(alg.as_str().to_owned()),
        ..key.private_jwk()?
    };
    Ok(Arc::new(KeyPair::from_jwk(&jwk)?))
}

fn verifying_key(provider: &dyn CryptoProvider, jwk: &Jwk, alg: Algorithm) -> Result<Arc<dyn VerifyingKey>> {
    Ok(provider.verifying_key(
        &Jwk {
            alg: None,
            ..jwk.clone()
        },
        alg,
    )?)
}

/// The issuer verifying key for the algorithm the SD-CWT names.
fn issuer_key_for(provider: &dyn CryptoProvider, jwk: &Jwk, token: &[u8]) -> Result<Arc<dyn VerifyingKey>> {
    let alg = sd_cwt_of(token)?.algorithm()?;
    verifying_key(provider, jwk, alg)
}

/// The SD-CWT itself, or the one inside an SD-KBT's `kcwt`.
fn sd_cwt_of(token: &[u8]) -> Result<CoseSign1> {
    let outer = CoseSign1::decode(token, &cbor::Limits::default())?;
    match outer.protected_value(cose_header::KCWT) {
        Some(kcwt) => Ok(CoseSign1::from_value(kcwt.clone())?),
        None => Ok(outer),
    }
}

fn policy(content_only: bool) -> SdCwtPolicy {
    SdCwtPolicy {
        digest_input: if content_only {
            DigestInput::ContentOnly
        } else {
            DigestInput::FullItem
        },
        ..SdCwtPolicy::default()
    }
}

fn holder_cose_key(key: &KeyPair) -> Result<CoseKey> {
    Ok(CoseKey::from_jwk(&Jwk {
        alg: None,
        kid: None,
        ..key.public_jwk()
    })?)
}

// ---- issue ------------------------------------------------------------------------

/// One step of a `--redact` path.
enum Step {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if !name.is_empty() {
            steps.push(Step::Key(name.to_owned()));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']').ok_or_else(|| anyhow!("unclosed [ in {path:?}"))?;
            steps.push(Step::Index(
                inner[..close].parse().with_context(|| format!("index in {path:?}"))?,
            ));
            rest = &inner[close + 1..];
        }
        if !rest.is_empty() {
            bail!("cannot read the path {path:?}");
        }
    }
    if steps.is_empty() {
        bail!("empty path");
    }
    Ok(steps)
}

/// Whether map key `key` is what path step `name` names: a text key, an integer key in
/// decimal, or a registered / OIDC claim by its JWT name.
fn key_matches(key: &Value, name: &str) -> bool {
    match key {
        Value::Text(t) => t == name,
        Value::Integer(i) => {
            i.to_string() == name
                || i.to_i64()
                    .and_then(oidc_claims::by_label)
                    .is_some_and(|c| c.name == name)
        }
        _ => false,
    }
}

/// Wraps the map key or array element at `path` in the To Be Redacted tag (58).
fn mark(value: &mut Value, steps: &[Step], path: &str) -> Result<()> {
    let Some((step, rest)) = steps.split_first() else {
        bail!("empty path");
    };
    match (step, value) {
        (Step::Key(name), Value::Map(entries)) => {
            let entry = entries
                .iter_mut()
                .find(|(k, _)| {
                    key_matches(k, name)
                        || matches!(k, Value::Tag(TO_BE_REDACTED_TAG, inner) if key_matches(inner, name))
                })
                .ok_or_else(|| anyhow!("--redact {path}: no claim {name:?}"))?;
            if rest.is_empty() {
                if !matches!(entry.0, Value::Tag(..)) {
                    let key = std::mem::replace(&mut entry.0, Value::Null);
                    entry.0 = Value::Tag(TO_BE_REDACTED_TAG, Box::new(key));
                }
                Ok(())
            } else {
                mark(&mut entry.1, rest, path)
            }
        }
        (Step::Index(i), Value::Array(items)) => {
            let item = items
                .get_mut(*i)
                .ok_or_else(|| anyhow!("--redact {path}: no element {i}"))?;
            if rest.is_empty() {
                if !matches!(item, Value::Tag(TO_BE_REDACTED_TAG, _)) {
                    let inner = std::mem::replace(item, Value::Null);
                    *item = Value::Tag(TO_BE_REDACTED_TAG, Box::new(inner));
                }
                Ok(())
            } else {
                let target = match item {
                    Value::Tag(TO_BE_REDACTED_TAG, inner) => inner.as_mut(),
                    other => other,
                };
                mark(target, rest, path)
            }
        }
        _ => bail!("--redact {path}: the path does not fit the claims"),
    }
}

fn issue(args: &IssueArgs) -> Result<ExitCode> {
    let provider = lanyard_crypto::provider();
    let key = signing_key(&args.key)?;
    let holder = CoseKey::from_jwk(&Jwk {
        alg: None,
        kid: None,
        ..public_jwk(&args.holder)?
    })?;
    let now = NumericDate::from(input::now(args.common.now)).0;
    let mut claims = match &args.claims {
        Some(path) => {
            let json: serde_json::Value =
                serde_json::from_str(&input::read(path)?).with_context(|| format!("{} is not JSON", path.display()))?;
            let object = json
                .as_object()
                .ok_or_else(|| anyhow!("{} must hold a JSON object", path.display()))?;
            oidc_claims::json_to_cbor(object)?
        }
        None => Value::Map(Vec::new()),
    };
    let Value::Map(entries) = &mut claims else {
        bail!("the claims are not a map");
    };
    let lifetime = i64::try_from(args.lifetime).context("--lifetime")?;
    for (label, value) in [
        (1, Value::text(args.iss.as_str())),
        (2, Value::text(args.sub.as_str())),
        (4, Value::int(now.saturating_add(lifetime))),
        (5, Value::int(now)),
        (6, Value::int(now)),
        (8, Confirmation::Key(holder).to_value()),
    ] {
        entries.retain(|(k, _)| k.as_i64() != Some(label));
        entries.push((Value::int(label), value));
    }
    for n in 1..=args.decoys {
        entries.push((Value::Tag(TO_BE_DECOY_TAG, Box::new(Value::int(n))), Value::Null));
    }
    for path in &args.redact {
        mark(&mut claims, &parse_path(path)?, path)?;
    }
    let mut issuer = SdCwtIssuer::new(provider.clone(), key)
        .with_sd_alg(args.sd_alg.digest())
        .with_digest_input(policy(args.common.content_only).digest_input);
    if let Some(kid) = &args.kid {
        issuer = issuer.with_kid(kid.as_bytes().to_vec());
    }
    let issued = issuer.issue(&claims, &mut RandomSalts::new(provider))?;
    eprintln!(
        "issued an SD-CWT with {} disclosures ({} decoys)",
        issued.disclosures().len(),
        args.decoys
    );
    write_token(&issued.to_vec(), &args.output)?;
    Ok(ExitCode::SUCCESS)
}

// ---- present ----------------------------------------------------------------------

fn present(args: &PresentArgs) -> Result<ExitCode> {
    let provider = lanyard_crypto::provider();
    let token = read_token(&args.token)?;
    let holder = signing_key(&args.key)?;
    let issuer_key = issuer_key_for(provider.as_ref(), &public_jwk(&args.issuer)?, &token)?;
    let now = input::now(args.common.now);
    let held = HolderSdCwt::receive(
        &token,
        issuer_key.as_ref(),
        &holder_cose_key(&holder)?,
        provider.as_ref(),
        &policy(args.common.content_only),
        now,
    )?;
    let selection = if args.disclose_all {
        held.select(|_| true)
    } else {
        let mut chosen = Vec::new();
        for wanted in &args.disclose {
            let index = (0..held.disclosures().len())
                .find(|&i| path_to_string(held.path(i)) == *wanted)
                .ok_or_else(|| {
                    anyhow!("--disclose {wanted}: no such disclosable claim (see `lanyard sdcwt inspect`)")
                })?;
            chosen.push(index);
        }
        chosen
    };
    let nonce = nonce(&args.nonce)?;
    let kbt = held.present(
        &selection,
        &KbtParams {
            audience: &args.aud,
            issued_at: Some(now),
            cnonce: nonce.as_deref(),
            ..KbtParams::default()
        },
        holder.as_ref(),
    )?;
    let disclosed = held.with_ancestors(&selection)?;
    eprintln!(
        "presenting {} of {} disclosures to {}",
        disclosed.len(),
        held.disclosures().len(),
        args.aud
    );
    write_token(&kbt, &args.output)?;
    Ok(ExitCode::SUCCESS)
}

// ---- verify -----------------------------------------------------------------------

fn verify(args: &VerifyArgs) -> Result<ExitCode> {
    let provider = lanyard_crypto::provider();
    let token = read_token(&args.token)?;
    let alg = sd_cwt_of(&token).and_then(|t| Ok(t.algorithm()?));
    let mut verifier = SdCwtVerifier::new(provider.clone(), policy(args.common.content_only));
    if let Ok(alg) = alg {
        for path in &args.issuer {
            let jwk = public_jwk(path)?;
            let mut key = IssuerKey::new(verifying_key(provider.as_ref(), &jwk, alg)?);
            if let Some(iss) = &args.iss {
                key = key.with_issuer(iss.as_str());
            }
            verifier = verifier.with_issuer(key);
        }
    }
    let nonce = nonce(&args.nonce)?;
    let context = PresentationContext {
        audience: &args.aud,
        nonce: nonce.as_deref(),
    };
    match verifier.verify(&token, &context, input::now(args.common.now)) {
        Ok(verified) => {
            if args.json {
                let claims = display_json(&verified.claims);
                println!(
                    "{}",
                    serde_json::json!({
                        "valid": true,
                        "claims": claims,
                        "disclosed": verified.disclosed,
                        "undisclosed": verified.undisclosed,
                        "sd_alg": verified.sd_alg.name(),
                    })
                );
            } else {
                println!("valid SD-KBT");
                println!(
                    "  disclosed {} claims; {} stay redacted or decoys",
                    verified.disclosed, verified.undisclosed
                );
                println!(
                    "  holder key {}",
                    verified.holder_key.thumbprint_uri(provider.as_ref())?
                );
                println!(
                    "claims:\n{}",
                    cbor::to_diagnostic_pretty(&verified.claims, &DiagOptions::default())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"valid": false, "error": e.kind(), "message": e.to_string()})
                );
            } else {
                eprintln!("invalid SD-KBT: {e}\n  reason: {}", e.kind());
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Claims as JSON for display: known labels by their JWT names (`cnf` and `cti` too),
/// other integer keys as decimal strings, byte strings as hex, tags and simple values
/// in diagnostic notation.
fn display_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let name = match (k, k.as_i64()) {
                        (Value::Text(t), _) => t.clone(),
                        (_, Some(7)) => "cti".to_owned(),
                        (_, Some(8)) => "cnf".to_owned(),
                        (_, Some(label)) => oidc_claims::by_label(label)
                            .map(|c| c.name.to_owned())
                            .unwrap_or_else(|| label.to_string()),
                        _ => cbor::to_diagnostic(k),
                    };
                    (name, display_json(v))
                })
                .collect(),
        ),
        Value::Array(items) => Json::Array(items.iter().map(display_json).collect()),
        Value::Text(t) => Json::String(t.clone()),
        Value::Bytes(b) => Json::String(hex(b)),
        Value::Bool(b) => Json::Bool(*b),
        Value::Null => Json::Null,
        Value::Integer(i) => i
            .to_i64()
            .map(Json::from)
            .or_else(|| i.to_u64().map(Json::from))
            .unwrap_or_else(|| Json::String(i.to_string())),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        other => Json::String(cbor::to_diagnostic(other)),
    }
}

// ---- inspect ----------------------------------------------------------------------

/// Every digest in a claims value (simple(59) arrays and tag 60), disclosure values included.
fn collect_digests(value: &Value, out: &mut Vec<Vec<u8>>) {
    match value {
        Value::Map(entries) => {
            for (k, v) in entries {
                if *k == Value::Simple(59) {
                    out.extend(
                        v.as_array()
                            .unwrap_or_default()
                            .iter()
                            .filter_map(Value::as_bytes)
                            .map(<[u8]>::to_vec),
                    );
                } else {
                    collect_digests(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_digests(v, out)),
        Value::Tag(60, inner) => out.extend(inner.as_bytes().map(<[u8]>::to_vec)),
        Value::Tag(_, inner) => collect_digests(inner, out),
        _ => {}
    }
}

fn describe(d: &Disclosure) -> String {
    match d.kind() {
        DisclosureKind::Claim { key, value } => {
            format!("{} = {}", cbor::to_diagnostic(key), cbor::to_diagnostic(value))
        }
        DisclosureKind::Element { value } => format!("element {}", cbor::to_diagnostic(value)),
        DisclosureKind::Decoy => "decoy".to_owned(),
        _ => "?".to_owned(),
    }
}

fn inspect(token: &[u8]) -> Result<ExitCode> {
    let provider = lanyard_crypto::provider();
    let outer = CoseSign1::decode(token, &cbor::Limits::default())?;
    let is_kbt = outer.protected_value(cose_header::KCWT).is_some();
    let sd_cwt = sd_cwt_of(token)?;
    let sd_alg = match sd_cwt.protected_value(header::SD_ALG).and_then(Value::as_i64) {
        None => DigestAlgorithm::Sha256,
        Some(id) => DigestAlgorithm::from_cose_id(id).ok_or_else(|| anyhow!("unknown sd_alg {id}"))?,
    };
    let limits = cbor::Limits::default();
    let disclosures: Vec<Disclosure> = sd_cwt
        .unprotected_value(header::SD_CLAIMS)
        .and_then(Value::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| Disclosure::parse(v.as_bytes()?.to_vec(), &limits).ok())
        .collect();
    let mut by_digest: HashMap<Vec<u8>, (usize, String)> = HashMap::new();
    for (i, d) in disclosures.iter().enumerate() {
        for input in [DigestInput::FullItem, DigestInput::ContentOnly] {
            let digest = d.digest(provider.as_ref(), sd_alg, input)?;
            let note = if input == DigestInput::ContentOnly {
                " (content-only digest)"
            } else {
                ""
            };
            by_digest.insert(digest.as_bytes().to_vec(), (i, format!("{}{note}", describe(d))));
        }
    }
    let mut digests = Vec::new();
    let payload = cbor::decode(sd_cwt.payload())?;
    collect_digests(&payload, &mut digests);
    for d in &disclosures {
        if let DisclosureKind::Claim { value, .. } | DisclosureKind::Element { value } = d.kind() {
            collect_digests(value, &mut digests);
        }
    }
    let mut embedded_parts: Vec<Vec<u8>> = vec![
        outer.protected_bytes().to_vec(),
        outer.payload().to_vec(),
        sd_cwt.protected_bytes().to_vec(),
        sd_cwt.payload().to_vec(),
    ];
    embedded_parts.extend(disclosures.iter().map(|d| d.encoded().to_vec()));
    let embedded = |bytes: &[u8]| {
        embedded_parts
            .iter()
            .any(|p| p == bytes && !p.is_empty())
            .then(|| cbor::decode(bytes).ok())
            .flatten()
    };
    let comment = |value: &Value| {
        let bytes: &[u8] = match value {
            Value::Bytes(b) => b,
            Value::Tag(60, inner) => inner.as_bytes()?,
            _ => return None,
        };
        if !digests.iter().any(|d| d == bytes) {
            return None;
        }
        Some(match by_digest.get(bytes) {
            Some((i, what)) => format!("disclosure {i}: {what}"),
            None => "redacted: no disclosure here".to_owned(),
        })
    };
    let options = DiagOptions {
        embedded: Some(&embedded),
        comment: Some(&comment),
    };
    println!("NOT VERIFIED: decoded only; nothing below has been checked. Use `lanyard sdcwt verify`.");
    println!(
        "{}: {} disclosures presented, {} digests in the claims, sd_alg {}",
        if is_kbt { "SD-KBT" } else { "SD-CWT" },
        disclosures.len(),
        digests.len(),
        sd_alg
    );
    println!("{}", cbor::to_diagnostic_pretty(&outer.to_value(), &options));
    if !disclosures.is_empty() {
        println!("disclosures:");
        for (i, d) in disclosures.iter().enumerate() {
            println!("  {i}: {}", describe(d));
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ---- The WG interop harness (INTEROP.md) --------------------------------------------

/// The interop programs. Each reads CBOR on stdin and writes CBOR on stdout; notes and
/// errors go to stderr; the exit code is 0 on success. Wrap them as the harness's
/// `issue`, `present`, `verify` and `target` programs (tests/interop/sd-cwt-wg/).
#[derive(Subcommand, Debug)]
pub(crate) enum InteropCommand {
    /// Issue: a claims set (with tags 58/62) on stdin, an SD-CWT on stdout.
    Issue {
        /// The issuer's PEM private key.
        issuer_priv: PathBuf,
        /// A CSV of salts: `hex SHA-256 of a disclosure without its salt` or a decoy
        /// number, then the salt in hex. The salts used go to `nonce_list.out`.
        #[arg(long)]
        nonces: Option<PathBuf>,
        /// Check the claims' times as of this Unix time.
        #[arg(long)]
        time: Option<u64>,
    },
    /// Present: an SD-CWT on stdin, an SD-KBT on stdout.
    Present {
        /// The holder's PEM private key.
        holder_priv: PathBuf,
        /// The issuer's PEM public key.
        #[arg(long)]
        issuer: Option<PathBuf>,
        /// ignore (no issuer check), fetch (not supported: no network) or cache (the
        /// PEM file named by the last segment of the kid URL, in this directory).
        #[arg(long = "issuer-key", value_enum)]
        issuer_key: Option<IssuerKeyMode>,
        /// A CBOR array of salts: the disclosures to include.
        #[arg(long = "disclosure_list")]
        disclosure_list: Option<PathBuf>,
        /// Include every disclosure.
        #[arg(long = "disclose_all")]
        disclose_all: bool,
        /// Check times and sign as of this Unix time.
        #[arg(long)]
        time: Option<u64>,
        /// The SD-KBT audience (Lanyard extension; the contract does not name one).
        #[arg(long, default_value = "https://verifier.example/app")]
        audience: String,
    },
    /// Verify: an SD-KBT on stdin, the validated claims map on stdout.
    Verify {
        /// The issuer's PEM public key.
        #[arg(long)]
        issuer: Option<PathBuf>,
        /// See `present` (ignore is refused: a verifier always checks the issuer).
        #[arg(long = "issuer-key", value_enum)]
        issuer_key: Option<IssuerKeyMode>,
        /// The audience the SD-KBT must carry (unchecked when absent, as the contract says).
        #[arg(long)]
        audience: Option<String>,
        /// Check times as of this Unix time.
        #[arg(long)]
        time: Option<u64>,
    },
    /// The implementation's short name.
    Target,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IssuerKeyMode {
    Ignore,
    Fetch,
    Cache,
}

fn stdin_bytes() -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf).context("reading stdin")?;
    Ok(buf)
}

fn stdout_bytes(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}

fn pem_private_key(path: &Path) -> Result<Arc<KeyPair>> {
    let text = input::read(path)?;
    let key = KeyPair::from_pkcs8_pem(text.trim(), None)
        .with_context(|| format!("{} is not a PKCS#8 PEM key", path.display()))?;
    let alg = fully_specified(&key.public_jwk(), key.algorithm());
    let key = KeyPair::from_pkcs8_pem(text.trim(), Some(alg))?;
    Ok(Arc::new(key))
}

/// The issuer public key: `--issuer`, or the cache file named by the SD-CWT's kid URL.
fn interop_issuer_key(
    issuer: &Option<PathBuf>,
    mode: Option<IssuerKeyMode>,
    sd_cwt: &CoseSign1,
) -> Result<Option<Jwk>> {
    match (issuer, mode) {
        (Some(path), None | Some(IssuerKeyMode::Cache)) => Ok(Some(public_jwk(path)?)),
        (_, Some(IssuerKeyMode::Ignore)) => Ok(None),
        (_, Some(IssuerKeyMode::Fetch)) => bail!("--issuer-key fetch is not supported (no network access)"),
        (None, Some(IssuerKeyMode::Cache)) => {
            let kid = sd_cwt
                .kid()
                .ok_or_else(|| anyhow!("cache mode needs a kid URL in the SD-CWT"))?;
            let url = std::str::from_utf8(kid).context("kid is not text")?;
            let file = url
                .rsplit('/')
                .next()
                .filter(|f| !f.is_empty())
                .ok_or_else(|| anyhow!("kid {url:?} names no file"))?;
            Ok(Some(public_jwk(Path::new(file))?))
        }
        (None, None) => bail!("no issuer key: give --issuer or --issuer-key"),
    }
}

/// Salts from the harness's nonce list, random otherwise; every salt used is recorded.
struct NonceList {
    provider: Arc<dyn CryptoProvider>,
    by_hash: HashMap<String, [u8; 16]>,
    by_decoy: HashMap<u64, [u8; 16]>,
    random: RandomSalts,
    used: Vec<(String, [u8; 16])>,
}

impl NonceList {
    fn load(provider: Arc<dyn CryptoProvider>, path: Option<&Path>) -> Result<NonceList> {
        let mut list = NonceList {
            random: RandomSalts::new(provider.clone()),
            provider,
            by_hash: HashMap::new(),
            by_decoy: HashMap::new(),
            used: Vec::new(),
        };
        let Some(path) = path else { return Ok(list) };
        for (n, line) in input::read(path)?.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (key, salt) = line
                .split_once(',')
                .ok_or_else(|| anyhow!("{} line {}: expected key,salt", path.display(), n + 1))?;
            let salt = unhex(salt.trim())
                .and_then(|s| <[u8; 16]>::try_from(s).ok())
                .ok_or_else(|| anyhow!("{} line {}: a salt is 16 bytes of hex", path.display(), n + 1))?;
            match key.trim().parse::<u64>() {
                Ok(decoy) => list.by_decoy.insert(decoy, salt),
                Err(_) => list.by_hash.insert(key.trim().to_ascii_lowercase(), salt),
            };
        }
        Ok(list)
    }

    fn write_out(&self) -> Result<()> {
        let text: String = self.used.iter().map(|(k, s)| format!("{k},{}\n", hex(s))).collect();
        std::fs::write("nonce_list.out", text).context("writing nonce_list.out")
    }
}

impl SaltSource for NonceList {
    fn salt(&mut self, request: SaltRequest<'_>) -> Result<[u8; 16], lanyard_core::Error> {
        let key = match request {
            SaltRequest::Decoy { index } => index.to_string(),
            SaltRequest::Claim { key, value } => hex(self
                .provider
                .digest(
                    DigestAlgorithm::Sha256,
                    &Value::Array(vec![value.clone(), key.clone()]).to_vec(),
                )?
                .as_bytes()),
            SaltRequest::Element { value } => hex(self
                .provider
                .digest(DigestAlgorithm::Sha256, &Value::Array(vec![value.clone()]).to_vec())?
                .as_bytes()),
            _ => String::new(),
        };
        let given = match request {
            SaltRequest::Decoy { index } => self.by_decoy.get(&index).copied(),
            _ => self.by_hash.get(&key).copied(),
        };
        let salt = match given {
            Some(salt) => salt,
            None => self.random.salt(request)?,
        };
        self.used.push((key, salt));
        Ok(salt)
    }
}

fn interop(cmd: InteropCommand) -> Result<ExitCode> {
    let provider = lanyard_crypto::provider();
    match cmd {
        InteropCommand::Target => {
            print!("lanyard");
            std::io::stdout().flush()?;
        }
        InteropCommand::Issue {
            issuer_priv,
            nonces,
            time,
        } => {
            let key = pem_private_key(&issuer_priv)?;
            let claims = cbor::decode(&stdin_bytes()?).context("the claims set on stdin is not strict CBOR")?;
            if let Some(time) = time {
                let plain: Vec<(Value, Value)> = claims
                    .as_map()
                    .unwrap_or_default()
                    .iter()
                    .filter(|(k, _)| !matches!(k, Value::Tag(..)))
                    .cloned()
                    .collect();
                StandardClaims::from_map(&plain)?.check_validity(UnixTime(time), 60)?;
            }
            let mut salts = NonceList::load(provider.clone(), nonces.as_deref())?;
            let issued = SdCwtIssuer::new(provider, key).issue(&claims, &mut salts)?;
            salts.write_out()?;
            eprintln!("issued an SD-CWT with {} disclosures", issued.disclosures().len());
            stdout_bytes(&issued.to_vec())?;
        }
        InteropCommand::Present {
            holder_priv,
            issuer,
            issuer_key,
            disclosure_list,
            disclose_all,
            time,
            audience,
        } => {
            let token = stdin_bytes()?;
            let holder = pem_private_key(&holder_priv)?;
            let sd_cwt = CoseSign1::decode(&token, &cbor::Limits::default())?;
            let now = input::now(time);
            let holder_key = holder_cose_key(&holder)?;
            let policy = SdCwtPolicy::default();
            let held = match interop_issuer_key(&issuer, issuer_key, &sd_cwt)? {
                Some(jwk) => {
                    let key = verifying_key(provider.as_ref(), &jwk, sd_cwt.algorithm()?)?;
                    HolderSdCwt::receive(&token, key.as_ref(), &holder_key, provider.as_ref(), &policy, now)?
                }
                None => {
                    eprintln!("note: --issuer-key ignore: the issuer signature is not checked");
                    HolderSdCwt::danger_receive_without_issuer_check(
                        &token,
                        &holder_key,
                        provider.as_ref(),
                        &policy,
                        now,
                    )?
                }
            };
            let selection: Vec<usize> = if disclose_all {
                (0..held.disclosures().len()).collect()
            } else if let Some(path) = disclosure_list {
                let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                let salts = cbor::decode(&bytes).context("the disclosure list is not CBOR")?;
                let salts = salts
                    .as_array()
                    .ok_or_else(|| anyhow!("the disclosure list is not an array"))?;
                let mut chosen = Vec::new();
                for salt in salts {
                    let salt = salt
                        .as_bytes()
                        .ok_or_else(|| anyhow!("the disclosure list holds a non-bstr"))?;
                    let i = held
                        .disclosures()
                        .iter()
                        .position(|d| d.salt().as_slice() == salt)
                        .ok_or_else(|| anyhow!("no disclosure has the salt {}", hex(salt)))?;
                    chosen.push(i);
                }
                chosen
            } else {
                Vec::new()
            };
            let kbt = held.present(
                &selection,
                &KbtParams {
                    audience: &audience,
                    issued_at: Some(now),
                    ..KbtParams::default()
                },
                holder.as_ref(),
            )?;
            stdout_bytes(&kbt)?;
        }
        InteropCommand::Verify {
            issuer,
            issuer_key,
            audience,
            time,
        } => {
            if issuer_key == Some(IssuerKeyMode::Ignore) {
                bail!("a verifier always checks the issuer: --issuer-key ignore is refused");
            }
            let token = stdin_bytes()?;
            let sd_cwt = sd_cwt_of(&token)?;
            let jwk = interop_issuer_key(&issuer, issuer_key, &sd_cwt)?.ok_or_else(|| anyhow!("no issuer key"))?;
            let key = verifying_key(provider.as_ref(), &jwk, sd_cwt.algorithm()?)?;
            // The contract checks the audience only when one is given: otherwise the
            // SD-KBT's own aud is the expected one.
            let audience = match audience {
                Some(aud) => aud,
                None => {
                    let kbt = CoseSign1::decode(&token, &cbor::Limits::default())?;
                    cbor::decode(kbt.payload())?
                        .get_int(3)
                        .and_then(Value::as_text)
                        .map(str::to_owned)
                        .ok_or_else(|| anyhow!("the SD-KBT has no text aud"))?
                }
            };
            let verifier = SdCwtVerifier::new(provider, SdCwtPolicy::default()).with_issuer(IssuerKey::new(key));
            let verified = verifier.verify(
                &token,
                &PresentationContext {
                    audience: &audience,
                    nonce: None,
                },
                input::now(time),
            )?;
            stdout_bytes(&verified.claims.to_vec())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_marks() {
        let mut claims = Value::map([
            (Value::int(179), Value::text("a@b.example")),
            (
                Value::text("build"),
                Value::map([(Value::text("commit"), Value::text("4b825dc"))]),
            ),
            (Value::text("sel"), Value::Array(vec![Value::int(1), Value::int(2)])),
        ]);
        for path in ["email", "build.commit", "sel[1]"] {
            mark(&mut claims, &parse_path(path).unwrap(), path).unwrap();
        }
        assert_eq!(
            cbor::to_diagnostic(&claims),
            r#"{58(179): "a@b.example", "build": {58("commit"): "4b825dc"}, "sel": [1, 58(2)]}"#
        );
        assert!(mark(&mut claims, &parse_path("nope").unwrap(), "nope").is_err());
        assert!(parse_path("a[").is_err());
        assert_eq!(unhex("0a ff"), Some(vec![0x0a, 0xff]));
        assert_eq!(unhex("0"), None);
    }
}
