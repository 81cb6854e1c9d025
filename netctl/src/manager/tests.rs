//! Planning and rollback of the manager against a fake kernel (no root needed).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::*;
use crate::netlink::LinkSummary;

/// Records every call; fails the call whose name is in `fail`.
#[derive(Default)]
struct Fake {
    links: BTreeMap<String, u32>,
    calls: Vec<String>,
    fail: Vec<&'static str>,
    nft: Vec<String>,
    next: u32,
}

fn err(op: &str) -> NetlinkError {
    NetlinkError::Kernel {
        op: op.to_string(),
        source: std::io::Error::from_raw_os_error(libc::EPERM),
    }
}

impl Fake {
    fn check(&mut self, op: &'static str) -> Result<(), NetlinkError> {
        self.calls.push(op.to_string());
        if self.fail.contains(&op) {
            return Err(err(op));
        }
        Ok(())
    }
}

impl NetOps for Fake {
    fn link_index(&mut self, name: &str) -> Result<Option<u32>, NetlinkError> {
        Ok(self.links.get(name).copied())
    }
    fn links(&mut self) -> Result<Vec<LinkSummary>, NetlinkError> {
        Ok(self
            .links
            .iter()
            .map(|(n, i)| LinkSummary {
                index: *i,
                name: n.clone(),
                kind: None,
                master: None,
            })
            .collect())
    }
    fn create_bridge(&mut self, name: &str, _: u32, _: &[IpNet]) -> Result<u32, NetlinkError> {
        self.check("create_bridge")?;
        self.next += 1;
        self.links.insert(name.to_string(), self.next);
        Ok(self.next)
    }
    fn delete_link(&mut self, name: &str) -> Result<bool, NetlinkError> {
        self.check("delete_link")?;
        Ok(self.links.remove(name).is_some())
    }

    fn retire_link(&mut self, name: &str) -> Result<bool, NetlinkError> {
        self.check("retire_link")?;
        Ok(self.links.remove(name).is_some())
    }
    fn create_veth(&mut self, spec: &VethSpec, _: &Path) -> Result<(), NetlinkError> {
        self.check("create_veth")?;
        self.next += 1;
        self.links.insert(spec.host.clone(), self.next);
        Ok(())
    }
    fn configure_container(&mut self, _: &Path, _: &ContainerIfConfig) -> Result<(), NetlinkError> {
        self.check("configure_container")
    }
    fn host_networks(&mut self) -> Result<Vec<IpNet>, NetlinkError> {
        Ok(vec![
            "172.17.0.0/16".parse().unwrap(),
            "192.0.2.0/24".parse().unwrap(),
        ])
    }
    fn sysctl(&mut self, _: &str, _: &str) -> Result<(), NetlinkError> {
        self.check("sysctl")
    }
    fn nft(&mut self, script: &str) -> Result<(), NetlinkError> {
        self.check("nft")?;
        self.nft.push(script.to_string());
        Ok(())
    }
}

fn manager(dir: &Path) -> NetworkManager<Fake> {
    NetworkManager::with_ops(dir, Fake::default()).unwrap()
}

fn spec(name: &str, subnet: Option<&str>) -> NetworkSpec {
    NetworkSpec {
        name: name.to_string(),
        ipam: subnet
            .map(|s| {
                vec![IpamConfig {
                    subnet: Some(s.parse().unwrap()),
                    ..Default::default()
                }]
            })
            .unwrap_or_default(),
        ..Default::default()
    }
}

fn req(cid: &str, netns: &Path) -> AttachRequest {
    AttachRequest {
        container_id: cid.to_string(),
        container_name: format!("name-{cid}"),
        netns_path: netns.to_path_buf(),
        is_default_route: true,
        ..Default::default()
    }
}

