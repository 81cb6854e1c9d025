//! End-to-end tests of `rcompose container …` and `rcompose volume …`, run as root against the
//! busybox fixture image pulled from a local registry.
//!
//! Every test owns a [`TestEnv`] (private state root); [`Containers`] removes every container
//! of the root with `rm -f` when dropped, before the state root's own cleanup, so a failing
//! test leaves no supervisor, container process, mount, netns or cgroup behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use e2e::{exec_ok, fixtures, free_subnet, push, require_root, unique_name, Registry, TestEnv};

/// A test env with the busybox image pulled as `busybox`, and cleanup of containers on drop.
struct Containers {
    env: TestEnv,
    _registry: Registry,
}

impl Containers {
    fn new() -> Containers {
        require_root().expect("root");
        let registry = Registry::start().expect("registry starts");
        let image = fixtures::busybox_image().expect("fixture builds");
        let reference = push(&image, &registry, "busybox:latest").expect("push works");
        let env = TestEnv::new().expect("test env");
        env.allow_insecure(&registry).expect("insecure registry");
        env.run_ok(["image", "pull", reference.as_str()])
            .expect("pull works");
        env.run_ok(["image", "tag", reference.as_str(), "busybox"])
            .expect("tag works");
        Containers {
            env,
            _registry: registry,
        }
    }

    /// `rcompose container <args>`.
    fn c(&self, args: &[&str]) -> e2e::Output {
        let mut all = vec!["container"];
        all.extend_from_slice(args);
        self.env.run(all).expect("rcompose runs")
    }

    /// `rcompose container <args>`, which must succeed; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.c(args);
        assert!(out.success(), "container {args:?} failed: {out:?}");
        out.stdout
    }

    fn inspect(&self, name: &str, template: &str) -> String {
        self.ok(&["inspect", "-f", template, name])
            .trim()
            .to_owned()
    }

    fn wait_for(&self, what: &str, max: Duration, mut f: impl FnMut(&Self) -> bool) {
        let end = Instant::now() + max;
        while Instant::now() < end {
            if f(self) {
                return;
            }
            sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}");
    }

    fn supervisor_pid(&self, name: &str) -> i32 {
        let id = self.inspect(name, "{{.Id}}");
        let state = std::fs::read_to_string(
            self.env
                .root()
                .join("containers")
                .join(id)
                .join("state.json"),
        )
        .expect("state.json");
        let v: serde_json::Value = serde_json::from_str(&state).expect("state json");
        v["supervisor_pid"].as_i64().expect("supervisor_pid") as i32
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        if let Ok(out) = self.env.run(["container", "ls", "-aq", "--no-trunc"]) {
            for id in out.stdout.split_whitespace() {
                let _ = self.env.run(["container", "rm", "-f", "-v", id]);
            }
        }
        if let Ok(out) = self.env.run(["container", "ls", "-aq", "--no-trunc"]) {
            if !out.stdout.trim().is_empty() {
                eprintln!("containers left: {}", out.stdout);
            }
        }
    }
}

fn vm_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

/// Whether a process exists and is not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// No overlay or netns mount left under the state root.
fn assert_no_mounts(t: &Containers) {
    let mounts = t.env.state_root().mounts().expect("mounts");
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
}

#[test]
fn run_rm_prints_output_exit_code_and_leaves_nothing() {
    let t = Containers::new();
    let out = t.c(&["run", "--rm", "busybox", "echo", "hello"]);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, "hello\n");
    let out = t.c(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo oops >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(out.stderr.contains("oops"), "{out:?}");
    assert_eq!(t.ok(&["ls", "-aq"]), "");
    assert_no_mounts(&t);
    assert!(t.env.state_root().processes().is_empty(), "processes left");
}

