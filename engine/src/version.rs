//! `policy_version`: a content hash of the set's files.

use sha2::{Digest, Sha256};
use warden_dsl::SourceFile;

/// The first 16 hex digits of SHA-256 over each file's name and text, in
/// name order. Any change to any file, or a renamed file, changes it; a
/// byte order mark at the start of a file does not, since
/// [`SourceFile::new`] drops it (docs/language.md §4.6).
pub(crate) fn of(sources: &[SourceFile]) -> String {
    let mut sorted: Vec<&SourceFile> = sources.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut h = Sha256::new();
    for f in sorted {
        h.update(f.name.as_bytes());
        h.update([0]);
        h.update(f.text.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_on_names_and_text_but_not_order() {
        let a = SourceFile::new("a.warden", "x");
        let b = SourceFile::new("b.warden", "y");
        let v = of(&[a.clone(), b.clone()]);
        assert_eq!(v.len(), 16);
        assert_eq!(v, of(&[b.clone(), a.clone()]));
        assert_ne!(v, of(&[a.clone(), SourceFile::new("b.warden", "y ")]));
        assert_ne!(v, of(&[a.clone(), SourceFile::new("c.warden", "y")]));
    }

    #[test]
    fn a_leading_byte_order_mark_does_not_change_the_version() {
        let plain = of(&[SourceFile::new("a.warden", "x")]);
        assert_eq!(plain, of(&[SourceFile::new("a.warden", "\u{FEFF}x")]));
        assert_ne!(plain, of(&[SourceFile::new("a.warden", "x\u{FEFF}")]));
    }
}
