//! `warden replay --policies DIR [--since 7d | --from T --to T] [--customer ID] [--format human|json]`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::ReportFormat;
use crate::config::DatabaseArgs;
use crate::store::ReplayRange;

use super::serve::{open, runtime};

/// The period asked for: `--since`, or `--from`/`--to`, or (none given)
/// the last 7 days.
#[derive(Debug, Clone, Copy)]
pub struct Period {
    pub since: Option<std::time::Duration>,
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
}

impl Period {
    /// The time range, as of now.
    fn range(self, customer_id: Option<uuid::Uuid>) -> anyhow::Result<ReplayRange> {
        let (from, to) = match (self.since, self.from, self.to) {
            (Some(since), _, _) => {
                let start = chrono::Duration::from_std(since)
                    .ok()
                    .and_then(|d| crate::store::now().checked_sub_signed(d))
                    .ok_or_else(|| {
                        anyhow::anyhow!("--since reaches back before the earliest time Warden can represent")
                    })?;
                (Some(start), None)
            }
            (None, None, None) => (Some(crate::store::now() - chrono::Duration::days(7)), None),
            (None, from, to) => (from, to),
        };
        if let (Some(f), Some(t)) = (from, to) {
            anyhow::ensure!(f < t, "--from ({}) must be before --to ({})", f.to_rfc3339(), t.to_rfc3339());
        }
        Ok(ReplayRange { from, to, customer_id })
    }
}

pub fn run(
    policies: &Path,
    period: Period,
    customer: Option<uuid::Uuid>,
    format: ReportFormat,
    database: &DatabaseArgs,
) -> anyhow::Result<ExitCode> {
    let Some((policy, _warnings)) = super::load_policy(policies)? else {
        return Ok(ExitCode::FAILURE);
    };
    let range = period.range(customer)?;
    runtime()?.block_on(async {
        let store = open(database).await?;
        let report = crate::replay::replay(&store, Arc::new(policy), range).await?;
        store.close().await;
        match format {
            ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
            ReportFormat::Human => print!("{}", report.human()),
        }
        Ok(ExitCode::SUCCESS)
    })
}
