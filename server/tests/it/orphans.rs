//! Settings bound to the rule they were set for: toggles and overrides are
//! stored by rule name with the fingerprint of that rule, and apply only
//! while the rule served under that name has it. Otherwise they are
//! orphaned (`rule_missing`, `rule_changed`), computed by each instance
//! against the set it serves, with nothing written on reload. On SQLite and
//! Postgres.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use tokio::sync::watch;
use warden_engine::{Policy, SourceFile};
use warden_server::app::AppState;
use warden_server::reload::Reloaded;
use warden_server::store::{Role, Store};

use crate::support::{Backend, TestApp};

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

fn compile(rules: &str) -> Policy {
    let src = SourceFile::new("p.warden", format!("{INPUT}{rules}"));
    match Policy::from_sources(vec![src]) {
        Ok((p, _)) => p,
        Err(e) => panic!("{:?}", e.iter().map(ToString::to_string).collect::<Vec<_>>()),
    }
}

fn policy(rules: &str) -> Arc<Policy> {
    Arc::new(compile(rules))
}

fn request(key: &str, method: &str, path: &str, body: Option<Value>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap()
}

async fn admin(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let (status, _, json) = app.send(request(&app.admin_key, method, path, body)).await;
    (status, json)
}

/// `(rule, customer_id or null, reason)` of every orphan listed.
async fn orphans(app: &TestApp) -> Vec<(String, Value, String)> {
    let (status, listed) = admin(app, "GET", "/api/admin/orphans", None).await;
    assert_eq!(status, 200, "{listed}");
    listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (o["rule"].as_str().unwrap().to_owned(), o["customer_id"].clone(), o["reason"].as_str().unwrap().to_owned())
        })
        .collect()
}

async fn trail_total(app: &TestApp) -> i64 {
    admin(app, "GET", "/api/admin/audit?page_size=1", None).await.1["total"].as_i64().unwrap()
}

const EXT: &str = r#"{"model":"gpt-4","operation":"x","metadata":{"is_external_model":true}}"#;
const GPT4: &str = r#"{"model":"gpt-4","operation":"x"}"#;

