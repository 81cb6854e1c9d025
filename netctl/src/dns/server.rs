//! The resolver process (`rcompose __dns --root …`): one thread, one `poll(2)` loop over
//! - the control socket (reload / status / stop),
//! - a UDP socket and a TCP listener on every network's gateway address,
//! - accepted TCP clients,
//! - queries in flight to the host's resolvers.
//!
//! A query is answered only when it arrives on a network's gateway from inside that network's
//! subnets, and only from that network's records; anyone else gets REFUSED. The process exits
//! when a reload finds no network left.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::event::PollFlags;
use rustix::fs::{flock, FlockOperation};
use simple_dns::RCODE;

use super::control::{self, Request, Status};
use super::error::{DnsError, Result};
use super::forward::{Forward, Step};
use super::message::{self, Outcome, Transport};
use super::resolvconf::{host_upstreams, HOST_RESOLV_CONF, SYSTEMD_RESOLV_CONF};
use super::sockets;
use super::store::{self, Layout};
use super::table::NetTable;
use super::trim;

/// Queries in flight upstream at once; more get SERVFAIL.
const MAX_FORWARDS: usize = 256;
/// TCP clients at once; the oldest is dropped for a new one.
const MAX_TCP_CLIENTS: usize = 64;
/// A TCP client idle this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// How often the host's resolv.conf is looked at again.
const UPSTREAM_REFRESH: Duration = Duration::from_secs(30);
/// How often listeners that failed to bind are tried again.
const REBIND_EVERY: Duration = Duration::from_secs(2);
/// UDP datagrams handled per wake-up of one socket, so no socket starves the others.
const UDP_BURST: usize = 64;
/// Quiet time after which the resident set is trimmed (see `trim.rs`).
const TRIM_AFTER_IDLE: Duration = Duration::from_millis(200);

/// How the resolver runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// State root (`<root>/dns` holds the records and the control socket).
    pub root: PathBuf,
    /// Port on every gateway address.
    pub port: u16,
    /// Fixed upstreams; empty means the host's (see `resolvconf::host_upstreams`).
    pub upstreams: Vec<SocketAddr>,
    /// The host's resolv.conf.
    pub host_resolv_conf: PathBuf,
    /// systemd-resolved's upstream list.
    pub systemd_resolv_conf: PathBuf,
}

impl ServerOptions {
    /// Production defaults for a state root.
    pub fn new(root: PathBuf) -> Self {
        ServerOptions {
            root,
            port: 53,
            upstreams: Vec::new(),
            host_resolv_conf: HOST_RESOLV_CONF.into(),
            systemd_resolv_conf: SYSTEMD_RESOLV_CONF.into(),
        }
    }
}

/// Who is waiting for a forwarded answer.
#[derive(Debug, Clone, Copy)]
enum Client {
    Udp {
        listener: SocketAddr,
        peer: SocketAddr,
    },
    Tcp {
        conn: u64,
    },
}

struct Listener<S> {
    addr: SocketAddr,
    network: String,
    sock: S,
}

struct TcpClient {
    id: u64,
    stream: TcpStream,
    network: String,
    peer: SocketAddr,
    buf: Vec<u8>,
    idle_deadline: Instant,
}

struct Server {
    options: ServerOptions,
    layout: Layout,
    control: UnixListener,
    tables: Vec<NetTable>,
    udp: Vec<Listener<UdpSocket>>,
    tcp: Vec<Listener<TcpListener>>,
    clients: Vec<TcpClient>,
    forwards: Vec<Forward<Client>>,
    upstreams: Vec<SocketAddr>,
    upstreams_read: Instant,
    rebind_at: Option<Instant>,
    next_client_id: u64,
    exiting: bool,
    /// Last event handled, while the resident set has not been trimmed since.
    busy_since_trim: Option<Instant>,
    buf: Vec<u8>,
}