#[test]
fn create_picks_free_pool_subnet_and_writes_table() {
    let d = tempfile::tempdir().unwrap();
    let mut m = manager(d.path());
    let a = m.create_network(&spec("a", None)).unwrap();
    // 172.17/16 is a host route in the fake: skipped.
    assert_eq!(a.subnets[0].subnet.to_string(), "172.18.0.0/16");
    assert_eq!(a.subnets[0].gateway.to_string(), "172.18.0.1");
    let b = m.create_network(&spec("b", None)).unwrap();
    assert_eq!(b.subnets[0].subnet.to_string(), "172.19.0.0/16");
    assert!(a.bridge.starts_with(m.link_prefix()) && a.bridge.len() == 15);
    assert!(matches!(
        m.create_network(&spec("a", None)),
        Err(NetworkError::Exists(_))
    ));
    assert!(matches!(
        m.create_network(&spec("c", Some("172.18.5.0/24"))),
        Err(NetworkError::Ipam(IpamError::Overlap { .. }))
    ));
    let last = m.ops().nft.last().unwrap();
    assert!(last.contains(&b.bridge) && last.contains(&a.bridge));
    m.remove_network("a").unwrap();
    m.remove_network("b").unwrap();
    // The last network takes the table with it.
    assert!(!m.ops().nft.last().unwrap().contains('{'));
    assert!(m.ops().links.is_empty());
    assert!(m.list().unwrap().is_empty());
}

#[test]
fn create_rolls_back_when_the_firewall_fails() {
    let d = tempfile::tempdir().unwrap();
    let mut m = manager(d.path());
    m.ops_mut().fail.push("nft");
    let e = m
        .create_network(&spec("a", Some("10.9.0.0/24")))
        .unwrap_err();
    assert!(matches!(e, NetworkError::Failed { .. }), "{e}");
    assert!(m.ops().links.is_empty(), "bridge removed again");
    assert!(m.list().unwrap().is_empty(), "record removed again");
}

#[test]
fn attach_allocates_and_detach_releases() {
    let d = tempfile::tempdir().unwrap();
    let mut m = manager(d.path());
    m.create_network(&spec("n", Some("10.9.0.0/24"))).unwrap();
    let a1 = m.attach("n", &req("c1", d.path())).unwrap();
    assert_eq!(a1.ip.unwrap().to_string(), "10.9.0.2");
    assert_eq!(a1.mac, "02:42:0a:09:00:02");
    assert_eq!(a1.gateway.unwrap().to_string(), "10.9.0.1");
    assert_eq!(a1.ifname, "eth0");
    let a2 = m.attach("n", &req("c2", d.path())).unwrap();
    assert_eq!(a2.ip.unwrap().to_string(), "10.9.0.3");
    assert!(matches!(
        m.attach("n", &req("c1", d.path())),
        Err(NetworkError::AlreadyAttached { .. })
    ));
    let mut r3 = req("c3", d.path());
    r3.ipv4_address = Some("10.9.0.3".parse().unwrap());
    assert!(matches!(
        m.attach("n", &r3),
        Err(NetworkError::Ipam(IpamError::AddressInUse(_)))
    ));
    assert!(matches!(
        m.remove_network("n"),
        Err(NetworkError::InUse { .. })
    ));
    m.detach("n", "c1").unwrap();
    assert!(!m.ops().links.contains_key(&a1.host_veth));
    // The address is free again.
    let a3 = m.attach("n", &req("c3", d.path())).unwrap();
    assert_eq!(a3.ip, a1.ip);
    // A second network gets eth1 for the same container.
    m.create_network(&spec("o", Some("10.9.1.0/24"))).unwrap();
    let b = m.attach("o", &req("c3", d.path())).unwrap();
    assert_eq!(b.ifname, "eth1");
    m.detach_all("c3").unwrap();
    m.detach_all("c2").unwrap();
    m.remove_network("n").unwrap();
    m.remove_network("o").unwrap();
}

