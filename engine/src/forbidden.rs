//! Matching content field names (`prompt`, `messages`, …) in the spellings a
//! client might send them in.
//!
//! A key is compared with the forbidden names after [`normalize`]: default
//! ignorable characters removed, Unicode compatibility normalisation (NFKC),
//! lowercase, and surrounding whitespace removed. So `"prompt "`,
//! `"\tPrompt"`, `"ＰＲＯＭＰＴ"` (full width) and `"pro\u{200B}mpt"`
//! (a zero-width space inside) are all `prompt`; `"prompts"`,
//! `"prompt_tokens"`, `"pro mpt"` and look-alikes from other scripts
//! (Cyrillic `"рrompt"`) are not. docs/language.md §3.5 states the rule for
//! policy authors.
//!
//! Plain ASCII keys, nearly every key a request holds, take a path that
//! allocates nothing: for ASCII the normalisation is trimming and ASCII
//! lowercasing.

use unicode_normalization::UnicodeNormalization as _;

/// Content field names, matched after [`normalize`]. A bit mask of the
/// normalised names' lengths rejects most keys without comparing any bytes.
#[derive(Debug)]
pub(crate) struct ForbiddenNames {
    /// Normalised, so ASCII ones are lowercase.
    names: Box<[Box<str>]>,
    length_mask: u64,
    /// Whether every normalised name is ASCII (the usual case): then a key
    /// can only match if it normalises to ASCII.
    all_ascii: bool,
    /// The ASCII bytes, in either case, that names begin with; for a quick
    /// rejection when `all_ascii` (see `cannot_match`).
    first_bytes: u128,
    /// Likewise for the bytes names end with.
    last_bytes: u128,
}

impl ForbiddenNames {
    pub(crate) fn new(names: &[String]) -> Self {
        let names: Box<[Box<str>]> = names.iter().map(|n| normalize(n).into_boxed_str()).collect();
        let mut length_mask = 0u64;
        for n in names.iter() {
            // A name of 64 bytes or more can't be a bit of the mask: give up
            // the mask rather than miss it.
            length_mask |= 1u64.checked_shl(n.len() as u32).unwrap_or(u64::MAX);
        }
        let all_ascii = names.iter().all(|n| n.is_ascii());
        let byte_set = |pick: fn(&[u8]) -> Option<&u8>| {
            names.iter().filter_map(|n| pick(n.as_bytes())).fold(0u128, |set, b| {
                set | 1u128.checked_shl(u32::from(b.to_ascii_lowercase())).unwrap_or(0)
                    | 1u128.checked_shl(u32::from(b.to_ascii_uppercase())).unwrap_or(0)
            })
        };
        let (first_bytes, last_bytes) = (byte_set(<[u8]>::first), byte_set(<[u8]>::last));
        Self { names, length_mask, all_ascii, first_bytes, last_bytes }
    }

    /// Whether `key`, normalised, is one of the names.
    #[inline]
    pub(crate) fn contains(&self, key: &str) -> bool {
        if self.cannot_match(key) {
            return false;
        }
        if !is_plain_ascii(key) {
            return self.contains_unicode(key);
        }
        // For printable ASCII, NFKC changes nothing, nothing is removed but
        // surrounding whitespace, and lowercasing is ASCII lowercasing.
        let key = trim_ascii_whitespace(key);
        self.length_may_match(key.len()) && self.names.iter().any(|n| n.eq_ignore_ascii_case(key))
    }

    /// The slow path, kept out of line so the request walk stays small.
    #[cold]
    #[inline(never)]
    fn contains_unicode(&self, key: &str) -> bool {
        // Most keys outside ASCII are words in other scripts (`clé`,
        // `ключ`), which can't normalise to an ASCII name: no need to build
        // their normal form.
        if self.all_ascii && !key.chars().all(may_normalize_to_ascii) {
            return false;
        }
        let key = normalize(key);
        self.length_may_match(key.len()) && self.names.iter().any(|n| **n == *key)
    }

    /// A check of two bytes that rules out most keys: when every name is
    /// ASCII, a key whose first byte is an ASCII character other than
    /// whitespace keeps that character, lowercased, as the first character
    /// of its normal form (ASCII has no decompositions and nothing ASCII is
    /// ignorable; were it composed with a following combining mark, the
    /// normal form would start outside ASCII and match no name either), and
    /// likewise for the last byte (no composition ends in an ASCII
    /// character). So if no name begins or ends that way, the key is not
    /// one of them.
    #[inline]
    fn cannot_match(&self, key: &str) -> bool {
        let bytes = key.as_bytes();
        let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
            return false;
        };
        // Whitespace and control bytes may be removed by normalisation, so
        // only a printable end byte says anything.
        let absent = |set: u128, b: u8| b.is_ascii_graphic() && set & 1u128.checked_shl(u32::from(b)).unwrap_or(0) == 0;
        self.all_ascii && (absent(self.first_bytes, first) || absent(self.last_bytes, last))
    }

    #[inline]
    fn length_may_match(&self, len: usize) -> bool {
        let bit = 1u64.checked_shl(len as u32).unwrap_or(u64::MAX);
        self.length_mask & bit != 0
    }
}

