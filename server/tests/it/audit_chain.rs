//! The tamper-evident audit chain, on both backends: rows altered, removed,
//! inserted or reordered straight in the database are each named by
//! `warden audit verify`; two instances writing at once leave one valid
//! chain; prune writes a checkpoint that verify starts from; rows spilled
//! during an outage and rows written after a restart stay on the chain (and
//! a spilled row whose write committed after all is not written twice); the
//! head endpoint and the verification endpoints.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use serde_json::Value;
use uuid::Uuid;
use warden_server::audit::chain::Chain;
use warden_server::audit::verify::{self, Damage, Range, Report};
use warden_server::store::{AuditRecord, ChainRow, Outcome, Store};

use crate::support::{Backend, Instance, TestApp, fresh_store, fresh_url};

fn record(created_at: chrono::DateTime<chrono::Utc>, i: usize) -> AuditRecord {
    AuditRecord {
        decision_id: Uuid::now_v7(),
        request_id: format!("r{i}"),
        customer_id: Uuid::new_v4(),
        api_key_id: Uuid::new_v4(),
        model: Some("gpt-4".into()),
        operation: (i % 3 != 0).then(|| "classify".into()),
        meta: serde_json::json!({"metadata.contains_personal_data": i % 2 == 0, "metadata.intent": format!("i{i}"), "n": i as f64 / 3.0}),
        risk_score: 70,
        allowed: i % 2 == 1,
        outcome: if i % 2 == 1 { Outcome::Allowed } else { Outcome::Blocked },
        reason: "contains_personal_data".into(),
        policy_version: "v".into(),
        latency_us: 12,
        created_at,
        // Every other row records contributions (encoding version 2), the
        // rest none (version 1), and every third a shadow rule (version
        // 3): one chain holds all three.
        contributions: (i % 2 == 0)
            .then(|| vec![warden_server::store::Contribution { rule: "contains_personal_data".into(), score: 70 }]),
        shadow: (i % 3 == 0).then(|| warden_server::store::ShadowRecord {
            rules: vec![warden_server::store::ShadowMatch {
                rule: "strict_pii".into(),
                effect: "deny".into(),
                score: 0,
            }],
            outcome: Some(warden_server::store::ShadowOutcome {
                allowed: false,
                risk_score: 70,
                reason: "strict_pii".into(),
            }),
            candidate: None,
        }),
    }
}

/// A store holding `n` chained decision rows (in batches of 7, so several
/// batches link to each other) and a few admin changes.
async fn chained_store(backend: Backend, n: usize) -> (Store, crate::support::Cleanup) {
    let (store, cleanup) = fresh_store(backend).await;
    let now = warden_server::store::now();
    let rows: Vec<AuditRecord> = (0..n).map(|i| record(now, i)).collect();
    for batch in rows.chunks(7) {
        store.insert_audit(batch).await.unwrap();
    }
    for i in 0..3 {
        store.create_customer(&format!("c{i}"), &format!("c{i}@example.com"), None).await.unwrap();
    }
    (store, cleanup)
}

async fn rows(store: &Store, chain: Chain) -> Vec<ChainRow> {
    store.chain_page(chain, 0, i64::MAX, 100_000).await.unwrap()
}

async fn id_at(store: &Store, chain: Chain, seq: i64) -> i64 {
    rows(store, chain).await.into_iter().find(|r| r.seq == seq).unwrap().id
}

async fn verify_all(store: &Store) -> Report {
    verify::verify(store, Range::default()).await.unwrap()
}

/// The first break's kind and row id.
fn first_break(report: &Report) -> (Chain, Damage, Option<i64>) {
    let p = report.first_break.as_ref().unwrap_or_else(|| panic!("no break found: {report:#?}"));
    (p.chain, p.kind, p.id)
}

