//! Shadow rules through the decision service: `/v1/check` answers with the
//! shadow matches and outcome, the audit row records them on the chain
//! (encoding version 3), and `/metrics` counts matches and flips. On
//! SQLite and Postgres.

use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use uuid::Uuid;
use warden_server::audit::verify::{self, Range};

use crate::support::{TestApp, policy_dir_copy};

/// The default policies plus `trial.warden` holding `rules`.
fn options_with(rules: &str) -> warden_server::server::Options {
    let dir = policy_dir_copy();
    std::fs::write(dir.join("trial.warden"), rules).unwrap();
    warden_server::server::Options { policy_dir: Some(dir), ..TestApp::options() }
}

/// A shadow deny rule on personal data and a shadow allow rule for an
/// internal model.
const PII_RULES: &str = r#"
rule strict_pii {
  description "block personal data outright (trial)"
  mode shadow
  when metadata.contains_personal_data
  deny
  reason strict_pii
}

rule internal_model {
  description "exempt the internal model (trial)"
  mode shadow
  when model == "internal"
  allow
  reason internal_model
}
"#;

/// Shadow rules that flip decisions each way: a deny on gpt-4 (allowed
/// today) and an allow on evaluation traffic.
const FLIPPING_RULES: &str = r#"
rule no_gpt4 {
  description "retire gpt-4 (trial)"
  mode shadow
  when model == "gpt-4"
  deny
  reason retired_model
}

rule exempt_eval {
  description "exempt evaluation traffic (trial)"
  mode shadow
  when operation == "eval"
  allow
  reason evaluation
}
"#;

