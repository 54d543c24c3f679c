//! One place that builds regular expressions, with limits, so a policy can't
//! make Warden compile a pattern of unbounded size. Matching with the `regex`
//! crate is linear in the input, so no pattern can make a decision slow.

/// Compiled patterns may use at most this much memory.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles `pattern`, or returns the reason it is invalid on one line.
pub fn build(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .nest_limit(64)
        .build()
        .map_err(|e| match e {
            regex::Error::Syntax(s) => {
                s.lines().last().unwrap_or_default().trim().trim_start_matches("error: ").to_owned()
            }
            regex::Error::CompiledTooBig(limit) => {
                format!("the pattern compiles to more than {limit} bytes")
            }
            other => other.to_string(),
        })
}
