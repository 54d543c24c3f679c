//! Policy parameters through the admin API: the fleet's values and each
//! customer's, what they change in decisions, the effective policy, the
//! admin trail, every error path, and propagation to another instance. On
//! SQLite and Postgres.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

use crate::admin::call;
use crate::support::{Instance, TestApp, policy_dir_copy};

/// The default policies plus parameters read by two rules.
const PARAM_RULES: &str = r#"
param approved_models: list<string> = ["gpt-4", "gpt-4o"]
param max_cost: number = 100
param strict: bool = false

rule unapproved_model {
  description "a model outside the customer's approved list"
  when not (model in param.approved_models)
  deny
  reason unapproved_model
}

rule expensive {
  description "a request costing more than the customer allows"
  when metadata.estimated_cost > param.max_cost or (param.strict and metadata.estimated_cost > 10)
  score +80
  reason too_expensive
}
"#;

fn options() -> warden_server::server::Options {
    let dir = policy_dir_copy();
    // The parameter rule replaces the fixed approved-models list (and its
    // test blocks, which expect any model allowed).
    std::fs::remove_file(dir.join("models.warden")).unwrap();
    std::fs::write(dir.join("params.warden"), PARAM_RULES).unwrap();
    // The default set has no `estimated_cost`; declare it.
    std::fs::write(dir.join("cost.warden"), "input { metadata.estimated_cost: number = 0 }\n").unwrap();
    warden_server::server::Options { policy_dir: Some(dir), ..TestApp::options() }
}

fn request(model: &str, cost: f64) -> String {
    json!({"model": model, "operation": "classify", "metadata": {"estimated_cost": cost}}).to_string()
}

async fn admin(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call(app, &app.admin_key, method, path, body).await
}

/// `(allowed, reason)` of a check with the app key.
async fn decide(app: &TestApp, model: &str, cost: f64) -> (bool, String) {
    let (status, _, d) = app.check(&app.app_key, &request(model, cost)).await;
    assert_eq!(status, 200, "{d}");
    (d["allowed"].as_bool().unwrap(), d["reason"].as_str().unwrap().to_owned())
}

/// The latest admin trail entry's `(action, target, before, after)`.
async fn last_change(app: &TestApp) -> (String, String, Value, Value) {
    let (_, trail) = admin(app, "GET", "/api/admin/audit?page_size=1", None).await;
    let e = &trail["items"][0];
    (
        e["action"].as_str().unwrap().to_owned(),
        e["target"].as_str().unwrap().to_owned(),
        e["before"].clone(),
        e["after"].clone(),
    )
}

fn sourced(value: Value, source: &str) -> Value {
    json!({"value": value, "source": source})
}

