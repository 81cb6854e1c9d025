//! Published ports: the request type, docker's short syntax, and resolution to concrete host
//! ports (random ones for `"80"`), with a bind probe so a busy port is a clear error before
//! anything is started.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

use crate::store::{Protocol, PublishedPort};

/// Port publishing failures.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortError {
    #[error("invalid port specification {spec:?}: {why}")]
    Invalid { spec: String, why: String },
    #[error("host port {host}:{port}/{proto} is already in use{by}")]
    InUse {
        host: String,
        port: u16,
        proto: Protocol,
        by: String,
    },
    #[error("cannot bind {host}:{port}/{proto} to probe it: {why}")]
    Probe {
        host: String,
        port: u16,
        proto: Protocol,
        why: String,
    },
    #[error("host port range {host} and container port range {container} differ in length")]
    RangeMismatch { host: String, container: String },
}

/// One `ports:` entry as the reconciler hands it over (compose long syntax, ranges allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub protocol: Protocol,
    /// `None` = all host addresses.
    pub host_ip: Option<IpAddr>,
    /// Host port range; `None` = pick a random free port per container port.
    pub host_ports: Option<(u16, u16)>,
    /// Container port range (inclusive).
    pub container_ports: (u16, u16),
}

impl PortMapping {
    /// Parses docker's short syntax: `[[HOST_IP:][HOST_PORT[-END]]:]CONTAINER_PORT[-END][/PROTO]`,
    /// IPv6 host addresses in brackets (`[::1]:8080:80`).
    pub fn parse(spec: &str) -> Result<Self, PortError> {
        let bad = |why: &str| PortError::Invalid {
            spec: spec.to_string(),
            why: why.to_string(),
        };
        let (rest, protocol) = match spec.rsplit_once('/') {
            Some((r, "tcp")) => (r, Protocol::Tcp),
            Some((r, "udp")) => (r, Protocol::Udp),
            Some((_, p)) => return Err(bad(&format!("unsupported protocol {p:?}"))),
            None => (spec, Protocol::Tcp),
        };
        let (host_ip, rest) = if let Some(r) = rest.strip_prefix('[') {
            let (ip, r) = r.split_once("]:").ok_or_else(|| bad("unclosed '['"))?;
            let ip: IpAddr = ip.parse().map_err(|_| bad("bad host address"))?;
            (Some(ip), r.to_string())
        } else {
            let parts: Vec<&str> = rest.split(':').collect();
            match parts.len() {
                1 | 2 => (None, rest.to_string()),
                3 => {
                    let ip: IpAddr = parts[0].parse().map_err(|_| bad("bad host address"))?;
                    (Some(ip), format!("{}:{}", parts[1], parts[2]))
                }
                _ => return Err(bad("too many ':'")),
            }
        };
        let (host, container) = match rest.split_once(':') {
            Some((h, c)) => (Some(h), c),
            None => (None, rest.as_str()),
        };
        let container_ports = parse_range(container).ok_or_else(|| bad("bad container port"))?;
        let host_ports = match host {
            None | Some("") => None,
            Some(h) => Some(parse_range(h).ok_or_else(|| bad("bad host port"))?),
        };
        let m = PortMapping {
            protocol,
            host_ip: host_ip.filter(|ip| !ip.is_unspecified()),
            host_ports,
            container_ports,
        };
        m.check()?;
        Ok(m)
    }

    fn check(&self) -> Result<(), PortError> {
        let len = |r: (u16, u16)| r.1 as u32 - r.0 as u32;
        if let Some(h) = self.host_ports {
            if len(h) != len(self.container_ports) && h.0 != h.1 {
                return Err(PortError::RangeMismatch {
                    host: format!("{}-{}", h.0, h.1),
                    container: format!("{}-{}", self.container_ports.0, self.container_ports.1),
                });
            }
        }
        Ok(())
    }
}

fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?),
        None => {
            let a = s.parse::<u16>().ok()?;
            (a, a)
        }
    };
    if a == 0 || b < a {
        return None;
    }
    Some((a, b))
}

fn probe_addr(host_ip: Option<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port)
}

