//! The viewer role: a read-only admin credential. It reads every `GET` of
//! the admin API, changes nothing (403 on every other method, for every
//! route the OpenAPI document lists), asks for no decisions, and the
//! SQLite and Postgres migrations that allow it keep every existing key.

use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use uuid::Uuid;

use crate::admin::call;
use crate::support::{Backend, TestApp, fresh_url};
use warden_server::store::{Role, Store};

const PII: &str = r#"{"model":"gpt-4","operation":"classify","metadata":{"contains_personal_data":true}}"#;

/// A viewer key issued through the admin API.
async fn viewer_key(app: &TestApp) -> (String, Uuid) {
    let body = json!({"name": "auditor", "customer_id": app.customer_id, "role": "viewer"});
    let (status, issued) = call(app, &app.admin_key, "POST", "/api/admin/keys", Some(body)).await;
    assert_eq!(status, 201, "{issued}");
    assert_eq!(issued["role"], json!("viewer"));
    (issued["key"].as_str().unwrap().to_owned(), issued["id"].as_str().unwrap().parse().unwrap())
}

/// Every admin operation in the OpenAPI document, its path parameters
/// filled in: `(method, path)`.
async fn admin_operations(app: &TestApp, key_id: Uuid) -> Vec<(String, String)> {
    let (status, _, doc) = app.send(Request::get("/openapi.json").body(Body::empty()).unwrap()).await;
    assert_eq!(status, 200);
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/api/admin/") {
            continue;
        }
        let filled = path
            .replace("/customers/{id}", &format!("/customers/{}", app.customer_id))
            .replace("/keys/{id}", &format!("/keys/{key_id}"))
            .replace("{id}", &Uuid::new_v4().to_string())
            .replace("{key}", "external_model")
            .replace("{name}", "approved_models")
            .replace("{delivery}", "1");
        assert!(!filled.contains('{'), "a path parameter this test doesn't fill: {path}");
        for method in item.as_object().unwrap().keys() {
            ops.push((method.to_uppercase(), filled.clone()));
        }
    }
    ops
}

async fn trail_length(app: &TestApp) -> i64 {
    let (status, page) = call(app, &app.admin_key, "GET", "/api/admin/audit?page_size=1", None).await;
    assert_eq!(status, 200, "{page}");
    page["total"].as_i64().unwrap()
}

each_backend!(a_viewer_reads_every_admin_get_and_changes_nothing, |backend| {
    let app = TestApp::new(backend).await;
    let (viewer, viewer_id) = viewer_key(&app).await;
    let ops = admin_operations(&app, viewer_id).await;
    assert!(ops.iter().filter(|(m, _)| m != "GET").count() >= 10, "{ops:?}");
    let before = trail_length(&app).await;
    for (method, path) in &ops {
        let (status, body) = call(&app, &viewer, method, path, Some(json!({}))).await;
        if method == "GET" {
            assert!(![401, 403].contains(&status), "GET {path}: {status} {body}");
        } else {
            assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")), "{method} {path}: {body}");
            assert!(body["message"].as_str().unwrap().contains("viewer"), "{body}");
        }
    }
    // A viewer reads the lists themselves, not just a status.
    let (status, keys) = call(&app, &viewer, "GET", "/api/admin/keys", None).await;
    assert_eq!(status, 200);
    assert!(keys["items"].as_array().unwrap().iter().any(|k| k["role"] == json!("viewer")));
    assert_eq!(call(&app, &viewer, "HEAD", "/api/admin/keys", None).await.0, 200);
    // Nothing was changed: the admin trail has no new row, and the key the
    // viewer tried to delete and rotate still works.
    assert_eq!(trail_length(&app).await, before);
    assert_eq!(call(&app, &viewer, "GET", "/api/admin/status", None).await.0, 200);
    // The same writes with the admin key go through, so the 403s above
    // came from the role, not from the requests.
    let (status, _) = call(&app, &app.admin_key, "POST", &format!("/api/admin/keys/{viewer_id}/rotate"), None).await;
    assert_eq!(status, 200);
});

each_backend!(a_viewer_gets_no_decisions, |backend| {
    let app = TestApp::new(backend).await;
    let (viewer, _) = viewer_key(&app).await;
    let (status, _, body) = app.check(&viewer, PII).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("app key"), "{body}");
    let (status, body) = call(&app, &viewer, "POST", "/api/evaluate", None).await;
    assert_eq!(status, 403, "{body}");
    // App and admin keys still decide.
    assert_eq!(app.check(&app.app_key, PII).await.0, 200);
    assert_eq!(app.check(&app.admin_key, PII).await.0, 200);
});

each_backend!(an_app_key_still_gets_403_everywhere_in_the_admin_api, |backend| {
    let app = TestApp::new(backend).await;
    for (method, path) in admin_operations(&app, app.app_key_id).await {
        let (status, body) = call(&app, &app.app_key, &method, &path, Some(json!({}))).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")), "{method} {path}");
    }
});