each_backend!(fleet_and_customer_values_decide_the_next_request_and_are_in_the_trail, |backend| {
    let app = TestApp::with_options(backend, options()).await;
    let customer = app.customer_id;
    assert_eq!(decide(&app, "claude-3", 1.0).await, (false, "unapproved_model".into()));
    assert_eq!(decide(&app, "gpt-4", 150.0).await, (false, "too_expensive".into()));

    // The list of parameters with the files' values.
    let (status, list) = admin(&app, "GET", "/api/admin/params", None).await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list["params"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["approved_models", "max_cost", "strict"]);
    assert_eq!(list["params"][0]["type"], json!("list<string>"));
    assert_eq!(list["params"][0]["value"], sourced(json!(["gpt-4", "gpt-4o"]), "file"));
    assert!(list["params"][0]["declared_at"].as_str().unwrap().starts_with("params.warden:"), "{list}");

    // The fleet raises the cost limit: the next request is decided with it.
    let (status, view) = admin(&app, "PATCH", "/api/admin/params/max_cost", Some(json!({"value": 200}))).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["value"], sourced(json!(200), "global"));
    assert_eq!(decide(&app, "gpt-4", 150.0).await, (true, "ok".into()));
    assert_eq!(
        last_change(&app).await,
        ("param.set".into(), "param/max_cost".into(), sourced(json!(100), "file"), sourced(json!(200), "global"))
    );

    // One customer approves another model and turns strict mode on.
    let base = format!("/api/admin/customers/{customer}/params");
    let (status, set) =
        admin(&app, "PUT", &format!("{base}/approved_models"), Some(json!({"value": ["claude-3"]}))).await;
    assert_eq!(status, 200, "{set}");
    assert_eq!((set["value"].clone(), set["applies"].clone()), (json!(["claude-3"]), json!(true)));
    assert_eq!(decide(&app, "claude-3", 1.0).await, (true, "ok".into()));
    assert_eq!(decide(&app, "gpt-4", 1.0).await, (false, "unapproved_model".into()));
    let (action, target, before, after) = last_change(&app).await;
    assert_eq!((action.as_str(), target), ("customer.param.set", format!("customer/{customer}/param/approved_models")));
    assert_eq!(
        (before, after),
        (sourced(json!(["gpt-4", "gpt-4o"]), "file"), sourced(json!(["claude-3"]), "override"))
    );
    assert_eq!(admin(&app, "PUT", &format!("{base}/strict"), Some(json!({"value": true}))).await.0, 200);
    assert_eq!(decide(&app, "claude-3", 50.0).await, (false, "too_expensive".into()));

    // The effective policy shows each value with its source.
    let (_, effective) = admin(&app, "GET", &format!("/api/admin/customers/{customer}/effective-policy"), None).await;
    let values: Vec<(String, Value)> = effective["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p["value"].clone()))
        .collect();
    assert_eq!(
        values,
        [
            ("approved_models".to_owned(), sourced(json!(["claude-3"]), "override")),
            ("max_cost".to_owned(), sourced(json!(200), "global")),
            ("strict".to_owned(), sourced(json!(true), "override")),
        ]
    );
    assert_eq!(effective["params_not_applied"], json!([]));

    // Deleting the customer's value: the fleet's (here the file's) applies.
    let (status, _) = admin(&app, "DELETE", &format!("{base}/approved_models"), None).await;
    assert_eq!(status, 204);
    assert_eq!(decide(&app, "claude-3", 1.0).await, (false, "unapproved_model".into()));
    let (action, _, before, after) = last_change(&app).await;
    assert_eq!(action, "customer.param.delete");
    assert_eq!(before["stored"], json!(["claude-3"]));
    assert_eq!(after, sourced(json!(["gpt-4", "gpt-4o"]), "file"));
    assert_eq!(admin(&app, "GET", &format!("{base}/approved_models"), None).await.0, 404);

    // `null` returns the fleet's value to the file's.
    let (status, view) = admin(&app, "PATCH", "/api/admin/params/max_cost", Some(json!({"value": null}))).await;
    assert_eq!((status, view["value"].clone()), (200, sourced(json!(100), "file")));
    assert_eq!(last_change(&app).await.0, "param.reset");
    assert_eq!(decide(&app, "gpt-4", 150.0).await, (false, "too_expensive".into()));
});

