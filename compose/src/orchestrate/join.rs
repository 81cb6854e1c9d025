//! Putting a new container on its networks: one veth per network (netctl), the published
//! ports on the first network's address, and the container's managed `/etc/hosts` and
//! `/etc/resolv.conf` pointing at the network's DNS resolver. Shared by `up` (per service
//! container) and `container run` / `create`.

use std::net::IpAddr;
use std::path::Path;

use engine::container::etc;
use engine::container::store::Container;
use netctl::{AttachRequest, NetworkManager, PortMapping};

use super::translate::NetworkJoin;
use super::OrchestrateError;

/// DNS settings that replace the network resolver's defaults (`dns_search`, `dns_opt`; the
/// nameservers come from the container's `dns`).
#[derive(Debug, Clone, Default)]
pub struct DnsOverrides {
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// Attaches `c` (whose network namespace exists, not running yet) to `networks` — the first
/// carries the default route — publishes `ports`, and writes its `/etc/hosts` and
/// `/etc/resolv.conf`. On failure the caller removes the container and detaches it.
pub fn join(
    root: &Path,
    nm: &mut NetworkManager,
    c: &Container,
    networks: &[NetworkJoin],
    ports: &[PortMapping],
    dns: &DnsOverrides,
) -> Result<(), OrchestrateError> {
    let hostname = if c.config.hostname.is_empty() {
        c.id().chars().take(12).collect()
    } else {
        c.config.hostname.clone()
    };
    let mut addresses = Vec::new();
    let mut first_ip = None;
    for (i, net) in networks.iter().enumerate() {
        let mut aliases = net.aliases.clone();
        aliases.push(hostname.clone());
        let att = nm.attach(
            &net.name,
            &AttachRequest {
                container_id: c.id().to_owned(),
                container_name: c.config.name.clone(),
                netns_path: engine::container::netns::path(&c.dir),
                aliases,
                ipv4_address: net.ipv4_address,
                ipv6_address: net.ipv6_address,
                mac: net.mac.clone(),
                ifname: net.ifname.clone(),
                is_default_route: i == 0,
            },
        )?;
        if let Some(ip) = att.ip {
            addresses.push(ip.to_string());
            first_ip.get_or_insert(IpAddr::V4(ip));
        }
        if let Some(ip) = att.ipv6 {
            addresses.push(ip.to_string());
        }
    }
    if !ports.is_empty() {
        let ip = first_ip.ok_or_else(|| OrchestrateError::Op {
            what: format!("publishing ports of {}", c.config.name),
            msg: "the container has no IPv4 address on any network".into(),
        })?;
        nm.publish(c.id(), ip, ports)?;
    }
    etc::write_hosts(&c.dir, &hostname, &addresses, &c.config.extra_hosts)?;
    if let Some(first) = networks.first() {
        let registry = netctl::dns::Registry::open(root).map_err(|e| OrchestrateError::Op {
            what: "opening the DNS state".into(),
            msg: e.to_string(),
        })?;
        let conf = registry
            .resolv_conf(&first.name)
            .map_err(|e| OrchestrateError::Op {
                what: format!("resolv.conf of network {}", first.name),
                msg: e.to_string(),
            })?;
        let nameservers: Vec<String> = if c.config.dns.is_empty() {
            conf.nameservers.iter().map(ToString::to_string).collect()
        } else {
            c.config.dns.clone()
        };
        let search = if dns.search.is_empty() {
            conf.search
        } else {
            dns.search.clone()
        };
        let options = if dns.options.is_empty() {
            conf.options
        } else {
            dns.options.clone()
        };
        etc::write_resolv_conf(&c.dir, &nameservers, &search, &options)?;
    }
    Ok(())
}
