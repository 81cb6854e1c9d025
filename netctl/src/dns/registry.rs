//! The API the network core calls: register networks and endpoints, start the resolver when a
//! network needs it, and let it go when none does.
//!
//! Every mutation rewrites one record file under a lock and then tells a running resolver to
//! reload; the reload is answered only once the new records are live, so when a call returns the
//! names resolve. With no resolver running, the files wait for the next `ensure_running`.

use std::fs::{self, File, OpenOptions};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};

use super::control::{self, Request, Status};
use super::error::{DnsError, Result};
use super::resolvconf::{container_resolv_conf, ResolvConf, HOST_RESOLV_CONF};
use super::store::{self, Endpoint, Layout, NetSubnet, NetworkRecord};

/// Name of the hidden subcommand that runs the resolver (`rcompose __dns --root …`).
pub const SUBCOMMAND: &str = "__dns";

/// How a spawned resolver is configured.
#[derive(Debug, Clone)]
pub struct SpawnOptions {
    /// Port on every gateway address (53 in production).
    pub port: u16,
    /// Forward unknown names here instead of the host's resolvers (tests use a fake upstream).
    pub upstreams: Vec<SocketAddr>,
    /// How long to wait for the new resolver to answer on its control socket.
    pub ready_timeout: Duration,
}

impl Default for SpawnOptions {
    fn default() -> Self {
        SpawnOptions {
            port: 53,
            upstreams: Vec::new(),
            ready_timeout: Duration::from_secs(5),
        }
    }
}

/// Handle on the DNS state of one state root.
#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
    layout: Layout,
    /// What the `DnsRecords` hook starts when a network needs a resolver.
    resolver: Option<(PathBuf, SpawnOptions)>,
}

/// Holds the record-writers' lock until dropped.
struct WriteLock {
    _file: File,
}

impl Registry {
    /// Opens (creating) `<root>/dns`.
    pub fn open(root: &Path) -> Result<Self> {
        let root =
            std::path::absolute(root).map_err(|e| DnsError::io("resolving state root", root, e))?;
        let layout = Layout::new(&root);
        layout.create()?;
        Ok(Registry {
            root,
            layout,
            resolver: None,
        })
    }

    /// Lets the registry start the resolver by itself when used as the network core's DNS hook
    /// (`NetworkManager::set_dns`): `binary` is the `rcompose` executable
    /// (`std::env::current_exe()`).
    pub fn with_resolver(self, binary: PathBuf) -> Self {
        self.with_resolver_options(binary, SpawnOptions::default())
    }

    /// `with_resolver` with explicit spawn options.
    pub fn with_resolver_options(mut self, binary: PathBuf, options: SpawnOptions) -> Self {
        self.resolver = Some((binary, options));
        self
    }

    /// The binary and options set by `with_resolver`.
    pub fn resolver(&self) -> Option<(&Path, &SpawnOptions)> {
        self.resolver.as_ref().map(|(b, o)| (b.as_path(), o))
    }

    /// Paths of the DNS state.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Registers a network (or updates its subnets, keeping its endpoints). The resolver listens on
    /// every gateway and answers clients inside the subnets. Call `ensure_running` after it.
    pub fn set_network(&self, name: &str, subnets: &[NetSubnet]) -> Result<()> {
        store::check_network_name(name)?;
        if subnets.is_empty() {
            return Err(DnsError::NoSubnet(name.to_owned()));
        }
        for s in subnets {
            if !s.subnet.contains(&s.gateway) {
                return Err(DnsError::GatewayOutsideSubnet {
                    network: name.to_owned(),
                    gateway: s.gateway,
                    subnet: s.subnet,
                });
            }
        }
        {
            let _lock = self.lock()?;
            let mut record = store::read_record(&self.layout, name)?.unwrap_or(NetworkRecord {
                network: name.to_owned(),
                subnets: Vec::new(),
                endpoints: Vec::new(),
            });
            if record.subnets == subnets {
                return Ok(());
            }
            record.subnets = subnets.to_vec();
            store::write_record(&self.layout, &record)?;
        }
        self.notify()
    }

