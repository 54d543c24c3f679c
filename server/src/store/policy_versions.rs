//! `policy_version`: what each served policy version declared (its fields,
//! with their defaults, as `{"path": default or null}`, and its forbidden
//! field names), so a replay can tell an absent field from an unrecorded
//! one (see the migration).

use std::collections::HashMap;

use warden_engine::Policy;

use super::customers::now;
use super::{Store, StoreError, on_pool};
use crate::replay::VersionRecord;

impl Store {
    /// Records what `policy` declares under its version, once (a version
    /// already recorded is left as it is). Cheap to repeat.
    pub async fn record_policy_version(&self, policy: &Policy) -> Result<(), StoreError> {
        let declared: serde_json::Map<String, serde_json::Value> = policy
            .declared_field_defaults()
            .into_iter()
            .map(|(path, default)| (path, default.unwrap_or(serde_json::Value::Null)))
            .collect();
        let declared = serde_json::Value::Object(declared).to_string();
        let forbidden = serde_json::to_string(&policy.set().forbidden_fields).unwrap_or_else(|_| "[]".to_owned());
        let sql = "INSERT INTO policy_version (version, declared, forbidden, first_seen) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (version) DO NOTHING";
        on_pool!(self, p => sqlx::query(sql)
            .bind(policy.version())
            .bind(&declared)
            .bind(&forbidden)
            .bind(now())
            .execute(p)
            .await
            .map(drop))?;
        Ok(())
    }

    /// What the policy version `version` declared, if it was recorded
    /// (versions served before the table existed were not).
    pub async fn policy_version_record(&self, version: &str) -> Result<Option<VersionRecord>, StoreError> {
        let sql = "SELECT declared, forbidden FROM policy_version WHERE version = $1";
        let row: Option<(String, String)> =
            on_pool!(self, p => sqlx::query_as(sql).bind(version).fetch_optional(p).await)?;
        let Some((declared, forbidden)) = row else { return Ok(None) };
        let declared: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&declared).unwrap_or_default();
        let fields: HashMap<String, Option<serde_json::Value>> =
            declared.into_iter().map(|(path, v)| (path, (!v.is_null()).then_some(v))).collect();
        let forbidden: Vec<String> = serde_json::from_str(&forbidden).unwrap_or_default();
        Ok(Some(VersionRecord { fields, forbidden }))
    }
}
