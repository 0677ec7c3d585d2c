//! `lanyard bundle`: build a SPIFFE trust bundle from public keys.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use lanyard_core::{Jwk, SpiffeBundle, TrustDomain};

use crate::input;

#[derive(Args, Debug)]
pub(crate) struct BundleArgs {
    /// The trust domain the bundle is for.
    #[arg(long)]
    trust_domain: String,
    /// A JWT-SVID signing key (public JWK, JWK Set or key file); repeatable.
    #[arg(long)]
    jwt_key: Vec<PathBuf>,
    /// A WIT signing key (public JWK, JWK Set or key file); repeatable.
    #[arg(long)]
    wit_key: Vec<PathBuf>,
    /// spiffe_sequence.
    #[arg(long, default_value_t = 1)]
    sequence: u64,
    /// spiffe_refresh_hint in seconds.
    #[arg(long, default_value_t = 300)]
    refresh_hint: u64,
}

pub(crate) fn run(args: BundleArgs) -> Result<ExitCode> {
    let td = TrustDomain::parse(&args.trust_domain)
        .with_context(|| format!("--trust-domain {:?} is not a valid trust domain", args.trust_domain))?;
    let mut bundle = SpiffeBundle::new(td.clone());
    bundle.sequence = Some(args.sequence);
    bundle.refresh_hint = Some(args.refresh_hint);
    bundle.jwt_authorities = keys_with_kid(&args.jwt_key)?;
    bundle.wit_authorities = keys_with_kid(&args.wit_key)?;
    let json = bundle.to_json();
    // What we print must be a bundle we would accept.
    SpiffeBundle::parse(td, json.as_bytes()).context("the bundle built from these keys is not valid")?;
    println!("{json}");
    Ok(ExitCode::SUCCESS)
}

/// Loads public keys, giving any key without a `kid` its RFC 7638 thumbprint as `kid`.
fn keys_with_kid(paths: &[PathBuf]) -> Result<Vec<Jwk>> {
    let provider = lanyard_crypto::provider();
    let mut out = Vec::new();
    for path in paths {
        for mut jwk in input::public_keys(path)? {
            if jwk.kid.is_none() {
                jwk.kid = Some(jwk.thumbprint(provider.as_ref())?);
            }
            out.push(jwk);
        }
    }
    Ok(out)
}