/// Runs the resolver until no network needs it (or it is told to stop).
pub fn run(mut options: ServerOptions) -> Result<()> {
    // Absolute before leaving the working directory below.
    options.root = std::path::absolute(&options.root)
        .map_err(|e| DnsError::io("resolving state root", &options.root, e))?;
    let layout = Layout::new(&options.root);
    layout.create()?;
    // Leave the caller's session and working directory: the resolver outlives the command that
    // started it and must not keep a directory busy. Failure only means we already lead a session.
    let _ = rustix::process::setsid();
    let _ = std::env::set_current_dir("/");

    let Some(_instance) = lock_instance(&layout)? else {
        tracing::debug!("another DNS resolver serves this root");
        return Ok(());
    };
    let control_path = layout.control_path();
    match fs::remove_file(&control_path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(DnsError::io(
                "removing stale control socket",
                &control_path,
                e,
            ))
        }
        _ => {}
    }
    let control = UnixListener::bind(&control_path)
        .map_err(|e| DnsError::io("binding control socket", &control_path, e))?;
    fs::set_permissions(&control_path, fs::Permissions::from_mode(0o600))
        .map_err(|e| DnsError::io("restricting control socket", &control_path, e))?;
    control
        .set_nonblocking(true)
        .map_err(|e| DnsError::io("configuring control socket", &control_path, e))?;

    let now = Instant::now();
    let mut server = Server {
        options,
        layout,
        control,
        tables: Vec::new(),
        udp: Vec::new(),
        tcp: Vec::new(),
        clients: Vec::new(),
        forwards: Vec::new(),
        upstreams: Vec::new(),
        upstreams_read: now,
        rebind_at: None,
        next_client_id: 0,
        exiting: false,
        busy_since_trim: Some(now),
        buf: vec![0; 65536],
    };
    server.refresh_upstreams(now);
    let result = server.reload().and_then(|()| loop {
        if server.exiting {
            break Ok(());
        }
        if let Err(e) = server.step() {
            break Err(e);
        }
    });
    // Still holding the instance lock: a successor waits for it before binding its own socket,
    // so this never removes a successor's socket.
    let _ = fs::remove_file(&control_path);
    tracing::info!("DNS resolver exiting");
    result
}

/// Takes the per-root instance lock, waiting a little for a predecessor that is exiting. `None`
/// when another resolver holds it and answers: it serves this root (two starters raced).
fn lock_instance(layout: &Layout) -> Result<Option<File>> {
    let path = layout.resolver_lock_path();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| DnsError::io("opening resolver lock", &path, e))?;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(Some(file)),
            Err(rustix::io::Errno::WOULDBLOCK) if Instant::now() < deadline => {
                let holder = control::request(&layout.control_path(), Request::Status);
                if matches!(holder, Ok(Some(status)) if !status.exiting) {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(DnsError::Busy { path }),
            Err(e) => return Err(DnsError::io("locking resolver lock", path, e.into())),
        }
    }
}

enum Slot {
    Control,
    Udp(usize),
    Tcp(usize),
    Client(usize),
    Forward(usize),
}

impl Server {
    /// Waits for events once and handles them.
    fn step(&mut self) -> Result<()> {
        let now = Instant::now();
        let ready = self.wait(now)?;
        let now = Instant::now();

        // Upstream answers first: they only remove entries, leaving other indices valid.
        let mut finished = Vec::new();
        for (slot, _) in &ready {
            if let Slot::Forward(i) = slot {
                let step = self.forwards[*i].on_ready(&mut self.buf, now);
                if step != Step::Pending {
                    finished.push((*i, step));
                }
            }
        }
        self.finish_forwards(finished);

        let mut closed = Vec::new();
        for (slot, flags) in &ready {
            if let Slot::Client(i) = slot {
                let id = self.clients[*i].id;
                let broken = flags.intersects(PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL)
                    && !flags.contains(PollFlags::IN);
                if broken || !self.read_client(*i, now) {
                    closed.push(id);
                }
            }
        }
        self.clients.retain(|c| !closed.contains(&c.id));

        for (slot, _) in &ready {
            match slot {
                Slot::Udp(i) => self.read_udp(*i, now),
                Slot::Tcp(i) => self.accept_tcp(*i, now),
                _ => {}
            }
        }
        if ready.iter().any(|(slot, _)| matches!(slot, Slot::Control)) {
            self.serve_control();
        }
        self.expire(Instant::now());
        Ok(())
    }

