//! `warden serve` and `warden migrate`.

use std::process::ExitCode;

use anyhow::Context as _;

use crate::config::{DatabaseArgs, ServeArgs, ServeConfig};
use crate::store::Store;

pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

pub(super) async fn open(db: &DatabaseArgs) -> anyhow::Result<Store> {
    let store = Store::connect(&db.database_url)
        .await
        .with_context(|| format!("connecting to `{}`", crate::store::redact_url(&db.database_url)))?;
    store.migrate().await.context("running migrations")?;
    Ok(store)
}

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal as _;
    let config = ServeConfig::load(&args)?;
    crate::telemetry::init(config.log_format, std::io::stderr().is_terminal(), std::io::stderr);
    let Some((policy, warnings)) = super::load_policy(&config.policies)? else {
        return Ok(ExitCode::FAILURE);
    };
    super::print_diagnostics(&warnings, crate::cli::DiagnosticFormat::Human);
    runtime()?.block_on(crate::server::serve(config, policy))?;
    Ok(ExitCode::SUCCESS)
}

pub fn migrate(db: &DatabaseArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let store = open(db).await?;
        eprintln!("migrations applied to {} database", store.backend());
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use crate::store::redact_url as redact;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("postgres://u:secret@db:5432/x"), "postgres://…@db:5432/x");
        assert_eq!(redact("sqlite://warden.db"), "sqlite://warden.db");
    }
}
