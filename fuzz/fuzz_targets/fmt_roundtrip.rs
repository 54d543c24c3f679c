//! Property: whatever parses formats to text that parses to the same AST,
//! and formatting that text again changes nothing, comments included.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_dsl::fmt::{comments, format_source};
use warden_dsl::{SourceFile, parse_str};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(ast) = parse_str("fuzz.warden", text) else { return };
    let formatted = match format_source(&SourceFile::new("fuzz.warden", text)) {
        Ok(f) => f,
        Err(e) => panic!("parsed but did not format: {:?}", e.iter().map(ToString::to_string).collect::<Vec<_>>()),
    };
    let reparsed = match parse_str("formatted.warden", &formatted) {
        Ok(a) => a,
        Err(e) => panic!(
            "formatted text does not parse: {:?}\n{formatted}",
            e.iter().map(ToString::to_string).collect::<Vec<_>>()
        ),
    };
    assert_eq!(reparsed, ast, "formatting changed the meaning:\n{formatted}");
    let again = format_source(&SourceFile::new("formatted.warden", formatted.as_str())).ok();
    assert_eq!(again.as_deref(), Some(formatted.as_str()), "formatting is not idempotent");
    assert_eq!(comments(&formatted), comments(text), "formatting lost or reordered a comment");
});
