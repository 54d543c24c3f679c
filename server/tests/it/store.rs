//! The storage layer on both backends: concurrent start-up, the audit
//! writer surviving a database failure without losing rows, retention.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use uuid::Uuid;
use warden_server::audit::{self, OnFull};
use warden_server::metrics::Metrics;
use warden_server::store::{AuditRecord, Store, StoreError};

fn record(created_at: chrono::DateTime<chrono::Utc>) -> AuditRecord {
    crate::support::audit_record(created_at)
}

each_backend!(two_processes_starting_at_once_on_a_new_database_is_safe, |backend| {
    let (url, _cleanup) = crate::support::fresh_url(backend).await;
    let bin = env!("CARGO_BIN_EXE_warden");
    let spawn = || std::process::Command::new(bin).args(["migrate", "--database-url", &url]).output();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.count_audit().await.unwrap(), 0);
    store.close().await;
});

each_backend!(the_writer_keeps_rows_while_the_database_fails_and_writes_them_after, |backend| {
    let (store, _cleanup) = crate::support::fresh_store(backend).await;
    let metrics = Arc::new(Metrics::new());
    let (queue, writer) = audit::channel(store.clone(), metrics.clone(), 100, OnFull::Block);
    // Make every insert fail: the table is not where the writer expects it.
    store_exec(&store, "ALTER TABLE usage_log RENAME TO usage_log_away").await;
    let (stop, rx) = watch::channel(false);
    let handle = tokio::spawn(writer.run(rx));
    for _ in 0..5 {
        queue.push(record(warden_server::store::now())).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while queue.writer_healthy() {
        assert!(tokio::time::Instant::now() < deadline, "the writer never noticed the failure");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(metrics.render(0).contains("warden_audit_write_failures_total"));
    // The database recovers; stop, and the writer still delivers everything.
    store_exec(&store, "ALTER TABLE usage_log_away RENAME TO usage_log").await;
    let _ = stop.send(true);
    let written = tokio::time::timeout(Duration::from_secs(20), handle).await.unwrap().unwrap();
    assert_eq!(written, 5);
    assert!(queue.writer_healthy());
    assert_eq!(store.count_audit().await.unwrap(), 5);
});

async fn store_exec(store: &Store, sql: &str) {
    let result: Result<(), StoreError> = store.execute_raw(sql).await;
    result.unwrap();
}

each_backend!(prune_deletes_only_old_rows, |backend| {
    let (store, _cleanup) = crate::support::fresh_store(backend).await;
    let now = warden_server::store::now();
    let old = now - chrono::Duration::days(100);
    store.insert_audit(&[record(old), record(old), record(now)]).await.unwrap();
    let deleted = store.prune_audit(now - chrono::Duration::days(90)).await.unwrap();
    assert_eq!(deleted.chained, 2);
    assert_eq!(store.count_audit().await.unwrap(), 1);
});

each_backend!(large_batches_are_split_to_fit_bind_limits, |backend| {
    let (store, _cleanup) = crate::support::fresh_store(backend).await;
    let now = warden_server::store::now();
    let rows: Vec<_> = (0..1234).map(|_| record(now)).collect();
    store.insert_audit(&rows).await.unwrap();
    assert_eq!(store.count_audit().await.unwrap(), 1234);
});

each_backend!(duplicate_emails_are_conflicts, |backend| {
    let (store, _cleanup) = crate::support::fresh_store(backend).await;
    store.create_customer("a", "a@example.com", None).await.unwrap();
    assert!(matches!(store.create_customer("b", "a@example.com", None).await, Err(StoreError::Conflict(_))));
    let same = store.customer_for_email("a@example.com", "ignored").await.unwrap();
    assert_eq!(same.name, "a");
});

each_backend!(a_row_the_database_refuses_does_not_block_the_others, |backend| {
    let (store, _cleanup) = crate::support::fresh_store(backend).await;
    let metrics = Arc::new(Metrics::new());
    let (queue, writer) = audit::channel(store.clone(), metrics.clone(), 100, OnFull::Block);
    let (stop, rx) = watch::channel(false);
    let handle = tokio::spawn(writer.run(rx));
    let now = warden_server::store::now();
    // Postgres refuses NUL in text and JSON (SQLite stores it): the writer
    // must find the bad row, write it without metadata, and go on.
    let mut bad = record(now);
    bad.model = Some("nul\u{0}model".into());
    bad.meta = serde_json::json!({"metadata.intent": "a\u{0}b"});
    let bad_id = bad.decision_id;
    for r in [record(now), bad, record(now)] {
        queue.push(r).await.unwrap();
    }
    let _ = stop.send(true);
    assert_eq!(tokio::time::timeout(Duration::from_secs(20), handle).await.unwrap().unwrap(), 3);
    assert_eq!(store.count_audit().await.unwrap(), 3);
    assert!(!metrics.render(0).contains("warden_audit_rows_dropped_total 1"));
    let rows = store.recent_audit(10).await.unwrap();
    let stored = rows.iter().find(|r| r.decision_id == bad_id).unwrap();
    if backend == crate::support::Backend::Postgres {
        assert_eq!(
            (stored.model.clone(), stored.meta.0.clone()),
            (None, serde_json::json!({})),
            "written without its metadata"
        );
    }
});

each_backend!(rows_spill_to_a_file_when_the_database_stays_down_at_shutdown, |backend| {
    let (store, _cleanup) = crate::support::fresh_store(backend).await;
    let dir = std::env::temp_dir().join(format!("warden-spill-{}", Uuid::new_v4().simple()));
    let spill = audit::Spill { dir: dir.clone(), drain_timeout: Duration::from_millis(300) };
    let (queue, writer) = audit::channel(store.clone(), Arc::new(Metrics::new()), 100, OnFull::Block);
    let writer = writer.with_spill(spill);
    store.execute_raw("ALTER TABLE usage_log RENAME TO usage_log_away").await.unwrap();
    let (stop, rx) = watch::channel(false);
    let handle = tokio::spawn(writer.run(rx));
    for _ in 0..7 {
        queue.push(record(warden_server::store::now())).await.unwrap();
    }
    let _ = stop.send(true);
    // Shutdown doesn't hang: past the drain timeout the rows go to a file.
    let written = tokio::time::timeout(Duration::from_secs(20), handle).await.unwrap().unwrap();
    assert_eq!(written, 0);
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::read_to_string(&files[0]).unwrap().lines().count(), 7);
    // The next start writes them and removes the file.
    store.execute_raw("ALTER TABLE usage_log_away RENAME TO usage_log").await.unwrap();
    assert_eq!(audit::replay_spill(&store, &dir).await.unwrap(), 7);
    assert_eq!(store.count_audit().await.unwrap(), 7);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    assert_eq!(audit::replay_spill(&store, &dir).await.unwrap(), 0, "replaying twice writes nothing twice");
    let _ = std::fs::remove_dir_all(dir);
});
