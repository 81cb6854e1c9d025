//! From a service of the project model to what the engine and netctl are asked for: the
//! container config, the networks it joins, the ports it publishes and the files (secrets,
//! configs) it gets. Pure: no I/O but reading secret/config sources, so the rules are unit-tested.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use engine::container::record::{
    ContainerConfig, DeviceMapping, HealthConfig, LogConfig, MountKind, MountSpec, NetworkMode,
    Resources, RestartPolicy, Ulimit,
};
use netctl::{PortMapping, Protocol};

use super::labels;
use super::OrchestrateError;
use crate::model::{MountType, Project, RestartMode, Service};

/// Everything one container of a service needs.
#[derive(Debug, Clone, Default)]
pub struct ContainerPlan {
    pub config: ContainerConfig,
    /// Whether the service sets `entrypoint` (an empty one resets the image's).
    pub entrypoint_set: bool,
    /// Networks to join, the first one carrying the default route.
    pub networks: Vec<NetworkJoin>,
    pub ports: Vec<PortMapping>,
    /// Secrets and configs, written into the container dir and bind-mounted read-only.
    pub files: Vec<InjectedFile>,
    /// `dns_search` and `dns_opt` (the nameservers are in `config.dns`).
    pub dns_search: Vec<String>,
    pub dns_opt: Vec<String>,
    /// Keys the engine cannot honour, reported as warnings.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkJoin {
    /// The network's real name (`<project>_<key>` unless `name:` says otherwise).
    pub name: String,
    pub aliases: Vec<String>,
    pub ipv4_address: Option<Ipv4Addr>,
    pub ipv6_address: Option<Ipv6Addr>,
    pub mac: Option<String>,
    pub ifname: Option<String>,
}

/// A secret or config: its content and how it appears inside the container.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectedFile {
    /// File name under the container dir's `files/`.
    pub key: String,
    pub target: String,
    pub content: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// Docker compose's container name: `container_name`, or `<project>-<service>-<n>`.
pub fn container_name(project: &str, service: &Service, number: u32) -> String {
    match &service.container_name {
        Some(n) if !n.is_empty() => n.clone(),
        _ => format!("{project}-{}-{number}", service.name),
    }
}

/// The real name of a project network or volume key.
pub fn network_name(project: &Project, key: &str) -> String {
    project
        .networks
        .get(key)
        .and_then(|n| n.name.clone())
        .unwrap_or_else(|| format!("{}_{key}", project.name))
}

pub fn volume_name(project: &Project, key: &str) -> String {
    project
        .volumes
        .get(key)
        .and_then(|v| v.name.clone())
        .unwrap_or_else(|| format!("{}_{key}", project.name))
}

/// Project facts that go into labels.
#[derive(Debug, Clone, Default)]
pub struct ProjectInfo {
    pub working_dir: String,
    pub config_files: String,
}

