//! The resolver's control socket (`<root>/dns/control.sock`, a Unix stream socket) and its
//! one-line protocol.
//!
//! Why a control socket rather than SIGHUP or an inotify watch on the record files:
//! - it is synchronous: `reload` is answered only after the new records are live, so when
//!   `add_endpoint` returns the name resolves — a signal or an inotify event gives no such point;
//! - it doubles as the liveness probe (`ensure_running` needs no pid file, and pid reuse cannot
//!   fool it: a dead resolver's socket refuses connections);
//! - only root (the socket is mode 0600 in a root-owned directory) can talk to it.
//!
//! Requests are one line: `reload`, `status` or `stop`. The answer is one line:
//! `ok pid=<pid> networks=<n>` followed by ` exiting` when the resolver is about to exit
//! (after `stop`, or a reload that left no network).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::error::{DnsError, Result};

/// How long a client waits for the resolver's answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// A control request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Re-read every record file (and the host's resolvers); answered when live.
    Reload,
    /// Just report.
    Status,
    /// Exit now.
    Stop,
}

impl Request {
    pub fn as_str(self) -> &'static str {
        match self {
            Request::Reload => "reload",
            Request::Status => "status",
            Request::Stop => "stop",
        }
    }

    pub fn parse(line: &str) -> Option<Self> {
        match line.trim() {
            "reload" => Some(Request::Reload),
            "status" => Some(Request::Status),
            "stop" => Some(Request::Stop),
            _ => None,
        }
    }
}

/// What a running resolver reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Its process id.
    pub pid: u32,
    /// Networks it serves.
    pub networks: usize,
    /// It is about to exit (no network left, or told to stop).
    pub exiting: bool,
}

impl Status {
    pub fn render(&self) -> String {
        let mut line = format!("ok pid={} networks={}", self.pid, self.networks);
        if self.exiting {
            line.push_str(" exiting");
        }
        line.push('\n');
        line
    }

    pub fn parse(line: &str) -> Option<Self> {
        let mut words = line.split_whitespace();
        if words.next()? != "ok" {
            return None;
        }
        let pid = words.next()?.strip_prefix("pid=")?.parse().ok()?;
        let networks = words.next()?.strip_prefix("networks=")?.parse().ok()?;
        let exiting = words.next() == Some("exiting");
        Some(Status {
            pid,
            networks,
            exiting,
        })
    }
}

/// Sends one request. `Ok(None)` means no resolver is running (no socket, connection refused,
/// or it went away before answering); errors are for a resolver that answers nonsense.
pub fn request(path: &Path, req: Request) -> Result<Option<Status>> {
    let mut stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(control_err(path, format!("connect: {e}"))),
    };
    let timeouts = stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(CLIENT_TIMEOUT)));
    if let Err(e) = timeouts {
        return Err(control_err(path, format!("socket options: {e}")));
    }
    if let Err(e) = stream.write_all(format!("{}\n", req.as_str()).as_bytes()) {
        // The resolver closed on us mid-exit: treat as not running.
        return match e.kind() {
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => Ok(None),
            _ => Err(control_err(path, format!("send: {e}"))),
        };
    }
    let mut line = String::new();
    match BufReader::new(&stream).read_line(&mut line) {
        Ok(0) => Ok(None),
        Ok(_) => Status::parse(&line)
            .map(Some)
            .ok_or_else(|| control_err(path, format!("unexpected answer {line:?}"))),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(None),
        Err(e) => Err(control_err(path, format!("receive: {e}"))),
    }
}

fn control_err(path: &Path, reason: String) -> DnsError {
    DnsError::Control {
        path: path.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_round_trip() {
        for status in [
            Status {
                pid: 42,
                networks: 3,
                exiting: false,
            },
            Status {
                pid: 1,
                networks: 0,
                exiting: true,
            },
        ] {
            assert_eq!(Status::parse(&status.render()), Some(status));
        }
        assert_eq!(Status::parse("error"), None);
        assert_eq!(Request::parse("reload\n"), Some(Request::Reload));
        assert_eq!(Request::parse("bogus"), None);
    }

    #[test]
    fn no_socket_means_not_running() {
        let dir = tempfile::tempdir().expect("tempdir");
        let got = request(&dir.path().join("control.sock"), Request::Status).expect("no error");
        assert_eq!(got, None);
    }
}
