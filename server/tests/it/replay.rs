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
    // A field the candidate declares but no rule reads is still read
    // (type-checked): unrecorded by the served set, so not replayed.
    let declares_new = candidate(|t| t.to_owned(), "input { metadata.team: string? }\n");
    let report = replay(&app.store, declares_new, ReplayRange::default()).await.unwrap();
    assert_eq!(report.not_replayed.field_not_recorded.get("metadata.team"), Some(&17), "{report:#?}");
    // A forbidden name the served set accepted: the requests may have
    // carried it, undeclared, so nothing says they did not.
    let forbids_more = Arc::new(policy_from(&{
        let dir = policy_dir_copy();
        let base = std::fs::read_to_string(dir.join("base.warden")).unwrap();
        let more = base.replace("forbidden_fields [\"prompt\",", "forbidden_fields [\"secret\", \"prompt\",");
        std::fs::write(dir.join("base.warden"), more).unwrap();
        dir
    }));
    let report = replay(&app.store, forbids_more, ReplayRange::default()).await.unwrap();
    assert_eq!((report.replayed, report.not_replayed.forbidden_added.get("secret")), (0, Some(&17)), "{report:#?}");
    // Rows read in chunks of 2, ties on the time included, give the same
    // report as in one chunk.
    let same_time = warden_server::store::now();
    let tied: Vec<_> = (0..5).map(|_| crate::support::audit_record(same_time)).collect();
    app.store.insert_audit(&tied).await.unwrap();
    let whole = replay(&app.store, reads_intent.clone(), ReplayRange::default()).await.unwrap();
    let paged = warden_server::replay::replay_in_chunks(&app.store, reads_intent.clone(), ReplayRange::default(), 2)
        .await
        .unwrap();
    assert_eq!(whole.rows, 24);
    assert_eq!(
        (paged.rows, paged.replayed, paged.allowed_to_blocked, &paged.examples, &paged.not_replayed),
        (whole.rows, whole.replayed, whole.allowed_to_blocked, &whole.examples, &whole.not_replayed)
    );
    // Without the record of what the served version declared, absent
    // fields and defaults can't be told apart: nothing is replayed.
    app.store.execute_raw("DELETE FROM policy_version").await.unwrap();
    let report = replay(&app.store, reads_intent, ReplayRange::default()).await.unwrap();
    assert_eq!((report.replayed, report.not_replayed.version_not_recorded), (0, 22), "{report:#?}");
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
    // A default removed: the same rows can't say whether it was given.
    let no_default = Arc::new(policy_from(&{
        let dir = policy_dir_copy();
        let base = std::fs::read_to_string(dir.join("base.warden")).unwrap();
        let optional = base.replace("metadata.is_external_model: bool = false", "metadata.is_external_model: bool?");
        std::fs::write(dir.join("base.warden"), optional).unwrap();
        dir
    }));
    let report = replay(&app2.store, no_default, ReplayRange::default()).await.unwrap();
    assert_eq!(report.not_replayed.default_changed.get("metadata.is_external_model"), Some(&14), "{report:#?}");
});

async fn admin(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    crate::admin::call(app, &app.admin_key, method, path, body).await
}