#[test]
fn default_container_is_confined_and_privileged_is_not() {
    let t = Containers::new();
    let script = "mount -t tmpfs none /tmp 2>/dev/null; echo mount=$?; \
        ping -c1 -W1 127.0.0.1 >/dev/null 2>&1; echo raw=$?; \
        grep CapEff /proc/self/status; echo procs=$(ps -o pid | wc -l); \
        echo timer_list=$(cat /proc/timer_list 2>/dev/null | wc -c)";
    let out = t.ok(&["run", "--rm", "busybox", "sh", "-c", script]);
    assert!(
        out.contains("mount=1") || out.contains("mount=255"),
        "{out}"
    );
    assert!(out.contains("mount=") && !out.contains("mount=0"), "{out}");
    assert!(!out.contains("raw=0"), "raw socket allowed: {out}");
    // Docker's default set without NET_RAW.
    assert!(out.contains("CapEff:\t00000000a80405fb"), "{out}");
    // ps header, sh, ps, wc: no host process is visible.
    assert!(out.contains("procs=4") || out.contains("procs=5"), "{out}");
    if Path::new("/proc/timer_list").exists() {
        assert!(
            out.contains("timer_list=0"),
            "/proc/timer_list not masked: {out}"
        );
    }
    let out = t.ok(&["run", "--rm", "--privileged", "busybox", "sh", "-c", script]);
    assert!(out.contains("mount=0"), "{out}");
    assert!(!out.contains("CapEff:\t00000000a80405fb"), "{out}");
    let out = t.ok(&[
        "run",
        "--rm",
        "--cap-add",
        "NET_RAW",
        "--cap-drop",
        "CHOWN",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert!(out.contains("00000000a80425fa"), "{out}");
}

#[test]
fn memory_hog_is_oom_killed_and_fork_bomb_stops_at_pids_limit() {
    let t = Containers::new();
    let out = t.c(&[
        "run",
        "--name",
        "hog",
        "-m",
        "32m",
        "busybox",
        "sh",
        "-c",
        "x=a; while true; do x=$x$x; done",
    ]);
    assert_eq!(out.status.code(), Some(137), "{out:?}");
    assert_eq!(
        t.inspect("hog", "{{.State.OOMKilled}} {{.State.ExitCode}}"),
        "true 137"
    );
    let out = t.c(&[
        "run",
        "--rm",
        "--pids-limit",
        "10",
        "busybox",
        "sh",
        "-c",
        "for i in $(seq 1 30); do sleep 3 & done; echo done",
    ]);
    assert!(
        out.stderr.contains("can't fork") || out.stdout.contains("can't fork"),
        "{out:?}"
    );
}

#[test]
fn logs_survive_the_cli_and_follow() {
    let t = Containers::new();
    let id = t.ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two >&2; sleep 1; echo three",
    ]);
    assert_eq!(id.trim().len(), 64);
    let out = t.c(&["logs", "-f", "talker"]);
    assert_eq!(out.stdout, "one\nthree\n", "{out:?}");
    assert_eq!(out.stderr, "two\n", "{out:?}");
    let out = t.ok(&["logs", "--tail", "1", "talker"]);
    assert_eq!(out, "three\n");
    let out = t.ok(&["logs", "-t", "talker"]);
    assert!(
        out.lines().all(|l| l.len() > 31 && l.as_bytes()[4] == b'-'),
        "{out}"
    );
    assert!(t.ok(&["ls", "-a"]).contains("Exited (0)"));
}