each_backend!(settings_apply_only_to_the_rule_they_were_set_for, |backend| {
    let app = TestApp::new(backend).await;
    let live = &app.state.live;
    live.replace_policy(policy(FIRST)).await;
    let base = format!("/api/admin/customers/{}", app.customer_id);
    let cid = json!(app.customer_id);
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
    let (before_swap, counter) = (trail_total(&app).await, app.store.config_version().await.unwrap());

    // Different rules take the same names, in one step: the settings made
    // for the old rules don't apply to them.
    live.replace_policy(policy(LATER)).await;
    let (_, _, d) = app.check(&app.app_key, EXT).await;
    assert_eq!((d["allowed"].as_bool(), d["reason"].as_str()), (Some(false), Some("no_external")), "{d}");
    let (_, _, d) = app.check(&app.app_key, GPT4).await;
    assert_eq!(d["allowed"], json!(true), "the new rule is off as its file says, not on by the old toggle: {d}");
    // Listed with the reason, readable, counted, in the effective policy.
    assert_eq!(
        orphans(&app).await,
        [
            ("approved_models".to_owned(), Value::Null, "rule_changed".to_owned()),
            ("external_model".to_owned(), cid.clone(), "rule_changed".to_owned()),
        ]
    );
    let (status, o) = admin(&app, "GET", &format!("{base}/policies/external_model"), None).await;
    assert_eq!(
        (status, o["enabled"].as_bool(), o["orphaned"].as_str()),
        (200, Some(false), Some("rule_changed")),
        "{o}"
    );
    assert_eq!(admin(&app, "GET", "/api/admin/status", None).await.1["orphaned_settings"], json!(2));
    let (_, eff) = admin(&app, "GET", &format!("{base}/effective-policy"), None).await;
    assert_eq!(eff["orphans"].as_array().map(Vec::len), Some(2), "{eff}");
    let rule = |name: &str| eff["rules"].as_array().unwrap().iter().find(|r| r["key"] == name).unwrap().clone();
    assert_eq!(rule("external_model")["enabled"], json!({"value": true, "source": "file"}));
    assert_eq!(rule("approved_models")["enabled"], json!({"value": false, "source": "file"}));
    let (_, rules) = admin(&app, "GET", "/api/admin/policies", None).await;
    let approved = rules["items"].as_array().unwrap().iter().find(|r| r["key"] == "approved_models").unwrap().clone();
    assert_eq!((approved["enabled"].clone(), approved["global_toggle"].clone()), (json!(false), Value::Null));
    // Serving a set wrote nothing.
    assert_eq!((trail_total(&app).await, app.store.config_version().await.unwrap()), (before_swap, counter));

    // The old rules come back unchanged: their settings apply again, with
    // no admin action, since they are the same rules.
    live.replace_policy(policy(FIRST)).await;
    assert_eq!(app.check(&app.app_key, EXT).await.2["allowed"], json!(true));
    assert_eq!(
        app.check(&app.app_key, r#"{"model":"other","operation":"x"}"#).await.2["reason"],
        json!("unapproved_model")
    );
    assert!(orphans(&app).await.is_empty());

    // Re-confirming binds the override to the rule now of that name.
    live.replace_policy(policy(LATER)).await;
    assert_eq!(
        admin(&app, "PUT", &format!("{base}/policies/external_model"), Some(json!({"enabled": false}))).await.0,
        200
    );
    assert_eq!(app.check(&app.app_key, EXT).await.2["allowed"], json!(true));
    let (_, trail) = admin(&app, "GET", "/api/admin/audit?page_size=1", None).await;
    let entry = &trail["items"][0];
    assert_eq!(entry["before"]["enabled"], json!({"value": true, "source": "file"}), "{entry}");
    assert_eq!(entry["after"]["enabled"], json!({"value": false, "source": "override"}), "{entry}");
    assert_eq!(
        entry["after"]["reconfirmed_orphan"],
        json!({"enabled": false, "score": null, "mode": null, "reason": "rule_changed"})
    );
    assert_eq!(orphans(&app).await.len(), 1);
    // The orphaned toggle is deleted; a toggle in force is no orphan.
    assert_eq!(admin(&app, "DELETE", "/api/admin/orphans/toggles/approved_models", None).await.0, 204);
    assert_eq!(admin(&app, "DELETE", "/api/admin/orphans/toggles/approved_models", None).await.0, 404);
    assert!(orphans(&app).await.is_empty());
    assert_eq!(app.check(&app.app_key, GPT4).await.2["allowed"], json!(true));
    assert_eq!(
        admin(&app, "PATCH", "/api/admin/policies/approved_models", Some(json!({"enabled": true}))).await.0,
        200
    );
    assert_eq!(admin(&app, "DELETE", "/api/admin/orphans/toggles/approved_models", None).await.0, 404);
    assert_eq!(app.check(&app.app_key, GPT4).await.2["reason"], json!("gpt4_banned"));
});

each_backend!(orphans_are_read_and_deleted_while_their_rule_is_gone, |backend| {
    let app = TestApp::new(backend).await;
    let live = &app.state.live;
    live.replace_policy(policy(FIRST)).await;
    let base = format!("/api/admin/customers/{}", app.customer_id);
    assert_eq!(
        admin(&app, "PUT", &format!("{base}/policies/external_model"), Some(json!({"enabled": false}))).await.0,
        200
    );
    live.replace_policy(policy("")).await;
    assert_eq!(orphans(&app).await, [("external_model".to_owned(), json!(app.customer_id), "rule_missing".to_owned())]);
    let (status, o) = admin(&app, "GET", &format!("{base}/policies/external_model"), None).await;
    assert_eq!((status, o["orphaned"].as_str()), (200, Some("rule_missing")), "{o}");
    // Deleted while no rule has the name; then it is gone.
    assert_eq!(admin(&app, "DELETE", &format!("{base}/policies/external_model"), None).await.0, 204);
    let (_, trail) = admin(&app, "GET", "/api/admin/audit?page_size=1", None).await;
    assert_eq!(trail["items"][0]["before"]["orphan"]["reason"], json!("rule_missing"), "{trail}");
    assert_eq!(admin(&app, "GET", &format!("{base}/policies/external_model"), None).await.0, 404);
    assert_eq!(admin(&app, "DELETE", &format!("{base}/policies/external_model"), None).await.0, 404);
    live.replace_policy(policy(FIRST)).await;
    let (_, _, d) = app.check(&app.app_key, EXT).await;
    assert_eq!(d["allowed"], json!(false), "the deleted exemption stays deleted: {d}");
    assert!(orphans(&app).await.is_empty());
});

/// An app over a policy directory of its own (one file, `p.warden`), with
/// a short settle time.
async fn app_over_dir(backend: Backend, rules: &str) -> (TestApp, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("warden-bound-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("p.warden"), format!("{INPUT}{rules}")).unwrap();
    let options = warden_server::server::Options {
        policy_dir: Some(dir.clone()),
        policy_settle: Duration::from_millis(100),
        ..TestApp::options()
    };
    (TestApp::with_options(backend, options).await, dir)
}

async fn reload_to(app: &TestApp, dir: &Path, rules: &str) {
    std::fs::write(dir.join("p.warden"), format!("{INPUT}{rules}")).unwrap();
    let r = app.state.reloader.as_ref().unwrap().reload(&app.state).await;
    assert!(matches!(r, Reloaded::Swapped(_)), "{r:?}");
}

each_backend!(edits_that_keep_a_rule_keep_its_settings_and_a_new_condition_drops_them, |backend| {
    let (app, dir) = app_over_dir(backend, FIRST).await;
    let base = format!("/api/admin/customers/{}", app.customer_id);
    assert_eq!(admin(&app, "PUT", &format!("{base}/policies/external_model"), Some(json!({"score": 10}))).await.0, 200);
    assert_eq!(app.check(&app.app_key, EXT).await.2["risk_score"], json!(10));
    // Description, reason, `enabled` and the score's number: the same rule.
    let edited = FIRST
        .replace(r#"description "external""#, r#"description "hosted elsewhere""#)
        .replace("score +50 reason external_model", "score +55 reason hosted_elsewhere");
    reload_to(&app, &dir, &edited).await;
    let (_, _, d) = app.check(&app.app_key, EXT).await;
    assert_eq!((d["risk_score"].as_i64(), d["allowed"].as_bool()), (Some(10), Some(true)), "{d}");
    reload_to(
        &app,
        &dir,
        &edited.replace("when metadata.is_external_model score", "enabled false when metadata.is_external_model score"),
    )
    .await;
    assert!(orphans(&app).await.is_empty());
    reload_to(&app, &dir, &edited).await;
    // A new condition in one reload: another rule; the file's score applies.
    let narrowed = edited.replace(
        "when metadata.is_external_model score",
        r#"when metadata.is_external_model and model == "gpt-4" score"#,
    );
    reload_to(&app, &dir, &narrowed).await;
    let (_, _, d) = app.check(&app.app_key, EXT).await;
    assert_eq!((d["risk_score"].as_i64(), d["allowed"].as_bool()), (Some(55), Some(false)), "{d}");
    assert_eq!(orphans(&app).await, [("external_model".to_owned(), json!(app.customer_id), "rule_changed".to_owned())]);
    // A score rule made a deny rule, same condition: another rule too.
    reload_to(&app, &dir, &edited.replace("score +55 reason hosted_elsewhere", "deny reason hosted_elsewhere")).await;
    assert_eq!(orphans(&app).await.len(), 1);
    // Back to the narrowed rule, then re-confirmed: it applies to it.
    reload_to(&app, &dir, &narrowed).await;
    assert_eq!(admin(&app, "PUT", &format!("{base}/policies/external_model"), Some(json!({"score": 10}))).await.0, 200);
    assert_eq!(app.check(&app.app_key, EXT).await.2["risk_score"], json!(10));
    assert!(orphans(&app).await.is_empty());
    let _ = std::fs::remove_dir_all(dir);
});

each_backend!(a_rule_removed_and_restored_unchanged_gets_its_settings_back_and_a_replaced_one_does_not, |backend| {
    // The real reloader over the shipped policies; no background poll runs.
    let dir = crate::support::policy_dir_copy();
    let options = warden_server::server::Options {
        policy_dir: Some(dir.clone()),
        policy_settle: Duration::from_millis(100),
        ..TestApp::options()
    };
    let app = TestApp::with_options(backend, options).await;
    let reloader = app.state.reloader.clone().unwrap();
    let models = std::fs::read_to_string(dir.join("models.warden")).unwrap();
    let unapproved = r#"{"model":"some-new-model","operation":"classify","metadata":{}}"#;
    let denied = async || app.check(&app.app_key, unapproved).await.2["reason"] == json!("unapproved_model");
    // The approved-models rule is switched on for everyone.
    assert_eq!(
        admin(&app, "PATCH", "/api/admin/policies/approved_models", Some(json!({"enabled": true}))).await.0,
        200
    );
    assert!(denied().await);
    // The rule leaves the set: the toggle applies to nothing, and says why.
    std::fs::remove_file(dir.join("models.warden")).unwrap();
    assert!(matches!(reloader.reload(&app.state).await, Reloaded::Swapped(_)));
    assert!(!denied().await);
    assert_eq!(orphans(&app).await, [("approved_models".to_owned(), Value::Null, "rule_missing".to_owned())]);
    // The same rule comes back: the toggle applies again.
    std::fs::write(dir.join("models.warden"), &models).unwrap();
    assert!(matches!(reloader.reload(&app.state).await, Reloaded::Swapped(_)));
    assert!(denied().await, "the restored rule has its toggle back");
    assert!(orphans(&app).await.is_empty());
    // A different rule of the same name, in one reload: it stays off, as its
    // file says, and the toggle is listed.
    std::fs::write(
        dir.join("models.warden"),
        models.replace(r#""claude-3-5-sonnet"]"#, r#""claude-3-5-sonnet", "another-approved-model"]"#),
    )
    .unwrap();
    assert!(matches!(reloader.reload(&app.state).await, Reloaded::Swapped(_)));
    let (_, _, d) = app.check(&app.app_key, r#"{"model":"another-model","operation":"classify","metadata":{}}"#).await;
    assert_eq!(d["allowed"], json!(true), "the toggle made for the old rule does not switch on the new one: {d}");
    assert_eq!(orphans(&app).await, [("approved_models".to_owned(), Value::Null, "rule_changed".to_owned())]);
    let _ = std::fs::remove_dir_all(dir);
});

/// A service instance on `url` serving `policy`, with its background tasks
/// (change propagation) running: one `warden serve` process.
struct Served {
    router: Router,
    state: AppState,
    _stop: watch::Sender<bool>,
}

impl Served {
    async fn start(url: &str, policy: Policy) -> Self {
        let store = Store::connect(url).await.unwrap();
        store.migrate().await.unwrap();
        let (state, writer) = warden_server::server::build_state(store, policy, &TestApp::options()).await.unwrap();
        let (stop, rx) = watch::channel(false);
        tokio::spawn(writer.run(rx.clone()));
        warden_server::server::spawn_background(&state, rx);
        Self { router: warden_server::app::router(state.clone()), state, _stop: stop }
    }

    async fn send(&self, req: Request<Body>) -> (u16, Value) {
        use http_body_util::BodyExt as _;
        use tower::ServiceExt as _;
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

fn shipped(without_models: bool) -> Policy {
    let dir = crate::support::policy_dir_copy();
    if without_models {
        std::fs::remove_file(dir.join("models.warden")).unwrap();
    }
    let p = crate::support::policy_from(&dir);
    let _ = std::fs::remove_dir_all(dir);
    p
}

each_backend!(an_instance_serving_a_set_without_a_rule_leaves_the_others_settings_alone, |backend| {
    let (url, _cleanup) = crate::support::fresh_url(backend).await;
    let full = Served::start(&url, shipped(false)).await;
    let (key, _, customer) = crate::support::create_key(&full.state.store, "app@example.com", Role::App).await;
    let (admin_key, _, _) = crate::support::create_key(&full.state.store, "admin@example.com", Role::Admin).await;
    let unapproved = || request(&key, "POST", "/v1/check", Some(json!({"model": "m", "operation": "o"})));
    let exempt = || {
        request(
            &key,
            "POST",
            "/v1/check",
            Some(json!({"model": "gpt-4", "operation": "o", "metadata": {"is_external_model": true}})),
        )
    };
    let toggle = request(&admin_key, "PATCH", "/api/admin/policies/approved_models", Some(json!({"enabled": true})));
    assert_eq!(full.send(toggle).await.0, 200);
    let ov = request(
        &admin_key,
        "PUT",
        &format!("/api/admin/customers/{customer}/policies/approved_models"),
        Some(json!({"enabled": true})),
    );
    assert_eq!(full.send(ov).await.0, 200);
    let ov = request(
        &admin_key,
        "PUT",
        &format!("/api/admin/customers/{customer}/policies/external_model"),
        Some(json!({"enabled": false})),
    );
    assert_eq!(full.send(ov).await.0, 200);
    assert_eq!(full.send(unapproved()).await.1["reason"], json!("unapproved_model"));

    // A second instance starts with a stale set (no approved-models rule),
    // as a canary or a forgotten `--policies` would, and serves it.
    let stale = Served::start(&url, shipped(true)).await;
    assert_eq!(stale.send(unapproved()).await.1["allowed"], json!(true));
    let (_, listed) = stale.send(request(&admin_key, "GET", "/api/admin/orphans", None)).await;
    assert_eq!(listed["total"], json!(2), "{listed}");
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["rule"] == "approved_models" && o["reason"] == "rule_missing")
    );
    // It also changes a setting, so the first instance reloads its tables.
    let ov = request(
        &admin_key,
        "PUT",
        &format!("/api/admin/customers/{customer}/policies/contains_personal_data"),
        Some(json!({"score": 60})),
    );
    assert_eq!(stale.send(ov).await.0, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while full.state.live.load().config_version < stale.state.live.load().config_version {
        assert!(std::time::Instant::now() < deadline, "the first instance never saw the change");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The instance serving the full set still applies every setting.
    assert_eq!(full.send(unapproved()).await.1["reason"], json!("unapproved_model"));
    assert_eq!(full.send(exempt()).await.1["allowed"], json!(true));
    let (_, listed) = full.send(request(&admin_key, "GET", "/api/admin/orphans", None)).await;
    assert_eq!(listed["total"], json!(0), "{listed}");
    let (_, st) = full.send(request(&admin_key, "GET", "/api/admin/status", None)).await;
    assert_eq!(st["orphaned_settings"], json!(0));
    // And so does a third instance started now with the full set.
    let another = Served::start(&url, shipped(false)).await;
    assert_eq!(another.send(unapproved()).await.1["reason"], json!("unapproved_model"));
});

/// When the rows below were written.
fn long_ago() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc()
}

/// An override as releases before fingerprints stored it (bound
/// parameters: each backend stores UUIDs and times its own way).
async fn legacy_override(backend: Backend, url: &str, customer: uuid::Uuid, rule: &str) {
    let sql = "INSERT INTO customer_policy (customer_id, rule_key, enabled, score, updated_at) \
               VALUES ($1, $2, false, NULL, $3)";
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query(sql).bind(customer).bind(rule).bind(long_ago()).execute(&pool).await.unwrap();
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sql).bind(customer).bind(rule).bind(long_ago()).execute(&pool).await.unwrap();
        }
    }
}

/// A global toggle an earlier release had marked orphaned.
async fn legacy_orphaned_toggle(backend: Backend, url: &str, rule: &str) {
    let sql =
        "INSERT INTO policy (rule_key, description, enabled, updated_at, orphaned_at) VALUES ($1, '', true, $2, $2)";
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query(sql).bind(rule).bind(long_ago()).execute(&pool).await.unwrap();
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sql).bind(rule).bind(long_ago()).execute(&pool).await.unwrap();
        }
    }
}

