//! The case corpus: every file in `tests/cases/` holds a policy, an input and
//! the expected decision, rejection or error codes. One generic runner turns
//! each file into its own test (named after the file, so
//! `cargo test -p warden-tests --test corpus reject_duplicate_key` runs one);
//! it compares codes, never message text. A case must expect something: an
//! empty `[expect]` fails rather than passing vacuously.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // tests fail loudly

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};

use serde::Deserialize;
use warden_dsl::SourceFile;
use warden_engine::json::JsonError;
use warden_engine::{Overrides, OverridesError, Policy};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// A one-file policy set.
    policy: Option<String>,
    /// Or several files, by name.
    #[serde(default)]
    files: BTreeMap<String, String>,
    /// The request, as JSON text (it may be deliberately odd).
    input: Option<String>,
    /// Overrides, as JSON text.
    overrides: Option<String>,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    allowed: Option<bool>,
    score: Option<i64>,
    reason: Option<String>,
    contributions: Option<Vec<String>>,
    /// The shadow rules that held, in source order (`[]`: none).
    shadow: Option<Vec<String>>,
    /// The decision had the shadow rules been enforced.
    shadow_allowed: Option<bool>,
    shadow_score: Option<i64>,
    shadow_reason: Option<String>,
    rejected: Option<String>,
    path: Option<String>,
    /// Why the case's overrides must be refused: `duplicate_key`,
    /// `too_deep`, `syntax` or `shape`.
    invalid_overrides: Option<String>,
    /// Error codes from checking/compiling the set, in order.
    errors: Option<Vec<String>>,
    /// Warning codes, in order.
    warnings: Option<Vec<String>>,
}

impl Expect {
    /// Whether the case states any outcome at all (`path` alone qualifies
    /// nothing: it is checked only with `rejected`).
    fn expects_something(&self) -> bool {
        self.allowed.is_some()
            || self.score.is_some()
            || self.reason.is_some()
            || self.contributions.is_some()
            || self.shadow.is_some()
            || self.shadow_allowed.is_some()
            || self.shadow_score.is_some()
            || self.shadow_reason.is_some()
            || self.rejected.is_some()
            || self.invalid_overrides.is_some()
            || self.errors.is_some()
            || self.warnings.is_some()
    }
}

