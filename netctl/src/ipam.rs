//! Address management: picking subnets from the default pools, validating `ipam.config`, handing
//! out container addresses. Pure functions over the records; the caller holds the lock.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

/// IPAM failures.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpamError {
    #[error("no free subnet left in the default address pools (every candidate overlaps a host route, a host address or another network)")]
    PoolExhausted,
    #[error("subnet {subnet} overlaps subnet {other} of network {network:?}")]
    Overlap {
        subnet: IpNet,
        other: IpNet,
        network: String,
    },
    #[error("{what} {addr} is not inside subnet {subnet}")]
    OutsideSubnet {
        what: &'static str,
        addr: String,
        subnet: IpNet,
    },
    #[error("address {0} is already in use on this network")]
    AddressInUse(IpAddr),
    #[error("address {addr} is reserved on this network ({why})")]
    Reserved { addr: IpAddr, why: String },
    #[error("no free address left in {0}")]
    Exhausted(IpNet),
    #[error("the network has no {0} subnet")]
    NoSubnet(&'static str),
    #[error("subnet {0} is too small (needs room for a gateway and one container)")]
    TooSmall(IpNet),
}

/// One configured subnet of a network, as stored in its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetConfig {
    pub subnet: IpNet,
    pub gateway: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<IpNet>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_addresses: BTreeMap<String, IpAddr>,
}

/// A user's `ipam.config` entry before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamConfig {
    #[serde(default)]
    pub subnet: Option<IpNet>,
    #[serde(default)]
    pub ip_range: Option<IpNet>,
    #[serde(default)]
    pub gateway: Option<IpAddr>,
    #[serde(default)]
    pub aux_addresses: BTreeMap<String, IpAddr>,
}

/// Docker's default pools: 172.17.0.0/16 … 172.31.0.0/16, then 192.168.0.0/20 … 192.168.240.0/20.
pub fn default_pool() -> impl Iterator<Item = Ipv4Net> {
    let a = (17u8..=31).filter_map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).ok());
    let b = (0u8..16).filter_map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).ok());
    a.chain(b)
}

/// Whether two networks share any address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first default-pool subnet that overlaps none of `taken`.
pub fn pick_subnet(taken: &[IpNet]) -> Result<IpNet, IpamError> {
    default_pool()
        .map(IpNet::V4)
        .find(|c| !taken.iter().any(|t| overlaps(c, t)))
        .ok_or(IpamError::PoolExhausted)
}

/// A deterministic unique-local /64 for a network's IPv6 side (`fdXX:XXXX:XXXX:YYYY::/64`),
/// the first of the 16 candidates derived from `seed` that overlaps none of `taken`.
pub fn pick_subnet_v6(seed: &str, taken: &[IpNet]) -> Result<IpNet, IpamError> {
    let h = crate::names::hash_hex(&[seed.as_bytes()]);
    let word = |i: usize| u16::from_str_radix(&h[i * 4..i * 4 + 4], 16).unwrap_or(0);
    for i in 0..16u16 {
        let addr = Ipv6Addr::new(
            0xfd00 | (word(0) & 0xff),
            word(1),
            word(2),
            word(3).wrapping_add(i),
            0,
            0,
            0,
            0,
        );
        let net = IpNet::V6(Ipv6Net::new(addr, 64).map_err(|_| IpamError::PoolExhausted)?);
        if !taken.iter().any(|t| overlaps(&net, t)) {
            return Ok(net);
        }
    }
    Err(IpamError::PoolExhausted)
}

fn first_host(net: &IpNet) -> Option<IpAddr> {
    match net {
        IpNet::V4(n) => {
            if n.prefix_len() >= 31 {
                return None;
            }
            Some(IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) + 1)))
        }
        IpNet::V6(n) => {
            if n.prefix_len() >= 127 {
                return None;
            }
            Some(IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) + 1)))
        }
    }
}

