//! The supervisor's control socket (`<dir>/ctl.sock`): one text request line per connection
//! (`stop SIG SECS`, `kill SIG`, `pause`, `unpause`, `wait`, `attach STDIN`), then either a
//! one-line reply or, for `attach`, a framed stream.
//!
//! Attach frames are `[kind u8][len u32 BE][payload]`. Supervisor → client: 1 stdout, 2 stderr
//! (a tty's output is all stdout), 3 exit (payload: the exit code as decimal text).
//! Client → supervisor: 0 stdin bytes, 1 resize (`rows cols` as text), 2 stdin closed.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::ContainerError;

pub const SOCKET: &str = "ctl.sock";

pub const FRAME_STDIN: u8 = 0;
pub const FRAME_RESIZE: u8 = 1;
pub const FRAME_STDIN_CLOSE: u8 = 2;
pub const FRAME_STDOUT: u8 = 1;
pub const FRAME_STDERR: u8 = 2;
pub const FRAME_EXIT: u8 = 3;

/// Connects to a container's supervisor. The socket is reached through `/proc/self/fd/N` of
/// the opened container dir so long state roots do not hit the 108-byte socket path limit.
pub fn connect(dir: &Path) -> Result<UnixStream, ContainerError> {
    let d = File::open(dir).map_err(super::store::io_err(dir))?;
    let p = format!("/proc/self/fd/{}/{SOCKET}", d.as_raw_fd());
    UnixStream::connect(&p).map_err(|e| {
        ContainerError::Supervisor(format!(
            "cannot reach the supervisor of {}: {e}",
            dir.display()
        ))
    })
}

/// Sends one request and returns the reply line (without newline).
pub fn request(dir: &Path, line: &str) -> Result<String, ContainerError> {
    let mut s = connect(dir)?;
    s.write_all(format!("{line}\n").as_bytes())
        .map_err(|e| ContainerError::Supervisor(e.to_string()))?;
    let mut r = BufReader::new(s);
    let mut reply = String::new();
    r.read_line(&mut reply)
        .map_err(|e| ContainerError::Supervisor(e.to_string()))?;
    let reply = reply.trim_end().to_owned();
    if let Some(err) = reply.strip_prefix("error ") {
        return Err(ContainerError::Supervisor(err.to_owned()));
    }
    Ok(reply)
}

/// Sends a request, then blocks until the supervisor closes the connection (it exits), returning
/// the last line it wrote (`exit N` for waits).
pub fn request_and_wait(dir: &Path, line: &str) -> Result<String, ContainerError> {
    let mut s = connect(dir)?;
    s.write_all(format!("{line}\n").as_bytes())
        .map_err(|e| ContainerError::Supervisor(e.to_string()))?;
    let mut all = String::new();
    let _ = s.read_to_string(&mut all);
    let last = all.lines().last().unwrap_or("").to_owned();
    if let Some(err) = last.strip_prefix("error ") {
        return Err(ContainerError::Supervisor(err.to_owned()));
    }
    Ok(last)
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(5 + payload.len());
    buf.push(kind);
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf)
}

/// Incremental frame parser for a non-blocking reader.
#[derive(Debug, Default)]
pub struct FrameBuf {
    buf: Vec<u8>,
}

impl FrameBuf {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if any.
    pub fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        if self.buf.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if self.buf.len() < 5 + len {
            return None;
        }
        let kind = self.buf[0];
        let payload = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        Some((kind, payload))
    }
}

/// Reads one frame (blocking).
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_roundtrip() {
        let mut out = Vec::new();
        write_frame(&mut out, FRAME_STDOUT, b"hi").unwrap();
        write_frame(&mut out, FRAME_EXIT, b"3").unwrap();
        let mut fb = FrameBuf::default();
        fb.push(&out[..4]);
        assert!(fb.next_frame().is_none());
        fb.push(&out[4..]);
        assert_eq!(fb.next_frame(), Some((FRAME_STDOUT, b"hi".to_vec())));
        assert_eq!(fb.next_frame(), Some((FRAME_EXIT, b"3".to_vec())));
        let mut r = &out[..];
        assert_eq!(read_frame(&mut r).unwrap().unwrap().0, FRAME_STDOUT);
    }
}
