//! The attach client: connects to a container's supervisor and relays the local terminal or
//! pipes (stdin, stdout, stderr, window size) until the container exits or the user detaches.

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use super::control::{self, FrameBuf};
use super::term::{self, DetachScanner};
use super::ContainerError;

/// How an attach session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachEnd {
    /// The container exited with this code.
    Exited(i32),
    /// The user typed the detach keys.
    Detached,
    /// The supervisor went away without an exit frame.
    Lost,
}

/// Options of an attach session.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    pub stdin: bool,
    pub tty: bool,
    pub detach_keys: Vec<u8>,
}

/// Attaches to the container in `dir` with the local stdio.
pub fn attach(dir: &Path, opts: &AttachOptions) -> Result<AttachEnd, ContainerError> {
    let mut sock = control::connect(dir)?;
    let sup = |e: io::Error| ContainerError::Supervisor(format!("attach: {e}"));
    sock.write_all(format!("attach {}\n", u8::from(opts.stdin)).as_bytes())
        .map_err(sup)?;
    let _raw = if opts.tty && opts.stdin {
        term::RawMode::enter(0)
    } else {
        None
    };
    let mut size = None;
    let mut stdin_open = opts.stdin;
    let mut scanner = DetachScanner::new(if opts.tty {
        opts.detach_keys.clone()
    } else {
        Vec::new()
    });
    let mut frames = FrameBuf::default();
    let mut buf = [0u8; 8192];
    let s = sock.as_raw_fd();
    loop {
        if opts.tty {
            let now = term::window_size(0);
            if now != size {
                size = now;
                if let Some((r, c)) = now {
                    control::write_frame(
                        &mut sock,
                        control::FRAME_RESIZE,
                        format!("{r} {c}").as_bytes(),
                    )
                    .map_err(sup)?;
                }
            }
        }
        let fds = if stdin_open { vec![s, 0] } else { vec![s] };
        let ready = term::poll_read(&fds, 200).map_err(sup)?;
        if ready[0] {
            let n = term::read_raw(s, &mut buf).unwrap_or(0);
            if n == 0 {
                return Ok(AttachEnd::Lost);
            }
            frames.push(&buf[..n]);
            while let Some((kind, payload)) = frames.next_frame() {
                match kind {
                    control::FRAME_STDOUT => term::write_raw(1, &payload).map_err(sup)?,
                    control::FRAME_STDERR => term::write_raw(2, &payload).map_err(sup)?,
                    control::FRAME_EXIT => {
                        let code = String::from_utf8_lossy(&payload)
                            .trim()
                            .parse()
                            .unwrap_or(255);
                        return Ok(AttachEnd::Exited(code));
                    }
                    _ => {}
                }
            }
        }
        if stdin_open && ready.get(1).copied().unwrap_or(false) {
            let n = term::read_raw(0, &mut buf).unwrap_or(0);
            if n == 0 {
                stdin_open = false;
                let _ = control::write_frame(&mut sock, control::FRAME_STDIN_CLOSE, b"");
            } else {
                let (fwd, detached) = scanner.feed(&buf[..n]);
                if !fwd.is_empty() {
                    control::write_frame(&mut sock, control::FRAME_STDIN, &fwd).map_err(sup)?;
                }
                if detached {
                    return Ok(AttachEnd::Detached);
                }
            }
        }
    }
}
