//! [`NetworkManager`]: networks, attachments and published ports of one state root.
//!
//! Every mutation takes the records lock (`<root>/networks/.lock`), so two commands attaching at
//! once never get the same address. Order of work, chosen so a crash at any point leaves state
//! that `prune` (or the next attach) repairs:
//!
//! - create: bridge → record → firewall. A bridge without a record is an orphan `prune` deletes;
//!   a record without its bridge (crash, reboot) gets the bridge back on the next attach.
//! - attach: veth (peer created inside the netns) → container-side config → record → DNS. Any
//!   failure deletes the veth again (which also removes the peer), so nothing is half-built; the
//!   address is only taken once the record is written.
//! - detach/remove: every step runs even when an earlier one failed; errors are collected.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Serialize;

use crate::dnshook::{DnsRecords, DnsSubnet};
use crate::firewall;
use crate::ipam::{self, IpamConfig, IpamError, SubnetConfig};
use crate::names;
use crate::netlink::{ContainerIfConfig, LinuxNetOps, NetOps, NetlinkError, VethSpec};
use crate::ports::{self, PortError, PortMapping};
use crate::store::{EndpointRecord, NetworkRecord, PortsRecord, PublishedPort, Store, StoreError};

/// The state root used when none is given; its nftables table is plain `inet rcompose`.
pub const DEFAULT_ROOT: &str = "/var/lib/rcompose";

/// Docker's option keys we honour.
pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";

/// Errors of the network manager.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0:?} not found")]
    NotFound(String),
    #[error("network with name {0:?} already exists")]
    Exists(String),
    #[error("invalid network name {0:?}")]
    InvalidName(String),
    #[error("network {network:?} has active endpoints ({})", containers.join(", "))]
    InUse {
        network: String,
        containers: Vec<String>,
    },
    #[error("container {container:?} is already attached to network {network:?}")]
    AlreadyAttached { network: String, container: String },
    #[error("container {container:?} is not attached to network {network:?}")]
    NotAttached { network: String, container: String },
    #[error("driver {0:?} is not supported (only \"bridge\")")]
    UnsupportedDriver(String),
    #[error("invalid network configuration: {0}")]
    Invalid(String),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Kernel(#[from] NetlinkError),
    #[error("updating DNS records: {0}")]
    Dns(String),
    /// A failure in the middle of a multi-step change; `rollback` lists what could not be undone.
    #[error("{source}{}", rollback_note(rollback))]
    Failed {
        #[source]
        source: Box<NetworkError>,
        rollback: Vec<String>,
    },
    /// Teardown went on past failures; these are all of them.
    #[error("{} error(s) during teardown: {}", .0.len(), .0.join("; "))]
    Teardown(Vec<String>),
}

fn rollback_note(r: &[String]) -> String {
    if r.is_empty() {
        String::new()
    } else {
        format!(" (and rolling back failed: {})", r.join("; "))
    }
}

type Result<T, E = NetworkError> = std::result::Result<T, E>;

/// What to create (compose `networks:` entry or `network create` flags).
#[derive(Debug, Clone, Default)]
pub struct NetworkSpec {
    pub name: String,
    /// `None` or `"bridge"`.
    pub driver: Option<String>,
    pub internal: bool,
    pub enable_ipv6: bool,
    /// `ipam.config`: at most one IPv4 and one IPv6 entry.
    pub ipam: Vec<IpamConfig>,
    pub labels: BTreeMap<String, String>,
    /// `driver_opts` (`com.docker.network.bridge.name`, `com.docker.network.driver.mtu`).
    pub options: BTreeMap<String, String>,
    /// Bridge MTU (default 1500, or the `com.docker.network.driver.mtu` option).
    pub mtu: Option<u32>,
}

/// A network as the API returns it: its record.
pub type Network = NetworkRecord;

/// What `attach` needs to know.
#[derive(Debug, Clone, Default)]
pub struct AttachRequest {
    pub container_id: String,
    pub container_name: String,
    /// The container's network namespace (a bind mount such as `<root>/containers/<id>/netns`).
    pub netns_path: PathBuf,
    /// Extra DNS names on this network (service name, hostname, `aliases`).
    pub aliases: Vec<String>,
    /// Static `ipv4_address`.
    pub ipv4_address: Option<Ipv4Addr>,
    /// Static `ipv6_address`.
    pub ipv6_address: Option<Ipv6Addr>,
    /// `mac_address`; default `02:42:` + the IPv4 address.
    pub mac: Option<String>,
    /// Interface name in the container; default the first free `ethN` of this container.
    pub ifname: Option<String>,
    /// Install the default route(s) via this network's gateway (the container's first network).
    pub is_default_route: bool,
}

