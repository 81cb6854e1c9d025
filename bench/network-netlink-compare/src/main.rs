//! One "attach" = look up the bridge, create a veth pair with the peer inside the container's
//! namespace (host end on the bridge, up), then inside the namespace: find eth0, add the
//! address, set eth0 and lo up, add the default route. One "detach" = delete the host end.
//! Done N times through each library on the same kernel; prints median and p95 per step.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn ip(args: &[&str]) -> Res<()> {
    let ok = Command::new("ip").args(args).status()?.success();
    if !ok {
        return Err(format!("ip {args:?} failed").into());
    }
    Ok(())
}

fn summary(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<26} median={:.3} ms  p95={:.3} ms",
        ms(v[v.len() / 2]),
        ms(v[(v.len() * 95 / 100).min(v.len() - 1)])
    );
}

fn veth_msg(host: &str, peer: &str, master: u32, nsfd: i32, last: u8) -> LinkMessage {
    let mut p = LinkMessage::default();
    p.attributes.push(LinkAttribute::IfName(peer.into()));
    p.attributes.push(LinkAttribute::Mtu(1500));
    p.attributes
        .push(LinkAttribute::Address(vec![2, 0x42, 10, 213, 249, last]));
    p.attributes.push(LinkAttribute::NetNsFd(nsfd));
    let mut m = LinkMessage::default();
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    m.attributes.push(LinkAttribute::IfName(host.into()));
    m.attributes.push(LinkAttribute::Mtu(1500));
    m.attributes.push(LinkAttribute::Controller(master));
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
    ]));
    m
}

/// rtnetlink: a connection (socket + tokio task) per namespace, as netavark used to do.
async fn rt_attach(
    host: &rtnetlink::Handle,
    bridge: &str,
    veth: &str,
    ns: &Path,
    last: u8,
) -> Res<()> {
    let br = host
        .link()
        .get()
        .match_name(bridge.to_string())
        .execute()
        .try_next()
        .await?
        .ok_or("no bridge")?;
    let f = std::fs::File::open(ns)?;
    host.link()
        .add(veth_msg(veth, "eth0", br.header.index, f.as_raw_fd(), last))
        .execute()
        .await?;
    // The connection's socket must be created inside the namespace: on a thread that setns'es.
    let nsf = std::fs::File::open(ns)?;
    let rt = tokio::runtime::Handle::current();
    let (conn, h, _) = std::thread::spawn(move || {
        let _enter = rt.enter();
        // SAFETY: setns on a valid netns fd, on this short-lived thread only.
        unsafe { libc::setns(nsf.as_raw_fd(), libc::CLONE_NEWNET) };
        rtnetlink::new_connection()
    })
    .join()
    .map_err(|_| "thread")??;
    let task = tokio::spawn(conn);
    let eth0 = h
        .link()
        .get()
        .match_name("eth0".to_string())
        .execute()
        .try_next()
        .await?
        .ok_or("no eth0")?;
    let idx = eth0.header.index;
    h.address()
        .add(idx, IpAddr::V4(Ipv4Addr::new(10, 213, 249, last)), 24)
        .execute()
        .await?;
    h.link()
        .set(rtnetlink::LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await?;
    h.link()
        .set(rtnetlink::LinkUnspec::new_with_index(1).up().build())
        .execute()
        .await?;
    h.route()
        .add(
            rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(Ipv4Addr::new(10, 213, 249, 1))
                .build(),
        )
        .execute()
        .await?;
    drop(h);
    task.abort();
    Ok(())
}

async fn rt_detach(host: &rtnetlink::Handle, veth: &str) -> Res<()> {
    let l = host
        .link()
        .get()
        .match_name(veth.to_string())
        .execute()
        .try_next()
        .await?
        .ok_or("no veth")?;
    host.link().del(l.header.index).execute().await?;
    Ok(())
}

/// netctl's blocking handle: the exact calls `LinuxNetOps` makes.
fn nl_attach(
    ops: &mut netctl::netlink::LinuxNetOps,
    host: &mut netctl::netlink::Handle,
    bridge: &str,
    veth: &str,
    ns: &Path,
    last: u8,
) -> Res<()> {
    use netctl::netlink::{ContainerIfConfig, NetOps, VethSpec};
    let master = host.link_index(bridge)?.ok_or("no bridge")?;
    ops.create_veth(
        &VethSpec {
            host: veth.into(),
            peer: "eth0".into(),
            master,
            mtu: 1500,
            peer_mac: [2, 0x42, 10, 213, 249, last],
        },
        ns,
    )?;
    ops.configure_container(
        ns,
        &ContainerIfConfig {
            ifname: "eth0".into(),
            addresses: vec![format!("10.213.249.{last}/24").parse()?],
            default_routes: vec![IpAddr::V4(Ipv4Addr::new(10, 213, 249, 1))],
        },
    )?;
    Ok(())
}

fn main() -> Res<()> {
    let n: usize = std::env::var("BENCH_N").ok().and_then(|s| s.parse().ok()).unwrap_or(40);
    let pid = std::process::id();
    let bridge = format!("rccmp{}", pid % 100_000);
    let nss: Vec<String> = (0..n).map(|i| format!("rccmp-{pid}-{i}")).collect();
    struct Cleanup(String, Vec<String>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for ns in &self.1 {
                let _ = Command::new("ip").args(["netns", "del", ns]).status();
            }
            let _ = Command::new("ip").args(["link", "del", &self.0]).status();
        }
    }
    let _c = Cleanup(bridge.clone(), nss.clone());
    ip(&["link", "add", &bridge, "type", "bridge"])?;
    ip(&["addr", "add", "10.213.249.1/24", "dev", &bridge])?;
    ip(&["link", "set", &bridge, "up"])?;
    let paths: Vec<PathBuf> = nss.iter().map(|n| PathBuf::from(format!("/run/netns/{n}"))).collect();

    let rt_first = std::env::var("BENCH_ORDER").is_ok_and(|v| v == "rt-first");
    for round in 0..2 {
        if (round == 0) != rt_first {
            blocking_round(n, &bridge, &nss, &paths)?;
        } else {
            rt_round(n, &bridge, &nss, &paths)?;
        }
    }
    Ok(())
}

