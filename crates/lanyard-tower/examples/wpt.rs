//! Two services, `orders` and `billing`, calling each other with WIT + Workload Proof
//! Token (`Authorization: WPT`).
//!
//! Run with `cargo run -p lanyard-tower --example wpt`: it prints who called whom, how
//! each side authenticated the other, and the attempts that were refused, and exits
//! non-zero if anything did not go as intended. The code is in `examples/common/mod.rs`.

pub mod common;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let report = common::run_demo(common::Mode::Wpt).await?;
    print!("{report}");
    report.verify()?;
    println!("\nOK: every call went through, every unauthorized attempt was refused.");
    Ok(())
}
