//! End-to-end tests of `container run` options beyond the basics: `--group-add`,
//! `--oom-score-adj`, `--pid host`, `--ipc host`, `--cpuset-cpus`, `--memory-reservation`,
//! `--volumes-from`, and the same keys in a compose file. As root, with the busybox fixture.

use std::path::{Path, PathBuf};

use e2e::{assert_nothing_left, busybox_env, exec_ok as exec, free_subnet};

/// The container's directory in a cgroup controller's hierarchy (v1), or its v2 directory.
fn cgroup_dir(controller: &str, id: &str) -> PathBuf {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        root.join("rcompose").join(id)
    } else {
        root.join(controller).join("rcompose").join(id)
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
        .trim()
        .to_owned()
}

#[test]
fn process_and_cgroup_options_reach_the_container() {
    let (mut env, _registry) = busybox_env();
    env.defer(["container", "rm", "-f", "opts"]);
    let id = env
        .run_ok([
            "container",
            "run",
            "-d",
            "--name",
            "opts",
            "--group-add",
            "4321",
            "--oom-score-adj",
            "500",
            "--pid",
            "host",
            "--ipc",
            "host",
            "--cpuset-cpus",
            "0",
            "--memory-reservation",
            "32m",
            "busybox",
            "sleep",
            "1000",
        ])
        .expect("run -d")
        .stdout
        .trim()
        .to_owned();
    let inside = |cmd: &str| {
        env.run_ok(["container", "exec", "opts", "sh", "-c", cmd])
            .expect("exec")
            .stdout
            .trim()
            .to_owned()
    };
    assert!(
        inside("id -G").split_whitespace().any(|g| g == "4321"),
        "groups"
    );
    assert_eq!(inside("cat /proc/self/oom_score_adj"), "500");
    let pid = env
        .run_ok(["container", "inspect", "-f", "{{.State.Pid}}", "opts"])
        .expect("inspect")
        .stdout
        .trim()
        .to_owned();
    assert_eq!(
        read(Path::new(&format!("/proc/{pid}/oom_score_adj"))),
        "500",
        "the container's own process"
    );
    // The host's namespaces: its PID 1 and its IPC namespace.
    let host_ipc = std::fs::read_link("/proc/self/ns/ipc").expect("host ipc ns");
    assert_eq!(
        inside("readlink /proc/self/ns/ipc"),
        host_ipc.to_string_lossy()
    );
    let host_init = std::fs::read("/proc/1/cmdline").expect("host init");
    let host_init = String::from_utf8_lossy(&host_init).replace('\0', " ");
    assert_eq!(
        inside("tr '\\0' ' ' < /proc/1/cmdline").trim(),
        host_init.trim()
    );
    assert_eq!(read(&cgroup_dir("cpuset", &id).join("cpuset.cpus")), "0");
    let soft = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        cgroup_dir("memory", &id).join("memory.low")
    } else {
        cgroup_dir("memory", &id).join("memory.soft_limit_in_bytes")
    };
    assert_eq!(read(&soft), (32u64 << 20).to_string());

    // Without the options: the container's own namespaces, no extra group.
    let out = env
        .run_ok([
            "container",
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "id -G; readlink /proc/self/ns/ipc; cat /proc/1/cmdline",
        ])
        .expect("run --rm")
        .stdout;
    assert!(!out.contains("4321"), "{out}");
    assert!(!out.contains(&*host_ipc.to_string_lossy()), "{out}");
}

#[test]
fn compose_keys_reach_the_container() {
    let (mut env, _registry) = busybox_env();
    let subnet = free_subnet(223);
    env.write_file(
        "compose.yaml",
        format!(
            "services:\n  app:\n    image: busybox\n    command: ['sleep', '1000']\n    stop_signal: SIGKILL\n    group_add: ['4321']\n    oom_score_adj: 300\n    pid: host\nnetworks:\n  default:\n    ipam:\n      config: [{{subnet: {subnet}}}]\n"
        ),
    )
    .expect("write compose file");
    env.defer(["down", "-t", "1"]);
    let out = env.run_ok(["up", "-d"]).expect("up");
    assert!(!out.stderr.contains("not supported"), "{out:?}");
    let groups = exec(&env, "app", &["id", "-G"]);
    assert!(groups.split_whitespace().any(|g| g == "4321"), "{groups}");
    assert_eq!(
        exec(&env, "app", &["cat", "/proc/self/oom_score_adj"]).trim(),
        "300"
    );
    let pid1 = exec(&env, "app", &["cat", "/proc/1/cmdline"]);
    assert!(!pid1.starts_with("sleep"), "the host's PID 1: {pid1:?}");
    env.run_ok(["down", "-t", "1"]).expect("down");
    assert_nothing_left(&env);
}

