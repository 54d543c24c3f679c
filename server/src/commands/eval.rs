//! `warden eval [--policies DIR] [--input FILE|-] [--overrides FILE] [--explain]`.

use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use warden_engine::{Overrides, Policy};

pub fn run(policies: &Path, input: &Path, overrides: Option<&Path>, explain: bool) -> anyhow::Result<ExitCode> {
    let Some((policy, _warnings)) = super::load_policy(policies)? else {
        return Ok(ExitCode::FAILURE);
    };
    let request = if input == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).context("reading the request from standard input")?;
        bytes
    } else {
        std::fs::read(input).with_context(|| format!("reading `{}`", input.display()))?
    };
    let overrides = match overrides {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading `{}`", path.display()))?;
            Some(Overrides::from_json(&bytes).with_context(|| format!("reading overrides from `{}`", path.display()))?)
        }
        None => None,
    };
    if let Some(o) = &overrides {
        let prepared = policy.prepare(o);
        let unknown = prepared.unknown_rules();
        if !unknown.is_empty() {
            eprintln!("warning: overrides name rules this set doesn't have: {}", unknown.join(", "));
        }
        if !prepared.unknown_params().is_empty() {
            let names = prepared.unknown_params().join(", ");
            eprintln!("warning: overrides name parameters this set doesn't declare: {names}");
        }
        for (_, why) in prepared.invalid_params() {
            eprintln!("warning: {why}; the file's value is used");
        }
    }
    let out = evaluate(&policy, &request, overrides.as_ref(), explain)
        .with_context(|| format!("the request in `{}` is not valid JSON", input.display()))?;
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// Decides one request as the service would and renders the decision, the
/// explanation or the rejection as pretty JSON. The request is read from
/// its bytes as `/v1/check` reads it, so a repeated key is a
/// `duplicate_key` rejection (and nesting past the parser's limit a
/// `too_deep` one); only text that is not JSON at all is an error.
fn evaluate(
    policy: &Policy,
    request: &[u8],
    overrides: Option<&Overrides>,
    explain: bool,
) -> Result<String, warden_engine::json::JsonError> {
    use warden_engine::RequestError;
    let refused = |e: RequestError| match e {
        RequestError::Rejected(rejection) => Ok(pretty(&rejection)),
        RequestError::Malformed(e) => Err(e),
    };
    Ok(if explain {
        match policy.explain_bytes(request, overrides) {
            Ok(ex) => pretty(&ex),
            Err(e) => refused(e)?,
        }
    } else {
        let result = match overrides {
            Some(o) => policy.decide_bytes_with(request, &policy.prepare(o)),
            None => policy.decide_bytes(request),
        };
        match result {
            Ok(d) => pretty(&d),
            Err(e) => refused(e)?,
        }
    })
}

fn pretty(value: &impl serde::Serialize) -> String {
    // Serializing these types to a string can't fail: every map key is a
    // string and there is no I/O.
    serde_json::to_string_pretty(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests fail loudly on bad fixtures

    use serde_json::{Value, json};

    use super::*;

    fn policy() -> Policy {
        let src = warden_engine::SourceFile::new(
            "p.warden",
            "input { model: string  metadata.ext: bool = false }\n\
             rule ext { description \"d\" when metadata.ext score +50 reason ext }\n",
        );
        Policy::from_sources(vec![src]).map_err(|e| e.len()).unwrap().0
    }

    fn eval(request: &str, overrides: Option<&Overrides>, explain: bool) -> Value {
        serde_json::from_str(&evaluate(&policy(), request.as_bytes(), overrides, explain).unwrap()).unwrap()
    }

    #[test]
    fn a_repeated_key_is_a_duplicate_key_rejection_with_or_without_explain() {
        let request = r#"{"model": "m", "metadata": {"prompt": "x"}, "metadata": {"ext": true}}"#;
        for explain in [false, true] {
            let out = eval(request, None, explain);
            assert_eq!((&out["error"], &out["path"]), (&json!("duplicate_key"), &json!("metadata")), "{out}");
        }
        let nested = r#"{"model": "m", "metadata": {"ext": false, "ext": true}}"#;
        assert_eq!(eval(nested, None, false)["path"], json!("metadata.ext"));
    }

    #[test]
    fn requests_are_decided_and_only_non_json_is_an_error() {
        let out = eval(r#"{"model": "m", "metadata": {"ext": true}}"#, None, false);
        assert_eq!((&out["allowed"], &out["risk_score"]), (&json!(false), &json!(50)));
        let overrides = Overrides::from_json(br#"{"rules": {"ext": {"score": 5}}}"#).unwrap();
        let out = eval(r#"{"model": "m", "metadata": {"ext": true}}"#, Some(&overrides), false);
        assert_eq!((&out["allowed"], &out["risk_score"]), (&json!(true), &json!(5)));
        let deep = format!(r#"{{"model": "m", "x": {}{}}}"#, "[".repeat(200), "]".repeat(200));
        assert_eq!(eval(&deep, None, false)["error"], json!("too_deep"));
        assert!(evaluate(&policy(), b"{not json", None, false).is_err());
    }
}
