//! `rcompose __dns`: the service DNS resolver process (hidden; started by
//! `netctl::dns::Registry::ensure_running`, never by hand).
//!
//! `main` dispatches `rcompose __dns …` here before clap and tracing are set up
//! ([`early_dispatch`]): the resolver must stay under 3 MiB resident, and building the whole
//! command tree (or an env-filter subscriber) only to run it would cost memory it keeps for its
//! whole life. The clap variant below serves the rarer spelling with global options in front
//! (`rcompose --root R __dns`).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use netctl::dns::{self, ServerOptions};

use super::{GlobalOpts, DEFAULT_ROOT};

/// Options of the hidden resolver subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct DnsArgs {
    /// Port to listen on at every network gateway
    #[arg(long, default_value_t = 53)]
    pub port: u16,
    /// Forward unknown names to this resolver instead of the host's (repeatable)
    #[arg(long = "upstream", value_name = "ADDR:PORT")]
    pub upstreams: Vec<SocketAddr>,
    /// Read the host's resolvers from this file instead of /etc/resolv.conf
    #[arg(long, value_name = "FILE")]
    pub resolv_conf: Option<PathBuf>,
}

/// Runs the resolver until no network needs it.
pub fn run(global: &GlobalOpts, args: DnsArgs) -> anyhow::Result<i32> {
    let options = options(global.root.clone(), args);
    dns::run(options).context("service DNS resolver")?;
    Ok(0)
}

fn options(root: PathBuf, args: DnsArgs) -> ServerOptions {
    let mut options = ServerOptions::new(root);
    options.port = args.port;
    options.upstreams = args.upstreams;
    if let Some(path) = args.resolv_conf {
        options.host_resolv_conf = path;
    }
    options
}

/// When the command line is `rcompose __dns [options]`, runs the resolver without clap and
/// returns its exit code; `None` for every other command line.
pub fn early_dispatch() -> Option<ExitCode> {
    let mut argv = std::env::args_os().skip(1);
    if argv.next()? != dns::SUBCOMMAND {
        return None;
    }
    let (root, args) = match parse(argv) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("Error: {} {message}", dns::SUBCOMMAND);
            return Some(ExitCode::from(2));
        }
    };
    if std::env::var_os("RCOMPOSE_LOG").is_some() {
        let filter = tracing_subscriber::EnvFilter::try_from_env("RCOMPOSE_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .init();
    }
    match dns::run(options(root, args)) {
        Ok(()) => Some(ExitCode::SUCCESS),
        Err(err) => {
            eprintln!("Error: service DNS resolver: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            Some(ExitCode::from(1))
        }
    }
}

/// The few options the resolver takes, as `--name value` or `--name=value`.
fn parse(argv: impl Iterator<Item = OsString>) -> Result<(PathBuf, DnsArgs), String> {
    let mut root = std::env::var_os("RCOMPOSE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
    let mut args = DnsArgs {
        port: 53,
        upstreams: Vec::new(),
        resolv_conf: None,
    };
    let mut argv = argv.peekable();
    while let Some(arg) = argv.next() {
        let arg = arg
            .into_string()
            .map_err(|a| format!("argument {a:?} is not UTF-8"))?;
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        let mut value = || -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => argv
                    .next()
                    .and_then(|v| v.into_string().ok())
                    .ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match name.as_str() {
            "--root" => root = PathBuf::from(value()?),
            "--port" => {
                let v = value()?;
                args.port = v.parse().map_err(|_| format!("bad --port {v:?}"))?;
            }
            "--upstream" => {
                let v = value()?;
                args.upstreams
                    .push(v.parse().map_err(|_| format!("bad --upstream {v:?}"))?);
            }
            "--resolv-conf" => args.resolv_conf = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok((root, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> impl Iterator<Item = OsString> {
        args.iter()
            .map(OsString::from)
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn parses_the_resolver_options() {
        let (root, args) = parse(argv(&[
            "--root",
            "/tmp/r",
            "--port=5353",
            "--upstream",
            "127.0.0.1:5300",
            "--upstream=[::1]:53",
            "--resolv-conf",
            "/etc/other.conf",
        ]))
        .expect("parses");
        assert_eq!(root, PathBuf::from("/tmp/r"));
        assert_eq!(args.port, 5353);
        assert_eq!(args.upstreams.len(), 2);
        assert_eq!(args.resolv_conf, Some(PathBuf::from("/etc/other.conf")));
        assert!(parse(argv(&["--port", "x"])).is_err());
        assert!(parse(argv(&["--root"])).is_err());
        assert!(parse(argv(&["--bogus"])).is_err());
    }
}
