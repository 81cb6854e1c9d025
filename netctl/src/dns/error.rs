//! The one error type of the service DNS module.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Everything the DNS record store, the registry API and the resolver process can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// A network name that cannot name a record file.
    #[error("invalid network name {0:?}: use letters, digits, '_', '-' and '.', not starting with '.' or '-'")]
    InvalidNetworkName(String),
    /// A name handed to `add_endpoint` that is not a DNS name.
    #[error("{0:?} is not a valid DNS name (letters, digits, '-', '_', dots; labels of at most 63 characters)")]
    InvalidName(String),
    /// `add_endpoint` on a network that `set_network` never registered.
    #[error("network {0:?} has no DNS records (set_network was not called for it)")]
    UnknownNetwork(String),
    /// `set_dns_servers` for a container that is not on the network.
    #[error("container {container_id:?} is not on network {network:?}")]
    UnknownEndpoint {
        network: String,
        container_id: String,
    },
    /// A network registered without any subnet: nothing to listen on.
    #[error("network {0:?} has no subnet with a gateway address")]
    NoSubnet(String),
    /// A gateway outside its own subnet.
    #[error("gateway {gateway} of network {network:?} is outside its subnet {subnet}")]
    GatewayOutsideSubnet {
        network: String,
        gateway: IpAddr,
        subnet: ipnet::IpNet,
    },
    /// Filesystem work on the DNS state directory.
    #[error("{action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A record file that does not parse.
    #[error("DNS record file {} is not valid", path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Talking to a running resolver over its control socket.
    #[error("DNS resolver control socket {}: {reason}", path.display())]
    Control { path: PathBuf, reason: String },
    /// The resolver process could not be started.
    #[error("could not start the DNS resolver {}", binary.display())]
    Spawn {
        binary: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The resolver was started but never answered on its control socket.
    #[error("the DNS resolver did not become ready within {waited:?}; its log is {}", log.display())]
    NotReady { waited: Duration, log: PathBuf },
    /// Another resolver holds the state directory and did not let go.
    #[error("another DNS resolver holds {} and did not exit", path.display())]
    Busy { path: PathBuf },
    /// A listening socket of the resolver.
    #[error("DNS listener {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// The resolver's event loop failed in a way it cannot go on from.
    #[error("DNS resolver event loop")]
    Poll(#[source] io::Error),
}

/// Shorthand used across the module.
pub type Result<T, E = DnsError> = std::result::Result<T, E>;

impl DnsError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        DnsError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
