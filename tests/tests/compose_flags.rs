//! End-to-end tests of the `up` flags and of attached mode following containers, as root, with
//! the busybox fixture from a local registry. Like compose_up.rs, each test has its own state
//! root, project name and subnet (10.221.N.0/24, checked against the host's addresses and
//! routes); a deferred `down -v` removes the project even when an assertion fails.

use std::process::{Child, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use e2e::{assert_nothing_left, busybox_env, exec_ok as exec, free_subnet, TestEnv};

/// A compose file: `services` (indented as under `services:`) on the test's own subnet.
fn compose(subnet: &str, services: &str) -> String {
    format!(
        "services:\n{services}networks:\n  default:\n    ipam:\n      config: [{{subnet: {subnet}}}]\n"
    )
}

/// A fresh env with `services` written as its compose file and `down` deferred.
fn project(services: &str) -> (TestEnv, e2e::Registry) {
    let (mut env, registry) = busybox_env();
    let subnet = free_subnet(221);
    env.write_file("compose.yaml", compose(&subnet, services))
        .expect("write compose file");
    env.defer(["down", "-v", "-t", "1", "--remove-orphans"]);
    (env, registry)
}

fn rewrite(env: &TestEnv, services: &str) {
    let text = std::fs::read_to_string(env.work_dir().join("compose.yaml")).expect("read");
    let subnet = text
        .split("subnet: ")
        .nth(1)
        .and_then(|s| s.split('}').next())
        .expect("the file names its subnet")
        .to_owned();
    env.write_file("compose.yaml", compose(&subnet, services))
        .expect("write compose file");
}

fn up(env: &TestEnv, args: &[&str]) -> e2e::Output {
    let mut all = vec!["up", "-d"];
    all.extend_from_slice(args);
    let out = env.run(all).expect("rcompose runs");
    assert!(out.success(), "up {args:?} failed: {out}");
    out
}

/// Name → (id, state) of every container of the project.
fn containers(env: &TestEnv) -> Vec<(String, String, String)> {
    let out = env
        .run_ok(["ps", "-a", "--format", "json"])
        .expect("ps")
        .stdout;
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).expect("ps prints JSON");
    list.iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            (s("Name"), s("ID"), s("State"))
        })
        .collect()
}

fn names(env: &TestEnv) -> Vec<String> {
    let mut n: Vec<String> = containers(env).into_iter().map(|c| c.0).collect();
    n.sort();
    n
}

/// The id of the container whose name ends with `suffix` (`-web-1`).
fn id_of(env: &TestEnv, suffix: &str) -> String {
    containers(env)
        .into_iter()
        .find(|c| c.0.ends_with(suffix))
        .map(|c| c.1)
        .unwrap_or_else(|| panic!("no container *{suffix}"))
}

fn full(env: &TestEnv, service_number: &str) -> String {
    format!("{}-{service_number}", env.project())
}

/// An attached `up` running in the background, its standard output read line by line.
struct Attached {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Attached {
    fn start(env: &TestEnv, args: &[&str]) -> Attached {
        let mut child = env
            .command()
            .expect("command")
            .arg("up")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("up starts");
        let rx = e2e::stdout_lines(&mut child);
        Attached {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Reads until a line satisfies `want` (60 s at most); returns it.
    fn expect(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + Duration::from_secs(60);
        if let Some(l) = self.seen.iter().find(|l| want(l)) {
            return l.clone();
        }
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if want(&l) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "attached up never printed {what}; it printed {:?}",
                    self.seen
                ),
            }
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().expect("wait works").is_none()
    }

    /// Ctrl-C, then waits for the exit (60 s at most) and the rest of the output.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        // SAFETY: plain kill(2) of our own child process.
        unsafe {
            libc::kill(
                i32::try_from(self.child.id()).expect("pid fits"),
                libc::SIGINT,
            )
        };
        self.finish()
    }

