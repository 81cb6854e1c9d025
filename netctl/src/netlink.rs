//! Blocking rtnetlink over one plain `NETLINK_ROUTE` socket, and the [`NetOps`] seam.
//!
//! Everything the network manager does to the kernel goes through the [`NetOps`] trait, so the
//! planning and rollback logic in `manager` is unit-tested with a fake that needs no root.
//! [`LinuxNetOps`] is the real implementation: one request, one ACK, no async runtime (see
//! `docs/networking.md` for the measurement that chose this over the `rtnetlink` crate).

use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// Errors of the netlink layer and of the other kernel knobs behind [`NetOps`].
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// Socket-level failure (open, send, receive).
    #[error("netlink socket: {op}")]
    Socket {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// The kernel refused a request.
    #[error("{op}: {source}")]
    Kernel {
        op: String,
        #[source]
        source: io::Error,
    },
    /// A reply that does not parse.
    #[error("netlink: cannot decode the kernel's reply: {0}")]
    Decode(String),
    /// Entering a network namespace.
    #[error("entering network namespace {}", path.display())]
    Netns {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Writing a sysctl under /proc/sys.
    #[error("setting sysctl {key}")]
    Sysctl {
        key: String,
        #[source]
        source: io::Error,
    },
    /// Running `nft`.
    #[error("nft: {0}")]
    Nft(String),
}

impl NetlinkError {
    /// The kernel's errno, when the kernel refused the request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// ENODEV / ENOENT / ESRCH: the object is not there.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(libc::ENODEV) | Some(libc::ENOENT) | Some(libc::ESRCH)
        )
    }
}

type Result<T, E = NetlinkError> = std::result::Result<T, E>;

/// A blocking rtnetlink connection bound to the network namespace it was opened in.
pub struct Handle {
    sock: Socket,
    seq: u32,
}