#[test]
fn stop_uses_the_grace_period_and_exec_passes_exit_codes() {
    let t = Containers::new();
    t.ok(&[
        "run",
        "-d",
        "--name",
        "trapper",
        "busybox",
        "sh",
        "-c",
        "trap 'echo bye; exit 3' TERM; while true; do sleep 0.1; done",
    ]);
    t.ok(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 0.1; done",
    ]);
    assert_eq!(t.inspect("trapper", "{{.State.Status}}"), "running");
    let out = t.c(&["exec", "trapper", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let out = t.ok(&[
        "exec",
        "-e",
        "X=42",
        "-w",
        "/etc",
        "-u",
        "nobody",
        "trapper",
        "sh",
        "-c",
        "echo $X $(pwd) $(id -u)",
    ]);
    assert_eq!(out, "42 /etc 65534\n");
    let sup = t.supervisor_pid("trapper");
    t.ok(&["stop", "trapper"]);
    assert_eq!(
        t.inspect("trapper", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 3"
    );
    assert!(!alive(sup));
    let start = Instant::now();
    t.ok(&["stop", "-t", "1", "stubborn"]);
    assert!(start.elapsed() < Duration::from_secs(8));
    assert_eq!(t.inspect("stubborn", "{{.State.ExitCode}}"), "137");
    // Start again, then kill.
    t.ok(&["start", "stubborn"]);
    assert_eq!(t.inspect("stubborn", "{{.State.Status}}"), "running");
    t.ok(&["kill", "stubborn"]);
    assert_eq!(t.ok(&["wait", "stubborn"]).trim(), "137");
    let ids = [
        t.inspect("trapper", "{{.Id}}"),
        t.inspect("stubborn", "{{.Id}}"),
    ];
    t.ok(&["rm", "trapper", "stubborn"]);
    assert_no_mounts(&t);
    assert_no_cgroups(&ids);
}

/// No cgroup of these containers is left in any hierarchy.
fn assert_no_cgroups(ids: &[String]) {
    let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut roots: Vec<std::path::PathBuf> = rd.flatten().map(|e| e.path()).collect();
    roots.push("/sys/fs/cgroup".into());
    for r in roots {
        for id in ids {
            let p = r.join("rcompose").join(id);
            assert!(!p.exists(), "cgroup left: {}", p.display());
        }
    }
}

#[test]
fn network_namespace_contract() {
    let t = Containers::new();
    let id = t
        .ok(&["create", "--name", "netty", "busybox", "ip", "link"])
        .trim()
        .to_owned();
    let dir = t.env.root().join("containers").join(&id);
    let mounts = t.env.state_root().mounts().expect("mounts");
    assert!(mounts.contains(&dir.join("netns")), "{mounts:?}");
    assert!(dir.join("resolv.conf").exists() && dir.join("hosts").exists());
    // Rewriting a managed file is visible inside.
    std::fs::write(dir.join("resolv.conf"), "nameserver 10.9.8.7\n").expect("rewrite");
    let out = t.ok(&["start", "-a", "netty"]);
    assert!(out.contains("lo:") && !out.contains("eth0"), "{out}");
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &format!("{}:/r:ro", dir.join("resolv.conf").display()),
            "busybox",
            "cat",
            "/r"
        ]),
        "nameserver 10.9.8.7\n"
    );
    let host = t.ok(&["run", "--rm", "--network", "host", "busybox", "hostname"]);
    let real = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    assert_eq!(host.trim(), real.trim());
    t.ok(&["rm", "netty"]);
    assert!(!dir.exists());
    assert_no_mounts(&t);
}

#[test]
fn restart_policies_and_healthchecks() {
    let t = Containers::new();
    t.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    t.wait_for("flaky to give up", Duration::from_secs(20), |t| {
        t.inspect("flaky", "{{.State.Status}}") == "exited"
    });
    assert_eq!(
        t.inspect("flaky", "{{.RestartCount}} {{.State.ExitCode}}"),
        "2 1"
    );
    t.ok(&[
        "run",
        "-d",
        "--name",
        "forever",
        "--restart",
        "always",
        "busybox",
        "true",
    ]);
    t.wait_for("a restart", Duration::from_secs(10), |t| {
        t.inspect("forever", "{{.RestartCount}}") != "0"
    });
    t.ok(&["stop", "forever"]);
    assert_eq!(t.inspect("forever", "{{.State.Status}}"), "exited");

    t.ok(&[
        "run",
        "-d",
        "--name",
        "doc",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "300ms",
        "--health-start-period",
        "2s",
        "--health-start-interval",
        "300ms",
        "--health-retries",
        "2",
        "busybox",
        "sleep",
        "100",
    ]);
    assert!(t.ok(&["ls"]).contains("(health: starting)"));
    t.wait_for("unhealthy", Duration::from_secs(15), |t| {
        t.inspect("doc", "{{.State.Health.Status}}") == "unhealthy"
    });
    t.ok(&["exec", "doc", "touch", "/tmp/ok"]);
    t.wait_for("healthy", Duration::from_secs(15), |t| {
        t.inspect("doc", "{{.State.Health.Status}}") == "healthy"
    });
    assert!(
        t.ok(&["ls", "--filter", "health=healthy", "-q"])
            .trim()
            .len()
            == 12
    );
    let log = t.inspect("doc", "{{json .State.Health.Log}}");
    assert!(
        log.contains("\"ExitCode\":0") && log.contains("\"ExitCode\":1"),
        "{log}"
    );
}

