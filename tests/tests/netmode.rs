//! End-to-end tests of joining another container's network namespace: `container run
//! --network container:X` and compose's `network_mode: service:X`, as root, with the busybox
//! fixture from a local registry. Each test has its own state root, project and subnet
//! (10.223.N.0/24); a deferred `down -v` removes the project even when an assertion fails.

use std::time::{Duration, Instant};

use e2e::{assert_nothing_left, busybox_env, exec_ok as exec, free_subnet};

fn netns_of(env: &e2e::TestEnv, container: &str) -> String {
    let out = env
        .run_ok([
            "container",
            "exec",
            container,
            "readlink",
            "/proc/self/ns/net",
        ])
        .expect("exec readlink");
    out.stdout.trim().to_owned()
}

#[test]
fn container_network_mode_shares_namespace_and_hostname() {
    let (mut env, _registry) = busybox_env();
    env.defer(["container", "rm", "-f", "nm-target"]);
    env.run_ok([
        "container",
        "run",
        "-d",
        "--name",
        "nm-target",
        "--hostname",
        "targethost",
        "busybox",
        "sleep",
        "1000",
    ])
    .expect("target runs");
    let target_ns = netns_of(&env, "nm-target");

    let out = env
        .run_ok([
            "container",
            "run",
            "--rm",
            "--network",
            "container:nm-target",
            "busybox",
            "sh",
            "-c",
            "hostname; readlink /proc/self/ns/net",
        ])
        .expect("joined container runs");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["targethost", target_ns.as_str()], "{out:?}");

    // Options that would configure the joined namespace are refused, as docker does.
    let out = env
        .run([
            "container",
            "run",
            "--rm",
            "--network",
            "container:nm-target",
            "--hostname",
            "x",
            "busybox",
            "true",
        ])
        .expect("rcompose runs");
    assert!(!out.success(), "{out:?}");
    assert!(out.stderr.contains("conflicting options"), "{out:?}");

    // Joining a stopped container fails and leaves no container behind.
    env.run_ok(["container", "stop", "-t", "0", "nm-target"])
        .expect("stop");
    let out = env
        .run([
            "container",
            "run",
            "--rm",
            "--network",
            "container:nm-target",
            "busybox",
            "true",
        ])
        .expect("rcompose runs");
    assert!(!out.success(), "{out:?}");
    assert!(out.stderr.contains("non running container"), "{out:?}");
    let all = env.run_ok(["container", "ls", "-aq"]).expect("ls").stdout;
    assert_eq!(all.lines().count(), 1, "only the target is left: {all}");
}

#[test]
fn network_mode_service_joins_and_follows_recreation() {
    let (mut env, _registry) = busybox_env();
    let subnet = free_subnet(223);
    env.write_file(
        "compose.yaml",
        format!(
            r#"services:
  vpn:
    image: busybox
    command: ["sh", "-c", "while true; do echo vpn-$$VERSION | nc -l -p 8080; done"]
    environment: [VERSION=1]
    stop_signal: SIGKILL
  app:
    image: busybox
    command: ["sleep", "1000"]
    stop_signal: SIGKILL
    network_mode: "service:vpn"
networks:
  default:
    ipam:
      config: [{{subnet: {subnet}}}]
"#
        ),
    )
    .expect("write compose file");
    env.defer(["down", "-v", "-t", "1"]);
    // Naming only app brings vpn up too: it is an implicit dependency.
    env.run_ok(["up", "-d", "app"]).expect("up");

    // app sees vpn's interface and address, and reaches vpn's listener on localhost.
    let prefix = subnet.trim_end_matches("0/24");
    let addrs = exec(&env, "app", &["ip", "-4", "addr"]);
    assert!(addrs.contains(&format!("inet {prefix}")), "{addrs}");
    let answer = read_local(&env, "app", 8080);
    assert_eq!(answer, "vpn-1");

    // A changed vpn is recreated, and app with it (its old namespace is gone with vpn).
    let yaml = std::fs::read_to_string(env.work_dir().join("compose.yaml")).expect("read");
    env.write_file("compose.yaml", yaml.replace("VERSION=1", "VERSION=2"))
        .expect("write compose file");
    let out = env.run_ok(["up", "-d"]).expect("up again");
    let recreated: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("Recreated"))
        .collect();
    assert_eq!(recreated.len(), 2, "{out:?}");
    assert_eq!(read_local(&env, "app", 8080), "vpn-2");

    env.run_ok(["down", "-t", "1"]).expect("down");
    assert_nothing_left(&env);
}

/// What the listener on `127.0.0.1:port` answers, asked from inside `service`; retried until
/// the listener is up.
fn read_local(env: &e2e::TestEnv, service: &str, port: u16) -> String {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let out = env
            .run([
                "exec",
                "-T",
                service,
                "sh",
                "-c",
                &format!("nc 127.0.0.1 {port} </dev/null"),
            ])
            .expect("rcompose runs");
        let text = out.stdout.trim().to_owned();
        if out.success() && !text.is_empty() {
            return text;
        }
        assert!(Instant::now() < end, "nothing answered: {out:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
