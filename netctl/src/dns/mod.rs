//! Service DNS: a small resolver process, like Podman's aardvark-dns, that answers A / AAAA (and
//! PTR) for container names, service names, hostnames and aliases on each network's gateway
//! address, only to clients of that network, and forwards every other name to the host's
//! resolvers.
//!
//! - [`Registry`] is the API of the network core: `set_network`, `add_endpoint`,
//!   `remove_endpoint`, `remove_network`, `ensure_running`, `stop_if_idle`, `resolv_conf`.
//! - The records live in one JSON file per network under `<root>/dns/records/` (`store`), written
//!   atomically; a running resolver reloads them when told over its control socket (`control`),
//!   and answers only once the new records are live.
//! - The resolver (`server`, run as `rcompose __dns --root …`) is a single thread around
//!   `poll(2)`: gateway listeners (`sockets`), the answer logic (`message`, `table`), and queries
//!   in flight upstream (`forward`, upstreams from `resolvconf`).
//!
//! See docs/networking.md, "Service DNS".

mod control;
mod error;
mod forward;
mod hook;
mod message;
mod registry;
mod resolvconf;
mod server;
mod sockets;
mod store;
mod table;
mod trim;

pub use control::Status;
pub use error::{DnsError, Result};
pub use message::{handle as handle_query, Outcome, Transport, TTL};
pub use registry::{remove_state, Registry, SpawnOptions, SUBCOMMAND};
pub use resolvconf::{
    container_resolv_conf, host_upstreams, ResolvConf, HOST_RESOLV_CONF, SYSTEMD_RESOLV_CONF,
};
pub use server::{run, ServerOptions};
pub use store::{is_valid_name, Endpoint, Layout, NetSubnet, NetworkRecord};
pub use table::{NameEntry, NetTable};