    /// Adds (or replaces) a container's names and addresses on a network. `names` are the
    /// container name, service name, hostname and aliases — duplicates and case do not matter; a
    /// name shared by several containers (a scaled service) resolves to all of them.
    pub fn add_endpoint<S: AsRef<str>>(
        &self,
        network: &str,
        container_id: &str,
        names: &[S],
        ips: &[IpAddr],
    ) -> Result<()> {
        store::check_network_name(network)?;
        let mut normalized: Vec<String> = Vec::with_capacity(names.len());
        for name in names {
            let name = store::normalize_name(name.as_ref())?;
            if !normalized.contains(&name) {
                normalized.push(name);
            }
        }
        {
            let _lock = self.lock()?;
            let mut record = store::read_record(&self.layout, network)?
                .ok_or_else(|| DnsError::UnknownNetwork(network.to_owned()))?;
            let existing = record.endpoints.iter().find(|e| e.id == container_id);
            let endpoint = Endpoint {
                id: container_id.to_owned(),
                names: normalized,
                ips: ips.to_vec(),
                dns_servers: existing.map(|e| e.dns_servers.clone()).unwrap_or_default(),
            };
            match record.endpoints.iter_mut().find(|e| e.id == container_id) {
                Some(existing) if *existing == endpoint => return Ok(()),
                Some(existing) => *existing = endpoint,
                None => record.endpoints.push(endpoint),
            }
            store::write_record(&self.layout, &record)?;
        }
        self.notify()
    }

    /// Sets a container's own upstream servers (the service's `dns:`): names the resolver does not
    /// know, asked by this container, are forwarded there instead of to the host's resolvers.
    /// Loopback servers are ignored there (the resolver cannot reach the container's loopback).
    /// An empty list goes back to the host's resolvers.
    pub fn set_dns_servers(
        &self,
        network: &str,
        container_id: &str,
        servers: &[IpAddr],
    ) -> Result<()> {
        store::check_network_name(network)?;
        {
            let _lock = self.lock()?;
            let mut record = store::read_record(&self.layout, network)?
                .ok_or_else(|| DnsError::UnknownNetwork(network.to_owned()))?;
            let endpoint = record
                .endpoints
                .iter_mut()
                .find(|e| e.id == container_id)
                .ok_or_else(|| DnsError::UnknownEndpoint {
                    network: network.to_owned(),
                    container_id: container_id.to_owned(),
                })?;
            if endpoint.dns_servers == servers {
                return Ok(());
            }
            endpoint.dns_servers = servers.to_vec();
            store::write_record(&self.layout, &record)?;
        }
        self.notify()
    }

    /// Removes a container from a network's records; `false` when it was not there.
    pub fn remove_endpoint(&self, network: &str, container_id: &str) -> Result<bool> {
        store::check_network_name(network)?;
        {
            let _lock = self.lock()?;
            let Some(mut record) = store::read_record(&self.layout, network)? else {
                return Ok(false);
            };
            let before = record.endpoints.len();
            record.endpoints.retain(|e| e.id != container_id);
            if record.endpoints.len() == before {
                return Ok(false);
            }
            store::write_record(&self.layout, &record)?;
        }
        self.notify()?;
        Ok(true)
    }

    /// Removes a network's records. The resolver stops listening there, and exits when it was the
    /// last network. `false` when there was nothing to remove.
    pub fn remove_network(&self, name: &str) -> Result<bool> {
        store::check_network_name(name)?;
        let removed = {
            let _lock = self.lock()?;
            store::remove_record(&self.layout, name)?
        };
        if removed {
            self.notify()?;
        }
        Ok(removed)
    }

    /// Removes the records of every network not in `keep` (leftovers of a crash, for prune);
    /// returns the names removed.
    pub fn retain_networks(&self, keep: &[&str]) -> Result<Vec<String>> {
        let removed = {
            let _lock = self.lock()?;
            let mut removed = Vec::new();
            for name in store::list_networks(&self.layout)? {
                if !keep.contains(&name.as_str()) && store::remove_record(&self.layout, &name)? {
                    removed.push(name);
                }
            }
            removed
        };
        if !removed.is_empty() {
            self.notify()?;
        }
        Ok(removed)
    }

    /// Networks with records.
    pub fn networks(&self) -> Result<Vec<String>> {
        store::list_networks(&self.layout)
    }

    /// One network's records.
    pub fn record(&self, network: &str) -> Result<Option<NetworkRecord>> {
        store::check_network_name(network)?;
        store::read_record(&self.layout, network)
    }

    /// The running resolver, if any.
    pub fn status(&self) -> Result<Option<Status>> {
        control::request(&self.layout.control_path(), Request::Status)
    }

    /// Starts the resolver (`<binary> __dns --root <root>`, detached) when a network needs it and
    /// none is running; returns the running one, or `None` when no network needs one.
    pub fn ensure_running(&self, binary: &Path) -> Result<Option<Status>> {
        self.ensure_running_with(binary, &SpawnOptions::default())
    }