    /// Polls every socket until one is ready or the nearest deadline passes. After a quiet spell
    /// it trims the resident set first, as the very last thing before sleeping, so what stays
    /// resident while idle is only what waking up needs (see `trim.rs`).
    fn wait(&mut self, now: Instant) -> Result<Vec<(Slot, PollFlags)>> {
        let mut slots = Vec::new();
        let mut fds = Vec::new();
        let entry = |fd: BorrowedFd<'_>, flags: PollFlags| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: flags.bits() as i16,
            revents: 0,
        };
        fds.push(entry(self.control.as_fd(), PollFlags::IN));
        slots.push(Slot::Control);
        for (i, l) in self.udp.iter().enumerate() {
            fds.push(entry(l.sock.as_fd(), PollFlags::IN));
            slots.push(Slot::Udp(i));
        }
        for (i, l) in self.tcp.iter().enumerate() {
            fds.push(entry(l.sock.as_fd(), PollFlags::IN));
            slots.push(Slot::Tcp(i));
        }
        for (i, c) in self.clients.iter().enumerate() {
            fds.push(entry(c.stream.as_fd(), PollFlags::IN));
            slots.push(Slot::Client(i));
        }
        for (i, f) in self.forwards.iter().enumerate() {
            if let Some((fd, flags)) = f.poll_target() {
                fds.push(entry(fd, flags));
                slots.push(Slot::Forward(i));
            }
        }
        // Trimming now, right before sleeping, or later once things are quiet.
        let trim_first = self
            .busy_since_trim
            .is_some_and(|at| now >= at + TRIM_AFTER_IDLE);
        if trim_first {
            self.busy_since_trim = None;
        }
        let deadline = self
            .forwards
            .iter()
            .map(Forward::deadline)
            .chain(self.clients.iter().map(|c| c.idle_deadline))
            .chain(self.rebind_at)
            .chain(self.busy_since_trim.map(|at| at + TRIM_AFTER_IDLE))
            .min();
        // Whole milliseconds, rounded up so a deadline is never polled for early; -1 waits on.
        let timeout_ms = deadline.map_or(-1, |d| {
            let wait = d.saturating_duration_since(now).as_micros().div_ceil(1000);
            i32::try_from(wait).unwrap_or(i32::MAX)
        });
        match trim::poll(&mut fds, timeout_ms, trim_first) {
            Ok(0) => return Ok(Vec::new()),
            Ok(_) => self.busy_since_trim = Some(Instant::now()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Vec::new()),
            Err(e) => return Err(DnsError::Poll(e)),
        }
        Ok(fds
            .iter()
            .zip(slots)
            .filter(|(fd, _)| fd.revents != 0)
            .map(|(fd, slot)| (slot, PollFlags::from_bits_truncate(fd.revents as u16)))
            .collect())
    }

    /// Datagrams on a gateway's UDP socket.
    fn read_udp(&mut self, index: usize, now: Instant) {
        for _ in 0..UDP_BURST {
            let Some(listener) = self.udp.get(index) else {
                return;
            };
            let (len, peer) = match listener.sock.recv_from(&mut self.buf) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!(addr = %listener.addr, "receive failed: {e}");
                    return;
                }
            };
            let query = self.buf[..len].to_vec();
            let listener_addr = listener.addr;
            let network = listener.network.clone();
            let client = Client::Udp {
                listener: listener_addr,
                peer,
            };
            if let Some(reply) = self.answer(&network, peer, &query, Transport::Udp, client, now) {
                self.send_udp(listener_addr, peer, &reply);
            }
        }
    }

    /// Decides one query; `Some` is an immediate reply, `None` means dropped or forwarded.
    fn answer(
        &mut self,
        network: &str,
        peer: SocketAddr,
        query: &[u8],
        transport: Transport,
        client: Client,
        now: Instant,
    ) -> Option<Vec<u8>> {
        let Some(table) = self.tables.iter_mut().find(|t| t.name == network) else {
            return Some(message::error_reply(query, RCODE::Refused)).filter(|r| !r.is_empty());
        };
        if !table.serves(peer.ip()) {
            tracing::debug!(%peer, network, "query from outside the network refused");
            return Some(message::error_reply(query, RCODE::Refused)).filter(|r| !r.is_empty());
        }
        let own_upstreams = table.upstreams_of(peer.ip()).map(<[SocketAddr]>::to_vec);
        match message::handle(query, transport, table) {
            Outcome::Reply(reply) => Some(reply),
            Outcome::Drop => None,
            Outcome::Forward => {
                if self.forwards.len() >= MAX_FORWARDS {
                    return Some(message::error_reply(query, RCODE::ServerFailure));
                }
                if now.duration_since(self.upstreams_read) >= UPSTREAM_REFRESH {
                    self.refresh_upstreams(now);
                }
                let tcp = transport == Transport::Tcp;
                let upstreams = own_upstreams.as_deref().unwrap_or(&self.upstreams);
                match Forward::start(client, query, upstreams, tcp, now) {
                    Ok(forward) => {
                        self.forwards.push(forward);
                        None
                    }
                    Err(_) => Some(message::error_reply(query, RCODE::ServerFailure)),
                }
            }
        }
    }

    fn send_udp(&self, listener: SocketAddr, peer: SocketAddr, reply: &[u8]) {
        if let Some(l) = self.udp.iter().find(|l| l.addr == listener) {
            if let Err(e) = l.sock.send_to(reply, peer) {
                tracing::debug!(%peer, "send failed: {e}");
            }
        }
    }

    fn accept_tcp(&mut self, index: usize, now: Instant) {
        let Some(listener) = self.tcp.get(index) else {
            return;
        };
        loop {
            let (stream, peer) = match listener.sock.accept() {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!(addr = %listener.addr, "accept failed: {e}");
                    return;
                }
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            if self.clients.len() >= MAX_TCP_CLIENTS {
                self.clients.remove(0);
            }
            self.next_client_id += 1;
            self.clients.push(TcpClient {
                id: self.next_client_id,
                stream,
                network: listener.network.clone(),
                peer,
                buf: Vec::new(),
                idle_deadline: now + TCP_IDLE,
            });
        }
    }

    /// Reads from a TCP client and handles every complete query; `false` closes it.
    fn read_client(&mut self, index: usize, now: Instant) -> bool {
        let mut chunk = [0u8; 4096];
        let client = &mut self.clients[index];
        match client.stream.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => client.buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
        client.idle_deadline = now + TCP_IDLE;
        loop {
            let client = &mut self.clients[index];
            if client.buf.len() < 2 {
                return true;
            }
            let len = usize::from(u16::from_be_bytes([client.buf[0], client.buf[1]]));
            if client.buf.len() < 2 + len {
                return true;
            }
            let query: Vec<u8> = client.buf.drain(..2 + len).skip(2).collect();
            let (id, network, peer) = (client.id, client.network.clone(), client.peer);
            let who = Client::Tcp { conn: id };
            if let Some(reply) = self.answer(&network, peer, &query, Transport::Tcp, who, now) {
                if !write_framed(&mut self.clients[index].stream, &reply) {
                    return false;
                }
            }
        }
    }

    /// Delivers finished forwards to their clients and drops them.
    fn finish_forwards(&mut self, mut finished: Vec<(usize, Step)>) {
        finished.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
        for (i, step) in finished {
            let forward = self.forwards.swap_remove(i);
            let reply = match step {
                Step::Answer(answer) => answer,
                Step::Failed => message::error_reply(forward.query(), RCODE::ServerFailure),
                Step::Pending => continue,
            };
            self.deliver(forward.client, &reply);
        }
    }

    fn deliver(&mut self, client: Client, reply: &[u8]) {
        if reply.is_empty() {
            return;
        }
        match client {
            Client::Udp { listener, peer } => self.send_udp(listener, peer, reply),
            Client::Tcp { conn } => {
                if let Some(c) = self.clients.iter_mut().find(|c| c.id == conn) {
                    if !write_framed(&mut c.stream, reply) {
                        self.clients.retain(|c| c.id != conn);
                    }
                }
            }
        }
    }

    /// Timeouts: upstream attempts, idle TCP clients, listeners to bind again.
    fn expire(&mut self, now: Instant) {
        let mut finished = Vec::new();
        for (i, forward) in self.forwards.iter_mut().enumerate() {
            if forward.deadline() <= now {
                let step = forward.on_timeout(now);
                if step != Step::Pending {
                    finished.push((i, step));
                }
            }
        }
        self.finish_forwards(finished);
        self.clients.retain(|c| c.idle_deadline > now);
        if self.rebind_at.is_some_and(|at| at <= now) {
            self.bind_listeners();
        }
    }

    /// Control connections: a request line, an answer line each.
    fn serve_control(&mut self) {
        loop {
            let stream = match self.control.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!("control accept failed: {e}");
                    return;
                }
            };
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let mut line = String::new();
            if BufReader::new(&stream).read_line(&mut line).is_err() {
                continue;
            }
            match Request::parse(&line) {
                Some(Request::Reload) => {
                    // Keep serving what we have when the records cannot be read right now; the
                    // next reload tries again.
                    if let Err(e) = self.reload() {
                        tracing::warn!("reloading DNS records: {e}");
                    }
                }
                Some(Request::Stop) => self.exiting = true,
                Some(Request::Status) => {}
                None => {
                    let _ = (&stream).write_all(b"error unknown request\n");
                    continue;
                }
            }
            let status = Status {
                pid: std::process::id(),
                networks: self.tables.len(),
                exiting: self.exiting,
            };
            let _ = (&stream).write_all(status.render().as_bytes());
            if self.exiting {
                return;
            }
        }
    }

    /// Re-reads every record file and the listeners they need; decides to exit when none is left.
    fn reload(&mut self) -> Result<()> {
        let (records, bad) = store::load_all(&self.layout)?;
        for e in bad {
            tracing::warn!("{e}");
        }
        let tables = records
            .iter()
            .map(|r| {
                let previous = self.tables.iter().find(|t| t.name == r.network);
                NetTable::build(r, previous)
            })
            .collect();
        self.tables = tables;
        let port = self.options.port;
        let wanted: Vec<(SocketAddr, String)> = self
            .tables
            .iter()
            .flat_map(|t| {
                t.subnets
                    .iter()
                    .map(move |s| (SocketAddr::new(s.gateway, port), t.name.clone()))
            })
            .collect();
        let keep = |addr: &SocketAddr| wanted.iter().any(|(a, _)| a == addr);
        self.udp.retain(|l| keep(&l.addr));
        self.tcp.retain(|l| keep(&l.addr));
        for (addr, network) in &wanted {
            for l in self.udp.iter_mut().filter(|l| l.addr == *addr) {
                l.network.clone_from(network);
            }
            for l in self.tcp.iter_mut().filter(|l| l.addr == *addr) {
                l.network.clone_from(network);
            }
        }
        let tables = &self.tables;
        self.clients
            .retain(|c| tables.iter().any(|t| t.name == c.network));
        self.bind_listeners();
        self.refresh_upstreams(Instant::now());
        if self.tables.is_empty() {
            self.exiting = true;
        }
        tracing::debug!(networks = self.tables.len(), "records loaded");
        Ok(())
    }

    /// Binds every wanted listener not bound yet; failures are retried later.
    fn bind_listeners(&mut self) {
        let port = self.options.port;
        let mut failed = false;
        let wanted: Vec<(SocketAddr, String)> = self
            .tables
            .iter()
            .flat_map(|t| {
                t.subnets
                    .iter()
                    .map(move |s| (SocketAddr::new(s.gateway, port), t.name.clone()))
            })
            .collect();
        for (addr, network) in wanted {
            if !self.udp.iter().any(|l| l.addr == addr) {
                match sockets::bind_udp(addr) {
                    Ok(sock) => self.udp.push(Listener {
                        addr,
                        network: network.clone(),
                        sock,
                    }),
                    Err(source) => {
                        failed = true;
                        tracing::warn!("{}", DnsError::Listen { addr, source });
                    }
                }
            }
            if !self.tcp.iter().any(|l| l.addr == addr) {
                match sockets::bind_tcp(addr) {
                    Ok(sock) => self.tcp.push(Listener {
                        addr,
                        network,
                        sock,
                    }),
                    Err(source) => {
                        failed = true;
                        tracing::warn!("{}", DnsError::Listen { addr, source });
                    }
                }
            }
        }
        self.rebind_at = failed.then(|| Instant::now() + REBIND_EVERY);
    }

    fn refresh_upstreams(&mut self, now: Instant) {
        self.upstreams = if self.options.upstreams.is_empty() {
            host_upstreams(
                &self.options.host_resolv_conf,
                &self.options.systemd_resolv_conf,
            )
        } else {
            self.options.upstreams.clone()
        };
        // Like libc, no more than three.
        self.upstreams.truncate(3);
        self.upstreams_read = now;
    }
}

/// Writes one length-prefixed message to a TCP client (briefly blocking: answers are small and the
/// socket buffer empty in practice). `false` when the client is gone.
fn write_framed(stream: &mut TcpStream, message: &[u8]) -> bool {
    let Ok(len) = u16::try_from(message.len()) else {
        return false;
    };
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    let ok = stream.set_nonblocking(false).is_ok()
        && stream
            .set_write_timeout(Some(Duration::from_secs(1)))
            .is_ok()
        && stream.write_all(&framed).is_ok();
    ok && stream.set_nonblocking(true).is_ok()
}
