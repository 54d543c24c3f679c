//! `warden serve`, `warden migrate`, `warden keys`.

use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::KeysCommand;
use crate::config::{DatabaseArgs, ServeArgs, ServeConfig};
use crate::store::{NewKey, Role, Store};

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

pub fn keys(command: KeysCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match command {
            KeysCommand::Create { customer, name, admin, bcrypt_cost, database } => {
                let store = open(&database).await?;
                let customer_name = customer.split('@').next().unwrap_or(&customer).to_owned();
                let c = store.customer_for_email(&customer, &customer_name).await?;
                let token = crate::auth::generate();
                let secret = token.secret.clone();
                let hash = tokio::task::spawn_blocking(move || crate::auth::hash_secret(&secret, bcrypt_cost))
                    .await
                    .context("hashing the key")?
                    .context("hashing the key")?;
                let role = if admin { Role::Admin } else { Role::App };
                store
                    .insert_key(&NewKey { id: token.id, customer_id: c.id, name, role, secret_hash: hash }, None)
                    .await?;
                println!("customer: {} ({})", c.email, c.id);
                println!("key id: {}", token.id);
                println!("role: {}", role.as_str());
                println!("This key is shown once; store it now:");
                println!("{}", token.token);
                store.close().await;
            }
            KeysCommand::List { database } => {
                let store = open(&database).await?;
                println!(
                    "{:<36}  {:<6}  {:<6}  {:>9}  {:<20}  {:<25}  name",
                    "id", "role", "active", "requests", "customer", "last used"
                );
                let mut keys = Vec::new();
                for page in 1.. {
                    let listed = store.list_keys(None, page, 500).await?;
                    let done = listed.items.len() < 500;
                    keys.extend(listed.items);
                    if done {
                        break;
                    }
                }
                for k in keys {
                    let last = k
                        .last_used_at
                        .map_or_else(|| "never".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string());
                    println!(
                        "{:<36}  {:<6}  {:<6}  {:>9}  {:<20}  {:<25}  {}",
                        k.id, k.role, k.active, k.request_count, k.customer_email, last, k.name
                    );
                }
                store.close().await;
            }
        }
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
