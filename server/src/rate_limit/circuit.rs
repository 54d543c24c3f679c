//! How coalesced checks meet a Redis that fails: checks queued before a
//! failure are answered by the fallback at once rather than each sent to
//! the failing Redis, and every check the fallback answers is counted by
//! reason. Needs no Redis: the backend points at a closed port.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::{Quota, RedisBackend, RedisFailure};
use crate::metrics::Metrics;

/// `name{label}` from the metrics text (0 when absent).
fn metric(metrics: &Metrics, name: &str) -> u64 {
    let text = metrics.render(0);
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0, |v| v.parse().unwrap())
}

#[test]
fn checks_queued_before_a_failure_are_not_each_sent_to_redis() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let metrics = Arc::new(Metrics::new());
        // Nothing listens on port 1: every call fails at once.
        let redis =
            RedisBackend::connect("redis://127.0.0.1:1", "warden-test:", Duration::from_secs(5), Some(metrics.clone()))
                .unwrap();
        let quota = Quota { requests: 10, window: Duration::from_secs(60) };
        // 600 checks queued together: three batches (256, 256, 88), all
        // queued while the circuit was still closed.
        let answers = futures_util::future::join_all((0..600).map(|_| redis.limit(Uuid::new_v4(), quota, None))).await;
        let mut reasons = std::collections::BTreeMap::new();
        for answer in answers {
            let failure = answer.expect_err("Redis is unreachable");
            *reasons.entry(failure.reason()).or_insert(0) += 1;
        }
        assert_eq!(
            reasons,
            [("call_failed", 256), ("circuit_open", 344)].into_iter().collect(),
            "only the first batch is sent"
        );
        assert_eq!(metric(&metrics, r#"warden_redis_errors_total{kind="error"}"#), 1, "one failed call");
        assert_eq!(metric(&metrics, r#"warden_redis_fallbacks_total{reason="call_failed"}"#), 256);
        assert_eq!(metric(&metrics, r#"warden_redis_fallbacks_total{reason="circuit_open"}"#), 344);
        // A check arriving now is not queued at all.
        let late = redis.limit(Uuid::new_v4(), quota, None).await;
        assert!(matches!(late, Err(RedisFailure::Skipped)), "{late:?}");
        assert_eq!(metric(&metrics, r#"warden_redis_fallbacks_total{reason="circuit_open"}"#), 345);
    });
}
