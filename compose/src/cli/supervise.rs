//! The hidden `__supervise` subcommand: the per-container supervisor process
//! (`rcompose __supervise <root> <id> [--attach-first]`, spawned by `container start`/`run`).
//!
//! It is dispatched from `main` before clap and before any tracing subscriber is installed
//! ([`early_dispatch`]): the supervisor lives as long as its container and must stay small
//! (target: under 2 MiB resident), and it must be single-threaded because libcontainer clones
//! the container from it.

use std::process::ExitCode;

use engine::container::{supervisor, SUPERVISE_ARG};

/// Runs the supervisor when argv[1] is `__supervise`; `None` otherwise.
pub fn early_dispatch() -> Option<ExitCode> {
    let mut argv = std::env::args().skip(1);
    if argv.next()? != SUPERVISE_ARG {
        return None;
    }
    let rest: Vec<String> = argv.collect();
    if let Ok(filter) = std::env::var("RCOMPOSE_LOG") {
        // Only when asked: a subscriber costs memory for the supervisor's whole life.
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let code = supervisor::main(&rest);
    Some(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