each_backend!(unknown_parameters_are_404_and_values_of_another_type_422_naming_the_type, |backend| {
    let app = TestApp::with_options(backend, options()).await;
    let customer = app.customer_id;
    let base = format!("/api/admin/customers/{customer}/params");
    for (method, path) in [
        ("PATCH", "/api/admin/params/max_costs".to_owned()),
        ("PUT", format!("{base}/max_costs")),
        ("GET", format!("{base}/max_costs")),
        ("DELETE", format!("{base}/max_costs")),
        ("GET", format!("/api/admin/customers/{}/params/max_cost", uuid::Uuid::new_v4())),
    ] {
        let (status, body) = admin(&app, method, &path, Some(json!({"value": 1}))).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(body["error"], json!("not_found"), "{body}");
    }
    for (path, value, says) in [
        ("/api/admin/params/max_cost", json!("200"), "parameter `max_cost` is a `number`; the value given is a string"),
        ("/api/admin/params/strict", json!(1), "parameter `strict` is a `bool`; the value given is a number"),
        (
            "/api/admin/params/approved_models",
            json!(["gpt-4", 4]),
            "parameter `approved_models` is a `list<string>`; the value given is an array holding something other than strings",
        ),
        (
            "/api/admin/params/approved_models",
            json!({"a": 1}),
            "parameter `approved_models` is a `list<string>`; the value given is an object",
        ),
    ] {
        for (method, at) in
            [("PATCH", path.to_owned()), ("PUT", format!("{base}/{}", path.rsplit('/').next().unwrap()))]
        {
            let (status, body) = admin(&app, method, &at, Some(json!({"value": value}))).await;
            assert_eq!(status, 422, "{method} {at} {value}: {body}");
            assert_eq!((body["field"].as_str(), body["message"].as_str()), (Some("value"), Some(says)), "{body}");
        }
    }
    // A customer's value can't be null; a body needs `value` and nothing else.
    let (status, body) = admin(&app, "PUT", &format!("{base}/strict"), Some(json!({"value": null}))).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("value")), "{body}");
    for body in [json!({}), json!({"value": 1, "extra": 2})] {
        let (status, answer) = admin(&app, "PATCH", "/api/admin/params/max_cost", Some(body.clone())).await;
        assert_eq!(status, 422, "{body}: {answer}");
    }
    let (status, body) =
        admin(&app, "PUT", &format!("{base}/approved_models"), Some(json!({"value": ["a\u{0}b"]}))).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("value[0]")), "{body}");
    // Nothing was stored by any of these.
    let (_, list) = admin(&app, "GET", "/api/admin/params", None).await;
    assert!(list["params"].as_array().unwrap().iter().all(|p| p["value"]["source"] == json!("file")), "{list}");
    assert_eq!(app.store.customer_param(customer, "strict").await.unwrap(), None);

    // Values stored for a parameter the set no longer declares, or of a
    // type it no longer has (as after a file change), are listed as not
    // applying and can be read and cleared.
    let policy = app.state.live.load().policy.clone();
    app.store.set_global_param(&policy, "retired", Some(&json!(5)), None).await.unwrap();
    app.store.set_customer_param(&policy, customer, "max_cost", &json!("cheap"), None).await.unwrap();
    app.state.live.reload_overrides(&app.store).await.unwrap();
    let (_, list) = admin(&app, "GET", "/api/admin/params", None).await;
    assert_eq!(list["not_applied"][0]["name"], json!("retired"), "{list}");
    assert_eq!(list["not_applied"][0]["reason"], json!("not_declared"), "{list}");
    let (_, effective) = admin(&app, "GET", &format!("/api/admin/customers/{customer}/effective-policy"), None).await;
    let not_applied: Vec<(&str, &str, &str)> = effective["params_not_applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["scope"].as_str().unwrap(), p["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        not_applied,
        [("max_cost", "customer", "wrong_type"), ("retired", "global", "not_declared")],
        "{effective}"
    );
    assert_eq!(effective["params"][1]["value"], sourced(json!(100), "file"), "the file's value applies");
    let (status, stored) = admin(&app, "GET", &format!("{base}/max_cost"), None).await;
    assert_eq!((status, stored["applies"].clone()), (200, json!(false)), "{stored}");
    assert_eq!(stored["not_applied"]["reason"], json!("wrong_type"), "{stored}");
    // Clearing a value that applied to nothing records the value removed.
    assert_eq!(admin(&app, "DELETE", &format!("{base}/max_cost"), None).await.0, 204);
    let (action, _, before, after) = last_change(&app).await;
    assert_eq!(action, "customer.param.delete");
    assert_eq!((before["stored"].clone(), after), (json!("cheap"), sourced(json!(100), "file")), "{before}");
    assert_eq!(decide(&app, "gpt-4", 150.0).await, (false, "too_expensive".into()));
    assert_eq!(admin(&app, "PATCH", "/api/admin/params/retired", Some(json!({"value": null}))).await.0, 204);
    let (action, _, before, after) = last_change(&app).await;
    assert_eq!((action.as_str(), before, after), ("param.reset", json!({"stored": 5}), Value::Null));
    // Nothing left to clear: 404 whatever the body, and nothing recorded.
    let trail = last_change(&app).await;
    assert_eq!(admin(&app, "PATCH", "/api/admin/params/retired", Some(json!({"value": null}))).await.0, 404);
    assert_eq!(admin(&app, "PATCH", "/api/admin/params/retired", Some(json!({"value": []}))).await.0, 404);
    assert_eq!(last_change(&app).await, trail);
    let (_, list) = admin(&app, "GET", "/api/admin/params", None).await;
    assert_eq!(list["not_applied"], json!([]), "{list}");
});

