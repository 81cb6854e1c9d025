//! End-to-end tests of `rcompose up` / `down` and the project commands, as root, with the
//! busybox fixture from a local registry. Each test has its own state root, project name,
//! subnet (10.217.N.0/24, checked against the host's addresses and routes) and host port; a
//! deferred `down -v` removes the project even when an assertion fails.

use std::time::{Duration, Instant};

use e2e::{
    assert_nothing_left, busybox_env, exec_ok as exec, free_port, free_subnet, read_port, TestEnv,
};

fn stack_yaml(subnet: &str, port: u16, web_env: &str) -> String {
    format!(
        r#"services:
  db:
    image: busybox
    command: ["sh", "-c", "mkdir -p /data; touch /tmp/ready; while true; do echo db-ok | nc -l -p 5432; done"]
    stop_signal: SIGKILL
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      start_period: 10s
      start_interval: 100ms
    volumes: [data:/data]
  web:
    image: busybox
    command: ["sh", "-c", "while true; do echo web-ok | nc -l -p 80; done"]
    stop_signal: SIGKILL
    environment: [{web_env}]
    ports: ["127.0.0.1:{port}:80"]
    depends_on:
      db: {{condition: service_healthy}}
  worker:
    image: busybox
    command: ["sh", "-c", "sleep 1000"]
    stop_signal: SIGKILL
networks:
  default:
    ipam:
      config: [{{subnet: {subnet}}}]
volumes:
  data: {{}}
"#
    )
}

fn up(env: &TestEnv, args: &[&str]) -> e2e::Output {
    let mut all = vec!["up", "-d"];
    all.extend_from_slice(args);
    let out = env.run(all).expect("rcompose runs");
    assert!(out.success(), "up {args:?} failed: {out:?}");
    out
}

#[test]
fn three_service_stack_converges_and_goes_away() {
    let (mut env, _registry) = busybox_env();
    let subnet = free_subnet(217);
    let port = free_port().expect("a free loopback port");
    env.write_file("compose.yaml", stack_yaml(&subnet, port, "MODE=one"))
        .expect("write compose file");
    env.defer(["down", "-v", "-t", "1"]);

    // --wait returns once db is healthy and everything runs; web starts after db is healthy.
    let out = up(&env, &["--wait"]);
    assert!(out.stderr.contains("Container"), "{out:?}");
    assert_eq!(read_port(port).trim(), "web-ok");

    // Service DNS: web finds db by service name, on the project's subnet.
    let prefix = subnet.trim_end_matches("0/24");
    let answer = exec(&env, "web", &["nslookup", "db"]);
    assert!(answer.contains(&format!("Address: {prefix}")), "{answer}");
    exec(&env, "db", &["sh", "-c", "echo persisted > /data/f"]);

    // A second up touches nothing.
    let plan = env.run_ok(["up", "--dry-run"]).expect("dry run").stdout;
    assert!(
        plan.lines().all(|l| l.starts_with("Running")),
        "plan of a converged project:\n{plan}"
    );
    let ids_before = env.run_ok(["ps", "-q"]).expect("ps").stdout;
    let out = up(&env, &[]);
    assert!(
        !out.stderr.contains("Created") && !out.stderr.contains("Recreated"),
        "{out:?}"
    );
    assert_eq!(env.run_ok(["ps", "-q"]).expect("ps").stdout, ids_before);

    // Changing web's environment recreates web only.
    env.write_file("compose.yaml", stack_yaml(&subnet, port, "MODE=two"))
        .expect("write compose file");
    let out = up(&env, &[]);
    let recreated: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("Recreated"))
        .collect();
    assert_eq!(recreated.len(), 1, "{out:?}");
    assert!(recreated[0].contains("-web-1"), "{out:?}");
    assert_eq!(exec(&env, "web", &["sh", "-c", "echo $MODE"]).trim(), "two");
    assert_eq!(read_port(port).trim(), "web-ok");

    // --scale adds replicas that resolve by the service name.
    up(&env, &["--scale", "worker=2"]);
    let ps = env.run_ok(["ps"]).expect("ps").stdout;
    assert!(ps.contains("-worker-2"), "{ps}");
    let answer = exec(&env, "web", &["nslookup", "worker"]);
    assert_eq!(answer.matches("Address: 10.217.").count(), 2, "{answer}");

    // The named volume survives down + up; down -v removes it.
    env.run_ok(["down", "-t", "1"]).expect("down");
    assert_nothing_left(&env);
    up(&env, &["--wait"]);
    assert_eq!(exec(&env, "db", &["cat", "/data/f"]).trim(), "persisted");
    env.run_ok(["down", "-v", "-t", "1"]).expect("down -v");
    assert_nothing_left(&env);
    let volumes = env
        .run_ok(["volume", "ls", "-q"])
        .expect("volume ls")
        .stdout;
    assert!(volumes.trim().is_empty(), "volumes left: {volumes}");
}