async fn exec(store: &Store, sql: &str) {
    store.execute_raw(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

each_backend!(an_untouched_chain_verifies, |backend| {
    let (store, _cleanup) = chained_store(backend, 40).await;
    let report = verify_all(&store).await;
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.rows_checked, 40 + 3);
    let head = store.chain_head(Chain::UsageLog).await.unwrap();
    assert_eq!(head.seq, 40);
    let all = rows(&store, Chain::UsageLog).await;
    assert_eq!(all.last().map(|r| r.row_hash.clone()), Some(head.hash.clone()));
    assert_eq!(head.last_id, all.last().map(|r| r.id));
    // Positions run 1..=40 and every row links to the one before it.
    for (i, pair) in all.windows(2).enumerate() {
        assert_eq!(pair[0].seq, i as i64 + 1);
        assert_eq!(pair[1].prev_hash, pair[0].row_hash);
    }
});

each_backend!(a_row_altered_in_the_database_is_named, |backend| {
    let (store, _cleanup) = chained_store(backend, 30).await;
    let id = id_at(&store, Chain::UsageLog, 12).await;
    exec(&store, &format!("UPDATE usage_log SET reason = 'ok', allowed = TRUE WHERE id = {id}")).await;
    let report = verify_all(&store).await;
    assert_eq!(first_break(&report), (Chain::UsageLog, Damage::Altered, Some(id)));
    assert_eq!(report.chains[0].problems.len(), 1, "one edit, one report: {report:#?}");
    assert_eq!(report.rows_checked, 33, "the rows after it are still checked");

    // The metadata too, and the admin trail (its append-only trigger
    // dropped first, as someone with database access could).
    let (store, _cleanup) = chained_store(backend, 10).await;
    let id = id_at(&store, Chain::UsageLog, 3).await;
    let meta = if backend == Backend::Postgres {
        "'{\"metadata.intent\": \"changed\"}'::jsonb"
    } else {
        "'{\"metadata.intent\": \"changed\"}'"
    };
    exec(&store, &format!("UPDATE usage_log SET meta = {meta} WHERE id = {id}")).await;
    let admin_id = id_at(&store, Chain::AdminAudit, 2).await;
    let drop = if backend == Backend::Postgres {
        "DROP TRIGGER admin_audit_no_update ON admin_audit"
    } else {
        "DROP TRIGGER admin_audit_no_update"
    };
    exec(&store, drop).await;
    exec(&store, &format!("UPDATE admin_audit SET target = 'someone else' WHERE id = {admin_id}")).await;
    let report = verify_all(&store).await;
    assert_eq!(first_break(&report), (Chain::UsageLog, Damage::Altered, Some(id)));
    let admin = &report.chains[1].problems;
    assert_eq!((admin.len(), admin[0].kind, admin[0].id), (1, Damage::Altered, Some(admin_id)), "{report:#?}");
});

each_backend!(a_row_whose_contributions_are_cleared_or_edited_is_named, |backend| {
    // Rows at odd positions record contributions (encoding version 2).
    for edit in ["NULL", "'[]'", "'[{\"rule\":\"contains_personal_data\",\"score\":1}]'"] {
        let (store, _cleanup) = chained_store(backend, 10).await;
        let id = id_at(&store, Chain::UsageLog, 3).await;
        let value =
            if backend == Backend::Postgres && edit != "NULL" { format!("{edit}::jsonb") } else { edit.to_owned() };
        exec(&store, &format!("UPDATE usage_log SET contributions = {value} WHERE id = {id}")).await;
        let report = verify_all(&store).await;
        assert_eq!(first_break(&report), (Chain::UsageLog, Damage::Altered, Some(id)), "{edit}");
        assert_eq!(report.chains[0].problems.len(), 1, "{edit}: {report:#?}");
    }
});

each_backend!(a_row_whose_shadow_record_is_cleared_or_edited_is_named, |backend| {
    // Rows at positions 1, 4, 7, … record shadow results (encoding v3).
    let forged = r#"'{"rules":[],"outcome":{"allowed":true,"risk_score":0,"reason":"ok"}}'"#;
    for edit in ["NULL", forged] {
        let (store, _cleanup) = chained_store(backend, 10).await;
        let id = id_at(&store, Chain::UsageLog, 4).await;
        let value =
            if backend == Backend::Postgres && edit != "NULL" { format!("{edit}::jsonb") } else { edit.to_owned() };
        exec(&store, &format!("UPDATE usage_log SET shadow = {value} WHERE id = {id}")).await;
        let report = verify_all(&store).await;
        assert_eq!(first_break(&report), (Chain::UsageLog, Damage::Altered, Some(id)), "{edit}");
        // Adding a shadow record to a row that had none is caught too.
        let (store, _cleanup) = chained_store(backend, 10).await;
        let id = id_at(&store, Chain::UsageLog, 5).await;
        let value = if backend == Backend::Postgres { format!("{forged}::jsonb") } else { forged.to_owned() };
        exec(&store, &format!("UPDATE usage_log SET shadow = {value} WHERE id = {id}")).await;
        assert_eq!(first_break(&verify_all(&store).await), (Chain::UsageLog, Damage::Altered, Some(id)));
    }
});

each_backend!(a_row_removed_from_the_database_is_named, |backend| {
    let (store, _cleanup) = chained_store(backend, 30).await;
    let next = id_at(&store, Chain::UsageLog, 13).await;
    exec(&store, "DELETE FROM usage_log WHERE chain_seq = 12").await;
    let report = verify_all(&store).await;
    assert_eq!(first_break(&report), (Chain::UsageLog, Damage::Removed, Some(next)));
    let p = report.first_break.unwrap();
    assert_eq!((p.seq, p.rows), (Some(13), 1));

    // The first row, and the last (the head still records it).
    let (store, _cleanup) = chained_store(backend, 30).await;
    exec(&store, "DELETE FROM usage_log WHERE chain_seq = 1").await;
    exec(&store, "DELETE FROM usage_log WHERE chain_seq = 30").await;
    let report = verify_all(&store).await;
    let kinds: Vec<_> = report.chains[0].problems.iter().map(|p| (p.kind, p.seq)).collect();
    assert_eq!(kinds, vec![(Damage::Removed, Some(2)), (Damage::Removed, Some(30))], "{report:#?}");
});

each_backend!(a_row_inserted_into_the_database_is_named, |backend| {
    let (store, _cleanup) = chained_store(backend, 30).await;
    // Make room at position 12 (in two steps, so the unique index holds
    // at every row), then copy row 11 in as a forged row linked to it.
    exec(&store, "UPDATE usage_log SET chain_seq = -chain_seq - 1 WHERE chain_seq >= 12").await;
    exec(&store, "UPDATE usage_log SET chain_seq = -chain_seq WHERE chain_seq < 0").await;
    exec(
        &store,
        "INSERT INTO usage_log (decision_id, request_id, customer_id, api_key_id, model, operation, meta, risk_score, \
         allowed, status, reason, policy_version, latency_us, created_at, chain_seq, prev_hash, row_hash) \
         SELECT decision_id, 'forged', customer_id, api_key_id, model, operation, meta, 0, TRUE, 'allowed', 'ok', \
         policy_version, latency_us, created_at, 12, row_hash, row_hash FROM usage_log WHERE chain_seq = 11",
    )
    .await;
    let forged = id_at(&store, Chain::UsageLog, 12).await;
    let report = verify_all(&store).await;
    assert_eq!(first_break(&report), (Chain::UsageLog, Damage::Inserted, Some(forged)));

    // A row without a chain position, and a row past the head.
    let (store, _cleanup) = chained_store(backend, 10).await;
    let copy = "INSERT INTO usage_log (decision_id, request_id, customer_id, api_key_id, model, operation, meta, \
        risk_score, allowed, status, reason, policy_version, latency_us, created_at, chain_seq, prev_hash, row_hash) \
        SELECT decision_id, 'forged', customer_id, api_key_id, model, operation, meta, risk_score, allowed, status, \
        reason, policy_version, latency_us, created_at";
    exec(&store, &format!("{copy}, NULL, NULL, NULL FROM usage_log WHERE chain_seq = 5")).await;
    exec(&store, &format!("{copy}, 11, row_hash, row_hash FROM usage_log WHERE chain_seq = 10")).await;
    let report = verify_all(&store).await;
    let problems = &report.chains[0].problems;
    assert!(problems.len() == 2 && problems.iter().all(|p| p.kind == Damage::Inserted), "{report:#?}");
});

each_backend!(rows_reordered_in_the_database_are_named, |backend| {
    let (store, _cleanup) = chained_store(backend, 30).await;
    let moved = id_at(&store, Chain::UsageLog, 13).await;
    exec(&store, "UPDATE usage_log SET chain_seq = -1 WHERE chain_seq = 12").await;
    exec(&store, "UPDATE usage_log SET chain_seq = 12 WHERE chain_seq = 13").await;
    exec(&store, "UPDATE usage_log SET chain_seq = 13 WHERE chain_seq = -1").await;
    let report = verify_all(&store).await;
    assert_eq!(first_break(&report), (Chain::UsageLog, Damage::Reordered, Some(moved)));
    assert_eq!(report.chains[0].problems.len(), 1, "one move, one report: {report:#?}");
});

each_backend!(verify_on_the_command_line_exits_1_and_names_the_break, |backend| {
    let (url, _cleanup) = fresh_url(backend).await;
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let now = warden_server::store::now();
    store.insert_audit(&(0..20).map(|i| record(now, i)).collect::<Vec<_>>()).await.unwrap();
    let bin = env!("CARGO_BIN_EXE_warden");
    let run = |format: &str| {
        std::process::Command::new(bin)
            .args(["audit", "verify", "--database-url", &url, "--format", format])
            .output()
            .unwrap()
    };
    let ok = run("human");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(text.contains("usage_log: 20 row(s) checked") && text.contains("every link holds"), "{text}");
    let id = id_at(&store, Chain::UsageLog, 7).await;
    exec(&store, &format!("UPDATE usage_log SET risk_score = 0 WHERE id = {id}")).await;
    let broken = run("json");
    assert_eq!(broken.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&broken.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_break"]["kind"], "altered");
    assert_eq!(report["first_break"]["id"], id);
    assert_eq!(report["rows_checked"], 20);
    let human = run("human");
    assert_eq!(human.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&human.stdout).contains(&format!("altered at row id {id}")));
    // The result is recorded for the status endpoint.
    let last = store.last_verification().await.unwrap().unwrap();
    assert_eq!((last.source.as_str(), last.ok, last.rows_checked), ("cli", Some(false), Some(20)));
    // A time range walks only the rows in it (all rows here are `now`).
    let later = (now + chrono::Duration::seconds(1)).to_rfc3339();
    let out = std::process::Command::new(bin)
        .args(["audit", "verify", "--database-url", &url, "--format", "json", "--from", &later])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["chains"][0]["rows_checked"], 0);
    store.close().await;
});

