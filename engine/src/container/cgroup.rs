//! Reading a container's cgroup (v1 or v2, detected from the host): CPU, memory, pid and block
//! I/O counters for `stats`, the OOM-kill counter for the exit record, and processes for `top`.
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
    pub block: BlockIo,
}

/// Bytes the container's processes read from and wrote to block devices, summed over devices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockIo {
    pub read: u64,
    pub write: u64,
}

/// v1 blkio files with per-device byte counts, in the order runc (and so docker) tries them:
/// a group that exists but lists no device (only `Total 0`) falls through to the next.
const V1_BLKIO_FILES: [&str; 3] = [
    "blkio.bfq.io_service_bytes_recursive",
    "blkio.io_service_bytes_recursive",
    "blkio.throttle.io_service_bytes_recursive",
];

/// Reads the container's block I/O counters; a missing file reads as zero.
///
/// On a v1 hierarchy without BFQ only the throttle files count, and since Linux 6.10 only on a
/// device that has had a throttle rule set (in any cgroup, ever since boot): on other devices
/// the kernel reports zeros, and so do docker and rcompose. v2's `io.stat` always counts.
pub fn block_io(id: &str) -> BlockIo {
    if is_unified() {
        return fs::read_to_string(dir(id, "").join("io.stat"))
            .map(|s| parse_io_stat(&s))
            .unwrap_or_default();
    }
    let d = dir(id, "blkio");
    V1_BLKIO_FILES
        .iter()
        .find_map(|f| parse_blkio_v1(&fs::read_to_string(d.join(f)).ok()?))
        .unwrap_or_default()
}

/// v1 `MAJ:MIN Read|Write|Sync|Async|Discard|Total N` lines plus a final `Total N`; `None` when
/// no device line is present.
pub fn parse_blkio_v1(text: &str) -> Option<BlockIo> {
    let mut io = BlockIo::default();
    let mut devices = false;
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(_device), Some(op), Some(value), None) = (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let Ok(n) = value.parse::<u64>() else {
            continue;
        };
        devices = true;
        if op.eq_ignore_ascii_case("read") {
            io.read = io.read.saturating_add(n);
        } else if op.eq_ignore_ascii_case("write") {
            io.write = io.write.saturating_add(n);
        }
    }
    devices.then_some(io)
}

/// v2 `io.stat`: `MAJ:MIN rbytes=N wbytes=N rios=N …` per device.
pub fn parse_io_stat(text: &str) -> BlockIo {
    let mut io = BlockIo::default();
    for (key, value) in text
        .lines()
        .flat_map(|l| l.split_whitespace().skip(1))
        .filter_map(|kv| kv.split_once('='))
    {
        let Ok(n) = value.parse::<u64>() else {
            continue;
        };
        match key {
            "rbytes" => io.read = io.read.saturating_add(n),
            "wbytes" => io.write = io.write.saturating_add(n),
            _ => {}
        }
    }
    io
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
            block: block_io(id),
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
            block: block_io(id),
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

/// Removes an exited container's cgroup directories in every hierarchy (v1 controllers, the v2
/// tree, or both on a hybrid host). The kernel refuses (`EBUSY`) while a task of the group is
/// still exiting, so that is retried for a while. False when something could not be removed:
/// the caller then falls back to the runtime's full clean-up (which also kills what is left).
pub fn remove_dirs(id: &str) -> bool {
    let rel = super::spec::cgroup_path(id);
    let rel = rel.trim_start_matches('/');
    let mut dirs: Vec<PathBuf> = vec![Path::new(ROOT).join(rel)];
    if let Ok(rd) = fs::read_dir(ROOT) {
        dirs.extend(rd.flatten().map(|e| e.path().join(rel)));
    }
    dirs.retain(|d| d.is_dir());
    // Children first (a v1 cpuset or a v2 tree may have none; nothing nests deeper here).
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    for d in dirs {
        loop {
            match fs::remove_dir(&d) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e)
                    if e.raw_os_error() == Some(libc::EBUSY)
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(_) => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_v1_sums_reads_and_writes_over_devices() {
        let text = "8:0 Read 4096\n8:0 Write 8388608\n8:0 Sync 8392704\n8:0 Async 0\n\
                    8:0 Discard 0\n8:0 Total 8392704\n254:0 Read 1000\n254:0 Write 24\n\
                    254:0 Total 1024\nTotal 8393728\n";
        assert_eq!(
            parse_blkio_v1(text),
            Some(BlockIo {
                read: 5096,
                write: 8388632
            })
        );
    }

    #[test]
    fn blkio_v1_without_devices_falls_through() {
        assert_eq!(parse_blkio_v1("Total 0\n"), None);
        assert_eq!(parse_blkio_v1(""), None);
    }

    #[test]
    fn io_stat_v2_sums_rbytes_and_wbytes() {
        let text = "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n\
                    254:0 rbytes=100 wbytes=0 rios=1 wios=0 dbytes=4096 dios=1\n";
        assert_eq!(
            parse_io_stat(text),
            BlockIo {
                read: 1459300,
                write: 314773504
            }
        );
        assert_eq!(parse_io_stat(""), BlockIo::default());
    }
}