#[test]
fn half_built_attachment_is_rolled_back() {
    let d = tempfile::tempdir().unwrap();
    let mut m = manager(d.path());
    m.create_network(&spec("n", Some("10.9.0.0/24"))).unwrap();
    m.ops_mut().fail.push("configure_container");
    let e = m.attach("n", &req("c1", d.path())).unwrap_err();
    assert!(
        matches!(e, NetworkError::Failed { ref rollback, .. } if rollback.is_empty()),
        "{e}"
    );
    let veths: Vec<_> = m
        .ops()
        .links
        .keys()
        .filter(|l| l.contains('v'))
        .cloned()
        .collect();
    assert!(
        veths
            .iter()
            .all(|v| !v.starts_with(&format!("{}v", m.link_prefix()))),
        "{veths:?}"
    );
    assert!(m.get("n").unwrap().endpoints.is_empty());
    // The address was not consumed.
    m.ops_mut().fail.clear();
    let a = m.attach("n", &req("c1", d.path())).unwrap();
    assert_eq!(a.ip.unwrap().to_string(), "10.9.0.2");
}

#[test]
fn teardown_keeps_going_and_reports() {
    let d = tempfile::tempdir().unwrap();
    let mut m = manager(d.path());
    m.create_network(&spec("n", Some("10.9.0.0/24"))).unwrap();
    m.attach("n", &req("c1", d.path())).unwrap();
    m.ops_mut().fail.push("retire_link");
    let e = m.detach("n", "c1").unwrap_err();
    assert!(
        matches!(e, NetworkError::Teardown(ref v) if v.len() == 1),
        "{e}"
    );
    // The record no longer holds the endpoint; prune removes the orphan veth later.
    assert!(m.get("n").unwrap().endpoints.is_empty());
    m.ops_mut().fail.clear();
    let r = m.prune(PruneOptions::default()).unwrap();
    assert_eq!(r.links.len(), 1, "{r:?}");
    let r = m
        .prune(PruneOptions {
            unused_networks: true,
        })
        .unwrap();
    assert_eq!(r.networks, ["n"]);
    assert!(m.ops().links.is_empty());
}

#[test]
fn prune_drops_endpoints_whose_namespace_died() {
    let d = tempfile::tempdir().unwrap();
    let mut m = manager(d.path());
    m.create_network(&spec("n", Some("10.9.0.0/24"))).unwrap();
    let a = m.attach("n", &req("c1", d.path())).unwrap();
    m.publish(
        "c1",
        a.ip.unwrap().into(),
        &[PortMapping::parse("127.0.0.1::80").unwrap()],
    )
    .unwrap();
    // The container's namespace went away: the kernel deleted the veth pair.
    m.ops_mut().links.remove(&a.host_veth);
    let r = m.prune(PruneOptions::default()).unwrap();
    assert_eq!(r.endpoints, ["n/name-c1"]);
    assert_eq!(r.port_records, ["c1"]);
    assert!(m.ports("c1").unwrap().is_empty());
    assert!(!m.ops().nft.last().unwrap().contains("dnat ip to"));
}

#[test]
fn remove_network_drops_endpoints_of_removed_containers() {
    let d = tempfile::tempdir().unwrap();
    let mut m = manager(d.path());
    m.create_network(&spec("n", Some("10.9.0.0/24"))).unwrap();
    let (gone, alive) = (d.path().join("gone-netns"), d.path().join("alive-netns"));
    std::fs::write(&gone, "").unwrap();
    std::fs::write(&alive, "").unwrap();
    m.attach("n", &req("c1", &gone)).unwrap();
    m.attach("n", &req("c2", &alive)).unwrap();
    // c1 was removed without a detach (its namespace file is gone); c2 still holds the network.
    std::fs::remove_file(&gone).unwrap();
    let e = m.remove_network("n").unwrap_err();
    assert!(
        matches!(&e, NetworkError::InUse { containers, .. } if containers == &["name-c2"]),
        "{e}"
    );
    assert_eq!(m.get("n").unwrap().endpoints.len(), 1);
    std::fs::remove_file(&alive).unwrap();
    m.remove_network("n").unwrap();
    assert!(m.list().unwrap().is_empty());
}

#[derive(Default, Clone)]
struct Dns(Arc<Mutex<Vec<String>>>);

