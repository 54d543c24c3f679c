//! The server's integration tests, as one test binary: the shared support
//! module is compiled once, not once per file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // tests fail loudly

#[macro_use]
mod support;

mod admin;
mod audit_chain;
mod audit_outage;
mod e2e;
mod fleet;
mod flood;
mod http;
mod input;
mod instances;
mod keys;
mod logs;
mod orphans;
mod params;
mod rate_limit;
mod reload;
mod replay;
mod rollup;
mod shadow;
mod shadow_set;
mod slow_clients;
mod store;
mod trail;
mod ui_audit;
mod ui_customers;
mod ui_docs;
mod ui_keys;
mod ui_logs;
mod ui_overview;
mod ui_playground;
mod ui_rules;
mod ui_session;
mod ui_status;
mod ui_support;
mod ui_webhooks;
mod viewer;
mod webhooks;
