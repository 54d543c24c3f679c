//! Replay: recorded decisions re-decided against a candidate set, with a
//! known number of planted changes found exactly, and the rows that can't
//! be replayed faithfully counted with their reason. On SQLite and
//! Postgres.

use std::sync::Arc;

use serde_json::{Value, json};
use warden_engine::Policy;
use warden_server::replay::{ReplayReport, replay};
use warden_server::store::ReplayRange;

use crate::support::{TestApp, policy_dir_copy, policy_from};

const PII: &str = r#"{"model":"gpt-4","operation":"classify","metadata":{"contains_personal_data":true}}"#;
const PLAIN: &str = r#"{"model":"gpt-4","operation":"classify"}"#;
const EXTERNAL: &str = r#"{"model":"gpt-4","operation":"classify","metadata":{"is_external_model":true}}"#;
const WITH_INTENT: &str = r#"{"model":"gpt-4","operation":"classify","metadata":{"intent":"spam_detection"}}"#;
const CONTENT: &str = r#"{"model":"gpt-4","operation":"classify","prompt":"hello"}"#;

/// The default policies with `edit` applied to `risk.warden` and `extra`
/// added as `extra.warden`.
fn candidate(edit: impl Fn(&str) -> String, extra: &str) -> Arc<Policy> {
    let dir = policy_dir_copy();
    let risk = std::fs::read_to_string(dir.join("risk.warden")).unwrap();
    std::fs::write(dir.join("risk.warden"), edit(&risk)).unwrap();
    std::fs::write(dir.join("extra.warden"), extra).unwrap();
    Arc::new(policy_from(&dir))
}

/// An app that decided 5 personal-data requests (blocked), 7 plain ones
/// (allowed), 3 external ones (blocked at exactly 50), 2 with an intent
/// (allowed) and 2 with content (rejected); their decision ids by kind.
async fn recorded(app: &mut TestApp) -> std::collections::BTreeMap<&'static str, Vec<Value>> {
    let mut ids = std::collections::BTreeMap::new();
    for (kind, body, n) in [
        ("pii", PII, 5),
        ("plain", PLAIN, 7),
        ("external", EXTERNAL, 3),
        ("intent", WITH_INTENT, 2),
        ("content", CONTENT, 2),
    ] {
        for _ in 0..n {
            let (_, _, answer) = app.check(&app.app_key, body).await;
            ids.entry(kind).or_insert_with(Vec::new).push(answer["decision_id"].clone());
        }
    }
    app.drain_audit().await;
    ids
}

fn ids(list: &[uuid::Uuid]) -> Vec<Value> {
    list.iter().map(|id| json!(id)).collect()
}

