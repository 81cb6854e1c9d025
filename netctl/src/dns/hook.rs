//! `dns::Registry` as the network core's DNS hook ([`crate::dnshook::DnsRecords`]): the manager
//! reports networks and endpoints, the registry records them and — when it knows which binary to
//! run (`with_resolver`) — makes sure a resolver serves them.

use std::net::IpAddr;

use crate::dnshook::{DnsRecords, DnsSubnet};

use super::registry::Registry;
use super::store::{self, NetSubnet};

impl DnsRecords for Registry {
    fn set_network(&self, network: &str, subnets: &[DnsSubnet]) -> Result<(), String> {
        let subnets: Vec<NetSubnet> = subnets
            .iter()
            .map(|s| NetSubnet {
                gateway: s.gateway,
                subnet: s.subnet,
            })
            .collect();
        Registry::set_network(self, network, &subnets).map_err(|e| chain(&e))?;
        self.ensure_configured_resolver()
    }

    fn add(
        &self,
        network: &str,
        container_id: &str,
        names: &[String],
        ips: &[IpAddr],
    ) -> Result<(), String> {
        // A name DNS cannot carry (say a 64-character id) must not fail the attach: skip it.
        let usable: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| {
                let ok = store::is_valid_name(n);
                if !ok {
                    tracing::warn!(
                        network,
                        container_id,
                        "{n:?} is not a DNS name; not registered"
                    );
                }
                ok
            })
            .collect();
        self.add_endpoint(network, container_id, &usable, ips)
            .map_err(|e| chain(&e))?;
        // Also brings back a resolver that died since the network was created.
        self.ensure_configured_resolver()
    }

    fn remove(&self, network: &str, container_id: &str) -> Result<(), String> {
        self.remove_endpoint(network, container_id)
            .map(|_| ())
            .map_err(|e| chain(&e))
    }

    fn remove_network(&self, network: &str) -> Result<(), String> {
        Registry::remove_network(self, network)
            .map(|_| ())
            .map_err(|e| chain(&e))
    }
}

impl Registry {
    fn ensure_configured_resolver(&self) -> Result<(), String> {
        match self.resolver() {
            Some((binary, options)) => self
                .ensure_running_with(binary, options)
                .map(|_| ())
                .map_err(|e| chain(&e)),
            None => Ok(()),
        }
    }
}

/// An error with its causes, on one line (the hook's errors are plain strings).
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_records_and_skips_names_dns_cannot_carry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reg = Registry::open(dir.path()).expect("open");
        let hook: &dyn DnsRecords = &reg;
        let subnet = DnsSubnet {
            subnet: "10.7.0.0/24".parse().expect("lit"),
            gateway: "10.7.0.1".parse().expect("lit"),
        };
        hook.set_network("n", &[subnet]).expect("set");
        let long_id = "a".repeat(64);
        hook.add(
            "n",
            "c1",
            &["p-web-1".into(), long_id, "web".into()],
            &["10.7.0.2".parse().expect("lit")],
        )
        .expect("add");
        let record = reg.record("n").expect("read").expect("exists");
        assert_eq!(record.endpoints[0].names, vec!["p-web-1", "web"]);
        hook.remove("n", "c1").expect("remove");
        hook.remove_network("n").expect("remove network");
        assert!(reg.networks().expect("list").is_empty());
        let err = hook
            .add("gone", "c1", &["x".into()], &[])
            .expect_err("unknown network");
        assert!(err.contains("gone"), "{err}");
    }
}
