//! The rules views: blocks per day and the customers that override a rule,
//! on SQLite and Postgres.

use chrono::Duration;
use warden_engine::RuleOverride;
use warden_server::store::{Outcome, now};

use crate::support::{audit_record, default_policy, fresh_store};

each_backend!(a_rules_blocks_are_counted_per_day_by_its_reason, |backend| {
    let (store, _cleanup) = fresh_store(backend).await;
    let today = now();
    let mut rows = vec![
        audit_record(today),
        audit_record(today),
        audit_record(today - Duration::days(2)),
        audit_record(today - Duration::days(40)),
    ];
    let mut other = audit_record(today);
    other.reason = "external_model".into();
    let mut allowed = audit_record(today);
    (allowed.outcome, allowed.allowed) = (Outcome::Allowed, true);
    rows.extend([other, allowed]);
    store.insert_audit(&rows).await.unwrap();
    let days = store.blocks_per_day("contains_personal_data", today - Duration::days(30)).await.unwrap();
    let day = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d").to_string();
    let expected = [(day(today), 2), (day(today - Duration::days(2)), 1)].into_iter().collect();
    assert_eq!(days, expected);
});

each_backend!(the_customers_overriding_a_rule_are_listed_by_name, |backend| {
    let (store, _cleanup) = fresh_store(backend).await;
    let policy = default_policy();
    let zed = store.create_customer("Zed", "zed@example.com", None).await.unwrap();
    let amy = store.create_customer("Amy", "amy@example.com", None).await.unwrap();
    let bob = store.create_customer("Bob", "bob@example.com", None).await.unwrap();
    let off = RuleOverride { enabled: Some(false), score: None };
    let scored = RuleOverride { enabled: None, score: Some(5) };
    store.set_customer_rule(&policy, zed.id, "external_model", off, None).await.unwrap();
    store.set_customer_rule(&policy, amy.id, "external_model", scored, None).await.unwrap();
    store.set_customer_rule(&policy, bob.id, "contains_personal_data", off, None).await.unwrap();
    let (items, total) = store.overrides_of_rule("external_model", 10).await.unwrap();
    let got: Vec<_> = items.iter().map(|(c, o)| (c.email.as_str(), o.rule)).collect();
    assert_eq!(got, [("amy@example.com", scored), ("zed@example.com", off)]);
    assert_eq!(total, 2);
    let (items, total) = store.overrides_of_rule("external_model", 1).await.unwrap();
    assert_eq!((items.len(), total), (1, 2));
});
