//! `rcompose version`.

use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// Output format: `pretty` or `json`
    #[arg(long, default_value = "pretty", value_parser = ["pretty", "json"])]
    pub format: String,
    /// Show only the version number
    #[arg(long)]
    pub short: bool,
}

#[derive(Serialize)]
struct VersionInfo {
    version: &'static str,
    os: &'static str,
    arch: &'static str,
}

pub fn run(args: VersionArgs) -> anyhow::Result<i32> {
    let info = VersionInfo {
        version: env!("CARGO_PKG_VERSION"),
        os: std::env::consts::OS,
        arch: std::env::consts::ARCH,
    };
    if args.short {
        println!("{}", info.version);
    } else if args.format == "json" {
        println!("{}", serde_json::to_string(&info)?);
    } else {
        println!(
            "rcompose version {} ({}/{})",
            info.version, info.os, info.arch
        );
    }
    Ok(0)
}
