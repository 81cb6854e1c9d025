//! End-to-end tests of the one-off and helper project commands: `run`, `cp`, `scale` and
//! `events`, as root, with the busybox fixture from a local registry. Like compose_up.rs, each
//! test has its own state root, project name and subnet (10.219.N.0/24, checked against the
//! host's addresses and routes); a deferred `down -v` removes the project even when an assertion
//! fails.

use std::process::Stdio;
use std::time::{Duration, Instant};

use e2e::{
    assert_nothing_left, busybox_env, exec_ok as exec, free_port, free_subnet, Registry, TestEnv,
};

fn project_yaml(subnet: &str, port: u16) -> String {
    format!(
        r#"services:
  db:
    image: busybox
    command: ["sleep", "1000"]
    stop_signal: SIGKILL
  web:
    image: busybox
    command: ["sleep", "1000"]
    stop_signal: SIGKILL
    ports: ["127.0.0.1:{port}:80"]
    environment: [MODE=service]
    depends_on: [db]
  late:
    image: busybox
    command: ["sh", "-c", "sleep 2; echo late; exit 4"]
  worker:
    image: busybox
    command: ["sleep", "1000"]
    stop_signal: SIGKILL
    volumes: ["work:/work"]
volumes:
  work: {{}}
networks:
  default:
    ipam:
      config: [{{subnet: {subnet}}}]
"#
    )
}

fn setup() -> (TestEnv, Registry) {
    let (mut env, registry) = busybox_env();
    let subnet = free_subnet(219);
    env.write_file(
        "compose.yaml",
        project_yaml(&subnet, free_port().expect("a free loopback port")),
    )
    .expect("write compose file");
    env.defer(["down", "-v", "-t", "1"]);
    (env, registry)
}

fn ps_json(env: &TestEnv) -> Vec<serde_json::Value> {
    let out = env
        .run_ok(["ps", "-a", "--format", "json"])
        .expect("ps")
        .stdout;
    serde_json::from_str(&out).expect("ps prints JSON")
}

#[test]
fn run_rm_prints_starts_deps_and_leaves_no_container() {
    let (env, _registry) = setup();
    let out = env
        .run(["run", "--rm", "web", "sh", "-c", "echo hi $MODE"])
        .expect("rcompose runs");
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout.trim(), "hi service", "{out:?}");

    // The dependency was started first; the one-off container is gone.
    let ps = ps_json(&env);
    let names: Vec<&str> = ps.iter().filter_map(|c| c["Name"].as_str()).collect();
    assert!(names.iter().any(|n| n.ends_with("-db-1")), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("-run-")), "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with("-web-1")), "{names:?}");

    // The exit code is the container's; -e overrides the service's environment.
    let out = env
        .run([
            "run",
            "--rm",
            "--no-deps",
            "-e",
            "MODE=flag",
            "web",
            "sh",
            "-c",
            "echo $MODE; exit 3",
        ])
        .expect("rcompose runs");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(out.stdout.trim(), "flag", "{out:?}");

    env.run_ok(["down", "-t", "1"]).expect("down");
    assert_nothing_left(&env);
}

#[test]
fn run_detached_is_a_oneoff_that_down_removes() {
    let (env, _registry) = setup();
    let out = env
        .run_ok(["run", "-d", "--no-deps", "web", "sleep", "1000"])
        .expect("run -d");
    let name = out.stdout.trim().to_owned();
    let prefix = format!("{}-web-run-", env.project());
    assert!(name.starts_with(&prefix), "{out:?}");
    assert_eq!(name.len(), prefix.len() + 12, "{name}");

    let ps = ps_json(&env);
    let me = ps
        .iter()
        .find(|c| c["Name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} not in ps -a: {ps:?}"));
    assert_eq!(me["Labels"]["com.docker.compose.oneoff"], "True");
    assert_eq!(me["Service"], "web");
    assert_eq!(me["State"], "running");
    assert_eq!(
        me["Publishers"], "",
        "service ports are not published by run"
    );
    // --no-deps: db was not started.
    assert!(!ps.iter().any(|c| c["Service"] == "db"), "{ps:?}");

    env.run_ok(["down", "-t", "1"]).expect("down");
    assert_nothing_left(&env);
}

#[test]
fn run_detached_rm_goes_away_when_it_exits() {
    let (env, _registry) = setup();
    let name = env
        .run_ok(["run", "-d", "--rm", "--no-deps", "web", "sleep", "1"])
        .expect("run -d --rm")
        .stdout
        .trim()
        .to_owned();
    let end = Instant::now() + Duration::from_secs(20);
    while ps_json(&env).iter().any(|c| c["Name"] == name.as_str()) {
        assert!(Instant::now() < end, "{name} still there");
        std::thread::sleep(Duration::from_millis(100));
    }
    env.run_ok(["down", "-t", "1"]).expect("down");
    assert_nothing_left(&env);
}

#[test]
fn run_forwards_ctrl_c_without_a_tty() {
    let (env, _registry) = setup();
    let mut child = env
        .command()
        .expect("command")
        .args([
            "run",
            "--rm",
            "--no-deps",
            "web",
            "sh",
            "-c",
            "trap 'exit 7' INT; echo ready; while true; do sleep 0.1; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run starts");
    let rx = e2e::stdout_lines(&mut child);
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(l) if l == "ready" => {}
        other => {
            let _ = child.kill();
            panic!("no ready line: {other:?}");
        }
    }
    // SAFETY: plain kill(2) of our own child process.
    unsafe { libc::kill(i32::try_from(child.id()).expect("pid fits"), libc::SIGINT) };
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait works") {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("run did not end after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(7), "{status:?}");
    assert!(
        !ps_json(&env).iter().any(|c| c["Service"] == "web"),
        "--rm container left"
    );
}

