//! The process's open-file limit.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// The open-file limit before and after [`raise_nofile_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NofileLimit {
    /// The soft limit the process started with.
    pub was: u64,
    /// The soft limit now (the hard limit, when raising it succeeded).
    pub now: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, so that the connection caps, not
/// the common default of 1,024 descriptors, decide how many clients are served. Returns
/// the limits, or `None` when they cannot be read; failing to raise is not an error
/// (the soft limit stays as it was).
pub fn raise_nofile_limit() -> Option<NofileLimit> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft >= hard {
        return Some(NofileLimit { was: soft, now: soft });
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => Some(NofileLimit { was: soft, now: hard }),
        Err(e) => {
            tracing::warn!(soft, hard, error = %e, "could not raise the open-file limit");
            Some(NofileLimit { was: soft, now: soft })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_soft_limit_reaches_the_hard_limit() {
        let limit = raise_nofile_limit().unwrap();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!((limit.now, soft), (hard, hard));
        assert!(limit.was <= limit.now);
    }
}
