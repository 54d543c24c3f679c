//! The daily rollup of the audit log, on both backends: after batches
//! written by the audit writer's insert, rows replayed from a spill file
//! (some of them already written) and the migration's backfill, it equals
//! a `GROUP BY` over `usage_log`; a prune leaves it as it was; the
//! overview's traffic figures come out of it per day, for today and for 7
//! days.

use chrono::{Duration, NaiveDate, TimeZone as _, Utc};
use uuid::Uuid;
use warden_server::store::{AuditRecord, Outcome, OutcomeCounts, RollupRow, Store};

use crate::support::{audit_record, fresh_store};

/// Row `i` of a varied set: three outcomes, three reasons, two models and
/// none, on `day` (at a time of day that moves with `i`).
fn varied(day: NaiveDate, i: usize) -> AuditRecord {
    let at = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap()) + Duration::seconds((i as i64 * 997) % 86_400);
    let mut r = audit_record(at);
    (r.outcome, r.reason) = match i % 4 {
        0 => (Outcome::Allowed, "ok".to_owned()),
        1 => (Outcome::Blocked, "contains_personal_data".to_owned()),
        2 => (Outcome::Blocked, "external_model".to_owned()),
        _ => (Outcome::Rejected, "forbidden_field".to_owned()),
    };
    r.allowed = r.outcome == Outcome::Allowed;
    r.model = match i % 3 {
        0 => Some("gpt-4".to_owned()),
        1 => Some("llama-3".to_owned()),
        _ => None,
    };
    r
}

async fn sorted_rollup(store: &Store) -> Vec<RollupRow> {
    let mut rows = store.rollup_rows().await.unwrap();
    rows.sort();
    rows
}

async fn sorted_log_groups(store: &Store) -> Vec<RollupRow> {
    let mut rows = store.rollup_of_log().await.unwrap();
    rows.sort();
    rows
}