#[test]
fn wait_reports_a_failing_service() {
    let (mut env, _registry) = busybox_env();
    let subnet = free_subnet(217);
    env.write_file(
        "compose.yaml",
        format!(
            "services:\n  bad:\n    image: busybox\n    command: ['sh', '-c', 'exit 3']\n  needs:\n    image: busybox\n    command: ['true']\n    depends_on:\n      bad: {{condition: service_completed_successfully}}\nnetworks:\n  default:\n    ipam:\n      config: [{{subnet: {subnet}}}]\n"
        ),
    )
    .expect("write compose file");
    env.defer(["down", "-v", "-t", "1"]);
    let out = env.run(["up", "-d", "--wait"]).expect("rcompose runs");
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr.contains("didn't complete successfully: exit 3"),
        "{out:?}"
    );
    env.run_ok(["down", "-t", "1"]).expect("down");
    assert_nothing_left(&env);
}

#[test]
fn two_projects_side_by_side() {
    let (mut env, _registry) = busybox_env();
    let (net_a, net_b) = (free_subnet(217), free_subnet(217));
    for (dir, subnet) in [("a", &net_a), ("b", &net_b)] {
        env.write_file(
            &format!("{dir}/compose.yaml"),
            format!(
                "services:\n  app:\n    image: busybox\n    command: ['sleep', '1000']\n    stop_signal: SIGKILL\nnetworks:\n  default:\n    ipam:\n      config: [{{subnet: {subnet}}}]\n"
            ),
        )
        .expect("write compose file");
    }
    let a = env.work_dir().join("a/compose.yaml");
    let b = env.work_dir().join("b/compose.yaml");
    let (a, b) = (a.to_string_lossy(), b.to_string_lossy());
    env.defer(["-f", &*a, "-p", "proja", "down", "-t", "1"]);
    env.defer(["-f", &*b, "-p", "projb", "down", "-t", "1"]);
    env.run_ok(["-f", &*a, "-p", "proja", "up", "-d"])
        .expect("up a");
    env.run_ok(["-f", &*b, "-p", "projb", "up", "-d"])
        .expect("up b");
    let ps_a = env
        .run_ok(["-f", &*a, "-p", "proja", "ps"])
        .expect("ps a")
        .stdout;
    assert!(
        ps_a.contains("proja-app-1") && !ps_a.contains("projb"),
        "{ps_a}"
    );
    let ls = env.run_ok(["ls"]).expect("ls").stdout;
    assert!(ls.contains("proja") && ls.contains("projb"), "{ls}");
    env.run_ok(["-f", &*a, "-p", "proja", "down", "-t", "1"])
        .expect("down a");
    let ps_b = env
        .run_ok(["-f", &*b, "-p", "projb", "ps"])
        .expect("ps b")
        .stdout;
    assert!(ps_b.contains("projb-app-1"), "{ps_b}");
    let nets = env.run_ok(["network", "ls"]).expect("network ls").stdout;
    assert!(
        nets.contains("projb_default") && !nets.contains("proja_default"),
        "{nets}"
    );
}

