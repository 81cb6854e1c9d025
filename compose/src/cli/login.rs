//! `rcompose login` and `rcompose logout`: credentials in docker's `config.json`.
//!
//! Like `image`, these parse their own arguments: docker's `login -p` would collide with the
//! global `-p/--project-name`.

use std::ffi::OsString;
use std::io::{self, BufRead, IsTerminal, Write};

use anyhow::{bail, Context};
use clap::Parser;
use engine::config::EngineConfig;
use engine::credentials::{CredentialStore, Credentials};
use engine::reference::DEFAULT_REGISTRY;
use engine::registry::{self, RegistryClient};

/// Raw arguments of `rcompose login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., value_name = "ARGS")]
    pub args: Vec<OsString>,
}

/// Raw arguments of `rcompose logout`.
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., value_name = "ARGS")]
    pub args: Vec<OsString>,
}

#[derive(Debug, Parser)]
#[command(
    name = "rcompose login",
    about = "Log in to a registry (Docker Hub if no server is given)"
)]
struct LoginCli {
    /// Registry server (`host[:port]`)
    server: Option<String>,
    /// Username
    #[arg(short, long)]
    username: Option<String>,
    /// Password (prefer --password-stdin)
    #[arg(short, long)]
    password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Debug, Parser)]
#[command(
    name = "rcompose logout",
    about = "Log out from a registry (Docker Hub if no server is given)"
)]
struct LogoutCli {
    /// Registry server (`host[:port]`)
    server: Option<String>,
}

fn parse<T: Parser>(name: &str, args: Vec<OsString>) -> Result<T, i32> {
    T::try_parse_from(std::iter::once(OsString::from(name)).chain(args)).map_err(|e| {
        let code = e.exit_code();
        let _ = e.print();
        code
    })
}

/// `https://host:5000/v1/` → `host:5000`; Docker Hub's aliases → `docker.io`.
fn normalize_server(s: Option<&str>) -> String {
    let s = s.unwrap_or(DEFAULT_REGISTRY);
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "" => DEFAULT_REGISTRY.to_owned(),
        h => h.to_owned(),
    }
}

pub fn run_login(args: LoginArgs) -> anyhow::Result<i32> {
    let cli: LoginCli = match parse("rcompose login", args.args) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let server = normalize_server(cli.server.as_deref());
    let mut store = CredentialStore::load_default()?;
    let stdin = io::stdin();
    let password = if cli.password_stdin {
        if cli.password.is_some() {
            bail!("--password and --password-stdin are mutually exclusive");
        }
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        Some(line.trim_end_matches(['\n', '\r']).to_owned())
    } else {
        if cli.password.is_some() {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        }
        cli.password
    };
    let username = match cli.username {
        Some(u) => u,
        None => match store.get(&server) {
            Some(c) if password.is_none() => {
                // Stored credentials: check they still work, as docker does.
                check(&server, c.clone())?;
                eprintln!(
                    "Authenticating with existing credentials... [Username: {}]",
                    c.username
                );
                println!("Login Succeeded");
                return Ok(0);
            }
            _ => prompt("Username: ")?,
        },
    };
    if username.is_empty() {
        bail!("username is empty");
    }
    let password = match password {
        Some(p) => p,
        None => engine::credentials::read_password("Password: ").context("reading the password")?,
    };
    if password.is_empty() {
        bail!("password is empty");
    }
    let creds = Credentials { username, password };
    check(&server, creds.clone())?;
    store.set(&server, &creds);
    store.save()?;
    println!("Login Succeeded");
    Ok(0)
}

fn check(server: &str, creds: Credentials) -> anyhow::Result<()> {
    let client = RegistryClient::new(EngineConfig::load()?, None)?;
    registry::blocking::check_login(client, server, creds)
        .with_context(|| format!("logging in to {server}"))
}

fn prompt(label: &str) -> anyhow::Result<String> {
    if !io::stdin().is_terminal() {
        bail!(
            "cannot prompt for {}: stdin is not a terminal (use --username)",
            label.trim_end_matches(": ").to_lowercase()
        );
    }
    eprint!("{label}");
    io::stderr().flush()?;
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

pub fn run_logout(args: LogoutArgs) -> anyhow::Result<i32> {
    let cli: LogoutCli = match parse("rcompose logout", args.args) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let server = normalize_server(cli.server.as_deref());
    let mut store = CredentialStore::load_default()?;
    if store.remove(&server) {
        store.save()?;
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_normalize() {
        assert_eq!(normalize_server(None), "docker.io");
        assert_eq!(
            normalize_server(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(normalize_server(Some("localhost:5000")), "localhost:5000");
        assert_eq!(
            normalize_server(Some("http://reg.example/x")),
            "reg.example"
        );
    }

    #[test]
    fn parses_docker_flags() {
        use clap::CommandFactory;
        LoginCli::command().debug_assert();
        let c = LoginCli::try_parse_from(["x", "localhost:5000", "-u", "me", "-p", "pw"]).unwrap();
        assert_eq!(c.password.as_deref(), Some("pw"));
    }
}