each_backend!(shadow_rules_are_answered_audited_on_the_chain_and_counted, |backend| {
    let mut app = TestApp::with_options(backend, options_with(PII_RULES)).await;
    // Personal data on an external model: 70 + 50 blocks already; the
    // shadow deny agrees (no flip) and is reported.
    let pii = r#"{"model":"gpt-4","operation":"classify","metadata":{"contains_personal_data":true}}"#;
    let (status, _, blocked) = app.check(&app.app_key, pii).await;
    assert_eq!(status, 200, "{blocked}");
    assert_eq!(blocked["shadow"], json!([{"rule": "strict_pii", "effect": "deny", "score": 0}]), "{blocked}");
    assert_eq!(blocked["shadow_outcome"]["allowed"], json!(false));
    assert_eq!(blocked["shadow_outcome"]["reason"], json!("strict_pii"), "a deny gives the reason");
    // The internal model with personal data: blocked, but the shadow allow
    // would let it through (a flip, block to allow).
    let internal = r#"{"model":"internal","operation":"classify","metadata":{"contains_personal_data":true}}"#;
    let (_, _, flipped) = app.check(&app.app_key, internal).await;
    let enforced = (flipped["allowed"].clone(), flipped["risk_score"].clone(), flipped["reason"].clone());
    assert_eq!(flipped["shadow_outcome"]["allowed"], json!(false), "deny wins over allow in the shadow outcome too");
    assert_eq!(flipped["shadow"].as_array().unwrap().len(), 2, "{flipped}");
    // Without personal data the internal model is allowed either way.
    let (_, _, plain) = app.check(&app.app_key, r#"{"model":"internal","operation":"classify"}"#).await;
    assert_eq!(plain["allowed"], json!(true));
    assert_eq!(plain["shadow"], json!([{"rule": "internal_model", "effect": "allow", "score": 0}]));
    // A request no shadow rule touches carries neither field.
    let (_, _, none) = app.check(&app.app_key, r#"{"model":"gpt-4","operation":"classify"}"#).await;
    assert!(none.get("shadow").is_none() && none.get("shadow_outcome").is_none(), "{none}");
    // The shadow rules changed nothing enforced: the same request against
    // the default policies (no shadow rules) decides the same.
    let mut plain_app = TestApp::new(backend).await;
    let (_, _, reference) = plain_app.check(&plain_app.app_key, internal).await;
    assert_eq!(enforced, (reference["allowed"].clone(), reference["risk_score"].clone(), reference["reason"].clone()));
    plain_app.drain_audit().await;

    app.drain_audit().await;
    for answer in [&blocked, &flipped, &plain] {
        let id: Uuid = serde_json::from_value(answer["decision_id"].clone()).unwrap();
        let row = app.store.decision(id).await.unwrap().unwrap().row;
        let recorded = serde_json::to_value(row.shadow.expect("a shadow record").0).unwrap();
        assert_eq!(recorded["rules"], answer["shadow"], "as answered");
        assert_eq!(recorded["outcome"], answer["shadow_outcome"], "as answered");
    }
    let id: Uuid = serde_json::from_value(none["decision_id"].clone()).unwrap();
    assert!(app.store.decision(id).await.unwrap().unwrap().row.shadow.is_none());
    // Rows with and without shadow records on one chain verify (altering
    // one is caught: `audit_chain::a_row_whose_shadow_record_is_…`).
    let report = verify::verify(&app.store, Range::default()).await.unwrap();
    assert!(report.ok, "{report:#?}");

    let (_, _, metrics) = app.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(metrics.contains(r#"warden_shadow_matches_total{rule="strict_pii"} 2"#), "{metrics}");
    assert!(metrics.contains(r#"warden_shadow_matches_total{rule="internal_model"} 2"#), "{metrics}");
    assert!(metrics.contains(r#"warden_shadow_flips_total{direction="allow_to_block"} 0"#), "{metrics}");
    assert!(metrics.contains(r#"warden_shadow_flips_total{direction="block_to_allow"} 0"#), "{metrics}");
});

each_backend!(a_shadow_rule_that_would_flip_is_counted_each_way, |backend| {
    let mut app = TestApp::with_options(backend, options_with(FLIPPING_RULES)).await;
    let (_, _, a) = app.check(&app.app_key, r#"{"model":"gpt-4","operation":"classify"}"#).await;
    assert_eq!((a["allowed"].clone(), a["shadow_outcome"]["allowed"].clone()), (json!(true), json!(false)), "{a}");
    let blocked =
        r#"{"model":"claude","operation":"eval","metadata":{"contains_personal_data":true,"is_external_model":true}}"#;
    let (_, _, b) = app.check(&app.app_key, blocked).await;
    assert_eq!((b["allowed"].clone(), b["shadow_outcome"]["allowed"].clone()), (json!(false), json!(true)), "{b}");
    app.drain_audit().await;
    let (_, _, metrics) = app.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let metrics = metrics.as_str().unwrap();
    assert!(metrics.contains(r#"warden_shadow_flips_total{direction="allow_to_block"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"warden_shadow_flips_total{direction="block_to_allow"} 1"#), "{metrics}");
});

const PII: &str = r#"{"model":"gpt-4","operation":"classify","metadata":{"contains_personal_data":true}}"#;

async fn admin(app: &TestApp, method: &str, path: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
    crate::admin::call(app, &app.admin_key, method, path, body).await
}

each_backend!(admins_put_rules_in_shadow_globally_and_per_customer, |backend| {
    let app = TestApp::new(backend).await;
    let rule = "/api/admin/policies/contains_personal_data";
    // Enforced as written: personal data alone (70) blocks.
    assert_eq!(app.check(&app.app_key, PII).await.2["allowed"], json!(false));
    let (status, view) = admin(&app, "PATCH", rule, Some(json!({"mode": "shadow"}))).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (view["mode"].clone(), view["global_mode"].clone(), view["enabled"].clone()),
        (json!("shadow"), json!("shadow"), json!(true))
    );
    assert_eq!(view["mode_in_files"], json!("enforce"));
    let (_, _, d) = app.check(&app.app_key, PII).await;
    assert_eq!((d["allowed"].clone(), d["risk_score"].clone()), (json!(true), json!(0)), "{d}");
    assert_eq!(d["shadow"], json!([{"rule": "contains_personal_data", "effect": "score", "score": 70}]));
    assert_eq!(d["shadow_outcome"], json!({"allowed": false, "risk_score": 70, "reason": "contains_personal_data"}));
    let effective = format!("/api/admin/customers/{}/effective-policy", app.customer_id);
    let mode_of = |eff: &serde_json::Value| {
        eff["rules"].as_array().unwrap().iter().find(|r| r["key"] == "contains_personal_data").unwrap()["mode"].clone()
    };
    assert_eq!(mode_of(&admin(&app, "GET", &effective, None).await.1), json!({"value": "shadow", "source": "global"}));

    // One customer enforces it again.
    let own = format!("/api/admin/customers/{}/policies/contains_personal_data", app.customer_id);
    let (status, o) = admin(&app, "PUT", &own, Some(json!({"mode": "enforce"}))).await;
    assert_eq!((status, o["mode"].clone(), o["enabled"].clone()), (200, json!("enforce"), json!(true)), "{o}");
    let (_, _, d) = app.check(&app.app_key, PII).await;
    assert_eq!(d["allowed"], json!(false));
    assert!(d.get("shadow").is_none(), "{d}");
    assert_eq!(
        mode_of(&admin(&app, "GET", &effective, None).await.1),
        json!({"value": "enforce", "source": "override"})
    );
    assert_eq!(admin(&app, "GET", &own, None).await.1["mode"], json!("enforce"));
    // Bad bodies name `mode`.
    for bad in [json!({"mode": "audit"}), json!({"mode": 1})] {
        let (status, body) = admin(&app, "PUT", &own, Some(bad.clone())).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert!(body.to_string().contains("mode"), "{bad}: {body}");
        let (status, body) = admin(&app, "PATCH", rule, Some(bad.clone())).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert!(body.to_string().contains("mode"), "{bad}: {body}");
    }
    // Given together, `mode` wins over `enabled`.
    let (status, o) = admin(&app, "PUT", &own, Some(json!({"mode": "off", "enabled": true}))).await;
    assert_eq!((status, o["enabled"].clone(), o["mode"].clone()), (200, json!(false), json!(null)), "{o}");
    let (status, o) = admin(&app, "PUT", &own, Some(json!({"mode": "enforce", "enabled": false}))).await;
    assert_eq!((status, o["enabled"].clone(), o["mode"].clone()), (200, json!(true), json!("enforce")), "{o}");
    // An empty patch changes nothing.
    let (status, body) = admin(&app, "PATCH", rule, Some(json!({}))).await;
    assert_eq!((status, body["mode"].as_str()), (200, Some("shadow")), "{body}");
    admin(&app, "DELETE", &own, None).await;

    // `off` switches it off and keeps the mode for when it is switched on.
    let (_, view) = admin(&app, "PATCH", rule, Some(json!({"mode": "off"}))).await;
    assert_eq!((view["mode"].clone(), view["enabled"].clone()), (json!("off"), json!(false)), "{view}");
    assert!(app.check(&app.app_key, PII).await.2.get("shadow").is_none());
    let (_, view) = admin(&app, "PATCH", rule, Some(json!({"enabled": true}))).await;
    assert_eq!(view["mode"], json!("shadow"), "{view}");
    // `null` for both follows the files again.
    let (_, view) = admin(&app, "PATCH", rule, Some(json!({"enabled": null, "mode": null}))).await;
    assert_eq!((view["mode"].clone(), view["global_mode"].clone()), (json!("enforce"), json!(null)), "{view}");
    assert_eq!(app.check(&app.app_key, PII).await.2["allowed"], json!(false));

    // Every change is in the trail, with the mode before and after.
    let (_, trail) = admin(&app, "GET", "/api/admin/audit?action=policy.toggle", None).await;
    let modes: Vec<(serde_json::Value, serde_json::Value)> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["before"]["mode"]["value"].clone(), e["after"]["mode"]["value"].clone()))
        .collect();
    assert_eq!(
        modes,
        [
            (json!("shadow"), json!("enforce")),
            (json!("off"), json!("shadow")),
            (json!("shadow"), json!("off")),
            (json!("enforce"), json!("shadow")),
        ],
        "newest first"
    );
});

each_backend!(the_shadow_summary_counts_matches_and_flips_with_examples, |backend| {
    let mut app = TestApp::with_options(backend, options_with(FLIPPING_RULES)).await;
    let (status, empty) = admin(&app, "GET", "/api/admin/shadow", None).await;
    assert_eq!((status, empty["rules"].clone(), empty["days"].clone()), (200, json!([]), json!(7)), "{empty}");
    let mut would_block = Vec::new();
    for _ in 0..4 {
        would_block.push(
            app.check(&app.app_key, r#"{"model":"gpt-4","operation":"classify"}"#).await.2["decision_id"].clone(),
        );
    }
    let blocked = r#"{"model":"claude","operation":"eval","metadata":{"contains_personal_data":true}}"#;
    let would_allow = app.check(&app.app_key, blocked).await.2["decision_id"].clone();
    // Both hold, the deny wins: blocked either way.
    let both = r#"{"model":"gpt-4","operation":"eval","metadata":{"contains_personal_data":true}}"#;
    let unchanged = app.check(&app.app_key, both).await.2["decision_id"].clone();
    app.check(&app.app_key, r#"{"model":"claude","operation":"classify"}"#).await;
    app.drain_audit().await;

    let (status, s) = admin(&app, "GET", "/api/admin/shadow?days=7", None).await;
    assert_eq!(status, 200, "{s}");
    let rules = s["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "{s}");
    let (eval, gpt4) = (&rules[0], &rules[1]);
    assert_eq!(eval["rule"], json!("exempt_eval"));
    assert_eq!(
        (eval["matches"].clone(), eval["allow_to_block"].clone(), eval["block_to_allow"].clone()),
        (json!(2), json!(0), json!(1))
    );
    assert_eq!(eval["examples"]["block_to_allow"], json!([would_allow]));
    assert_eq!(eval["examples"]["unchanged"], json!([unchanged]));
    assert_eq!(gpt4["rule"], json!("no_gpt4"));
    assert_eq!(
        (gpt4["matches"].clone(), gpt4["allow_to_block"].clone(), gpt4["block_to_allow"].clone()),
        (json!(5), json!(4), json!(0))
    );
    let newest_three: Vec<serde_json::Value> = would_block.iter().rev().take(3).cloned().collect();
    assert_eq!(gpt4["examples"]["allow_to_block"], json!(newest_three), "at most 3, newest first");
    for bad in ["0", "367", "x"] {
        let (status, body) = admin(&app, "GET", &format!("/api/admin/shadow?days={bad}"), None).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }

    // The dashboard shows the same, and the decision view its shadow rules.
    let s = crate::ui_support::sign_in(&app, &app.admin_key).await;
    let page = s.get(&app, "/ui/rules").await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("Shadow results, last 7 days"), "{}", page.html);
    assert!(page.html.contains(&format!("/ui/logs/{}", would_allow.as_str().unwrap())), "{}", page.html);
    let decision = s.get(&app, &format!("/ui/logs/{}", would_allow.as_str().unwrap())).await;
    assert!(decision.html.contains("Shadow rules") && decision.html.contains("exempt_eval"), "{}", decision.html);
    assert!(decision.html.contains("would have been <strong>allowed</strong>"), "{}", decision.html);
});

each_backend!(the_dashboard_puts_rules_in_shadow_and_back, |backend| {
    let app = TestApp::new(backend).await;
    let s = crate::ui_support::sign_in(&app, &app.admin_key).await;
    // Globally, behind a confirmation that says what shadow means.
    let confirm = s.get(&app, "/ui/rules/contains_personal_data/toggle?to=shadow").await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.html.contains("Run contains_personal_data in shadow"), "{}", confirm.html);
    assert!(confirm.html.contains("no longer changes any decision"), "{}", confirm.html);
    let done = s.post(&app, "/ui/rules/contains_personal_data/toggle", &[("to", "shadow")]).await;
    assert_eq!(done.status, 303, "{}", done.html);
    let (_, view) = admin(&app, "GET", "/api/admin/policies", None).await;
    let rule = view["items"].as_array().unwrap().iter().find(|r| r["key"] == "contains_personal_data").unwrap().clone();
    assert_eq!(rule["mode"], json!("shadow"));
    let list = s.get(&app, "/ui/rules").await;
    assert!(list.html.contains(r#"<span class="badge shadow">shadow</span>"#), "{}", list.html);
    assert!(list.html.contains("toggle?to=enforce"), "{}", list.html);
    assert_eq!(app.check(&app.app_key, PII).await.2["allowed"], json!(true));
    // For one customer: enforced again, then back to shadow.
    let path = format!("/ui/customers/{}/rules/contains_personal_data", app.customer_id);
    assert_eq!(s.post(&app, &path, &[("action", "enforce")]).await.status, 303);
    assert_eq!(app.check(&app.app_key, PII).await.2["allowed"], json!(false));
    let own = format!("/api/admin/customers/{}/policies/contains_personal_data", app.customer_id);
    assert_eq!(admin(&app, "GET", &own, None).await.1["mode"], json!("enforce"));
    // Setting a score keeps the mode.
    assert_eq!(s.post(&app, &path, &[("action", "score"), ("score", "20")]).await.status, 303);
    assert_eq!(admin(&app, "GET", &own, None).await.1, json!({"enabled": true, "score": 20, "mode": "enforce"}));
    assert_eq!(s.post(&app, &path, &[("action", "shadow")]).await.status, 303);
    let (_, _, d) = app.check(&app.app_key, PII).await;
    assert_eq!((d["allowed"].clone(), d["shadow"][0]["score"].clone()), (json!(true), json!(20)), "{d}");
    let page = s.get(&app, &format!("/ui/customers/{}", app.customer_id)).await;
    assert!(page.html.contains("shadow, score 20"), "{}", page.html);
    // Back to the files.
    assert_eq!(s.post(&app, "/ui/rules/contains_personal_data/toggle", &[("to", "files")]).await.status, 303);
    assert_eq!(s.post(&app, &path, &[("action", "clear")]).await.status, 303);
    assert_eq!(app.check(&app.app_key, PII).await.2["allowed"], json!(false));
});
