//! `policy_version`: the fields each served policy version declared, with
//! their defaults, as `{"path": default or null}` (see
//! the migration), so a replay can tell an absent field from an unrecorded
//! one.

use warden_engine::Policy;

use super::customers::now;
use super::{Store, StoreError, on_pool};

impl Store {
    /// Records the fields `policy` declares under its version, once (a
    /// version already recorded is left as it is).
    pub async fn record_policy_version(&self, policy: &Policy) -> Result<(), StoreError> {
        let declared: serde_json::Map<String, serde_json::Value> = policy
            .declared_field_defaults()
            .into_iter()
            .map(|(path, default)| (path, default.unwrap_or(serde_json::Value::Null)))
            .collect();
        let declared = serde_json::Value::Object(declared).to_string();
        let sql = "INSERT INTO policy_version (version, declared, first_seen) VALUES ($1, $2, $3) \
                   ON CONFLICT (version) DO NOTHING";
        on_pool!(self, p => sqlx::query(sql).bind(policy.version()).bind(&declared).bind(now()).execute(p).await.map(drop))?;
        Ok(())
    }

    /// The dotted paths the policy version `version` declared, each with
    /// its default (`None`: none), if it was recorded (versions served
    /// before the table existed were not).
    pub async fn declared_by(
        &self,
        version: &str,
    ) -> Result<Option<Vec<(String, Option<serde_json::Value>)>>, StoreError> {
        let sql = "SELECT declared FROM policy_version WHERE version = $1";
        let text: Option<String> = on_pool!(self, p => sqlx::query_scalar(sql).bind(version).fetch_optional(p).await)?;
        let declared: Option<serde_json::Map<String, serde_json::Value>> =
            text.and_then(|t| serde_json::from_str(&t).ok());
        Ok(declared.map(|d| d.into_iter().map(|(path, v)| (path, (!v.is_null()).then_some(v))).collect()))
    }
}
