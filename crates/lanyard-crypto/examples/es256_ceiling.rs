//! The signature ceiling of an OAuth token endpoint on this machine: how many
//! "one ES256 verification plus one ES256 signature" pairs per second the crypto provider
//! completes on `THREADS` threads (default 2, one per core here). A `client_credentials`
//! request with a `private_key_jwt` assertion and an `at+jwt` response cannot cost less
//! than one such pair, so this is the upper bound the token endpoint's throughput is
//! compared with (`docs/benchmarks.md`, OAuth authorization server).
//!
//! Run: `cargo run --release -p lanyard-crypto --example es256_ceiling -- [THREADS] [SECONDS]`.
//! Prints one JSON line: `{"threads":2,"seconds":10,"pairs":…,"pairs_per_second":…}`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lanyard_core::Algorithm;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2);
    let seconds: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10);

    let provider = lanyard_crypto::provider();
    // The client's key signs the "assertion"; the AS's key signs the "access token".
    let client = provider.generate_key(Algorithm::ES256)?;
    let server = provider.generate_key(Algorithm::ES256)?;
    // A signing input of an assertion's typical size (header.claims, about 300 bytes).
    let assertion_input = vec![b'a'; 300];
    let token_input = vec![b't'; 360];
    let assertion_sig = client.sign(&assertion_input)?;
    let verifier = provider.verifying_key(&client.public_jwk(), Algorithm::ES256)?;

    let stop = Arc::new(AtomicBool::new(false));
    let pairs = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, pairs) = (Arc::clone(&stop), Arc::clone(&pairs));
            let (verifier, server) = (Arc::clone(&verifier), Arc::clone(&server));
            let (assertion_input, assertion_sig, token_input) =
                (assertion_input.clone(), assertion_sig.clone(), token_input.clone());
            std::thread::spawn(move || -> Result<(), lanyard_core::Error> {
                let mut done = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    verifier.verify(&assertion_input, &assertion_sig)?;
                    std::hint::black_box(server.sign(&token_input)?);
                    done += 1;
                }
                pairs.fetch_add(done, Ordering::Relaxed);
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().map_err(|_| "a worker panicked")??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = pairs.load(Ordering::Relaxed);
    println!(
        "{{\"threads\":{threads},\"seconds\":{seconds},\"pairs\":{total},\"pairs_per_second\":{:.0}}}",
        total as f64 / elapsed
    );
    Ok(())
}