#[test]
fn volumes_keep_data_fill_from_image_and_refuse_removal_in_use() {
    let t = Containers::new();
    assert_eq!(
        t.env
            .run_ok(["volume", "create", "data"])
            .expect("create")
            .stdout,
        "data\n"
    );
    t.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "-v",
            "data:/data",
            "busybox",
            "cat",
            "/data/f"
        ]),
        "kept\n"
    );
    // An empty named volume takes the image's content at its mount point.
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "-v",
            "etc:/etc",
            "busybox",
            "cat",
            "/etc/fixture"
        ]),
        "busybox\n"
    );
    t.ok(&[
        "create",
        "--name",
        "holder",
        "-v",
        "data:/data",
        "busybox",
        "true",
    ]);
    let out = t.env.run(["volume", "rm", "data"]).expect("runs");
    assert!(!out.success() && out.stderr.contains("in use"), "{out:?}");
    t.ok(&["rm", "holder"]);
    let ls = t.env.run_ok(["volume", "ls", "-q"]).expect("ls").stdout;
    assert!(ls.contains("data") && ls.contains("etc"), "{ls}");
    t.env.run_ok(["volume", "rm", "data", "etc"]).expect("rm");
    // Bind mounts and tmpfs.
    let host = t.env.work_dir().join("bind");
    std::fs::create_dir_all(&host).expect("mkdir");
    std::fs::write(host.join("x"), "from host").expect("write");
    let spec = format!("{}:/b:ro", host.display());
    let out = t.ok(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "--tmpfs",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "cat /b/x; touch /b/y 2>/dev/null || echo ro; grep -c ' /scratch tmpfs' /proc/mounts",
    ]);
    assert_eq!(out, "from hostro\n1\n");
}

#[test]
fn diff_cp_export_and_inspect() {
    let t = Containers::new();
    t.ok(&[
        "create",
        "--name",
        "box",
        "-l",
        "k=v",
        "busybox",
        "sh",
        "-c",
        "echo hi > /tmp/new; rm /etc/fixture",
    ]);
    t.ok(&["start", "-a", "box"]);
    let diff = t.ok(&["diff", "box"]);
    assert!(
        diff.contains("A /tmp/new") && diff.contains("D /etc/fixture") && diff.contains("C /etc"),
        "{diff}"
    );
    let dest = t.env.work_dir().join("out");
    t.ok(&["cp", "box:/tmp/new", dest.to_str().expect("utf8")]);
    assert_eq!(std::fs::read_to_string(&dest).expect("copied"), "hi\n");
    let src = t.env.work_dir().join("in");
    std::fs::write(&src, "into").expect("write");
    t.ok(&["cp", src.to_str().expect("utf8"), "box:/root/"]);
    t.ok(&["start", "box"]);
    t.ok(&["wait", "box"]);
    let tar = t.env.work_dir().join("box.tar");
    t.ok(&["export", "-o", tar.to_str().expect("utf8"), "box"]);
    let listing = Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .expect("tar");
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("root/in") && listing.contains("bin/busybox"),
        "{listing}"
    );
    let v: serde_json::Value = serde_json::from_str(&t.ok(&["inspect", "box"])).expect("json");
    assert_eq!(v[0]["Name"], "/box");
    assert_eq!(v[0]["Config"]["Labels"]["k"], "v");
    let json_line = t.ok(&["ls", "-a", "--format", "json"]);
    let row: serde_json::Value =
        serde_json::from_str(json_line.lines().next().expect("row")).expect("json");
    assert_eq!(row["Names"], "box");
    let sized = t.ok(&["ls", "-a", "-s"]);
    assert!(sized.contains("(virtual "), "{sized}");
    // commit, then run sees the change.
    let id = t.ok(&[
        "commit",
        "-m",
        "snap",
        "-c",
        "CMD [\"cat\", \"/root/in\"]",
        "box",
        "snap:v1",
    ]);
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(t.ok(&["run", "--rm", "snap:v1"]), "into");
    let out = t.c(&["run", "--rm", "snap:v1", "cat", "/etc/fixture"]);
    assert!(!out.success(), "deleted file came back: {out:?}");
    t.ok(&["rename", "box", "crate"]);
    assert_eq!(t.inspect("crate", "{{.Name}}"), "/crate");
    t.ok(&["rm", "crate"]);
    assert_no_mounts(&t);
}

