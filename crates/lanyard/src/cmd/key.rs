//! `lanyard key`: generate key pairs and print public keys.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use lanyard_core::{Algorithm, SigningKey};
use lanyard_crypto::KeyPair;

use crate::input;

#[derive(Subcommand, Debug)]
pub(crate) enum KeyCommand {
    /// Generate a key pair. Without --out, prints the private key to stdout.
    Generate(GenerateArgs),
    /// Print the public JWK of a key file (JWK or PKCS#8 PEM).
    Public {
        /// The key file.
        #[arg(long)]
        key: PathBuf,
        /// The algorithm, for RSA PEM keys (RS256, PS256, ...).
        #[arg(long)]
        alg: Option<Algorithm>,
    },
}

#[derive(Args, Debug)]
pub(crate) struct GenerateArgs {
    /// Signature algorithm: ES256 (default), ES384, ES512, EdDSA, RS256..RS512, PS256..PS512.
    #[arg(long, default_value = "ES256")]
    alg: Algorithm,
    /// Key ID; defaults to the key's RFC 7638 thumbprint. PEM files cannot carry a kid:
    /// read back, a PEM key gets its thumbprint.
    #[arg(long)]
    kid: Option<String>,
    /// Write `<OUT>.jwk` and `<OUT>.pem` (private, mode 0600) and `<OUT>.pub.jwk` and
    /// `<OUT>.pub.pem` instead of printing.
    #[arg(long, value_name = "OUT")]
    out: Option<PathBuf>,
    /// Format printed to stdout when --out is not given.
    #[arg(long, value_enum, default_value_t = Format::Jwk)]
    format: Format,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Format {
    Jwk,
    Pem,
}

pub(crate) fn run(cmd: KeyCommand) -> Result<ExitCode> {
    match cmd {
        KeyCommand::Generate(args) => generate(args),
        KeyCommand::Public { key, alg } => {
            let key = input::signing_key(&key, alg)?;
            println!("{}", serde_json::to_string_pretty(&key.public_jwk())?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn generate(args: GenerateArgs) -> Result<ExitCode> {
    let key = KeyPair::generate(args.alg)?;
    let kid = match args.kid {
        Some(kid) => kid,
        None => input::thumbprint_kid(&key.public_jwk())?,
    };
    let key = key.with_kid(kid);
    let private_jwk = serde_json::to_string_pretty(&key.private_jwk()?)? + "\n";
    let public_jwk = serde_json::to_string_pretty(&key.public_jwk())? + "\n";
    match args.out {
        Some(out) => {
            let with = |suffix: &str| {
                let mut name = out.clone().into_os_string();
                name.push(suffix);
                PathBuf::from(name)
            };
            input::write_file(&with(".jwk"), &private_jwk, true)?;
            input::write_file(&with(".pem"), &key.to_pkcs8_pem()?, true)?;
            input::write_file(&with(".pub.jwk"), &public_jwk, false)?;
            input::write_file(&with(".pub.pem"), &key.public_pem()?, false)?;
            let out = out.display();
            eprintln!(
                "wrote {out}.jwk and {out}.pem (private, mode 0600), {out}.pub.jwk and {out}.pub.pem\n{} key, kid {}",
                args.alg,
                key.kid().unwrap_or_default()
            );
        }
        None => match args.format {
            Format::Jwk => print!("{private_jwk}"),
            Format::Pem => print!("{}", key.to_pkcs8_pem().context("exporting PEM")?),
        },
    }
    Ok(ExitCode::SUCCESS)
}