fn run(case: &Case) -> Result<(), String> {
    if !case.expect.expects_something() {
        return Err("the case expects nothing: state an outcome in `[expect]` (allowed, score, reason, \
             contributions, shadow…, rejected, invalid_overrides, errors or warnings)"
            .to_owned());
    }
    if case.expect.path.is_some() && case.expect.rejected.is_none() {
        return Err("`path` is checked only with `rejected`".to_owned());
    }
    let mut sources: Vec<SourceFile> =
        case.files.iter().map(|(n, t)| SourceFile::new(n.as_str(), t.as_str())).collect();
    if let Some(p) = &case.policy {
        sources.push(SourceFile::new("policy.warden", p.as_str()));
    }
    let e = &case.expect;
    let (policy, warnings) = match Policy::from_sources(sources) {
        Ok(ok) => ok,
        Err(diags) => {
            let errors: Vec<&str> = diags.iter().filter(|d| d.is_error()).map(|d| d.code()).collect();
            return match &e.errors {
                Some(want) if *want == errors => Ok(()),
                _ => Err(format!(
                    "set failed to compile with {errors:?}: {:?}",
                    diags.iter().map(ToString::to_string).collect::<Vec<_>>()
                )),
            };
        }
    };
    if let Some(want) = &e.errors {
        return Err(format!("expected errors {want:?}, but the set compiled"));
    }
    let got_warnings: Vec<&str> = warnings.iter().map(|d| d.code()).collect();
    if got_warnings != e.warnings.clone().unwrap_or_default() {
        return Err(format!("expected warnings {:?}, got {got_warnings:?}", e.warnings));
    }
    let expects_decision = e.allowed.is_some()
        || e.score.is_some()
        || e.reason.is_some()
        || e.contributions.is_some()
        || e.shadow.is_some()
        || e.shadow_allowed.is_some()
        || e.shadow_score.is_some()
        || e.shadow_reason.is_some()
        || e.rejected.is_some();
    if expects_decision && case.input.is_none() {
        return Err("the case expects a decision or a rejection but gives no `input`".to_owned());
    }
    if e.invalid_overrides.is_some() && case.overrides.is_none() {
        return Err("the case expects `invalid_overrides` but gives no `overrides`".to_owned());
    }
    // Overrides are read (and their expected refusal checked) whether or
    // not there is an input to decide.
    let overrides: Overrides = match &case.overrides {
        Some(o) => match (Overrides::from_json(o.as_bytes()), &e.invalid_overrides) {
            (Ok(o), None) => o,
            (Ok(_), Some(want)) => return Err(format!("expected the overrides to be refused with `{want}`")),
            (Err(err), want) => {
                let code = match &err {
                    OverridesError::Json(JsonError::DuplicateKey { .. }) => "duplicate_key",
                    OverridesError::Json(JsonError::TooDeep) => "too_deep",
                    OverridesError::Json(JsonError::Syntax { .. }) => "syntax",
                    OverridesError::Shape(_) => "shape",
                };
                return match want {
                    Some(w) if w == code => Ok(()),
                    _ => Err(format!("bad overrides in case: {err}")),
                };
            }
        },
        None => Overrides::default(),
    };
    let Some(input) = &case.input else {
        return Ok(());
    };
    // The request is read as the service reads it: a repeated key or
    // nesting past the parser's limit is a rejection, like a content field.
    let result = match warden_engine::json::parse(input.as_bytes()) {
        Ok(input) => policy.decide_with(&input, &policy.prepare(&overrides)),
        Err(err) => Err(err.rejection().ok_or_else(|| format!("bad input JSON in case: {err}"))?),
    };
    match result {
        Err(rej) => {
            if e.rejected.as_deref() != Some(rej.code()) {
                return Err(format!("rejected with `{}` at `{}`, expected {:?}", rej.code(), rej.path, e));
            }
            if let Some(p) = &e.path {
                if *p != rej.path {
                    return Err(format!("rejection path `{}`, expected `{p}`", rej.path));
                }
            }
            Ok(())
        }
        Ok(d) => {
            if let Some(r) = &e.rejected {
                return Err(format!("expected rejection `{r}`, got a decision {d:?}"));
            }
            let contributions: Vec<String> = d.contributions.iter().map(|c| c.rule.to_owned()).collect();
            let shadow: Vec<String> = d.shadow.iter().map(|m| m.rule.to_owned()).collect();
            let other = d.shadow_outcome.as_ref();
            let mismatches = [
                e.allowed.is_some_and(|a| a != d.allowed),
                e.score.is_some_and(|s| s != d.risk_score),
                e.reason.as_deref().is_some_and(|r| r != d.reason),
                e.contributions.as_ref().is_some_and(|c| *c != contributions),
                e.shadow.as_ref().is_some_and(|s| *s != shadow),
                e.shadow_allowed.is_some_and(|a| other.is_none_or(|o| o.allowed != a)),
                e.shadow_score.is_some_and(|s| other.is_none_or(|o| o.risk_score != s)),
                e.shadow_reason.as_deref().is_some_and(|r| other.is_none_or(|o| o.reason != r)),
            ];
            if mismatches.iter().any(|m| *m) { Err(format!("got {d:?}, expected {e:?}")) } else { Ok(()) }
        }
    }
}

fn run_file(path: &Path) -> Result<(), Failed> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("unreadable case: {e}"))?;
    let case = toml::from_str::<Case>(&text).map_err(|e| format!("unreadable case: {e}"))?;
    run(&case).map_err(Failed::from)
}

/// The runner itself must refuse a case that checks nothing.
fn a_case_expecting_nothing_fails() -> Result<(), Failed> {
    for expect in ["[expect]", "[expect]\npath = \"metadata.prompt\""] {
        let text = format!("policy = 'input {{ model: string }}'\ninput = '{{\"model\": \"m\"}}'\n{expect}\n");
        let case: Case = toml::from_str(&text).map_err(|e| e.to_string())?;
        if run(&case).is_ok() {
            return Err(format!("a case with `{expect}` passed").into());
        }
    }
    Ok(())
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let cases = cases();
    let count = cases.len();
    let mut trials: Vec<Trial> = cases
        .into_iter()
        .map(|path| {
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            Trial::test(name, move || run_file(&path))
        })
        .collect();
    trials.push(Trial::test("runner::a_case_expecting_nothing_fails", a_case_expecting_nothing_fails));
    trials.push(Trial::test("runner::the_corpus_is_not_empty", move || {
        if count >= 30 { Ok(()) } else { Err(format!("the corpus has only {count} cases").into()) }
    }));
    libtest_mimic::run(&args, trials).exit_code()
}
