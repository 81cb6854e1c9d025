//! The resolver's in-memory view of the records: per network, name → addresses, address → name,
//! the subnets whose clients it answers, and the round-robin position of every name.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::store::{NetSubnet, NetworkRecord};

/// The addresses one name stands for on one network (several for a scaled service).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NameEntry {
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
}

/// One network's records.
#[derive(Debug, Default)]
pub struct NetTable {
    pub name: String,
    pub subnets: Vec<NetSubnet>,
    names: HashMap<String, NameEntry>,
    reverse: HashMap<IpAddr, String>,
    /// Clients with their own upstream servers (the service's `dns:`), by address.
    upstreams: HashMap<IpAddr, Vec<SocketAddr>>,
    /// Queries answered per name and family (A, AAAA): where the next answer's rotation starts.
    turns: HashMap<String, [usize; 2]>,
}

impl NetTable {
    /// Builds the table of one record; `previous` carries the rotation positions over a reload.
    pub fn build(record: &NetworkRecord, previous: Option<&NetTable>) -> Self {
        let mut names: HashMap<String, NameEntry> = HashMap::new();
        let mut reverse = HashMap::new();
        let mut upstreams = HashMap::new();
        for endpoint in &record.endpoints {
            // The container's own loopback is out of the resolver's reach.
            let servers: Vec<SocketAddr> = endpoint
                .dns_servers
                .iter()
                .filter(|ip| !ip.is_loopback())
                .map(|ip| SocketAddr::new(*ip, 53))
                .collect();
            if !servers.is_empty() {
                for ip in &endpoint.ips {
                    upstreams.insert(*ip, servers.clone());
                }
            }
            for name in &endpoint.names {
                let entry = names.entry(name.clone()).or_default();
                for ip in &endpoint.ips {
                    match ip {
                        IpAddr::V4(v4) if !entry.v4.contains(v4) => entry.v4.push(*v4),
                        IpAddr::V6(v6) if !entry.v6.contains(v6) => entry.v6.push(*v6),
                        _ => {}
                    }
                }
            }
            if let Some(first) = endpoint.names.first() {
                for ip in &endpoint.ips {
                    reverse.entry(*ip).or_insert_with(|| first.clone());
                }
            }
        }
        let turns = previous
            .map(|old| {
                old.turns
                    .iter()
                    .filter(|(name, _)| names.contains_key(*name))
                    .map(|(name, turn)| (name.clone(), *turn))
                    .collect()
            })
            .unwrap_or_default();
        NetTable {
            name: record.network.clone(),
            subnets: record.subnets.clone(),
            names,
            reverse,
            upstreams,
            turns,
        }
    }

    /// Whether a client at `source` belongs to this network.
    pub fn serves(&self, source: IpAddr) -> bool {
        let source = canonical(source);
        self.subnets.iter().any(|s| s.subnet.contains(&source))
    }

    /// Whether `ip` is inside one of this network's subnets (PTR queries for those are answered
    /// here, never sent upstream).
    pub fn owns_address(&self, ip: IpAddr) -> bool {
        self.subnets.iter().any(|s| s.subnet.contains(&ip))
    }

    /// Addresses of `name` (lower case, no trailing dot) without advancing the rotation.
    pub fn get(&self, name: &str) -> Option<&NameEntry> {
        self.names.get(name)
    }

    /// Addresses of `name`, rotated one step further on every call that asks for that family
    /// (`v4` for A, `v6` for AAAA): a scaled service's replicas take turns at the head of the
    /// answer, and a resolver asking A and AAAA for each lookup still sees every turn.
    pub fn lookup_rotating(&mut self, name: &str, v4: bool, v6: bool) -> Option<NameEntry> {
        let entry = self.names.get(name)?;
        let turns = self.turns.entry(name.to_owned()).or_insert([0, 0]);
        let mut rotated = entry.clone();
        if v4 && !rotated.v4.is_empty() {
            let by = turns[0] % rotated.v4.len();
            rotated.v4.rotate_left(by);
            turns[0] = turns[0].wrapping_add(1);
        }
        if v6 && !rotated.v6.is_empty() {
            let by = turns[1] % rotated.v6.len();
            rotated.v6.rotate_left(by);
            turns[1] = turns[1].wrapping_add(1);
        }
        Some(rotated)
    }

