//! Make text that came from the network safe to print on a terminal or to log.

/// Replace control characters (C0, DEL, C1, including ESC of ANSI sequences)
/// and bidi overrides with visible escapes, and cut to `max` characters.
pub fn sanitize(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for (n, c) in s.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// True when `s` holds a character [`sanitize`] would escape.
pub fn has_control(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_controls() {
        for (input, want) in [
            ("plain", "plain"),
            ("a\x1b[31mred", "a\\u{1b}[31mred"),
            ("nul\0", "nul\\u{0}"),
            ("line\nbreak", "line\\nbreak"),
            ("rtl\u{202e}x", "rtl\\u{202e}x"),
            ("日本語", "日本語"),
        ] {
            assert_eq!(sanitize(input, 100), want, "{input:?}");
        }
        assert_eq!(sanitize("abcdef", 3), "abc…");
        assert!(has_control("x\x07"));
        assert!(!has_control("ok é"));
    }
}