    /// Waits for the exit (60 s at most) and the rest of the output.
    fn finish(&mut self) -> std::process::ExitStatus {
        let end = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait works") {
                break s;
            }
            assert!(
                Instant::now() < end,
                "attached up did not end; it printed {:?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(l);
        }
        status
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn nothing_running(env: &TestEnv) {
    let running = env.run_ok(["ps", "-q"]).expect("ps").stdout;
    assert!(running.trim().is_empty(), "still running: {running}");
}

const SLEEPER: &str =
    "    image: busybox\n    command: ['sleep', '1000']\n    stop_signal: SIGKILL\n";

#[test]
fn no_deps_and_always_recreate_deps() {
    let (env, _registry) = project(&format!(
        "  db:\n{SLEEPER}  web:\n{SLEEPER}    depends_on: [db]\n"
    ));
    // --no-deps: web alone.
    up(&env, &["--no-deps", "web"]);
    assert_eq!(names(&env), [full(&env, "web-1")]);
    // Without it the dependency comes along.
    up(&env, &["web"]);
    assert_eq!(names(&env), [full(&env, "db-1"), full(&env, "web-1")]);
    let (db, web) = (id_of(&env, "-db-1"), id_of(&env, "-web-1"));
    up(&env, &["web"]);
    assert_eq!(
        (id_of(&env, "-db-1"), id_of(&env, "-web-1")),
        (db.clone(), web.clone())
    );
    // --always-recreate-deps: the dependency is replaced, the named service is not.
    let out = up(&env, &["--always-recreate-deps", "web"]);
    assert!(out.stderr.contains("Recreated"), "{out}");
    assert_ne!(id_of(&env, "-db-1"), db);
    assert_eq!(id_of(&env, "-web-1"), web);
    // --force-recreate of a named service leaves its dependency alone.
    let db = id_of(&env, "-db-1");
    up(&env, &["--force-recreate", "web"]);
    assert_eq!(id_of(&env, "-db-1"), db);
    assert_ne!(id_of(&env, "-web-1"), web);
    env.run_ok(["down", "-t", "1"]).expect("down");
    assert_nothing_left(&env);
}

#[test]
fn scale_down_and_remove_orphans() {
    let both = format!("  app:\n{SLEEPER}  old:\n{SLEEPER}");
    let (env, _registry) = project(&both);
    up(&env, &["--scale", "app=3"]);
    let app1 = id_of(&env, "-app-1");
    assert_eq!(
        names(&env),
        [
            full(&env, "app-1"),
            full(&env, "app-2"),
            full(&env, "app-3"),
            full(&env, "old-1")
        ]
    );
    // Scaling down removes the highest numbers and keeps the rest as they are.
    up(&env, &["--scale", "app=1"]);
    assert_eq!(names(&env), [full(&env, "app-1"), full(&env, "old-1")]);
    assert_eq!(id_of(&env, "-app-1"), app1);

    // A service gone from the file: its container is an orphan, reported and kept...
    rewrite(&env, &format!("  app:\n{SLEEPER}"));
    let out = up(&env, &[]);
    assert!(
        out.stderr.contains("Found orphan containers") && out.stderr.contains(&full(&env, "old-1")),
        "{out}"
    );
    assert!(names(&env).contains(&full(&env, "old-1")));
    // ... until --remove-orphans removes it.
    up(&env, &["--remove-orphans"]);
    assert_eq!(names(&env), [full(&env, "app-1")]);
    assert_eq!(id_of(&env, "-app-1"), app1);
    env.run_ok(["down", "-t", "1"]).expect("down");
    assert_nothing_left(&env);
}

#[test]
fn restart_true_restarts_the_dependent_of_a_recreated_service() {
    let services = |generation: &str| {
        format!(
            "  db:\n{SLEEPER}    environment: [GEN={generation}]\n  web:\n    image: busybox\n    command: ['sh', '-c', 'echo start >> /out/web; sleep 1000']\n    stop_signal: SIGKILL\n    volumes: ['./out:/out']\n    depends_on:\n      db: {{condition: service_started, restart: true}}\n  other:\n    image: busybox\n    command: ['sh', '-c', 'echo start >> /out/other; sleep 1000']\n    stop_signal: SIGKILL\n    volumes: ['./out:/out']\n    depends_on:\n      db: {{condition: service_started}}\n"
        )
    };
    let (env, _registry) = project(&services("one"));
    env.write_file("out/.keep", "").expect("out dir");
    let starts = |who: &str| {
        std::fs::read_to_string(env.work_dir().join("out").join(who))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let wait_starts = |who: &str, n: usize| {
        let end = Instant::now() + Duration::from_secs(30);
        while starts(who) < n && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(starts(who), n, "{who} started {} times", starts(who));
    };
    up(&env, &[]);
    wait_starts("web", 1);
    wait_starts("other", 1);
    let (db, web) = (id_of(&env, "-db-1"), id_of(&env, "-web-1"));

    // db's configuration changes: db is recreated, web (restart: true) restarted in place,
    // other (no restart) left running.
    rewrite(&env, &services("two"));
    let out = up(&env, &[]);
    assert!(out.stderr.contains("Restarted"), "{out}");
    assert_ne!(id_of(&env, "-db-1"), db);
    assert_eq!(id_of(&env, "-web-1"), web);
    wait_starts("web", 2);
    assert_eq!(starts("other"), 1);
    env.run_ok(["down", "-t", "1"]).expect("down");
    assert_nothing_left(&env);
}

#[test]
fn renew_anon_volumes() {
    let (env, _registry) = project(&format!("  app:\n{SLEEPER}    volumes: ['/data']\n"));
    up(&env, &[]);
    exec(&env, "app", &["sh", "-c", "echo kept > /data/f"]);
    // Recreated without -V: the anonymous volume goes to the new container.
    let before = id_of(&env, "-app-1");
    up(&env, &["--force-recreate"]);
    assert_ne!(id_of(&env, "-app-1"), before);
    assert_eq!(exec(&env, "app", &["cat", "/data/f"]).trim(), "kept");
    // With -V: a new, empty one (and the old one is gone).
    up(&env, &["-V", "--force-recreate"]);
    let out = env
        .run(["exec", "-T", "app", "ls", "/data"])
        .expect("rcompose runs");
    assert!(out.success() && out.stdout.trim().is_empty(), "{out}");
    let volumes = env
        .run_ok(["volume", "ls", "-q"])
        .expect("volume ls")
        .stdout;
    assert_eq!(volumes.lines().count(), 1, "{volumes}");
    env.run_ok(["down", "-v", "-t", "1"]).expect("down");
    assert_nothing_left(&env);
    let volumes = env
        .run_ok(["volume", "ls", "-q"])
        .expect("volume ls")
        .stdout;
    assert!(volumes.trim().is_empty(), "volumes left: {volumes}");
}

#[test]
fn pull_always_takes_a_moved_tag_and_quiet_pull_prints_no_progress() {
    let (mut env, registry) = busybox_env();
    let first = e2e::fixtures::busybox_image().expect("fixture builds");
    let reference = e2e::push(&first, &registry, "moving:latest").expect("push works");
    let subnet = free_subnet(221);
    env.write_file(
        "compose.yaml",
        compose(
            &subnet,
            &format!(
                "  app:\n    image: {reference}\n    command: ['sleep', '1000']\n    stop_signal: SIGKILL\n"
            ),
        ),
    )
    .expect("write compose file");
    env.defer(["down", "-v", "-t", "1"]);

    // The image is missing: pulled, without a word of it under --quiet-pull.
    let out = up(&env, &["--quiet-pull"]);
    assert!(
        !out.stderr.contains("Pull") && !out.stdout.contains("Pull"),
        "{out}"
    );
    assert_eq!(
        exec(&env, "app", &["cat", "/etc/fixture"]).trim(),
        "busybox"
    );
    let id = id_of(&env, "-app-1");

    // The tag moves to another image. The default policy (missing) keeps the local one...
    let second = e2e::fixtures::compressed(e2e::Compression::Gzip).expect("fixture builds");
    e2e::push(&second, &registry, "moving:latest").expect("push works");
    up(&env, &[]);
    assert_eq!(id_of(&env, "-app-1"), id);
    // ... --pull always fetches the new one, and the container moves to it.
    let out = up(&env, &["--pull", "always"]);
    assert!(out.stderr.contains("Pulled"), "{out}");
    assert!(out.stderr.contains("Recreated"), "{out}");
    assert_ne!(id_of(&env, "-app-1"), id);
    assert_eq!(
        exec(&env, "app", &["cat", "/etc/fixture"]).trim(),
        "compressed-gzip"
    );
    env.run_ok(["down", "-t", "1"]).expect("down");
    assert_nothing_left(&env);
}

#[test]
fn parallel_one_runs_one_step_at_a_time() {
    let services: String = ["a", "b", "c", "d"]
        .iter()
        .map(|s| format!("  {s}:\n{SLEEPER}"))
        .collect();
    let (env, _registry) = project(&services);
    let out = up(&env, &["--parallel", "1"]);
    // Progress lines: `   Container x  Creating` when a step starts, ` ✔ Container x  Created`
    // when it is done. One step at a time: never two started and not done.
    let mut in_flight = 0;
    let mut steps = 0;
    for line in out.stderr.lines() {
        let l = line.trim_end();
        if l.contains('✔') {
            in_flight -= 1;
        } else if ["Creating", "Starting"].iter().any(|v| l.ends_with(v)) {
            in_flight += 1;
            steps += 1;
            assert_eq!(in_flight, 1, "two steps at once:\n{}", out.stderr);
        }
    }
    assert_eq!(steps, 9, "network, 4 creates, 4 starts:\n{}", out.stderr);
    let running = env.run_ok(["ps", "-q"]).expect("ps").stdout;
    assert_eq!(running.lines().count(), 4, "{running}");
    env.run_ok(["down", "-t", "1"]).expect("down");
    assert_nothing_left(&env);
}

#[test]
fn wait_timeout_gives_up_on_a_service_that_never_gets_healthy() {
    let (env, _registry) = project(
        "  slow:\n    image: busybox\n    command: ['sleep', '1000']\n    stop_signal: SIGKILL\n    healthcheck:\n      test: ['CMD', 'false']\n      interval: 1s\n      start_period: 1h\n",
    );
    let out = env
        .run(["up", "-d", "--wait", "--wait-timeout", "2"])
        .expect("rcompose runs");
    assert!(!out.success(), "{out}");
    assert!(
        out.stderr.contains("not healthy after 2s") && out.stderr.contains(&full(&env, "slow-1")),
        "{out}"
    );
    // The container itself is left running, as docker compose leaves it.
    assert_eq!(containers(&env)[0].2, "running");
    env.run_ok(["down", "-t", "1"]).expect("down");
    assert_nothing_left(&env);
}

#[test]
fn abort_on_container_failure_stops_everything_with_the_failed_code() {
    let (env, _registry) = project(
        "  fine:\n    image: busybox\n    command: ['true']\n  bad:\n    image: busybox\n    command: ['sh', '-c', 'sleep 2; exit 3']\n  long:\n    image: busybox\n    command: ['sleep', '60']\n    stop_signal: SIGKILL\n",
    );
    let out = env
        .run(["up", "--abort-on-container-failure", "--no-color"])
        .expect("rcompose runs");
    // `fine` exiting 0 does not abort; `bad` exiting 3 does, long before `long` ends.
    assert_eq!(out.status.code(), Some(3), "{out}");
    assert!(
        out.stdout
            .contains(&format!("{} exited with code 3", full(&env, "bad-1"))),
        "{out}"
    );
    assert!(out.stdout.contains("Aborting on container exit"), "{out}");
    nothing_running(&env);
    let long = containers(&env)
        .into_iter()
        .find(|c| c.0.ends_with("-long-1"))
        .expect("long exists");
    assert_eq!(long.2, "exited", "{long:?}");
    env.run_ok(["down", "-t", "1"]).expect("down");
    assert_nothing_left(&env);
}

#[test]
fn attach_no_attach_and_timestamps_choose_what_is_shown() {
    let (env, _registry) = project(
        "  a:\n    image: busybox\n    command: ['echo', 'from-a']\n  b:\n    image: busybox\n    command: ['echo', 'from-b']\n",
    );
    let out = env
        .run(["up", "--attach", "a", "--no-color"])
        .expect("rcompose runs");
    assert!(out.success(), "{out}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l == format!("{} | from-a", full(&env, "a-1"))),
        "{out}"
    );
    assert!(!out.stdout.contains("from-b"), "{out}");

    // Started again: only what they print now is shown, with timestamps.
    let out = env
        .run(["up", "--no-attach", "a", "--timestamps", "--no-color"])
        .expect("rcompose runs");
    assert!(out.success(), "{out}");
    assert!(!out.stdout.contains("from-a"), "{out}");
    let shown: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("from-b"))
        .collect();
    assert_eq!(shown.len(), 1, "{out}");
    let (prefix, rest) = shown[0].split_once(" | ").expect("a prefixed line");
    assert_eq!(prefix, full(&env, "b-1"));
    let (stamp, text) = rest.split_once(' ').expect("a timestamp");
    assert_eq!(text, "from-b");
    assert!(
        stamp.starts_with("20") && stamp.ends_with('Z') && stamp.contains('T'),
        "{stamp:?} is not an RFC 3339 time"
    );
    env.run_ok(["down", "-t", "1"]).expect("down");
    assert_nothing_left(&env);
}

#[test]
fn attached_up_follows_restarts_by_policy() {
    let (env, _registry) = project(
        "  flaky:\n    image: busybox\n    command: ['sh', '-c', 'n=$$(cat /tmp/n 2>/dev/null || echo 0); n=$$((n+1)); echo $$n > /tmp/n; echo run $$n; exit 1']\n    restart: on-failure:2\n",
    );
    let mut up = Attached::start(&env, &["--no-color"]);
    let status = up.finish();
    assert_eq!(status.code(), Some(0), "{:?}", up.seen);
    let name = full(&env, "flaky-1");
    let runs: Vec<&String> = up
        .seen
        .iter()
        .filter(|l| l.starts_with(&format!("{name} | run ")))
        .collect();
    assert_eq!(runs.len(), 3, "{:?}", up.seen);
    for (i, l) in runs.iter().enumerate() {
        assert!(l.ends_with(&format!("run {}", i + 1)), "{:?}", up.seen);
    }
    assert!(
        up.seen.contains(&format!("{name} exited with code 1")),
        "{:?}",
        up.seen
    );
    env.run_ok(["down", "-t", "1"]).expect("down");
    assert_nothing_left(&env);
}

#[test]
fn attached_up_follows_a_container_another_up_recreates() {
    let (env, _registry) = project(
        "  web:\n    image: busybox\n    command: ['sh', '-c', 'echo hello from $$(hostname); while true; do sleep 1; done']\n    stop_signal: SIGKILL\n",
    );
    let mut attached = Attached::start(&env, &["--no-color"]);
    let prefix = format!("{} | hello from ", full(&env, "web-1"));
    let first = attached.expect("the first hello", |l| l.starts_with(&prefix));

    // Another process replaces the container; the attached up goes on with the new one.
    up(&env, &["--force-recreate", "web"]);
    let second = attached.expect("a hello from the new container", |l| {
        l.starts_with(&prefix) && l != first
    });
    assert_ne!(first, second);
    assert!(attached.running(), "{:?}", attached.seen);
    let status = attached.interrupt();
    assert_eq!(status.code(), Some(130), "up after Ctrl-C: {status:?}");
    assert!(
        attached
            .seen
            .iter()
            .any(|l| l.contains("Gracefully stopping")),
        "{:?}",
        attached.seen
    );
    nothing_running(&env);
    env.run_ok(["down", "-t", "1"]).expect("down");
    assert_nothing_left(&env);
}