/// Validates one `ipam.config` entry whose subnet is known, filling in the gateway (the first
/// host address, as docker does).
pub fn complete(subnet: IpNet, cfg: &IpamConfig) -> Result<SubnetConfig, IpamError> {
    let subnet = subnet.trunc();
    let gateway = match cfg.gateway {
        Some(g) => {
            check_host(&subnet, g, "gateway")?;
            g
        }
        None => first_host(&subnet).ok_or(IpamError::TooSmall(subnet))?,
    };
    if let Some(r) = cfg.ip_range {
        if !subnet.contains(&r.network()) || r.prefix_len() < subnet.prefix_len() {
            return Err(IpamError::OutsideSubnet {
                what: "ip_range",
                addr: r.to_string(),
                subnet,
            });
        }
    }
    for (name, a) in &cfg.aux_addresses {
        if !subnet.contains(a) {
            return Err(IpamError::OutsideSubnet {
                what: "aux address",
                addr: format!("{name}={a}"),
                subnet,
            });
        }
    }
    Ok(SubnetConfig {
        subnet,
        gateway,
        ip_range: cfg.ip_range.map(|r| r.trunc()),
        aux_addresses: cfg.aux_addresses.clone(),
    })
}

fn check_host(subnet: &IpNet, a: IpAddr, what: &'static str) -> Result<(), IpamError> {
    if !subnet.contains(&a) {
        return Err(IpamError::OutsideSubnet {
            what,
            addr: a.to_string(),
            subnet: *subnet,
        });
    }
    if a == subnet.network() && subnet.prefix_len() < subnet.max_prefix_len() - 1 {
        return Err(IpamError::Reserved {
            addr: a,
            why: "network address".to_string(),
        });
    }
    if let IpNet::V4(n) = subnet {
        if n.prefix_len() < 31 && a == IpAddr::V4(n.broadcast()) {
            return Err(IpamError::Reserved {
                addr: a,
                why: "broadcast address".to_string(),
            });
        }
    }
    Ok(())
}