each_backend!(another_instance_decides_with_a_new_value_within_a_second, |backend| {
    let (url, _cleanup) = crate::support::fresh_url(backend).await;
    let a = Instance::start_with(&url, &options()).await;
    let b = Instance::start_with(&url, &options()).await;
    let store = &a.state.store;
    let (key, _, customer) =
        crate::support::create_key(store, "app@example.com", warden_server::store::Role::App).await;
    let (admin_key, _, _) =
        crate::support::create_key(store, "admin@example.com", warden_server::store::Role::Admin).await;
    let check = || {
        Request::post("/v1/check")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::from(request("claude-3", 1.0)))
            .unwrap()
    };
    assert_eq!(b.send(check()).await.1["allowed"], json!(false));
    let put = Request::put(format!("/api/admin/customers/{customer}/params/approved_models"))
        .header("authorization", format!("Bearer {admin_key}"))
        .body(Body::from(json!({"value": ["claude-3"]}).to_string()))
        .unwrap();
    assert_eq!(a.send(put).await.0, 200);
    let start = Instant::now();
    while b.send(check()).await.1["allowed"] != json!(true) {
        assert!(start.elapsed() < Duration::from_secs(3), "B still decides with the file's value");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "{backend:?}: B used the new value after {took:?}");
});

each_backend!(replay_and_the_shadow_set_decide_with_the_customers_values, |backend| {
    let mut options = options();
    // The shadow set: the same files.
    options.shadow_policy_dir = options.policy_dir.clone();
    let mut app = TestApp::with_options(backend, options).await;
    let customer = app.customer_id;
    let path = format!("/api/admin/customers/{customer}/params/approved_models");
    assert_eq!(admin(&app, "PUT", &path, Some(json!({"value": ["claude-3"]}))).await.0, 200);
    let (_, _, d) = app.check(&app.app_key, &request("claude-3", 1.0)).await;
    assert_eq!(d["allowed"], json!(true), "{d}");
    assert!(d.get("shadow_outcome").is_none_or(Value::is_null), "{d}");
    app.drain_audit().await;
    let (_, row) = admin(&app, "GET", "/api/admin/logs?page_size=1", None).await;
    assert!(row["items"][0]["shadow"].is_null(), "the shadow set agrees: {row}");
    // Replaying the same files with the customer's value: nothing changes.
    let files = json!({"files": [{"name": "params.warden", "text": PARAM_RULES}]});
    let (status, report) = admin(&app, "POST", "/api/admin/replay", Some(files)).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!((report["rows"].clone(), report["unchanged"].clone()), (json!(1), json!(1)), "{report}");
});

each_backend!(the_customer_page_shows_each_parameter_with_its_value_and_source, |backend| {
    let app = TestApp::with_options(backend, options()).await;
    let customer = app.customer_id;
    let path = format!("/api/admin/customers/{customer}/params/approved_models");
    assert_eq!(admin(&app, "PUT", &path, Some(json!({"value": ["claude-3", "<b>"]}))).await.0, 200);
    let session = crate::ui_support::sign_in(&app, &app.admin_key).await;
    let page = session.get(&app, &format!("/ui/customers/{customer}")).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let table = &page.html[page.html.find("id=\"params\"").expect("a parameters table")..];
    let row = |name: &str| {
        let at = table.find(&format!("<code>param.{name}</code>")).unwrap_or_else(|| panic!("no row for {name}"));
        table[at..].split("</tr>").next().unwrap().to_owned()
    };
    let approved = row("approved_models");
    // The value is escaped as text, never markup.
    assert!(approved.contains("<code>[&#34;claude-3&#34;,&#34;&#60;b&#62;&#34;]</code>"), "{approved}");
    assert!(!approved.contains("<b>"), "{approved}");
    assert!(approved.contains("<span class=\"badge\">override</span>"), "{approved}");
    let max_cost = row("max_cost");
    assert!(
        max_cost.contains("<code>100</code>") && max_cost.contains("<span class=\"badge\">file</span>"),
        "{max_cost}"
    );
});