#[test]
fn pause_top_stats_and_prune() {
    let t = Containers::new();
    t.ok(&[
        "run", "-d", "--name", "napper", "-m", "64m", "busybox", "sleep", "100",
    ]);
    t.ok(&["pause", "napper"]);
    assert_eq!(t.inspect("napper", "{{.State.Status}}"), "paused");
    t.ok(&["unpause", "napper"]);
    assert_eq!(t.inspect("napper", "{{.State.Status}}"), "running");
    assert!(t.ok(&["top", "napper"]).contains("sleep 100"));
    let stats = t.ok(&["stats", "--no-stream", "napper"]);
    assert!(
        stats.contains("napper") && stats.contains("/ 64MiB"),
        "{stats}"
    );
    t.ok(&["rm", "-f", "napper"]);
    t.ok(&["create", "busybox", "true"]);
    let out = t.ok(&["prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert_eq!(t.ok(&["ls", "-aq"]), "");
}

#[test]
fn supervisor_is_small_and_survives_the_cli() {
    let t = Containers::new();
    t.ok(&[
        "run",
        "-d",
        "--name",
        "idle",
        "--health-cmd",
        "true",
        "--health-interval",
        "200ms",
        "busybox",
        "sleep",
        "100",
    ]);
    sleep(Duration::from_millis(800));
    let sup = t.supervisor_pid("idle");
    assert!(alive(sup));
    let rss = vm_rss_kib(sup);
    eprintln!("supervisor VmRSS: {rss} KiB");
    // A release binary's supervisor stays under 2 MiB; an unoptimised debug binary touches far
    // more text. Judge by the binary under test (`RCOMPOSE_BIN` may point at a release build).
    let release = e2e::rcompose_bin()
        .map(|p| p.components().any(|c| c.as_os_str() == "release"))
        .unwrap_or(false);
    let limit = if release { 2 * 1024 } else { 24 * 1024 };
    assert!(rss < limit, "supervisor VmRSS {rss} KiB ≥ {limit} KiB");
    t.ok(&["rm", "-f", "idle"]);
    assert!(!alive(sup));
}

#[test]
fn pty_session_through_tmux() {
    let t = Containers::new();
    let session = e2e::unique_name("rc-pty");
    let bin = e2e::rcompose_bin().expect("binary");
    let cmd = format!(
        "{} --root {} container run -it --name tty busybox sh",
        bin.display(),
        t.env.root().display()
    );
    let tmux = |args: &[&str]| Command::new("tmux").args(args).output().expect("tmux runs");
    assert!(tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "120",
        "-y",
        "40",
        &cmd
    ])
    .status
    .success());
    struct Kill(String);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("tmux")
                .args(["kill-session", "-t", &self.0])
                .output();
        }
    }
    let _guard = Kill(session.clone());
    let capture = || {
        String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", &session]).stdout).into_owned()
    };
    t.wait_for("the shell prompt", Duration::from_secs(10), |_| {
        capture().contains('#')
    });
    tmux(&[
        "send-keys",
        "-t",
        &session,
        "echo $((6*7)); stty size",
        "Enter",
    ]);
    t.wait_for("the answer", Duration::from_secs(10), |_| {
        capture().contains("42")
    });
    assert!(capture().contains("40 120"), "{}", capture());
    // ctrl-p ctrl-q detaches and leaves it running.
    tmux(&["send-keys", "-t", &session, "C-p", "C-q"]);
    // The client exits (closing the tmux session); the container keeps running.
    t.wait_for("detach", Duration::from_secs(10), |_| {
        !tmux(&["has-session", "-t", &session]).status.success()
    });
    assert_eq!(t.inspect("tty", "{{.State.Status}}"), "running");
    t.ok(&["rm", "-f", "tty"]);
}

