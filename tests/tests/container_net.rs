//! End-to-end tests of engine containers on networks: `container run --network NAME` with
//! `-p`, `--network-alias` and `--ip`, `container port`, `network connect` giving a running
//! container the network's names, and `container rm` releasing addresses and ports. As root,
//! with the busybox fixture; each test has its own state root and a 10.224.N.0/24 subnet, and
//! removes its containers and network even when it fails.

use std::time::{Duration, Instant};

use e2e::{assert_nothing_left, busybox_env, free_port, free_subnet, read_port};

const SERVE: &str = "while true; do echo $ANSWER | nc -l -p 80; done";

#[test]
fn run_on_a_network_publishes_resolves_and_releases() {
    let (mut env, _registry) = busybox_env();
    let subnet = free_subnet(224);
    let prefix = subnet.trim_end_matches("0/24").to_owned();
    env.defer(["network", "rm", "cn1"]);
    env.defer(["container", "rm", "-f", "web", "web2", "other"]);
    env.run_ok(["network", "create", "--subnet", &subnet, "cn1"])
        .expect("network create");
    let fixed = free_port().expect("a free loopback port");
    let publish = format!("127.0.0.1:{fixed}:80");
    let ip = format!("{prefix}10");
    env.run_ok([
        "container",
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "cn1",
        "--network-alias",
        "www",
        "--ip",
        &ip,
        "-p",
        &publish,
        "-p",
        "80",
        "-e",
        "ANSWER=one",
        "busybox",
        "sh",
        "-c",
        SERVE,
    ])
    .expect("run -d on the network");

    // Both mappings are listed; the random one is a real port that answers too.
    let ports = env
        .run_ok(["container", "port", "web"])
        .expect("port")
        .stdout;
    assert!(
        ports.contains(&format!("80/tcp -> 127.0.0.1:{fixed}")),
        "{ports}"
    );
    let random: u16 = ports
        .lines()
        .find_map(|l| l.strip_prefix("80/tcp -> 0.0.0.0:"))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("a random host port in {ports}"));
    assert_eq!(read_port(fixed).trim(), "one");
    assert_eq!(read_port(random).trim(), "one");
    let one = env
        .run_ok(["container", "port", "web", "80/tcp"])
        .expect("port 80/tcp")
        .stdout;
    assert!(
        one.lines().any(|l| l == format!("127.0.0.1:{fixed}")),
        "{one}"
    );
    let missing = env
        .run(["container", "port", "web", "81"])
        .expect("rcompose runs");
    assert!(
        !missing.success() && missing.stderr.contains("no public port"),
        "{missing:?}"
    );

    // Another container on the network finds web by name and alias, at its static address.
    let out = env
        .run_ok([
            "container",
            "run",
            "--rm",
            "--network",
            "cn1",
            "busybox",
            "sh",
            "-c",
            "nslookup www; nc web 80 </dev/null",
        ])
        .expect("run --rm on the network")
        .stdout;
    assert!(out.contains(&format!("Address: {ip}")), "{out}");
    assert!(out.trim_end().ends_with("one"), "{out}");

    // A container started without a network gets the network's names on `network connect`.
    env.run_ok([
        "container",
        "run",
        "-d",
        "--name",
        "other",
        "busybox",
        "sleep",
        "1000",
    ])
    .expect("run -d without a network");
    env.run_ok(["network", "connect", "cn1", "other"])
        .expect("connect");
    let found = env
        .run_ok(["container", "exec", "other", "nslookup", "web"])
        .expect("nslookup after connect")
        .stdout;
    assert!(found.contains(&format!("Address: {ip}")), "{found}");

    // Removing web frees its address and host port for the next container.
    env.run_ok(["container", "rm", "-f", "web"]).expect("rm -f");
    env.run_ok([
        "container",
        "run",
        "-d",
        "--name",
        "web2",
        "--network",
        "cn1",
        "--ip",
        &ip,
        "-p",
        &publish,
        "-e",
        "ANSWER=two",
        "busybox",
        "sh",
        "-c",
        SERVE,
    ])
    .expect("the same address and port again");
    assert_eq!(read_port(fixed).trim(), "two");

    // A busy host port and an unknown network fail before anything is created.
    let before = env.run_ok(["container", "ls", "-aq"]).expect("ls").stdout;
    let busy = env
        .run([
            "container",
            "run",
            "-d",
            "--network",
            "cn1",
            "-p",
            &publish,
            "busybox",
            "true",
        ])
        .expect("rcompose runs");
    assert!(!busy.success(), "{busy:?}");
    let nonet = env
        .run([
            "container",
            "run",
            "--rm",
            "--network",
            "nope",
            "busybox",
            "true",
        ])
        .expect("rcompose runs");
    assert!(
        !nonet.success() && nonet.stderr.contains("nope"),
        "{nonet:?}"
    );
    assert_eq!(
        env.run_ok(["container", "ls", "-aq"]).expect("ls").stdout,
        before
    );

    env.run_ok(["container", "rm", "-f", "web2", "other"])
        .expect("rm");
    env.run_ok(["network", "rm", "cn1"]).expect("network rm");
    assert_nothing_left(&env);
}

#[test]
fn rm_containers_leave_their_port_free() {
    let (mut env, _registry) = busybox_env();
    let subnet = free_subnet(224);
    env.defer(["network", "rm", "cn2"]);
    env.run_ok(["network", "create", "--subnet", &subnet, "cn2"])
        .expect("network create");
    let port = free_port().expect("a free loopback port");
    let publish = format!("127.0.0.1:{port}:80");
    // A detached --rm container is removed by its supervisor when it exits: its port is free
    // for the next one all the same.
    for round in 0..2 {
        env.run_ok([
            "container",
            "run",
            "-d",
            "--rm",
            "--network",
            "cn2",
            "-p",
            &publish,
            "busybox",
            "true",
        ])
        .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let end = Instant::now() + Duration::from_secs(10);
        while !env
            .run_ok(["container", "ls", "-aq"])
            .expect("ls")
            .stdout
            .trim()
            .is_empty()
        {
            assert!(Instant::now() < end, "the --rm container is still there");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    env.run_ok(["network", "rm", "cn2"]).expect("network rm");
    assert_nothing_left(&env);
}