impl DnsRecords for Dns {
    fn set_network(&self, n: &str, s: &[DnsSubnet]) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .push(format!("net {n} {}", s[0].gateway));
        Ok(())
    }
    fn add(&self, n: &str, c: &str, names: &[String], ips: &[IpAddr]) -> Result<(), String> {
        if c == "bad" {
            return Err("refused".into());
        }
        self.0
            .lock()
            .unwrap()
            .push(format!("add {n} {c} {} {}", names.join(","), ips[0]));
        Ok(())
    }
    fn remove(&self, n: &str, c: &str) -> Result<(), String> {
        self.0.lock().unwrap().push(format!("rm {n} {c}"));
        Ok(())
    }
    fn remove_network(&self, n: &str) -> Result<(), String> {
        self.0.lock().unwrap().push(format!("rmnet {n}"));
        Ok(())
    }
}

#[test]
fn dns_hook_follows_changes_and_its_failure_rolls_back() {
    let d = tempfile::tempdir().unwrap();
    let mut m = manager(d.path());
    let dns = Dns::default();
    m.set_dns(Box::new(dns.clone()));
    m.create_network(&spec("n", Some("10.9.0.0/24"))).unwrap();
    let mut r = req("c1", d.path());
    r.aliases = vec!["web".into()];
    m.attach("n", &r).unwrap();
    assert!(m.attach("n", &req("bad", d.path())).is_err());
    assert!(!m.get("n").unwrap().endpoints.contains_key("bad"));
    m.detach("n", "c1").unwrap();
    m.remove_network("n").unwrap();
    assert_eq!(
        *dns.0.lock().unwrap(),
        [
            "net n 10.9.0.1",
            "add n c1 name-c1,web 10.9.0.2",
            "rm n c1",
            "rmnet n"
        ]
    );
}

#[test]
fn ipv6_network() {
    let d = tempfile::tempdir().unwrap();
    let mut m = manager(d.path());
    let mut s = spec("six", Some("10.9.0.0/24"));
    s.enable_ipv6 = true;
    let n = m.create_network(&s).unwrap();
    assert!(n.v6().is_some() && n.enable_ipv6);
    let a = m.attach("six", &req("c1", d.path())).unwrap();
    assert!(a.ipv6.is_some() && a.gateway6.is_some());
    let mut bad = spec("bad", Some("fd00:1::/64"));
    bad.enable_ipv6 = false;
    assert!(matches!(
        m.create_network(&bad),
        Err(NetworkError::Invalid(_))
    ));
}

#[test]
fn detach_after_the_namespace_is_gone_does_not_wait_for_the_kernel() {
    let d = tempfile::tempdir().unwrap();
    let mut m = manager(d.path());
    m.create_network(&spec("n", Some("10.9.0.0/24"))).unwrap();
    let ns = d.path().join("netns");
    std::fs::write(&ns, b"").unwrap();
    let a = m.attach("n", &req("c1", &ns)).unwrap();
    std::fs::remove_file(&ns).unwrap();
    let calls = m.ops().calls.len();
    m.detach("n", "c1").unwrap();
    assert!(
        !m.ops().calls[calls..].iter().any(|c| c == "delete_link"),
        "{:?}",
        &m.ops().calls[calls..]
    );
    // Had the pair survived (namespace still held somewhere), prune takes it.
    let r = m.prune(PruneOptions::default()).unwrap();
    assert_eq!(r.links, [a.host_veth]);
}

#[test]
fn concurrent_attaches_never_share_an_address() {
    let d = tempfile::tempdir().unwrap();
    manager(d.path())
        .create_network(&spec("n", Some("10.9.0.0/24")))
        .unwrap();
    let root = d.path().to_path_buf();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let root = root.clone();
            std::thread::spawn(move || {
                // Each thread is "another command": its own manager, its own lock file handle.
                let mut fake = Fake::default();
                fake.links
                    .insert(manager(&root).get("n").unwrap().bridge.clone(), 1);
                let mut m = NetworkManager::with_ops(&root, fake).unwrap();
                (0..10)
                    .map(|i| {
                        m.attach("n", &req(&format!("c{t}-{i}"), &root))
                            .unwrap()
                            .ip
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!(all.len(), n, "an address was handed out twice");
    assert_eq!(manager(&root).get("n").unwrap().endpoints.len(), 40);
}
