//! Settings outliving their rule: toggles and overrides are stored by rule
//! name, so when a rule leaves the policy set its settings are marked
//! orphaned and never apply to a later rule that takes the same name, until
//! an admin re-confirms or deletes them. On SQLite and Postgres.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use warden_engine::{Policy, SourceFile};

use crate::support::TestApp;

const INPUT: &str = r#"
input {
  model: string
  operation: string
  metadata.contains_personal_data: bool = false
  metadata.is_external_model: bool = false
}
threshold 50
rule contains_personal_data { description "pii" when metadata.contains_personal_data score +70 reason contains_personal_data }
"#;

/// The rules the settings are made for.
const FIRST: &str = r#"
rule external_model { description "external" when metadata.is_external_model score +50 reason external_model }
rule approved_models { description "approved" enabled false when not (model in ["gpt-4"]) deny reason unapproved_model }
"#;

/// Different rules that take the same names later.
const LATER: &str = r#"
rule external_model { description "now a deny" when metadata.is_external_model deny reason no_external }
rule approved_models { description "off in the files" enabled false when model == "gpt-4" deny reason gpt4_banned }
"#;

fn policy(rules: &str) -> Arc<Policy> {
    let src = SourceFile::new("p.warden", format!("{INPUT}{rules}"));
    match Policy::from_sources(vec![src]) {
        Ok((p, _)) => Arc::new(p),
        Err(e) => panic!("{:?}", e.iter().map(ToString::to_string).collect::<Vec<_>>()),
    }
}

async fn admin(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {}", app.admin_key))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let (status, _, json) = app.send(req).await;
    (status, json)
}

const EXT: &str = r#"{"model":"gpt-4","operation":"x","metadata":{"is_external_model":true}}"#;
const GPT4: &str = r#"{"model":"gpt-4","operation":"x"}"#;

each_backend!(settings_of_a_deleted_rule_never_apply_to_a_later_rule_of_the_same_name, |backend| {
    let app = TestApp::new(backend).await;
    let live = &app.state.live;
    live.replace_policy(policy(FIRST)).await;
    let base = format!("/api/admin/customers/{}", app.customer_id);
    // An exemption for this customer, and a rule switched on for everyone.
    assert_eq!(
        admin(&app, "PUT", &format!("{base}/policies/external_model"), Some(json!({"enabled": false}))).await.0,
        200
    );
    assert_eq!(
        admin(&app, "PATCH", "/api/admin/policies/approved_models", Some(json!({"enabled": true}))).await.0,
        200
    );
    assert_eq!(app.check(&app.app_key, EXT).await.2["allowed"], json!(true), "exempt");

    // Both rules leave the set. Serving it marks their settings.
    live.replace_policy(policy("")).await;
    let orphans = live.mark_orphans(&app.store).await.unwrap();
    assert_eq!(orphans.len(), 2, "{orphans:?}");
    // They are listed, readable and counted, though no rule has their name.
    let (status, listed) = admin(&app, "GET", "/api/admin/orphans", None).await;
    assert_eq!((status, listed["total"].as_i64()), (200, Some(2)), "{listed}");
    let toggle = listed["items"].as_array().unwrap().iter().find(|o| o["customer_id"].is_null()).unwrap();
    assert_eq!((toggle["rule"].as_str(), toggle["enabled"].as_bool()), (Some("approved_models"), Some(true)));
    let (status, o) = admin(&app, "GET", &format!("{base}/policies/external_model"), None).await;
    assert_eq!((status, o["enabled"].as_bool()), (200, Some(false)), "{o}");
    assert!(o["orphaned_at"].is_string(), "{o}");
    let (_, status_body) = admin(&app, "GET", "/api/admin/status", None).await;
    assert_eq!(status_body["orphaned_settings"], json!(2));
    let (_, eff) = admin(&app, "GET", &format!("{base}/effective-policy"), None).await;
    assert_eq!(eff["orphans"].as_array().map(Vec::len), Some(2), "{eff}");
    let (_, trail) = admin(&app, "GET", "/api/admin/audit?page_size=1", None).await;
    assert_eq!(trail["items"][0]["action"], json!("policy.orphan"));
    assert_eq!(trail["items"][0]["after"]["rules"], json!(["approved_models", "external_model"]));

    // Different rules take the same names: the old settings don't apply.
    live.replace_policy(policy(LATER)).await;
    assert!(live.mark_orphans(&app.store).await.unwrap().len() == 2, "still orphaned while a rule has the name");
    let (_, _, d) = app.check(&app.app_key, EXT).await;
    assert_eq!((d["allowed"].as_bool(), d["reason"].as_str()), (Some(false), Some("no_external")), "{d}");
    let (_, _, d) = app.check(&app.app_key, GPT4).await;
    assert_eq!(d["allowed"], json!(true), "the new rule is off as its file says, not on by the old toggle: {d}");
    let (_, eff) = admin(&app, "GET", &format!("{base}/effective-policy"), None).await;
    let rule = |name: &str| eff["rules"].as_array().unwrap().iter().find(|r| r["key"] == name).unwrap().clone();
    assert_eq!(rule("external_model")["enabled"], json!({"value": true, "source": "file"}));
    assert_eq!(rule("approved_models")["enabled"], json!({"value": false, "source": "file"}));

    // Re-confirming applies the override to the rule now of that name.
    assert_eq!(
        admin(&app, "PUT", &format!("{base}/policies/external_model"), Some(json!({"enabled": false}))).await.0,
        200
    );
    assert_eq!(app.check(&app.app_key, EXT).await.2["allowed"], json!(true));
    let (_, trail) = admin(&app, "GET", "/api/admin/audit?page_size=1", None).await;
    assert_eq!(trail["items"][0]["after"]["reconfirmed_orphan"]["enabled"], json!(false), "{trail}");
    // Deleting the orphaned toggle leaves nothing orphaned.
    assert_eq!(admin(&app, "DELETE", "/api/admin/orphans/toggles/approved_models", None).await.0, 204);
    assert_eq!(admin(&app, "DELETE", "/api/admin/orphans/toggles/approved_models", None).await.0, 404);
    assert_eq!(admin(&app, "GET", "/api/admin/orphans", None).await.1["total"], json!(0));
    let (_, _, d) = app.check(&app.app_key, GPT4).await;
    assert_eq!(d["allowed"], json!(true));
});

