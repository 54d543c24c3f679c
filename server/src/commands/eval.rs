//! `warden eval [--policies DIR] [--input FILE|-] [--overrides FILE] [--explain]`.

use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use warden_engine::Overrides;

pub fn run(policies: &Path, input: &Path, overrides: Option<&Path>, explain: bool) -> anyhow::Result<ExitCode> {
    let Some((policy, _warnings)) = super::load_policy(policies)? else {
        return Ok(ExitCode::FAILURE);
    };
    let text = if input == Path::new("-") {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading the request from standard input")?;
        s
    } else {
        std::fs::read_to_string(input).with_context(|| format!("reading `{}`", input.display()))?
    };
    let request: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("the request in `{}` is not valid JSON", input.display()))?;
    let overrides: Option<Overrides> = match overrides {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading `{}`", path.display()))?;
            Some(serde_json::from_str(&text).with_context(|| {
                format!("`{}` is not valid overrides: expected {{\"threshold\"?: n, \"rules\"?: {{name: {{\"enabled\"?, \"score\"?}}}}}}", path.display())
            })?)
        }
        None => None,
    };
    if let Some(o) = &overrides {
        let unknown = policy.prepare(o).unknown_rules().to_vec();
        if !unknown.is_empty() {
            eprintln!("warning: overrides name rules this set doesn't have: {}", unknown.join(", "));
        }
    }
    let out = if explain {
        match policy.explain(&request, overrides.as_ref()) {
            Ok(ex) => serde_json::to_string_pretty(&ex)?,
            Err(rej) => serde_json::to_string_pretty(&rej)?,
        }
    } else {
        let prepared = overrides.as_ref().map(|o| policy.prepare(o)).unwrap_or_default();
        let result =
            if overrides.is_some() { policy.decide_with(&request, &prepared) } else { policy.decide(&request) };
        match result {
            Ok(d) => serde_json::to_string_pretty(&d)?,
            Err(rej) => serde_json::to_string_pretty(&rej)?,
        }
    };
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}
