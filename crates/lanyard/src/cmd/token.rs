//! `lanyard wit issue`, `lanyard wpt create`, `lanyard jwt-svid issue`: mint tokens.
//!
//! WPTs follow draft-ietf-wimse-wpt-02 (no `ath`; sent as `Authorization: WPT`); `--wpt01`
//! makes a -01 proof that binds an access token, for peers still reading the
//! `Workload-Proof-Token` header. Every command refuses what a default verifier would
//! refuse (a WPT over 300 s, a WIT over 24 h or for a trust domain instead of a workload).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use lanyard_core::wimse::{AUTHORIZATION, TXN_TOKEN, WptCarriage, audience_for, proof_headers};
use lanyard_core::{Algorithm, JwtSvidIssuer, WitIssuer, WptParams, create_wpt};
use lanyard_crypto::KeyPair;

use crate::cmd::args::{ContextTokenArgs, ProofArgs};
use crate::input;

/// The signing key of an issuer, as given on the command line.
#[derive(Args, Debug)]
pub(crate) struct IssuerKey {
    /// The issuer's private key (JWK or PKCS#8 PEM).
    #[arg(long)]
    key: PathBuf,
    /// The issuer key's algorithm (needed only for RSA PEM keys).
    #[arg(long)]
    alg: Option<Algorithm>,
    /// Key ID for the header; defaults to the key file's kid.
    #[arg(long)]
    kid: Option<String>,
}