/// Builds the container of replica `number` of `service`.
pub fn container_plan(
    project: &Project,
    info: &ProjectInfo,
    service: &Service,
    number: u32,
    config_hash: &str,
) -> Result<ContainerPlan, OrchestrateError> {
    let svc_err = |msg: String| OrchestrateError::Service {
        service: service.name.clone(),
        msg,
    };
    let mut p = ContainerPlan::default();
    let c = &mut p.config;
    c.name = container_name(&project.name, service, number);
    c.image = service.image_or_default(project);
    if let Some(ep) = &service.entrypoint {
        c.entrypoint = ep.clone();
        p.entrypoint_set = true;
    }
    if let Some(cmd) = &service.command {
        c.cmd = cmd.clone();
    }
    c.env = service
        .environment
        .iter()
        .filter_map(|(k, v)| match v {
            Some(v) => Some(format!("{k}={v}")),
            // A bare name takes the value of the environment compose runs in, or is left out.
            None => std::env::var(k).ok().map(|v| format!("{k}={v}")),
        })
        .collect();
    c.working_dir = service.working_dir.clone().unwrap_or_default();
    c.user = service.user.clone().unwrap_or_default();
    c.hostname = service.hostname.clone().unwrap_or_default();
    c.domainname = service.domainname.clone().unwrap_or_default();
    c.tty = service.tty;
    c.open_stdin = service.stdin_open;
    c.read_only = service.read_only;
    c.privileged = service.privileged;
    c.cap_add = service.cap_add.clone();
    c.cap_drop = service.cap_drop.clone();
    for opt in &service.security_opt {
        match opt.replace(':', "=").as_str() {
            "no-new-privileges" | "no-new-privileges=true" => c.no_new_privileges = true,
            "no-new-privileges=false" => c.no_new_privileges = false,
            "seccomp=unconfined" => c.seccomp_unconfined = true,
            other => p.warnings.push(format!(
                "security_opt {other:?} is not supported and ignored"
            )),
        }
    }
    c.sysctls = service
        .sysctls
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    c.ulimits = service
        .ulimits
        .iter()
        .map(|(name, u)| Ulimit {
            name: name.clone(),
            soft: u.soft().max(0) as u64,
            hard: u.hard().max(0) as u64,
        })
        .collect();
    c.devices = service
        .devices
        .iter()
        .map(|d| DeviceMapping {
            path_on_host: d.source.clone(),
            path_in_container: if d.target.is_empty() {
                d.source.clone()
            } else {
                d.target.clone()
            },
            permissions: if d.permissions.is_empty() {
                "rwm".into()
            } else {
                d.permissions.clone()
            },
        })
        .collect();
    c.init = service.init == Some(true);
    c.group_add = service.group_add.clone();
    // Resolved by the engine when the container is created, after those it names.
    c.volumes_from = volumes_from(project, service);
    c.oom_score_adj = service
        .oom_score_adj
        .map(|v| v.clamp(-1000, 1000) as i32)
        .unwrap_or(0);
    c.pid_host = service.pid.as_deref() == Some("host");
    c.ipc_host = service.ipc.as_deref() == Some("host");
    for (key, value) in [("pid", &service.pid), ("ipc", &service.ipc)] {
        if let Some(v) = value.as_deref() {
            if !matches!(v, "host" | "private" | "shareable" | "") {
                p.warnings
                    .push(format!("{key}: {v:?} is not supported yet and is ignored"));
            }
        }
    }
    c.resources = resources(service);
    p.warnings.extend(unsupported(service));
    c.restart = restart(service);
    c.healthcheck = healthcheck(service);
    c.stop_signal = service.stop_signal.clone().unwrap_or_default();
    c.stop_timeout = service
        .stop_grace_period
        .as_ref()
        .map(|d| d.get().as_secs());
    c.log = logging(service, &mut p.warnings)?;
    c.extra_hosts = service
        .extra_hosts
        .iter()
        .flat_map(|(host, ips)| ips.iter().map(move |ip| format!("{host}:{ip}")))
        .collect();
    c.dns = service.dns.clone();
    p.dns_search = service.dns_search.clone();
    p.dns_opt = service.dns_opt.clone();

    // Labels: the service's, then compose's own (which win).
    let mut l: BTreeMap<String, String> = service
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    l.insert(labels::PROJECT.into(), project.name.clone());
    l.insert(labels::SERVICE.into(), service.name.clone());
    l.insert(labels::NUMBER.into(), number.to_string());
    l.insert(labels::CONFIG_HASH.into(), config_hash.to_owned());
    l.insert(labels::ONEOFF.into(), "False".into());
    l.insert(labels::WORKING_DIR.into(), info.working_dir.clone());
    l.insert(labels::CONFIG_FILES.into(), info.config_files.clone());
    l.insert(labels::VERSION.into(), env!("CARGO_PKG_VERSION").into());
    l.insert(
        labels::DEPENDS_ON.into(),
        service
            .depends_on
            .iter()
            .map(|(n, d)| format!("{n}:{}:{}", d.condition.as_str(), d.restart))
            .collect::<Vec<_>>()
            .join(","),
    );
    c.labels = l;

    mounts(project, service, &mut p).map_err(svc_err)?;
    network(project, service, &mut p).map_err(svc_err)?;
    p.ports = ports(service).map_err(svc_err)?;
    Ok(p)
}

