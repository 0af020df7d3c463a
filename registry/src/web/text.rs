//! Dates, durations and byte counts as people read them. Pure functions.

use crate::model::Timestamp;

/// `2026-11-01 09:05:03 UTC`.
pub fn utc(ts: Timestamp) -> String {
    let (y, m, d, hh, mm, ss) = pra_proto::time::civil(ts);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} UTC")
}

/// A duration in seconds, coarsely: `45 s`, `12 min`, `3 h 5 min`, `2 days`.
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => match s % 3600 / 60 {
            0 => format!("{} h", s / 3600),
            m => format!("{} h {m} min", s / 3600),
        },
        _ => match s / 86_400 {
            1 => "1 day".to_string(),
            n => format!("{n} days"),
        },
    }
}

/// How long ago `ts` was at `now`: `just now`, `12 min ago`, `in the future`.
pub fn ago(ts: Timestamp, now: Timestamp) -> String {
    let d = now - ts;
    if d < -60 {
        "in the future (check the clocks)".to_string()
    } else if d < 10 {
        "just now".to_string()
    } else {
        format!("{} ago", duration(d))
    }
}

/// Bytes with a binary unit: `512 B`, `1.5 KiB`, `20.0 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        for (ts, want) in [
            (0, "1970-01-01 00:00:00 UTC"),
            (951_782_400, "2000-02-29 00:00:00 UTC"),
            (1_700_000_000, "2023-11-14 22:13:20 UTC"),
            (1_709_251_199, "2024-02-29 23:59:59 UTC"),
            (4_102_444_800, "2100-01-01 00:00:00 UTC"),
            (-1, "1969-12-31 23:59:59 UTC"),
        ] {
            assert_eq!(utc(ts), want, "{ts}");
        }
    }

    #[test]
    fn durations_and_ages() {
        for (s, want) in [
            (0, "0 s"),
            (59, "59 s"),
            (60, "1 min"),
            (3599, "59 min"),
            (3600, "1 h"),
            (3900, "1 h 5 min"),
            (86_400, "1 day"),
            (3 * 86_400 + 5, "3 days"),
            (-5, "0 s"),
        ] {
            assert_eq!(duration(s), want, "{s}");
        }
        assert_eq!(ago(100, 105), "just now");
        assert_eq!(ago(100, 100 + 720), "12 min ago");
        assert_eq!(ago(1000, 100), "in the future (check the clocks)");
    }

    #[test]
    fn byte_counts() {
        for (n, want) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (20 * 1024 * 1024, "20.0 MiB"),
            (u64::MAX, "16384.0 PiB"),
        ] {
            assert_eq!(bytes(n), want, "{n}");
        }
    }
}
