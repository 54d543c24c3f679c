//! The rules pages and what they read: the global toggle through its
//! confirmation, a rule's source, blocks per day and the customers that
//! override it, on SQLite and Postgres.

use chrono::Duration;
use serde_json::{Value, json};
use warden_engine::RuleOverride;
use warden_server::store::{Outcome, now};

use crate::support::{TestApp, audit_record, default_policy, fresh_store};
use crate::ui_customers::admin;
use crate::ui_support::sign_in;

const PII: &str = r#"{"model":"gpt-4","operation":"classify","metadata":{"contains_personal_data":true}}"#;

each_backend!(a_rules_blocks_are_counted_per_day_by_its_reason, |backend| {
    let (store, _cleanup) = fresh_store(backend).await;
    let today = now();
    let mut rows = vec![
        audit_record(today),
        audit_record(today),
        audit_record(today - Duration::days(2)),
        audit_record(today - Duration::days(40)),
    ];
    let mut other = audit_record(today);
    other.reason = "external_model".into();
    let mut allowed = audit_record(today);
    (allowed.outcome, allowed.allowed) = (Outcome::Allowed, true);
    rows.extend([other, allowed]);
    store.insert_audit(&rows).await.unwrap();
    let day = |t: chrono::DateTime<chrono::Utc>| t.date_naive();
    let days =
        store.blocks_per_day("contains_personal_data", day(today - Duration::days(29)), day(today)).await.unwrap();
    let expected = [(day(today), 2), (day(today - Duration::days(2)), 1)].into_iter().collect();
    assert_eq!(days, expected);
    let recent = store.blocks_per_reason(day(today - Duration::days(6))).await.unwrap();
    let expected = [("contains_personal_data".to_owned(), 3), ("external_model".to_owned(), 1)].into_iter().collect();
    assert_eq!(recent, expected);
});

each_backend!(the_customers_overriding_a_rule_are_listed_by_name, |backend| {
    let (store, _cleanup) = fresh_store(backend).await;
    let policy = default_policy();
    let zed = store.create_customer("Zed", "zed@example.com", None).await.unwrap();
    let amy = store.create_customer("Amy", "amy@example.com", None).await.unwrap();
    let bob = store.create_customer("Bob", "bob@example.com", None).await.unwrap();
    let off = RuleOverride { enabled: Some(false), score: None, mode: None };
    let scored = RuleOverride { enabled: None, score: Some(5), mode: None };
    store.set_customer_rule(&policy, zed.id, "external_model", off, None).await.unwrap();
    store.set_customer_rule(&policy, amy.id, "external_model", scored, None).await.unwrap();
    store.set_customer_rule(&policy, bob.id, "contains_personal_data", off, None).await.unwrap();
    let (items, total) = store.overrides_of_rule("external_model", 10).await.unwrap();
    let got: Vec<_> = items.iter().map(|(c, o)| (c.email.as_str(), o.rule)).collect();
    assert_eq!(got, [("amy@example.com", scored), ("zed@example.com", off)]);
    assert_eq!(total, 2);
    let (items, total) = store.overrides_of_rule("external_model", 1).await.unwrap();
    assert_eq!((items.len(), total), (1, 2));
});

/// The newest `policy.toggle` row of the admin trail.
async fn last_toggle(app: &TestApp) -> Value {
    let (_, trail) = admin(app, "GET", "/api/admin/audit?page_size=50", None).await;
    trail["items"].as_array().unwrap().iter().find(|r| r["action"] == "policy.toggle").cloned().unwrap()
}

