//! End-to-end tests of `--init` / compose's `init: true`: the host's static tini runs as PID 1,
//! forwards the stop signal to the command and reaps orphaned processes. As root, with the
//! busybox fixture from a local registry and Debian's `tini` package (tini-static).

use std::time::{Duration, Instant};

use e2e::{assert_nothing_left, busybox_env, exec_ok as exec, free_subnet};

/// Zombies (`Z` state) among the container's processes.
fn zombies(env: &e2e::TestEnv, container: &str) -> usize {
    let out = env
        .run_ok(["container", "exec", container, "ps", "-o", "stat"])
        .expect("ps");
    out.stdout
        .lines()
        .skip(1)
        .filter(|l| l.trim_start().starts_with('Z'))
        .count()
}

/// Waits until `container` has `n` zombies, or the deadline passes; returns the last count.
fn settle_zombies(env: &e2e::TestEnv, container: &str, n: usize) -> usize {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let z = zombies(env, container);
        if z == n || Instant::now() > end {
            return z;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn init_runs_as_pid_1_forwards_signals_and_reaps() {
    let (mut env, _registry) = busybox_env();
    let out = env
        .run([
            "container",
            "run",
            "--rm",
            "--init",
            "busybox",
            "sh",
            "-c",
            "cat /proc/1/cmdline | tr '\\0' ' '; exit 7",
        ])
        .expect("rcompose runs");
    // The exit code of the command comes through the init.
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert!(
        out.stdout.starts_with("/sbin/docker-init -- sh -c"),
        "{out:?}"
    );

    // An orphan is reaped by the init; without one it stays a zombie of the command.
    let orphan = "(sleep 0.2 &); exec sleep 1000";
    for (name, init) in [("with-init", true), ("without-init", false)] {
        env.defer(["container", "rm", "-f", name]);
        let mut args = vec!["container", "run", "-d", "--name", name];
        if init {
            args.push("--init");
        }
        args.extend(["busybox", "sh", "-c", orphan]);
        env.run_ok(args).expect("run -d");
    }
    assert_eq!(settle_zombies(&env, "without-init", 1), 1);
    assert_eq!(settle_zombies(&env, "with-init", 0), 0);

    // `stop` sends SIGTERM to the init, which passes it on to `sleep` (PID 1 of a container
    // ignores signals it has no handler for, so without an init only SIGKILL would end it).
    env.run_ok(["container", "stop", "-t", "60", "with-init"])
        .expect("stop");
    let code = env
        .run_ok([
            "container",
            "inspect",
            "-f",
            "{{.State.ExitCode}}",
            "with-init",
        ])
        .expect("inspect")
        .stdout;
    assert_eq!(code.trim(), "143");
}

#[test]
fn compose_init_true_reaches_the_container() {
    let (mut env, _registry) = busybox_env();
    let subnet = free_subnet(223);
    env.write_file(
        "compose.yaml",
        format!(
            "services:\n  app:\n    image: busybox\n    init: true\n    command: ['sleep', '1000']\nnetworks:\n  default:\n    ipam:\n      config: [{{subnet: {subnet}}}]\n"
        ),
    )
    .expect("write compose file");
    env.defer(["down", "-t", "1"]);
    env.run_ok(["up", "-d"]).expect("up");
    let pid1 = exec(&env, "app", &["cat", "/proc/1/cmdline"]);
    assert!(pid1.starts_with("/sbin/docker-init\0--\0sleep"), "{pid1:?}");
    env.run_ok(["down", "-t", "60"]).expect("down");
    assert_nothing_left(&env);
}
