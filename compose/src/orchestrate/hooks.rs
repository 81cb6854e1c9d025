//! Lifecycle hooks: `post_start` after a service container starts, `pre_stop` before it is
//! stopped. Each runs as `rcompose container exec` in a child process: the exec path forks, and
//! the runner calling us is multi-threaded, so the fork happens in a fresh single-threaded
//! process instead.

use std::path::Path;
use std::process::{Command, Stdio};

use super::OrchestrateError;
use crate::model::ServiceHook;

/// The argument vector of `rcompose --root ROOT container exec … ID COMMAND…` for one hook.
pub fn exec_args(root: &Path, container_id: &str, hook: &ServiceHook) -> Vec<String> {
    let mut args = vec![
        "--root".to_owned(),
        root.display().to_string(),
        "container".to_owned(),
        "exec".to_owned(),
    ];
    if let Some(u) = hook.user.as_deref().filter(|u| !u.is_empty()) {
        args.extend(["-u".to_owned(), u.to_owned()]);
    }
    if let Some(w) = hook.working_dir.as_deref().filter(|w| !w.is_empty()) {
        args.extend(["-w".to_owned(), w.to_owned()]);
    }
    if hook.privileged {
        args.push("--privileged".to_owned());
    }
    for (k, v) in &hook.environment {
        let value = match v {
            Some(v) => v.clone(),
            None => std::env::var(k).unwrap_or_default(),
        };
        args.extend(["-e".to_owned(), format!("{k}={value}")]);
    }
    args.push(container_id.to_owned());
    args.extend(hook.command.iter().cloned());
    args
}

/// Runs the hooks in order; the first failing one is the error (its output included).
pub fn run(
    root: &Path,
    container: &str,
    container_id: &str,
    which: &str,
    hooks: &[ServiceHook],
) -> Result<(), OrchestrateError> {
    let exe = std::env::current_exe().map_err(|e| OrchestrateError::Op {
        what: format!("{which} hook of {container}"),
        msg: format!("cannot find the rcompose binary: {e}"),
    })?;
    for hook in hooks {
        let out = Command::new(&exe)
            .args(exec_args(root, container_id, hook))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| OrchestrateError::Op {
                what: format!("{which} hook of {container}"),
                msg: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(OrchestrateError::Op {
                what: format!("{which} hook {:?} of {container}", hook.command.join(" ")),
                msg: format!(
                    "exited with {}: {}{}",
                    out.status.code().unwrap_or(-1),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
                .trim_end()
                .to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_becomes_an_exec_command_line() {
        let mut hook = ServiceHook {
            command: vec!["sh".into(), "-c".into(), "echo hi".into()],
            user: Some("1000".into()),
            privileged: true,
            working_dir: Some("/srv".into()),
            ..Default::default()
        };
        hook.environment.insert("A".into(), Some("1".into()));
        let args = exec_args(Path::new("/r"), "abc", &hook);
        assert_eq!(
            args,
            [
                "--root",
                "/r",
                "container",
                "exec",
                "-u",
                "1000",
                "-w",
                "/srv",
                "--privileged",
                "-e",
                "A=1",
                "abc",
                "sh",
                "-c",
                "echo hi"
            ]
        );
    }
}
