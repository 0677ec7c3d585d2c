//! Argument blocks several commands share, flattened into each with `#[command(flatten)]`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lanyard_crypto::KeyPair;

use crate::input;

/// What a workload proves a request with (`lanyard wpt create`, `lanyard httpsig sign`):
/// its key, its WIT, the request's target and the proof's lifetime.
#[derive(Args, Debug)]
pub(crate) struct ProofArgs {
    /// The workload's private key (the one in the WIT's cnf.jwk).
    #[arg(long)]
    pub(crate) key: PathBuf,
    /// The WIT: the token, @file, or - for stdin.
    #[arg(long)]
    pub(crate) wit: String,
    /// The request's target URI (query and fragment are dropped).
    #[arg(long)]
    pub(crate) aud: String,
    /// Lifetime of the proof in seconds (a WPT: at most 300).
    #[arg(long, default_value_t = 60)]
    pub(crate) ttl: u64,
}

impl ProofArgs {
    /// The workload's key and its WIT, read from the command line.
    pub(crate) fn load(&self) -> Result<(KeyPair, String)> {
        Ok((input::signing_key(&self.key, None)?, input::token(&self.wit)?))
    }
}

/// The context tokens sent beside a WPT (`lanyard wpt create` binds them, `lanyard token
/// verify` checks them): a Txn-Token (`tth`) and other token headers (`oth`).
#[derive(Args, Debug)]
pub(crate) struct ContextTokenArgs {
    /// The Txn-Token sent with the request (bound by the WPT's tth).
    #[arg(long)]
    pub(crate) txn_token: Option<String>,
    /// Another context token header sent with the request, NAME=VALUE (bound by the WPT's
    /// oth); repeatable.
    #[arg(long = "header", value_name = "NAME=VALUE")]
    pub(crate) headers: Vec<String>,
}

impl ContextTokenArgs {
    /// The `--header` values as (name, value) pairs; `Err` names the one that is not
    /// NAME=VALUE.
    pub(crate) fn header_pairs(&self) -> Result<Vec<(&str, &str)>, String> {
        self.headers
            .iter()
            .map(|h| {
                h.split_once('=')
                    .ok_or_else(|| format!("--header {h:?} is not NAME=VALUE"))
            })
            .collect()
    }
}
