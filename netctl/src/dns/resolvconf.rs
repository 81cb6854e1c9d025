//! resolv.conf on both sides: the host's (where the resolver forwards unknown names) and the
//! container's (which points at the resolver).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use super::store::NetSubnet;

/// The host's resolver configuration.
pub const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";
/// systemd-resolved's list of the real upstreams, behind its 127.0.0.53 stub.
pub const SYSTEMD_RESOLV_CONF: &str = "/run/systemd/resolve/resolv.conf";

/// What a resolv.conf says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

impl ResolvConf {
    /// Parses resolv.conf text; unknown lines are ignored as libc does.
    pub fn parse(text: &str) -> Self {
        let mut conf = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    // glibc accepts a scope suffix on link-local v6 (`fe80::1%eth0`): drop it.
                    if let Some(ip) = words
                        .next()
                        .and_then(|w| w.split('%').next())
                        .and_then(|w| w.parse().ok())
                    {
                        conf.nameservers.push(ip);
                    }
                }
                // The last `search` or `domain` line wins, as in glibc.
                Some("search") | Some("domain") => {
                    conf.search = words.map(str::to_owned).collect();
                }
                Some("options") => conf.options.extend(words.map(str::to_owned)),
                _ => {}
            }
        }
        conf
    }

    /// Reads and parses a file; a missing or unreadable one is empty.
    pub fn read(path: &Path) -> Self {
        std::fs::read_to_string(path)
            .map(|text| Self::parse(&text))
            .unwrap_or_default()
    }

    /// Renders the file a container gets.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for ns in &self.nameservers {
            out.push_str(&format!("nameserver {ns}\n"));
        }
        if !self.search.is_empty() {
            out.push_str(&format!("search {}\n", self.search.join(" ")));
        }
        if !self.options.is_empty() {
            out.push_str(&format!("options {}\n", self.options.join(" ")));
        }
        out
    }
}

/// The resolvers the resolver forwards to: the host's, unless they are all loopback stubs (such
/// as systemd-resolved's 127.0.0.53), in which case systemd's own upstream list is preferred
/// when present. The resolver lives in the host's namespace, so a loopback stub still works as
/// a last resort.
pub fn host_upstreams(host: &Path, systemd: &Path) -> Vec<SocketAddr> {
    let conf = ResolvConf::read(host);
    let all_loopback = conf.nameservers.iter().all(IpAddr::is_loopback);
    let chosen = if all_loopback {
        let behind_stub = ResolvConf::read(systemd);
        let real: Vec<IpAddr> = behind_stub
            .nameservers
            .into_iter()
            .filter(|ip| !ip.is_loopback())
            .collect();
        if real.is_empty() {
            conf.nameservers
        } else {
            real
        }
    } else {
        conf.nameservers
            .into_iter()
            .filter(|ip| !ip.is_loopback())
            .collect()
    };
    chosen
        .into_iter()
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The resolv.conf a container gets: the resolver on the gateway of its first network (one
/// nameserver per address family of that network), the host's search domains as docker does,
/// and `ndots:0` so a bare service name is asked as is before any search domain is tried.
/// `first_network` is that network's subnets (from `set_network`).
pub fn container_resolv_conf(first_network: &[NetSubnet], host: &ResolvConf) -> ResolvConf {
    let mut nameservers: Vec<IpAddr> = first_network.iter().map(|s| s.gateway).collect();
    // IPv4 first: every libc tries nameservers in order.
    nameservers.sort_by_key(|ip| ip.is_ipv6());
    nameservers.dedup();
    ResolvConf {
        nameservers,
        search: host.search.clone(),
        options: vec!["ndots:0".to_owned()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_lines() {
        let conf = ResolvConf::parse(
            "# generated\nnameserver 10.0.0.2\nnameserver fe80::1%eth0 # comment\n\
             nameserver bogus\ndomain old.example\nsearch a.example b.example\noptions edns0 ndots:2\n",
        );
        assert_eq!(
            conf.nameservers,
            vec![
                "10.0.0.2".parse::<IpAddr>().expect("lit"),
                "fe80::1".parse().expect("lit")
            ]
        );
        assert_eq!(conf.search, vec!["a.example", "b.example"]);
        assert_eq!(conf.options, vec!["edns0", "ndots:2"]);
    }

    #[test]
    fn loopback_stub_is_replaced_by_systemd_upstreams() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = dir.path().join("resolv.conf");
        let systemd = dir.path().join("systemd.conf");
        std::fs::write(&host, "nameserver 127.0.0.53\noptions edns0\n").expect("write");
        // No systemd file: the stub stays (the resolver runs on the host and can reach it).
        assert_eq!(
            host_upstreams(&host, &systemd),
            vec!["127.0.0.53:53".parse::<SocketAddr>().expect("lit")]
        );
        std::fs::write(&systemd, "nameserver 192.0.2.53\nnameserver 2001:db8::53\n")
            .expect("write");
        assert_eq!(
            host_upstreams(&host, &systemd),
            vec![
                "192.0.2.53:53".parse::<SocketAddr>().expect("lit"),
                "[2001:db8::53]:53".parse().expect("lit")
            ]
        );
        // A real upstream next to a loopback one: keep the real one only.
        std::fs::write(&host, "nameserver 127.0.0.1\nnameserver 192.0.2.1\n").expect("write");
        assert_eq!(
            host_upstreams(&host, &systemd),
            vec!["192.0.2.1:53".parse::<SocketAddr>().expect("lit")]
        );
    }

    #[test]
    fn container_conf_points_at_the_gateway() {
        let host = ResolvConf::parse("nameserver 192.0.2.1\nsearch corp.example\n");
        let subnets = [
            NetSubnet {
                gateway: "fd00::1".parse().expect("lit"),
                subnet: "fd00::/64".parse().expect("lit"),
            },
            NetSubnet {
                gateway: "10.5.0.1".parse().expect("lit"),
                subnet: "10.5.0.0/24".parse().expect("lit"),
            },
        ];
        let conf = container_resolv_conf(&subnets, &host);
        assert_eq!(
            conf.render(),
            "nameserver 10.5.0.1\nnameserver fd00::1\nsearch corp.example\noptions ndots:0\n"
        );
    }
}