each_backend!(settings_made_before_fingerprints_are_bound_once_to_the_rules_served_at_start_up, |backend| {
    let (url, _cleanup) = crate::support::fresh_url(backend).await;
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let (key, _, customer) = crate::support::create_key(&store, "app@example.com", Role::App).await;
    let (admin_key, _, _) = crate::support::create_key(&store, "admin@example.com", Role::Admin).await;
    // Rows as an earlier release left them: no fingerprints; a toggle it
    // had marked orphaned; an override for a rule no set has now.
    legacy_override(backend, &url, customer, "external_model").await;
    legacy_override(backend, &url, customer, "retired_rule").await;
    legacy_orphaned_toggle(backend, &url, "approved_models").await;
    let first = Served::start(&url, compile(FIRST)).await;
    let ext = || {
        let body = json!({"model": "gpt-4", "operation": "o", "metadata": {"is_external_model": true}});
        request(&key, "POST", "/v1/check", Some(body))
    };
    assert_eq!(first.send(ext()).await.1["allowed"], json!(true), "the old override is bound to the rule served");
    let (_, listed) = first.send(request(&admin_key, "GET", "/api/admin/orphans", None)).await;
    let found: Vec<(Value, Value)> =
        listed["items"].as_array().unwrap().iter().map(|o| (o["rule"].clone(), o["reason"].clone())).collect();
    assert_eq!(
        found,
        [(json!("approved_models"), json!("rule_changed")), (json!("retired_rule"), json!("rule_missing"))]
    );
    let (_, trail) = first.send(request(&admin_key, "GET", "/api/admin/audit?page_size=1", None)).await;
    assert_eq!(trail["items"][0]["action"], json!("policy.fingerprint.adopt"), "{trail}");
    assert_eq!(trail["items"][0]["after"]["unbound_rules"], json!(["approved_models", "retired_rule"]));
    drop(first);

    // Later start-ups bind nothing: not a legacy row added since, and not
    // to another rule of the same name.
    legacy_override(backend, &url, customer, "contains_personal_data").await;
    let later = Served::start(&url, compile(LATER)).await;
    let (_, d) = later.send(ext()).await;
    assert_eq!(d["reason"], json!("no_external"), "bound to the first rule, not the later one: {d}");
    let (_, listed) = later.send(request(&admin_key, "GET", "/api/admin/orphans", None)).await;
    assert_eq!(listed["total"], json!(4), "{listed}");
    let body = json!({"model": "gpt-4", "operation": "o", "metadata": {"contains_personal_data": true}});
    let (_, d) = later.send(request(&key, "POST", "/v1/check", Some(body))).await;
    assert_eq!(d["allowed"], json!(false), "an unbound row added later applies to nothing: {d}");
});

