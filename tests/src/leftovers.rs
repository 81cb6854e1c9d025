//! Leftover checks shared by the project-level suites: after `down`, nothing of the project's
//! networking, containers or helper processes may remain on the host.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::env::TestEnv;

/// Nothing of the project's networking or containers is left on the host.
pub fn assert_nothing_left(env: &TestEnv) {
    let root = env.root();
    let prefix = netctl::names::root_prefix(root);
    // Veths of removed namespaces are torn down by the kernel in the background: give it a moment.
    let links_now = || {
        let out = Command::new("ip")
            .args(["-o", "link", "show"])
            .output()
            .expect("ip runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let end = Instant::now() + Duration::from_secs(5);
    let mut links = links_now();
    while links.contains(&prefix) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
        links = links_now();
    }
    assert!(
        !links.contains(&prefix),
        "links with prefix {prefix} left:\n{links}"
    );
    let table = netctl::names::table_name(root, Path::new("/var/lib/rcompose"));
    let tables = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .expect("nft runs");
    assert!(
        !String::from_utf8_lossy(&tables.stdout).contains(&table),
        "nftables table {table} left"
    );
    let mounts = env.state_root().mounts().expect("mountinfo");
    assert!(
        mounts
            .iter()
            .all(|m| !m.starts_with(root.join("containers"))),
        "container mounts left: {mounts:?}"
    );
    // The DNS resolver exits on its own once no network needs it.
    let end = Instant::now() + Duration::from_secs(5);
    while !env.state_root().processes().is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        env.state_root().processes(),
        Vec::<i32>::new(),
        "processes left"
    );
    let containers = std::fs::read_dir(root.join("containers"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(containers, 0, "container dirs left");
}