each_backend!(roles_are_refused_unless_known, |backend| {
    let app = TestApp::new(backend).await;
    let body = json!({"name": "x", "customer_id": app.customer_id, "role": "root"});
    let (status, err) = call(&app, &app.admin_key, "POST", "/api/admin/keys", Some(body)).await;
    assert_eq!((status, err["field"].as_str()), (422, Some("role")), "{err}");
    // The database refuses one too.
    let sql = format!(
        "INSERT INTO api_key (id, customer_id, name, role, secret_hash, active, created_at, request_count) \
         VALUES ('{}', '{}', 'x', 'root', 'h', TRUE, '2026-01-01T00:00:00Z', 0)",
        Uuid::new_v4(),
        app.customer_id
    );
    assert!(app.store.execute_raw(&sql).await.is_err());
});

/// Applies the migrations before the viewer role's to a fresh database,
/// writes a rotated key with usage, then applies the rest: the key must
/// come through whole.
async fn migrate_over_existing_key(backend: Backend) {
    const VIEWER_MIGRATION: i64 = 20261209000001;
    let (url, _cleanup) = fresh_url(backend).await;
    let dir = match backend {
        Backend::Sqlite => concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations/sqlite"),
        Backend::Postgres => concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations/postgres"),
    };
    let mut earlier = sqlx::migrate::Migrator::new(std::path::Path::new(dir)).await.unwrap();
    let before: Vec<_> = earlier.migrations.iter().filter(|m| m.version < VIEWER_MIGRATION).cloned().collect();
    assert!(before.len() < earlier.migrations.len(), "the viewer migration is missing");
    earlier.migrations = before.into();
    let (key, customer) = (Uuid::new_v4(), Uuid::new_v4());
    let insert_customer = "INSERT INTO customer (id, name, email, created_at) VALUES ($1, 'c', 'c@x.test', $2)";
    let insert_key = "INSERT INTO api_key (id, customer_id, name, role, secret_hash, active, created_at, \
        last_used_at, request_count, previous_secret_hash, previous_valid_until) \
        VALUES ($1, $2, 'old', 'admin', 'new-hash', TRUE, $3, $3, 42, 'old-hash', $3)";
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z").unwrap().to_utc();
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&format!("{url}?mode=rwc")).await.unwrap();
            earlier.run(&pool).await.unwrap();
            sqlx::query(insert_customer).bind(customer).bind(at).execute(&pool).await.unwrap();
            sqlx::query(insert_key).bind(key).bind(customer).bind(at).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            earlier.run(&pool).await.unwrap();
            sqlx::query(insert_customer).bind(customer).bind(at).execute(&pool).await.unwrap();
            sqlx::query(insert_key).bind(key).bind(customer).bind(at).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let record = store.key(key).await.unwrap().expect("the key survives the migration");
    assert_eq!(record.role, Role::Admin);
    assert_eq!(record.secret_hash, "new-hash");
    assert_eq!(record.previous_secret_hash.as_deref(), Some("old-hash"));
    assert_eq!(record.previous_valid_until, Some(at));
    assert!(record.active);
    let summary = store.key_summary(key).await.unwrap().unwrap();
    assert_eq!((summary.request_count, summary.last_used_at, summary.created_at), (42, Some(at), at));
    assert_eq!(summary.customer_email, "c@x.test");
    // A viewer key can be stored now, and the customer cascade still holds.
    crate::support::create_key(&store, "c@x.test", Role::Viewer).await;
    assert_eq!(store.list_keys(Some(customer), 1, 10).await.unwrap().total, 2);
    store.execute_raw("DELETE FROM customer WHERE email = 'c@x.test'").await.unwrap();
    assert!(store.key(key).await.unwrap().is_none(), "deleting the customer still deletes its keys");
    store.close().await;
}

each_backend!(the_viewer_migration_keeps_existing_keys, |backend| {
    migrate_over_existing_key(backend).await;
});

each_backend!(keys_create_viewer_on_the_command_line, |backend| {
    let (url, _cleanup) = fresh_url(backend).await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(args)
            .args(["--database-url", &url])
            .env("WARDEN_BCRYPT_COST", "4")
            .output()
            .unwrap()
    };
    let out = run(&["keys", "create", "--customer", "viewer@x.test", "--name", "auditor", "--viewer"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("role: viewer"), "{stdout}");
    let key = stdout.lines().last().unwrap();
    assert!(key.starts_with("wdn_"), "{stdout}");
    let out = run(&["keys", "create", "--customer", "viewer@x.test", "--viewer", "--admin"]);
    assert!(!out.status.success(), "--viewer and --admin together are refused");
    let out = run(&["keys", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.lines().any(|l| l.contains("viewer") && l.contains("auditor")), "{listed}");
    assert!(!listed.contains(key), "the list never shows the key");
});