#[test]
fn volumes_from_shares_mounts() {
    let (mut env, _registry) = busybox_env();
    env.defer(["container", "rm", "-f", "-v", "vsrc"]);
    env.run_ok([
        "container",
        "run",
        "-d",
        "--name",
        "vsrc",
        "-v",
        "/data",
        "busybox",
        "sh",
        "-c",
        "echo shared > /data/f; sleep 1000",
    ])
    .expect("source container");
    let read = env
        .run_ok([
            "container",
            "run",
            "--rm",
            "--volumes-from",
            "vsrc",
            "busybox",
            "sh",
            "-c",
            "sleep 0.2; cat /data/f; echo more > /data/g",
        ])
        .expect("--volumes-from")
        .stdout;
    assert_eq!(read.trim(), "shared");
    let ro = env
        .run([
            "container",
            "run",
            "--rm",
            "--volumes-from",
            "vsrc:ro",
            "busybox",
            "sh",
            "-c",
            "cat /data/g && echo x > /data/h",
        ])
        .expect("rcompose runs");
    assert!(!ro.success(), "a :ro copy refuses writes: {ro:?}");
    assert!(ro.stdout.contains("more"), "{ro:?}");
    // The volume is the source's: removing the --rm users left it in place.
    let still = env
        .run_ok(["container", "exec", "vsrc", "cat", "/data/g"])
        .expect("exec")
        .stdout;
    assert_eq!(still.trim(), "more");

    // Compose: a service mounting another service's volumes.
    let subnet = free_subnet(223);
    env.write_file(
        "compose.yaml",
        format!(
            "services:\n  data:\n    image: busybox\n    command: ['sh', '-c', 'echo from-data > /shared/f; sleep 1000']\n    stop_signal: SIGKILL\n    volumes: [shared:/shared]\n  app:\n    image: busybox\n    command: ['sleep', '1000']\n    stop_signal: SIGKILL\n    volumes_from: ['data:ro']\nvolumes:\n  shared: {{}}\nnetworks:\n  default:\n    ipam:\n      config: [{{subnet: {subnet}}}]\n"
        ),
    )
    .expect("write compose file");
    env.defer(["down", "-v", "-t", "1"]);
    // Naming only app brings data up first.
    let out = env.run_ok(["up", "-d", "app"]).expect("up app");
    assert!(!out.stderr.contains("not supported"), "{out:?}");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let seen = loop {
        let o = env
            .run(["exec", "-T", "app", "cat", "/shared/f"])
            .expect("rcompose runs");
        if o.success() || std::time::Instant::now() > end {
            break o;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(seen.stdout.trim(), "from-data", "{seen:?}");
    let write = env
        .run(["exec", "-T", "app", "touch", "/shared/x"])
        .expect("rcompose runs");
    assert!(!write.success(), "data:ro is read-only: {write:?}");
    env.run_ok(["down", "-v", "-t", "1"]).expect("down");
}

#[test]
fn links_give_an_alias() {
    let (mut env, _registry) = busybox_env();
    let subnet = free_subnet(223);
    env.write_file(
        "compose.yaml",
        format!(
            "services:\n  db:\n    image: busybox\n    command: ['sleep', '1000']\n    stop_signal: SIGKILL\n  app:\n    image: busybox\n    command: ['sleep', '1000']\n    stop_signal: SIGKILL\n    links: ['db:database']\nnetworks:\n  default:\n    ipam:\n      config: [{{subnet: {subnet}}}]\n"
        ),
    )
    .expect("write compose file");
    env.defer(["down", "-t", "1"]);
    let out = env.run_ok(["up", "-d"]).expect("up");
    assert!(!out.stderr.contains("not supported"), "{out:?}");
    let db = exec(&env, "app", &["nslookup", "db"]);
    let alias = exec(&env, "app", &["nslookup", "database"]);
    let addr = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("Address:") && !l.contains(":53"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(!addr(&db).is_empty(), "{db}");
    assert_eq!(addr(&alias), addr(&db), "{alias}");
    env.run_ok(["down", "-t", "1"]).expect("down");
    assert_nothing_left(&env);
}
