//! Deterministic inputs for the benchmarks: the default policies, generated
//! rule sets of any size, and requests to decide against them.

use std::fmt::Write as _;

use warden_dsl::SourceFile;
/// The shipped default policies, compiled (one loader for every test and
/// benchmark).
pub use warden_tests::default_policy;

pub mod baseline;
pub mod shaped;

/// A small xorshift generator: the same seed gives the same rules on every
/// machine, with no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
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

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items.get(self.below(items.len())).copied().unwrap_or_default()
    }
}

const FAMILIES: [&str; 10] =
    ["gpt", "claude", "llama", "mistral", "gemini", "command", "phi", "qwen", "falcon", "eval"];
const OPERATIONS: [&str; 12] = [
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
const REGIONS: [&str; 6] = ["eu", "us", "uk", "apac", "latam", "mea"];
const TAGS: [&str; 6] = ["pii", "finance", "health", "legal", "children", "biometric"];

/// The model names the generated sets and requests use: 5 per family.
pub fn models() -> Vec<String> {
    FAMILIES.iter().flat_map(|f| (1..=5).map(move |v| format!("{f}-{v}"))).collect()
}

/// A generated set of `n` rules. Most rules are scoped to one model or a few
/// operations (as real rule sets are), then test numbers, prefixes, regexes,
/// regions and tags; one rule in twenty is unscoped.
pub fn generated_set(n: usize, seed: u64) -> Vec<SourceFile> {
    let models = models();
    let model_refs: Vec<&str> = models.iter().map(String::as_str).collect();
    let mut rng = Rng::new(seed);
    let mut text = String::from(
        "input {\n  model: string\n  operation: string\n  metadata.region: string = \"eu\"\n  metadata.tokens: number = 0\n  metadata.intent: string?\n  metadata.tags: list<string> = []\n  metadata.contains_personal_data: bool = false\n}\n\nthreshold 100\n",
    );
    for i in 0..n {
        let scope = match rng.below(20) {
            0 => None,
            1..=11 => Some(format!("model == \"{}\"", rng.pick(&model_refs))),
            _ => {
                let (a, b) = (rng.pick(&OPERATIONS), rng.pick(&OPERATIONS));
                Some(format!("operation in [\"{a}\", \"{b}\"]"))
            }
        };
        let detail = match rng.below(6) {
            0 => format!("metadata.tokens > {}", 100 * (1 + rng.below(50))),
            1 => format!("model starts_with \"{}-\"", rng.pick(&FAMILIES)),
            2 => format!("metadata.intent matches \"^(support|sales)_{}\"", rng.below(10)),
            3 => format!("metadata.region in [\"{}\", \"{}\"]", rng.pick(&REGIONS), rng.pick(&REGIONS)),
            4 => format!("metadata.tags contains \"{}\"", rng.pick(&TAGS)),
            _ => "metadata.contains_personal_data".to_owned(),
        };
        let condition = match scope {
            Some(s) => format!("{s} and {detail}"),
            None => detail,
        };
        let effect = match rng.below(40) {
            0 => "deny".to_owned(),
            _ => format!("score +{}", 5 * (1 + rng.below(10))),
        };
        let _ = write!(
            text,
            "\nrule r{i} {{\n  description \"generated\"\n  when {condition}\n  {effect}\n  reason reason_{}\n}}\n",
            i % 37
        );
    }
    vec![SourceFile::new(format!("generated_{n}.warden"), text)]
}

/// The generated 1,000-rule set plus 20 rules reading three parameters
/// (an approved-models list used with `not … in`, a token limit compared
/// under a model scope, a region list used with `in`), and a customer's own
/// values for all three, as overrides JSON (`{"params": {…}}`).
pub fn generated_with_params() -> (Vec<SourceFile>, serde_json::Value) {
    let mut sources = generated_set(1000, 42);
    let models = models();
    let mut text = format!(
        "param approved: list<string> = [{}]\nparam max_tokens: number = 3000\nparam regions: list<string> = [\"us\"]\n",
        models.iter().take(5).map(|m| format!("{m:?}")).collect::<Vec<_>>().join(", ")
    );
    for i in 0..20 {
        let condition = match i % 3 {
            0 => "not (model in param.approved) and metadata.tokens > 100".to_owned(),
            1 => format!(
                "model == {:?} and metadata.tokens > param.max_tokens",
                models.get(i % models.len()).cloned().unwrap_or_default()
            ),
            _ => "metadata.region in param.regions and metadata.contains_personal_data".to_owned(),
        };
        let _ = writeln!(text, "rule p{i} {{ description \"d\" when {condition} score +10 reason p{i} }}");
    }
    sources.push(SourceFile::new("params.warden", text));
    let own = serde_json::json!({"params": {
        "approved": models.iter().skip(3).take(8).collect::<Vec<_>>(),
        "max_tokens": 5000,
        "regions": ["us", "eu"],
    }});
    (sources, own)
}

/// Requests to decide against a generated set, cycling through models,
/// operations and metadata.
pub fn generated_requests(count: usize, seed: u64) -> Vec<serde_json::Value> {
    let models = models();
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let model = models.get(rng.below(models.len())).cloned().unwrap_or_default();
            serde_json::json!({
                "model": model,
                "operation": rng.pick(&OPERATIONS),
                "metadata": {
                    "region": rng.pick(&REGIONS),
                    "tokens": 100 * rng.below(60),
                    "intent": format!("support_{}", rng.below(12)),
                    "tags": [rng.pick(&TAGS)],
                    "contains_personal_data": rng.below(4) == 0,
                }
            })
        })
        .collect()
}

