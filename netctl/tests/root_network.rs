//! Real-kernel tests of the network core (need root, `ip` and `nft`).
//!
//! Each test uses its own state root, its own network namespaces (`ip netns add`, deleted on
//! Drop even when the test fails) and its own subnets `10.213.N.0/24`, so the tests run in
//! parallel. Traffic goes only to loopback, to the host's own address (which never leaves the
//! machine) and to the namespaces/bridges the test made. Skipped (with a note) when not root.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use netctl::{
    AttachRequest, IpamConfig, NetworkError, NetworkManager, NetworkSpec, PortMapping, PruneOptions,
};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"))
}

/// A network namespace made by the test, deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(name: &str) -> Self {
        let name = format!("rct-{name}-{}", std::process::id());
        let _ = sh(&["ip", "netns", "del", &name]);
        let out = sh(&["ip", "netns", "add", &name]);
        assert!(out.status.success(), "ip netns add {name}: {out:?}");
        Netns { name }
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// Runs `f` on a thread inside this namespace (sockets it creates belong to the namespace).
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let ns = std::fs::File::open(self.path()).expect("open netns");
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: setns on a valid namespace fd affects only this scoped thread.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("netns thread")
        })
    }

    fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["ip", "-n", &self.name];
        all.extend_from_slice(args);
        let out = sh(&all);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether `ip` answers an echo request. A reachable address gets up to three tries: on a
    /// loaded machine a first echo can be lost while the firewall table of another test is being
    /// replaced; an unreachable one fails all three (≈3 s).
    fn ping(&self, ip: &str) -> bool {
        (0..3).any(|_| {
            sh(&[
                "ip", "netns", "exec", &self.name, "busybox", "ping", "-c", "1", "-W", "1", ip,
            ])
            .status
            .success()
        })
    }

    /// A TCP server in the namespace answering `hello` to each connection (bounded count).
    fn serve_tcp(&self, port: u16, count: usize) -> std::thread::JoinHandle<()> {
        let l = self.run(|| TcpListener::bind(("0.0.0.0", port)).expect("bind in netns"));
        std::thread::spawn(move || {
            for _ in 0..count {
                let Ok((mut c, _)) = l.accept() else { return };
                let _ = c.write_all(b"hello\n");
            }
        })
    }

    /// A UDP echo server in the namespace (bounded count).
    fn serve_udp(&self, port: u16, count: usize) -> std::thread::JoinHandle<()> {
        let s = self.run(|| UdpSocket::bind(("0.0.0.0", port)).expect("bind udp in netns"));
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            for _ in 0..count {
                let Ok((n, from)) = s.recv_from(&mut buf) else {
                    return;
                };
                let _ = s.send_to(&buf[..n], from);
            }
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh(&["ip", "netns", "del", &self.name]);
    }
}

fn tcp_hello(addr: SocketAddr) -> Result<String, String> {
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_millis(1500))
        .map_err(|e| e.to_string())?;
    c.set_read_timeout(Some(Duration::from_secs(3))).ok();
    let mut s = String::new();
    c.read_to_string(&mut s).map_err(|e| e.to_string())?;
    Ok(s)
}

