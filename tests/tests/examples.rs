//! End-to-end tests of the examples built from a Debian base: `examples/os-lab` and
//! `examples/devstack`.
//!
//! os-lab: the Debian base made offline with the example's
//! `make-base.sh` (debootstrap from the apt mirror, `rcompose image import`), the lab image built
//! with `rcompose build` (apt-get in RUN steps, heredocs), then used through `rcompose run`:
//! `gcc -m32`, QEMU and GDB work and /lab is the host's lab folder. A second build must be
//! entirely cached and give the same image id.
//!
//! Root only; it downloads a few hundred MB from the Debian mirror and takes minutes. The base
//! tarball is kept under the cargo target dir (`target/tmp/os-lab-cache/`), so later runs skip
//! debootstrap. Progress goes to stderr (`cargo test -- --nocapture` shows it as it happens).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::{find_program, require_root, TestEnv};

/// The whole lab build (three apt-get installs) must finish within this.
const BUILD_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// debootstrap of the minimal base, when the tarball is not cached yet.
const BASE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Where the debootstrapped base tarball is kept between runs (inside the target dir, never in
/// the source tree).
fn cached_tarball() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("os-lab-cache")
        .join("debian-bookworm-minbase.tar.gz")
}

fn progress(start: Instant, what: &str) {
    eprintln!("examples [{:>6.1}s] {what}", start.elapsed().as_secs_f64());
}

/// Tests of this file share one debootstrap of the base tarball.
static BASE_LOCK: Mutex<()> = Mutex::new(());