/// The names other services give `service` in their `links` (`db:database` → `database`).
/// Docker makes such an alias visible to the linking container only; here it is an alias on
/// the network, which every container of the network resolves (a superset).
fn link_aliases<'a>(project: &'a Project, service: &'a str) -> impl Iterator<Item = String> + 'a {
    project.services.values().flat_map(move |o| {
        o.links.iter().filter_map(move |l| match l.split_once(':') {
            Some((target, alias)) if target == service && alias != service => {
                Some(alias.to_owned())
            }
            _ => None,
        })
    })
}

/// `volumes_from` entries as the engine takes them, `CONTAINER[:ro|:rw]`: a service stands for
/// its first replica's container name.
fn volumes_from(project: &Project, service: &Service) -> Vec<String> {
    service
        .volumes_from
        .iter()
        .map(|v| {
            let (target, mode) = match v.strip_prefix("container:") {
                Some(rest) => match rest.rsplit_once(':') {
                    Some((n, m)) if m == "ro" || m == "rw" => (n.to_owned(), Some(m)),
                    _ => (rest.to_owned(), None),
                },
                None => {
                    let svc = crate::graph::volumes_from_service(v).unwrap_or(v);
                    let mode = v
                        .rsplit_once(':')
                        .map(|(_, m)| m)
                        .filter(|m| *m == "ro" || *m == "rw");
                    let name = project
                        .services
                        .get(svc)
                        .map(|s| container_name(&project.name, s, 1))
                        .unwrap_or_else(|| svc.to_owned());
                    (name, mode)
                }
            };
            match mode {
                Some(m) => format!("{target}:{m}"),
                None => target,
            }
        })
        .collect()
}

fn resources(s: &Service) -> Resources {
    let limits = s
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref());
    let memory = s.mem_limit.or(limits.and_then(|l| l.memory)).unwrap_or(0);
    // cpu_quota/cpu_period is the long form of cpus (CFS quota over period).
    let quota = match (s.cpu_quota, s.cpu_period) {
        (Some(q), p) if q > 0 => Some(q as f64 / p.filter(|p| *p > 0).unwrap_or(100_000) as f64),
        _ => None,
    };
    let cpus = s
        .cpus
        .or(quota)
        .or(limits.and_then(|l| l.cpus))
        .unwrap_or(0.0);
    Resources {
        memory,
        memory_swap: s.memswap_limit.unwrap_or(0),
        nano_cpus: (cpus * 1e9) as i64,
        cpu_shares: s.cpu_shares.unwrap_or(0).max(0) as u64,
        pids_limit: s.pids_limit.or(limits.and_then(|l| l.pids)).unwrap_or(0),
        shm_size: s.shm_size.unwrap_or(0).max(0) as u64,
        memory_reservation: s
            .mem_reservation
            .or(s
                .deploy
                .as_ref()
                .and_then(|d| d.resources.as_ref())
                .and_then(|r| r.reservations.as_ref())
                .and_then(|r| r.memory))
            .unwrap_or(0),
        cpuset_cpus: s.cpuset.clone().unwrap_or_default(),
    }
}