each_backend!(the_admin_api_and_the_dashboard_replay_a_candidate_file, |backend| {
    let mut app = TestApp::new(backend).await;
    let decided = recorded(&mut app).await;
    let risk = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/risk.warden")).unwrap();
    let rescored = risk.replace("score +50", "score +30");
    let body = json!({"files": [{"name": "risk.warden", "text": rescored}], "since": "1d"});
    let (status, report) = admin(&app, "POST", "/api/admin/replay", Some(body)).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["rows"].clone(), report["blocked_to_allowed"].clone(), report["unchanged"].clone()),
        (json!(19), json!(3), json!(14))
    );
    assert_eq!(report["examples"]["blocked_to_allowed"], json!(decided["external"]));
    // `replace`: the file alone is the candidate (no input block: nothing
    // compiles).
    let (status, body) = admin(
        &app,
        "POST",
        "/api/admin/replay",
        Some(json!({"files": [{"name": "risk.warden", "text": rescored}], "replace": true})),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (422, Some("policy_invalid")), "{body}");
    assert!(body["diagnostics"].as_array().is_some_and(|d| !d.is_empty() && d[0]["severity"] == "error"), "{body}");
    // A file that does not compile: every diagnostic, with its position.
    let broken = json!({"files": [{"name": "risk.warden", "text": "rule x { when nope score +1 }"}]});
    let (status, body) = admin(&app, "POST", "/api/admin/replay", Some(broken)).await;
    assert_eq!((status, body["error"].as_str()), (422, Some("policy_invalid")), "{body}");
    assert!(body["diagnostics"][0]["position"].as_str().is_some_and(|p| p.starts_with("risk.warden:")), "{body}");
    // Bad requests name the field.
    for (bad, field) in [
        (json!({"files": []}), "files"),
        (json!({"files": [{"name": "../x.warden", "text": ""}]}), "files"),
        (json!({"files": [{"name": "x.txt", "text": ""}]}), "files"),
        (json!({"files": [{"name": "a.warden", "text": ""}], "since": "soon"}), "since"),
    ] {
        let (status, body) = admin(&app, "POST", "/api/admin/replay", Some(bad.clone())).await;
        assert_eq!((status, body["field"].as_str()), (422, Some(field)), "{bad}: {body}");
    }
    // One name twice: two texts for one file.
    let twice = json!({"files": [{"name": "a.warden", "text": ""}, {"name": "a.warden", "text": "x"}]});
    let (status, body) = admin(&app, "POST", "/api/admin/replay", Some(twice)).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("conflict")), "{body}");
    // `since` with `from`: the later start applies (here `from`, an hour
    // ahead: no decision).
    let ahead = (warden_server::store::now() + chrono::Duration::hours(1)).to_rfc3339();
    let both = json!({"files": [{"name": "risk.warden", "text": rescored}], "since": "1d", "from": ahead});
    let (status, body) = admin(&app, "POST", "/api/admin/replay", Some(both)).await;
    assert_eq!((status, body["rows"].clone()), (200, json!(0)), "{body}");
    // `from` not before `to`: an empty period, as the log's filters take it.
    let empty = json!({"files": [{"name": "risk.warden", "text": rescored}], "from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"});
    let (status, body) = admin(&app, "POST", "/api/admin/replay", Some(empty)).await;
    assert_eq!((status, body["rows"].clone()), (200, json!(0)), "{body}");
    // A period reaching before any time Warden can hold is a 422 too.
    let far = json!({"files": [{"name": "a.warden", "text": ""}], "since": "100000000years"});
    let (status, body) = admin(&app, "POST", "/api/admin/replay", Some(far)).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("since")), "{body}");
    let viewer =
        crate::support::create_key(&app.store, "viewer@example.com", warden_server::store::Role::Viewer).await.0;
    let v = crate::ui_support::sign_in(&app, &viewer).await;
    assert_eq!(v.get(&app, "/ui/rules/replay").await.status, 403);
    let refused = v.post(&app, "/ui/rules/replay", &[("name", "risk.warden"), ("text", "x"), ("since", "7d")]).await;
    assert_eq!(refused.status, 403);
    let ok = json!({"files": [{"name": "risk.warden", "text": rescored}]});
    assert_eq!(crate::admin::call(&app, &viewer, "POST", "/api/admin/replay", Some(ok)).await.0, 403);

    // The dashboard: start from a served file, replay, read the report.
    let s = crate::ui_support::sign_in(&app, &app.admin_key).await;
    let form = s.get(&app, "/ui/rules/replay?file=risk.warden").await;
    assert_eq!(form.status, 200);
    assert!(form.html.contains("rule external_model"), "prefilled with the served file: {}", form.html);
    let page = s
        .post(
            &app,
            "/ui/rules/replay",
            &[("name", "risk.warden"), ("text", &rescored), ("since", "7d"), ("customer", "")],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("What would change"), "{}", page.html);
    let id = decided["external"][0].as_str().unwrap();
    assert!(page.html.contains(&format!("/ui/logs/{id}")), "an example links to its decision: {}", page.html);
    let page = s.post(&app, "/ui/rules/replay", &[("name", "risk.warden"), ("text", "rule {"), ("since", "7d")]).await;
    assert!(page.html.contains("The candidate does not compile"), "{}", page.html);
    let rules = s.get(&app, "/ui/rules").await;
    assert!(rules.html.contains(r#"href="/ui/rules/replay""#), "{}", rules.html);
});
