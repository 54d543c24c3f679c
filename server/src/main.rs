//! `warden`: policy author tools and the decision service. This file only
//! hands the command line to the library.

fn main() -> std::process::ExitCode {
    warden_server::cli::run()
}
