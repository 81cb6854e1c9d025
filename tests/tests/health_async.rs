//! The supervisor keeps serving a container while its healthcheck runs: output is logged and
//! `stop` is answered during a slow check. As root, with the busybox fixture.

use std::time::{Duration, Instant};

use e2e::busybox_env;

fn log_lines(env: &e2e::TestEnv, name: &str) -> usize {
    env.run_ok(["container", "logs", name])
        .expect("logs")
        .stdout
        .lines()
        .count()
}

fn check_running(env: &e2e::TestEnv, name: &str) -> bool {
    env.run(["container", "exec", name, "ps", "-o", "args"])
        .is_ok_and(|o| o.stdout.lines().any(|l| l.trim() == "sleep 4"))
}

#[test]
fn output_is_logged_while_a_slow_check_runs() {
    let (mut env, _registry) = busybox_env();
    let name = "slowcheck";
    env.defer(["container", "rm", "-f", name]);
    env.run_ok([
        "container",
        "run",
        "-d",
        "--name",
        name,
        "--health-cmd",
        "sleep 4",
        "--health-interval",
        "3s",
        "--health-timeout",
        "20s",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done",
    ])
    .expect("run -d");

    // Catch a moment inside a check, and count log lines then and a second later while the
    // same check still runs (checks are 3 s apart, so it is the same one): they grow only if
    // the supervisor reads output meanwhile.
    let end = Instant::now() + Duration::from_secs(30);
    let grew = loop {
        assert!(Instant::now() < end, "never saw the check run");
        if !check_running(&env, name) {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let before = log_lines(&env, name);
        std::thread::sleep(Duration::from_secs(1));
        let after = log_lines(&env, name);
        if check_running(&env, name) {
            break after > before;
        }
    };
    assert!(grew, "no output was logged while the healthcheck ran");

    // `stop` is served during a check too, and ends the check with the container.
    env.run_ok(["container", "stop", "-t", "1", name])
        .expect("stop");
    let status = env
        .run_ok(["container", "inspect", "-f", "{{.State.Status}}", name])
        .expect("inspect")
        .stdout;
    assert_eq!(status.trim(), "exited");
}