#[test]
fn interactive_stdin_is_piped_through() {
    use std::io::Write as _;
    let t = Containers::new();
    let mut cmd = t.env.command().expect("command");
    cmd.args(["container", "run", "--rm", "-i", "busybox", "wc", "-l"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"a\nb\nc\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
}

/// One `stats --no-stream --format json` row per container, in the order asked.
fn stats_rows(t: &Containers, names: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["stats", "--no-stream", "--format", "json"];
    args.extend_from_slice(names);
    t.ok(&args)
        .lines()
        .map(|l| serde_json::from_str(l).expect("stats row is JSON"))
        .collect()
}

/// Bytes from docker's decimal size (`8.39MB`, `1e+03kB`, `0B`).
fn decimal_bytes(s: &str) -> f64 {
    let number = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let scale = match &s[number.len()..] {
        "B" => 1e0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        unit => panic!("unknown unit {unit:?} in {s:?}"),
    };
    number.parse::<f64>().expect("a number") * scale
}

/// The two sides of an `X / Y` column, in bytes.
fn io_pair(v: &serde_json::Value) -> (f64, f64) {
    let text = v.as_str().expect("a string column");
    let (a, b) = text.split_once(" / ").expect("X / Y");
    (decimal_bytes(a), decimal_bytes(b))
}

/// Makes the kernel count block I/O in v1 blkio cgroups on the disk holding `dir`.
///
/// On a v1 hierarchy without BFQ only `blkio.throttle.*` counts, and since Linux 6.10 only on a
/// disk where blk-throttle was set up, which happens the first time any cgroup gets a throttle
/// rule for it (and lasts until the disk goes away). So this sets and clears a rule without a
/// limit on that disk, in a cgroup of its own that is removed again. v2's `io.stat` always
/// counts: nothing to do there.
fn enable_blkio_accounting(dir: &Path) {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(dir).expect("stat state root").dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    assert!(
        major != 0,
        "{} is not on a block device, so no block I/O can be counted: point {} at a disk",
        dir.display(),
        e2e::TMPDIR_ENV
    );
    // Throttle rules take whole disks, not partitions.
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    let disk = if sys.join("partition").exists() {
        std::fs::read_to_string(sys.join("../dev")).expect("the partition's disk")
    } else {
        format!("{major}:{minor}")
    };
    struct Cgroup(PathBuf);
    impl Drop for Cgroup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let cg = Cgroup(PathBuf::from("/sys/fs/cgroup/blkio").join(unique_name("rc-e2e-")));
    std::fs::create_dir(&cg.0).expect("a blkio cgroup");
    let rule = cg.0.join("blkio.throttle.write_bps_device");
    let disk = disk.trim();
    std::fs::write(&rule, format!("{disk} {}", u64::MAX / 2)).expect("set a throttle rule");
    std::fs::write(&rule, format!("{disk} 0")).expect("clear the throttle rule");
}

#[test]
fn stats_count_block_io() {
    let t = Containers::new();
    enable_blkio_accounting(t.env.root());
    t.ok(&["run", "-d", "--name", "disk", "busybox", "sleep", "1000"]);
    let before = stats_rows(&t, &["disk"]);
    let (read0, written0) = io_pair(&before[0]["BlockIO"]);
    // Direct I/O: the bytes go to the disk now, from the container's own cgroup (writeback of
    // cached pages could be charged elsewhere, or later).
    t.ok(&[
        "exec",
        "disk",
        "dd",
        "if=/dev/zero",
        "of=/f",
        "bs=1M",
        "count=8",
        "oflag=direct",
    ]);
    t.ok(&[
        "exec",
        "disk",
        "dd",
        "if=/f",
        "of=/dev/null",
        "bs=1M",
        "iflag=direct",
    ]);
    let after = stats_rows(&t, &["disk"]);
    let (read, written) = io_pair(&after[0]["BlockIO"]);
    eprintln!(
        "BLOCK I/O before {}, after {}",
        before[0]["BlockIO"], after[0]["BlockIO"]
    );
    assert!(
        written - written0 >= 8e6 && read - read0 >= 8e6,
        "8 MiB written and read, stats show {} then {}",
        before[0]["BlockIO"],
        after[0]["BlockIO"]
    );
    let table = t.ok(&["stats", "--no-stream", "disk"]);
    assert!(table.contains("BLOCK I/O"), "{table}");
    let written_text = after[0]["BlockIO"]
        .as_str()
        .and_then(|s| s.split(" / ").nth(1))
        .expect("written column");
    assert!(table.contains(&format!(" / {written_text}")), "{table}");
}

fn http_yaml(subnet: &str) -> String {
    format!(
        r#"services:
  server:
    image: busybox
    command: ["sleep", "1000"]
    stop_signal: SIGKILL
  client:
    image: busybox
    command: ["sleep", "1000"]
    stop_signal: SIGKILL
networks:
  default:
    ipam:
      config: [{{subnet: {subnet}}}]
"#
    )
}

/// A script serving 3 MB at `http://$0/big`: busybox httpd listens before it goes to the
/// background, so the file can be fetched as soon as this returns.
const SERVE: &str = "mkdir /www && dd if=/dev/zero of=/www/big bs=1000 count=3000 2>/dev/null && \
    httpd -p \"$0\" -h /www </dev/null >/dev/null 2>&1";

/// `down -v` of the env's project when dropped. Declared after the [`Containers`], it runs
/// before their `rm -f`, which would leave the network's endpoints behind (`container rm` does
/// not detach from project networks) and so the network and its bridge.
struct Down<'a>(&'a TestEnv);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        match self.0.run(["down", "-v", "-t", "1"]) {
            Ok(out) if !out.success() => eprintln!("down: {out}"),
            Ok(_) => {}
            Err(e) => eprintln!("down: {e}"),
        }
    }
}