#[test]
fn attach_relays_output_and_exit_code() {
    let (env, _registry) = setup();
    env.run_ok(["up", "-d", "late"]).expect("up");
    let out = env
        .run(["attach", "--no-stdin", "late"])
        .expect("rcompose runs");
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(out.stdout.contains("late"), "{out:?}");
}

#[test]
fn cp_round_trip() {
    let (env, _registry) = setup();
    env.run_ok(["up", "-d", "worker"]).expect("up");
    env.write_file("in.txt", "copied in\n").expect("write file");
    env.run_ok(["cp", "in.txt", "worker:/tmp/in.txt"])
        .expect("cp in");
    assert_eq!(exec(&env, "worker", &["cat", "/tmp/in.txt"]), "copied in\n");
    exec(
        &env,
        "worker",
        &["sh", "-c", "echo from inside > /tmp/out.txt"],
    );
    env.run_ok(["cp", "worker:/tmp/out.txt", "./out.txt"])
        .expect("cp out");
    let back = std::fs::read_to_string(env.work_dir().join("out.txt")).expect("copied file");
    assert_eq!(back, "from inside\n");
    let out = env
        .run(["cp", "--index", "2", "worker:/tmp/out.txt", "x"])
        .expect("rcompose runs");
    assert!(!out.success(), "no replica 2: {out:?}");
    // The service's named volume is part of what cp sees, running or stopped.
    env.run_ok(["cp", "in.txt", "worker:/work/"])
        .expect("cp into the volume");
    let volume = env
        .root()
        .join("volumes")
        .join(format!("{}_work", env.project()))
        .join("_data");
    let in_volume = std::fs::read_to_string(volume.join("in.txt")).expect("file in the volume");
    assert_eq!(in_volume, "copied in\n");
    env.run_ok(["stop", "worker"]).expect("stop");
    env.run_ok(["cp", "worker:/work/in.txt", "./stopped.txt"])
        .expect("cp out of a stopped service's volume");
    let back = std::fs::read_to_string(env.work_dir().join("stopped.txt")).expect("copied file");
    assert_eq!(back, "copied in\n");
}

#[test]
fn scale_adds_and_removes_replicas() {
    let (env, _registry) = setup();
    env.run_ok(["scale", "worker=3"]).expect("scale up");
    let names = |env: &TestEnv| -> Vec<String> {
        ps_json(env)
            .iter()
            .filter_map(|c| c["Name"].as_str().map(str::to_owned))
            .collect()
    };
    let now = names(&env);
    for n in 1..=3 {
        assert!(
            now.iter().any(|x| x.ends_with(&format!("-worker-{n}"))),
            "{now:?}"
        );
    }
    assert!(
        !now.iter().any(|x| x.contains("-db-")),
        "scale starts no dependencies: {now:?}"
    );
    // stats: one row per running container of the project.
    let stats = env
        .run_ok(["stats", "--no-stream", "--format", "json", "worker"])
        .expect("stats")
        .stdout;
    let rows: Vec<serde_json::Value> = stats
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    assert_eq!(rows.len(), 3, "{stats}");
    assert!(
        rows.iter()
            .all(|r| r["Name"].as_str().is_some_and(|n| n.contains("-worker-"))),
        "{stats}"
    );
    env.run_ok(["scale", "worker=1"]).expect("scale down");
    let now = names(&env);
    assert!(now.iter().any(|x| x.ends_with("-worker-1")), "{now:?}");
    assert!(!now.iter().any(|x| x.ends_with("-worker-2")), "{now:?}");
    let out = env.run(["scale", "worker"]).expect("rcompose runs");
    assert!(!out.success(), "{out:?}");
}

#[test]
fn events_json_sees_a_start() {
    let (env, _registry) = setup();
    env.run_ok(["create", "worker"]).expect("create");
    let mut child = env
        .command()
        .expect("command")
        .args(["events", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("events starts");
    let rx = e2e::stdout_lines(&mut child);
    // Let events take its first look before anything changes.
    std::thread::sleep(Duration::from_millis(600));
    env.run_ok(["start", "worker"]).expect("start");
    let mut seen: Vec<serde_json::Value> = Vec::new();
    let end = Instant::now() + Duration::from_secs(15);
    while !seen.iter().any(|e| e["action"] == "start") {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(serde_json::from_str(&l).expect("one JSON object a line")),
            Err(_) => {
                let _ = child.kill();
                panic!("no start event: {seen:?}");
            }
        }
    }
    // SAFETY: plain kill(2) of our own child process.
    unsafe { libc::kill(i32::try_from(child.id()).expect("pid fits"), libc::SIGINT) };
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait works") {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("events did not stop on Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{status:?}");
    let start = seen
        .iter()
        .find(|e| e["action"] == "start")
        .expect("start seen");
    assert_eq!(start["type"], "container");
    assert_eq!(start["service"], "worker");
    assert_eq!(
        start["attributes"]["name"],
        format!("{}-worker-1", env.project()).as_str()
    );
    assert_eq!(start["attributes"]["image"], "busybox");
    assert!(start["time"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(start["id"].as_str().is_some_and(|t| t.len() >= 12));
}
