//! Property: parsing and checking arbitrary bytes never panics, and never
//! reaches a state the grammar should rule out (an `internal` diagnostic).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_dsl::{SourceFile, check};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let checked = check(vec![SourceFile::new("fuzz.warden", text)]);
    for d in &checked.diagnostics {
        assert_ne!(d.code(), "internal", "{d}");
        // Rendering must not panic either, whatever the span.
        let _ = warden_dsl::render(d, false);
    }
    if let Some(set) = checked.set {
        let _ = warden_engine::Policy::compile(set);
    }
});
