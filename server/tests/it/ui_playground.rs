//! The dashboard's playground: its decision equals `/v1/check` for the
//! same body and customer (overrides included), it adds no audit row and
//! spends no rate limit, and a refused body shows its rejection and path.

use std::time::Duration;

use warden_engine::RuleOverride;
use warden_server::rate_limit::Quota;
use warden_server::server::Options;

use crate::support::{TestApp, default_policy};
use crate::ui_support::{Session, sign_in};

/// An external-model request: blocked (score 50) under the shipped set.
const EXTERNAL: &str =
    r#"{"model": "gpt-4", "operation": "classify", "metadata": {"is_external_model": true, "intent": "x"}}"#;

/// The `r=` of the `ratelimit` header: requests left.
fn remaining(headers: &axum::http::HeaderMap) -> u64 {
    let h = headers.get("ratelimit").unwrap().to_str().unwrap();
    h.split(';').find_map(|p| p.strip_prefix("r=")).unwrap().parse().unwrap()
}

async fn decide(app: &TestApp, session: &Session, body: &str, customer: &str) -> String {
    let page = session.post(app, "/ui/playground", &[("body", body), ("customer", customer)]).await;
    assert_eq!(page.status, 200, "{}", page.html);
    page.html
}

each_backend!(the_playground_decides_as_check_does_without_auditing_or_spending_a_limit, |backend| {
    // Five requests an hour: one spent would show, none comes back during
    // the test.
    let quota = Quota { requests: 5, window: Duration::from_secs(3600) };
    let app = TestApp::with_options(backend, Options { default_quota: quota, ..TestApp::options() }).await;
    // The app key's customer scores external models at 5: allowed for it,
    // blocked for everyone else.
    let policy = default_policy();
    let lowered = RuleOverride { enabled: None, score: Some(5), mode: None };
    app.store.set_customer_rule(&policy, app.customer_id, "external_model", lowered, None).await.unwrap();
    app.state.live.reload_overrides(&app.store).await.unwrap();
    let session = sign_in(&app, &app.admin_key).await;
    let form = session.get(&app, "/ui/playground").await;
    assert_eq!(form.status, 200);
    assert!(
        form.html.contains("&#34;model&#34;: &#34;gpt-4&#34;") && form.html.contains(">Decide</button>"),
        "{}",
        form.html
    );
    assert!(form.html.contains(&format!("<option value=\"{}\"", app.customer_id)), "the customer is offered");

    let (code, headers, first) = app.check(&app.app_key, EXTERNAL).await;
    assert_eq!(code, 200, "{first}");
    assert_eq!((first["allowed"].as_bool(), first["risk_score"].as_i64()), (Some(true), Some(5)));
    let left = remaining(&headers);
    let customer = app.customer_id.to_string();
    let html = decide(&app, &session, EXTERNAL, &customer).await;
    assert!(html.contains("<span class=\"badge allowed\">allowed</span>"), "{html}");
    assert!(html.contains("<div class=\"stat-value\">5</div>"), "{html}");
    assert!(html.contains(&format!("<code>{}</code>", first["reason"].as_str().unwrap())), "{html}");
    assert!(html.contains(first["policy_version"].as_str().unwrap()));
    // Without the customer: the global settings, as for any other key.
    let html = decide(&app, &session, EXTERNAL, "").await;
    assert!(
        html.contains("<span class=\"badge blocked\">blocked</span>")
            && html.contains("<div class=\"stat-value\">50</div>"),
        "{html}"
    );
    // The explain trace names every rule, whether its condition held, and
    // what it added.
    for rule in policy.rule_names() {
        assert!(html.contains(&format!(">{rule}</a></th>")), "{rule} missing from the trace: {html}");
    }
    assert!(html.contains("<td>score +50</td>") && html.contains("<td class=\"num\">50</td>"), "{html}");
    let (_, headers, second) = app.check(&app.app_key, EXTERNAL).await;
    assert_eq!(second["risk_score"], first["risk_score"]);
    assert_eq!(remaining(&headers), left - 1, "the playground spent none of the key's limit");
    // Two checks, two audit rows: the playground wrote none.
    let mut app = app;
    app.drain_audit().await;
    assert_eq!(app.store.count_audit().await.unwrap(), 2);
});

each_backend!(the_playground_shows_a_rejection_with_its_path, |backend| {
    let mut app = TestApp::new(backend).await;
    let session = sign_in(&app, &app.admin_key).await;
    let body = r#"{"model": "gpt-4", "operation": "classify", "metadata": {"notes": [{"prompt": "CanaryText123"}]}}"#;
    let html = decide(&app, &session, body, "").await;
    assert!(html.contains("<span class=\"badge rejected\">forbidden_field</span>"), "{html}");
    assert!(html.contains("Path: <code>metadata.notes[0].prompt</code>"), "{html}");
    assert!(!html.contains("Explain trace"));
    // A repeated key is refused by the same strict parser as /v1/check.
    let html = decide(&app, &session, r#"{"model": "a", "model": "b", "operation": "x"}"#, "").await;
    assert!(html.contains("duplicate_key") && html.contains("Path: <code>model</code>"), "{html}");
    // Not JSON at all.
    let html = decide(&app, &session, "{not json", "").await;
    assert!(html.contains("The body is not valid JSON") && html.contains("400"), "{html}");
    // An unknown customer is refused.
    let page = session
        .post(&app, "/ui/playground", &[("body", EXTERNAL), ("customer", &uuid::Uuid::new_v4().to_string())])
        .await;
    assert_eq!(page.status, 422, "{}", page.html);
    app.drain_audit().await;
    assert_eq!(app.store.count_audit().await.unwrap(), 0, "no audit row for the playground");
});
