//! Queries relayed to the host's resolvers: one non-blocking state machine per query, driven by
//! the resolver's poll loop. The query goes out byte for byte (the client's id and EDNS options
//! intact) and the first matching answer goes back byte for byte; each upstream gets
//! `ATTEMPT_TIMEOUT` before the next one is tried, and when all failed the client gets SERVFAIL.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use rustix::event::PollFlags;

use super::sockets;

/// How long one upstream gets to answer.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2000);

enum Conn {
    Udp(UdpSocket),
    TcpConnecting(TcpStream),
    TcpReading(TcpStream, Vec<u8>),
}

/// Where a forwarded query stands after an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Still waiting.
    Pending,
    /// The upstream's answer, for the client.
    Answer(Vec<u8>),
    /// Every upstream failed or timed out.
    Failed,
}

/// One query on its way upstream, on behalf of client `C`.
pub struct Forward<C> {
    pub client: C,
    query: Vec<u8>,
    upstreams: Vec<SocketAddr>,
    attempt: usize,
    tcp: bool,
    conn: Option<Conn>,
    deadline: Instant,
}

impl<C> Forward<C> {
    /// Sends `query` to the first upstream that takes it; over TCP when `tcp` (the client asked
    /// over TCP, so the answer may be large). `Err` gives the client back when none does.
    pub fn start(
        client: C,
        query: &[u8],
        upstreams: &[SocketAddr],
        tcp: bool,
        now: Instant,
    ) -> Result<Self, C> {
        let mut forward = Forward {
            client,
            query: query.to_vec(),
            upstreams: upstreams.to_vec(),
            attempt: 0,
            tcp,
            conn: None,
            deadline: now,
        };
        if forward.try_from(0, now) {
            Ok(forward)
        } else {
            Err(forward.client)
        }
    }

    /// The query as the client sent it.
    pub fn query(&self) -> &[u8] {
        &self.query
    }

    /// When this query next needs attention without any event.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The socket to poll and for what.
    pub fn poll_target(&self) -> Option<(BorrowedFd<'_>, PollFlags)> {
        match self.conn.as_ref()? {
            Conn::Udp(sock) => Some((sock.as_fd(), PollFlags::IN)),
            Conn::TcpConnecting(stream) => Some((stream.as_fd(), PollFlags::OUT)),
            Conn::TcpReading(stream, _) => Some((stream.as_fd(), PollFlags::IN)),
        }
    }

    /// The socket is ready (or in error).
    pub fn on_ready(&mut self, buf: &mut [u8], now: Instant) -> Step {
        match self.progress(buf) {
            Ok(Some(answer)) => Step::Answer(answer),
            Ok(None) => Step::Pending,
            Err(e) => {
                tracing::debug!(upstream = ?self.upstreams.get(self.attempt), "upstream failed: {e}");
                self.next_upstream(now)
            }
        }
    }

    /// The deadline passed: on to the next upstream, or give up.
    pub fn on_timeout(&mut self, now: Instant) -> Step {
        tracing::debug!(upstream = ?self.upstreams.get(self.attempt), "upstream timed out");
        self.next_upstream(now)
    }

    fn next_upstream(&mut self, now: Instant) -> Step {
        if self.try_from(self.attempt + 1, now) {
            Step::Pending
        } else {
            self.conn = None;
            Step::Failed
        }
    }

    /// Starts the attempt on the first upstream from index `from` that accepts a socket.
    fn try_from(&mut self, from: usize, now: Instant) -> bool {
        for index in from..self.upstreams.len() {
            let upstream = self.upstreams[index];
            let conn = if self.tcp {
                sockets::connect_tcp(upstream).map(Conn::TcpConnecting)
            } else {
                sockets::connect_udp(upstream)
                    .and_then(|sock| sock.send(&self.query).map(|_| Conn::Udp(sock)))
            };
            match conn {
                Ok(conn) => {
                    self.attempt = index;
                    self.conn = Some(conn);
                    self.deadline = now + ATTEMPT_TIMEOUT;
                    return true;
                }
                Err(e) => tracing::debug!(%upstream, "cannot reach upstream: {e}"),
            }
        }
        false
    }

    fn id_matches(&self, answer: &[u8]) -> bool {
        answer.len() >= 12 && answer[..2] == self.query[..2] && answer[2] & 0x80 != 0
    }