impl Handle {
    /// Opens a socket in the calling thread's network namespace.
    pub fn new() -> Result<Self> {
        let mut sock = Socket::new(NETLINK_ROUTE)
            .map_err(|source| NetlinkError::Socket { op: "open", source })?;
        sock.bind_auto()
            .map_err(|source| NetlinkError::Socket { op: "bind", source })?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|source| NetlinkError::Socket {
                op: "connect",
                source,
            })?;
        // Without ext-ack the kernel still reports errno; the flag only adds text we don't show.
        Ok(Handle { sock, seq: 0 })
    }

    /// Opens a socket inside the network namespace bind-mounted at `path`.
    ///
    /// A netlink socket stays bound to the namespace it was created in, so we create it on a
    /// short-lived thread that `setns`es first: the calling thread never changes namespace, and
    /// there is nothing to switch back (which could fail and leave the thread in the container).
    pub fn in_netns(path: &Path) -> Result<Self> {
        let ns = File::open(path).map_err(|source| NetlinkError::Netns {
            path: path.to_path_buf(),
            source,
        })?;
        let owned = path.to_path_buf();
        std::thread::scope(|s| {
            s.spawn(move || {
                // SAFETY: setns with a valid, open namespace fd only changes this (scoped,
                // soon-ending) thread's network namespace; CLONE_NEWNET checks the fd type.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                if rc != 0 {
                    return Err(NetlinkError::Netns {
                        path: owned,
                        source: io::Error::last_os_error(),
                    });
                }
                Handle::new()
            })
            .join()
            .unwrap_or_else(|_| {
                Err(NetlinkError::Decode(
                    "netns helper thread panicked".to_string(),
                ))
            })
        })
    }

    /// Sends one request and collects the replies until the ACK (or DONE for dumps).
    pub fn request(
        &mut self,
        op: impl Fn() -> String,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.sock
            .send(&buf, 0)
            .map_err(|source| NetlinkError::Socket { op: "send", source })?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut out = Vec::new();
        loop {
            let (data, _) = self
                .sock
                .recv_from_full()
                .map_err(|source| NetlinkError::Socket {
                    op: "receive",
                    source,
                })?;
            let mut off = 0usize;
            while off < data.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..])
                    .map_err(|e| NetlinkError::Decode(e.to_string()))?;
                let len = reply.header.length as usize;
                if len == 0 {
                    return Err(NetlinkError::Decode("zero-length message".to_string()));
                }
                off += (len + 3) & !3;
                if reply.header.sequence_number != self.seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(e) => {
                        if e.code.is_some() {
                            return Err(NetlinkError::Kernel {
                                op: op(),
                                source: e.to_io(),
                            });
                        }
                        return Ok(out);
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(m) => {
                        out.push(m);
                        if !dump && flags & NLM_F_ACK == 0 {
                            return Ok(out);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// The index of the link called `name`, if any.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(
            || format!("looking up link {name}"),
            RouteNetlinkMessage::GetLink(msg),
            0,
        ) {
            Ok(replies) => Ok(replies.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link of the namespace: (index, name, kind).
    pub fn links(&mut self) -> Result<Vec<LinkSummary>> {
        let replies = self.request(
            || "listing links".to_string(),
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(summarize(&l)),
                _ => None,
            })
            .collect())
    }

    /// Creates a bridge with a fixed MAC, returns its index.
    ///
    /// Kernel quirk: a bridge without an explicitly set address takes the lowest MAC of its ports
    /// and changes it as ports come and go, so every attach/detach could change the gateway's MAC
    /// under the containers' ARP caches (they then lose the gateway — egress, DNS — for seconds).
    /// Setting the address once pins it (docker does the same).
    pub fn add_bridge(&mut self, name: &str, mtu: u32, mac: [u8; 6]) -> Result<u32> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(
            || format!("creating bridge {name}"),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        self.link_index(name)?.ok_or_else(|| NetlinkError::Kernel {
            op: format!("creating bridge {name}"),
            source: io::Error::from_raw_os_error(libc::ENODEV),
        })
    }

    /// Sets a link administratively up.
    pub fn set_up(&mut self, index: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request(
            || format!("setting link {index} up"),
            RouteNetlinkMessage::SetLink(msg),
            NLM_F_ACK,
        )?;
        Ok(())
    }

    /// Takes a link off its bridge and down, by name; `Ok(false)` when it was not there.
    pub fn unplug(&mut self, name: &str) -> Result<bool> {
        let mut msg = LinkMessage::default();
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::Controller(0));
        match self.request(
            || format!("unplugging link {name}"),
            RouteNetlinkMessage::SetLink(msg),
            NLM_F_ACK,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The serialized `RTM_DELLINK` request for `name`, for a process that sends it later.
    pub fn del_link_message(name: &str) -> Vec<u8> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST;
        header.sequence_number = 1;
        let mut nl = NetlinkMessage::new(
            header,
            NetlinkPayload::from(RouteNetlinkMessage::DelLink(msg)),
        );
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        buf
    }

    /// Deletes a link by name; `Ok(false)` when it was not there.
    pub fn del_link(&mut self, name: &str) -> Result<bool> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(
            || format!("deleting link {name}"),
            RouteNetlinkMessage::DelLink(msg),
            NLM_F_ACK,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates a veth pair in one request: the host end `spec.host` on bridge `master`, up; the
    /// peer created directly inside the namespace `netns_fd` under its final name (`eth0`), with
    /// its MAC and MTU (down, see below). Creating the peer in place spares a move and a rename.
    pub fn add_veth(&mut self, spec: &VethSpec, netns_fd: i32) -> Result<()> {
        // Kernel quirk: the peer must NOT carry IFF_UP here. veth_newlink opens the peer before
        // the two devices are linked to each other, and veth_open then fails with ENOTCONN
        // ("Transport endpoint is not connected"). The peer is brought up from inside the
        // namespace in `configure_container`; the host end (configured after linking) can be up.
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(spec.peer.clone()));
        peer.attributes.push(LinkAttribute::Mtu(spec.mtu));
        peer.attributes
            .push(LinkAttribute::Address(spec.peer_mac.to_vec()));
        peer.attributes.push(LinkAttribute::NetNsFd(netns_fd));

        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes
            .push(LinkAttribute::IfName(spec.host.clone()));
        msg.attributes.push(LinkAttribute::Mtu(spec.mtu));
        msg.attributes.push(LinkAttribute::Controller(spec.master));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.request(
            || format!("creating veth {} (peer {})", spec.host, spec.peer),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Adds an address to a link. IPv6 addresses skip duplicate address detection (`nodad`):
    /// otherwise they stay "tentative" for ~2 s and cannot be used as a source meanwhile.
    pub fn add_addr(&mut self, index: u32, net: IpNet) -> Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.index = index;
        msg.header.prefix_len = net.prefix_len();
        msg.header.family = family(&net.addr());
        msg.attributes.push(AddressAttribute::Local(net.addr()));
        msg.attributes.push(AddressAttribute::Address(net.addr()));
        if let IpNet::V4(n) = net {
            if n.prefix_len() < 31 {
                msg.attributes
                    .push(AddressAttribute::Broadcast(n.broadcast()));
            }
        } else {
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match self.request(
            || format!("adding address {net} to link {index}"),
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Ok(_) => Ok(()),
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Adds a default route via `gateway`.
    pub fn add_default_route(&mut self, gateway: IpAddr) -> Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family(&gateway);
        msg.header.table = libc::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes.push(RouteAttribute::Gateway(match gateway {
            IpAddr::V4(a) => RouteAddress::Inet(a),
            IpAddr::V6(a) => RouteAddress::Inet6(a),
        }));
        self.request(
            || format!("adding default route via {gateway}"),
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Every IPv4 and IPv6 route destination (except default routes) and every address of this
    /// namespace, as networks: what a new subnet must not overlap.
    pub fn used_networks(&mut self) -> Result<Vec<IpNet>> {
        let mut nets = Vec::new();
        for fam in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut msg = RouteMessage::default();
            msg.header.address_family = fam;
            let replies = self.request(
                || "listing routes".to_string(),
                RouteNetlinkMessage::GetRoute(msg),
                NLM_F_DUMP,
            )?;
            for r in replies {
                let RouteNetlinkMessage::NewRoute(r) = r else {
                    continue;
                };
                if r.header.destination_prefix_length == 0 || r.header.kind != RouteType::Unicast {
                    continue;
                }
                for a in &r.attributes {
                    if let RouteAttribute::Destination(d) = a {
                        let ip = match d {
                            RouteAddress::Inet(a) => IpAddr::V4(*a),
                            RouteAddress::Inet6(a) => IpAddr::V6(*a),
                            _ => continue,
                        };
                        if let Ok(n) = IpNet::new(ip, r.header.destination_prefix_length) {
                            nets.push(n.trunc());
                        }
                    }
                }
            }
        }
        let replies = self.request(
            || "listing addresses".to_string(),
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
        )?;
        for r in replies {
            let RouteNetlinkMessage::NewAddress(a) = r else {
                continue;
            };
            for attr in &a.attributes {
                if let AddressAttribute::Address(ip) = attr {
                    if let Ok(n) = IpNet::new(*ip, a.header.prefix_len) {
                        nets.push(n.trunc());
                    }
                }
            }
        }
        Ok(nets)
    }
}

fn family(ip: &IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn summarize(l: &LinkMessage) -> LinkSummary {
    let mut s = LinkSummary {
        index: l.header.index,
        name: String::new(),
        kind: None,
        master: None,
    };
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => s.name = n.clone(),
            LinkAttribute::Controller(m) => s.master = Some(*m),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        s.kind = Some(match k {
                            InfoKind::Bridge => "bridge".to_string(),
                            InfoKind::Veth => "veth".to_string(),
                            other => format!("{other:?}").to_lowercase(),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    s
}

/// What `links()` reports about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSummary {
    pub index: u32,
    pub name: String,
    pub kind: Option<String>,
    pub master: Option<u32>,
}

/// One veth pair to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethSpec {
    /// Host end name (`rcRRRRv…`).
    pub host: String,
    /// Peer name inside the container (`eth0`).
    pub peer: String,
    /// Bridge index the host end is enslaved to.
    pub master: u32,
    /// MTU of both ends (the bridge's).
    pub mtu: u32,
    /// MAC of the container end.
    pub peer_mac: [u8; 6],
}

/// How the container end is configured once it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerIfConfig {
    pub ifname: String,
    pub addresses: Vec<IpNet>,
    /// Default routes to add (one per address family at most).
    pub default_routes: Vec<IpAddr>,
}

/// The kernel operations the manager needs: the seam that keeps the manager unit-testable.
pub trait NetOps {
    /// Index of a host link by name.
    fn link_index(&mut self, name: &str) -> Result<Option<u32>>;
    /// All host links.
    fn links(&mut self) -> Result<Vec<LinkSummary>>;
    /// Creates a bridge with its addresses and brings it up; returns its index.
    fn create_bridge(&mut self, name: &str, mtu: u32, addresses: &[IpNet]) -> Result<u32>;
    /// Deletes a host link; `Ok(false)` when it did not exist.
    fn delete_link(&mut self, name: &str) -> Result<bool>;
    /// Takes a host veth off its bridge and down at once, and deletes it (with its peer) in
    /// the background; `Ok(false)` when it did not exist.
    fn retire_link(&mut self, name: &str) -> Result<bool>;
    /// Creates the veth pair with the peer already inside `netns`.
    fn create_veth(&mut self, spec: &VethSpec, netns: &Path) -> Result<()>;
    /// Configures the container end (addresses, up, loopback up, default routes).
    fn configure_container(&mut self, netns: &Path, cfg: &ContainerIfConfig) -> Result<()>;
    /// Host routes and addresses (for IPAM).
    fn host_networks(&mut self) -> Result<Vec<IpNet>>;
    /// Writes `/proc/sys/<key>` (key with slashes, e.g. `net/ipv4/ip_forward`).
    fn sysctl(&mut self, key: &str, value: &str) -> Result<()>;
    /// Applies an nftables script atomically (`nft -f -`).
    fn nft(&mut self, script: &str) -> Result<()>;
}

/// The real [`NetOps`]: netlink for links, addresses and routes; /proc/sys; `nft -f -`.
pub struct LinuxNetOps {
    host: Option<Handle>,
}

impl LinuxNetOps {
    pub fn new() -> Self {
        LinuxNetOps { host: None }
    }

    fn host(&mut self) -> Result<&mut Handle> {
        if self.host.is_none() {
            self.host = Some(Handle::new()?);
        }
        self.host
            .as_mut()
            .ok_or_else(|| NetlinkError::Decode("no netlink handle".to_string()))
    }
}

impl Default for LinuxNetOps {
    fn default() -> Self {
        Self::new()
    }
}

impl NetOps for LinuxNetOps {
    fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        self.host()?.link_index(name)
    }

    fn links(&mut self) -> Result<Vec<LinkSummary>> {
        self.host()?.links()
    }

    fn create_bridge(&mut self, name: &str, mtu: u32, addresses: &[IpNet]) -> Result<u32> {
        let h = self.host()?;
        let index = h.add_bridge(name, mtu, crate::names::mac_for(None, name))?;
        let rest = (|| {
            for a in addresses {
                h.add_addr(index, *a)?;
            }
            h.set_up(index)
        })();
        if let Err(e) = rest {
            let _ = h.del_link(name);
            return Err(e);
        }
        Ok(index)
    }

    fn delete_link(&mut self, name: &str) -> Result<bool> {
        self.host()?.del_link(name)
    }

    /// Deleting a veth pair takes ~20 ms of the kernel's (its unregister waits for RCU grace
    /// periods and callbacks under the RTNL lock), while unplugging it from the bridge is one
    /// short request. After the unplug the container's end reaches nothing, its address can be
    /// handed out again, and nobody waits for the delete: a detached process sends it. Should
    /// that process never run, the link is an unowned one of ours that `prune` removes, and an
    /// attach that meets its name deletes it first.
    fn retire_link(&mut self, name: &str) -> Result<bool> {
        if !self.host()?.unplug(name)? {
            return Ok(false);
        }
        send_detached(&Handle::del_link_message(name));
        Ok(true)
    }

    fn create_veth(&mut self, spec: &VethSpec, netns: &Path) -> Result<()> {
        let ns = File::open(netns).map_err(|source| NetlinkError::Netns {
            path: netns.to_path_buf(),
            source,
        })?;
        self.host()?.add_veth(spec, ns.as_raw_fd())
    }

    fn configure_container(&mut self, netns: &Path, cfg: &ContainerIfConfig) -> Result<()> {
        let mut h = Handle::in_netns(netns)?;
        let index = h
            .link_index(&cfg.ifname)?
            .ok_or_else(|| NetlinkError::Kernel {
                op: format!("finding {} in {}", cfg.ifname, netns.display()),
                source: io::Error::from_raw_os_error(libc::ENODEV),
            })?;
        for a in &cfg.addresses {
            h.add_addr(index, *a)?;
        }
        h.set_up(index)?;
        // The loopback device of a fresh namespace is always index 1 and starts down.
        h.set_up(1)?;
        for gw in &cfg.default_routes {
            h.add_default_route(*gw)?;
        }
        Ok(())
    }

    fn host_networks(&mut self) -> Result<Vec<IpNet>> {
        self.host()?.used_networks()
    }

    fn sysctl(&mut self, key: &str, value: &str) -> Result<()> {
        let path = Path::new("/proc/sys").join(key);
        if let Ok(cur) = std::fs::read_to_string(&path) {
            if cur.trim() == value {
                return Ok(());
            }
        }
        std::fs::write(&path, value).map_err(|source| NetlinkError::Sysctl {
            key: key.to_string(),
            source,
        })
    }

    fn nft(&mut self, script: &str) -> Result<()> {
        crate::firewall::run_nft(script).map_err(|e| NetlinkError::Nft(e.to_string()))
    }
}

/// Sends one netlink request from a detached grandchild process, which exits once the kernel
/// has handled it (netlink requests run in the sender's context). Nothing is reported back.
fn send_detached(message: &[u8]) {
    // SAFETY: between fork and _exit the children make only async-signal-safe calls (fork,
    // close_range/close, socket, sendto, _exit) on memory prepared before the fork, so this is sound even in a
    // multi-threaded caller. The intermediate child is reaped below; the grandchild belongs
    // to init.
    unsafe {
        let child = libc::fork();
        if child == 0 {
            if libc::fork() == 0 {
                // Inherited descriptors would keep the caller's flocks (the network store lock)
                // held until this process is done: close them all first.
                if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
                    for fd in 3..1024 {
                        libc::close(fd);
                    }
                }
                let fd = libc::socket(
                    libc::AF_NETLINK,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    libc::NETLINK_ROUTE,
                );
                if fd >= 0 {
                    let mut addr: libc::sockaddr_nl = std::mem::zeroed();
                    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
                    libc::sendto(
                        fd,
                        message.as_ptr().cast(),
                        message.len(),
                        0,
                        (&addr as *const libc::sockaddr_nl).cast(),
                        std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                    );
                }
            }
            libc::_exit(0);
        }
        if child > 0 {
            let mut status = 0;
            libc::waitpid(child, &mut status, 0);
        }
    }
}
