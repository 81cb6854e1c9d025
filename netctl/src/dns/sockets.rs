//! Socket set-up for the resolver: listeners on gateway addresses (with `IP_FREEBIND`, so the
//! resolver may bind before the bridge carries the address) and non-blocking upstream sockets.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};

use rustix::net::{sockopt, AddressFamily, SocketFlags, SocketType};

fn family(addr: &SocketAddr) -> AddressFamily {
    match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    }
}

fn freebind(fd: &rustix::fd::OwnedFd, addr: &SocketAddr) -> io::Result<()> {
    match addr {
        SocketAddr::V4(_) => sockopt::set_ip_freebind(fd, true)?,
        SocketAddr::V6(_) => {
            sockopt::set_ipv6_v6only(fd, true)?;
            sockopt::set_ipv6_freebind(fd, true)?;
        }
    }
    Ok(())
}

const FLAGS: SocketFlags = SocketFlags::CLOEXEC.union(SocketFlags::NONBLOCK);

/// A non-blocking UDP socket bound to `addr`, which need not exist yet.
pub fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let fd = rustix::net::socket_with(family(&addr), SocketType::DGRAM, FLAGS, None)?;
    freebind(&fd, &addr)?;
    rustix::net::bind(&fd, &addr)?;
    Ok(UdpSocket::from(fd))
}

/// A non-blocking TCP listener on `addr`, which need not exist yet.
pub fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let fd = rustix::net::socket_with(family(&addr), SocketType::STREAM, FLAGS, None)?;
    freebind(&fd, &addr)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    rustix::net::bind(&fd, &addr)?;
    rustix::net::listen(&fd, 64)?;
    Ok(TcpListener::from(fd))
}

/// A non-blocking UDP socket connected to an upstream resolver (a fresh one per query: the kernel
/// picks a random source port, and the connection filters replies from anyone else).
pub fn connect_udp(upstream: SocketAddr) -> io::Result<UdpSocket> {
    let fd = rustix::net::socket_with(family(&upstream), SocketType::DGRAM, FLAGS, None)?;
    rustix::net::connect(&fd, &upstream)?;
    Ok(UdpSocket::from(fd))
}

/// Starts a non-blocking TCP connection to an upstream resolver; writable once connected.
pub fn connect_tcp(upstream: SocketAddr) -> io::Result<TcpStream> {
    let fd = rustix::net::socket_with(family(&upstream), SocketType::STREAM, FLAGS, None)?;
    match rustix::net::connect(&fd, &upstream) {
        Ok(()) | Err(rustix::io::Errno::INPROGRESS) => Ok(TcpStream::from(fd)),
        Err(e) => Err(e.into()),
    }
}

/// The outcome of a non-blocking connect, once the socket turned writable.
pub fn connect_result(stream: &TcpStream) -> io::Result<()> {
    match sockopt::socket_error(stream)? {
        Ok(()) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
