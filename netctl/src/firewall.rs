//! nftables: egress masquerade, isolation of internal networks and published ports.
//!
//! **Choice: `nft -f -` with a generated script, replacing our whole table in one transaction.**
//! The table is a pure function of the records (networks + published ports), so every change
//! re-renders it and hands it to `nft` as `table …; delete table …; table … { … }`: the kernel
//! applies the file atomically (one nf_tables transaction), the "add table" first makes the delete
//! idempotent, and a crash can never leave half a rule set — the next command renders it again
//! from the records (this is also what `prune` relies on). Compared with nftnl over netlink this
//! costs one fork/exec of `nft` (a few ms) per *network or port* change, never per attach, and
//! spares us hand-assembling nftables bytecode (expressions, registers, set handles) in Rust; the
//! text is also what a user sees in `nft list ruleset`, which makes problems easy to read.
//!
//! One table per state root: `inet rcompose` for the default root, `inet rcompose-RRRR` for other
//! roots (tests), so two roots never rewrite each other's rules. The `inet` family covers IPv4 and
//! IPv6 with one set of chains (NAT in `inet` needs Linux ≥ 5.2).
//!
//! Published ports are DNAT rules; see [`render`] for the localhost quirk.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use ipnet::IpNet;

use crate::store::{NetworkRecord, PortsRecord};

/// Failures running `nft`.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("running nft (is the `nftables` package installed?)")]
    Spawn(#[source] std::io::Error),
    #[error("nft rejected the rule set: {0}")]
    Rejected(String),
}