/// Hands out one address of `sub`: the requested one if given and free, otherwise the lowest free
/// address of `ip_range` (or of the subnet), never the network, broadcast, gateway or an
/// auxiliary address.
pub fn allocate(
    sub: &SubnetConfig,
    used: &BTreeSet<IpAddr>,
    requested: Option<IpAddr>,
) -> Result<IpAddr, IpamError> {
    let reserved = |a: IpAddr| -> Option<String> {
        if a == sub.gateway {
            return Some("gateway".to_string());
        }
        sub.aux_addresses
            .iter()
            .find(|(_, v)| **v == a)
            .map(|(k, _)| format!("auxiliary address {k}"))
    };
    if let Some(a) = requested {
        check_host(&sub.subnet, a, "requested address")?;
        if let Some(why) = reserved(a) {
            return Err(IpamError::Reserved { addr: a, why });
        }
        if used.contains(&a) {
            return Err(IpamError::AddressInUse(a));
        }
        return Ok(a);
    }
    let range = sub.ip_range.unwrap_or(sub.subnet);
    let ok = |a: IpAddr| {
        check_host(&sub.subnet, a, "").is_ok() && reserved(a).is_none() && !used.contains(&a)
    };
    match range {
        IpNet::V4(r) => {
            let start = u32::from(r.network());
            let end = u32::from(r.broadcast());
            // Bounded: a /8 has 16M addresses but `used` is small, so we stop early in practice.
            (start..=end)
                .map(|x| IpAddr::V4(Ipv4Addr::from(x)))
                .find(|a| ok(*a))
                .ok_or(IpamError::Exhausted(sub.subnet))
        }
        IpNet::V6(r) => {
            let start = u128::from(r.network());
            // Scan at most used+3 candidates past the start: enough to find a free one.
            let limit = used.len() as u128 + 3 + sub.aux_addresses.len() as u128;
            let end = u128::from(r.broadcast());
            (0..=limit)
                .map_while(|i| start.checked_add(i).filter(|x| *x <= end))
                .map(|x| IpAddr::V6(Ipv6Addr::from(x)))
                .find(|a| ok(*a))
                .ok_or(IpamError::Exhausted(sub.subnet))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn pool_skips_taken_and_host_routes() {
        assert_eq!(pick_subnet(&[]).unwrap(), net("172.17.0.0/16"));
        let taken = vec![net("172.17.5.0/24"), net("172.16.0.0/12")];
        // 172.16/12 covers 172.17–31: skip to 192.168.0.0/20.
        assert_eq!(pick_subnet(&taken).unwrap(), net("192.168.0.0/20"));
        let taken = vec![net("172.17.0.0/16"), net("172.18.0.1/32")];
        assert_eq!(pick_subnet(&taken).unwrap(), net("172.19.0.0/16"));
        let all: Vec<IpNet> = vec![net("0.0.0.0/1"), net("128.0.0.0/1")];
        assert_eq!(pick_subnet(&all), Err(IpamError::PoolExhausted));
    }

    #[test]
    fn complete_defaults_gateway_and_validates() {
        let s = complete(net("10.1.2.0/24"), &IpamConfig::default()).unwrap();
        assert_eq!(s.gateway, "10.1.2.1".parse::<IpAddr>().unwrap());
        let bad = IpamConfig {
            gateway: Some("10.9.9.9".parse().unwrap()),
            ..Default::default()
        };
        assert!(matches!(
            complete(net("10.1.2.0/24"), &bad),
            Err(IpamError::OutsideSubnet { .. })
        ));
        let bad = IpamConfig {
            ip_range: Some(net("10.1.0.0/16")),
            ..Default::default()
        };
        assert!(complete(net("10.1.2.0/24"), &bad).is_err());
        let bcast = IpamConfig {
            gateway: Some("10.1.2.255".parse().unwrap()),
            ..Default::default()
        };
        assert!(matches!(
            complete(net("10.1.2.0/24"), &bcast),
            Err(IpamError::Reserved { .. })
        ));
    }

    #[test]
    fn allocate_skips_reserved_and_honours_range_and_static() {
        let mut aux = BTreeMap::new();
        aux.insert("router".to_string(), "10.1.2.2".parse().unwrap());
        let s = complete(
            net("10.1.2.0/24"),
            &IpamConfig {
                aux_addresses: aux,
                ..Default::default()
            },
        )
        .unwrap();
        let mut used = BTreeSet::new();
        let a = allocate(&s, &used, None).unwrap();
        assert_eq!(a, "10.1.2.3".parse::<IpAddr>().unwrap());
        used.insert(a);
        assert_eq!(
            allocate(&s, &used, None).unwrap(),
            "10.1.2.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            allocate(&s, &used, Some(a)),
            Err(IpamError::AddressInUse(a))
        );
        assert!(matches!(
            allocate(&s, &used, Some("10.1.2.2".parse().unwrap())),
            Err(IpamError::Reserved { .. })
        ));
        assert!(matches!(
            allocate(&s, &used, Some("10.1.3.2".parse().unwrap())),
            Err(IpamError::OutsideSubnet { .. })
        ));
        let r = complete(
            net("10.1.2.0/24"),
            &IpamConfig {
                ip_range: Some(net("10.1.2.128/25")),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            allocate(&r, &used, None).unwrap(),
            "10.1.2.128".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn exhaustion_and_v6() {
        let s = complete(net("10.1.2.0/30"), &IpamConfig::default()).unwrap();
        let mut used = BTreeSet::new();
        let a = allocate(&s, &used, None).unwrap();
        assert_eq!(a, "10.1.2.2".parse::<IpAddr>().unwrap());
        used.insert(a);
        assert_eq!(
            allocate(&s, &used, None),
            Err(IpamError::Exhausted(net("10.1.2.0/30")))
        );
        let v6 = pick_subnet_v6("net", &[]).unwrap();
        assert_eq!(v6.prefix_len(), 64);
        let s6 = complete(v6, &IpamConfig::default()).unwrap();
        let a6 = allocate(&s6, &BTreeSet::new(), None).unwrap();
        assert_ne!(a6, s6.gateway);
        assert!(v6.contains(&a6));
        let other = pick_subnet_v6("net", &[v6]).unwrap();
        assert_ne!(other, v6);
    }
}
