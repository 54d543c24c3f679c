//! The `warden` binary's library: the policy author's commands and the
//! decision service. `main.rs` only calls [`cli::run`].

mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
mod commands;
pub mod config;
mod error;
mod http;
pub mod listener;
pub mod live;
pub mod metrics;
pub mod policy_files;
pub mod rate_limit;
pub mod reload;
pub mod replay;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod ui;
pub mod webhooks;
