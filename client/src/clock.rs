//! Wall-clock times as people read them (`YYYY-MM-DD HH:MM UTC`), for the
//! CLI, the log bundle and the tray app; the calendar arithmetic itself is
//! `pra_proto::time`.

/// `YYYY-MM-DD HH:MM UTC` for a Unix time.
pub fn utc(secs: u64) -> String {
    let (y, m, d, hh, mm, _) = civil(secs);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02} UTC")
}

/// `(year, month, day, hour, minute, second)` in UTC for a Unix time.
pub fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    pra_proto::time::civil(i64::try_from(secs).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(civil(1_700_000_000), (2023, 11, 14, 22, 13, 20));
    }
}