/// Copies a directory tree of regular files and directories.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// What a streamed command printed.
struct Streamed {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `cmd`, echoing its output lines to stderr as they arrive (prefixed with `  | `), and
/// kills it after `timeout`.
fn run_streaming(mut cmd: Command, timeout: Duration) -> Streamed {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {shown}: {e}"));
    let echo = |pipe: Option<Box<dyn Read + Send>>| {
        let buf = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&buf);
        let handle = std::thread::spawn(move || {
            let Some(p) = pipe else { return };
            for line in BufReader::new(p).lines() {
                let Ok(line) = line else { break };
                eprintln!("  | {line}");
                if let Ok(mut b) = sink.lock() {
                    b.push_str(&line);
                    b.push('\n');
                }
            }
        });
        (buf, handle)
    };
    let (out, out_thread) = echo(child.stdout.take().map(|p| Box::new(p) as _));
    let (err, err_thread) = echo(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{shown} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // A process started by the command may hold the pipes open: wait a little, not forever.
    let grace = Instant::now() + Duration::from_secs(2);
    while !(out_thread.is_finished() && err_thread.is_finished()) && Instant::now() < grace {
        std::thread::sleep(Duration::from_millis(10));
    }
    let take = |b: &Arc<Mutex<String>>| b.lock().map(|s| s.clone()).unwrap_or_default();
    Streamed {
        success: status.success(),
        stdout: take(&out),
        stderr: take(&err),
    }
}

/// `rcompose <args>` in `env`, streamed.
fn rcompose_streaming(env: &TestEnv, args: &[&str], timeout: Duration) -> Streamed {
    let mut cmd = env.command().expect("rcompose command");
    // compose.yaml takes the base image from it: the developer's shell must not choose it.
    cmd.args(args).env_remove("OS_LAB_BASE");
    let out = run_streaming(cmd, timeout);
    assert!(
        out.success,
        "rcompose {args:?} failed\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout, out.stderr
    );
    out
}

fn image_id(env: &TestEnv, image: &str) -> String {
    let out = env
        .run_ok(["image", "inspect", image])
        .expect("image inspect")
        .stdout;
    let v: serde_json::Value = serde_json::from_str(&out).expect("inspect prints JSON");
    v[0]["Id"].as_str().expect("an Id").to_owned()
}

/// Runs the example's make-base.sh against the test's state root: debootstrap (unless the
/// tarball is cached) and import as `debian-base:bookworm`.
fn make_base(env: &TestEnv, start: Instant) {
    let _one_at_a_time = BASE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let tarball = cached_tarball();
    if tarball.is_file() {
        progress(
            start,
            &format!("base tarball cached: {}", tarball.display()),
        );
    } else {
        progress(
            start,
            &format!(
                "debootstrap of Debian bookworm (minbase) into {} — a few minutes",
                tarball.display()
            ),
        );
    }
    // The same environment rcompose gets from the TestEnv (state root, config, HOME), with the
    // binary handed over as $RCOMPOSE.
    let rc = env.command().expect("rcompose command");
    let mut cmd = Command::new("sh");
    cmd.arg(repo_root().join("examples/os-lab/make-base.sh"))
        .current_dir(env.work_dir());
    for (k, v) in rc.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.env("RCOMPOSE", rc.get_program())
        .env("OS_LAB_BASE_TARBALL", &tarball);
    let out = run_streaming(cmd, BASE_TIMEOUT);
    assert!(
        out.success,
        "make-base.sh failed\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout, out.stderr
    );
    assert!(tarball.is_file(), "make-base.sh left no {tarball:?}");
}

#[test]
fn os_lab_builds_runs_and_rebuilds_from_cache() {
    require_root().expect("root");
    find_program("debootstrap", "debootstrap").expect("debootstrap");
    let start = Instant::now();
    let mut env = TestEnv::new().expect("test env");
    env.set_timeout(Duration::from_secs(5 * 60));

    // The example, copied so that nothing is written into the repository.
    let work = env.work_dir();
    copy_tree(&repo_root().join("examples/os-lab"), &work);

    make_base(&env, start);
    let base = image_id(&env, "debian-base:bookworm");
    progress(start, &format!("base image {base}"));

    progress(start, "rcompose build (apt-get from the Debian mirror)");
    let built = rcompose_streaming(&env, &["build"], BUILD_TIMEOUT);
    assert!(built.stdout.contains("Running in"), "{}", built.stdout);
    let id = image_id(&env, "os-lab");
    progress(start, &format!("built os-lab {id}"));

    env.defer(["down", "-t", "1"]);
    let script = "set -e
cd /lab
gcc -m32 -Wall -o hello32 hello.c
./hello32
echo \"elf-class $(od -An -tx1 -j4 -N1 hello32 | tr -d ' ')\"
qemu-system-i386 --version | head -n 1
gdb --version | head -n 1
grep -h '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list
pwd > /lab/written-inside.txt
";
    progress(start, "rcompose run --rm -T lab sh -c …");
    let run = env
        .run_ok(["run", "--rm", "-T", "lab", "sh", "-c", script])
        .expect("lab runs");
    let out = run.stdout;
    assert!(
        out.contains("hello, os-lab: 32-bit pointers\n"),
        "{out}\n{}",
        run.stderr
    );
    assert!(out.contains("elf-class 01\n"), "{out}");
    assert!(out.contains("QEMU emulator version"), "{out}");
    assert!(out.contains("GNU gdb"), "{out}");
    // Both heredoc forms of the Dockerfile wrote their package sources.
    assert!(out.contains(" bookworm-updates main\n"), "{out}");
    assert!(out.contains(" bookworm-security main\n"), "{out}");
    // /lab is the host's ./lab.
    let written = std::fs::read_to_string(work.join("lab/written-inside.txt"))
        .expect("a file written to /lab is in the host's lab folder");
    assert_eq!(written, "/lab\n");
    let binary = std::fs::read(work.join("lab/hello32")).expect("the compiled program");
    assert_eq!(binary.get(..5), Some(&b"\x7fELF\x01"[..]), "a 32-bit ELF");
    let left = env
        .run_ok(["container", "ls", "-aq"])
        .expect("container ls")
        .stdout;
    assert!(left.trim().is_empty(), "run --rm left containers: {left}");

    // Nothing changed: every step comes from the cache and the image is the same.
    progress(start, "second rcompose build (cached)");
    let again = rcompose_streaming(&env, &["build"], BUILD_TIMEOUT);
    assert!(!again.stdout.contains("Running in"), "{}", again.stdout);
    assert!(again.stdout.contains("Using cache"), "{}", again.stdout);
    assert_eq!(image_id(&env, "os-lab"), id);
    progress(start, "done");
}

/// One HTTP GET on loopback; `None` until something answers with a body.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

fn visit(port: u16) -> String {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(body) = http_get(port, "/") {
            return body;
        }
        assert!(Instant::now() < end, "nothing answered on 127.0.0.1:{port}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn devstack_serves_through_its_network_and_keeps_its_data() {
    require_root().expect("root");
    find_program("debootstrap", "debootstrap").expect("debootstrap");
    let start = Instant::now();
    let mut env = TestEnv::new().expect("test env");
    env.set_timeout(Duration::from_secs(5 * 60));
    let work = env.work_dir();
    copy_tree(&repo_root().join("examples/devstack"), &work);
    make_base(&env, start);
    let port = e2e::free_port().expect("a free port");
    env.defer(["down", "-v", "-t", "5"]);

    progress(
        start,
        "devstack: rcompose up -d --wait (builds nginx, python3, postgresql images)",
    );
    let mut up = env.command().expect("rcompose command");
    up.args(["up", "-d", "--wait"])
        .env("DEVSTACK_PORT", port.to_string());
    let out = run_streaming(up, BUILD_TIMEOUT);
    assert!(out.success, "up failed\n{}\n{}", out.stdout, out.stderr);

    // web → app (by service name) → db (by service name, healthy first).
    assert_eq!(visit(port), "hello from devstack: visit number 1\n");
    assert_eq!(visit(port), "hello from devstack: visit number 2\n");

    // A service container reaches Debian's mirror through the project network's NAT.
    progress(start, "devstack: apt-get update inside the app container");
    let apt = env
        .run(["exec", "-T", "app", "apt-get", "update"])
        .expect("rcompose runs");
    assert!(
        apt.success(),
        "apt-get update in a container failed: {apt:?}"
    );

    // The named volume keeps the data across down + up.
    env.run_ok(["down", "-t", "5"]).expect("down");
    let mut up = env.command().expect("rcompose command");
    up.args(["up", "-d", "--wait"])
        .env("DEVSTACK_PORT", port.to_string());
    let out = run_streaming(up, BUILD_TIMEOUT);
    assert!(
        out.success,
        "second up failed\n{}\n{}",
        out.stdout, out.stderr
    );
    assert_eq!(visit(port), "hello from devstack: visit number 3\n");
    env.run_ok(["down", "-v", "-t", "5"]).expect("down -v");
    e2e::assert_nothing_left(&env);
    progress(start, "devstack: done");
}