each_backend!(a_toggle_that_sets_only_a_mode_is_orphaned_listed_deleted_and_reconfirmed_like_any, |backend| {
    let (app, dir) = app_over_dir(backend, FIRST).await;
    let toggle = "/api/admin/policies/external_model";
    assert_eq!(admin(&app, "PATCH", toggle, Some(json!({"mode": "shadow"}))).await.0, 200);
    // A mode alone still switches the rule on and is a stored toggle.
    assert_eq!(admin(&app, "PATCH", toggle, Some(json!({"enabled": null}))).await.0, 200);
    let (_, _, d) = app.check(&app.app_key, EXT).await;
    assert_eq!((d["allowed"].clone(), d["shadow"][0]["rule"].clone()), (json!(true), json!("external_model")), "{d}");
    // The rule takes another condition: the toggle applies to nothing.
    let narrowed = FIRST.replace(
        "when metadata.is_external_model score",
        r#"when metadata.is_external_model and model == "gpt-4" score"#,
    );
    reload_to(&app, &dir, &narrowed).await;
    let (_, _, d) = app.check(&app.app_key, EXT).await;
    assert_eq!((d["allowed"].clone(), d.get("shadow").is_none()), (json!(false), true), "enforced as written: {d}");
    let (_, listed) = admin(&app, "GET", "/api/admin/orphans", None).await;
    let orphan = listed["items"].as_array().unwrap().iter().find(|o| o["rule"] == "external_model").unwrap().clone();
    assert_eq!(
        (orphan["mode"].clone(), orphan["reason"].clone()),
        (json!("shadow"), json!("rule_changed")),
        "{orphan}"
    );
    // Setting it again re-confirms it for the rule now served, and the
    // trail says what was re-confirmed.
    assert_eq!(admin(&app, "PATCH", toggle, Some(json!({"mode": "shadow"}))).await.0, 200);
    let (_, trail) = admin(&app, "GET", "/api/admin/audit?page_size=1", None).await;
    assert_eq!(trail["items"][0]["after"]["reconfirmed_orphan"]["mode"], json!("shadow"), "{trail}");
    assert!(orphans(&app).await.is_empty());
    // Orphaned again, then deleted through the orphans endpoint.
    reload_to(&app, &dir, FIRST).await;
    assert_eq!(orphans(&app).await.len(), 1);
    assert_eq!(admin(&app, "DELETE", "/api/admin/orphans/toggles/external_model", None).await.0, 204);
    assert!(orphans(&app).await.is_empty());
});
