//! A generated rule set shaped like real organisations' rules: per-model
//! limits, an approved-models list, hundreds of forbidden intent prefixes,
//! and operation sets combined with prefixes; about a third of the rules are
//! tied to neither a model nor an operation.
//!
//! One rule list is written out twice: as Warden text
//! ([`ShapedSet::warden_text`]) and as hand-written-style Rust `if`s over a
//! typed struct ([`ShapedSet::rust_source`], compiled into the benchmarks by
//! `build.rs`), so Warden and the baseline decide the very same rules. This
//! file uses only `std` because the build script includes it by path.

use std::fmt::Write as _;

/// The threshold of every shaped set.
pub const THRESHOLD: i64 = 100;

/// The rule counts the baseline is generated for.
pub const SIZES: [usize; 4] = [2, 100, 1_000, 10_000];

/// The seed the benchmarks and the build script share.
pub const SEED: u64 = 42;

const FAMILIES: [&str; 10] =
    ["gpt", "claude", "llama", "mistral", "gemini", "command", "phi", "qwen", "falcon", "eval"];

/// Operations requests name.
pub const OPERATIONS: [&str; 12] = [
    "classify",
    "summarize",
    "chat",
    "embed",
    "translate",
    "extract",
    "rewrite",
    "moderate",
    "search",
    "answer",
    "code",
    "caption",
];

/// Words forbidden intents start with.
pub const FORBIDDEN_WORDS: [&str; 10] =
    ["weapons", "malware", "fraud", "surveillance", "scraping", "phishing", "deepfake", "doxxing", "gambling", "spam"];

/// Words ordinary intents start with.
pub const BENIGN_WORDS: [&str; 6] = ["support", "sales", "billing", "search", "triage", "onboarding"];

/// The 50 model names: 5 per family (`gpt-1` … `eval-5`).
pub fn models() -> Vec<String> {
    FAMILIES.iter().flat_map(|f| (1..=5).map(move |v| format!("{f}-{v}"))).collect()
}

/// The approved models: every model but version 5 of each family.
pub fn approved_models() -> Vec<String> {
    models().into_iter().filter(|m| !m.ends_with("-5")).collect()
}

/// A small xorshift generator: the same seed gives the same rules on every
/// machine, with no dependency.
#[derive(Debug, Clone)]
pub struct ShapedRng(u64);

impl ShapedRng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }

    /// One of `items` (empty string when there are none).
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items.get(self.below(items.len())).copied().unwrap_or_default()
    }
}

/// What a rule is tied to.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// Every request.
    Any,
    /// One model.
    Model(String),
    /// A set of operations.
    Operations(Vec<&'static str>),
}

/// What a rule tests within its scope.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `metadata.tokens > n`.
    TokensOver(u32),
    /// `metadata.intent starts_with "p"`.
    IntentPrefix(String),
    /// `not (model in [approved…])`.
    NotApproved(Vec<String>),
    /// `metadata.contains_personal_data`.
    PersonalData,
}

/// What a rule does when it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Blocks outright.
    Deny,
    /// Adds to the risk score.
    Score(i64),
}

/// One rule of the list.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapedRule {
    /// What it is tied to.
    pub scope: Scope,
    /// What it tests.
    pub test: Test,
    /// What it does.
    pub effect: Effect,
}

/// A generated rule list.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapedSet {
    /// The rules, in order.
    pub rules: Vec<ShapedRule>,
}

impl ShapedSet {
    /// `n` rules from `seed`. The first is the approved-models deny; then
    /// a third forbidden intent prefixes (unscoped deny), a quarter
    /// per-model token limits, a fifth operation sets with an intent
    /// prefix, and a fifth per-model personal-data scores.
    pub fn generate(n: usize, seed: u64) -> Self {
        let models = models();
        let model_refs: Vec<&str> = models.iter().map(String::as_str).collect();
        let mut rng = ShapedRng::new(seed);
        let mut rules = Vec::with_capacity(n);
        if n > 0 {
            rules.push(ShapedRule {
                scope: Scope::Any,
                test: Test::NotApproved(approved_models()),
                effect: Effect::Deny,
            });
        }
        while rules.len() < n {
            let score = Effect::Score(5 * (1 + rng.below(10) as i64));
            let rule = match rng.below(60) {
                0..=19 => ShapedRule {
                    scope: Scope::Any,
                    test: Test::IntentPrefix(format!("{}_{}", rng.pick(&FORBIDDEN_WORDS), rng.below(1000))),
                    effect: Effect::Deny,
                },
                20..=35 => ShapedRule {
                    scope: Scope::Model(rng.pick(&model_refs).to_owned()),
                    test: Test::TokensOver(500 * (1 + rng.below(20)) as u32),
                    effect: if rng.below(4) == 0 { Effect::Deny } else { score },
                },
                36..=47 => {
                    let mut ops = vec![rng.pick(&OPERATIONS)];
                    for _ in 0..rng.below(3) {
                        let op = rng.pick(&OPERATIONS);
                        if !ops.contains(&op) {
                            ops.push(op);
                        }
                    }
                    ShapedRule {
                        scope: Scope::Operations(ops),
                        test: Test::IntentPrefix(format!("{}_{}", rng.pick(&BENIGN_WORDS), rng.below(40))),
                        effect: score,
                    }
                }
                _ => ShapedRule {
                    scope: Scope::Model(rng.pick(&model_refs).to_owned()),
                    test: Test::PersonalData,
                    effect: score,
                },
            };
            rules.push(rule);
        }
        Self { rules }
    }

