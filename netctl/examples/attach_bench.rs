//! Per-container attach/detach time of the network core (run as root; see
//! `bench/network-attach.sh`). Creates one network (10.213.250.0/24 unless `BENCH_SUBNET`) and
//! N namespaces (`BENCH_N`, default 50) up front, then times `attach` for each and `detach` for
//! each. Namespace creation is not timed: the container engine makes the namespace anyway.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use netctl::{AttachRequest, IpamConfig, NetworkManager, NetworkSpec, PruneOptions};

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let n = v.len().max(1);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = v.iter().map(|d| ms(*d)).sum::<f64>() / n as f64;
    println!(
        "{name:<7} n={:<4} mean={mean:.3} ms  median={:.3} ms  p95={:.3} ms  max={:.3} ms",
        v.len(),
        ms(v[v.len() / 2]),
        ms(v[(v.len() * 95 / 100).min(v.len() - 1)]),
        ms(v[v.len() - 1]),
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let subnet = std::env::var("BENCH_SUBNET").unwrap_or_else(|_| "10.213.250.0/24".into());
    let root = tempfile::tempdir()?;
    let mut nm = NetworkManager::open(root.path())?;
    let pid = std::process::id();
    let names: Vec<String> = (0..n).map(|i| format!("rcbench-{pid}-{i}")).collect();
    struct Cleanup(Vec<String>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for ns in &self.0 {
                let _ = Command::new("ip").args(["netns", "del", ns]).output();
            }
        }
    }
    let _cleanup = Cleanup(names.clone());
    for ns in &names {
        let ok = Command::new("ip")
            .args(["netns", "add", ns])
            .status()?
            .success();
        if !ok {
            return Err(format!("ip netns add {ns} failed").into());
        }
    }
    let t = Instant::now();
    nm.create_network(&NetworkSpec {
        name: "bench".into(),
        ipam: vec![IpamConfig {
            subnet: Some(subnet.parse()?),
            ..Default::default()
        }],
        ..Default::default()
    })?;
    println!(
        "create  1 network: {:.3} ms (bridge + record + nft table)",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let mut attach = Vec::new();
    for ns in &names {
        let req = AttachRequest {
            container_id: ns.clone(),
            container_name: ns.clone(),
            netns_path: PathBuf::from(format!("/run/netns/{ns}")),
            is_default_route: true,
            ..Default::default()
        };
        let t = Instant::now();
        nm.attach("bench", &req)?;
        attach.push(t.elapsed());
    }
    // A detach unplugs the veth and leaves its deletion (~20 ms of the kernel's, holding the
    // RTNL lock) to a background process: measured one at a time, as `network disconnect`
    // does it, with the previous deletion done; then back to back, where each detach waits
    // for the RTNL lock behind the previous deletion.
    let half = names.len() / 2;
    let mut detach = Vec::new();
    for ns in &names[..half] {
        std::thread::sleep(std::time::Duration::from_millis(40));
        let t = Instant::now();
        nm.detach("bench", ns)?;
        detach.push(t.elapsed());
    }
    let mut back_to_back = Vec::new();
    for ns in &names[half..] {
        let t = Instant::now();
        nm.detach("bench", ns)?;
        back_to_back.push(t.elapsed());
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    stats("attach", attach);
    stats("detach", detach);
    stats("detach, back to back", back_to_back);
    // The `down` order: the container (its namespace mount) goes first, then the detach.
    for ns in &names {
        let req = AttachRequest {
            container_id: ns.clone(),
            container_name: ns.clone(),
            netns_path: PathBuf::from(format!("/run/netns/{ns}")),
            is_default_route: true,
            ..Default::default()
        };
        nm.attach("bench", &req)?;
        let _ = Command::new("ip").args(["netns", "del", ns]).status();
    }
    let mut gone = Vec::new();
    for ns in &names {
        let t = Instant::now();
        nm.detach("bench", ns)?;
        gone.push(t.elapsed());
    }
    stats("detach (netns already removed)", gone);
    let t = Instant::now();
    nm.remove_network("bench")?;
    println!(
        "remove  1 network: {:.3} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    nm.prune(PruneOptions::default())?;
    Ok(())
}