each_backend!(two_instances_writing_at_once_leave_one_valid_chain, |backend| {
    let (url, _cleanup) = fresh_url(backend).await;
    let options = warden_server::server::Options {
        default_quota: warden_server::rate_limit::Quota { requests: 1_000_000, window: Duration::from_secs(60) },
        ..TestApp::options()
    };
    let first = Instance::start_with(&url, &options).await;
    let second = Instance::start_with(&url, &options).await;
    let (key, _, _) =
        crate::support::create_key(&first.state.store, "app@example.com", warden_server::store::Role::App).await;
    let (admin, _, _) =
        crate::support::create_key(&first.state.store, "admin@example.com", warden_server::store::Role::Admin).await;
    let per_instance = 300usize;
    let send = |instance: &Instance, i: usize| {
        let body = if i % 2 == 0 {
            r#"{"model":"gpt-4","operation":"classify","metadata":{"contains_personal_data":true}}"#
        } else {
            r#"{"model":"gpt-4","operation":"classify"}"#
        };
        let req = Request::post("/v1/check")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let router = instance.router.clone();
        async move {
            use tower::ServiceExt as _;
            router.oneshot(req).await.unwrap().status().as_u16()
        }
    };
    let toggle = |instance: &Instance, enabled: bool| {
        let req = Request::patch("/api/admin/policies/approved_models")
            .header("authorization", format!("Bearer {admin}"))
            .header("content-type", "application/json")
            .body(Body::from(format!(r#"{{"enabled": {enabled}}}"#)))
            .unwrap();
        let router = instance.router.clone();
        async move {
            use tower::ServiceExt as _;
            router.oneshot(req).await.unwrap().status().as_u16()
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..per_instance {
        tasks.spawn(send(&first, i));
        tasks.spawn(send(&second, i));
        if i % 60 == 0 {
            tasks.spawn(toggle(&first, true));
            tasks.spawn(toggle(&second, false));
        }
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    let store = &first.state.store;
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.count_audit().await.unwrap() < (2 * per_instance) as i64 {
        assert!(Instant::now() < deadline, "the audit rows were not all written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = verify_all(store).await;
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.chains[0].rows_checked, (2 * per_instance) as u64);
    assert_eq!(store.chain_head(Chain::UsageLog).await.unwrap().seq, (2 * per_instance) as i64);
    // 2 customers, 2 keys and 10 toggles, from both instances, on one
    // admin chain.
    assert_eq!(report.chains[1].rows_checked, 2 + 2 + 2 * 5);
});

each_backend!(prune_writes_a_checkpoint_that_verify_starts_from, |backend| {
    let (store, _cleanup) = fresh_store(backend).await;
    let now = warden_server::store::now();
    let old = now - chrono::Duration::days(100);
    let mut batch: Vec<AuditRecord> = (0..25).map(|i| record(old, i)).collect();
    batch.extend((0..15).map(|i| record(now, i)));
    store.insert_audit(&batch).await.unwrap();
    let last_old = rows(&store, Chain::UsageLog).await[24].clone();
    let pruned = store.prune_audit(now - chrono::Duration::days(90)).await.unwrap();
    assert_eq!(pruned.chained, 25);
    assert_eq!(pruned.checkpoint, Some((25, last_old.row_hash.clone())));
    assert_eq!(store.count_audit().await.unwrap(), 15);
    let report = verify_all(&store).await;
    assert!(report.ok, "{report:#?}");
    let usage = &report.chains[0];
    assert_eq!((usage.start, usage.from_seq, usage.rows_checked), (verify::Start::Checkpoint, 26, 15));
    // The prune is on the admin chain, which still verifies.
    let trail = store.admin_audit(1, 10).await.unwrap();
    assert_eq!(trail.items[0].action, "audit.prune");
    // Pruning again with nothing old enough changes nothing.
    let again = store.prune_audit(now - chrono::Duration::days(90)).await.unwrap();
    assert_eq!(again, warden_server::store::Pruned::default());
    // The first kept row removed after the checkpoint is still caught.
    exec(&store, "DELETE FROM usage_log WHERE chain_seq = 26").await;
    assert_eq!(first_break(&verify_all(&store).await).1, Damage::Removed);
    // A checkpoint Warden didn't write (to hide rows deleted by hand) is named.
    let (store, _cleanup) = chained_store(backend, 10).await;
    let row5 = rows(&store, Chain::UsageLog).await[4].clone();
    exec(&store, "DELETE FROM usage_log WHERE chain_seq <= 5").await;
    let at = if backend == Backend::Postgres { "now()" } else { "'2026-01-01T00:00:00Z'" };
    exec(
        &store,
        &format!(
            "INSERT INTO audit_checkpoint (chain, seq, row_hash, rows_pruned, pruned_before, created_at) \
             VALUES ('usage_log', 5, '{}', 5, {at}, {at})",
            row5.row_hash
        ),
    )
    .await;
    let report = verify_all(&store).await;
    assert_eq!(first_break(&report).1, Damage::UnrecordedCheckpoint);
});

each_backend!(spilled_rows_and_rows_after_a_restart_stay_on_the_chain, |backend| {
    let (url, _cleanup) = fresh_url(backend).await;
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let now = warden_server::store::now();
    let written: Vec<AuditRecord> = (0..10).map(|i| record(now, i)).collect();
    store.insert_audit(&written).await.unwrap();
    // Rows decided during an outage, spilled to a file: they are chained
    // when they are finally written, after the rows already there. The
    // file also holds three rows whose stalled write committed after all:
    // they are not written a second time.
    let dir = std::env::temp_dir().join(format!("warden-chain-spill-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let earlier = now - chrono::Duration::minutes(5);
    let mut text = String::new();
    for r in (0..20).map(|i| record(earlier, i)).chain(written[..3].iter().cloned()) {
        text.push_str(&serde_json::to_string(&r).unwrap());
        text.push('\n');
    }
    std::fs::write(dir.join(format!("audit-spill-{}.jsonl", Uuid::now_v7())), text).unwrap();
    assert_eq!(warden_server::audit::replay_spill(&store, &dir).await.unwrap(), 20);
    assert_eq!(store.count_audit().await.unwrap(), 30, "no decision twice");
    store.close().await;
    // A restart: a new process (pool) carries on from the stored head.
    let restarted = Store::connect(&url).await.unwrap();
    restarted.migrate().await.unwrap();
    restarted.insert_audit(&(0..5).map(|i| record(now, i)).collect::<Vec<_>>()).await.unwrap();
    let report = verify_all(&restarted).await;
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.chains[0].rows_checked, 35);
    assert_eq!(restarted.chain_head(Chain::UsageLog).await.unwrap().seq, 35);
    let _ = std::fs::remove_dir_all(dir);
});

each_backend!(the_head_endpoint_proves_the_log_was_not_cut_short, |backend| {
    let app = TestApp::new(backend).await;
    let admin = |method: &str, path: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", app.admin_key))
            .body(Body::empty())
            .unwrap()
    };
    for _ in 0..5 {
        let (status, _, _) = app.check(&app.app_key, r#"{"model":"gpt-4","operation":"classify"}"#).await;
        assert_eq!(status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.store.count_audit().await.unwrap() < 5 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _, head) = app.send(admin("GET", "/api/admin/audit/head")).await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(head["usage_log"]["seq"], 5);
    let recorded = (head["usage_log"]["seq"].as_i64().unwrap(), head["usage_log"]["hash"].as_str().unwrap().to_owned());
    assert_eq!(recorded.1.len(), 64);
    assert!(head["usage_log"]["last_id"].is_i64() && head["admin_audit"]["seq"].is_i64(), "{head}");
    // Later, the recorded row is still at its position with its hash.
    for _ in 0..3 {
        app.check(&app.app_key, r#"{"model":"gpt-4","operation":"classify"}"#).await;
    }
    let row = app.store.chain_page(Chain::UsageLog, recorded.0 - 1, recorded.0, 1).await.unwrap();
    assert_eq!(row[0].row_hash, recorded.1);
    // A verification run through the API, and its result in the status.
    let (status, _, _) = app.send(admin("GET", "/api/admin/audit/verification")).await;
    assert_eq!(status, 404);
    let (status, _, body) = app.send(admin("POST", "/api/admin/audit/verify")).await;
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let result = loop {
        let (status, _, body) = app.send(admin("GET", "/api/admin/audit/verification")).await;
        if status == 200 && body["finished_at"].is_string() {
            break body;
        }
        assert!(Instant::now() < deadline, "the verification did not finish: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((result["ok"].clone(), result["source"].clone()), (Value::Bool(true), Value::from("api")));
    let (_, _, status) = app.send(admin("GET", "/api/admin/status")).await;
    assert_eq!(status["audit_verification"]["ok"], true, "{status}");
    // App keys can't read the head.
    let req = Request::get("/api/admin/audit/head")
        .header("authorization", format!("Bearer {}", app.app_key))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(req).await.0, 403);
});

/// How many rows [`verify_speed`] writes: `WARDEN_VERIFY_SPEED_ROWS`, or a
/// million.
fn verify_speed_rows() -> usize {
    std::env::var("WARDEN_VERIFY_SPEED_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000)
}

/// Ignored because it is a measurement (a million rows, minutes in a debug
/// build), not a check; README's "Audit integrity" figure comes from it:
/// `cargo test --release -p warden-server --test it audit_chain::verify_speed -- --ignored --nocapture`
/// (with WARDEN_TEST_POSTGRES_URL for Postgres too): fills a table with a
/// million chained rows and prints how fast `verify` walks it. Not a
/// timed assertion: the figure is for the README. CI runs it too, on
/// `WARDEN_VERIFY_SPEED_ROWS=5000` rows in the debug build, so the
/// measurement keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test: a million rows; .ci/run runs it on 5,000 (WARDEN_VERIFY_SPEED_ROWS)"]
async fn verify_speed() {
    for backend in crate::support::backends() {
        let (store, _cleanup) = fresh_store(backend).await;
        let now = warden_server::store::now();
        let batch: Vec<AuditRecord> = (0..512).map(|i| record(now, i)).collect();
        let rows = verify_speed_rows();
        let filling = Instant::now();
        let mut n = 0;
        while n < rows {
            let take = batch.len().min(rows - n);
            store.insert_audit(&batch[..take]).await.unwrap();
            n += take;
        }
        let filled = filling.elapsed();
        let report = verify_all(&store).await;
        assert!(report.ok);
        assert_eq!(report.rows_checked, rows as u64);
        println!(
            "{backend:?}: {} rows written in {:.1} s; verified in {:.1} s: {} rows/minute",
            report.rows_checked,
            filled.as_secs_f64(),
            report.elapsed_ms as f64 / 1000.0,
            report.rows_per_minute
        );
    }
}
