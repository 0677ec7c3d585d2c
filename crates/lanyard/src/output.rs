//! Human-readable output helpers.

use lanyard_core::UnixTime;

/// `2026-11-22T10:00:00Z` for a Unix time (proleptic Gregorian, UTC).
pub(crate) fn rfc3339(t: UnixTime) -> String {
    let secs = t.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    // Days to civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `in 4m 10s` / `2h 3m ago`, relative to `now`.
pub(crate) fn relative(t: UnixTime, now: UnixTime) -> String {
    let (d, future) = if t >= now {
        (t.as_secs() - now.as_secs(), true)
    } else {
        (now.as_secs() - t.as_secs(), false)
    };
    let span = match d {
        0..=59 => format!("{d}s"),
        60..=3599 => format!("{}m {}s", d / 60, d % 60),
        3600..=86_399 => format!("{}h {}m", d / 3600, d % 3600 / 60),
        _ => format!("{}d {}h", d / 86_400, d % 86_400 / 3600),
    };
    if future {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(UnixTime(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(UnixTime(1_745_512_510)), "2025-04-24T16:35:10Z");
        assert_eq!(rfc3339(UnixTime(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(relative(UnixTime(100), UnixTime(40)), "in 1m 0s");
        assert_eq!(relative(UnixTime(40), UnixTime(7240)), "2h 0m ago");
    }
}