fn udp_echo(addr: SocketAddr) -> Result<String, String> {
    let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_millis(700))).ok();
    // UDP may lose the very first datagram while ARP resolves: retry a few times.
    for _ in 0..5 {
        s.send_to(b"ping", addr).map_err(|e| e.to_string())?;
        let mut buf = [0u8; 64];
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            return Ok(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    Err("no UDP answer".into())
}

/// The host's primary address (the source of its default route), if it has one.
fn host_address() -> Option<Ipv4Addr> {
    let out = sh(&["ip", "-4", "-o", "route", "get", "192.0.2.200"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "src" {
            return words.next()?.parse().ok();
        }
    }
    None
}

/// A state root + manager; on drop, namespaces are deleted first, then `prune` removes what is
/// left and the test asserts nothing of this root survived.
struct Env {
    root: tempfile::TempDir,
    nm: NetworkManager,
    nss: Vec<Netns>,
}

impl Env {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let nm = NetworkManager::open(root.path()).expect("open");
        Env {
            root,
            nm,
            nss: Vec::new(),
        }
    }

    fn net(&mut self, name: &str, subnet: &str, internal: bool) -> netctl::Network {
        self.nm
            .create_network(&NetworkSpec {
                name: name.into(),
                internal,
                ipam: vec![IpamConfig {
                    subnet: Some(subnet.parse().expect("subnet")),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("create {name}: {e}"))
    }

    /// A namespace attached to `net`; returns its index in `nss` and its address.
    fn container(&mut self, name: &str, net: &str) -> (usize, Ipv4Addr) {
        let ns = Netns::new(name);
        let a = self
            .nm
            .attach(
                net,
                &AttachRequest {
                    container_id: ns.name.clone(),
                    container_name: name.into(),
                    netns_path: ns.path(),
                    is_default_route: true,
                    ..Default::default()
                },
            )
            .unwrap_or_else(|e| panic!("attach {name} to {net}: {e}"));
        self.nss.push(ns);
        (self.nss.len() - 1, a.ip.expect("ipv4"))
    }

    fn leftovers(&self) -> Vec<String> {
        let prefix = self.nm.link_prefix().to_string();
        let out = sh(&["ip", "-o", "link", "show"]);
        let mut left: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
            .filter(|n| n.starts_with(&prefix))
            .collect();
        if netctl::firewall::table_exists(self.nm.table()) {
            left.push(format!("nft table inet {}", self.nm.table()));
        }
        left
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.nss.clear();
        let r = self.nm.prune(PruneOptions {
            unused_networks: true,
        });
        let left = self.leftovers();
        if !std::thread::panicking() {
            let r = r.expect("prune");
            assert!(r.errors.is_empty(), "prune errors: {:?}", r.errors);
            assert!(left.is_empty(), "left behind: {left:?}");
            assert!(self.nm.list().expect("list").is_empty());
        }
        let _ = self.root.path();
    }
}

#[test]
fn same_network_reaches_other_network_does_not() {
    require_root!();
    let mut env = Env::new();
    env.net("front", "10.213.1.0/24", false);
    env.net("back", "10.213.2.0/24", false);
    let (a, _) = env.container("a", "front");
    let (b, ip_b) = env.container("b", "front");
    let (c, _) = env.container("c", "back");
    assert_eq!(ip_b, Ipv4Addr::new(10, 213, 1, 3));

    // Inside: eth0 with the docker-like MAC, loopback up, default route via the gateway.
    let link = env.nss[b].ip(&["link", "show", "eth0"]);
    assert!(link.contains("02:42:0a:d5:01:03"), "{link}");
    assert!(env.nss[b].ip(&["route"]).contains("default via 10.213.1.1"));
    assert!(env.nss[b].ip(&["link", "show", "lo"]).contains("UP"));

    assert!(env.nss[a].ping("10.213.1.3"), "a pings b");
    assert!(env.nss[b].ping("10.213.1.2"), "b pings a");
    let srv = env.nss[b].serve_tcp(7000, 1);
    let to_b = SocketAddr::from((ip_b, 7000));
    assert_eq!(env.nss[a].run(|| tcp_hello(to_b)), Ok("hello\n".into()));
    assert!(
        env.nss[c].run(|| tcp_hello(to_b)).is_err(),
        "other network reached b"
    );
    assert!(!env.nss[c].ping("10.213.1.3"), "other network pings b");
    drop(srv);

    // inspect-like view and detach releasing the address.
    let front = env.nm.get("front").expect("front");
    assert_eq!(front.endpoints.len(), 2);
    let id = env.nss[a].name.clone();
    let host_veth = front.endpoints[&id].host_veth.clone();
    env.nm.detach("front", &id).expect("detach");
    // At once: the host end is off the bridge (or already gone), so a is cut off.
    let link = sh(&["ip", "-o", "link", "show", &host_veth]);
    let link = String::from_utf8_lossy(&link.stdout);
    assert!(!link.contains("master"), "still on the bridge: {link}");
    assert!(!env.nss[a].ping("10.213.1.3"), "a still reaches b");
    // Soon: the pair itself, deleted in the background, takes the peer with it.
    let end = std::time::Instant::now() + Duration::from_secs(5);
    while env.nss[a].ip(&["link"]).contains("eth0") {
        assert!(
            std::time::Instant::now() < end,
            "peer still there 5 s after the detach"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn custom_named_bridges_are_isolated_too() {
    require_root!();
    let mut env = Env::new();
    // Two user-named bridges (unique per run: names are global) and one of ours.
    let tag = format!("{:04x}", std::process::id() % 0x10000);
    let (bx, by) = (format!("rcx{tag}"), format!("rcy{tag}"));
    for (name, subnet, bridge) in [
        ("x", "10.213.21.0/24", Some(&bx)),
        ("y", "10.213.22.0/24", Some(&by)),
        ("z", "10.213.23.0/24", None),
    ] {
        let mut options = std::collections::BTreeMap::new();
        if let Some(b) = bridge {
            options.insert("com.docker.network.bridge.name".to_string(), b.clone());
        }
        env.nm
            .create_network(&NetworkSpec {
                name: name.into(),
                ipam: vec![IpamConfig {
                    subnet: Some(subnet.parse().expect("subnet")),
                    ..Default::default()
                }],
                options,
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
    }
    let (x1, _) = env.container("x1", "x");
    let (_, ip_x2) = env.container("x2", "x");
    let (y1, ip_y1) = env.container("y1", "y");
    let (z1, ip_z1) = env.container("z1", "z");
    assert!(env.nss[x1].ping(&ip_x2.to_string()), "same custom bridge");
    assert!(!env.nss[x1].ping(&ip_y1.to_string()), "custom to custom");
    assert!(!env.nss[x1].ping(&ip_z1.to_string()), "custom to ours");
    assert!(!env.nss[z1].ping(&ip_y1.to_string()), "ours to custom");
    assert!(
        !env.nss[y1].ping(&ip_x2.to_string()),
        "custom to custom, back"
    );
    // The custom bridges go with their networks (the leftover check only knows our prefix).
    drop(env);
    let links = String::from_utf8_lossy(&sh(&["ip", "-o", "link", "show"]).stdout).into_owned();
    assert!(!links.contains(&bx) && !links.contains(&by), "{links}");
}

#[test]
fn published_tcp_port_answers_on_localhost_host_address_and_hairpin() {
    require_root!();
    let mut env = Env::new();
    env.net("web", "10.213.3.0/24", false);
    let (srv_ns, ip) = env.container("srv", "web");
    let (cli_ns, _) = env.container("cli", "web");
    let cid = env.nss[srv_ns].name.clone();
    let published = env
        .nm
        .publish(
            &cid,
            IpAddr::V4(ip),
            &[PortMapping::parse("80").expect("spec")],
        )
        .expect("publish");
    let port = published[0].host_port;
    assert_ne!(port, 0);
    let srv = env.nss[srv_ns].serve_tcp(80, 3);

    let lo = SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(tcp_hello(lo), Ok("hello\n".into()), "127.0.0.1:{port}");
    let host = host_address().unwrap_or(Ipv4Addr::new(10, 213, 3, 1));
    let on_host = SocketAddr::from((host, port));
    assert_eq!(tcp_hello(on_host), Ok("hello\n".into()), "{on_host}");
    // Hairpin: another container reaches the published port through the host's address.
    assert_eq!(
        env.nss[cli_ns].run(|| tcp_hello(on_host)),
        Ok("hello\n".into()),
        "hairpin via {on_host}"
    );
    srv.join().ok();
    env.nm.unpublish(&cid).expect("unpublish");
    assert!(tcp_hello(lo).is_err(), "still answering after unpublish");
}

#[test]
fn published_udp_port_answers() {
    require_root!();
    let mut env = Env::new();
    env.net("udp", "10.213.4.0/24", false);
    let (ns, ip) = env.container("dns", "udp");
    let cid = env.nss[ns].name.clone();
    let published = env
        .nm
        .publish(
            &cid,
            IpAddr::V4(ip),
            &[PortMapping::parse("127.0.0.1::5353/udp").expect("spec")],
        )
        .expect("publish");
    let srv = env.nss[ns].serve_udp(5353, 5);
    let lo = SocketAddr::from(([127, 0, 0, 1], published[0].host_port));
    assert_eq!(udp_echo(lo), Ok("ping".into()));
    drop(srv);
}

#[test]
fn busy_port_fails_cleanly() {
    require_root!();
    let mut env = Env::new();
    env.net("busy", "10.213.5.0/24", false);
    let (ns, ip) = env.container("svc", "busy");
    let cid = env.nss[ns].name.clone();
    let holder = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().expect("addr").port();
    let spec = PortMapping::parse(&format!("127.0.0.1:{port}:80")).expect("spec");
    let e = env.nm.check_ports(std::slice::from_ref(&spec)).unwrap_err();
    assert!(e.to_string().contains("already in use"), "{e}");
    let e = env.nm.publish(&cid, IpAddr::V4(ip), &[spec]).unwrap_err();
    assert!(matches!(e, NetworkError::Port(_)), "{e}");
    assert!(env.nm.ports(&cid).expect("ports").is_empty());
}

#[test]
fn internal_network_has_no_egress_normal_one_does() {
    require_root!();
    let mut env = Env::new();
    // A stand-in for "the outside": a namespace behind a veth on the host, 10.213.8.0/30.
    let ext = Netns::new("ext");
    let host_end = format!("rct8h{}", std::process::id() % 100_000);
    let out = sh(&[
        "ip", "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", &ext.name,
    ]);
    assert!(out.status.success(), "{out:?}");
    struct Link(String);
    impl Drop for Link {
        fn drop(&mut self) {
            let _ = sh(&["ip", "link", "del", &self.0]);
        }
    }
    let _link = Link(host_end.clone());
    sh(&["ip", "addr", "add", "10.213.8.1/30", "dev", &host_end]);
    sh(&["ip", "link", "set", &host_end, "up"]);
    ext.ip(&["addr", "add", "10.213.8.2/30", "dev", "eth0"]);
    ext.ip(&["link", "set", "eth0", "up"]);
    let srv = ext.serve_tcp(9000, 1);
    let outside = SocketAddr::from(([10, 213, 8, 2], 9000));

    env.net("lan", "10.213.6.0/24", false);
    env.net("sealed", "10.213.7.0/24", true);
    let (open, _) = env.container("open", "lan");
    let (closed, _) = env.container("closed", "sealed");
    assert!(
        env.nss[closed].run(|| tcp_hello(outside)).is_err(),
        "internal network reached the outside"
    );
    assert_eq!(
        env.nss[open].run(|| tcp_hello(outside)),
        Ok("hello\n".into()),
        "normal network has egress"
    );
    srv.join().ok();
    // The internal container still reaches its gateway.
    assert!(env.nss[closed].ping("10.213.7.1"));
}

#[test]
fn crash_leftovers_are_pruned() {
    require_root!();
    let mut env = Env::new();
    env.net("crash", "10.213.9.0/24", false);
    let (ns, _) = env.container("gone", "crash");
    // The container dies without detaching: its namespace (and so the veth pair) disappears.
    env.nss.remove(ns);
    // An orphan bridge with this root's prefix, as a crash between bridge and record leaves it.
    let orphan = format!("{}bdeadbeef", env.nm.link_prefix());
    assert!(sh(&["ip", "link", "add", &orphan, "type", "bridge"])
        .status
        .success());
    let r = env.nm.prune(PruneOptions::default()).expect("prune");
    assert_eq!(r.endpoints, ["crash/gone"]);
    assert_eq!(r.links, [orphan]);
    assert!(env.nm.get("crash").expect("crash").endpoints.is_empty());
}

#[test]
fn bridge_mac_is_pinned_and_ipv6_works() {
    require_root!();
    let mut env = Env::new();
    let net = env
        .nm
        .create_network(&NetworkSpec {
            name: "dual".into(),
            enable_ipv6: true,
            ipam: vec![IpamConfig {
                subnet: Some("10.213.10.0/24".parse().expect("subnet")),
                ..Default::default()
            }],
            ..Default::default()
        })
        .expect("create");
    let mac = || {
        String::from_utf8_lossy(
            &sh(&["cat", &format!("/sys/class/net/{}/address", net.bridge)]).stdout,
        )
        .trim()
        .to_string()
    };
    let before = mac();
    assert!(before.starts_with("02:42:"), "{before}");
    let (a, _) = env.container("six-a", "dual");
    let (b, _) = env.container("six-b", "dual");
    assert_eq!(mac(), before, "bridge MAC changed when ports were added");
    let v6 = net.v6().expect("v6 subnet").subnet;
    let b_id = env.nss[b].name.clone();
    let b6 = env.nm.get("dual").expect("dual").endpoints[&b_id]
        .ipv6
        .expect("ipv6")
        .addr();
    assert!(v6.contains(&b6));
    let ok = sh(&[
        "ip",
        "netns",
        "exec",
        &env.nss[a].name,
        "busybox",
        "ping",
        "-6",
        "-c",
        "1",
        "-W",
        "2",
        &b6.to_string(),
    ]);
    assert!(ok.status.success(), "ping6 {b6}: {ok:?}");
    let a_id = env.nss[a].name.clone();
    env.nm.detach("dual", &a_id).expect("detach");
    assert_eq!(mac(), before, "bridge MAC changed when a port left");
}
