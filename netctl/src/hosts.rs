//! Content builders for a container's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`
//! (`hostname`, `domainname`, `extra_hosts`, `dns`, `dns_search`, `dns_opt`). The container
//! engine writes the files; these functions only produce the text.

use std::fmt::Write as _;
use std::net::IpAddr;

/// Everything that goes into `/etc/hosts`.
#[derive(Debug, Clone, Default)]
pub struct HostsConfig {
    pub hostname: String,
    pub domainname: Option<String>,
    /// The container's own addresses (first = primary), one line each with its names.
    pub addresses: Vec<IpAddr>,
    /// Extra names of the container itself (aliases) printed after the hostname.
    pub aliases: Vec<String>,
    /// `extra_hosts`: (`host`, `ip`), in order. `host-gateway` must already be resolved.
    pub extra_hosts: Vec<(String, IpAddr)>,
    /// Whether IPv6 localhost lines are written (docker writes them unless IPv6 is disabled).
    pub ipv6: bool,
}

/// Renders `/etc/hosts` the way docker does: localhost lines, extra hosts, then the container's
/// own addresses with `hostname.domainname hostname`.
pub fn render_hosts(c: &HostsConfig) -> String {
    let mut s = String::new();
    s.push_str("127.0.0.1\tlocalhost\n");
    if c.ipv6 {
        s.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
        s.push_str("fe00::\tip6-localnet\n");
        s.push_str("ff00::\tip6-mcastprefix\n");
        s.push_str("ff02::1\tip6-allnodes\n");
        s.push_str("ff02::2\tip6-allrouters\n");
    }
    for (host, ip) in &c.extra_hosts {
        let _ = writeln!(s, "{ip}\t{host}");
    }
    let mut names = Vec::new();
    match c.domainname.as_deref().filter(|d| !d.is_empty()) {
        Some(d) if !c.hostname.is_empty() => {
            names.push(format!("{}.{}", c.hostname, d));
            names.push(c.hostname.clone());
        }
        _ if !c.hostname.is_empty() => names.push(c.hostname.clone()),
        _ => {}
    }
    for a in &c.aliases {
        if !names.contains(a) {
            names.push(a.clone());
        }
    }
    if !names.is_empty() {
        for ip in &c.addresses {
            let _ = writeln!(s, "{ip}\t{}", names.join(" "));
        }
    }
    s
}

/// `/etc/hostname`.
pub fn render_hostname(hostname: &str) -> String {
    format!("{hostname}\n")
}

/// Everything that goes into `/etc/resolv.conf`.
#[derive(Debug, Clone, Default)]
pub struct ResolvConfig {
    /// `dns:`; when empty, `fallback_nameservers` are used.
    pub nameservers: Vec<IpAddr>,
    /// `dns_search:`; when empty, the host's search domains.
    pub search: Vec<String>,
    /// `dns_opt:` (`ndots:2`, `timeout:1`, …); when empty, the host's options.
    pub options: Vec<String>,
    /// Used when `nameservers` is empty: typically the network's DNS resolver (gateway address),
    /// or the host's nameservers.
    pub fallback_nameservers: Vec<IpAddr>,
}

/// What the host's resolv.conf says (the parts a container inherits).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostResolv {
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// Parses a resolv.conf (the host's). Unknown lines are ignored.
pub fn parse_resolv_conf(text: &str) -> HostResolv {
    let mut r = HostResolv::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ip) = words.next().and_then(|w| w.split('%').next()?.parse().ok()) {
                    r.nameservers.push(ip);
                }
            }
            Some("search") | Some("domain") => r.search = words.map(str::to_string).collect(),
            Some("options") => r.options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    r
}

/// Renders `/etc/resolv.conf`. A container cannot reach the host's loopback stub resolver
/// (systemd-resolved's 127.0.0.53): loopback nameservers are dropped here, so callers should
/// put the network's resolver (or the stub's upstreams) in `fallback_nameservers`.
pub fn render_resolv_conf(c: &ResolvConfig, host: &HostResolv) -> String {
    let mut s = String::new();
    let search = if c.search.is_empty() {
        &host.search
    } else {
        &c.search
    };
    if !search.is_empty() {
        let _ = writeln!(s, "search {}", search.join(" "));
    }
    let servers: Vec<IpAddr> = if !c.nameservers.is_empty() {
        c.nameservers.clone()
    } else if !c.fallback_nameservers.is_empty() {
        c.fallback_nameservers.clone()
    } else {
        host.nameservers
            .iter()
            .copied()
            .filter(|ip| !ip.is_loopback())
            .collect()
    };
    for ns in servers {
        let _ = writeln!(s, "nameserver {ns}");
    }
    let options = if c.options.is_empty() {
        &host.options
    } else {
        &c.options
    };
    if !options.is_empty() {
        let _ = writeln!(s, "options {}", options.join(" "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file() {
        let h = render_hosts(&HostsConfig {
            hostname: "web".into(),
            domainname: Some("example.org".into()),
            addresses: vec!["172.18.0.2".parse().unwrap()],
            aliases: vec!["www".into()],
            extra_hosts: vec![("db.local".into(), "10.0.0.5".parse().unwrap())],
            ipv6: true,
        });
        assert!(h.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"));
        assert!(h.contains("10.0.0.5\tdb.local\n"));
        assert!(h.ends_with("172.18.0.2\tweb.example.org web www\n"));
    }

    #[test]
    fn resolv_conf() {
        let host = parse_resolv_conf(
            "# generated\nnameserver 127.0.0.53\nnameserver 9.9.9.9\nsearch lan corp\noptions edns0 trust-ad\n",
        );
        assert_eq!(host.nameservers.len(), 2);
        let plain = render_resolv_conf(&ResolvConfig::default(), &host);
        assert_eq!(
            plain,
            "search lan corp\nnameserver 9.9.9.9\noptions edns0 trust-ad\n"
        );
        let custom = render_resolv_conf(
            &ResolvConfig {
                nameservers: vec!["1.1.1.1".parse().unwrap()],
                search: vec!["svc.local".into()],
                options: vec!["ndots:2".into()],
                fallback_nameservers: vec!["172.18.0.1".parse().unwrap()],
            },
            &host,
        );
        assert_eq!(
            custom,
            "search svc.local\nnameserver 1.1.1.1\noptions ndots:2\n"
        );
        let resolver = render_resolv_conf(
            &ResolvConfig {
                fallback_nameservers: vec!["172.18.0.1".parse().unwrap()],
                ..Default::default()
            },
            &HostResolv::default(),
        );
        assert_eq!(resolver, "nameserver 172.18.0.1\n");
    }
}
