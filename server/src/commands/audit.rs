//! `warden audit verify` and `warden logs prune`.

use std::process::ExitCode;

use crate::audit::verify::{self, Range, Report};
use crate::cli::{AuditCommand, LogsCommand, ReportFormat};

use super::serve::{open, runtime};

pub fn audit(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { from, to, format, database } => runtime()?.block_on(async {
            let store = open(&database).await?;
            let report = verify::verify_and_record(&store, Range { from, to }, "cli").await?;
            store.close().await;
            match format {
                ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                ReportFormat::Human => print!("{}", human(&report)),
            }
            Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }),
    }
}

/// The report for a person: per chain, what was walked and each break.
fn human(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for c in &report.chains {
        let start = match c.start {
            verify::Start::Genesis => "from its first row".to_owned(),
            verify::Start::Checkpoint => format!("from the prune checkpoint at position {}", c.from_seq - 1),
            verify::Start::Range => format!("from position {} (start of the time range)", c.from_seq),
        };
        let _ = writeln!(
            out,
            "{}: {} row(s) checked {start} to position {}: {}",
            c.chain,
            c.rows_checked,
            c.through_seq,
            if c.problems.is_empty() { "ok" } else { "BROKEN" }
        );
        if c.rows_before_chain > 0 {
            let _ = writeln!(out, "  {} older row(s) predate the chain and were not checked", c.rows_before_chain);
        }
        for p in &c.problems {
            let at = match (p.id, p.seq) {
                (Some(id), Some(seq)) => format!("row id {id} (position {seq})"),
                (Some(id), None) => format!("row id {id}"),
                (None, Some(seq)) => format!("position {seq}"),
                (None, None) => "the chain".to_owned(),
            };
            let _ = writeln!(out, "  {} at {at}: {}", p.kind.as_str(), p.detail);
        }
        if c.problems_not_listed > 0 {
            let _ = writeln!(out, "  … and {} more", c.problems_not_listed);
        }
    }
    match &report.first_break {
        Some(p) => {
            let _ = writeln!(
                out,
                "first broken link: {} {} at row id {}",
                p.chain,
                p.kind.as_str(),
                p.id.map_or_else(|| "-".to_owned(), |id| id.to_string())
            );
        }
        None => {
            let _ = writeln!(out, "every link holds");
        }
    }
    let _ = writeln!(
        out,
        "{} row(s) in {:.1} s ({} rows/minute)",
        report.rows_checked,
        report.elapsed_ms as f64 / 1000.0,
        report.rows_per_minute
    );
    out
}

pub fn logs(command: LogsCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match command {
            LogsCommand::Prune { older_than, database } => {
                use anyhow::Context as _;
                let store = open(&database).await?;
                let age = chrono::Duration::from_std(older_than).context("the age is too large")?;
                let cutoff = chrono::Utc::now() - age;
                let pruned = store.prune_audit(cutoff).await?;
                println!(
                    "deleted {} audit row(s) created before {}",
                    pruned.chained + pruned.unchained,
                    cutoff.format("%Y-%m-%dT%H:%M:%SZ")
                );
                if let Some((seq, hash)) = &pruned.checkpoint {
                    println!("checkpoint: the chain continues after position {seq} (hash {hash})");
                }
                store.close().await;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