    /// The set as one Warden file's text.
    pub fn warden_text(&self) -> String {
        let mut text = String::from(
            "input {\n  model: string\n  operation: string\n  metadata.intent: string?\n  metadata.tokens: number = 0\n  metadata.contains_personal_data: bool = false\n}\n\n",
        );
        let _ = writeln!(text, "threshold {THRESHOLD}");
        for (i, rule) in self.rules.iter().enumerate() {
            let test = match &rule.test {
                Test::TokensOver(n) => format!("metadata.tokens > {n}"),
                Test::IntentPrefix(p) => format!("metadata.intent starts_with \"{p}\""),
                Test::NotApproved(list) => format!("not (model in [{}])", quoted(list.iter().map(String::as_str))),
                Test::PersonalData => "metadata.contains_personal_data".to_owned(),
            };
            let condition = match &rule.scope {
                Scope::Any => test,
                Scope::Model(m) => format!("model == \"{m}\" and {test}"),
                Scope::Operations(ops) => format!("operation in [{}] and {test}", quoted(ops.iter().copied())),
            };
            let effect = match rule.effect {
                Effect::Deny => "deny".to_owned(),
                Effect::Score(s) => format!("score +{s}"),
            };
            let _ = write!(
                text,
                "\nrule r{i} {{\n  description \"generated\"\n  when {condition}\n  {effect}\n  reason reason_{}\n}}\n",
                i % 37
            );
        }
        text
    }

    /// The set as Rust: `pub fn decide_{name}(r: &Request<'_>) -> Outcome`,
    /// one `if` per rule in chunks of 500 (one function per chunk keeps the
    /// compiler's time in check), for a module that defines `Request` and
    /// `Outcome`.
    pub fn rust_source(&self, name: &str) -> String {
        let mut chunks = String::new();
        let mut calls = String::new();
        for (c, chunk) in self.rules.chunks(500).enumerate() {
            let _ = writeln!(calls, "    chunk_{name}_{c}(r, &mut out);");
            let _ = writeln!(chunks, "#[inline]\nfn chunk_{name}_{c}(r: &Request<'_>, out: &mut Outcome) {{");
            for rule in chunk {
                let test = match &rule.test {
                    Test::TokensOver(n) => format!("r.tokens > {n}.0"),
                    Test::IntentPrefix(p) => format!("r.intent.is_some_and(|i| i.starts_with({p:?}))"),
                    Test::NotApproved(list) => {
                        format!("!matches!(r.model, {})", alternatives(list.iter().map(String::as_str)))
                    }
                    Test::PersonalData => "r.contains_personal_data".to_owned(),
                };
                let condition = match &rule.scope {
                    Scope::Any => test,
                    Scope::Model(m) => format!("r.model == {m:?} && {test}"),
                    Scope::Operations(ops) => {
                        format!("matches!(r.operation, {}) && {test}", alternatives(ops.iter().copied()))
                    }
                };
                let effect = match rule.effect {
                    Effect::Deny => "out.denied = true;".to_owned(),
                    Effect::Score(s) => format!("out.score += {s};"),
                };
                let _ = writeln!(chunks, "    if {condition} {{ {effect} }}");
            }
            chunks.push_str("}\n\n");
        }
        format!(
            "{chunks}/// The {name}-rule shaped set as `if`s.\n#[inline(never)]\npub fn decide_{name}(r: &Request<'_>) -> Outcome {{\n    let mut out = Outcome::default();\n{calls}    out.allowed = !out.denied && out.score < {THRESHOLD};\n    out\n}}\n\n"
        )
    }
}

fn quoted<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
}

fn alternatives<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.map(|s| format!("{s:?}")).collect::<Vec<_>>().join(" | ")
}
