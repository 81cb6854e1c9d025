//! Container networks for rcompose: Linux bridges, veth pairs, IPAM, nftables egress and
//! published ports, `/etc/hosts` and `/etc/resolv.conf` content, and service DNS (`dns`).
//!
//! # API for the reconciler
//!
//! ```text
//! let mut nm = NetworkManager::open(root)?;          // <root>/networks/*.json, flock'ed
//! nm.set_dns(Box::new(registry));                    // optional: dns::Registry or any DnsRecords
//! let net = nm.create_network(&NetworkSpec { name, internal, enable_ipv6, ipam, .. })?;
//! nm.check_ports(&mappings)?;                        // before starting anything: busy port = error
//! let a = nm.attach(&net.name, &AttachRequest {     // veth into the netns path, IP, MAC, routes
//!     container_id, container_name, netns_path, aliases,
//!     ipv4_address, ipv6_address, mac, ifname, is_default_route, })?;   // -> Attachment { ip, mac, gateway, ifname, .. }
//! nm.publish(&container_id, a.ip.into(), &mappings)?; // DNAT host ports (random ones resolved)
//! nm.unpublish(&container_id)?;  nm.detach(&net.name, &container_id)?;  nm.detach_all(&container_id)?;
//! nm.remove_network(&net.name)?;                    // fails while endpoints remain
//! nm.prune(PruneOptions { unused_networks })?;       // crash leftovers (links, records, rules)
//! ```
//!
//! `hosts::render_hosts` / `hosts::render_resolv_conf` build file contents; the container engine
//! writes them. Kernel work goes through the [`netlink::NetOps`] trait (real: `LinuxNetOps`).

pub mod dns;
pub mod dnshook;
pub mod firewall;
pub mod hosts;
pub mod ipam;
pub mod manager;
pub mod names;
pub mod netlink;
pub mod ports;
pub mod store;

pub use dnshook::{DnsRecords, DnsSubnet};
pub use ipam::IpamConfig;
pub use manager::{
    AttachRequest, Attachment, Network, NetworkError, NetworkManager, NetworkSpec, PruneOptions,
    PruneReport,
};
pub use ports::PortMapping;
pub use store::{Protocol, PublishedPort};