/// Keys the engine has no way to honour yet: named, so nothing is dropped silently.
fn unsupported(s: &Service) -> Vec<String> {
    let mut keys: Vec<&str> = Vec::new();
    let mut set = |on: bool, key: &'static str| {
        if on {
            keys.push(key);
        }
    };
    set(s.blkio_config.is_some(), "blkio_config");
    set(s.cpu_count.is_some(), "cpu_count");
    set(s.cpu_percent.is_some(), "cpu_percent");
    set(s.cpu_rt_period.is_some(), "cpu_rt_period");
    set(s.cpu_rt_runtime.is_some(), "cpu_rt_runtime");
    set(s.cgroup_parent.is_some(), "cgroup_parent");
    set(s.cgroup.is_some(), "cgroup");
    set(!s.device_cgroup_rules.is_empty(), "device_cgroup_rules");
    set(!s.gpus.is_empty(), "gpus");
    set(s.uts.is_some(), "uts");
    set(s.userns_mode.is_some(), "userns_mode");
    set(s.isolation.is_some(), "isolation");
    set(s.mem_swappiness.is_some(), "mem_swappiness");
    set(s.oom_kill_disable, "oom_kill_disable");
    set(s.runtime.is_some(), "runtime");
    set(!s.storage_opt.is_empty(), "storage_opt");
    set(!s.external_links.is_empty(), "external_links");
    set(s.credential_spec.is_some(), "credential_spec");
    set(!s.pre_start.is_empty(), "pre_start");
    set(s.use_api_socket, "use_api_socket");
    set(!s.models.is_empty(), "models");
    set(s.provider.is_some(), "provider");
    keys.into_iter()
        .map(|k| format!("{k} is not supported yet and is ignored"))
        .collect()
}

fn restart(s: &Service) -> RestartPolicy {
    let r = s.restart_policy();
    match r.mode {
        RestartMode::No => RestartPolicy::No,
        RestartMode::Always => RestartPolicy::Always,
        RestartMode::UnlessStopped => RestartPolicy::UnlessStopped,
        RestartMode::OnFailure => RestartPolicy::OnFailure {
            max_retries: u32::try_from(r.max_retries).unwrap_or(u32::MAX),
        },
    }
}