#[test]
fn attached_up_streams_prefixed_logs_and_ctrl_c_stops_the_project() {
    let (mut env, _registry) = busybox_env();
    let subnet = free_subnet(217);
    env.write_file(
        "compose.yaml",
        format!(
            "services:\n  talker:\n    image: busybox\n    command: ['sh', '-c', 'echo ready; while true; do sleep 1; done']\n    stop_signal: SIGKILL\n  once:\n    image: busybox\n    command: ['echo', 'one shot']\nnetworks:\n  default:\n    ipam:\n      config: [{{subnet: {subnet}}}]\n"
        ),
    )
    .expect("write compose file");
    env.defer(["down", "-t", "1"]);
    let mut child = env
        .command()
        .expect("command")
        .args(["up", "--no-color"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("up starts");
    let rx = e2e::stdout_lines(&mut child);
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(30);
    while !(seen
        .iter()
        .any(|l: &String| l.contains("-talker-1 | ready"))
        && seen
            .iter()
            .any(|l| l.contains("-once-1") && l.contains("| one shot")))
    {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => {
                let _ = child.kill();
                panic!("attached output lacks the prefixed lines: {seen:?}");
            }
        }
    }
    // SAFETY: plain kill(2) of our own child process.
    unsafe { libc::kill(i32::try_from(child.id()).expect("pid fits"), libc::SIGINT) };
    let end = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait works") {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("up did not stop after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130), "up after Ctrl-C: {status:?}");
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(2)) {
        seen.push(l);
    }
    assert!(
        seen.iter().any(|l| l.contains("Gracefully stopping")),
        "{seen:?}"
    );
    let ps = env
        .run_ok(["ps", "-a", "--format", "json"])
        .expect("ps")
        .stdout;
    assert!(
        !ps.contains("\"running\""),
        "still running after Ctrl-C: {ps}"
    );
}

#[test]
fn secrets_keep_owner_and_mode_and_hooks_run() {
    let (mut env, _registry) = busybox_env();
    let subnet = free_subnet(217);
    env.write_file("pw.txt", "hunter2").expect("secret file");
    env.write_file("out/.keep", "").expect("out dir");
    env.write_file(
        "compose.yaml",
        format!(
            r#"services:
  app:
    image: busybox
    command: ["sleep", "1000"]
    stop_signal: SIGKILL
    volumes: ["./out:/out"]
    secrets:
      - source: pw
        uid: "100"
        gid: "101"
        mode: 0400
    configs:
      - source: greeting
        target: /etc/greeting
    post_start:
      - command: ["sh", "-c", "echo started > /out/post_start"]
    pre_stop:
      - command: ["sh", "-c", "echo stopping > /out/pre_stop"]
secrets:
  pw:
    file: ./pw.txt
configs:
  greeting:
    content: hello
networks:
  default:
    ipam:
      config: [{{subnet: {subnet}}}]
"#
        ),
    )
    .expect("write compose file");
    env.defer(["down", "-t", "1"]);
    up(&env, &[]);
    let stat = exec(&env, "app", &["stat", "-c", "%u %g %a", "/run/secrets/pw"]);
    assert_eq!(stat.trim(), "100 101 400");
    assert_eq!(exec(&env, "app", &["cat", "/run/secrets/pw"]), "hunter2");
    assert_eq!(exec(&env, "app", &["cat", "/etc/greeting"]), "hello");
    let out = env.work_dir().join("out");
    assert_eq!(
        std::fs::read_to_string(out.join("post_start")).expect("post_start ran"),
        "started\n"
    );
    env.run_ok(["down", "-t", "1"]).expect("down");
    assert_eq!(
        std::fs::read_to_string(out.join("pre_stop")).expect("pre_stop ran"),
        "stopping\n"
    );
    assert_nothing_left(&env);
}