each_backend!(orphans_are_marked_by_the_next_poll_and_deleted_while_their_rule_is_gone, |backend| {
    let app = TestApp::new(backend).await;
    let live = &app.state.live;
    live.replace_policy(policy(FIRST)).await;
    let base = format!("/api/admin/customers/{}", app.customer_id);
    assert_eq!(
        admin(&app, "PUT", &format!("{base}/policies/external_model"), Some(json!({"enabled": false}))).await.0,
        200
    );
    // A set served without marking (say, by an instance that started with
    // it): the change poll marks what it lacks.
    live.replace_policy(policy("")).await;
    assert!(live.load().unmarked_orphans);
    assert!(live.refresh_overrides(&app.store).await.unwrap());
    assert!(!live.load().unmarked_orphans);
    assert_eq!(live.load().tables.orphans.len(), 1);
    // Deleted while no rule has the name; then it is gone.
    assert_eq!(admin(&app, "DELETE", &format!("{base}/policies/external_model"), None).await.0, 204);
    assert_eq!(admin(&app, "GET", &format!("{base}/policies/external_model"), None).await.0, 404);
    assert_eq!(admin(&app, "DELETE", &format!("{base}/policies/external_model"), None).await.0, 404);
    live.replace_policy(policy(LATER)).await;
    let (_, _, d) = app.check(&app.app_key, EXT).await;
    assert_eq!(d["reason"], json!("no_external"));
    // A set that lacks nothing marks nothing and writes nothing.
    let (_, before) = admin(&app, "GET", "/api/admin/audit", None).await;
    assert!(live.mark_orphans(&app.store).await.unwrap().is_empty());
    let (_, after) = admin(&app, "GET", "/api/admin/audit", None).await;
    assert_eq!(before["total"], after["total"]);
});

each_backend!(a_reload_marks_the_settings_of_a_removed_rule_before_it_can_return, |backend| {
    // No background poll runs here: only the reload itself can mark them.
    let dir = crate::support::policy_dir_copy();
    let options = warden_server::server::Options { policy_dir: Some(dir.clone()), ..TestApp::options() };
    let app = TestApp::with_options(backend, options).await;
    let reloader = app.state.reloader.clone().unwrap();
    let models = std::fs::read_to_string(dir.join("models.warden")).unwrap();
    let unapproved = r#"{"model":"some-new-model","operation":"classify","metadata":{}}"#;
    // The approved-models rule is switched on for everyone.
    assert_eq!(
        admin(&app, "PATCH", "/api/admin/policies/approved_models", Some(json!({"enabled": true}))).await.0,
        200
    );
    assert_eq!(app.check(&app.app_key, unapproved).await.2["allowed"], json!(false));
    // The rule leaves the set, then a rule of the same name comes back.
    std::fs::remove_file(dir.join("models.warden")).unwrap();
    assert!(matches!(reloader.reload(&app.state).await, warden_server::reload::Reloaded::Swapped(_)));
    std::fs::write(dir.join("models.warden"), &models).unwrap();
    assert!(matches!(reloader.reload(&app.state).await, warden_server::reload::Reloaded::Swapped(_)));
    assert_eq!(
        app.check(&app.app_key, unapproved).await.2["allowed"],
        json!(true),
        "the toggle made for the old rule does not switch on the new one"
    );
    let (status, orphans) = admin(&app, "GET", "/api/admin/orphans", None).await;
    assert_eq!(status, 200);
    assert!(orphans.to_string().contains("approved_models"), "{orphans}");
    let _ = std::fs::remove_dir_all(dir);
});