fn healthcheck(s: &Service) -> Option<HealthConfig> {
    let h = s.healthcheck.as_ref()?;
    let nanos = |d: &Option<crate::model::GoDuration>| {
        d.as_ref()
            .map(|d| u64::try_from(d.get().as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    };
    let test = if h.is_disabled() {
        vec!["NONE".to_string()]
    } else {
        h.test.clone()
    };
    Some(HealthConfig {
        test,
        interval: nanos(&h.interval),
        timeout: nanos(&h.timeout),
        start_period: nanos(&h.start_period),
        start_interval: nanos(&h.start_interval),
        retries: h
            .retries
            .map(|r| u32::try_from(r).unwrap_or(u32::MAX))
            .unwrap_or(0),
    })
}

fn logging(s: &Service, warnings: &mut Vec<String>) -> Result<LogConfig, OrchestrateError> {
    let mut log = LogConfig::default();
    let Some(l) = &s.logging else {
        return Ok(log);
    };
    match l.driver.as_deref() {
        None | Some("json-file") | Some("local") => {}
        Some(other) => warnings.push(format!(
            "logging driver {other:?} is not supported; logs are written as json-file"
        )),
    }
    if let Some(size) = l.options.get("max-size") {
        log.max_size = crate::cli::container::parse_bytes(size)
            .map_err(|e| OrchestrateError::Service {
                service: s.name.clone(),
                msg: format!("logging max-size {size:?}: {e}"),
            })?
            .max(0) as u64;
    }
    if let Some(n) = l.options.get("max-file") {
        log.max_file = n.parse().map_err(|_| OrchestrateError::Service {
            service: s.name.clone(),
            msg: format!("logging max-file {n:?} is not a number"),
        })?;
    }
    Ok(log)
}

fn mounts(project: &Project, s: &Service, p: &mut ContainerPlan) -> Result<(), String> {
    for v in &s.volumes {
        let mut m = MountSpec {
            target: v.target.clone(),
            read_only: v.read_only,
            ..Default::default()
        };
        match v.kind {
            MountType::Volume => {
                m.kind = MountKind::Volume;
                m.source = match v.source.as_deref() {
                    Some(src) if !src.is_empty() => {
                        if !project.volumes.contains_key(src) {
                            return Err(format!("volume {src:?} is not declared in volumes"));
                        }
                        volume_name(project, src)
                    }
                    _ => String::new(),
                };
                m.no_copy = v.volume.as_ref().is_some_and(|o| o.nocopy);
                if v.volume.as_ref().and_then(|o| o.subpath.as_ref()).is_some() {
                    return Err(format!("volume subpath on {} is not supported", v.target));
                }
            }
            MountType::Bind => {
                m.kind = MountKind::Bind;
                m.source = v.source.clone().unwrap_or_default();
                if let Some(prop) = v.bind.as_ref().and_then(|b| b.propagation.clone()) {
                    m.options.push(prop);
                }
            }
            MountType::Tmpfs => {
                m.kind = MountKind::Tmpfs;
                if let Some(t) = &v.tmpfs {
                    if let Some(size) = t.size {
                        m.options.push(format!("size={size}"));
                    }
                    if let Some(mode) = t.mode {
                        m.options.push(format!("mode={mode:o}"));
                    }
                }
            }
            other => return Err(format!("volume type {other:?} is not supported")),
        }
        p.config.mounts.push(m);
    }
    for t in &s.tmpfs {
        let (target, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        p.config.mounts.push(MountSpec {
            kind: MountKind::Tmpfs,
            target: target.to_owned(),
            options: opts
                .split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect(),
            ..Default::default()
        });
    }
    for sec in &s.secrets {
        let def = project
            .secrets
            .get(&sec.source)
            .ok_or_else(|| format!("secret {:?} is not declared", sec.source))?;
        let content = file_source(
            "secret",
            &sec.source,
            def.file.as_deref(),
            def.environment.as_deref(),
            None,
        )?;
        let target = match sec.target.as_deref() {
            Some(t) if t.starts_with('/') => t.to_owned(),
            Some(t) => format!("/run/secrets/{t}"),
            None => format!("/run/secrets/{}", sec.source),
        };
        p.files.push(injected(
            format!("secret-{}", sec.source),
            target,
            content,
            sec,
            0o444,
        )?);
    }
    for cfg in &s.configs {
        let def = project
            .configs
            .get(&cfg.source)
            .ok_or_else(|| format!("config {:?} is not declared", cfg.source))?;
        let content = file_source(
            "config",
            &cfg.source,
            def.file.as_deref(),
            def.environment.as_deref(),
            def.content.as_deref(),
        )?;
        let target = match cfg.target.as_deref() {
            Some(t) if !t.is_empty() => t.to_owned(),
            _ => format!("/{}", cfg.source),
        };
        p.files.push(injected(
            format!("config-{}", cfg.source),
            target,
            content,
            cfg,
            0o444,
        )?);
    }
    Ok(())
}

fn file_source(
    what: &str,
    name: &str,
    file: Option<&str>,
    env: Option<&str>,
    content: Option<&str>,
) -> Result<Vec<u8>, String> {
    if let Some(path) = file {
        return std::fs::read(path)
            .map_err(|e| format!("{what} {name:?}: cannot read {path}: {e}"));
    }
    if let Some(var) = env {
        return std::env::var(var)
            .map(String::into_bytes)
            .map_err(|_| format!("{what} {name:?}: environment variable {var} is not set"));
    }
    if let Some(c) = content {
        return Ok(c.as_bytes().to_vec());
    }
    Err(format!(
        "{what} {name:?} has no file, environment or content (external {what}s are not supported)"
    ))
}

fn injected(
    key: String,
    target: String,
    content: Vec<u8>,
    s: &crate::model::ServiceSecret,
    default_mode: u32,
) -> Result<InjectedFile, String> {
    let id = |v: &Option<String>, what: &str| -> Result<u32, String> {
        match v.as_deref() {
            None | Some("") => Ok(0),
            Some(t) => t
                .parse()
                .map_err(|_| format!("{what} {t:?} of {} is not a number", s.source)),
        }
    };
    Ok(InjectedFile {
        key,
        target,
        content,
        uid: id(&s.uid, "uid")?,
        gid: id(&s.gid, "gid")?,
        mode: s.mode.unwrap_or(default_mode),
    })
}

fn network(project: &Project, s: &Service, p: &mut ContainerPlan) -> Result<(), String> {
    match s.network_mode.as_deref() {
        Some("host") => {
            p.config.network_mode = NetworkMode::Host;
            return Ok(());
        }
        Some("none") => {
            p.config.network_mode = NetworkMode::None;
            return Ok(());
        }
        Some("bridge") | None => {}
        Some(other) => {
            // The joined container is named here and resolved to its id when this one is
            // created (after it, by the plan's ordering).
            let target = if let Some(svc) = other.strip_prefix("service:") {
                let dep = project
                    .services
                    .get(svc)
                    .ok_or_else(|| format!("network_mode {other:?}: no such service"))?;
                container_name(&project.name, dep, 1)
            } else if let Some(c) = other.strip_prefix("container:") {
                c.to_owned()
            } else {
                return Err(format!(
                    "network_mode {other:?} is not supported (use host, none, service:NAME, container:NAME, or networks)"
                ));
            };
            if !s.ports.is_empty() {
                return Err(format!(
                    "conflicting options: port publishing and network_mode {other:?} (publish the ports on the service whose namespace is joined)"
                ));
            }
            p.config.network_mode = NetworkMode::Container(target);
            return Ok(());
        }
    }
    p.config.network_mode = NetworkMode::Bridge;
    for key in s.network_names() {
        let conf = s.networks.get(key).cloned().flatten().unwrap_or_default();
        let mut aliases = vec![s.name.clone()];
        if let Some(h) = &s.hostname {
            aliases.push(h.clone());
        }
        aliases.extend(conf.aliases.iter().cloned());
        aliases.extend(link_aliases(project, &s.name));
        aliases.dedup();
        let parse_v4 = |a: &Option<String>| -> Result<Option<Ipv4Addr>, String> {
            a.as_deref()
                .map(|t| t.parse().map_err(|_| format!("bad ipv4_address {t:?}")))
                .transpose()
        };
        let parse_v6 = |a: &Option<String>| -> Result<Option<Ipv6Addr>, String> {
            a.as_deref()
                .map(|t| t.parse().map_err(|_| format!("bad ipv6_address {t:?}")))
                .transpose()
        };
        p.networks.push(NetworkJoin {
            name: network_name(project, key),
            aliases,
            ipv4_address: parse_v4(&conf.ipv4_address)?,
            ipv6_address: parse_v6(&conf.ipv6_address)?,
            mac: conf.mac_address.clone().or_else(|| s.mac_address.clone()),
            ifname: conf.interface_name.clone(),
        });
    }
    Ok(())
}

fn ports(s: &Service) -> Result<Vec<PortMapping>, String> {
    s.ports
        .iter()
        .map(|port| {
            let protocol = match port.protocol() {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                other => return Err(format!("port protocol {other:?} is not supported")),
            };
            let host_ip = match port.host_ip.as_deref() {
                None | Some("") => None,
                Some(t) => Some(
                    t.parse::<IpAddr>()
                        .map_err(|_| format!("bad host_ip {t:?}"))?,
                ),
            };
            let host_ports = port.published_range();
            if port.published.as_deref().is_some_and(|t| !t.is_empty()) && host_ports.is_none() {
                return Err(format!(
                    "bad published port {:?}",
                    port.published.as_deref().unwrap_or("")
                ));
            }
            // A host range against one container port means "any free port of the range";
            // we publish the first one, as docker does when it is free.
            let span = host_ports.map(|(a, b)| b - a).unwrap_or(0);
            let container_ports = match host_ports {
                Some((a, b)) if a != b => {
                    if span > 0 && port.target.checked_add(span).is_some() {
                        (port.target, port.target + span)
                    } else {
                        (port.target, port.target)
                    }
                }
                _ => (port.target, port.target),
            };
            Ok(PortMapping {
                protocol,
                host_ip,
                host_ports,
                container_ports,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(yaml: &str) -> Project {
        crate::orchestrate::test_project(yaml)
    }

    #[test]
    fn names_labels_and_networks() {
        let p = project(
            "services:\n  web:\n    image: busybox\n    networks:\n      front: {aliases: [www]}\n      back: {priority: 10}\nnetworks:\n  front: {}\n  back: {name: custom}\n",
        );
        let svc = &p.services["web"];
        let plan = container_plan(&p, &ProjectInfo::default(), svc, 2, "h").unwrap();
        assert_eq!(plan.config.name, "p-web-2");
        assert_eq!(plan.config.labels[labels::NUMBER], "2");
        assert_eq!(plan.config.labels[labels::CONFIG_HASH], "h");
        let names: Vec<&str> = plan.networks.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["custom", "p_front"], "priority first");
        assert_eq!(plan.networks[1].aliases, ["web", "www"]);
    }

    #[test]
    fn limits_restart_health_and_ports() {
        let p = project(
            "services:\n  db:\n    image: busybox\n    mem_limit: 64m\n    deploy: {resources: {limits: {cpus: '0.5', pids: 20}}}\n    restart: on-failure:3\n    healthcheck: {test: 'true', interval: 2s, retries: 4}\n    ports: ['127.0.0.1:8080:80/udp', '9000']\n    stop_grace_period: 3s\n",
        );
        let plan = container_plan(&p, &ProjectInfo::default(), &p.services["db"], 1, "h").unwrap();
        let c = &plan.config;
        assert_eq!(c.resources.memory, 64 << 20);
        assert_eq!(c.resources.nano_cpus, 500_000_000);
        assert_eq!(c.resources.pids_limit, 20);
        assert_eq!(c.restart, RestartPolicy::OnFailure { max_retries: 3 });
        let h = c.healthcheck.as_ref().unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "true"]);
        assert_eq!(h.interval, 2_000_000_000);
        assert_eq!(h.retries, 4);
        assert_eq!(c.stop_timeout, Some(3));
        assert_eq!(plan.ports.len(), 2);
        assert_eq!(plan.ports[0].protocol, Protocol::Udp);
        assert_eq!(plan.ports[0].host_ports, Some((8080, 8080)));
        assert_eq!(plan.ports[1].host_ports, None);
    }

    #[test]
    fn secrets_keep_uid_gid_mode() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw.txt"), "hunter2").unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            "services:\n  a:\n    image: busybox\n    secrets: [{source: pw, uid: '100', gid: '101', mode: 0400}]\n    configs: [{source: c, target: /etc/c.conf}]\nsecrets:\n  pw: {file: ./pw.txt}\nconfigs:\n  c: {content: hello}\n",
        )
        .unwrap();
        let mut opts = crate::loader::LoadOptions::from_process().unwrap();
        opts.cwd = dir.path().to_path_buf();
        let p = crate::loader::load(&opts).unwrap().project().unwrap();
        let plan = container_plan(&p, &ProjectInfo::default(), &p.services["a"], 1, "h").unwrap();
        assert_eq!(plan.files.len(), 2);
        let s = &plan.files[0];
        assert_eq!(
            (s.target.as_str(), s.uid, s.gid, s.mode),
            ("/run/secrets/pw", 100, 101, 0o400)
        );
        assert_eq!(s.content, b"hunter2");
        assert_eq!(plan.files[1].target, "/etc/c.conf");
        assert_eq!(plan.files[1].content, b"hello");
    }

    #[test]
    fn keys_without_engine_support_are_warned_about() {
        let p = project("services:\n  a:\n    image: busybox\n    pid: 'service:b'\n    userns_mode: host\n    cpu_quota: 50000\n  b:\n    image: busybox\n");
        let plan = container_plan(&p, &ProjectInfo::default(), &p.services["a"], 1, "h").unwrap();
        let text = plan.warnings.join("\n");
        assert!(
            text.contains("pid: \"service:b\" is not supported"),
            "{text}"
        );
        assert!(text.contains("userns_mode"), "{text}");
        assert_eq!(plan.config.resources.nano_cpus, 500_000_000);
    }

    #[test]
    fn link_aliases_name_the_linked_service() {
        let p = project("services:\n  app:\n    image: busybox\n    links: ['db:database', 'cache']\n  db:\n    image: busybox\n  cache:\n    image: busybox\n");
        let info = ProjectInfo::default();
        let db = container_plan(&p, &info, &p.services["db"], 1, "h").unwrap();
        assert!(
            db.networks[0].aliases.contains(&"database".to_string()),
            "{:?}",
            db.networks
        );
        let app = container_plan(&p, &info, &p.services["app"], 1, "h").unwrap();
        assert!(app.warnings.is_empty(), "{:?}", app.warnings);
    }

    #[test]
    fn volumes_from_names_containers() {
        let p = project("services:\n  a:\n    image: busybox\n    volumes_from: ['b:ro', 'service:b', 'container:other:rw', 'container:x']\n  b:\n    image: busybox\n");
        let plan = container_plan(&p, &ProjectInfo::default(), &p.services["a"], 1, "h").unwrap();
        let b = format!("{}-b-1", p.name);
        assert_eq!(
            plan.config.volumes_from,
            [format!("{b}:ro"), b.clone(), "other:rw".into(), "x".into()]
        );
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    }

    #[test]
    fn groups_oom_score_namespaces_and_cpuset_reach_the_container() {
        let p = project("services:\n  a:\n    image: busybox\n    pid: host\n    ipc: host\n    group_add: [audio, '4000']\n    oom_score_adj: 500\n    cpuset: '0'\n    mem_reservation: 64m\n");
        let plan = container_plan(&p, &ProjectInfo::default(), &p.services["a"], 1, "h").unwrap();
        let c = &plan.config;
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
        assert!(c.pid_host && c.ipc_host);
        assert_eq!(c.group_add, ["audio", "4000"]);
        assert_eq!(c.oom_score_adj, 500);
        assert_eq!(c.resources.cpuset_cpus, "0");
        assert_eq!(c.resources.memory_reservation, 64 << 20);
    }

    #[test]
    fn init_reaches_the_container() {
        let p = project("services:\n  a:\n    image: busybox\n    init: true\n  b:\n    image: busybox\n    init: false\n");
        let info = ProjectInfo::default();
        let a = container_plan(&p, &info, &p.services["a"], 1, "h").unwrap();
        assert!(a.config.init && a.warnings.is_empty(), "{:?}", a.warnings);
        let b = container_plan(&p, &info, &p.services["b"], 1, "h").unwrap();
        assert!(!b.config.init);
    }

    #[test]
    fn network_mode_joins_another_container() {
        let p = project("services:\n  a:\n    image: busybox\n    network_mode: 'service:b'\n  b:\n    image: busybox\n  c:\n    image: busybox\n    network_mode: 'container:other'\n");
        let info = ProjectInfo::default();
        let a = container_plan(&p, &info, &p.services["a"], 1, "h").unwrap();
        assert_eq!(
            a.config.network_mode,
            NetworkMode::Container(format!("{}-b-1", p.name))
        );
        assert!(a.networks.is_empty());
        let c = container_plan(&p, &info, &p.services["c"], 1, "h").unwrap();
        assert_eq!(
            c.config.network_mode,
            NetworkMode::Container("other".into())
        );
    }

    #[test]
    fn network_mode_errors() {
        let p = project("services:\n  a:\n    image: busybox\n    network_mode: 'container:x'\n    ports: ['80']\n  b:\n    image: busybox\n    network_mode: 'slirp4netns'\n");
        let info = ProjectInfo::default();
        let e = container_plan(&p, &info, &p.services["a"], 1, "h").unwrap_err();
        assert!(e.to_string().contains("port publishing"), "{e}");
        let e = container_plan(&p, &info, &p.services["b"], 1, "h").unwrap_err();
        assert!(e.to_string().contains("not supported"), "{e}");
    }
}
