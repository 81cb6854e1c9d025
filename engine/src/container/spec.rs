//! The OCI runtime spec (`config.json` of the bundle) for a container: process, mounts,
//! namespaces, capabilities, seccomp, masked paths, rlimits, sysctls, devices, cgroup limits.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::record::{ContainerConfig, NetworkMode};
use super::security;
use super::user::ResolvedUser;
use super::ContainerError;

/// A mount with its host source resolved (volume names turned into paths).
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedMount {
    /// `bind` or `tmpfs`.
    pub kind: &'static str,
    pub source: PathBuf,
    pub target: String,
    pub options: Vec<String>,
}

/// Facts about the host the spec depends on.
#[derive(Debug, Clone)]
pub struct HostInfo {
    pub bounding: Vec<&'static str>,
    pub cgroup_v2: bool,
    pub hostname: String,
}

impl HostInfo {
    pub fn detect() -> HostInfo {
        HostInfo {
            bounding: security::host_bounding_set(),
            cgroup_v2: super::cgroup::is_unified(),
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
        }
    }
}

/// Everything the spec is made from.
#[derive(Debug)]
pub struct SpecInputs<'a> {
    pub config: &'a ContainerConfig,
    pub rootfs: &'a Path,
    /// The container directory.
    pub dir: &'a Path,
    /// Where the network namespace and the managed /etc files (`hosts`, `hostname`,
    /// `resolv.conf`) are: `dir`, or the joined container's dir with `NetworkMode::Container`.
    pub net_dir: &'a Path,
    pub user: ResolvedUser,
    pub mounts: Vec<ResolvedMount>,
    pub host: &'a HostInfo,
}

/// The cgroup path (relative to each hierarchy root) of a container.
pub fn cgroup_path(id: &str) -> String {
    format!("/rcompose/{id}")
}

/// The process arguments: entrypoint then cmd.
pub fn process_args(config: &ContainerConfig) -> Vec<String> {
    let mut args = config.entrypoint.clone();
    args.extend(config.cmd.iter().cloned());
    args
}

/// Environment with docker's defaults: PATH if missing, HOSTNAME, TERM=xterm with a tty.
pub fn process_env(config: &ContainerConfig, hostname: &str) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    let has = |env: &[String], k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
    if !has(&config.env, "PATH") {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    env.push(format!("HOSTNAME={hostname}"));
    if config.tty && !has(&config.env, "TERM") {
        env.push("TERM=xterm".into());
    }
    for e in &config.env {
        let k = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(k));
        env.push(e.clone());
    }
    env
}

/// The container's hostname: the configured one, the host's with `--network host`, else the
/// short id.
pub fn hostname(config: &ContainerConfig, host: &HostInfo) -> String {
    if !config.hostname.is_empty() {
        config.hostname.clone()
    } else if config.network_mode == NetworkMode::Host {
        host.hostname.clone()
    } else {
        config.id.chars().take(12).collect()
    }
}

const RLIMITS: &[(&str, libc::__rlimit_resource_t)] = &[
    ("core", libc::RLIMIT_CORE),
    ("cpu", libc::RLIMIT_CPU),
    ("data", libc::RLIMIT_DATA),
    ("fsize", libc::RLIMIT_FSIZE),
    ("locks", libc::RLIMIT_LOCKS),
    ("memlock", libc::RLIMIT_MEMLOCK),
    ("msgqueue", libc::RLIMIT_MSGQUEUE),
    ("nice", libc::RLIMIT_NICE),
    ("nofile", libc::RLIMIT_NOFILE),
    ("nproc", libc::RLIMIT_NPROC),
    ("rss", libc::RLIMIT_RSS),
    ("rtprio", libc::RLIMIT_RTPRIO),
    ("rttime", libc::RLIMIT_RTTIME),
    ("sigpending", libc::RLIMIT_SIGPENDING),
    ("stack", libc::RLIMIT_STACK),
    ("as", libc::RLIMIT_AS),
];

/// Whether a ulimit name is known.
pub fn valid_ulimit(name: &str) -> bool {
    RLIMITS.iter().any(|(n, _)| *n == name)
}

fn host_hard_limit(res: libc::__rlimit_resource_t) -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the valid `rl` we own; `res` is a valid resource constant.
    let rc = unsafe { libc::getrlimit(res, &mut rl) };
    if rc == 0 {
        rl.rlim_max
    } else {
        u64::MAX
    }
}

/// rlimits: docker's `nofile` default (1048576) and the requested ulimits, each clamped to the
/// host's hard limit (raising it needs CAP_SYS_RESOURCE, which root may lack).
fn rlimits(config: &ContainerConfig) -> Vec<Value> {
    let mut wanted: Vec<(String, u64, u64)> = vec![("nofile".into(), 1_048_576, 1_048_576)];
    for u in &config.ulimits {
        wanted.retain(|(n, _, _)| *n != u.name);
        wanted.push((u.name.clone(), u.soft, u.hard));
    }
    wanted
        .into_iter()
        .filter_map(|(name, soft, hard)| {
            let (_, res) = RLIMITS.iter().find(|(n, _)| *n == name)?;
            let max = host_hard_limit(*res);
            let hard = hard.min(max);
            let soft = soft.min(hard);
            Some(json!({"type": format!("RLIMIT_{}", name.to_ascii_uppercase()), "soft": soft, "hard": hard}))
        })
        .collect()
}

