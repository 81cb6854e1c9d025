//! Golden tests of `rcompose config` over the fixture corpus in `tests/fixtures/config/`.
//!
//! Each case is a directory holding compose files and:
//! - `args` (optional): the command line after `rcompose`, one argument per line
//!   (default: `config`); run in the case directory (or `cwd` if that file names a subdirectory);
//! - `env` (optional): `KEY=VALUE` lines, the whole process environment besides HOME and PATH;
//! - `expected.out`: the exact standard output of a successful run, or
//! - `expected.err`: lines that must all appear in standard error of a failing run (the file,
//!   line and column of a location, the message).
//!
//! Absolute paths of the case directory print as `$DIR`. `UPDATE_GOLDEN=1` rewrites
//! `expected.out` files from the actual output (review the diff before committing).

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/config")
}

fn run_case(dir: &Path) -> Result<(), String> {
    let args: Vec<String> = match std::fs::read_to_string(dir.join("args")) {
        Ok(t) => t
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        Err(_) => vec!["config".into()],
    };
    let cwd = match std::fs::read_to_string(dir.join("cwd")) {
        Ok(sub) => dir.join(sub.trim()),
        Err(_) => dir.to_path_buf(),
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rcompose"));
    cmd.args(&args)
        .current_dir(&cwd)
        .env_clear()
        .env("HOME", "/home/test")
        .env("PATH", "/usr/bin:/bin");
    if let Ok(env) = std::fs::read_to_string(dir.join("env")) {
        for line in env.lines().filter(|l| !l.is_empty()) {
            let (k, v) = line.split_once('=').unwrap_or((line, ""));
            cmd.env(k, v);
        }
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run rcompose: {e}"))?;
    let canon = dir
        .canonicalize()
        .map_err(|e| e.to_string())?
        .to_string_lossy()
        .into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).replace(&canon, "$DIR");
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&canon, "$DIR");

    let expected_out = dir.join("expected.out");
    let expected_err = dir.join("expected.err");
    if expected_err.exists() {
        if out.status.success() {
            return Err(format!("expected failure, got success:\n{stdout}"));
        }
        let want = std::fs::read_to_string(&expected_err).map_err(|e| e.to_string())?;
        for line in want.lines().filter(|l| !l.is_empty()) {
            if !stderr.contains(line) {
                return Err(format!("stderr lacks {line:?}:\n{stderr}"));
            }
        }
        return Ok(());
    }
    if !out.status.success() {
        return Err(format!("failed ({}):\n{stderr}", out.status));
    }
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected_out, &stdout).map_err(|e| e.to_string())?;
        return Ok(());
    }
    let want = std::fs::read_to_string(&expected_out).map_err(|e| {
        format!(
            "{}: {e} (UPDATE_GOLDEN=1 creates it)",
            expected_out.display()
        )
    })?;
    if want != stdout {
        return Err(format!(
            "output differs from {}:\n--- expected\n{want}\n--- actual\n{stdout}\n--- stderr\n{stderr}",
            expected_out.display()
        ));
    }
    Ok(())
}

#[test]
fn config_golden_corpus() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("tests/fixtures/config exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "the corpus holds {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            run_case(c).err().map(|e| {
                format!(
                    "== {}\n{e}",
                    c.file_name().unwrap_or_default().to_string_lossy()
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
