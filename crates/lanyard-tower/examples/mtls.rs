//! Two services, `orders` and `billing`, calling each other over mutual TLS with
//! X.509-SVIDs, plus curl (when installed) with billing's SVID as its client certificate.
//!
//! Run with `cargo run -p lanyard-tower --example mtls`: it prints who called whom, how
//! each side authenticated the other, and the attempts that were refused, and exits
//! non-zero if anything did not go as intended. The code is in `examples/common/mod.rs`.

pub mod common;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let report = common::run_demo(common::Mode::Mtls).await?;
    print!("{report}");
    report.verify()?;
    println!("\nOK: every call went through, every unauthorized attempt was refused.");
    Ok(())
}
