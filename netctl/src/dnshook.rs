//! The seam between the network core and service DNS.
//!
//! The manager calls these after each successful change; `crate::dns::Registry` implements them
//! (see `registry_impl` in this file), and tests or library users without a resolver leave the
//! hook unset.

use std::net::IpAddr;

use ipnet::IpNet;

/// What DNS needs to know about a network's subnet: where to listen and whom to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSubnet {
    pub subnet: IpNet,
    pub gateway: IpAddr,
}

/// DNS record updates driven by the network core. Errors are plain strings: the core only
/// reports them (rolling back the change that caused them).
pub trait DnsRecords {
    /// A network was created (or its subnets are being re-announced).
    fn set_network(&self, network: &str, subnets: &[DnsSubnet]) -> Result<(), String>;
    /// A container joined `network` with these names (container name, aliases…) and addresses.
    fn add(
        &self,
        network: &str,
        container_id: &str,
        names: &[String],
        ips: &[IpAddr],
    ) -> Result<(), String>;
    /// A container left `network`.
    fn remove(&self, network: &str, container_id: &str) -> Result<(), String>;
    /// A network was removed.
    fn remove_network(&self, network: &str) -> Result<(), String>;
}