/// The result of `attach`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub network: String,
    pub endpoint_id: String,
    pub ip: Option<Ipv4Addr>,
    pub prefix_len: Option<u8>,
    pub ipv6: Option<Ipv6Addr>,
    pub mac: String,
    pub gateway: Option<Ipv4Addr>,
    pub gateway6: Option<Ipv6Addr>,
    pub ifname: String,
    pub host_veth: String,
}

/// Options of `prune`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PruneOptions {
    /// Also remove networks without endpoints (`network prune`); otherwise only crash leftovers.
    pub unused_networks: bool,
}

/// What `prune` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    pub networks: Vec<String>,
    pub endpoints: Vec<String>,
    pub links: Vec<String>,
    pub port_records: Vec<String>,
    pub errors: Vec<String>,
}

/// Networks of one state root.
pub struct NetworkManager<O: NetOps = LinuxNetOps> {
    root: PathBuf,
    store: Store,
    prefix: String,
    table: String,
    ops: O,
    dns: Option<Box<dyn DnsRecords + Send>>,
}

impl NetworkManager<LinuxNetOps> {
    /// Opens the networks of `root` with the real kernel operations.
    pub fn open(root: &Path) -> Result<Self> {
        Self::with_ops(root, LinuxNetOps::new())
    }
}

impl<O: NetOps> NetworkManager<O> {
    /// Opens with another [`NetOps`] (tests).
    pub fn with_ops(root: &Path, ops: O) -> Result<Self> {
        let root = std::path::absolute(root).map_err(|source| StoreError::Io {
            action: "resolving",
            path: root.to_path_buf(),
            source,
        })?;
        Ok(NetworkManager {
            store: Store::new(&root),
            prefix: names::root_prefix(&root),
            table: names::table_name(&root, Path::new(DEFAULT_ROOT)),
            root,
            ops,
            dns: None,
        })
    }

