//! The customers pages and their API: search by name or email, settings,
//! per-rule overrides and the effective policy with each value's source,
//! on SQLite and Postgres.

use crate::support::TestApp;
use crate::ui_support::{Page, Session, sign_in};
use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

/// An admin API call with the test's admin key.
pub async fn admin(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {}", app.admin_key))
        .header("content-type", "application/json");
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let (status, _, json) = app.send(req.body(body).unwrap()).await;
    (status, json)
}

/// The emails of the customers `GET /api/admin/customers?q=<q>` lists.
async fn found(app: &TestApp, q: &str) -> Vec<String> {
    let path = format!("/api/admin/customers?q={}", urlencoding(q));
    let (status, page) = admin(app, "GET", &path, None).await;
    assert_eq!(status, 200, "{page}");
    let emails: Vec<String> =
        page["items"].as_array().unwrap().iter().map(|c| c["email"].as_str().unwrap().to_owned()).collect();
    assert_eq!(page["total"], json!(emails.len()), "{q}");
    emails
}

fn urlencoding(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

each_backend!(customer_search_matches_name_or_email_without_case, |backend| {
    let app = TestApp::new(backend).await;
    for (name, email) in
        [("Acme Ops", "Ops@Acme.example"), ("Beta_Corp", "beta@example.org"), ("100% Co", "pct@example.net")]
    {
        let (status, body) =
            admin(&app, "POST", "/api/admin/customers", Some(json!({"name": name, "email": email}))).await;
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(found(&app, "OPS@ACME").await, ["ops@acme.example"]);
    assert_eq!(found(&app, "acme ops").await, ["ops@acme.example"]);
    assert_eq!(found(&app, "  bETA ").await, ["beta@example.org"]);
    // LIKE's wildcards match themselves.
    assert_eq!(found(&app, "_").await, ["beta@example.org"]);
    assert_eq!(found(&app, "%").await, ["pct@example.net"]);
    assert!(found(&app, "nobody").await.is_empty());
    // An empty search lists everyone (the two test keys' customers too).
    assert_eq!(found(&app, "").await.len(), 5);
    let (status, body) = admin(&app, "GET", &format!("/api/admin/customers?q={}", "x".repeat(255)), None).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("q")), "{body}");
});

/// Creates a customer through the dashboard; returns its page's path.
async fn create(app: &TestApp, session: &Session, name: &str, email: &str) -> String {
    let page = session.post(app, "/ui/customers", &[("name", name), ("email", email)]).await;
    assert_eq!(page.status, 303, "{}", page.html);
    assert!(page.location().starts_with("/ui/customers/"), "{}", page.location());
    page.location().to_owned()
}

/// The text of the table row (`<tr>…</tr>`) of `page` that mentions `needle`.
fn row<'a>(page: &'a Page, needle: &str) -> &'a str {
    let at = page.html.find(needle).unwrap_or_else(|| panic!("no `{needle}` in {}", page.html));
    let start = page.html[..at].rfind("<tr>").unwrap();
    let end = at + page.html[at..].find("</tr>").unwrap();
    &page.html[start..end]
}

each_backend!(the_dashboard_finds_customers_by_email_without_case_and_creates_them, |backend| {
    let app = TestApp::new(backend).await;
    let session = sign_in(&app, &app.admin_key).await;
    create(&app, &session, "Acme Ops", "ops@acme.example").await;
    create(&app, &session, "Beta", "beta@example.org").await;
    let page = session.get(&app, "/ui/customers?q=OPS%40ACME").await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("ops@acme.example") && !page.html.contains("beta@example.org"), "{}", page.html);
    assert!(page.html.contains("value=\"OPS@ACME\""), "the search stays in its field");
    let page = session.get(&app, "/ui/customers?q=nobody").await;
    assert!(page.html.contains("class=\"empty\""), "{}", page.html);
    // A taken email or a bad one shows the form again with why.
    let page = session.post(&app, "/ui/customers", &[("name", "Again"), ("email", "OPS@acme.example")]).await;
    assert_eq!(page.status, 409, "{}", page.html);
    assert!(page.html.contains("already exists") && page.html.contains("value=\"Again\""), "{}", page.html);
    let page = session.post(&app, "/ui/customers", &[("name", "X"), ("email", "not an email")]).await;
    assert_eq!(page.status, 422);
    assert!(page.html.contains("`email` must be an address"), "{}", page.html);
});