    /// The client's own upstream servers, when its service set `dns:`.
    pub fn upstreams_of(&self, client: IpAddr) -> Option<&[SocketAddr]> {
        self.upstreams.get(&canonical(client)).map(Vec::as_slice)
    }

    /// The name of the container holding `ip` on this network.
    pub fn reverse(&self, ip: IpAddr) -> Option<&str> {
        self.reverse.get(&ip).map(String::as_str)
    }

    /// Number of distinct names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the network has no names at all.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// IPv4-mapped IPv6 sources (from a dual-stack socket) compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::store::Endpoint;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("literal address")
    }

    fn record() -> NetworkRecord {
        NetworkRecord {
            network: "n1".into(),
            subnets: vec![NetSubnet {
                gateway: ip("10.9.0.1"),
                subnet: "10.9.0.0/24".parse().expect("literal subnet"),
            }],
            endpoints: vec![
                Endpoint {
                    id: "a".into(),
                    names: vec!["p-web-1".into(), "web".into()],
                    ips: vec![ip("10.9.0.2"), ip("fd00::2")],
                    dns_servers: vec![ip("192.0.2.53"), ip("127.0.0.1")],
                },
                Endpoint {
                    id: "b".into(),
                    names: vec!["p-web-2".into(), "web".into()],
                    ips: vec![ip("10.9.0.3")],
                    dns_servers: Vec::new(),
                },
                Endpoint {
                    id: "c".into(),
                    names: vec!["p-web-3".into(), "web".into()],
                    ips: vec![ip("10.9.0.4")],
                    dns_servers: Vec::new(),
                },
            ],
        }
    }

    #[test]
    fn scaled_name_rotates_through_every_replica() {
        let mut table = NetTable::build(&record(), None);
        let firsts: Vec<Ipv4Addr> = (0..6)
            .map(|_| {
                table
                    .lookup_rotating("web", true, false)
                    .expect("web is known")
                    .v4[0]
            })
            .collect();
        let all: Vec<Ipv4Addr> = ["10.9.0.2", "10.9.0.3", "10.9.0.4"]
            .iter()
            .map(|s| s.parse().expect("literal"))
            .collect();
        assert_eq!(firsts[..3], all[..]);
        assert_eq!(firsts[3..], all[..]);
        // Every answer holds every replica.
        let answer = table
            .lookup_rotating("web", true, true)
            .expect("web is known");
        let mut sorted = answer.v4.clone();
        sorted.sort();
        assert_eq!(sorted, all);
        assert_eq!(answer.v6, vec!["fd00::2".parse::<Ipv6Addr>().expect("lit")]);
    }

    #[test]
    fn rotation_survives_a_reload_and_forgets_gone_names() {
        let mut table = NetTable::build(&record(), None);
        let _ = table.lookup_rotating("web", true, false);
        let mut reloaded = NetTable::build(&record(), Some(&table));
        assert_eq!(
            reloaded
                .lookup_rotating("web", true, false)
                .expect("known")
                .v4[0],
            "10.9.0.3".parse::<Ipv4Addr>().expect("lit")
        );
        let mut smaller = record();
        smaller.endpoints.retain(|e| e.id == "b");
        let again = NetTable::build(&smaller, Some(&reloaded));
        assert!(again.get("p-web-1").is_none());
        assert_eq!(again.get("web").map(|e| e.v4.len()), Some(1));
        assert!(!again.turns.contains_key("p-web-1"));
    }

    #[test]
    fn scope_is_the_subnet() {
        let table = NetTable::build(&record(), None);
        assert!(table.serves(ip("10.9.0.77")));
        assert!(table.serves(ip("::ffff:10.9.0.77")));
        assert!(!table.serves(ip("10.9.1.2")));
        assert!(!table.serves(ip("127.0.0.1")));
        assert_eq!(table.reverse(ip("10.9.0.3")), Some("p-web-2"));
        // c1 set `dns:` (one loopback server, dropped); the others use the host's.
        let own = ["192.0.2.53:53".parse::<SocketAddr>().expect("lit")];
        assert_eq!(table.upstreams_of(ip("10.9.0.2")), Some(&own[..]));
        assert_eq!(table.upstreams_of(ip("fd00::2")), Some(&own[..]));
        assert_eq!(table.upstreams_of(ip("10.9.0.3")), None);
        assert_eq!(table.len(), 4);
    }
}
