use std::process::ExitCode;

#[global_allocator]
static GLOBAL: compose::allocator::RoleAllocator = compose::allocator::RoleAllocator;

use clap::Parser;
use compose::cli::{self, Cli};

fn main() -> ExitCode {
    // The service DNS resolver runs before clap and tracing: it must stay small (see cli/dns.rs).
    if let Some(code) = cli::dns::early_dispatch() {
        return code;
    }
    // The container supervisor runs before clap and tracing too: it must stay tiny (cli/supervise.rs).
    if let Some(code) = cli::supervise::early_dispatch() {
        return code;
    }
    compose::allocator::use_fast_allocator();
    init_tracing();
    let cli = Cli::parse_from(cli::shadow_local_flags(std::env::args_os()));
    match cli::run(cli) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(err) => {
            // Plain words with the cause chain, one cause per line, as the CLI promises.
            eprintln!("Error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}

/// Diagnostics go to stderr and are off unless `RCOMPOSE_LOG` asks for them.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RCOMPOSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}
