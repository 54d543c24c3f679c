//! A shadow policy set (`--shadow-policies`): decided beside the enforced
//! set on every request under the same overrides, recorded on the audit
//! row where it differs, summarised by `/api/admin/shadow`, reloaded behind
//! its own test blocks, and never deciding anything. On SQLite and
//! Postgres.

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use uuid::Uuid;
use warden_server::reload::Reloaded;

use crate::support::{TestApp, policy_dir_copy};

const PII: &str = r#"{"model":"gpt-4","operation":"classify","metadata":{"contains_personal_data":true}}"#;
const EXTERNAL: &str = r#"{"model":"gpt-4","operation":"classify","metadata":{"is_external_model":true}}"#;

/// The default `risk.warden` with external models scoring `score`, its
/// test blocks kept true to it.
fn risk_text(score: i64) -> String {
    retuned("risk.warden", score)
}

/// A default policy file with external models scoring `score`, and its
/// tests' expectations of them to match.
fn retuned(file: &str, score: i64) -> String {
    let path = format!("{}/../policies/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    let verdict = if score < 50 { "allowed" } else { "blocked" };
    text.replace("score +50", &format!("score +{score}"))
        .replace(
            "expect blocked score 50 reason external_model",
            &format!("expect {verdict} score {score} reason external_model"),
        )
        .replace("expect blocked score 120", &format!("expect blocked score {}", 70 + score))
}

/// The default policies with external models scoring `score`.
fn shadow_dir(score: i64) -> std::path::PathBuf {
    let dir = policy_dir_copy();
    std::fs::write(dir.join("risk.warden"), risk_text(score)).unwrap();
    std::fs::write(dir.join("models.warden"), retuned("models.warden", score)).unwrap();
    dir
}

async fn admin(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    crate::admin::call(app, &app.admin_key, method, path, body).await
}

async fn recorded_shadow(app: &TestApp, answer: &Value) -> Option<Value> {
    let id: Uuid = serde_json::from_value(answer["decision_id"].clone()).unwrap();
    let row = app.store.decision(id).await.unwrap().unwrap().row;
    row.shadow.map(|s| serde_json::to_value(s.0).unwrap())
}

each_backend!(the_shadow_set_is_decided_beside_the_enforced_one_and_recorded_where_it_differs, |backend| {
    let dir = shadow_dir(30);
    let options = warden_server::server::Options { shadow_policy_dir: Some(dir.clone()), ..TestApp::options() };
    let mut app = TestApp::with_options(backend, options).await;
    let candidate_version = app.state.live.load().candidate.as_ref().unwrap().policy.version().to_owned();
    assert_ne!(candidate_version, app.state.live.load().policy.version());
    // The enforced set decides: external models are blocked at 50.
    let (status, _, external) = app.check(&app.app_key, EXTERNAL).await;
    assert_eq!((status, external["allowed"].clone(), external["risk_score"].clone()), (200, json!(false), json!(50)));
    assert!(external.get("shadow").is_none(), "the shadow set is not in the answer: {external}");
    let (_, _, pii) = app.check(&app.app_key, PII).await;
    // The same overrides apply to both: a customer without external_model
    // is allowed by both, so nothing differs.
    let own = format!("/api/admin/customers/{}/policies/external_model", app.customer_id);
    assert_eq!(admin(&app, "PUT", &own, Some(json!({"enabled": false}))).await.0, 200);
    let (_, _, same) = app.check(&app.app_key, EXTERNAL).await;
    assert_eq!(same["allowed"], json!(true), "{same}");
    app.drain_audit().await;
    assert_eq!(recorded_shadow(&app, &same).await, None);
    // The row records the shadow set's decision where it differs, only.
    let shadow = recorded_shadow(&app, &external).await.expect("a difference is recorded");
    assert_eq!(
        shadow["candidate"],
        json!({"allowed": true, "risk_score": 30, "reason": "external_model", "policy_version": candidate_version})
    );
    assert_eq!(recorded_shadow(&app, &pii).await, None, "the same decision records nothing");
    let (_, _, metrics) = app.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(metrics.contains(r#"warden_shadow_set_differences_total{change="block_to_allow"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"warden_shadow_set_differences_total{change="allow_to_block"} 0"#), "{metrics}");
    // The summary, by shadow-set version, with the example.
    let (_, summary) = admin(&app, "GET", "/api/admin/shadow", None).await;
    assert_eq!(summary["sets"][0]["policy_version"], json!(candidate_version), "{summary}");
    assert_eq!(summary["sets"][0]["block_to_allow"], json!(1));
    assert_eq!(summary["sets"][0]["examples"]["block_to_allow"], json!([external["decision_id"]]));
    // The status shows the shadow set, and so do the dashboard's pages.
    let (_, status) = admin(&app, "GET", "/api/admin/status", None).await;
    assert_eq!(status["shadow_set"]["policy_version"], json!(candidate_version), "{status}");
    let s = crate::ui_support::sign_in(&app, &app.admin_key).await;
    let rules = s.get(&app, "/ui/rules").await;
    assert!(rules.html.contains(&format!("<code>{candidate_version}</code>")), "{}", rules.html);
    let page = s.get(&app, "/ui/status").await;
    assert!(page.html.contains("Shadow policy set") && page.html.contains(&candidate_version), "{}", page.html);
    let decision = s.get(&app, &format!("/ui/logs/{}", external["decision_id"].as_str().unwrap())).await;
    assert!(decision.html.contains("decided this request differently"), "{}", decision.html);
});

each_backend!(the_shadow_set_reloads_only_what_compiles_and_passes_its_tests, |backend| {
    let dir = shadow_dir(30);
    let options = warden_server::server::Options { shadow_policy_dir: Some(dir.clone()), ..TestApp::options() };
    let app = TestApp::with_options(backend, options).await;
    let reloader = app.state.shadow_reloader.clone().unwrap();
    let first = app.state.live.load().candidate.as_ref().unwrap().policy.version().to_owned();
    let enforced = app.state.live.load().policy.version().to_owned();
    // A file that does not compile: refused, the shadow set keeps running.
    std::fs::write(dir.join("broken.warden"), "rule {").unwrap();
    assert!(matches!(reloader.reload(&app.state).await, Reloaded::Failed(_)));
    std::fs::remove_file(dir.join("broken.warden")).unwrap();
    // A change its own test blocks reject: refused too.
    std::fs::write(dir.join("risk.warden"), risk_text(30).replace("score +30", "score +35")).unwrap();
    assert!(matches!(reloader.reload(&app.state).await, Reloaded::Failed(_)), "its test expects score 30");
    assert_eq!(app.state.live.load().candidate.as_ref().unwrap().policy.version(), first);
    let status = reloader.status();
    assert_eq!((status.last_result, status.reloads_failed), (Some("error"), 2));
    // A good change swaps the shadow set, and only it.
    std::fs::write(dir.join("risk.warden"), risk_text(35)).unwrap();
    std::fs::write(dir.join("models.warden"), retuned("models.warden", 35)).unwrap();
    assert!(matches!(reloader.reload(&app.state).await, Reloaded::Swapped(_)));
    let live = app.state.live.load();
    assert_ne!(live.candidate.as_ref().unwrap().policy.version(), first);
    assert_eq!(live.policy.version(), enforced, "the enforced set is untouched");
    // An override reload and an enforced-set swap keep the shadow set.
    let kept = app.state.live.load().candidate.as_ref().unwrap().policy.version().to_owned();
    app.state.live.reload_overrides(&app.store).await.unwrap();
    assert_eq!(app.state.live.load().candidate.as_ref().map(|c| c.policy.version().to_owned()), Some(kept.clone()));
    app.state.live.replace_policy(std::sync::Arc::new(crate::support::default_policy())).await;
    assert_eq!(app.state.live.load().candidate.as_ref().map(|c| c.policy.version().to_owned()), Some(kept));
});

each_backend!(a_shadow_set_that_does_not_compile_or_pass_its_tests_stops_start_up, |backend| {
    let (store, _cleanup) = crate::support::fresh_store(backend).await;
    for dir in [
        {
            let d = policy_dir_copy();
            std::fs::write(d.join("broken.warden"), "rule {").unwrap();
            d
        },
        {
            let d = policy_dir_copy();
            let risk = risk_text(50);
            std::fs::write(d.join("risk.warden"), risk.replace("score +50", "score +40")).unwrap();
            d
        },
    ] {
        let options = warden_server::server::Options { shadow_policy_dir: Some(dir), ..TestApp::options() };
        let built = warden_server::server::build_state(store.clone(), crate::support::default_policy(), &options).await;
        let err = built.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(err.contains("shadow policy set"), "{err}");
    }
});

each_backend!(a_request_the_enforced_set_refuses_is_decided_by_the_shadow_set_too, |backend| {
    // A shadow set that accepts `prompt` (only `text` is a content field).
    let dir = policy_dir_copy();
    let base = std::fs::read_to_string(dir.join("base.warden")).unwrap();
    let start = base.find("forbidden_fields [").unwrap();
    let end = start + base[start..].find(']').unwrap() + 1;
    let lenient = format!("{}forbidden_fields [\"text\"]{}", &base[..start], &base[end..]);
    // Its own tests expect `prompt` refused; drop them from the copy.
    let lenient = lenient.split("\ntest ").next().unwrap().to_owned();
    std::fs::write(dir.join("base.warden"), lenient).unwrap();
    let options = warden_server::server::Options { shadow_policy_dir: Some(dir), ..TestApp::options() };
    let mut app = TestApp::with_options(backend, options).await;
    let (status, _, refused) =
        app.check(&app.app_key, r#"{"model":"gpt-4","operation":"classify","metadata":{"prompt":"p"}}"#).await;
    assert_eq!((status, refused["error"].clone()), (422, json!("forbidden_field")), "{refused}");
    app.drain_audit().await;
    let shadow = recorded_shadow(&app, &refused).await.expect("the shadow set's decision is recorded");
    assert_eq!(
        (shadow["candidate"]["allowed"].clone(), shadow["candidate"]["reason"].clone()),
        (json!(true), json!("ok"))
    );
    assert!(shadow.get("rules").is_none(), "{shadow}");
});