/// Binds the port briefly: `Ok(port)` when free (port 0 = let the kernel pick one).
pub fn probe(proto: Protocol, host_ip: Option<IpAddr>, port: u16) -> Result<u16, PortError> {
    let addr = probe_addr(host_ip, port);
    let res = match proto {
        Protocol::Tcp => TcpListener::bind(addr).and_then(|l| l.local_addr()),
        Protocol::Udp => UdpSocket::bind(addr).and_then(|s| s.local_addr()),
    };
    match res {
        Ok(a) => Ok(a.port()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(PortError::InUse {
            host: addr.ip().to_string(),
            port,
            proto,
            by: " by another program".to_string(),
        }),
        Err(e) => Err(PortError::Probe {
            host: addr.ip().to_string(),
            port,
            proto,
            why: e.to_string(),
        }),
    }
}

/// Resolves mappings to concrete ports for `container_ip`, checking every host port against the
/// ports already published (`taken`) and against the host (a bind probe).
pub fn resolve(
    mappings: &[PortMapping],
    container_ip: IpAddr,
    taken: &[PublishedPort],
) -> Result<Vec<PublishedPort>, PortError> {
    let mut out: Vec<PublishedPort> = Vec::new();
    for m in mappings {
        m.check()?;
        for (i, cport) in (m.container_ports.0..=m.container_ports.1).enumerate() {
            let host_port = match m.host_ports {
                // `8080:80-82` is not valid, but `8080-8080:80` is: a single host port.
                Some((a, b)) if a == b => a,
                Some((a, _)) => a + i as u16,
                None => 0,
            };
            let clash = |p: &PublishedPort, port: u16| {
                p.protocol == m.protocol
                    && p.host_port == port
                    && (p.host_ip.is_none() || m.host_ip.is_none() || p.host_ip == m.host_ip)
            };
            if host_port != 0 {
                if let Some(p) = taken.iter().chain(out.iter()).find(|p| clash(p, host_port)) {
                    return Err(PortError::InUse {
                        host: m.host_ip.map(|i| i.to_string()).unwrap_or("0.0.0.0".into()),
                        port: host_port,
                        proto: m.protocol,
                        by: format!(
                            " (already published for {}:{})",
                            p.container_ip, p.container_port
                        ),
                    });
                }
            }
            let mut port = probe(m.protocol, m.host_ip, host_port)?;
            // A random port can (rarely) be one we already DNAT without a listener: try again.
            let mut tries = 0;
            while host_port == 0
                && taken.iter().chain(out.iter()).any(|p| clash(p, port))
                && tries < 16
            {
                port = probe(m.protocol, m.host_ip, 0)?;
                tries += 1;
            }
            out.push(PublishedPort {
                protocol: m.protocol,
                host_ip: m.host_ip,
                host_port: port,
                container_ip,
                container_port: cport,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_syntax() {
        let m = PortMapping::parse("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(m.protocol, Protocol::Udp);
        assert_eq!(m.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(m.host_ports, Some((8080, 8080)));
        assert_eq!(m.container_ports, (80, 80));
        let m = PortMapping::parse("80").unwrap();
        assert_eq!(m.host_ports, None);
        let m = PortMapping::parse("8000-8002:80-82").unwrap();
        assert_eq!(m.host_ports, Some((8000, 8002)));
        let m = PortMapping::parse("[::1]:8080:80").unwrap();
        assert_eq!(m.host_ip, Some("::1".parse().unwrap()));
        let m = PortMapping::parse("0.0.0.0::80").unwrap();
        assert_eq!((m.host_ip, m.host_ports), (None, None));
        assert!(PortMapping::parse("80/sctp").is_err());
        assert!(PortMapping::parse("x:80").is_err());
        assert!(PortMapping::parse("8000-8001:80-83").is_err());
        assert!(PortMapping::parse("0").is_err());
    }

    #[test]
    fn resolve_random_range_and_conflicts() {
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        let lo = Some("127.0.0.1".parse().unwrap());
        let random = PortMapping {
            protocol: Protocol::Tcp,
            host_ip: lo,
            host_ports: None,
            container_ports: (80, 81),
        };
        let r = resolve(&[random], ip, &[]).unwrap();
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|p| p.host_port != 0));
        assert_eq!(r[1].container_port, 81);
        // Conflict with an existing publication.
        let fixed = PortMapping {
            protocol: Protocol::Tcp,
            host_ip: None,
            host_ports: Some((r[0].host_port, r[0].host_port)),
            container_ports: (90, 90),
        };
        assert!(matches!(
            resolve(&[fixed], ip, &r),
            Err(PortError::InUse { .. })
        ));
        // Conflict with a host listener.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = l.local_addr().unwrap().port();
        let m = PortMapping {
            protocol: Protocol::Tcp,
            host_ip: lo,
            host_ports: Some((busy, busy)),
            container_ports: (80, 80),
        };
        assert!(matches!(
            resolve(&[m], ip, &[]),
            Err(PortError::InUse { .. })
        ));
    }
}