/// The shaped set of `n` rules ([`shaped::ShapedSet`]) as one Warden file.
pub fn shaped_set(n: usize) -> Vec<SourceFile> {
    let text = shaped::ShapedSet::generate(n, shaped::SEED).warden_text();
    vec![SourceFile::new(format!("shaped_{n}.warden"), text)]
}

/// Requests for the shaped sets: every model (a fifth unapproved), every
/// operation, intents mostly ordinary, some starting with a forbidden
/// word, some absent.
pub fn shaped_requests(count: usize, seed: u64) -> Vec<serde_json::Value> {
    let models = shaped::models();
    let mut rng = shaped::ShapedRng::new(seed);
    (0..count)
        .map(|_| {
            let model = models.get(rng.below(models.len())).cloned().unwrap_or_default();
            let mut metadata = serde_json::json!({
                "tokens": 100 * rng.below(100),
                "contains_personal_data": rng.below(4) == 0,
            });
            let intent = match rng.below(20) {
                0..=1 => None,
                2..=4 => Some(format!("{}_{}", rng.pick(&shaped::FORBIDDEN_WORDS), rng.below(1000))),
                _ => Some(format!("{}_{}_request", rng.pick(&shaped::BENIGN_WORDS), rng.below(60))),
            };
            if let (Some(i), Some(m)) = (intent, metadata.as_object_mut()) {
                m.insert("intent".to_owned(), i.into());
            }
            serde_json::json!({"model": model, "operation": rng.pick(&shaped::OPERATIONS), "metadata": metadata})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)] // tests fail loudly

    use super::*;

    /// The baseline and Warden decide every shaped request alike: the same
    /// rule list really is behind both.
    #[test]
    fn baseline_and_warden_agree_on_the_shaped_sets() {
        let requests = shaped_requests(300, 7);
        let texts: Vec<String> = requests.iter().map(ToString::to_string).collect();
        let (mut denied, mut allowed) = (0, 0);
        for (n, decide) in baseline::SHAPED {
            let policy = warden_tests::compile(shaped_set(n)).unwrap_or_else(|e| panic!("{n} rules: {e}"));
            for (value, text) in requests.iter().zip(&texts) {
                let decision = policy.decide(value).map(|d| (d.allowed, d.risk_score)).ok();
                let typed = baseline::Wire::parse(text).map(|w| decide(&w.request()));
                let typed = typed.map(|o| (o.allowed, o.score));
                assert_eq!(decision, typed.ok(), "{n} rules, request {text}");
                if decision.is_some_and(|d| d.0) { allowed += 1 } else { denied += 1 }
            }
        }
        assert!(allowed > 100 && denied > 100, "requests exercise both outcomes: {allowed} allowed, {denied} blocked");
    }

    #[test]
    fn generated_sets_compile_and_are_deterministic() {
        for n in [1usize, 100, 1000] {
            let set = generated_set(n, 42);
            assert_eq!(set, generated_set(n, 42));
            let compiled = warden_engine::Policy::from_sources(set);
            assert!(
                compiled.is_ok(),
                "{n} rules: {:?}",
                compiled.err().map(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>())
            );
        }
        assert_eq!(generated_requests(5, 7), generated_requests(5, 7));
    }
}