fn blocking_round(n: usize, bridge: &str, nss: &[String], paths: &[PathBuf]) -> Res<()> {
    // Blocking netlink (netctl).
    for ns in nss {
        let _ = Command::new("ip").args(["netns", "del", ns]).output();
        ip(&["netns", "add", ns])?;
    }
    let t = Instant::now();
    let mut host = netctl::netlink::Handle::new()?;
    // One host connection for the whole run, as NetworkManager keeps it.
    let mut ops = netctl::netlink::LinuxNetOps::new();
    let setup_nl = t.elapsed();
    let (mut a, mut d) = (Vec::new(), Vec::new());
    for (i, p) in paths.iter().enumerate() {
        let veth = format!("rccmpv{i}");
        let t = Instant::now();
        nl_attach(&mut ops, &mut host, bridge, &veth, p, (i + 2) as u8)?;
        a.push(t.elapsed());
    }
    for i in 0..n {
        let t = Instant::now();
        host.del_link(&format!("rccmpv{i}"))?;
        d.push(t.elapsed());
    }
    println!("blocking netlink (netctl): setup {:.3} ms", setup_nl.as_secs_f64() * 1000.0);
    summary("  attach", a);
    summary("  detach", d);

    Ok(())
}

fn rt_round(n: usize, bridge: &str, nss: &[String], paths: &[PathBuf]) -> Res<()> {
    // rtnetlink on a current-thread tokio runtime (fresh namespaces).
    for ns in nss {
        let _ = Command::new("ip").args(["netns", "del", ns]).output();
        ip(&["netns", "add", ns])?;
    }
    let t = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    let (mut a, mut d) = (Vec::new(), Vec::new());
    let setup_rt = rt.block_on(async {
        let (conn, host, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        let setup = t.elapsed();
        for (i, p) in paths.iter().enumerate() {
            let veth = format!("rccmpv{i}");
            let t = Instant::now();
            rt_attach(&host, bridge, &veth, p, (i + 2) as u8).await?;
            a.push(t.elapsed());
        }
        for i in 0..n {
            let t = Instant::now();
            rt_detach(&host, &format!("rccmpv{i}")).await?;
            d.push(t.elapsed());
        }
        Ok::<_, Box<dyn std::error::Error>>(setup)
    })?;
    println!("rtnetlink (tokio current-thread): setup {:.3} ms", setup_rt.as_secs_f64() * 1000.0);
    summary("  attach", a);
    summary("  detach", d);
    Ok(())
}