    /// `ensure_running` with explicit options (port, upstreams).
    pub fn ensure_running_with(
        &self,
        binary: &Path,
        options: &SpawnOptions,
    ) -> Result<Option<Status>> {
        if self.networks()?.is_empty() {
            return Ok(None);
        }
        if let Some(status) = self.status()? {
            if !status.exiting {
                return Ok(Some(status));
            }
        }
        let exited = self.spawn(binary, options)?;
        let deadline = Instant::now() + options.ready_timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(status) = self.status()? {
                if !status.exiting {
                    return Ok(Some(status));
                }
            }
            let now = Instant::now();
            // Our child may have lost a start race to another resolver: keep asking until the
            // deadline, whoever answers.
            if now >= deadline {
                return Err(DnsError::NotReady {
                    waited: options.ready_timeout,
                    log: self.layout.log_path(),
                });
            }
            if exited.load(Ordering::Acquire) && self.networks()?.is_empty() {
                return Ok(None);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Stops the resolver if no network needs it; `true` when none is running afterwards.
    pub fn stop_if_idle(&self) -> Result<bool> {
        if !self.networks()?.is_empty() {
            return Ok(false);
        }
        // A reload with no record left makes the resolver exit.
        control::request(&self.layout.control_path(), Request::Reload)?;
        self.wait_stopped(Duration::from_secs(5))
    }

    /// Stops the resolver whatever the records say (prune, teardown after a crash).
    pub fn stop(&self) -> Result<bool> {
        control::request(&self.layout.control_path(), Request::Stop)?;
        self.wait_stopped(Duration::from_secs(5))
    }

    /// The resolv.conf for a container whose first network is `first_network`: nameserver(s) on
    /// that network's gateway, the host's search domains, `ndots:0`.
    pub fn resolv_conf(&self, first_network: &str) -> Result<ResolvConf> {
        let record = self
            .record(first_network)?
            .ok_or_else(|| DnsError::UnknownNetwork(first_network.to_owned()))?;
        let host = ResolvConf::read(Path::new(HOST_RESOLV_CONF));
        Ok(container_resolv_conf(&record.subnets, &host))
    }

    fn wait_stopped(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.status()?.is_none() {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Tells a running resolver to reload; fine when none runs.
    fn notify(&self) -> Result<()> {
        control::request(&self.layout.control_path(), Request::Reload).map(|_| ())
    }

    fn lock(&self) -> Result<WriteLock> {
        let path = self.layout.records_lock_path();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| DnsError::io("opening DNS records lock", &path, e))?;
        flock(&file, FlockOperation::LockExclusive)
            .map_err(|e| DnsError::io("locking DNS records", &path, e.into()))?;
        Ok(WriteLock { _file: file })
    }

    /// Starts the resolver detached (it makes itself a session leader; stdio away from the
    /// caller's terminal);
    /// a thread reaps it so a long-lived caller never keeps a zombie. The flag turns true when it
    /// has exited.
    fn spawn(&self, binary: &Path, options: &SpawnOptions) -> Result<Arc<AtomicBool>> {
        let log_path = self.layout.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| DnsError::io("opening DNS resolver log", &log_path, e))?;
        let mut cmd = Command::new(binary);
        cmd.arg(SUBCOMMAND)
            .arg("--root")
            .arg(&self.root)
            .arg("--port")
            .arg(options.port.to_string());
        for upstream in &options.upstreams {
            cmd.arg("--upstream").arg(upstream.to_string());
        }
        // Also in the environment, so tools that look for processes of a root find it.
        cmd.env("RCOMPOSE_ROOT", &self.root);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().map_err(|source| DnsError::Spawn {
            binary: binary.to_owned(),
            source,
        })?;
        tracing::debug!(pid = child.id(), "started DNS resolver");
        let exited = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&exited);
        let reaper = std::thread::Builder::new()
            .name("dns-reaper".into())
            .spawn(move || {
                let _ = child.wait();
                flag.store(true, Ordering::Release);
            });
        if let Err(e) = reaper {
            tracing::warn!("cannot start a thread to reap the DNS resolver: {e}");
        }
        Ok(exited)
    }
}

/// Removes the whole DNS state of a root (after `stop`): for tests and full teardown.
pub fn remove_state(root: &Path) -> Result<()> {
    let dir = Layout::new(root).dir().to_owned();
    match fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DnsError::io("removing DNS state", dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(gw: &str, net: &str) -> NetSubnet {
        NetSubnet {
            gateway: gw.parse().expect("lit"),
            subnet: net.parse().expect("lit"),
        }
    }

    #[test]
    fn endpoints_come_and_go_in_the_record_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reg = Registry::open(dir.path()).expect("open");
        let ip: IpAddr = "10.7.0.2".parse().expect("lit");
        assert!(matches!(
            reg.add_endpoint("n", "c1", &["web"], &[ip]),
            Err(DnsError::UnknownNetwork(_))
        ));
        reg.set_network("n", &[subnet("10.7.0.1", "10.7.0.0/24")])
            .expect("set");
        reg.add_endpoint("n", "c1", &["Web", "p-web-1", "web"], &[ip])
            .expect("add");
        let record = reg.record("n").expect("read").expect("exists");
        assert_eq!(record.endpoints[0].names, vec!["web", "p-web-1"]);
        // Re-adding replaces, never duplicates.
        reg.add_endpoint("n", "c1", &["web"], &[ip]).expect("add");
        // The service's own `dns:` servers survive a re-add.
        let servers: [IpAddr; 1] = ["192.0.2.53".parse().expect("lit")];
        reg.set_dns_servers("n", "c1", &servers)
            .expect("dns servers");
        reg.add_endpoint("n", "c1", &["web"], &[ip]).expect("add");
        assert_eq!(
            reg.record("n").expect("read").expect("exists").endpoints[0].dns_servers,
            servers
        );
        assert!(matches!(
            reg.set_dns_servers("n", "nobody", &servers),
            Err(DnsError::UnknownEndpoint { .. })
        ));
        assert_eq!(
            reg.record("n")
                .expect("read")
                .expect("exists")
                .endpoints
                .len(),
            1
        );
        // Updating the subnets keeps the endpoints.
        reg.set_network(
            "n",
            &[
                subnet("10.7.0.1", "10.7.0.0/24"),
                subnet("fd07::1", "fd07::/64"),
            ],
        )
        .expect("set");
        assert_eq!(
            reg.record("n")
                .expect("read")
                .expect("exists")
                .endpoints
                .len(),
            1
        );
        assert!(reg.remove_endpoint("n", "c1").expect("remove"));
        assert!(!reg.remove_endpoint("n", "c1").expect("remove"));
        assert_eq!(reg.networks().expect("list"), vec!["n".to_owned()]);
        reg.set_network("stale", &[subnet("10.8.0.1", "10.8.0.0/24")])
            .expect("set");
        assert_eq!(reg.retain_networks(&["n"]).expect("retain"), vec!["stale"]);
        assert!(reg.remove_network("n").expect("remove"));
        assert!(reg.networks().expect("list").is_empty());
        // Nothing running, nothing needed.
        assert_eq!(reg.status().expect("status"), None);
        assert!(reg.stop_if_idle().expect("idle"));
        assert_eq!(
            reg.ensure_running(Path::new("/nonexistent"))
                .expect("no network, no spawn"),
            None
        );
    }

    #[test]
    fn bad_input_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reg = Registry::open(dir.path()).expect("open");
        assert!(matches!(
            reg.set_network("../etc", &[subnet("10.7.0.1", "10.7.0.0/24")]),
            Err(DnsError::InvalidNetworkName(_))
        ));
        assert!(matches!(
            reg.set_network("n", &[]),
            Err(DnsError::NoSubnet(_))
        ));
        assert!(matches!(
            reg.set_network("n", &[subnet("10.8.0.1", "10.7.0.0/24")]),
            Err(DnsError::GatewayOutsideSubnet { .. })
        ));
        reg.set_network("n", &[subnet("10.7.0.1", "10.7.0.0/24")])
            .expect("set");
        assert!(matches!(
            reg.add_endpoint("n", "c", &["bad name"], &[]),
            Err(DnsError::InvalidName(_))
        ));
    }

    #[test]
    fn resolv_conf_points_at_the_first_network_gateway() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reg = Registry::open(dir.path()).expect("open");
        reg.set_network("n", &[subnet("10.7.0.1", "10.7.0.0/24")])
            .expect("set");
        let conf = reg.resolv_conf("n").expect("conf");
        assert_eq!(
            conf.nameservers,
            vec!["10.7.0.1".parse::<IpAddr>().expect("lit")]
        );
        assert_eq!(conf.options, vec!["ndots:0"]);
    }
}
