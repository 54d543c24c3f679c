//! Decoding literal tokens: string escapes and numbers.

/// Why a string literal could not be decoded.
#[derive(Debug, PartialEq, Eq)]
pub struct BadEscape {
    /// The escape as written, e.g. `\q`.
    pub escape: String,
    /// Byte offset of the backslash within the token (quotes included).
    pub offset: usize,
}

/// Decodes a quoted string token (quotes included) with JSON escapes:
/// `\" \\ \/ \b \f \n \r \t \uXXXX`.
pub fn unescape(token: &str) -> Result<String, BadEscape> {
    let inner = token.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(token);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let bad = |escape: String| BadEscape { escape, offset: i + 1 };
        match chars.next() {
            Some((_, '"')) => out.push('"'),
            Some((_, '\\')) => out.push('\\'),
            Some((_, '/')) => out.push('/'),
            Some((_, 'b')) => out.push('\u{8}'),
            Some((_, 'f')) => out.push('\u{c}'),
            Some((_, 'n')) => out.push('\n'),
            Some((_, 'r')) => out.push('\r'),
            Some((_, 't')) => out.push('\t'),
            Some((_, 'u')) => {
                let hex: String = chars.by_ref().take(4).map(|(_, c)| c).collect();
                let decoded =
                    (hex.len() == 4).then(|| u32::from_str_radix(&hex, 16).ok()).flatten().and_then(char::from_u32);
                match decoded {
                    Some(c) => out.push(c),
                    None => return Err(bad(format!("\\u{hex}"))),
                }
            }
            Some((_, other)) => return Err(bad(format!("\\{other}"))),
            None => return Err(bad("\\".to_owned())),
        }
    }
    Ok(out)
}

/// Quotes `s` as a string token that [`unescape`] turns back into `s`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Formats a number so that it parses back to the same value: Rust's shortest
/// round-trip representation, which never uses an exponent for `f64`.
pub fn format_number(n: f64) -> String {
    if n == 0.0 {
        // `-0` and `0` are equal; print one form.
        return "0".to_owned();
    }
    format!("{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_json_escapes() {
        assert_eq!(unescape(r#""a\"b\\c\n\u00e9""#), Ok("a\"b\\c\né".to_owned()));
    }

    #[test]
    fn rejects_unknown_escapes_with_position() {
        let err = unescape(r#""ab\qc""#).err();
        assert_eq!(err, Some(BadEscape { escape: "\\q".into(), offset: 3 }));
        assert!(unescape(r#""\u12""#).is_err());
        assert!(unescape(r#""\ud800""#).is_err(), "lone surrogates are not characters");
    }

    #[test]
    fn quote_round_trips() {
        for s in ["", "plain", "quote \" back \\ slash", "tab\tnl\n\u{1}", "é🙂"] {
            assert_eq!(unescape(&quote(s)).as_deref(), Ok(s));
        }
    }

    #[test]
    fn numbers_print_without_exponent() {
        assert_eq!(format_number(1e21), "1000000000000000000000");
        assert_eq!(format_number(0.000_001), "0.000001");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(-1.5), "-1.5");
    }
}
