//! The admin trail records, for every change to a toggle, an override or a
//! customer's settings, the values in force before and after it and where
//! each came from (`file`, `global`, `override`, `default`), never a bare
//! stored `null` for a value that was inherited. On SQLite and Postgres.

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

use crate::support::TestApp;

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

/// Makes a change and returns its trail entry's `(before, after)`.
async fn change(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (Value, Value) {
    let (status, answer) = admin(app, method, path, body).await;
    assert!(status == 200 || status == 204, "{method} {path}: {status} {answer}");
    let (_, trail) = admin(app, "GET", "/api/admin/audit?page_size=1", None).await;
    let entry = &trail["items"][0];
    (entry["before"].clone(), entry["after"].clone())
}

fn sourced(value: Value, source: &str) -> Value {
    json!({"value": value, "source": source})
}

each_backend!(the_trail_records_values_in_force_and_their_sources, |backend| {
    let app = TestApp::new(backend).await;
    let base = format!("/api/admin/customers/{}", app.customer_id);
    // A rule that inherits its file setting: before is what the file says.
    let (before, after) =
        change(&app, "PATCH", "/api/admin/policies/approved_models", Some(json!({"enabled": true}))).await;
    assert_eq!(before, json!({"enabled": sourced(json!(false), "file"), "mode": sourced(json!("off"), "file")}));
    assert_eq!(after, json!({"enabled": sourced(json!(true), "global"), "mode": sourced(json!("enforce"), "global")}));
    // Back to the files.
    let (before, after) =
        change(&app, "PATCH", "/api/admin/policies/approved_models", Some(json!({"enabled": null}))).await;
    assert_eq!(before, json!({"enabled": sourced(json!(true), "global"), "mode": sourced(json!("enforce"), "global")}));
    assert_eq!(after, json!({"enabled": sourced(json!(false), "file"), "mode": sourced(json!("off"), "file")}));
    // A customer's override over a global toggle, for a score rule.
    change(&app, "PATCH", "/api/admin/policies/external_model", Some(json!({"enabled": false}))).await;
    let (before, after) =
        change(&app, "PUT", &format!("{base}/policies/external_model"), Some(json!({"score": 10}))).await;
    let off = sourced(json!("off"), "global");
    assert_eq!(
        before,
        json!({"enabled": sourced(json!(false), "global"), "mode": off, "score": sourced(json!(50), "file")})
    );
    assert_eq!(
        after,
        json!({"enabled": sourced(json!(false), "global"), "mode": off, "score": sourced(json!(10), "override")})
    );
    let (before, after) = change(&app, "DELETE", &format!("{base}/policies/external_model"), None).await;
    assert_eq!(before["score"], sourced(json!(10), "override"));
    assert_eq!(after["score"], sourced(json!(50), "file"));
    // Settings: the threshold from the files, the rate limit by default.
    let (before, after) = change(
        &app,
        "PUT",
        &format!("{base}/settings"),
        Some(json!({"threshold": 80, "rate_limit": {"requests": 7, "window_seconds": 30}})),
    )
    .await;
    assert_eq!(before["threshold"], sourced(json!(50), "file"));
    assert_eq!(before["rate_limit"], sourced(json!({"requests": 100, "window_seconds": 60}), "default"));
    assert_eq!(after["threshold"], sourced(json!(80), "override"));
    assert_eq!(after["rate_limit"], sourced(json!({"requests": 7, "window_seconds": 30}), "override"));
});

/// The shipped input block and a rule set of two rules, for the orphan case.
fn policy(approved: &str) -> std::sync::Arc<warden_engine::Policy> {
    let dir = crate::support::policy_dir_copy();
    std::fs::write(
        dir.join("models.warden"),
        format!(
            "rule approved_models {{\n  description \"d\"\n  enabled false\n  when not (model in [{approved}])\n  deny\n  reason unapproved_model\n}}\n"
        ),
    )
    .unwrap();
    let p = crate::support::policy_from(&dir);
    let _ = std::fs::remove_dir_all(dir);
    std::sync::Arc::new(p)
}

each_backend!(values_in_force_leave_out_settings_made_for_another_rule, |backend| {
    let app = TestApp::new(backend).await;
    let base = format!("/api/admin/customers/{}", app.customer_id);
    app.state.live.replace_policy(policy(r#""gpt-4""#)).await;
    change(&app, "PATCH", "/api/admin/policies/approved_models", Some(json!({"enabled": true}))).await;
    change(&app, "PUT", &format!("{base}/policies/approved_models"), Some(json!({"enabled": false}))).await;
    // Another rule of the same name: the toggle and the override were made
    // for the old one, so neither is in force for the new one.
    app.state.live.replace_policy(policy(r#""gpt-4", "gpt-4o""#)).await;
    let (before, after) =
        change(&app, "PATCH", "/api/admin/policies/approved_models", Some(json!({"enabled": true}))).await;
    assert_eq!(before, json!({"enabled": sourced(json!(false), "file"), "mode": sourced(json!("off"), "file")}));
    assert_eq!(after["enabled"], sourced(json!(true), "global"));
    assert_eq!(after["reconfirmed_orphan"], json!({"enabled": true, "mode": null, "reason": "rule_changed"}));
    // The customer's override is still orphaned: the toggle, now re-confirmed, is what is in force.
    let (before, after) = change(&app, "DELETE", &format!("{base}/policies/approved_models"), None).await;
    assert_eq!(before["enabled"], sourced(json!(true), "global"));
    assert_eq!(before["orphan"], json!({"enabled": false, "score": null, "mode": null, "reason": "rule_changed"}));
    assert_eq!(after, json!({"enabled": sourced(json!(true), "global"), "mode": sourced(json!("enforce"), "global")}));
});
