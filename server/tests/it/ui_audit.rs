//! The admin trail as the dashboard reads it: filtered by action and actor,
//! in keyset pages, each entry with its actor's key name; and every
//! change's `before` is the state that change replaced, even when changes
//! race. On SQLite and Postgres.

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use warden_server::store::{AdminFilter, Cursor};

use crate::support::TestApp;

fn admin_request(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {}", app.admin_key))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap()
}

each_backend!(racing_changes_each_record_the_state_they_replaced, |backend| {
    let app = TestApp::new(backend).await;
    let path = format!("/api/admin/customers/{}/settings", app.customer_id);
    // Eight changes of one customer's threshold at once, from eight tasks.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let req = admin_request(&app, "PUT", &path, Some(json!({"threshold": 60 + i})));
            let router = app.router.clone();
            tokio::spawn(async move { tower::ServiceExt::oneshot(router, req).await.unwrap().status().as_u16() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let filter = AdminFilter { action: Some("customer.settings.set".into()), ..AdminFilter::default() };
    let mut trail = app.store.admin_audit_filtered(&filter, 1, 50).await.unwrap().items;
    trail.reverse();
    assert_eq!(trail.len(), 8);
    assert_eq!(trail[0].before.as_ref().unwrap().0["threshold"], json!({"value": 50, "source": "file"}));
    for pair in trail.windows(2) {
        let (earlier, later) = (&pair[0], &pair[1]);
        assert_eq!(
            later.before.as_ref().unwrap().0["threshold"],
            earlier.after.as_ref().unwrap().0["threshold"],
            "each change's before is the previous change's after: {trail:#?}"
        );
    }
});

each_backend!(the_trail_filters_by_action_and_actor_and_pages_by_keyset, |backend| {
    let app = TestApp::new(backend).await;
    for enabled in [false, true, false] {
        let req = admin_request(&app, "PATCH", "/api/admin/policies/external_model", Some(json!({"enabled": enabled})));
        assert_eq!(app.send(req).await.0, 200);
    }
    // The setup's keys and customers were made by the command line (no actor).
    let toggles = AdminFilter { action: Some("policy.toggle".into()), ..AdminFilter::default() };
    let page = app.store.admin_trail_page(&toggles, Cursor::Newest, 2).await.unwrap();
    assert_eq!(page.len(), 2);
    assert!(page.iter().all(|e| e.action == "policy.toggle" && e.actor_key_name.as_deref() == Some("test")));
    let rest = app.store.admin_trail_page(&toggles, Cursor::Before(page[1].id), 2).await.unwrap();
    assert_eq!(rest.len(), 1);
    let back = app.store.admin_trail_page(&toggles, Cursor::After(rest[0].id), 2).await.unwrap();
    assert_eq!(back.iter().map(|e| e.id).collect::<Vec<_>>(), page.iter().map(|e| e.id).collect::<Vec<_>>());
    let actor = page[0].actor_key_id.unwrap();
    let by_actor = AdminFilter { actor_key_id: Some(actor), ..AdminFilter::default() };
    assert_eq!(app.store.admin_audit_filtered(&by_actor, 1, 50).await.unwrap().total, 3);
    let nobody = AdminFilter { actor_key_id: Some(uuid::Uuid::new_v4()), ..AdminFilter::default() };
    assert!(app.store.admin_trail_page(&nobody, Cursor::Newest, 20).await.unwrap().is_empty());
    let actions = app.store.admin_actions().await.unwrap();
    assert!(actions.contains(&"policy.toggle".to_owned()) && actions.contains(&"key.create".to_owned()));
    // The same filters on the admin API, and a bad one named.
    let req = admin_request(&app, "GET", &format!("/api/admin/audit?action=policy.toggle&actor={actor}"), None);
    let (status, _, body) = app.send(req).await;
    assert_eq!((status, body["total"].as_i64()), (200, Some(3)), "{body}");
    assert_eq!(body["items"][0]["actor_key_name"], json!("test"));
    let (status, _, body) = app.send(admin_request(&app, "GET", "/api/admin/audit?actor=me", None)).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("actor")), "{body}");
});

each_backend!(the_audit_page_shows_changes_with_their_actor_and_values_in_force, |backend| {
    let app = TestApp::new(backend).await;
    let req = admin_request(&app, "PATCH", "/api/admin/policies/approved_models", Some(json!({"enabled": true})));
    assert_eq!(app.send(req).await.0, 200);
    let s = crate::ui_support::sign_in(&app, &app.admin_key).await;
    let page = s.get(&app, "/ui/audit?action=policy.toggle").await;
    assert_eq!(page.status, 200, "{}", page.html);
    let trail = app.store.admin_audit(1, 50).await.unwrap().items;
    let toggle = trail.iter().find(|e| e.action == "policy.toggle").unwrap();
    let actor = toggle.actor_key_id.unwrap();
    assert!(page.html.contains(&format!("test <code>{actor}</code>")), "actor name and id: {}", page.html);
    assert!(page.html.contains("<code>approved_models</code>"));
    assert!(
        page.html.contains("<dd>false (file)</dd>") && page.html.contains("<dd>true (global)</dd>"),
        "{}",
        page.html
    );
    assert!(!page.html.contains("<code>key.create</code>"), "filtered by action");
    let by_actor = s.get(&app, &format!("/ui/audit?actor={actor}")).await;
    assert!(by_actor.html.contains("<td><code>policy.toggle</code></td>"), "{}", by_actor.html);
    assert!(
        !by_actor.html.contains("<td><code>key.create</code></td>"),
        "the setup's keys were made by the command line"
    );
    let bad = s.get(&app, "/ui/audit?actor=me").await;
    assert_eq!(bad.status, 422);
    assert!(bad.html.contains("actor"), "{}", bad.html);
});
