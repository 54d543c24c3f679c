//! A lexical pre-pass over a file, before pest sees it.
//!
//! It does two things the grammar can't do cheaply: it refuses bracket
//! nesting deep enough to exhaust the stack of a recursive-descent parser, and
//! it finds comments (outside string literals) so the formatter can keep them.

use std::ops::Range;

/// The deepest nesting of `(`, `[` and `{` a file may use. Real policies use a
/// handful; the limit exists so that hostile input can't overflow the stack.
pub const MAX_NESTING: usize = 64;

/// A `#` comment: its byte range (from `#` to the end of the line, newline
/// excluded) and whether code precedes it on its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// Byte range of the comment text.
    pub span: Range<usize>,
    /// True when code precedes the comment on the same line.
    pub trailing: bool,
}

/// What the pre-pass found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Comments in source order.
    pub comments: Vec<Comment>,
    /// Byte offset of the first bracket nested deeper than [`MAX_NESTING`].
    pub too_deep_at: Option<usize>,
}

/// Scans `text` for comments and nesting depth.
pub fn scan(text: &str) -> Scan {
    let mut out = Scan::default();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut code_on_line = false;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' | '\n' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '\n' => code_on_line = false,
            '#' => {
                let mut end = text.len();
                while let Some(&(j, d)) = chars.peek() {
                    if d == '\n' {
                        end = j;
                        break;
                    }
                    chars.next();
                }
                let end = trim_cr(text, i, end);
                out.comments.push(Comment { span: i..end, trailing: code_on_line });
            }
            c if c.is_whitespace() => {}
            c => {
                code_on_line = true;
                match c {
                    '"' => in_string = true,
                    '(' | '[' | '{' => {
                        depth += 1;
                        if depth > MAX_NESTING && out.too_deep_at.is_none() {
                            out.too_deep_at = Some(i);
                        }
                    }
                    ')' | ']' | '}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
        }
    }
    out
}

fn trim_cr(text: &str, start: usize, end: usize) -> usize {
    match text.get(start..end) {
        Some(s) => start + s.trim_end().len(),
        None => end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_comments_outside_strings_only() {
        let text = "# head\nrule x { # tail\n description \"a # b\"\n}\n";
        let s = scan(text);
        let found: Vec<_> =
            s.comments.iter().map(|c| (text.get(c.span.clone()).unwrap_or_default(), c.trailing)).collect();
        assert_eq!(found, vec![("# head", false), ("# tail", true)]);
    }

    #[test]
    fn escaped_quote_does_not_end_a_string() {
        let text = "description \"say \\\"#1\\\"\" # real";
        let s = scan(text);
        assert_eq!(s.comments.len(), 1);
        assert_eq!(s.comments.first().map(|c| c.trailing), Some(true));
    }

    #[test]
    fn reports_first_bracket_past_the_limit() {
        let text = "(".repeat(MAX_NESTING + 3);
        assert_eq!(scan(&text).too_deep_at, Some(MAX_NESTING));
        assert_eq!(scan(&"(".repeat(MAX_NESTING)).too_deep_at, None);
        // Brackets inside strings and comments don't count.
        let quoted = format!("\"{}\" # {}", "(".repeat(200), "[".repeat(200));
        assert_eq!(scan(&quoted).too_deep_at, None);
    }
}