each_backend!(an_override_and_a_threshold_show_in_the_effective_policy_with_their_sources, |backend| {
    let app = TestApp::new(backend).await;
    let session = sign_in(&app, &app.admin_key).await;
    let path = format!("/ui/customers/{}", app.customer_id);
    let page = session.get(&app, &path).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(row(&page, "Threshold</dt>").contains("50 <span class=\"badge\">file</span>"), "{}", page.html);
    assert!(page.html.contains(&format!("/ui/keys?customer_id={}", app.customer_id)));
    // Set a threshold and switch a rule off for this customer.
    let settings = format!("{path}/settings");
    let done = session
        .post(&app, &settings, &[("threshold", "30"), ("rate_limit_requests", ""), ("rate_limit_window_seconds", "")])
        .await;
    assert_eq!((done.status, done.location()), (303, format!("{path}#settings").as_str()), "{}", done.html);
    let rule = format!("{path}/rules/external_model");
    let done = session.post(&app, &rule, &[("action", "disable")]).await;
    assert_eq!(done.status, 303, "{}", done.html);
    let done = session
        .post(&app, &format!("{path}/rules/contains_personal_data"), &[("action", "score"), ("score", "20")])
        .await;
    assert_eq!(done.status, 303, "{}", done.html);
    let page = session.get(&app, &path).await;
    assert!(page.html.contains("30 <span class=\"badge\">override</span>"), "{}", page.html);
    let external = row(&page, ">external_model</a>");
    assert!(external.contains("badge off") && external.contains("<span class=\"badge\">override</span>"), "{external}");
    let pii = row(&page, ">contains_personal_data</a>");
    assert!(pii.contains("20 <span class=\"badge\">override</span>"), "{pii}");
    assert!(pii.contains("<span class=\"badge\">file</span>"), "enabled still comes from the files: {pii}");
    // The API reads the same values and sources.
    let (_, effective) =
        admin(&app, "GET", &format!("/api/admin/customers/{}/effective-policy", app.customer_id), None).await;
    assert_eq!(effective["threshold"], json!({"value": 30, "source": "override"}));
    let rules = effective["rules"].as_array().unwrap();
    let ext = rules.iter().find(|r| r["key"] == "external_model").unwrap();
    assert_eq!(ext["enabled"], json!({"value": false, "source": "override"}));
    // Enabling keeps the score; clearing removes the whole override.
    let pii_path = format!("{path}/rules/contains_personal_data");
    assert_eq!(session.post(&app, &pii_path, &[("action", "disable")]).await.status, 303);
    let (_, o) =
        admin(&app, "GET", &format!("/api/admin/customers/{}/policies/contains_personal_data", app.customer_id), None)
            .await;
    assert_eq!(o, json!({"enabled": false, "score": 20, "mode": null}));
    assert_eq!(session.post(&app, &pii_path, &[("action", "clear")]).await.status, 303);
    let (status, _) =
        admin(&app, "GET", &format!("/api/admin/customers/{}/policies/contains_personal_data", app.customer_id), None)
            .await;
    assert_eq!(status, 404);
    // The changes are in the admin trail as the API records them, by the signed-in key.
    let (_, trail) = admin(&app, "GET", "/api/admin/audit?page_size=50", None).await;
    let actions: Vec<&str> = trail["items"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    for action in ["customer.settings.set", "customer.policy.set", "customer.policy.delete"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
});

each_backend!(bad_input_on_a_customer_page_is_422_naming_the_field, |backend| {
    let app = TestApp::new(backend).await;
    let session = sign_in(&app, &app.admin_key).await;
    let path = format!("/ui/customers/{}", app.customer_id);
    let rule = format!("{path}/rules/contains_personal_data");
    let page = session.post(&app, &rule, &[("action", "score"), ("score", "2000000000")]).await;
    assert_eq!(page.status, 422);
    assert!(page.html.contains("`score` must be an integer from -1000000000 to 1000000000"), "{}", page.html);
    assert!(page.html.contains("Sign out"), "the page is in the layout");
    let page = session.post(&app, &rule, &[("action", "score"), ("score", "lots")]).await;
    assert_eq!(page.status, 422);
    assert!(page.html.contains("`score` must be a whole number"), "{}", page.html);
    // A score for a deny rule conflicts with the rule.
    let page =
        session.post(&app, &format!("{path}/rules/approved_models"), &[("action", "score"), ("score", "5")]).await;
    assert_eq!(page.status, 409);
    assert!(page.html.contains("only score rules take a `score`"), "{}", page.html);
    let settings = format!("{path}/settings");
    let page = session.post(&app, &settings, &[("threshold", "-2000000000")]).await;
    assert_eq!(page.status, 422);
    assert!(page.html.contains("`threshold` must be an integer"), "{}", page.html);
    assert!(page.html.contains("value=\"-2000000000\""), "the form keeps what was typed");
    let page = session.post(&app, &settings, &[("rate_limit_requests", "10")]).await;
    assert_eq!(page.status, 422);
    assert!(page.html.contains("rate limit"), "{}", page.html);
    let page =
        session.post(&app, &settings, &[("rate_limit_requests", "10"), ("rate_limit_window_seconds", "0")]).await;
    assert_eq!(page.status, 422);
    assert!(page.html.contains("`rate_limit.window_seconds` must be an integer from 1 to 86400"), "{}", page.html);
    // Nothing was changed.
    let (_, effective) =
        admin(&app, "GET", &format!("/api/admin/customers/{}/effective-policy", app.customer_id), None).await;
    assert_eq!(effective["threshold"]["source"], json!("file"));
});

each_backend!(an_unknown_customer_is_the_404_page_in_the_layout, |backend| {
    let app = TestApp::new(backend).await;
    let session = sign_in(&app, &app.admin_key).await;
    for path in [format!("/ui/customers/{}", uuid::Uuid::now_v7()), "/ui/customers/not-an-id".to_owned()] {
        let page = session.get(&app, &path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(page.html.contains("Sign out") && page.html.contains("no customer"), "{}", page.html);
        let page = session.post(&app, &format!("{path}/settings"), &[("threshold", "1")]).await;
        assert_eq!(page.status, 404, "{path}");
    }
    let page =
        session.post(&app, &format!("/ui/customers/{}/rules/nope", app.customer_id), &[("action", "disable")]).await;
    assert_eq!(page.status, 404);
    assert!(page.html.contains("no rule `nope`"), "{}", page.html);
});

each_backend!(a_viewer_sees_customers_and_rules_without_forms_and_cannot_change_them, |backend| {
    let app = TestApp::new(backend).await;
    let (viewer_key, _, _) =
        crate::support::create_key(&app.store, "viewer@example.com", warden_server::store::Role::Viewer).await;
    let viewer = sign_in(&app, &viewer_key).await;
    let customer = format!("/ui/customers/{}", app.customer_id);
    for path in ["/ui/customers", customer.as_str(), "/ui/rules", "/ui/rules/contains_personal_data"] {
        let page = viewer.get(&app, path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.html);
        // The only form is the layout's sign-out.
        assert_eq!(page.html.matches("<form method=\"post\"").count(), 1, "{path}: {}", page.html);
        assert!(!page.html.contains("/toggle"), "{path} links no toggle");
    }
    assert_eq!(viewer.get(&app, "/ui/rules/contains_personal_data/toggle").await.status, 403);
    for (path, fields) in [
        ("/ui/customers".to_owned(), vec![("name", "X"), ("email", "x@example.com")]),
        (format!("{customer}/settings"), vec![("threshold", "1")]),
        (format!("{customer}/rules/external_model"), vec![("action", "disable")]),
        ("/ui/rules/external_model/toggle".to_owned(), vec![("to", "off")]),
    ] {
        assert_eq!(viewer.post(&app, &path, &fields).await.status, 403, "{path}");
    }
    let (_, effective) =
        admin(&app, "GET", &format!("/api/admin/customers/{}/effective-policy", app.customer_id), None).await;
    assert_eq!(effective["threshold"]["source"], json!("file"), "nothing changed");
});

each_backend!(the_customer_list_pages_and_keeps_the_search_in_its_links, |backend| {
    let app = TestApp::new(backend).await;
    let session = sign_in(&app, &app.admin_key).await;
    for i in 0..51 {
        app.store.create_customer(&format!("Paged {i:02}"), &format!("paged{i:02}@example.com"), None).await.unwrap();
    }
    let first = session.get(&app, "/ui/customers?q=paged").await;
    assert!(first.html.contains("51 customers matching"), "{}", first.html);
    assert!(first.html.contains("paged49@example.com") && !first.html.contains("paged50@example.com"));
    assert!(first.html.contains("rel=\"next\" href=\"/ui/customers?q=paged&#38;page=2\""), "{}", first.html);
    assert!(!first.html.contains("rel=\"prev\""));
    let second = session.get(&app, "/ui/customers?q=paged&page=2").await;
    assert!(second.html.contains("paged50@example.com") && !second.html.contains("paged49@example.com"));
    assert!(second.html.contains("rel=\"prev\" href=\"/ui/customers?q=paged&#38;page=1\""), "{}", second.html);
    // A page number that isn't one is the first page.
    assert!(session.get(&app, "/ui/customers?page=x").await.html.contains("paged00@example.com"));
});
