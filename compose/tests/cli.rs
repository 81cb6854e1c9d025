//! The command line's own surface: version output, global options, error reporting.

use std::process::Command;

fn rcompose() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rcompose"));
    c.env_remove("RCOMPOSE_ROOT").env_remove("COMPOSE_FILE");
    c
}

#[test]
fn version_flag_and_command() {
    let out = rcompose().arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("rcompose "), "{text}");
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");

    let out = rcompose()
        .args(["version", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["os"], std::env::consts::OS);

    let out = rcompose().args(["version", "--short"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        env!("CARGO_PKG_VERSION")
    );
}

#[test]
fn errors_are_plain_words_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  a:\n    image: [x\n",
    )
    .unwrap();
    let out = rcompose()
        .arg("config")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("Error: "), "{err}");
    assert!(err.contains("compose.yaml:"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn stdin_compose_file() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut child = rcompose()
        .args(["-f", "-", "-p", "fromstdin", "config", "--services"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"services:\n  one: {image: x}\n  two: {image: y}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\n");
}

#[test]
fn output_file_and_root_option() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  a: {image: x}\n",
    )
    .unwrap();
    let out = rcompose()
        .args(["--root", "/nonexistent/state", "config", "-o", "out.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(dir.path().join("out.yaml")).unwrap();
    assert!(written.contains("image: x"), "{written}");
}

#[test]
fn local_short_flags_shadow_global_ones_like_docker_compose() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  b:\n    image: x\n  a:\n    image: y\n",
    )
    .unwrap();
    // `ps --services` lists service names (no state root needed).
    let out = rcompose()
        .current_dir(dir.path())
        .args(["ps", "--services"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\nb\n");
    // `-f` before the subcommand names the file even when the subcommand is `logs`/`rm`.
    let args = compose::cli::shadow_local_flags(
        ["rcompose", "-f", "x.yaml", "logs", "-f", "web"].map(std::ffi::OsString::from),
    );
    assert_eq!(
        args,
        ["rcompose", "-f", "x.yaml", "logs", "--follow", "web"]
    );
    let args = compose::cli::shadow_local_flags(
        ["rcompose", "rm", "-f", "-s"].map(std::ffi::OsString::from),
    );
    assert_eq!(args, ["rcompose", "rm", "--force", "-s"]);
}
