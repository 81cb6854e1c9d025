//! Helpers of the project-level suites (`up`, `run`, `build`, containers): a test env with the
//! busybox fixture pulled, and a subnet of its own.

use std::collections::HashSet;
use std::process::Command;
use std::sync::Mutex;

use crate::env::TestEnv;
use crate::registry::Registry;
use crate::util::require_root;

/// A fresh [`TestEnv`] with the busybox fixture pushed to a local registry, pulled and tagged
/// `busybox`. Keep the registry alive as long as the env.
///
/// # Panics
/// When anything of it fails: tests want that loud.
pub fn busybox_env() -> (TestEnv, Registry) {
    require_root().expect("root");
    let registry = Registry::start().expect("registry starts");
    let image = crate::fixtures::busybox_image().expect("fixture builds");
    let reference = crate::skopeo::push(&image, &registry, "busybox:latest").expect("push works");
    let env = TestEnv::new().expect("test env");
    env.allow_insecure(&registry).expect("insecure registry");
    env.run_ok(["image", "pull", reference.as_str()])
        .expect("pull works");
    env.run_ok(["image", "tag", reference.as_str(), "busybox"])
        .expect("tag works");
    (env, registry)
}

/// Third octets of `10.<second>.N.0/24` subnets handed out in this process.
static TAKEN: Mutex<Option<HashSet<(u8, u8)>>> = Mutex::new(None);

/// A `10.<second>.N.0/24` that no host address or route uses and no other test of this process
/// holds. Each suite passes its own `second` octet, so suites running at once never collide.
///
/// # Panics
/// When all 250 are taken.
pub fn free_subnet(second: u8) -> String {
    let text = |args: &[&str]| {
        Command::new("ip")
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let used =
        text(&["-4", "-o", "addr", "show"]) + &text(&["-4", "route", "show", "table", "all"]);
    let mut guard = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let taken = guard.get_or_insert_with(HashSet::new);
    let start = std::process::id() % 200;
    for i in 0..250u32 {
        let octet = u8::try_from(1 + (start + i) % 250).expect("fits");
        if !taken.contains(&(second, octet)) && !used.contains(&format!("10.{second}.{octet}.")) {
            taken.insert((second, octet));
            return format!("10.{second}.{octet}.0/24");
        }
    }
    panic!("no free 10.{second}.N.0/24");
}

/// `rcompose exec -T SERVICE CMD…`, which must succeed; returns its standard output.
///
/// # Panics
/// When the command fails.
pub fn exec_ok(env: &TestEnv, service: &str, cmd: &[&str]) -> String {
    let mut all = vec!["exec", "-T", service];
    all.extend_from_slice(cmd);
    let out = env.run(all).expect("rcompose runs");
    assert!(out.success(), "exec {cmd:?} failed: {out:?}");
    out.stdout
}

/// What the listener behind `127.0.0.1:port` sends before closing, retried for 10 s until it
/// answers.
///
/// # Panics
/// When nothing answers in time.
pub fn read_port(port: u16) -> String {
    use std::io::Read;
    use std::time::{Duration, Instant};
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, port)) {
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut text = String::new();
            if s.read_to_string(&mut text).is_ok() && !text.is_empty() {
                return text;
            }
        }
        assert!(Instant::now() < end, "nothing answered on 127.0.0.1:{port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The lines of a spawned child's piped standard output, as they come, from a reader thread
/// (which ends with the output or when the receiver is dropped).
///
/// # Panics
/// When the child's stdout was not piped.
pub fn stdout_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}
