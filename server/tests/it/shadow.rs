//! Shadow rules through the decision service: `/v1/check` answers with the
//! shadow matches and outcome, the audit row records them on the chain
//! (encoding version 3), and `/metrics` counts matches and flips. On
//! SQLite and Postgres.

use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use uuid::Uuid;
use warden_server::audit::verify::{self, Range};

use crate::support::{TestApp, policy_dir_copy};

/// The default policies plus a shadow deny rule on personal data and a
/// shadow allow rule for an internal model.
fn options_with_shadow_rules() -> warden_server::server::Options {
    let dir = policy_dir_copy();
    std::fs::write(
        dir.join("trial.warden"),
        r#"
rule strict_pii {
  description "block personal data outright (trial)"
  mode shadow
  when metadata.contains_personal_data
  deny
  reason strict_pii
}

rule internal_model {
  description "exempt the internal model (trial)"
  mode shadow
  when model == "internal"
  allow
  reason internal_model
}
"#,
    )
    .unwrap();
    warden_server::server::Options { policy_dir: Some(dir), ..TestApp::options() }
}

each_backend!(shadow_rules_are_answered_audited_on_the_chain_and_counted, |backend| {
    let mut app = TestApp::with_options(backend, options_with_shadow_rules()).await;
    // Personal data on an external model: 70 + 50 blocks already; the
    // shadow deny agrees (no flip) and is reported.
    let pii = r#"{"model":"gpt-4","operation":"classify","metadata":{"contains_personal_data":true}}"#;
    let (status, _, blocked) = app.check(&app.app_key, pii).await;
    assert_eq!(status, 200, "{blocked}");
    assert_eq!(blocked["shadow"], json!([{"rule": "strict_pii", "effect": "deny", "score": 0}]), "{blocked}");
    assert_eq!(blocked["shadow_outcome"]["allowed"], json!(false));
    assert_eq!(blocked["shadow_outcome"]["reason"], json!("strict_pii"), "a deny gives the reason");
    // The internal model with personal data: blocked, but the shadow allow
    // would let it through (a flip, block to allow).
    let internal = r#"{"model":"internal","operation":"classify","metadata":{"contains_personal_data":true}}"#;
    let (_, _, flipped) = app.check(&app.app_key, internal).await;
    let enforced = (flipped["allowed"].clone(), flipped["risk_score"].clone(), flipped["reason"].clone());
    assert_eq!(flipped["shadow_outcome"]["allowed"], json!(false), "deny wins over allow in the shadow outcome too");
    assert_eq!(flipped["shadow"].as_array().unwrap().len(), 2, "{flipped}");
    // Without personal data the internal model is allowed either way.
    let (_, _, plain) = app.check(&app.app_key, r#"{"model":"internal","operation":"classify"}"#).await;
    assert_eq!(plain["allowed"], json!(true));
    assert_eq!(plain["shadow"], json!([{"rule": "internal_model", "effect": "allow", "score": 0}]));
    // A request no shadow rule touches carries neither field.
    let (_, _, none) = app.check(&app.app_key, r#"{"model":"gpt-4","operation":"classify"}"#).await;
    assert!(none.get("shadow").is_none() && none.get("shadow_outcome").is_none(), "{none}");
    // The shadow rules changed nothing enforced: the same request against
    // the default policies (no shadow rules) decides the same.
    let mut plain_app = TestApp::new(backend).await;
    let (_, _, reference) = plain_app.check(&plain_app.app_key, internal).await;
    assert_eq!(enforced, (reference["allowed"].clone(), reference["risk_score"].clone(), reference["reason"].clone()));
    plain_app.drain_audit().await;

    app.drain_audit().await;
    for answer in [&blocked, &flipped, &plain] {
        let id: Uuid = serde_json::from_value(answer["decision_id"].clone()).unwrap();
        let row = app.store.decision(id).await.unwrap().unwrap().row;
        let recorded = serde_json::to_value(row.shadow.expect("a shadow record").0).unwrap();
        assert_eq!(recorded["rules"], answer["shadow"], "as answered");
        assert_eq!(recorded["outcome"], answer["shadow_outcome"], "as answered");
    }
    let id: Uuid = serde_json::from_value(none["decision_id"].clone()).unwrap();
    assert!(app.store.decision(id).await.unwrap().unwrap().row.shadow.is_none());
    // Rows with and without shadow records on one chain verify; altering
    // a shadow record breaks it.
    let report = verify::verify(&app.store, Range::default()).await.unwrap();
    assert!(report.ok, "{report:#?}");

    let (_, _, metrics) = app.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(metrics.contains(r#"warden_shadow_matches_total{rule="strict_pii"} 2"#), "{metrics}");
    assert!(metrics.contains(r#"warden_shadow_matches_total{rule="internal_model"} 2"#), "{metrics}");
    assert!(metrics.contains(r#"warden_shadow_flips_total{direction="allow_to_block"} 0"#), "{metrics}");
    assert!(metrics.contains(r#"warden_shadow_flips_total{direction="block_to_allow"} 0"#), "{metrics}");
});

each_backend!(a_shadow_rule_that_would_flip_is_counted_each_way, |backend| {
    let dir = policy_dir_copy();
    std::fs::write(
        dir.join("trial.warden"),
        r#"
rule no_gpt4 {
  description "retire gpt-4 (trial)"
  mode shadow
  when model == "gpt-4"
  deny
  reason retired_model
}

rule exempt_eval {
  description "exempt evaluation traffic (trial)"
  mode shadow
  when operation == "eval"
  allow
  reason evaluation
}
"#,
    )
    .unwrap();
    let mut app =
        TestApp::with_options(backend, warden_server::server::Options { policy_dir: Some(dir), ..TestApp::options() })
            .await;
    let (_, _, a) = app.check(&app.app_key, r#"{"model":"gpt-4","operation":"classify"}"#).await;
    assert_eq!((a["allowed"].clone(), a["shadow_outcome"]["allowed"].clone()), (json!(true), json!(false)), "{a}");
    let blocked =
        r#"{"model":"claude","operation":"eval","metadata":{"contains_personal_data":true,"is_external_model":true}}"#;
    let (_, _, b) = app.check(&app.app_key, blocked).await;
    assert_eq!((b["allowed"].clone(), b["shadow_outcome"]["allowed"].clone()), (json!(false), json!(true)), "{b}");
    app.drain_audit().await;
    let (_, _, metrics) = app.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let metrics = metrics.as_str().unwrap();
    assert!(metrics.contains(r#"warden_shadow_flips_total{direction="allow_to_block"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"warden_shadow_flips_total{direction="block_to_allow"} 1"#), "{metrics}");
});