each_backend!(the_rollup_equals_a_group_by_over_the_log_after_writes_and_a_spill_replay, |backend| {
    let (store, _cleanup) = fresh_store(backend).await;
    let today = warden_server::store::now().date_naive();
    // Batches spanning days (a batch written just after midnight holds
    // rows of two days) and groups repeated across batches.
    let rows: Vec<AuditRecord> = (0..300).map(|i| varied(today - Duration::days((i % 5) as i64), i)).collect();
    for batch in rows.chunks(37) {
        store.insert_audit(batch).await.unwrap();
    }
    let rollup = sorted_rollup(&store).await;
    assert_eq!(rollup, sorted_log_groups(&store).await);
    assert_eq!(rollup.iter().map(|r| r.count).sum::<i64>(), 300);
    assert!(rollup.iter().any(|r| r.model.is_none()) && rollup.iter().any(|r| r.model.as_deref() == Some("gpt-4")));
    // A spill file with new rows and three already written: only the new
    // ones are counted.
    let dir = std::env::temp_dir().join(format!("warden-rollup-spill-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut text = String::new();
    for r in (0..40).map(|i| varied(today - Duration::days(2), i)).chain(rows[..3].iter().cloned()) {
        text.push_str(&serde_json::to_string(&r).unwrap());
        text.push('\n');
    }
    std::fs::write(dir.join(format!("audit-spill-{}.jsonl", Uuid::now_v7())), text).unwrap();
    assert_eq!(warden_server::audit::replay_spill(&store, &dir).await.unwrap(), 40);
    let rollup = sorted_rollup(&store).await;
    assert_eq!(rollup, sorted_log_groups(&store).await);
    assert_eq!(rollup.iter().map(|r| r.count).sum::<i64>(), 340);
    let _ = std::fs::remove_dir_all(dir);
});

each_backend!(the_migration_fills_the_rollup_from_rows_already_there, |backend| {
    let (store, _cleanup) = fresh_store(backend).await;
    let today = warden_server::store::now().date_naive();
    let rows: Vec<AuditRecord> = (0..120).map(|i| varied(today - Duration::days((i % 9) as i64), i)).collect();
    store.insert_audit(&rows).await.unwrap();
    // As if the rows had been written by a release without the rollup:
    // the table and its migration record go, and the migration runs again.
    store.execute_raw("DROP TABLE usage_rollup").await.unwrap();
    store.execute_raw("DELETE FROM _sqlx_migrations WHERE version = 20261210000040").await.unwrap();
    store.migrate().await.unwrap();
    let rollup = sorted_rollup(&store).await;
    assert_eq!(rollup.iter().map(|r| r.count).sum::<i64>(), 120);
    assert_eq!(rollup, sorted_log_groups(&store).await);
});

each_backend!(a_prune_keeps_the_rollup_of_the_days_it_cut, |backend| {
    let (store, _cleanup) = fresh_store(backend).await;
    let today = warden_server::store::now().date_naive();
    let old: Vec<AuditRecord> = (0..30).map(|i| varied(today - Duration::days(40), i)).collect();
    let recent: Vec<AuditRecord> = (0..20).map(|i| varied(today, i)).collect();
    store.insert_audit(&old).await.unwrap();
    store.insert_audit(&recent).await.unwrap();
    let before = sorted_rollup(&store).await;
    let pruned = store.prune_audit(warden_server::store::now() - Duration::days(30)).await.unwrap();
    assert_eq!(pruned.chained, 30);
    assert_eq!(store.count_audit().await.unwrap(), 20);
    assert_eq!(sorted_rollup(&store).await, before, "the rollup describes traffic served, pruned or not");
    let cut = today - Duration::days(40);
    let kept: Vec<RollupRow> = before.into_iter().filter(|r| r.day != cut).collect();
    assert_eq!(kept, sorted_log_groups(&store).await, "days after the cut still equal the log");
});

each_backend!(traffic_counts_days_today_the_week_and_the_top_lists, |backend| {
    let (store, _cleanup) = fresh_store(backend).await;
    let today = NaiveDate::from_ymd_opt(2026, 3, 31).unwrap();
    let mut rows = Vec::new();
    // Today: 8 rows (2 of each kind). Five days ago: 4. Twenty days ago:
    // 4. Forty days ago (outside the chart): 4.
    for (days_ago, n) in [(0, 8), (5, 4), (20, 4), (40, 4)] {
        rows.extend((0..n).map(|i| varied(today - Duration::days(days_ago), i)));
    }
    store.insert_audit(&rows).await.unwrap();
    let t = store.traffic(today, 30).await.unwrap();
    assert_eq!(t.today, today);
    assert_eq!(t.today_counts, OutcomeCounts { allowed: 2, blocked: 4, rejected: 2 });
    assert_eq!(t.week_counts, OutcomeCounts { allowed: 3, blocked: 6, rejected: 3 });
    assert_eq!(t.days.len(), 30);
    assert_eq!(t.days.first().unwrap().day, today - Duration::days(29));
    assert_eq!(t.days.last().unwrap().day, today);
    assert_eq!(t.days.iter().map(|d| d.counts.total()).sum::<i64>(), 16);
    assert_eq!(t.days[9].counts, OutcomeCounts { allowed: 1, blocked: 2, rejected: 1 }, "twenty days ago");
    assert_eq!(t.days[10].counts, OutcomeCounts::default());
    // Blocked over 7 days: contains_personal_data at i = 1, 5 today and 1
    // five days ago; external_model at i = 2, 6 today and 2 five days ago.
    assert_eq!(t.top_block_reasons, vec![("contains_personal_data".to_owned(), 3), ("external_model".to_owned(), 3)]);
    // Models over 7 days: i % 3 == 0 is gpt-4 (0, 3, 6 today; 0, 3 five
    // days ago), 1 is llama-3 (1, 4, 7; 1), the rest have none.
    assert_eq!(t.top_models, vec![("gpt-4".to_owned(), 5), ("llama-3".to_owned(), 4)]);
});
