//! `rcompose scale SERVICE=N…`: `up -d --no-deps --scale` for those services.

use anyhow::anyhow;

use super::up::{self, UpArgs};
use super::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    /// SERVICE=REPLICAS pairs
    #[arg(required = true, value_name = "SERVICE=REPLICAS")]
    pairs: Vec<String>,
}

/// Service names of `SERVICE=N` pairs, checked.
pub fn services_of(pairs: &[String]) -> anyhow::Result<Vec<String>> {
    pairs
        .iter()
        .map(|p| {
            let (svc, n) = p
                .split_once('=')
                .ok_or_else(|| anyhow!("invalid scale {p:?}: expected SERVICE=REPLICAS"))?;
            n.parse::<u32>()
                .map_err(|_| anyhow!("invalid scale {p:?}: {n:?} is not a number"))?;
            Ok(svc.to_owned())
        })
        .collect()
}

pub fn run(global: &GlobalOpts, a: ScaleArgs) -> anyhow::Result<i32> {
    let services = services_of(&a.pairs)?;
    up::run(global, up_args(services, a.pairs))
}

/// `up -d --no-deps --scale PAIR… SERVICE…`.
fn up_args(services: Vec<String>, scale: Vec<String>) -> UpArgs {
    UpArgs {
        services,
        detach: true,
        pull: None,
        force_recreate: false,
        no_recreate: false,
        always_recreate_deps: false,
        no_deps: true,
        no_start: false,
        scale,
        remove_orphans: false,
        renew_anon_volumes: false,
        wait: false,
        wait_timeout: None,
        abort_on_container_exit: false,
        abort_on_container_failure: false,
        exit_code_from: None,
        attach: Vec::new(),
        no_attach: Vec::new(),
        timeout: None,
        timestamps: false,
        no_color: false,
        no_log_prefix: false,
        quiet_pull: false,
        dry_run: false,
        parallel: None,
        build: false,
        no_build: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(services_of(&p(&["web=3", "db=0"])).unwrap(), ["web", "db"]);
        assert!(services_of(&p(&["web"])).is_err());
        assert!(services_of(&p(&["web=x"])).is_err());
    }
}
