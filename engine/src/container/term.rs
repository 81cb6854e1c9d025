//! Client-side terminal handling for `run -it`, `attach` and `exec -it`: raw mode (restored on
//! drop), window size, detach-key detection, and a single-threaded relay between the local
//! terminal and a pty master or an attach socket.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use nix::sys::termios::{self, SetArg, Termios};

/// Puts a terminal in raw mode until dropped.
pub struct RawMode {
    fd: RawFd,
    saved: Termios,
}

impl RawMode {
    /// Enters raw mode on `fd` if it is a terminal.
    pub fn enter(fd: RawFd) -> Option<RawMode> {
        // SAFETY: the caller passes an fd (stdin) that stays open for the guard's life.
        let b = unsafe { BorrowedFd::borrow_raw(fd) };
        let saved = termios::tcgetattr(b).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(b, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: as in `enter`.
        let b = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = termios::tcsetattr(b, SetArg::TCSANOW, &self.saved);
    }
}

/// `(rows, cols)` of a terminal.
pub fn window_size(fd: RawFd) -> Option<(u16, u16)> {
    // SAFETY: ws is plain data; TIOCGWINSZ writes into it.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: ioctl with a valid pointer to our winsize.
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } < 0 || ws.ws_row == 0 {
        return None;
    }
    Some((ws.ws_row, ws.ws_col))
}

/// Sets a pty's window size.
pub fn set_window_size(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads our winsize.
    unsafe {
        libc::ioctl(fd, libc::TIOCSWINSZ, &ws);
    }
}

/// Parses docker's detach-key syntax (`ctrl-p,ctrl-q`, `ctrl-a,x`, `ctrl-@`) into bytes.
pub fn parse_detach_keys(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() {
        return Some(vec![0x10, 0x11]);
    }
    let mut out = Vec::new();
    for k in s.split(',') {
        let k = k.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let c = c.chars().next()?;
            let b = match c {
                'a'..='z' => c as u8 - b'a' + 1,
                '@' => 0,
                '[' => 27,
                '\\' => 28,
                ']' => 29,
                '^' => 30,
                '_' => 31,
                _ => return None,
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return None;
        }
    }
    Some(out)
}

/// Scans input for the detach sequence; bytes of a partial match are held back.
#[derive(Debug)]
pub struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScanner {
    pub fn new(keys: Vec<u8>) -> DetachScanner {
        DetachScanner { keys, matched: 0 }
    }

    /// Returns the bytes to forward and whether the sequence completed.
    pub fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

/// poll(2) over a few fds for readability; returns which are readable (or hung up).
pub fn poll_read(fds: &[RawFd], timeout_ms: i32) -> io::Result<Vec<bool>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `p` is a live array of pollfd of the given length.
    let n = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(e);
    }
    Ok(p.iter().map(|x| x.revents != 0).collect())
}

/// read(2) into `buf`; 0 at EOF, an error as `Err`.
pub fn read_raw(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: reading into a live buffer of its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Writes all of `data` to `fd`.
pub fn write_raw(fd: RawFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        // SAFETY: writing from a live buffer of its length.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

/// Relays between the local terminal and a pty master (`exec -it`) until `done()` reports the
/// process exited and the master has nothing more to say.
pub fn relay_pty(
    master: &impl AsRawFd,
    stdin: bool,
    mut done: impl FnMut() -> bool,
) -> io::Result<()> {
    let m = master.as_raw_fd();
    let mut size = window_size(0);
    if let Some((r, c)) = size {
        set_window_size(m, r, c);
    }
    let mut stdin_open = stdin;
    let mut buf = [0u8; 8192];
    loop {
        let fds: Vec<RawFd> = if stdin_open { vec![m, 0] } else { vec![m] };
        let ready = poll_read(&fds, 200)?;
        if ready[0] {
            match read_raw(m, &mut buf) {
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => write_raw(1, &buf[..n])?,
            }
        }
        if stdin_open && ready.get(1).copied().unwrap_or(false) {
            match read_raw(0, &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => write_raw(m, &buf[..n])?,
            }
        }
        let now = window_size(0);
        if now != size {
            size = now;
            if let Some((r, c)) = now {
                set_window_size(m, r, c);
            }
        }
        if !ready[0] && done() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert!(parse_detach_keys("ctrl-ä").is_none());
        let mut s = DetachScanner::new(vec![16, 17]);
        assert_eq!(s.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(s.feed(b"c"), (b"\x10c".to_vec(), false));
        assert!(s.feed(b"\x10\x11rest").1);
    }
}
