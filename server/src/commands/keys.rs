//! `warden keys create` and `warden keys list`.

use std::process::ExitCode;

use anyhow::Context as _;

use super::serve::{open, runtime};
use crate::admin::keys::KeyRequest;
use crate::cli::KeysCommand;
use crate::store::Role;

/// Runs a `warden keys` subcommand.
pub fn run(command: KeysCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match command {
            KeysCommand::Create { customer, name, admin, viewer, bcrypt_cost, database } => {
                let store = open(&database).await?;
                let customer_name = customer.split('@').next().unwrap_or(&customer).to_owned();
                let c = store.customer_for_email(&customer, &customer_name).await?;
                let role = match (admin, viewer) {
                    (true, _) => Role::Admin,
                    (_, true) => Role::Viewer,
                    _ => Role::App,
                };
                let request = KeyRequest { name, customer_id: c.id, role };
                let issued =
                    crate::admin::keys::issue(&store, bcrypt_cost, request, None).await.context("creating the key")?;
                println!("customer: {} ({})", c.email, c.id);
                println!("key id: {}", issued.summary.id);
                println!("role: {}", role.as_str());
                println!("This key is shown once; store it now:");
                println!("{}", issued.key);
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