/// Renders the full script that replaces table `inet <table>`, or the script that removes it when
/// there is no network left.
///
/// Rules, per network with bridge `B` and subnet `S`:
/// - forward: an `internal` network's traffic never leaves its bridge (no egress, no forwarding
///   in); traffic between two of our bridges is dropped (isolation) unless it is a published port
///   reached through the host (conntrack says DNAT);
/// - postrouting: `S` leaving through anything but `B` is masqueraded (egress), unless internal;
///   connections to a container whose source is loopback or the container's own subnet after DNAT
///   (hairpin) are masqueraded so replies come back through the host;
/// - prerouting/output: packets to a local address jump to `ports`, which holds one DNAT rule per
///   published port.
///
/// Kernel quirk (why 127.0.0.1 works): a connection to `127.0.0.1:8080` is DNATed in the *output*
/// hook to `10.x.y.z:80`, so it leaves through the bridge with source 127.0.0.1. The kernel drops
/// such packets as martians unless `net.ipv4.conf.<bridge>.route_localnet=1` (set when the bridge
/// is created), and the container could not answer 127.0.0.1 anyway — hence the masquerade of
/// `127.0.0.0/8` leaving through `B`, which rewrites the source to the bridge address.
pub fn render(
    table: &str,
    link_prefix: &str,
    nets: &[NetworkRecord],
    ports: &[PortsRecord],
) -> String {
    let mut s = String::new();
    // `table` first creates it when missing, so `delete` never fails: the pair is idempotent.
    let _ = writeln!(s, "table inet {table}");
    let _ = writeln!(s, "delete table inet {table}");
    if nets.is_empty() {
        return s;
    }
    let _ = writeln!(s, "table inet {table} {{");

    let _ = writeln!(s, "  chain forward {{");
    let _ = writeln!(
        s,
        "    type filter hook forward priority filter; policy accept;"
    );
    for n in nets.iter().filter(|n| n.internal) {
        let b = &n.bridge;
        let _ = writeln!(s, "    iifname \"{b}\" oifname != \"{b}\" drop");
        let _ = writeln!(s, "    oifname \"{b}\" iifname != \"{b}\" drop");
    }
    for n in nets {
        let b = &n.bridge;
        let _ = writeln!(s, "    iifname \"{b}\" oifname \"{b}\" accept");
    }
    let _ = writeln!(s, "    ct status dnat accept");
    // Our bridges are named `<prefix>b…`, so one wildcard isolates them all (leftovers of a
    // crash included); bridges named by the user (`com.docker.network.bridge.name`) are
    // listed by name, against the wildcard and against each other.
    let ours = format!("\"{link_prefix}b*\"");
    let _ = writeln!(s, "    iifname {ours} oifname {ours} drop");
    let custom: Vec<String> = nets
        .iter()
        .filter(|n| !n.bridge.starts_with(&format!("{link_prefix}b")))
        .map(|n| format!("\"{}\"", n.bridge))
        .collect();
    if !custom.is_empty() {
        let set = format!("{{ {} }}", custom.join(", "));
        let _ = writeln!(s, "    iifname {set} oifname {ours} drop");
        let _ = writeln!(s, "    iifname {ours} oifname {set} drop");
        let _ = writeln!(s, "    iifname {set} oifname {set} drop");
    }
    let _ = writeln!(s, "  }}");

    let _ = writeln!(s, "  chain prerouting {{");
    let _ = writeln!(
        s,
        "    type nat hook prerouting priority dstnat; policy accept;"
    );
    let _ = writeln!(s, "    fib daddr type local jump ports");
    let _ = writeln!(s, "  }}");
    let _ = writeln!(s, "  chain output {{");
    let _ = writeln!(s, "    type nat hook output priority -100; policy accept;");
    let _ = writeln!(s, "    fib daddr type local jump ports");
    let _ = writeln!(s, "  }}");

    let _ = writeln!(s, "  chain ports {{");
    for rec in ports {
        for p in &rec.ports {
            let proto = p.protocol.as_str();
            let (fam, nfproto) = match p.container_ip {
                IpAddr::V4(_) => ("ip", "ipv4"),
                IpAddr::V6(_) => ("ip6", "ipv6"),
            };
            let dst = match p.host_ip {
                Some(IpAddr::V4(a)) if fam == "ip" => format!("ip daddr {a}"),
                Some(IpAddr::V6(a)) if fam == "ip6" => format!("ip6 daddr {a}"),
                // A host address of the other family than the container's: nothing to match.
                Some(_) => continue,
                None => format!("meta nfproto {nfproto}"),
            };
            let to = match p.container_ip {
                IpAddr::V4(a) => format!("{a}:{}", p.container_port),
                IpAddr::V6(a) => format!("[{a}]:{}", p.container_port),
            };
            let _ = writeln!(
                s,
                "    {dst} {proto} dport {} dnat {fam} to {to}",
                p.host_port
            );
        }
    }
    let _ = writeln!(s, "  }}");

    let _ = writeln!(s, "  chain postrouting {{");
    let _ = writeln!(
        s,
        "    type nat hook postrouting priority srcnat; policy accept;"
    );
    for n in nets {
        let b = &n.bridge;
        for sub in &n.subnets {
            let fam = match sub.subnet {
                IpNet::V4(_) => "ip",
                IpNet::V6(_) => "ip6",
            };
            let net = sub.subnet;
            if !n.internal {
                let _ = writeln!(s, "    {fam} saddr {net} oifname != \"{b}\" masquerade");
            }
            let _ = writeln!(
                s,
                "    oifname \"{b}\" {fam} saddr {net} ct status dnat masquerade"
            );
        }
        if n.v4().is_some() {
            let _ = writeln!(s, "    oifname \"{b}\" ip saddr 127.0.0.0/8 masquerade");
        }
    }
    let _ = writeln!(s, "  }}");
    let _ = writeln!(s, "}}");
    s
}

