//! `warden`: the policy author's tools and (soon) the decision service.
//! This file only parses the command line and dispatches.

mod cli;
mod commands;
mod policy_files;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
