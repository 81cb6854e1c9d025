//! `rcompose network …` end to end, as root: create / ls / inspect / connect / disconnect / rm /
//! prune against real bridges, with network namespaces made by the test (`ip netns add`, deleted
//! on drop even when the test fails) standing in for containers. Subnets 10.213.4x.0/24 are
//! unique to this file; traffic goes only to those namespaces and the test's bridges.
//!
//! The library-level tests of published ports, egress and isolation are in
//! `netctl/tests/root_network.rs`.

use std::process::Command;

use e2e::TestEnv;
use serde_json::Value;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("rce2e-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "ip netns add {name}");
        Netns(name)
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }

    fn ping(&self, ip: &str) -> bool {
        Command::new("ip")
            .args([
                "netns", "exec", &self.0, "busybox", "ping", "-c", "1", "-W", "1", ip,
            ])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn nft_table_exists(name: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "inet", name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn network_commands_end_to_end() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let mut env = TestEnv::new().expect("test env");
    env.defer(["network", "prune", "-f"]);
    let a = Netns::new("a");
    let b = Netns::new("b");

    env.run_ok([
        "network",
        "create",
        "--subnet",
        "10.213.41.0/24",
        "--gateway",
        "10.213.41.254",
        "--ip-range",
        "10.213.41.128/25",
        "--aux-address",
        "router=10.213.41.128",
        "--label",
        "team=net",
        "e2enet",
    ])
    .expect("create");
    let dup = env.run(["network", "create", "e2enet"]).expect("run");
    assert!(
        !dup.success() && dup.stderr.contains("already exists"),
        "{dup}"
    );

    let ls = env.run_ok(["network", "ls"]).expect("ls");
    let header = ls.stdout.lines().next().unwrap_or_default().to_string();
    assert!(
        header.starts_with("NETWORK ID") && header.contains("NAME") && header.contains("SCOPE"),
        "{ls}"
    );
    assert!(
        ls.stdout.contains("e2enet") && ls.stdout.contains("bridge"),
        "{ls}"
    );
    let q = env
        .run_ok(["network", "ls", "-q", "--filter", "label=team=net"])
        .expect("ls -q");
    assert_eq!(q.stdout.trim().len(), 12, "{q}");

    env.run_ok(["network", "connect", "--alias", "web", "e2enet", &a.path()])
        .expect("connect a");
    env.run_ok([
        "network",
        "connect",
        "--ip",
        "10.213.41.200",
        "e2enet",
        &b.path(),
    ])
    .expect("connect b");

    let out = env
        .run_ok(["network", "inspect", "e2enet"])
        .expect("inspect");
    let v: Value = serde_json::from_str(&out.stdout).expect("inspect JSON");
    let net = &v[0];
    assert_eq!(net["Name"], "e2enet");
    assert_eq!(net["Driver"], "bridge");
    assert_eq!(net["IPAM"]["Config"][0]["Subnet"], "10.213.41.0/24");
    assert_eq!(net["IPAM"]["Config"][0]["Gateway"], "10.213.41.254");
    assert_eq!(net["Labels"]["team"], "net");
    let containers = net["Containers"].as_object().expect("Containers");
    assert_eq!(containers.len(), 2, "{out}");
    let mut ips: Vec<String> = containers
        .values()
        .map(|c| c["IPv4Address"].as_str().unwrap_or_default().to_string())
        .collect();
    ips.sort();
    // 10.213.41.128 is an auxiliary address: the range starts at .129.
    assert_eq!(ips, ["10.213.41.129/24", "10.213.41.200/24"]);
    for c in containers.values() {
        let mac = c["MacAddress"].as_str().unwrap_or_default();
        assert!(mac.starts_with("02:42:0a:d5:29:"), "{mac}");
        assert_eq!(c["EndpointID"].as_str().map(str::len), Some(64));
        assert!(c["Name"].as_str().is_some_and(|n| n.starts_with("rce2e-")));
    }
    let bridge = net["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .expect("bridge name")
        .to_string();
    assert!(bridge.len() <= 15 && link_exists(&bridge));
    let table = format!("rcompose-{}", &bridge[2..6]);
    assert!(nft_table_exists(&table), "nft table {table}");

    assert!(a.ping("10.213.41.200"), "a pings b");
    assert!(b.ping("10.213.41.129"), "b pings a");

    let busy = env.run(["network", "rm", "e2enet"]).expect("run");
    assert!(
        !busy.success() && busy.stderr.contains("active endpoints"),
        "{busy}"
    );

    env.run_ok(["network", "disconnect", "e2enet", &a.path()])
        .expect("disconnect");
    assert!(!a.ping("10.213.41.200"), "still connected after disconnect");
    let again = env
        .run(["network", "disconnect", "e2enet", &a.path()])
        .expect("run");
    assert!(
        !again.success() && again.stderr.contains("not attached"),
        "{again}"
    );

    // b's namespace disappears without a disconnect (a crashed container): prune cleans it up.
    drop(b);
    let pruned = env.run_ok(["network", "prune", "-f"]).expect("prune");
    assert!(pruned.stdout.contains("e2enet"), "{pruned}");
    assert!(!link_exists(&bridge), "bridge {bridge} left behind");
    assert!(!nft_table_exists(&table), "nft table {table} left behind");
    let ls = env.run_ok(["network", "ls", "-q"]).expect("ls");
    assert!(ls.stdout.trim().is_empty(), "{ls}");
}

#[test]
fn network_errors_are_plain() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let mut env = TestEnv::new().expect("test env");
    env.defer(["network", "prune", "-f"]);
    let missing = env.run(["network", "inspect", "nope"]).expect("run");
    assert!(
        !missing.success() && missing.stderr.contains("not found"),
        "{missing}"
    );
    let bad = env
        .run([
            "network",
            "create",
            "--subnet",
            "10.213.42.0/24",
            "--gateway",
            "10.9.9.9",
            "x",
        ])
        .expect("run");
    assert!(
        !bad.success() && bad.stderr.contains("no matching subnet"),
        "{bad}"
    );
    let driver = env
        .run(["network", "create", "-d", "overlay", "y"])
        .expect("run");
    assert!(
        !driver.success() && driver.stderr.contains("not supported"),
        "{driver}"
    );
    let ns = Netns::new("err");
    let unknown = env
        .run(["network", "connect", "nope", &ns.path()])
        .expect("run");
    assert!(
        !unknown.success() && unknown.stderr.contains("not found"),
        "{unknown}"
    );
    let nocontainer = env
        .run(["network", "connect", "nope", "no-such-container"])
        .expect("run");
    assert!(
        !nocontainer.success() && nocontainer.stderr.contains("No such container"),
        "{nocontainer}"
    );
}