#[test]
fn stats_count_network_io_outside_loopback() {
    let t = Containers::new();
    t.env
        .write_file("compose.yaml", http_yaml(&free_subnet(221)))
        .expect("write compose file");
    let _down = Down(&t.env);
    t.env.run_ok(["up", "-d"]).expect("up");
    exec_ok(&t.env, "server", &["sh", "-c", SERVE, "80"]);
    exec_ok(
        &t.env,
        "client",
        &["wget", "-q", "-O", "/dev/null", "http://server/big"],
    );
    // The project's `stats` (through `container stats`), one JSON row per container.
    let out = t
        .env
        .run_ok(["stats", "--no-stream", "--format", "json"])
        .expect("stats")
        .stdout;
    let row = |svc: &str| -> serde_json::Value {
        let name = format!("{}-{svc}-1", t.env.project());
        out.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("stats row is JSON"))
            .find(|r| r["Name"] == name.as_str())
            .unwrap_or_else(|| panic!("no row for {name}: {out}"))
    };
    let (server, client) = (row("server"), row("client"));
    let (server_rx, server_tx) = io_pair(&server["NetIO"]);
    let (client_rx, client_tx) = io_pair(&client["NetIO"]);
    let shown = format!("server {}, client {}", server["NetIO"], client["NetIO"]);
    eprintln!("NET I/O: {shown}");
    assert!(server_tx >= 3e6 && client_rx >= 3e6, "3 MB sent: {shown}");
    assert!(
        server_rx < 1e6 && client_tx < 1e6,
        "a request each way: {shown}"
    );
    let client_id = client["ID"].as_str().expect("an id");
    let table = t.ok(&["stats", "--no-stream", client_id]);
    assert!(
        table.contains("NET I/O") && table.contains("MB / "),
        "{table}"
    );

    // Loopback traffic is not counted, nor are the host's interfaces.
    t.ok(&[
        "run",
        "-d",
        "--name",
        "loner",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    t.ok(&["exec", "loner", "sh", "-c", SERVE, "127.0.0.1:8080"]);
    t.ok(&[
        "exec",
        "loner",
        "wget",
        "-q",
        "-O",
        "/dev/null",
        "http://127.0.0.1:8080/big",
    ]);
    t.ok(&[
        "run",
        "-d",
        "--name",
        "hosty",
        "--network",
        "host",
        "busybox",
        "sleep",
        "1000",
    ]);
    for row in stats_rows(&t, &["loner", "hosty"]) {
        assert_eq!(row["NetIO"], "0B / 0B", "{row}");
    }
}

/// Removes a file when dropped: whatever a failing test may have put there.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The overlay of a container that does not run is not left mounted (nor anything in it).
fn assert_rootfs_unmounted(t: &Containers, id: &str) {
    let rootfs = t.env.root().join("containers").join(id).join("rootfs");
    let mounts = t.env.state_root().mounts().expect("mounts");
    assert!(!mounts.iter().any(|m| m.starts_with(&rootfs)), "{mounts:?}");
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn cp_sees_volumes_and_bind_mounts_running_or_not() {
    let t = Containers::new();
    let work = t.env.work_dir();
    let (bind, ro) = (work.join("bind"), work.join("ro"));
    std::fs::create_dir_all(&bind).expect("mkdir");
    std::fs::create_dir_all(&ro).expect("mkdir");
    let w = |p: &Path| p.to_str().expect("utf8").to_owned();
    t.ok(&[
        "run",
        "-d",
        "--name",
        "vols",
        "-v",
        "cpdata:/data",
        "-v",
        &format!("{}:/b", w(&bind)),
        "-v",
        &format!("{}:/ro:ro", w(&ro)),
        "--tmpfs",
        "/scratch",
        "busybox",
        "sleep",
        "1000",
    ]);
    t.ok(&[
        "exec",
        "vols",
        "sh",
        "-c",
        "echo in-volume > /data/v.txt && echo in-bind > /b/b.txt && \
         echo in-tmpfs > /scratch/t.txt && ln -s /../../etc /data/up",
    ]);
    let id = t.inspect("vols", "{{.Id}}");
    let volume = t.env.root().join("volumes/cpdata/_data");
    let upper = t.env.root().join("containers").join(&id).join("upper");
    let hostname = t.ok(&["exec", "vols", "cat", "/etc/hostname"]);
    let host_hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    assert_ne!(hostname, host_hostname);
    let input = work.join("in.txt");
    std::fs::write(&input, "copied in\n").expect("write");
    let escapes = [unique_name("rc-cp-"), unique_name("rc-cp-")];
    let _cleanup: Vec<RemoveOnDrop> = escapes
        .iter()
        .map(|n| RemoveOnDrop(Path::new("/etc").join(n)))
        .collect();

    // Running: the volume, the bind mount and the tmpfs are seen.
    for (src, dest, want) in [
        ("vols:/data/v.txt", "run-v", "in-volume\n"),
        ("vols:/b/b.txt", "run-b", "in-bind\n"),
        ("vols:/scratch/t.txt", "run-t", "in-tmpfs\n"),
    ] {
        t.ok(&["cp", src, &w(&work.join(dest))]);
        assert_eq!(read(&work.join(dest)), want, "{src}");
    }
    t.ok(&["cp", "vols:/data", &w(&work.join("run-data"))]);
    assert_eq!(read(&work.join("run-data/v.txt")), "in-volume\n");
    assert_eq!(
        std::fs::read_link(work.join("run-data/up")).expect("a symlink"),
        Path::new("/../../etc")
    );
    // The symlink to /../../etc is the container's /etc, both ways.
    t.ok(&["cp", "vols:/data/up/hostname", &w(&work.join("run-hn"))]);
    assert_eq!(read(&work.join("run-hn")), hostname);
    t.ok(&["cp", &w(&input), "vols:/data/"]);
    assert_eq!(read(&volume.join("in.txt")), "copied in\n");
    let through = format!("vols:/data/up/{}", escapes[0]);
    t.ok(&["cp", &w(&input), &through]);
    assert!(!Path::new("/etc").join(&escapes[0]).exists(), "escaped");
    assert_eq!(
        t.ok(&["exec", "vols", "cat", &format!("/etc/{}", escapes[0])]),
        "copied in\n"
    );
    assert!(!t.c(&["cp", &w(&input), "vols:/ro/"]).success());
    assert!(!ro.join("in.txt").exists());

    t.ok(&["stop", "-t", "1", "vols"]);
    // Stopped: the volume and the bind mount are seen, the tmpfs is gone.
    for (src, dest, want) in [
        ("vols:/data/v.txt", "stop-v", "in-volume\n"),
        ("vols:/data/in.txt", "stop-in", "copied in\n"),
        ("vols:/b/b.txt", "stop-b", "in-bind\n"),
        ("vols:/data/up/hostname", "stop-hn", hostname.as_str()),
    ] {
        t.ok(&["cp", src, &w(&work.join(dest))]);
        assert_eq!(read(&work.join(dest)), want, "{src}");
    }
    let out = t.c(&["cp", "vols:/scratch/t.txt", &w(&work.join("stop-t"))]);
    assert!(!out.success(), "{out:?}");
    t.ok(&["cp", &w(&input), "vols:/data/in2.txt"]);
    assert_eq!(read(&volume.join("in2.txt")), "copied in\n");
    assert!(!upper.join("data/in2.txt").exists());
    let through = format!("vols:/data/up/{}", escapes[1]);
    t.ok(&["cp", &w(&input), &through]);
    assert!(!Path::new("/etc").join(&escapes[1]).exists(), "escaped");
    assert_eq!(read(&upper.join("etc").join(&escapes[1])), "copied in\n");
    assert!(!t.c(&["cp", &w(&input), "vols:/ro/"]).success());
    assert!(!ro.join("in.txt").exists());
    assert_rootfs_unmounted(&t, &id);
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "-v",
            "cpdata:/data",
            "busybox",
            "cat",
            "/data/in2.txt"
        ]),
        "copied in\n"
    );
    t.ok(&["rm", "vols"]);
    assert_no_mounts(&t);
}

#[test]
fn cp_into_a_new_container_fills_its_volume_first() {
    let t = Containers::new();
    t.ok(&[
        "create",
        "--name",
        "fresh",
        "-v",
        "filled:/etc",
        "busybox",
        "cat",
        "/etc/fixture",
        "/etc/added",
    ]);
    let added = t.env.work_dir().join("added");
    std::fs::write(&added, "added\n").expect("write");
    t.ok(&["cp", added.to_str().expect("utf8"), "fresh:/etc/added"]);
    let volume = t.env.root().join("volumes/filled/_data");
    assert_eq!(read(&volume.join("added")), "added\n");
    assert_eq!(read(&volume.join("fixture")), "busybox\n");
    assert_rootfs_unmounted(&t, &t.inspect("fresh", "{{.Id}}"));
    assert_eq!(t.ok(&["start", "-a", "fresh"]), "busybox\nadded\n");
}