/// The lifecycle commands and the `up` flags the stack test does not use.
#[test]
fn lifecycle_commands_and_up_flags() {
    let (mut env, _registry) = busybox_env();
    let subnet = free_subnet(217);
    let port = free_port().expect("a free loopback port");
    env.write_file(
        "compose.yaml",
        format!(
            "services:\n  app:\n    image: busybox\n    command: ['sh', '-c', 'echo line1; echo line2; while true; do echo app-ok | nc -l -p 80; done']\n    stop_signal: SIGKILL\n    ports: ['127.0.0.1:{port}:80']\n  job:\n    image: busybox\n    command: ['sh', '-c', 'exit 4']\n    profiles: [jobs]\nnetworks:\n  default:\n    ipam:\n      config: [{{subnet: {subnet}}}]\n"
        ),
    )
    .expect("write compose file");
    env.defer(["--profile", "jobs", "down", "-t", "1", "--remove-orphans"]);
    up(&env, &["--wait"]);
    let id = env.run_ok(["ps", "-q"]).expect("ps").stdout;

    // port, images, top, logs --tail / -t / --no-log-prefix.
    let published = env.run_ok(["port", "app", "80"]).expect("port").stdout;
    assert_eq!(published.trim(), format!("127.0.0.1:{port}"));
    let images = env.run_ok(["images"]).expect("images").stdout;
    assert!(images.contains("busybox"), "{images}");
    let top = env.run_ok(["top"]).expect("top").stdout;
    assert!(top.contains("nc -l -p 80"), "{top}");
    let end = Instant::now() + Duration::from_secs(10);
    let logs = loop {
        let l = env
            .run_ok(["logs", "--tail", "1", "--no-log-prefix", "app"])
            .expect("logs")
            .stdout;
        if l == "line2\n" || Instant::now() > end {
            break l;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(logs, "line2\n");
    let stamped = env.run_ok(["logs", "-t", "app"]).expect("logs -t").stdout;
    assert!(
        stamped.contains(" | 20") && stamped.contains("Z line1"),
        "{stamped}"
    );

    // pause / unpause / stop / start / restart / kill.
    env.run_ok(["pause", "app"]).expect("pause");
    let ps = env.run_ok(["ps", "--format", "json"]).expect("ps").stdout;
    assert!(ps.contains("\"State\":\"paused\""), "{ps}");
    env.run_ok(["unpause", "app"]).expect("unpause");
    env.run_ok(["stop", "-t", "1"]).expect("stop");
    assert!(env
        .run_ok(["ps", "-q"])
        .expect("ps")
        .stdout
        .trim()
        .is_empty());
    let exited = env
        .run_ok(["ps", "--status", "exited", "-q"])
        .expect("ps --status")
        .stdout;
    assert_eq!(exited, id);
    env.run_ok(["start"]).expect("start");
    assert_eq!(read_port(port).trim(), "app-ok");
    env.run_ok(["restart", "-t", "1"]).expect("restart");
    assert_eq!(read_port(port).trim(), "app-ok");
    env.run_ok(["kill"]).expect("kill");
    // `wait` prints the exit code of a stopped container (SIGKILL: 137) and exits with it.
    let waited = env.run(["wait"]).expect("rcompose runs");
    assert_eq!(waited.stdout.trim(), "137");
    assert_eq!(waited.status.code(), Some(137));

    // --no-recreate keeps the container, --force-recreate replaces it.
    up(&env, &["--no-recreate"]);
    assert_eq!(env.run_ok(["ps", "-q"]).expect("ps").stdout, id);
    let out = up(&env, &["--force-recreate"]);
    assert!(out.stderr.contains("Recreated"), "{out:?}");
    assert_ne!(env.run_ok(["ps", "-q"]).expect("ps").stdout, id);

    // rm refuses nothing when stopped, and removes.
    env.run_ok(["stop", "-t", "1"]).expect("stop");
    env.run_ok(["rm", "-f"]).expect("rm");
    assert!(env
        .run_ok(["ps", "-aq"])
        .expect("ps")
        .stdout
        .trim()
        .is_empty());

    // Attached with --exit-code-from: the job's exit code, and the project stops.
    let out = env
        .run([
            "--profile",
            "jobs",
            "up",
            "--exit-code-from",
            "job",
            "--no-color",
        ])
        .expect("rcompose runs");
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(
        out.stdout.contains("exited with code 4") || out.stdout.contains("Gracefully stopping"),
        "{out:?}"
    );
    let running = env.run_ok(["ps", "-q"]).expect("ps").stdout;
    assert!(running.trim().is_empty(), "still running: {running}");
}