    fn progress(&mut self, buf: &mut [u8]) -> io::Result<Option<Vec<u8>>> {
        let Some(conn) = self.conn.take() else {
            return Err(io::Error::other("no connection"));
        };
        match conn {
            Conn::Udp(sock) => match sock.recv(buf) {
                Ok(n) if self.id_matches(&buf[..n]) => Ok(Some(buf[..n].to_vec())),
                Ok(_) => {
                    // Not our answer (late or forged): keep waiting.
                    self.conn = Some(Conn::Udp(sock));
                    Ok(None)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.conn = Some(Conn::Udp(sock));
                    Ok(None)
                }
                Err(e) => Err(e),
            },
            Conn::TcpConnecting(mut stream) => {
                sockets::connect_result(&stream)?;
                let len = u16::try_from(self.query.len())
                    .map_err(|_| io::Error::other("query too long for TCP"))?;
                let mut framed = Vec::with_capacity(self.query.len() + 2);
                framed.extend_from_slice(&len.to_be_bytes());
                framed.extend_from_slice(&self.query);
                // A fresh socket's send buffer takes a DNS query whole.
                let written = stream.write(&framed)?;
                if written != framed.len() {
                    return Err(io::Error::other("short write to upstream"));
                }
                self.conn = Some(Conn::TcpReading(stream, Vec::new()));
                Ok(None)
            }
            Conn::TcpReading(mut stream, mut got) => {
                match stream.read(buf) {
                    Ok(0) => return Err(io::Error::other("upstream closed the connection")),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if got.len() >= 2 {
                    let len = usize::from(u16::from_be_bytes([got[0], got[1]]));
                    if got.len() >= 2 + len {
                        let answer = got[2..2 + len].to_vec();
                        if self.id_matches(&answer) {
                            return Ok(Some(answer));
                        }
                        return Err(io::Error::other("answer does not match the query"));
                    }
                }
                self.conn = Some(Conn::TcpReading(stream, got));
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives one forward with poll(2) until it is done or `limit` passes.
    fn drive(forward: &mut Forward<()>, limit: Duration) -> Step {
        let mut buf = vec![0u8; 4096];
        let end = Instant::now() + limit;
        loop {
            let now = Instant::now();
            if now >= end {
                return Step::Pending;
            }
            if forward.deadline() <= now {
                let step = forward.on_timeout(now);
                if step != Step::Pending {
                    return step;
                }
                continue;
            }
            let Some((fd, flags)) = forward.poll_target() else {
                return Step::Failed;
            };
            let mut fds = [rustix::event::PollFd::from_borrowed_fd(fd, flags)];
            let wait = forward.deadline().min(end) - now;
            let timeout = rustix::event::Timespec::try_from(wait).expect("short wait");
            let ready = rustix::event::poll(&mut fds, Some(&timeout)).expect("poll");
            if ready > 0 {
                let step = forward.on_ready(&mut buf, Instant::now());
                if step != Step::Pending {
                    return step;
                }
            }
        }
    }

    fn query() -> Vec<u8> {
        // id 0xbeef, RD, one question: "x." A IN
        vec![
            0xbe, 0xef, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'x', 0, 0, 1, 0, 1,
        ]
    }

    /// A one-shot UDP upstream on loopback that answers the first query with its id echoed.
    fn udp_upstream(answer_id: Option<[u8; 2]>) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let addr = sock.local_addr().expect("addr");
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            if let Ok((n, peer)) = sock.recv_from(&mut buf) {
                let mut reply = buf[..n].to_vec();
                if let Some(id) = answer_id {
                    reply[..2].copy_from_slice(&id);
                }
                reply[2] |= 0x80;
                let _ = sock.send_to(&reply, peer);
            }
        });
        (addr, thread)
    }

    /// A loopback port nobody listens on (bound, then closed).
    fn closed_port() -> SocketAddr {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.local_addr().expect("addr")
    }

    #[test]
    fn a_refused_upstream_is_skipped_for_the_next() {
        let (good, thread) = udp_upstream(None);
        let upstreams = [closed_port(), good];
        let mut forward =
            Forward::start((), &query(), &upstreams, false, Instant::now()).expect("starts");
        match drive(&mut forward, Duration::from_secs(5)) {
            Step::Answer(answer) => assert_eq!(&answer[..2], &[0xbe, 0xef]),
            other => panic!("expected an answer, got {other:?}"),
        }
        thread.join().expect("upstream thread");
    }

    #[test]
    fn an_answer_with_another_id_is_ignored_and_silence_times_out() {
        let (liar, thread) = udp_upstream(Some([0, 1]));
        let mut forward =
            Forward::start((), &query(), &[liar], false, Instant::now()).expect("starts");
        // The answer with the wrong id is read and ignored; then the only upstream times out.
        assert_eq!(
            drive(&mut forward, ATTEMPT_TIMEOUT + Duration::from_secs(2)),
            Step::Failed
        );
        thread.join().expect("upstream thread");
    }

    #[test]
    fn no_upstream_gives_the_client_back() {
        assert!(Forward::start(7u8, &query(), &[], false, Instant::now()).is_err());
    }
}