each_backend!(a_replay_finds_exactly_the_changes_planted, |backend| {
    let mut app = TestApp::new(backend).await;
    let decided = recorded(&mut app).await;
    // External models now score 30 (under the threshold): the 3 external
    // decisions flip to allowed. Personal data now scores 80: the 5 stay
    // blocked with another score. Nothing else changes.
    let rescored = candidate(|t| t.replace("score +50", "score +30").replace("score +70", "score +80"), "");
    let report: ReplayReport = replay(&app.store, rescored, ReplayRange::default()).await.unwrap();
    assert_eq!(report.rows, 19, "{report:#?}");
    assert_eq!(report.not_replayed.total, 2);
    assert_eq!(report.not_replayed.rejected_before_evaluation, 2);
    assert_eq!(report.replayed, 17);
    assert_eq!(
        (
            report.unchanged,
            report.allowed_to_blocked,
            report.blocked_to_allowed,
            report.score_changed,
            report.reason_changed
        ),
        (9, 0, 3, 5, 0),
        "{report:#?}"
    );
    assert_eq!(ids(&report.examples.blocked_to_allowed), decided["external"]);
    assert_eq!(ids(&report.examples.score_changed), decided["pii"]);
    assert_eq!(ids(&report.examples.not_replayed), decided["content"]);
    assert_eq!(report.rules["external_model"].blocked_to_allowed, 3);
    assert_eq!(report.rules["contains_personal_data"].score_changed, 5);
    assert_eq!(report.rules.len(), 2, "{:?}", report.rules);
    assert!(report.changed());
    // The set as served changes nothing.
    let same = replay(&app.store, Arc::new(crate::support::default_policy()), ReplayRange::default()).await.unwrap();
    assert_eq!((same.replayed, same.unchanged, same.changed()), (17, 17, false), "{same:#?}");
    // A deny on gpt-4 blocks every allowed decision (9), with its reason.
    let deny =
        candidate(|t| t.to_owned(), r#"rule no_gpt4 { description "d" when model == "gpt-4" deny reason retired }"#);
    let report = replay(&app.store, deny, ReplayRange::default()).await.unwrap();
    assert_eq!((report.allowed_to_blocked, report.unchanged, report.reason_changed), (9, 0, 8), "{report:#?}");
    assert_eq!(report.rules["no_gpt4"].allowed_to_blocked, 9);
    // A time range and a customer narrow the rows.
    let later = ReplayRange { from: Some(warden_server::store::now()), ..ReplayRange::default() };
    assert_eq!(replay(&app.store, Arc::new(crate::support::default_policy()), later).await.unwrap().rows, 0);
    let other = ReplayRange { customer_id: Some(uuid::Uuid::new_v4()), ..ReplayRange::default() };
    assert_eq!(replay(&app.store, Arc::new(crate::support::default_policy()), other).await.unwrap().rows, 0);
    let mine = ReplayRange { customer_id: Some(app.customer_id), ..ReplayRange::default() };
    assert_eq!(replay(&app.store, Arc::new(crate::support::default_policy()), mine).await.unwrap().rows, 19);
});

each_backend!(rows_a_candidate_cannot_decide_faithfully_are_counted_never_guessed, |backend| {
    let mut app = TestApp::new(backend).await;
    let decided = recorded(&mut app).await;
    // A field the served set never declared: no row recorded it.
    let reads_new = candidate(
        |t| t.to_owned(),
        "input { metadata.department: string? }\nrule research { description \"d\" when metadata.department == \"research\" deny reason research }\n",
    );
    let report = replay(&app.store, reads_new, ReplayRange::default()).await.unwrap();
    assert_eq!(report.replayed, 0, "{report:#?}");
    assert_eq!(report.not_replayed.field_not_recorded.get("metadata.department"), Some(&17));
    // A declared optional field the served set recorded when given: rows
    // without it did not give it, so they replay.
    let reads_intent = candidate(
        |t| t.to_owned(),
        "rule spam { description \"d\" when metadata.intent == \"spam_detection\" score +60 reason spam }\n",
    );
    let report = replay(&app.store, reads_intent.clone(), ReplayRange::default()).await.unwrap();
    assert_eq!((report.replayed, report.allowed_to_blocked), (17, 2), "{report:#?}");
    assert_eq!(ids(&report.examples.allowed_to_blocked), decided["intent"]);
    // Without the record of what the served version declared, a row
    // lacking the field can't tell absent from unrecorded: counted.
    app.store.execute_raw("DELETE FROM policy_version").await.unwrap();
    let report = replay(&app.store, reads_intent, ReplayRange::default()).await.unwrap();
    assert_eq!(
        (report.replayed, report.not_replayed.field_not_recorded.get("metadata.intent")),
        (2, Some(&15)),
        "{report:#?}"
    );
    // A changed default: rows holding the old one may not have given it.
    let app2 = TestApp::new(backend).await;
    let mut app2 = app2;
    recorded(&mut app2).await;
    let flipped_default = Arc::new(policy_from(&{
        let dir = policy_dir_copy();
        let base = std::fs::read_to_string(dir.join("base.warden")).unwrap();
        std::fs::write(
            dir.join("base.warden"),
            base.replace("metadata.is_external_model: bool = false", "metadata.is_external_model: bool = true"),
        )
        .unwrap();
        dir
    }));
    let report = replay(&app2.store, flipped_default, ReplayRange::default()).await.unwrap();
    assert_eq!(report.not_replayed.default_changed.get("metadata.is_external_model"), Some(&14), "{report:#?}");
    assert_eq!((report.replayed, report.unchanged), (3, 3), "the external rows gave the field: {report:#?}");
});