/// Unicode `White_Space` within ASCII, as `str::trim` removes it.
fn is_ascii_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// Whether every byte of `key` is printable ASCII or ASCII whitespace: such
/// a key normalises by trimming and ASCII lowercasing alone. (A control
/// character such as NUL or BEL sends the key down the full path, which
/// removes it.)
fn is_plain_ascii(key: &str) -> bool {
    key.bytes().all(|b| (0x20..0x7f).contains(&b) || is_ascii_space(b))
}

/// `s` without leading and trailing [`is_ascii_space`] bytes; byte-wise,
/// since it is only called on ASCII keys.
fn trim_ascii_whitespace(s: &str) -> &str {
    let bytes = s.as_bytes();
    let start = bytes.iter().position(|b| !is_ascii_space(*b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !is_ascii_space(*b)).map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or(s)
}

/// Whether `c` can be part of a key whose normal form is ASCII: it is
/// ASCII, whitespace or default ignorable, or its compatibility
/// decomposition is ASCII (full-width and mathematical letters, the long
/// s). Canonical composition only ever produces characters outside ASCII,
/// and the only letter outside ASCII whose lowercase is ASCII, the Kelvin
/// sign, already decomposes to `K`, so looking at one character at a time
/// is exact.
fn may_normalize_to_ascii(c: char) -> bool {
    c.is_ascii()
        || c.is_whitespace()
        || is_removed(c)
        || std::iter::once(c).nfkc().all(|d| d.is_ascii() || is_removed(d))
}

/// The form in which names are compared: default ignorable code points and
/// control characters other than whitespace (see [`is_removed`]) removed
/// anywhere, then NFKC, then
/// lowercase (Unicode's default lowercase mapping, `str::to_lowercase`),
/// then NFKC again (lowercasing can leave a string that isn't in NFKC), then
/// leading and trailing whitespace (Unicode `White_Space`) removed.
///
/// This is close to Unicode's `NFKC_Casefold` (UAX #44, used for
/// caseless identifier matching) but lowercases instead of applying full
/// case folding; the two differ only for a few characters outside ASCII
/// (`ß` stays `ß` rather than becoming `ss`, a final `ς` stays `ς`), none of
/// which can turn a key into an ASCII name.
pub(crate) fn normalize(name: &str) -> String {
    let visible: String = name.chars().filter(|c| !is_removed(*c)).collect();
    let lower = visible.nfkc().collect::<String>().to_lowercase();
    let again: String = lower.nfkc().filter(|c| !is_removed(*c)).collect();
    match again.trim() {
        t if t.len() == again.len() => again,
        t => t.to_owned(),
    }
}

/// Characters removed from a key anywhere before it is compared: the
/// default ignorable ones, and control characters (Unicode general category
/// `Cc`: C0, DEL and C1) other than whitespace, such as NUL, BEL or ESC,
/// which a client can add to a key without changing how it is displayed.
/// Whitespace controls (tab, line breaks) are only trimmed at the ends.
fn is_removed(c: char) -> bool {
    is_default_ignorable(c) || (c.is_control() && !c.is_whitespace())
}

/// Unicode's `Default_Ignorable_Code_Point` property (DerivedCoreProperties.txt,
/// Unicode 15.1): characters with no visible rendering of their own, such as
/// the soft hyphen, zero-width space, joiners, bidirectional controls, the
/// word joiner, variation selectors, the byte order mark and tag characters.
/// A client can put them inside a key without changing how it looks.
///
/// Written out by hand because the ranges are few and fixed, and no
/// well-kept crate exposes this one property without a full Unicode
/// database.
fn is_default_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_names() -> ForbiddenNames {
        let names: Vec<String> = warden_dsl::DEFAULT_FORBIDDEN_FIELDS.iter().map(|n| (*n).to_owned()).collect();
        ForbiddenNames::new(&names)
    }

    #[test]
    fn forbidden_names_match_any_ascii_case_and_only_whole_names() {
        let names = ForbiddenNames::new(&["prompt".to_owned(), "messages".to_owned()]);
        assert!(names.contains("prompt"));
        assert!(names.contains("PROMPT"));
        assert!(names.contains("Messages"));
        assert!(!names.contains("prompts"));
        assert!(!names.contains("prompt_tokens"));
        assert!(!names.contains(""));
        assert!(!names.contains(&"x".repeat(100)), "long keys skip the length mask safely");
    }

    #[test]
    fn long_forbidden_names_disable_the_mask_rather_than_miss() {
        let long = "a".repeat(70);
        let names = ForbiddenNames::new(std::slice::from_ref(&long));
        assert!(names.contains(&long.to_uppercase()));
        assert!(names.contains(&format!(" {long}\u{200B}")));
    }

    #[test]
    fn other_spellings_of_a_forbidden_name_are_matched() {
        let names = default_names();
        for key in [
            "prompt ",
            "\tPrompt",
            " prompt\n",
            "prompt\u{3000}",
            "\u{00A0}prompt",
            "ＰＲＯＭＰＴ",
            "ｐｒｏｍｐｔ",
            "pro\u{200B}mpt",
            "pro\u{200C}m\u{200D}pt",
            "\u{FEFF}prompt",
            "pro\u{00AD}mpt",
            "prom\u{2060}pt",
            "prompt\u{FE0F}",
            "\u{202E}prompt",
            "\u{E0070}prompt",
            "prompt\u{0}",
            "\u{7}prompt",
            "pro\u{1B}mpt",
            "prompt\u{7F}",
            "\u{85}prompt\u{9F}",
            "ᴾᴿᴼᴹᴾᵀ",
            "ᵖʳᵒᵐᵖᵗ",
            "ＭＥＳＳＡＧＥＳ",
            "Con\u{200B}tent ",
            "TEXT",
            "ⓣⓔⓧⓣ",
            "𝐩𝐫𝐨𝐦𝐩𝐭",
            "meſſage", // long s
        ] {
            assert!(names.contains(key), "{key:?} should be refused");
        }
    }

    #[test]
    fn names_that_only_resemble_a_forbidden_name_are_not_matched() {
        let names = default_names();
        for key in [
            "prompt_tokens",
            "prompts",
            "pro mpt",
            "p-rompt",
            "рrompt", // Cyrillic `р`
            "prompt.",
            "contents",
            "message_count",
            "",
            "\u{200B}",
            " ",
            "inputs",
            "texts",
        ] {
            assert!(!names.contains(key), "{key:?} should be accepted");
        }
    }

    #[test]
    fn the_shortcut_for_other_scripts_agrees_with_full_normalisation() {
        let samples = [
            "clé",
            "ключ",
            "キー",
            "ＰＲＯＭＰＴ",
            "pro\u{200B}mpt",
            "ﬁle",
            "ⓣⓔⓧⓣ",
            "𝐩𝐫𝐨𝐦𝐩𝐭",
            "meſſage",
            "\u{212A}ey",
            "İd",
            "e\u{301}",
            "\u{00A0}x",
            "ǅ",
            "㎏",
            "①",
            "Ⅻ",
            "µ",
            "ß",
        ];
        for s in samples {
            let shortcut = s.chars().all(may_normalize_to_ascii);
            assert_eq!(shortcut, normalize(s).is_ascii(), "{s:?}");
        }
    }

    #[test]
    fn the_two_byte_check_never_rules_out_a_match() {
        let names = default_names();
        let matching = ["prompt", "PROMPT", " prompt", "prompt\t", "pro\u{200B}mpt", "\u{FEFF}prompt", "ＰＲＯＭＰＴ"];
        for key in matching {
            assert!(!names.cannot_match(key), "{key:?}");
        }
        // The usual request keys are ruled out without looking further.
        for key in ["model", "operation", "metadata", "contains_personal_data", "is_external_model"] {
            assert!(names.cannot_match(key), "{key:?}");
        }
        // Names outside ASCII turn the check off.
        let wide = ForbiddenNames::new(&["straße".to_owned()]);
        assert!(!wide.cannot_match("x"));
        assert!(!ForbiddenNames::new(&[String::new()]).cannot_match(""));
    }

    #[test]
    fn configured_names_are_normalised_too() {
        let names = ForbiddenNames::new(&["Transcript ".to_owned(), "ＮＯＴＥＳ".to_owned(), "straße".to_owned()]);
        assert!(names.contains("transcript"));
        assert!(names.contains("notes"));
        assert!(names.contains("STRAẞE"));
        assert!(names.contains("Straße"));
        assert!(!names.contains("strasse"), "lowercase, not full case folding: documented");
    }

    #[test]
    fn normalisation_is_idempotent_and_leaves_plain_names_alone() {
        for s in ["prompt", "ＰＲＯＭＰＴ ", "pro\u{200B}mpt", "Ǆ", "ﬃ", "İstanbul", "ΣΑΣ"] {
            let once = normalize(s);
            assert_eq!(normalize(&once), once, "{s:?}");
        }
        assert_eq!(normalize("metadata_intent"), "metadata_intent");
    }
}