    /// Sets the DNS hook called after attach/detach and network create/remove.
    pub fn set_dns(&mut self, dns: Box<dyn DnsRecords + Send>) {
        self.dns = Some(dns);
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `rc` + 4 hex prefix of every link this root creates.
    pub fn link_prefix(&self) -> &str {
        &self.prefix
    }

    /// The nftables table of this root (family `inet`).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The kernel operations (tests inspect their fake).
    pub fn ops(&self) -> &O {
        &self.ops
    }

    pub fn ops_mut(&mut self) -> &mut O {
        &mut self.ops
    }

    /// All networks, by name.
    pub fn list(&self) -> Result<Vec<Network>> {
        Ok(self.store.list()?)
    }

    /// One network by name, or by (a unique prefix of) its id.
    pub fn get(&self, name_or_id: &str) -> Result<Network> {
        if store_name_ok(name_or_id) {
            if let Some(r) = self.store.load(name_or_id)? {
                return Ok(r);
            }
        }
        let all = self.store.list()?;
        let mut hits = all.into_iter().filter(|r| r.id.starts_with(name_or_id));
        match (hits.next(), hits.next()) {
            (Some(r), None) if !name_or_id.is_empty() => Ok(r),
            _ => Err(NetworkError::NotFound(name_or_id.to_string())),
        }
    }

    /// Creates a network: subnets, bridge (with gateway addresses, up), firewall rules, DNS.
    pub fn create_network(&mut self, spec: &NetworkSpec) -> Result<Network> {
        if !store_name_ok(&spec.name) {
            return Err(NetworkError::InvalidName(spec.name.clone()));
        }
        match spec.driver.as_deref() {
            None | Some("bridge") => {}
            Some(d) => return Err(NetworkError::UnsupportedDriver(d.to_string())),
        }
        let _lock = self.store.lock()?;
        if self.store.load(&spec.name)?.is_some() {
            return Err(NetworkError::Exists(spec.name.clone()));
        }
        let others = self.store.list()?;
        let id = names::new_id(&[&spec.name, &self.root.to_string_lossy()]);
        let subnets = self.plan_subnets(spec, &others, &id)?;
        let mtu = match (spec.mtu, spec.options.get(OPT_MTU)) {
            (Some(m), _) => m,
            (None, Some(m)) => m
                .parse()
                .map_err(|_| NetworkError::Invalid(format!("{OPT_MTU}={m:?} is not a number")))?,
            (None, None) => 1500,
        };
        if !(68..=65535).contains(&mtu) {
            return Err(NetworkError::Invalid(format!("MTU {mtu} out of range")));
        }
        let bridge = match spec.options.get(OPT_BRIDGE_NAME) {
            Some(b) if names::valid_ifname(b) => b.clone(),
            Some(b) => {
                return Err(NetworkError::Invalid(format!(
                    "bridge name {b:?} is not a valid interface name (at most 15 characters)"
                )))
            }
            None => names::bridge_name(&self.prefix, &id),
        };
        if others.iter().any(|o| o.bridge == bridge) {
            return Err(NetworkError::Invalid(format!(
                "bridge {bridge} is already used by another network"
            )));
        }
        let rec = NetworkRecord {
            name: spec.name.clone(),
            id,
            driver: "bridge".to_string(),
            bridge,
            mtu,
            internal: spec.internal,
            enable_ipv6: subnets.iter().any(|s| matches!(s.subnet, IpNet::V6(_))),
            subnets,
            labels: spec.labels.clone(),
            options: spec.options.clone(),
            created: rfc3339_now(),
            endpoints: BTreeMap::new(),
        };
        self.ensure_bridge(&rec)?;
        let rest = (|| -> Result<()> {
            self.store.save(&rec)?;
            self.sync_firewall()?;
            if let Some(dns) = &self.dns {
                dns.set_network(&rec.name, &dns_subnets(&rec))
                    .map_err(NetworkError::Dns)?;
            }
            Ok(())
        })();
        if let Err(e) = rest {
            let mut rb = Vec::new();
            if let Err(x) = self.ops.delete_link(&rec.bridge) {
                rb.push(x.to_string());
            }
            if let Err(x) = self.store.remove(&rec.name) {
                rb.push(x.to_string());
            }
            if let Err(x) = self.sync_firewall() {
                rb.push(x.to_string());
            }
            return Err(NetworkError::Failed {
                source: Box::new(e),
                rollback: rb,
            });
        }
        tracing::debug!(network = %rec.name, bridge = %rec.bridge, "network created");
        Ok(rec)
    }

    fn plan_subnets(
        &mut self,
        spec: &NetworkSpec,
        others: &[NetworkRecord],
        id: &str,
    ) -> Result<Vec<SubnetConfig>> {
        let other_nets: Vec<(IpNet, &str)> = others
            .iter()
            .flat_map(|o| o.subnets.iter().map(move |s| (s.subnet, o.name.as_str())))
            .collect();
        let mut out: Vec<SubnetConfig> = Vec::new();
        let mut host: Option<Vec<IpNet>> = None;
        let mut want_v4 = true;
        let mut want_v6 = spec.enable_ipv6;
        for cfg in &spec.ipam {
            let subnet = match cfg.subnet {
                Some(s) => s.trunc(),
                None => continue,
            };
            for (o, name) in &other_nets {
                if ipam::overlaps(&subnet, o) {
                    return Err(IpamError::Overlap {
                        subnet,
                        other: *o,
                        network: name.to_string(),
                    }
                    .into());
                }
            }
            if out.iter().any(|s| ipam::overlaps(&s.subnet, &subnet)) {
                return Err(NetworkError::Invalid(format!(
                    "subnet {subnet} given twice"
                )));
            }
            match subnet {
                IpNet::V4(_) => want_v4 = false,
                IpNet::V6(_) => {
                    if !spec.enable_ipv6 {
                        return Err(NetworkError::Invalid(format!(
                            "IPv6 subnet {subnet} given but enable_ipv6 is not set"
                        )));
                    }
                    want_v6 = false
                }
            }
            out.push(ipam::complete(subnet, cfg)?);
        }
        let pool_cfg = spec
            .ipam
            .iter()
            .find(|c| c.subnet.is_none())
            .cloned()
            .unwrap_or_default();
        if want_v4 {
            let mut taken: Vec<IpNet> = match &host {
                Some(h) => h.clone(),
                None => {
                    let h = self.ops.host_networks()?;
                    host = Some(h.clone());
                    h
                }
            };
            taken.extend(other_nets.iter().map(|(n, _)| *n));
            let subnet = ipam::pick_subnet(&taken)?;
            let cfg = IpamConfig {
                subnet: None,
                ip_range: None,
                gateway: pool_cfg.gateway.filter(|g| g.is_ipv4()),
                aux_addresses: BTreeMap::new(),
            };
            out.insert(0, ipam::complete(subnet, &cfg)?);
        }
        if want_v6 {
            let mut taken = match host {
                Some(h) => h,
                None => self.ops.host_networks()?,
            };
            taken.extend(other_nets.iter().map(|(n, _)| *n));
            let subnet = ipam::pick_subnet_v6(id, &taken)?;
            out.push(ipam::complete(subnet, &IpamConfig::default())?);
        }
        Ok(out)
    }

    /// Makes sure the bridge of `rec` exists (it does not after a reboot or a crash between
    /// bridge creation and record write of another command).
    fn ensure_bridge(&mut self, rec: &NetworkRecord) -> Result<u32> {
        if let Some(i) = self.ops.link_index(&rec.bridge)? {
            return Ok(i);
        }
        let addrs: Vec<IpNet> = rec
            .subnets
            .iter()
            .filter_map(|s| IpNet::new(s.gateway, s.subnet.prefix_len()).ok())
            .collect();
        let index = self.ops.create_bridge(&rec.bridge, rec.mtu, &addrs)?;
        let sys = (|| -> Result<(), NetlinkError> {
            // See firewall::render: lets 127.0.0.1 → container DNAT leave through the bridge.
            self.ops
                .sysctl(&format!("net/ipv4/conf/{}/route_localnet", rec.bridge), "1")?;
            if !rec.internal {
                self.ops.sysctl("net/ipv4/ip_forward", "1")?;
                if rec.v6().is_some() {
                    self.ops.sysctl("net/ipv6/conf/all/forwarding", "1")?;
                }
            }
            Ok(())
        })();
        if let Err(e) = sys {
            let _ = self.ops.delete_link(&rec.bridge);
            return Err(e.into());
        }
        Ok(index)
    }

    /// Connects a container's network namespace to `network`.
    pub fn attach(&mut self, network: &str, req: &AttachRequest) -> Result<Attachment> {
        if !store_name_ok(&req.container_id) {
            return Err(NetworkError::Invalid(format!(
                "container id {:?} is not valid",
                req.container_id
            )));
        }
        let _lock = self.store.lock()?;
        // One pass over the records: this network's, and the container's other endpoints (for
        // the interface name).
        let all = self.store.list()?;
        let mut rec = all
            .iter()
            .find(|r| r.name == network)
            .cloned()
            .ok_or_else(|| NetworkError::NotFound(network.to_string()))?;
        // Containers removed without a detach (a `--rm` container's supervisor removes it)
        // still hold addresses in the record: let them go before allocating.
        for cid in stale_endpoints(&rec) {
            rec.endpoints.remove(&cid);
            if let Some(dns) = &self.dns {
                let _ = dns.remove(&rec.name, &cid);
            }
        }
        if rec.endpoints.contains_key(&req.container_id) {
            return Err(NetworkError::AlreadyAttached {
                network: network.to_string(),
                container: req.container_name.clone(),
            });
        }
        let ifname = match &req.ifname {
            Some(n) if names::valid_ifname(n) && n != "lo" => n.clone(),
            Some(n) => {
                return Err(NetworkError::Invalid(format!(
                    "interface name {n:?} is not valid"
                )))
            }
            None => {
                let used: BTreeSet<&str> = all
                    .iter()
                    .filter_map(|r| r.endpoints.get(&req.container_id))
                    .map(|e| e.ifname.as_str())
                    .collect();
                (0..)
                    .map(|i| format!("eth{i}"))
                    .find(|n| !used.contains(n.as_str()))
                    .unwrap_or_else(|| "eth0".to_string())
            }
        };
        let used: BTreeSet<IpAddr> = rec
            .endpoints
            .values()
            .flat_map(|e| e.ipv4.iter().chain(e.ipv6.iter()).map(|n| n.addr()))
            .collect();
        let v4 = match rec.v4() {
            Some(s) => {
                let a = ipam::allocate(s, &used, req.ipv4_address.map(IpAddr::V4))?;
                Some(
                    IpNet::new(a, s.subnet.prefix_len())
                        .map_err(|e| NetworkError::Invalid(e.to_string()))?,
                )
            }
            None if req.ipv4_address.is_some() => return Err(IpamError::NoSubnet("IPv4").into()),
            None => None,
        };
        let v6 = match rec.v6() {
            Some(s) => {
                let a = ipam::allocate(s, &used, req.ipv6_address.map(IpAddr::V6))?;
                Some(
                    IpNet::new(a, s.subnet.prefix_len())
                        .map_err(|e| NetworkError::Invalid(e.to_string()))?,
                )
            }
            None if req.ipv6_address.is_some() => return Err(IpamError::NoSubnet("IPv6").into()),
            None => None,
        };
        let ip4 = match v4.map(|n| n.addr()) {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        };
        let mac = match &req.mac {
            Some(m) => names::parse_mac(m)
                .ok_or_else(|| NetworkError::Invalid(format!("MAC address {m:?} is not valid")))?,
            None => names::mac_for(ip4, &format!("{}/{}", rec.id, req.container_id)),
        };
        let host_veth = names::veth_name(&self.prefix, &rec.id, &req.container_id);
        let master = self.ensure_bridge(&rec)?;
        let spec = VethSpec {
            host: host_veth.clone(),
            peer: ifname.clone(),
            master,
            mtu: rec.mtu,
            peer_mac: mac,
        };
        match self.ops.create_veth(&spec, &req.netns_path) {
            // A leftover host veth of a crashed attach of this very container (ours, unrecorded):
            // remove it and try once more. Not checked up front: that would cost a round trip on
            // every attach for a case that only follows a crash.
            Err(e)
                if e.errno() == Some(libc::EEXIST)
                    && self.ops.link_index(&host_veth)?.is_some() =>
            {
                self.ops.delete_link(&host_veth)?;
                self.ops.create_veth(&spec, &req.netns_path)?;
            }
            other => other?,
        }

        let mut default_routes = Vec::new();
        if req.is_default_route && !rec.internal {
            default_routes.extend(rec.v4().map(|s| s.gateway));
            default_routes.extend(rec.v6().map(|s| s.gateway));
        }
        let cfg = ContainerIfConfig {
            ifname: ifname.clone(),
            addresses: v4.iter().chain(v6.iter()).copied().collect(),
            default_routes,
        };
        let endpoint = EndpointRecord {
            container_id: req.container_id.clone(),
            container_name: req.container_name.clone(),
            endpoint_id: names::new_id(&[&rec.id, &req.container_id]),
            host_veth: host_veth.clone(),
            ifname: ifname.clone(),
            netns: req.netns_path.clone(),
            mac: names::format_mac(&mac),
            ipv4: v4,
            ipv6: v6,
            aliases: req.aliases.clone(),
            default_route: req.is_default_route,
        };
        let rest = (|| -> Result<()> {
            self.ops.configure_container(&req.netns_path, &cfg)?;
            rec.endpoints
                .insert(req.container_id.clone(), endpoint.clone());
            self.store.save_endpoints(&rec)?;
            if let Some(dns) = &self.dns {
                let mut names = vec![req.container_name.clone()];
                names.extend(req.aliases.iter().cloned());
                names.retain(|n| !n.is_empty());
                let ips: Vec<IpAddr> = v4.iter().chain(v6.iter()).map(|n| n.addr()).collect();
                if let Err(e) = dns.add(&rec.name, &req.container_id, &names, &ips) {
                    rec.endpoints.remove(&req.container_id);
                    self.store.save_endpoints(&rec)?;
                    return Err(NetworkError::Dns(e));
                }
            }
            Ok(())
        })();
        if let Err(e) = rest {
            let mut rb = Vec::new();
            if let Err(x) = self.ops.delete_link(&host_veth) {
                rb.push(x.to_string());
            }
            return Err(NetworkError::Failed {
                source: Box::new(e),
                rollback: rb,
            });
        }
        let gw4 = match rec.v4().map(|s| s.gateway) {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        };
        let gw6 = match rec.v6().map(|s| s.gateway) {
            Some(IpAddr::V6(a)) => Some(a),
            _ => None,
        };
        Ok(Attachment {
            network: rec.name.clone(),
            endpoint_id: endpoint.endpoint_id,
            ip: ip4,
            prefix_len: v4.map(|n| n.prefix_len()),
            ipv6: match v6.map(|n| n.addr()) {
                Some(IpAddr::V6(a)) => Some(a),
                _ => None,
            },
            mac: endpoint.mac,
            gateway: gw4,
            gateway6: gw6,
            ifname,
            host_veth,
        })
    }

    /// Disconnects a container from `network`: veth, address, DNS records. Keeps going past
    /// failures and reports them all; the endpoint is gone from the record either way (a veth that
    /// could not be deleted is an orphan `prune` removes).
    pub fn detach(&mut self, network: &str, container_id: &str) -> Result<()> {
        let _lock = self.store.lock()?;
        let mut rec = self
            .store
            .load(network)?
            .ok_or_else(|| NetworkError::NotFound(network.to_string()))?;
        let Some(ep) = rec.endpoints.remove(container_id) else {
            return Err(NetworkError::NotAttached {
                network: network.to_string(),
                container: container_id.to_string(),
            });
        };
        let mut errors = Vec::new();
        // Deleting the host end deletes the peer inside the container too (~20 ms: the kernel's
        // veth unregister waits for RCU grace periods). When the container's namespace is
        // already unmounted (the container was removed first, as `down` does), the kernel is
        // tearing the pair down with the namespace in the background: don't wait for that; a
        // pair kept alive by someone still holding the namespace is an orphan `prune` removes.
        // Otherwise the veth is unplugged at once and deleted in the background (see
        // `NetOps::retire_link`).
        let netns_gone = !ep.netns.as_os_str().is_empty() && !ep.netns.exists();
        if !netns_gone {
            if let Err(e) = self.ops.retire_link(&ep.host_veth) {
                errors.push(format!("deleting {}: {e}", ep.host_veth));
            }
        }
        if let Err(e) = self.store.save_endpoints(&rec) {
            errors.push(e.to_string());
        }
        if let Some(dns) = &self.dns {
            if let Err(e) = dns.remove(&rec.name, container_id) {
                errors.push(format!("DNS: {e}"));
            }
        }
        teardown_result(errors)
    }

    /// Detaches a container from every network of this root and drops its published ports.
    pub fn detach_all(&mut self, container_id: &str) -> Result<()> {
        let mut errors = Vec::new();
        for rec in self.store.list()? {
            if rec.endpoints.contains_key(container_id) {
                if let Err(e) = self.detach(&rec.name, container_id) {
                    errors.push(e.to_string());
                }
            }
        }
        if let Err(e) = self.unpublish(container_id) {
            errors.push(e.to_string());
        }
        teardown_result(errors)
    }

    /// Removes a network without endpoints: bridge, record, DNS, firewall rules (the whole table
    /// with the last network).
    pub fn remove_network(&mut self, name_or_id: &str) -> Result<()> {
        let _lock = self.store.lock()?;
        let mut rec = self.get(name_or_id)?;
        // Endpoints of containers removed without a detach (`container rm -f`, a `--rm`
        // container's supervisor, a crash) no longer hold the network: their namespace file is
        // gone, and its veth pair with it.
        let stale = stale_endpoints(&rec);
        if !stale.is_empty() {
            for cid in &stale {
                rec.endpoints.remove(cid);
                if let Some(dns) = &self.dns {
                    dns.remove(&rec.name, cid)
                        .map_err(|e| NetworkError::Teardown(vec![format!("DNS: {e}")]))?;
                }
            }
            self.store.save_endpoints(&rec)?;
        }
        if !rec.endpoints.is_empty() {
            return Err(NetworkError::InUse {
                network: rec.name.clone(),
                containers: rec
                    .endpoints
                    .values()
                    .map(|e| e.container_name.clone())
                    .collect(),
            });
        }
        let errors = self.remove_locked(&rec);
        teardown_result(errors)
    }

    fn remove_locked(&mut self, rec: &NetworkRecord) -> Vec<String> {
        let mut errors = Vec::new();
        if let Err(e) = self.ops.delete_link(&rec.bridge) {
            errors.push(format!("deleting bridge {}: {e}", rec.bridge));
        }
        if let Err(e) = self.store.remove(&rec.name) {
            errors.push(e.to_string());
        }
        if let Some(dns) = &self.dns {
            if let Err(e) = dns.remove_network(&rec.name) {
                errors.push(format!("DNS: {e}"));
            }
        }
        if let Err(e) = self.sync_firewall() {
            errors.push(e.to_string());
        }
        errors
    }

    /// Checks that `mappings` could be published (host ports free, not published already) without
    /// changing anything: call it before starting anything.
    pub fn check_ports(&self, mappings: &[PortMapping]) -> Result<()> {
        let alive = alive_containers(&self.store.list()?);
        let taken: Vec<PublishedPort> = self
            .store
            .list_ports()?
            .into_iter()
            .filter(|r| alive.contains(&r.container_id))
            .flat_map(|r| r.ports)
            .collect();
        // Fixed ports only: random ones cannot collide.
        let fixed: Vec<PortMapping> = mappings
            .iter()
            .filter(|m| m.host_ports.is_some())
            .cloned()
            .collect();
        ports::resolve(&fixed, IpAddr::V4(Ipv4Addr::UNSPECIFIED), &taken)?;
        Ok(())
    }

    /// Publishes ports of a container reachable at `ip` (DNAT from the host's addresses,
    /// 127.0.0.1 included). Returns the concrete host ports (random ones resolved).
    pub fn publish(
        &mut self,
        container_id: &str,
        ip: IpAddr,
        mappings: &[PortMapping],
    ) -> Result<Vec<PublishedPort>> {
        let _lock = self.store.lock()?;
        // Ports of containers removed without a detach are free again (their rules go with
        // the firewall update below).
        let alive = alive_containers(&self.store.list()?);
        let mut all = self.store.list_ports()?;
        for stale in all
            .iter()
            .filter(|r| r.container_id != container_id && !alive.contains(&r.container_id))
        {
            self.store.remove_ports(&stale.container_id)?;
        }
        all.retain(|r| r.container_id == container_id || alive.contains(&r.container_id));
        let taken: Vec<PublishedPort> = all.iter().flat_map(|r| r.ports.iter().cloned()).collect();
        let new = ports::resolve(mappings, ip, &taken)?;
        let mut rec = self.store.load_ports(container_id)?.unwrap_or(PortsRecord {
            container_id: container_id.to_string(),
            ports: Vec::new(),
        });
        let before = rec.clone();
        rec.ports.extend(new.iter().cloned());
        self.store.save_ports(&rec)?;
        if let Err(e) = self.sync_firewall() {
            let mut rb = Vec::new();
            let undo = if before.ports.is_empty() {
                self.store.remove_ports(container_id)
            } else {
                self.store.save_ports(&before)
            };
            if let Err(x) = undo {
                rb.push(x.to_string());
            }
            return Err(NetworkError::Failed {
                source: Box::new(e),
                rollback: rb,
            });
        }
        Ok(new)
    }

    /// Published ports of a container.
    pub fn ports(&self, container_id: &str) -> Result<Vec<PublishedPort>> {
        Ok(self
            .store
            .load_ports(container_id)?
            .map(|r| r.ports)
            .unwrap_or_default())
    }

    /// Removes every published port of a container.
    pub fn unpublish(&mut self, container_id: &str) -> Result<()> {
        let _lock = self.store.lock()?;
        if self.store.load_ports(container_id)?.is_none() {
            return Ok(());
        }
        self.store.remove_ports(container_id)?;
        self.sync_firewall()
    }

    /// Re-renders this root's nftables table from the records (deleting it when no network is
    /// left).
    fn sync_firewall(&mut self) -> Result<()> {
        let nets = self.store.list()?;
        let ports = self.store.list_ports()?;
        let script = firewall::render(&self.table, &self.prefix, &nets, &ports);
        self.ops.nft(&script)?;
        Ok(())
    }

    /// Removes what a crash left behind: endpoints whose veth is gone (their container's
    /// namespace died), links with this root's prefix that no record owns, port records of
    /// containers on no network; with `unused_networks`, also networks without endpoints. The
    /// firewall is re-rendered from what remains.
    pub fn prune(&mut self, opts: PruneOptions) -> Result<PruneReport> {
        let _lock = self.store.lock()?;
        let mut report = PruneReport::default();
        let links = self.ops.links()?;
        let link_names: BTreeSet<&str> = links.iter().map(|l| l.name.as_str()).collect();
        let mut recs = self.store.list()?;
        for rec in &mut recs {
            let stale: Vec<String> = rec
                .endpoints
                .values()
                .filter(|e| !link_names.contains(e.host_veth.as_str()) || !e.netns.exists())
                .map(|e| e.container_id.clone())
                .collect();
            if stale.is_empty() {
                continue;
            }
            for cid in &stale {
                if let Some(ep) = rec.endpoints.remove(cid) {
                    if let Err(e) = self.ops.delete_link(&ep.host_veth) {
                        report
                            .errors
                            .push(format!("deleting {}: {e}", ep.host_veth));
                    }
                    if let Some(dns) = &self.dns {
                        if let Err(e) = dns.remove(&rec.name, cid) {
                            report.errors.push(format!("DNS: {e}"));
                        }
                    }
                    report
                        .endpoints
                        .push(format!("{}/{}", rec.name, ep.container_name));
                }
            }
            if let Err(e) = self.store.save_endpoints(rec) {
                report.errors.push(e.to_string());
            }
        }
        if opts.unused_networks {
            let (unused, keep): (Vec<_>, Vec<_>) =
                recs.into_iter().partition(|r| r.endpoints.is_empty());
            for rec in &unused {
                report.errors.extend(self.remove_locked(rec));
                report.networks.push(rec.name.clone());
            }
            recs = keep;
        }
        let bridges: BTreeSet<&str> = recs.iter().map(|r| r.bridge.as_str()).collect();
        let veths: BTreeSet<&str> = recs
            .iter()
            .flat_map(|r| r.endpoints.values().map(|e| e.host_veth.as_str()))
            .collect();
        let ours_b = format!("{}b", self.prefix);
        let ours_v = format!("{}v", self.prefix);
        for l in &links {
            let orphan = (l.name.starts_with(&ours_b) && !bridges.contains(l.name.as_str()))
                || (l.name.starts_with(&ours_v) && !veths.contains(l.name.as_str()));
            if orphan {
                match self.ops.delete_link(&l.name) {
                    Ok(true) => report.links.push(l.name.clone()),
                    // Already gone (e.g. with a stale endpoint above, or its namespace's cleanup).
                    Ok(false) => {}
                    Err(e) => report.errors.push(format!("deleting {}: {e}", l.name)),
                }
            }
        }
        let attached: BTreeSet<&str> = recs
            .iter()
            .flat_map(|r| r.endpoints.keys().map(String::as_str))
            .collect();
        for p in self.store.list_ports()? {
            if !attached.contains(p.container_id.as_str()) {
                match self.store.remove_ports(&p.container_id) {
                    Ok(()) => report.port_records.push(p.container_id.clone()),
                    Err(e) => report.errors.push(e.to_string()),
                }
            }
        }
        if let Err(e) = self.sync_firewall() {
            report.errors.push(e.to_string());
        }
        Ok(report)
    }
}

fn store_name_ok(name: &str) -> bool {
    crate::store::valid_name(name)
}

/// Endpoints whose container is gone: its network namespace file no longer exists (the
/// container was removed, and the kernel took the veth pair with the namespace).
fn stale_endpoints(rec: &NetworkRecord) -> Vec<String> {
    rec.endpoints
        .values()
        .filter(|e| !e.netns.as_os_str().is_empty() && !e.netns.exists())
        .map(|e| e.container_id.clone())
        .collect()
}

/// Containers with at least one endpoint whose namespace still exists.
fn alive_containers(recs: &[NetworkRecord]) -> BTreeSet<String> {
    recs.iter()
        .flat_map(|r| r.endpoints.values())
        .filter(|e| e.netns.as_os_str().is_empty() || e.netns.exists())
        .map(|e| e.container_id.clone())
        .collect()
}

fn teardown_result(errors: Vec<String>) -> Result<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(NetworkError::Teardown(errors))
    }
}

fn dns_subnets(rec: &NetworkRecord) -> Vec<DnsSubnet> {
    rec.subnets
        .iter()
        .map(|s| DnsSubnet {
            subnet: s.subnet,
            gateway: s.gateway,
        })
        .collect()
}

/// Current UTC time as RFC 3339 (`2026-01-02T03:04:05.123456789Z`).
pub fn rfc3339_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

#[cfg(test)]
mod tests;