each_backend!(switching_a_rule_off_in_the_dashboard_changes_the_next_decision_like_the_api, |backend| {
    let app = TestApp::new(backend).await;
    let session = sign_in(&app, &app.admin_key).await;
    assert_eq!(app.check(&app.app_key, PII).await.2["allowed"], json!(false));
    let list = session.get(&app, "/ui/rules").await;
    assert_eq!(list.status, 200);
    let link = "/ui/rules/contains_personal_data/toggle?to=off";
    assert!(list.html.contains(link) && list.html.contains("risk.warden:3"), "{}", list.html);
    // The confirmation says what switching off means, with Confirm and Cancel.
    let confirm = session.get(&app, link).await;
    assert_eq!(confirm.status, 200, "{}", confirm.html);
    for text in
        ["requests it would have blocked are allowed", "Its score (70)", "Confirm", ">Cancel</a>", "href=\"/ui/rules\""]
    {
        assert!(confirm.html.contains(text), "{text} in {}", confirm.html);
    }
    assert_eq!(
        app.check(&app.app_key, PII).await.2["allowed"],
        json!(false),
        "showing the confirmation changes nothing"
    );
    let done = session.post(&app, "/ui/rules/contains_personal_data/toggle", &[("to", "off")]).await;
    assert_eq!((done.status, done.location()), (303, "/ui/rules"), "{}", done.html);
    assert_eq!(app.check(&app.app_key, PII).await.2["allowed"], json!(true));
    let from_dashboard = last_toggle(&app).await;
    assert_eq!(from_dashboard["target"], json!("contains_personal_data"));
    assert_eq!(from_dashboard["after"]["enabled"], json!({"value": false, "source": "global"}));
    // The same change through the API writes the same row, by the same key.
    let (status, _) =
        admin(&app, "PATCH", "/api/admin/policies/contains_personal_data", Some(json!({"enabled": true}))).await;
    assert_eq!(status, 200);
    let from_api = last_toggle(&app).await;
    assert_eq!(from_api["actor_key_id"], from_dashboard["actor_key_id"]);
    assert!(from_api["actor_key_id"].is_string());
    assert_eq!(from_api["before"]["enabled"], from_dashboard["after"]["enabled"]);
    // Following the files again.
    let page = session.get(&app, "/ui/rules").await;
    assert!(page.html.contains("/ui/rules/contains_personal_data/toggle?to=files"), "{}", page.html);
    let done = session.post(&app, "/ui/rules/contains_personal_data/toggle", &[("to", "files")]).await;
    assert_eq!(done.status, 303);
    let (_, rules) = admin(&app, "GET", "/api/admin/policies", None).await;
    assert_eq!(rules["items"][1]["global_toggle"], json!(null));
});

each_backend!(a_rules_page_shows_its_source_blocks_per_day_and_the_customers_overriding_it, |backend| {
    let mut app = TestApp::new(backend).await;
    let session = sign_in(&app, &app.admin_key).await;
    app.check(&app.app_key, PII).await;
    let path = format!("/api/admin/customers/{}/policies/contains_personal_data", app.customer_id);
    assert_eq!(admin(&app, "PUT", &path, Some(json!({"score": 10}))).await.0, 200);
    app.drain_audit().await;
    let page = session.get(&app, "/ui/rules/contains_personal_data").await;
    assert_eq!(page.status, 200, "{}", page.html);
    // The rule's lines are highlighted; the others are not.
    assert!(
        page.html.contains(
            "<span class=\"line hl\"><span class=\"muted\">   3  </span>rule contains_personal_data {</span>"
        ),
        "{}",
        page.html
    );
    assert!(page.html.contains("<span class=\"line\"><span class=\"muted\">  10  </span>rule external_model {</span>"));
    // Blocks per day: a chart with its data table; today has the one block.
    let today = now().format("%Y-%m-%d").to_string();
    assert!(page.html.contains("<figure class=\"chart\">"));
    assert!(page.html.contains(&format!("<th scope=\"row\">{today}</th><td class=\"num\">1</td>")), "{}", page.html);
    assert_eq!(page.html.matches("<th scope=\"row\">").count(), 30);
    // The customer overriding it, linked.
    assert!(page.html.contains(&format!("/ui/customers/{}#rules", app.customer_id)), "{}", page.html);
});

each_backend!(an_unknown_rule_is_the_404_page_in_the_layout, |backend| {
    let app = TestApp::new(backend).await;
    let session = sign_in(&app, &app.admin_key).await;
    for path in ["/ui/rules/nope", "/ui/rules/nope/toggle"] {
        let page = session.get(&app, path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(page.html.contains("no rule `nope`") && page.html.contains("Sign out"), "{}", page.html);
    }
    let page = session.post(&app, "/ui/rules/nope/toggle", &[("to", "off")]).await;
    assert_eq!(page.status, 404);
    let page = session.post(&app, "/ui/rules/external_model/toggle", &[("to", "sideways")]).await;
    assert_eq!(page.status, 422);
});