/// Runs `nft -f -` with `script` on its standard input.
pub fn run_nft(script: &str) -> Result<(), FirewallError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(FirewallError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(FirewallError::Spawn)?;
    }
    let out = child.wait_with_output().map_err(FirewallError::Spawn)?;
    if !out.status.success() {
        return Err(FirewallError::Rejected(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

/// Whether table `inet <table>` exists.
pub fn table_exists(table: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "inet", table])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::SubnetConfig;
    use crate::store::{Protocol, PublishedPort};
    use std::collections::BTreeMap;

    fn net(name: &str, bridge: &str, subnet: &str, internal: bool) -> NetworkRecord {
        let subnet: IpNet = subnet.parse().unwrap();
        NetworkRecord {
            name: name.into(),
            id: "00".repeat(32),
            driver: "bridge".into(),
            bridge: bridge.into(),
            mtu: 1500,
            internal,
            enable_ipv6: false,
            subnets: vec![SubnetConfig {
                subnet,
                gateway: crate::ipam::complete(subnet, &Default::default())
                    .unwrap()
                    .gateway,
                ip_range: None,
                aux_addresses: BTreeMap::new(),
            }],
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            created: String::new(),
            endpoints: BTreeMap::new(),
        }
    }

    #[test]
    fn empty_state_removes_the_table() {
        assert_eq!(
            render("rcompose", "rc1234", &[], &[]),
            "table inet rcompose\ndelete table inet rcompose\n"
        );
    }

    #[test]
    fn rules_for_networks_and_ports() {
        let nets = [
            net("a", "rc1234baaaaaaaa", "10.1.0.0/24", false),
            net("i", "rc1234biiiiiiii", "10.2.0.0/24", true),
        ];
        let ports = [PortsRecord {
            container_id: "c".into(),
            ports: vec![
                PublishedPort {
                    protocol: Protocol::Tcp,
                    host_ip: None,
                    host_port: 8080,
                    container_ip: "10.1.0.2".parse().unwrap(),
                    container_port: 80,
                },
                PublishedPort {
                    protocol: Protocol::Udp,
                    host_ip: Some("127.0.0.1".parse().unwrap()),
                    host_port: 5353,
                    container_ip: "10.1.0.2".parse().unwrap(),
                    container_port: 53,
                },
            ],
        }];
        let s = render("rcompose", "rc1234", &nets, &ports);
        assert!(s.contains("ip saddr 10.1.0.0/24 oifname != \"rc1234baaaaaaaa\" masquerade"));
        assert!(!s.contains("ip saddr 10.2.0.0/24 oifname != \"rc1234biiiiiiii\" masquerade"));
        assert!(s.contains("iifname \"rc1234biiiiiiii\" oifname != \"rc1234biiiiiiii\" drop"));
        assert!(s.contains("meta nfproto ipv4 tcp dport 8080 dnat ip to 10.1.0.2:80"));
        assert!(s.contains("ip daddr 127.0.0.1 udp dport 5353 dnat ip to 10.1.0.2:53"));
        assert!(s.contains("oifname \"rc1234baaaaaaaa\" ip saddr 127.0.0.0/8 masquerade"));
        assert!(s.contains("iifname \"rc1234b*\" oifname \"rc1234b*\" drop"));
        assert!(!s.contains("iifname {"), "no custom bridge, no set: {s}");
    }

    #[test]
    fn custom_bridge_names_are_isolated_too() {
        let nets = [
            net("a", "rc1234baaaaaaaa", "10.1.0.0/24", false),
            net("x", "mybridge", "10.3.0.0/24", false),
            net("y", "otherbr", "10.4.0.0/24", false),
        ];
        let s = render("rcompose", "rc1234", &nets, &[]);
        let set = "{ \"mybridge\", \"otherbr\" }";
        assert!(
            s.contains(&format!("iifname {set} oifname \"rc1234b*\" drop")),
            "{s}"
        );
        assert!(
            s.contains(&format!("iifname \"rc1234b*\" oifname {set} drop")),
            "{s}"
        );
        assert!(
            s.contains(&format!("iifname {set} oifname {set} drop")),
            "{s}"
        );
        // Traffic within one bridge is accepted before any of the drops.
        let accept = s
            .find("iifname \"mybridge\" oifname \"mybridge\" accept")
            .unwrap();
        assert!(
            accept
                < s.find(&format!("iifname {set} oifname {set} drop"))
                    .unwrap()
        );
    }
}
