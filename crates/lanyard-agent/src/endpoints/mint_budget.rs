//! How many credentials the server mints on behalf of one uid's workloads.
//!
//! A JWT-SVID for a new audience, or a WIT-SVID for an entry that has none yet, costs a
//! server signature and a round trip; cached answers cost nothing. Without a budget one
//! workload asking for many distinct audiences would make the agent send the server as
//! many signing requests. The budget is a token bucket per uid: a burst, refilled at a
//! steady rate; cache hits never draw from it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Buckets kept at most; full buckets are forgotten first (they carry no state).
const MAX_BUCKETS: usize = 65_536;

/// Token buckets of server mints, one per uid.
#[derive(Debug)]
pub struct MintBudget {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<u32, Bucket>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl MintBudget {
    /// A budget of `burst` mints per uid, refilled at `per_minute`; `per_minute == 0`
    /// means unlimited.
    pub fn new(burst: u32, per_minute: u32) -> MintBudget {
        MintBudget {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_minute) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `n` mints for `uid` at `now`, or says how long until they would be available.
    pub fn take(&self, uid: u32, n: u32, now: Instant) -> Result<(), Duration> {
        if self.per_second <= 0.0 || n == 0 {
            return Ok(());
        }
        let wanted = f64::from(n);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&uid) {
            let (burst, rate) = (self.burst, self.per_second);
            buckets.retain(|_, b| refilled(b, now, burst, rate) < burst);
        }
        let bucket = buckets.entry(uid).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        bucket.tokens = refilled(bucket, now, self.burst, self.per_second);
        bucket.at = now;
        if bucket.tokens >= wanted {
            bucket.tokens -= wanted;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((wanted - bucket.tokens) / self.per_second))
        }
    }
}

fn refilled(bucket: &Bucket, now: Instant, burst: f64, per_second: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    (bucket.tokens + elapsed * per_second).min(burst)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_burst_then_the_refill_rate_per_uid() {
        let budget = MintBudget::new(3, 600);
        let t0 = Instant::now();
        for _ in 0..3 {
            budget.take(1000, 1, t0).unwrap();
        }
        let wait = budget.take(1000, 1, t0).unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::ZERO, "{wait:?}");
        // Another uid has its own bucket.
        budget.take(1001, 3, t0).unwrap();
        // 100 ms later one more mint is available, not two.
        let t1 = t0 + Duration::from_millis(100);
        budget.take(1000, 1, t1).unwrap();
        assert!(budget.take(1000, 1, t1).is_err());
        // Never more than the burst, however long the pause.
        let t2 = t1 + Duration::from_secs(3600);
        assert!(budget.take(1000, 4, t2).is_err());
        budget.take(1000, 3, t2).unwrap();
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let budget = MintBudget::new(1, 0);
        for _ in 0..1000 {
            budget.take(0, 1, Instant::now()).unwrap();
        }
    }
}
