//! How the admin CLI shows records: aligned tables, UTC times, targets.
//! Pure functions.

use crate::model::Timestamp;
use pra_proto::sanitize::sanitize;

/// `HOST:PORT` for display (IPv6 in brackets).
pub fn show_target(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Left-aligned columns separated by two spaces; every cell sanitized.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| r.into_iter().map(|c| sanitize(&c, 200)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(c.chars().count());
                s.push_str(c);
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(headers.to_vec());
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// `YYYY-MM-DD HH:MM` in UTC.
pub fn time(ts: Timestamp) -> String {
    let (y, m, d, hh, mm, _) = pra_proto::time::civil(ts);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}")
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn time_seconds(ts: Timestamp) -> String {
    format!("{}:{:02}", time(ts), ts.rem_euclid(60))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn times_are_utc_calendar_dates() {
        for (ts, want) in [
            (0, "1970-01-01 00:00"),
            (951_782_400, "2000-02-29 00:00"),
            (1_795_458_517, "2026-11-23 18:28"),
            (4_102_444_799, "2099-12-31 23:59"),
            (-1, "1969-12-31 23:59"),
        ] {
            assert_eq!(time(ts), want, "{ts}");
        }
        assert_eq!(time_seconds(61), "1970-01-01 00:01:01");
    }

    #[test]
    fn tables_align_and_sanitize() {
        let t = table(
            &["A", "LONGER"],
            vec![
                vec!["xyz".into(), "1".into()],
                vec!["\x1b[31m".into(), "2".into()],
            ],
        );
        assert_eq!(t, "A           LONGER\nxyz         1\n\\u{1b}[31m  2\n");
    }

    #[test]
    fn targets_display_with_brackets_for_ipv6() {
        assert_eq!(show_target("::1", 22), "[::1]:22");
        assert_eq!(show_target("mail.corp", 25), "mail.corp:25");
    }
}
