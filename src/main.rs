//! The `crm` command. Everything it does lives in the library; this only parses the
//! command line and reports failures.

// See the library: the process's futures nest deeper than the default layout depth.
#![recursion_limit = "256"]

use clap::Parser;

/// mimalloc rather than glibc's malloc: allocation was a fifth of the server's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = crm::cli::Cli::parse();
    match crm::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("crm: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