fn device_rules(config: &ContainerConfig) -> Vec<Value> {
    if config.privileged {
        return vec![json!({"allow": true, "access": "rwm"})];
    }
    let mut v = vec![
        json!({"allow": false, "access": "rwm"}),
        json!({"allow": true, "type": "c", "access": "m"}),
        json!({"allow": true, "type": "b", "access": "m"}),
    ];
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
        (10, 200),
    ] {
        v.push(
            json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": "rwm"}),
        );
    }
    v.push(json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}));
    v
}

fn devices(config: &ContainerConfig) -> Result<(Vec<Value>, Vec<Value>), ContainerError> {
    let mut nodes = Vec::new();
    let mut rules = Vec::new();
    for d in &config.devices {
        let md = std::fs::metadata(&d.path_on_host).map_err(|e| {
            ContainerError::Invalid(format!(
                "error gathering device information while adding device {:?}: {e}",
                d.path_on_host
            ))
        })?;
        let ft = md.file_type();
        let kind = if ft.is_char_device() {
            "c"
        } else if ft.is_block_device() {
            "b"
        } else {
            return Err(ContainerError::Invalid(format!(
                "{} is not a device node",
                d.path_on_host
            )));
        };
        let rdev = md.rdev();
        let (major, minor) = (libc::major(rdev), libc::minor(rdev));
        let target = if d.path_in_container.is_empty() {
            &d.path_on_host
        } else {
            &d.path_in_container
        };
        nodes.push(
            json!({"path": target, "type": kind, "major": major, "minor": minor,
            "fileMode": md.mode() & 0o7777, "uid": 0, "gid": 0}),
        );
        let perms = if d.permissions.is_empty() {
            "rwm"
        } else {
            &d.permissions
        };
        rules.push(
            json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": perms}),
        );
    }
    Ok((nodes, rules))
}

fn resources(config: &ContainerConfig, extra_devices: Vec<Value>) -> Value {
    let r = &config.resources;
    let mut res = Map::new();
    let mut devs = device_rules(config);
    devs.extend(extra_devices);
    res.insert("devices".into(), Value::Array(devs));
    if r.memory > 0 || r.memory_swap != 0 || r.memory_reservation > 0 {
        let mut m = Map::new();
        if r.memory > 0 {
            m.insert("limit".into(), json!(r.memory));
        }
        if r.memory_swap != 0 {
            m.insert("swap".into(), json!(r.memory_swap));
        }
        if r.memory_reservation > 0 {
            m.insert("reservation".into(), json!(r.memory_reservation));
        }
        res.insert("memory".into(), Value::Object(m));
    }
    if r.nano_cpus > 0 || r.cpu_shares > 0 || !r.cpuset_cpus.is_empty() {
        let mut c = Map::new();
        if !r.cpuset_cpus.is_empty() {
            c.insert("cpus".into(), json!(r.cpuset_cpus));
        }
        if r.cpu_shares > 0 {
            c.insert("shares".into(), json!(r.cpu_shares));
        }
        if r.nano_cpus > 0 {
            let period: i64 = 100_000;
            c.insert("period".into(), json!(period));
            c.insert("quota".into(), json!(r.nano_cpus * period / 1_000_000_000));
        }
        res.insert("cpu".into(), Value::Object(c));
    }
    if r.pids_limit != 0 {
        res.insert("pids".into(), json!({"limit": r.pids_limit}));
    }
    Value::Object(res)
}

