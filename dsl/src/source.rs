//! Policy source text and locations within it.
//!
//! The binary reads files; this crate only ever sees their text. Each file is
//! held once, behind an `Arc`, and every AST node points into it by byte range.

use std::ops::Range;
use std::sync::Arc;

/// A UTF-8 byte order mark, as some Windows editors write at the start of
/// a file.
const BYTE_ORDER_MARK: char = '\u{FEFF}';

/// One policy file: its name as shown in diagnostics, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Path relative to the policy directory, e.g. `risk/pii.warden`.
    pub name: String,
    /// The full text of the file, without a leading byte order mark.
    pub text: Arc<str>,
    /// The byte offset each line after the first starts at, so finding a
    /// position's line is a binary search, not a scan of the text before it
    /// (a set of 10,000 rules asks for 10,000 positions).
    line_starts: Arc<[usize]>,
}

impl SourceFile {
    /// A named source. A byte order mark (U+FEFF) at the very start of
    /// `text` is dropped: it is an encoding signature, not part of the
    /// policy, so lines and columns count from the first character after it,
    /// `warden fmt` writes the file without it, and the policy version
    /// (a hash of the text) is the same with or without it. A U+FEFF
    /// anywhere else is a syntax error.
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        let text = match text.strip_prefix(BYTE_ORDER_MARK) {
            Some(rest) => Arc::from(rest),
            None => text,
        };
        let line_starts = text.match_indices('\n').map(|(i, _)| i + 1).collect();
        Self { name: name.into(), text, line_starts }
    }

    /// One-based line and column of a byte offset; columns count characters.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset);
        // Lines before this one: those starting at or before `offset`.
        let earlier = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = earlier.checked_sub(1).and_then(|i| self.line_starts.get(i)).copied().unwrap_or(0);
        let col = self.text.get(line_start..offset).map_or(0, |s| s.chars().count()) + 1;
        (earlier + 1, col)
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    offset = offset.min(text.len());
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Index of a file within the set being compiled.
pub type FileId = usize;

/// Where a node came from: a file and a byte range in it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Loc {
    /// The file, as an index into the set's sources.
    pub file: FileId,
    /// Byte range within the file's text.
    pub span: Range<usize>,
}

impl Loc {
    /// A location in `file` covering `span`.
    pub fn new(file: FileId, span: Range<usize>) -> Self {
        Self { file, span }
    }
}

/// An AST node with its location. Equality ignores the location, so two
/// parses of differently laid out text compare equal when they mean the same.
#[derive(Debug, Clone)]
pub struct Node<T> {
    /// The node itself.
    pub node: T,
    /// Where it was written.
    pub loc: Loc,
}

impl<T> Node<T> {
    /// Wraps `node` with its location.
    pub fn new(node: T, loc: Loc) -> Self {
        Self { node, loc }
    }

    /// A node with no meaningful location, for generated ASTs.
    pub fn bare(node: T) -> Self {
        Self { node, loc: Loc::default() }
    }
}

impl<T: PartialEq> PartialEq for Node<T> {
    fn eq(&self, other: &Self) -> bool {
        self.node == other.node
    }
}

impl<T> std::ops::Deref for Node<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.node
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let f = SourceFile::new("a.warden", "ab\ncdé\nf");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f.line_col(5), (2, 3));
        // Past the `é` (two bytes): column counts characters, not bytes.
        assert_eq!(f.line_col(7), (2, 4));
        assert_eq!(f.line_col(8), (3, 1));
        // Out of range and mid-character offsets clamp instead of panicking.
        assert_eq!(f.line_col(6), (2, 3));
        assert_eq!(f.line_col(1000), (3, 2));
    }

    #[test]
    fn a_leading_byte_order_mark_is_dropped_and_positions_count_without_it() {
        let f = SourceFile::new("a.warden", "\u{FEFF}ab\ncd");
        assert_eq!(&*f.text, "ab\ncd");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f, SourceFile::new("a.warden", "ab\ncd"));
        // Only one, and only at the start.
        assert_eq!(&*SourceFile::new("a", "\u{FEFF}\u{FEFF}x").text, "\u{FEFF}x");
        assert_eq!(&*SourceFile::new("a", "x\u{FEFF}").text, "x\u{FEFF}");
    }

    #[test]
    fn node_equality_ignores_location() {
        assert_eq!(Node::new(1, Loc::new(0, 0..1)), Node::new(1, Loc::new(3, 5..9)));
        assert_ne!(Node::bare(1), Node::bare(2));
    }
}