impl IssuerKey {
    /// The key and the `kid` to put in headers.
    fn load(&self) -> Result<(KeyPair, Option<String>)> {
        let key = input::signing_key(&self.key, self.alg)?;
        let kid = self.kid.clone().or_else(|| key.kid().map(str::to_owned));
        Ok((key, kid))
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum WitCommand {
    /// Issue a WIT binding a workload identifier to the workload's public key.
    Issue(WitIssueArgs),
    /// Ask a running server to mint a WIT with its current signing key.
    Mint(super::admin::WitMintArgs),
}

#[derive(Args, Debug)]
pub(crate) struct WitIssueArgs {
    #[command(flatten)]
    issuer: IssuerKey,
    /// The workload identifier (spiffe://... or wimse://...), with a path: a trust domain is
    /// not a workload.
    #[arg(long)]
    sub: String,
    /// The workload's public key (cnf.jwk): a JWK with alg, or the workload's key file.
    #[arg(long)]
    cnf: PathBuf,
    /// Issuer URI for the iss claim.
    #[arg(long)]
    iss: Option<String>,
    /// Lifetime in seconds (at most 86400).
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// Issue as of this Unix time instead of now (for tests).
    #[arg(long)]
    now: Option<u64>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum WptCommand {
    /// Create a WPT proving possession of the WIT's key for one request.
    Create(WptCreateArgs),
}

#[derive(Args, Debug)]
pub(crate) struct WptCreateArgs {
    #[command(flatten)]
    proof: ProofArgs,
    /// Make a draft-ietf-wimse-wpt-01 proof (for the legacy Workload-Proof-Token header).
    #[arg(long)]
    wpt01: bool,
    /// wpt-01 only: the bearer access token sent with the request (adds ath). wpt-02 forbids
    /// an access token beside a WPT; send context in its own header (--txn-token).
    #[arg(long, requires = "wpt01")]
    access_token: Option<String>,
    #[command(flatten)]
    context: ContextTokenArgs,
    /// Print the request header lines (Workload-Identity-Token, Authorization: WPT, and the
    /// bound context headers) instead of the bare WPT.
    #[arg(long)]
    http: bool,
    /// Create as of this Unix time instead of now (for tests).
    #[arg(long)]
    now: Option<u64>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum JwtSvidCommand {
    /// Issue a JWT-SVID for one audience.
    Issue(JwtSvidIssueArgs),
    /// Ask a running server to mint a JWT-SVID with its current signing key.
    Mint(super::admin::JwtSvidMintArgs),
}

#[derive(Args, Debug)]
pub(crate) struct JwtSvidIssueArgs {
    #[command(flatten)]
    issuer: IssuerKey,
    /// The SPIFFE ID.
    #[arg(long)]
    sub: String,
    /// The audience.
    #[arg(long)]
    aud: String,
    /// Issuer URI for the iss claim.
    #[arg(long)]
    iss: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 300)]
    ttl: u64,
    /// Issue as of this Unix time instead of now (for tests).
    #[arg(long)]
    now: Option<u64>,
}

pub(crate) fn run_wit(cmd: WitCommand) -> Result<ExitCode> {
    let a = match cmd {
        WitCommand::Issue(a) => a,
        WitCommand::Mint(a) => return super::admin::wit_mint(a),
    };
    let (key, kid) = a.issuer.load()?;
    let sub = input::workload_id(&a.sub)?;
    let cnf = input::public_keys(&a.cnf)?;
    let [cnf] = cnf.as_slice() else {
        bail!("{} must hold exactly one key for cnf.jwk", a.cnf.display());
    };
    if cnf.alg.is_none() {
        bail!(
            "the cnf key in {} has no alg member (WITs require cnf.jwk.alg)",
            a.cnf.display()
        );
    }
    let issuer = WitIssuer::new(lanyard_crypto::provider(), std::sync::Arc::new(key), kid, a.iss, a.ttl);
    println!("{}", issuer.issue(&sub, cnf, input::now(a.now))?);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_wpt(cmd: WptCommand) -> Result<ExitCode> {
    let WptCommand::Create(a) = cmd;
    let (key, wit) = a.proof.load()?;
    let headers = a.context.header_pairs().map_err(anyhow::Error::msg)?;
    let params = WptParams {
        wit: &wit,
        audience: audience_for(&a.proof.aud),
        lifetime: a.proof.ttl,
        access_token: a.access_token.as_deref(),
        txn_token: a.context.txn_token.as_deref(),
        other_tokens: &headers,
        wpt01: a.wpt01,
    };
    let provider = lanyard_crypto::provider();
    let wpt = create_wpt(&key, &params, input::now(a.now), provider.as_ref()).map_err(|e| {
        let hint = match e.kind() {
            "invalid_key" | "alg_mismatch" => " (is --key the private key for the WIT's cnf.jwk?)",
            _ => "",
        };
        anyhow::Error::new(e).context(format!("creating the WPT{hint}"))
    })?;
    if !a.http {
        println!("{wpt}");
        return Ok(ExitCode::SUCCESS);
    }
    let carriage = if a.wpt01 {
        WptCarriage::LegacyHeader
    } else {
        WptCarriage::Authorization
    };
    for (name, value) in proof_headers(&wit, &wpt, carriage) {
        println!("{name}: {value}");
    }
    if let Some(token) = &a.access_token {
        println!("{AUTHORIZATION}: Bearer {token}");
    }
    if let Some(token) = &a.context.txn_token {
        println!("{TXN_TOKEN}: {token}");
    }
    for (name, value) in &headers {
        println!("{name}: {value}");
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_jwt_svid(cmd: JwtSvidCommand) -> Result<ExitCode> {
    let a = match cmd {
        JwtSvidCommand::Issue(a) => a,
        JwtSvidCommand::Mint(a) => return super::admin::jwt_svid_mint(a),
    };
    let (key, kid) = a.issuer.load()?;
    let kid = kid.context("JWT-SVIDs need a kid: pass --kid or use a key file with one")?;
    let sub = input::workload_id(&a.sub)?;
    let sub = sub.as_spiffe().context("a JWT-SVID's subject must be a SPIFFE ID")?;
    let issuer = JwtSvidIssuer::new(std::sync::Arc::new(key), kid, a.iss)?;
    println!("{}", issuer.issue(sub, &a.aud, input::now(a.now), a.ttl)?);
    Ok(ExitCode::SUCCESS)
}