/// Builds the runtime spec as OCI JSON.
pub fn build(inp: &SpecInputs<'_>) -> Result<Value, ContainerError> {
    let c = inp.config;
    let host = inp.host;
    let caps = security::capability_set(c.privileged, &c.cap_add, &c.cap_drop, &host.bounding)
        .map_err(ContainerError::Invalid)?;
    let hostname = hostname(c, host);
    let mut args = process_args(c);
    if args.is_empty() {
        return Err(ContainerError::Invalid(
            "no command specified: the image has no CMD or ENTRYPOINT and none was given".into(),
        ));
    }
    if !c.init_path.is_empty() {
        args = super::init::wrap(args);
    }
    let cwd = if c.working_dir.is_empty() {
        "/".to_owned()
    } else {
        c.working_dir.clone()
    };
    let process = json!({
        "terminal": c.tty,
        "user": {"uid": inp.user.uid, "gid": inp.user.gid, "additionalGids": inp.user.additional_gids},
        "args": args,
        "env": process_env(c, &hostname),
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": rlimits(c),
        "oomScoreAdj": c.oom_score_adj,
    });
    let mut process = process;
    // Only present when set: libcontainer loads seccomp after dropping capabilities whenever
    // the field exists, which fails without NO_NEW_PRIVS (seccomp then needs CAP_SYS_ADMIN).
    if c.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }

    let shm = if c.resources.shm_size > 0 {
        c.resources.shm_size
    } else {
        64 << 20
    };
    let sys_opts = if c.privileged {
        json!(["nosuid", "noexec", "nodev"])
    } else {
        json!(["nosuid", "noexec", "nodev", "ro"])
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", if c.privileged {"rw"} else {"ro"}]}),
    ];
    let user_targets: Vec<&str> = inp.mounts.iter().map(|m| m.target.as_str()).collect();
    for f in ["hostname", "hosts", "resolv.conf"] {
        let target = format!("/etc/{f}");
        if user_targets.contains(&target.as_str()) {
            continue;
        }
        let src = inp.net_dir.join(f);
        let mut opts = vec!["rbind", "rprivate"];
        if c.read_only {
            opts.push("ro");
        }
        mounts.push(json!({"destination": target, "type": "bind", "source": src, "options": opts}));
    }
    if !c.init_path.is_empty() {
        mounts.push(json!({"destination": super::init::INIT_TARGET, "type": "bind", "source": c.init_path, "options": ["rbind", "rprivate", "ro"]}));
    }
    let mut user_mounts = inp.mounts.clone();
    user_mounts.sort_by_key(|m| m.target.matches('/').count());
    for m in user_mounts {
        mounts.push(json!({"destination": m.target, "type": m.kind, "source": m.source, "options": m.options}));
    }

    let mut namespaces = vec![json!({"type": "mount"}), json!({"type": "uts"})];
    if !c.pid_host {
        namespaces.push(json!({"type": "pid"}));
    }
    if !c.ipc_host {
        namespaces.push(json!({"type": "ipc"}));
    }
    if host.cgroup_v2 {
        namespaces.push(json!({"type": "cgroup"}));
    }
    if c.network_mode != NetworkMode::Host {
        namespaces.push(json!({"type": "network", "path": inp.net_dir.join("netns")}));
    }

    let (device_nodes, device_rules) = devices(c)?;
    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": cgroup_path(&c.id),
        "resources": resources(c, device_rules),
        "devices": device_nodes,
        "sysctl": c.sysctls,
        "rootfsPropagation": "private",
    });
    if !c.privileged {
        linux["maskedPaths"] = json!(security::MASKED_PATHS);
        linux["readonlyPaths"] = json!(security::READONLY_PATHS);
        if !c.seccomp_unconfined {
            linux["seccomp"] = security::default_seccomp(&caps);
        }
    }
    let hostname_json = if c.network_mode == NetworkMode::Host {
        Value::Null
    } else {
        json!(hostname)
    };
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": inp.rootfs, "readonly": c.read_only},
        "mounts": mounts,
        "linux": linux,
        "annotations": {"io.rcompose.name": c.name},
    });
    if !hostname_json.is_null() {
        spec["hostname"] = hostname_json;
        if !c.domainname.is_empty() {
            spec["domainname"] = json!(c.domainname);
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::record::{MountKind, MountSpec};

    fn host() -> HostInfo {
        HostInfo {
            bounding: security::ALL_CAPS.to_vec(),
            cgroup_v2: true,
            hostname: "hosty".into(),
        }
    }

    #[test]
    fn spec_from_config_parses_as_oci() {
        let cfg = ContainerConfig {
            id: "0123456789abcdef".repeat(4),
            name: "web".into(),
            cmd: vec!["sh".into(), "-c".into(), "true".into()],
            env: vec!["A=1".into()],
            tty: true,
            mounts: vec![MountSpec {
                kind: MountKind::Bind,
                source: "/data".into(),
                target: "/data".into(),
                ..Default::default()
            }],
            resources: crate::container::record::Resources {
                memory: 64 << 20,
                nano_cpus: 1_500_000_000,
                pids_limit: 50,
                ..Default::default()
            },
            ..Default::default()
        };
        let h = host();
        let inp = SpecInputs {
            config: &cfg,
            rootfs: Path::new("/r/rootfs"),
            dir: Path::new("/r"),
            net_dir: Path::new("/r"),
            user: ResolvedUser::default(),
            mounts: vec![ResolvedMount {
                kind: "bind",
                source: "/data".into(),
                target: "/data".into(),
                options: vec!["rbind".into()],
            }],
            host: &h,
        };
        let v = build(&inp).unwrap();
        let spec: oci_spec::runtime::Spec = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));
        let env = spec.process().as_ref().unwrap().env().clone().unwrap();
        assert!(env.contains(&"TERM=xterm".to_string()) && env.contains(&"A=1".to_string()));
        assert_eq!(v["linux"]["resources"]["cpu"]["quota"], 150_000);
        assert!(v["linux"]["seccomp"].is_object());
        assert!(v["linux"]["namespaces"].to_string().contains("/r/netns"));
    }

    #[test]
    fn env_defaults() {
        let cfg = ContainerConfig {
            env: vec!["PATH=/x".into()],
            ..Default::default()
        };
        assert_eq!(process_env(&cfg, "h"), vec!["HOSTNAME=h", "PATH=/x"]);
    }
}
