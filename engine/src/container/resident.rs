//! Keeping the supervisor's resident set small.
//!
//! The supervisor is the whole `rcompose` binary. Once its container runs it only needs its
//! poll loop, but the pages touched while starting up (and the neighbours the kernel's
//! fault-around maps with them) stay resident. [`trim`] unmaps the clean pages of read-only
//! file mappings (code and constants, which simply fault back in from the page cache when
//! used again) and marks those mappings `MADV_RANDOM` (no readahead; the kernel's fault-around,
//! which maps up to 64 KiB per fault, still applies, so the supervisor trims again after
//! each healthcheck).
//! Mappings holding private (relocated or written) pages are left alone: dropping those would
//! lose data.

use std::fs;

/// Drops clean read-only file-backed pages; returns how many KiB were mapped in them.
pub fn trim() -> u64 {
    let Ok(smaps) = fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut dropped = 0;
    let mut current: Option<(usize, usize, bool)> = None;
    let mut rss = 0u64;
    let mut flush = |m: Option<(usize, usize, bool)>, rss: u64, anon: u64| {
        if let Some((start, end, eligible)) = m {
            if eligible && anon == 0 && end > start {
                // SAFETY: the range is a whole mapping of ours, read-only, file-backed and with
                // no private pages: MADV_DONTNEED only unmaps pages the file still holds, and
                // MADV_RANDOM only changes fault-in policy.
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_RANDOM);
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
                }
                dropped += rss;
            }
        }
    };
    let mut anon = 0u64;
    for line in smaps.lines() {
        let mut parts = line.split_whitespace();
        let first = parts.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                flush(current.take(), rss, anon);
                let perms = parts.next().unwrap_or("");
                let path = parts.nth(3).unwrap_or("");
                let eligible = path.starts_with('/') && !perms.contains('w');
                current = Some((start, end, eligible));
                rss = 0;
                anon = 0;
                continue;
            }
        }
        let kb = || {
            line.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        if first == "Rss:" {
            rss = kb();
        } else if first == "Anonymous:" {
            anon = kb();
        }
    }
    flush(current.take(), rss, anon);
    dropped
}

/// `VmRSS` of this process in KiB.
pub fn vm_rss_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn trim_keeps_the_process_working() {
        let before = super::vm_rss_kib();
        let dropped = super::trim();
        eprintln!(
            "rss {before} KiB, dropped {dropped} KiB, now {} KiB",
            super::vm_rss_kib()
        );
        let v: Vec<u64> = (0..1000).collect();
        assert_eq!(v.iter().sum::<u64>(), 499_500);
        assert!(super::vm_rss_kib() > 0 && before > 0);
    }
}
