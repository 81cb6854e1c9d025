//! Security defaults: docker's capability set, masked and read-only `/proc` paths, and a
//! seccomp filter that refuses what docker's default profile refuses.

use serde_json::{json, Value};

/// Docker's default capabilities, less `CAP_NET_RAW` (as podman does): raw sockets let a
/// container spoof traffic on shared networks, and nothing in a normal dev stack needs them
/// (`ping` in busybox uses ICMP datagram sockets). `--cap-add NET_RAW` brings it back.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability, by bit number.
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// `NET_RAW`, `cap_net_raw` and `CAP_NET_RAW` all name the same capability; `ALL` is kept.
pub fn normalize_cap(name: &str) -> String {
    let up = name.trim().to_ascii_uppercase();
    if up == "ALL" || up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The capabilities in this process's bounding set (what a container can possibly get).
pub fn host_bounding_set() -> Vec<&'static str> {
    let bits = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1u64 << i) != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// The final capability list: defaults (or everything when privileged), plus `add`, minus
/// `drop` (`ALL` allowed in both), limited to the host's bounding set. An added capability
/// the host cannot grant is an error.
pub fn capability_set(
    privileged: bool,
    add: &[String],
    drop: &[String],
    bounding: &[&str],
) -> Result<Vec<String>, String> {
    let add: Vec<String> = add.iter().map(|c| normalize_cap(c)).collect();
    let drop: Vec<String> = drop.iter().map(|c| normalize_cap(c)).collect();
    for c in add.iter().chain(drop.iter()) {
        if c != "CAP_ALL" && c != "ALL" && !ALL_CAPS.contains(&c.as_str()) {
            return Err(format!("unknown capability: {c:?}"));
        }
    }
    let mut caps: Vec<String> = if privileged || add.iter().any(|c| c == "ALL" || c == "CAP_ALL") {
        bounding.iter().map(|c| c.to_string()).collect()
    } else {
        DEFAULT_CAPS.iter().map(|c| c.to_string()).collect()
    };
    for c in &add {
        if c == "ALL" || c == "CAP_ALL" {
            continue;
        }
        if !bounding.contains(&c.as_str()) {
            return Err(format!(
                "capability {c} is not in this host's bounding set and cannot be granted"
            ));
        }
        if !caps.contains(c) {
            caps.push(c.clone());
        }
    }
    if drop.iter().any(|c| c == "ALL" || c == "CAP_ALL") {
        caps.retain(|c| add.contains(c));
    } else {
        caps.retain(|c| !drop.contains(c));
    }
    caps.retain(|c| bounding.contains(&c.as_str()));
    Ok(caps)
}

/// Paths docker hides in `/proc` and `/sys`.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths docker makes read-only.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Syscalls docker's default profile refuses unless the container holds `CAP_SYS_ADMIN`.
const SYS_ADMIN_GATED: &[&str] = &[
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "setns",
    "unshare",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "name_to_handle_at",
    "lookup_dcookie",
    "perf_event_open",
    "quotactl",
    "quotactl_fd",
    "bpf",
    "fanotify_init",
];

/// Syscalls docker's default profile refuses for other capabilities or always.
const ALWAYS_DENIED: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_MODULE",
        &["init_module", "finit_module", "delete_module"],
    ),
    ("CAP_SYS_BOOT", &["reboot", "kexec_load", "kexec_file_load"]),
    (
        "CAP_SYS_TIME",
        &[
            "settimeofday",
            "stime",
            "clock_settime",
            "clock_adjtime",
            "adjtimex",
        ],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_PTRACE",
        &["process_vm_readv", "process_vm_writev", "kcmp"],
    ),
    (
        "CAP_SYS_NICE",
        &["get_mempolicy", "set_mempolicy", "mbind", "move_pages"],
    ),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "",
        &[
            "add_key",
            "request_key",
            "keyctl",
            "create_module",
            "get_kernel_syms",
            "query_module",
            "nfsservctl",
            "uselib",
            "userfaultfd",
            "ustat",
            "sysfs",
            "_sysctl",
            "swapon",
            "swapoff",
            "vm86",
            "vm86old",
        ],
    ),
];

/// The namespace flags `clone` may not use without `CAP_SYS_ADMIN`.
const CLONE_NS_FLAGS: &[u64] = &[
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

/// An OCI `linux.seccomp` object with the effect of docker's default profile on the syscalls it
/// refuses: written as allow-by-default plus EPERM rules (rather than docker's allow list) so a
/// libseccomp that does not know a new syscall name cannot break container start.
/// `clone3` gets ENOSYS so libc falls back to `clone`, whose namespace flags are filtered.
pub fn default_seccomp(caps: &[String]) -> Value {
    let has = |c: &str| caps.iter().any(|x| x == c);
    let mut denied: Vec<&str> = Vec::new();
    if !has("CAP_SYS_ADMIN") {
        denied.extend_from_slice(SYS_ADMIN_GATED);
    }
    for (cap, calls) in ALWAYS_DENIED {
        if cap.is_empty() || !has(cap) {
            denied.extend_from_slice(calls);
        }
    }
    let mut syscalls = vec![json!({
        "names": denied,
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": 1
    })];
    if !has("CAP_SYS_ADMIN") {
        syscalls.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}));
        for flag in CLONE_NS_FLAGS {
            syscalls.push(json!({
                "names": ["clone"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 1,
                "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}]
            }));
        }
    }
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "syscalls": syscalls
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_defaults_add_drop_privileged() {
        let bnd: Vec<&str> = ALL_CAPS
            .iter()
            .copied()
            .filter(|c| *c != "CAP_SYS_RESOURCE")
            .collect();
        let d = capability_set(false, &[], &[], &bnd).unwrap();
        assert_eq!(d.len(), DEFAULT_CAPS.len());
        assert!(!d.contains(&"CAP_NET_RAW".to_string()));
        let a = capability_set(false, &["net_admin".into()], &["CHOWN".into()], &bnd).unwrap();
        assert!(a.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!a.contains(&"CAP_CHOWN".to_string()));
        assert!(capability_set(false, &["SYS_RESOURCE".into()], &[], &bnd).is_err());
        assert!(capability_set(false, &["BOGUS".into()], &[], &bnd).is_err());
        let p = capability_set(true, &[], &[], &bnd).unwrap();
        assert_eq!(p.len(), bnd.len());
        let only = capability_set(false, &["KILL".into()], &["ALL".into()], &bnd).unwrap();
        assert_eq!(only, vec!["CAP_KILL".to_string()]);
    }

    #[test]
    fn seccomp_gates_on_sys_admin() {
        let s = default_seccomp(&[]).to_string();
        assert!(s.contains("\"mount\"") && s.contains("clone3"));
        let s = default_seccomp(&["CAP_SYS_ADMIN".into()]).to_string();
        assert!(!s.contains("\"mount\"") && s.contains("kexec_load"));
    }
}
