//! Reading a container's cgroup (v1 or v2, detected from the host): CPU, memory and pid
//! counters for `stats`, the OOM-kill counter for the exit record, and processes for `top`.
//! Creating, limiting, freezing and removing it is libcontainer's job.

use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

/// Whether the host runs the unified (v2-only) hierarchy.
pub fn is_unified() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// The container's directory in `controller`'s hierarchy (ignored on v2).
pub fn dir(id: &str, controller: &str) -> PathBuf {
    let rel = super::spec::cgroup_path(id);
    let rel = rel.trim_start_matches('/');
    if is_unified() {
        Path::new(ROOT).join(rel)
    } else {
        Path::new(ROOT).join(controller).join(rel)
    }
}

fn read_u64(p: &Path) -> Option<u64> {
    fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn read_kv(p: &Path, key: &str) -> Option<u64> {
    fs::read_to_string(p)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
}

/// One sample of a container's resource use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Total CPU time in nanoseconds.
    pub cpu_ns: u64,
    pub memory_usage: u64,
    /// Limit in bytes (the host's memory when unlimited).
    pub memory_limit: u64,
    pub pids: u64,
}

/// Reads the current counters; missing files read as zero.
pub fn sample(id: &str) -> Sample {
    let host_mem = host_memory();
    if is_unified() {
        let d = dir(id, "");
        let cpu_ns = read_kv(&d.join("cpu.stat"), "usage_usec ").unwrap_or(0) * 1000;
        let usage = read_u64(&d.join("memory.current")).unwrap_or(0);
        let inactive = read_kv(&d.join("memory.stat"), "inactive_file ").unwrap_or(0);
        let limit = read_u64(&d.join("memory.max")).unwrap_or(host_mem);
        Sample {
            cpu_ns,
            memory_usage: usage.saturating_sub(inactive),
            memory_limit: limit.min(host_mem),
            pids: read_u64(&d.join("pids.current")).unwrap_or(0),
        }
    } else {
        let m = dir(id, "memory");
        let usage = read_u64(&m.join("memory.usage_in_bytes")).unwrap_or(0);
        let inactive = read_kv(&m.join("memory.stat"), "total_inactive_file ").unwrap_or(0);
        let limit = read_u64(&m.join("memory.limit_in_bytes")).unwrap_or(host_mem);
        Sample {
            cpu_ns: read_u64(&dir(id, "cpuacct").join("cpuacct.usage")).unwrap_or(0),
            memory_usage: usage.saturating_sub(inactive),
            memory_limit: limit.min(host_mem),
            pids: read_u64(&dir(id, "pids").join("pids.current")).unwrap_or(0),
        }
    }
}

/// How many processes of the container the kernel OOM-killed so far.
pub fn oom_kills(id: &str) -> u64 {
    if is_unified() {
        read_kv(&dir(id, "").join("memory.events"), "oom_kill ").unwrap_or(0)
    } else {
        read_kv(&dir(id, "memory").join("memory.oom_control"), "oom_kill ").unwrap_or(0)
    }
}

/// Pids (host view) in the container's cgroup.
pub fn pids(id: &str) -> Vec<i32> {
    let d = if is_unified() {
        dir(id, "")
    } else {
        dir(id, "pids")
    };
    fs::read_to_string(d.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Total host memory in bytes.
pub fn host_memory() -> u64 {
    read_kv(Path::new("/proc/meminfo"), "MemTotal:")
        .or_else(|| {
            fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .map(|kb: u64| kb * 1024)
        .unwrap_or(u64::MAX)
}

/// Number of CPUs online (for CPU percentages as docker computes them).
pub fn online_cpus() -> u64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1)
}
