//! Keeping the resolver's resident set small.
//!
//! The resolver is the `rcompose` binary, which is large (clap, the image engine, TLS…). Start-up
//! touches pages of it and of libc that the poll loop never needs again, and the kernel's
//! fault-around maps up to 16 neighbouring page-cache pages per fault, so a freshly started
//! resolver shows several MiB of file-backed pages in its RSS. Those pages can be dropped:
//! `MADV_DONTNEED` on a read-only private file mapping with no copied-on-write page only unmaps
//! them, and the next access maps the same file contents back. What the loop uses comes back; the
//! rest stays out of the resident set.

use std::ffi::c_void;
use std::io;

/// One mapping of `/proc/self/smaps` that may be dropped.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Droppable {
    start: usize,
    end: usize,
}

impl Droppable {
    fn contains(&self, addr: usize) -> bool {
        self.start <= addr && addr < self.end
    }

    /// Drops the mapping's pages from the resident set.
    fn drop_pages(self) {
        // SAFETY: `droppable` only yields private (`p`), non-writable mappings of a file that hold
        // no anonymous (copied-on-write) page, resident or swapped, as the kernel reported them
        // just now: every page they map is a page-cache page of the file. Nothing in this
        // process writes to or re-protects such a mapping (the resolver is single-threaded; the
        // dynamic loader only re-protects its own fresh, writable mappings). For such a mapping
        // MADV_DONTNEED only removes page-table entries: every later access faults the identical
        // file contents back in — exactly what the kernel's own reclaim of clean file pages does —
        // so no memory that Rust code may observe changes, and the range is a whole mapping of
        // this process.
        let rc = unsafe {
            libc::madvise(
                self.start as *mut c_void,
                self.end - self.start,
                libc::MADV_DONTNEED,
            )
        };
        if rc != 0 {
            tracing::debug!(
                "madvise {:#x}-{:#x}: {}",
                self.start,
                self.end,
                io::Error::last_os_error()
            );
        }
    }
}

/// `poll(2)` on `fds` for up to `timeout_ms` (-1: no limit). With `trim_first`, the resident set
/// is trimmed right before sleeping, the mapping holding this very code last, so that only the
/// few pages between the last drop and the system call come back before the process sleeps.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32, trim_first: bool) -> io::Result<usize> {
    let mut plan = Vec::new();
    if trim_first {
        // Streamed line by line: the whole file would grow the heap for good.
        match std::fs::File::open("/proc/self/smaps") {
            Ok(file) => {
                let lines = std::io::BufRead::lines(std::io::BufReader::new(file));
                plan = droppable(lines.map_while(Result::ok)).0;
            }
            Err(e) => tracing::debug!("cannot trim resident set: {e}"),
        }
    }
    let here = poll as *const () as usize;
    let own = plan
        .iter()
        .position(|m| m.contains(here))
        .map(|i| plan.remove(i));
    for m in &plan {
        m.drop_pages();
    }
    let ptr = fds.as_mut_ptr();
    let len = fds.len() as libc::nfds_t;
    if let Some(m) = own {
        m.drop_pages();
    }
    // SAFETY: `ptr` and `len` describe the live, exclusively borrowed `fds` slice of `pollfd`s,
    // which poll(2) reads and whose `revents` it writes, within its bounds, before returning.
    let rc = unsafe { libc::poll(ptr, len, timeout_ms) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

/// Parses smaps text into the droppable mappings and the resident kB total among them (as bytes).
fn droppable<S: AsRef<str>>(smaps: impl Iterator<Item = S>) -> (Vec<Droppable>, usize) {
    let mut out = Vec::new();
    let mut resident = 0usize;
    let mut current: Option<(Droppable, bool)> = None;
    let mut rss = 0usize;
    let mut clean = true;
    let mut finish = |current: &mut Option<(Droppable, bool)>, rss: usize, clean: bool| {
        if let Some((m, eligible)) = current.take() {
            if eligible && clean && rss > 0 {
                resident += rss * 1024;
                out.push(m);
            }
        }
    };
    for line in smaps {
        let mut words = line.as_ref().split_whitespace();
        let Some(first) = words.next() else { continue };
        if let Some((start, end)) = first.split_once('-').and_then(|(s, e)| {
            Some((
                usize::from_str_radix(s, 16).ok()?,
                usize::from_str_radix(e, 16).ok()?,
            ))
        }) {
            finish(&mut current, rss, clean);
            let perms = words.next().unwrap_or("");
            let path = words.nth(3).unwrap_or("");
            let eligible = perms.len() == 4
                && perms.as_bytes()[1] != b'w'
                && perms.as_bytes()[3] == b'p'
                && path.starts_with('/')
                && end > start;
            current = Some((Droppable { start, end }, eligible));
            rss = 0;
            clean = true;
            continue;
        }
        let value = words
            .next()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        match first {
            "Rss:" => rss = value,
            // Copied-on-write pages are anonymous (resident or swapped): those must stay. Dirty
            // *page-cache* pages (a binary just written by the linker) are fine: the mapping
            // shows the page cache, and maps the same pages again after the drop.
            "Anonymous:" | "Swap:" if value > 0 => clean = false,
            _ => {}
        }
    }
    finish(&mut current, rss, clean);
    (out, resident)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5615e8279000-5615e8938000 r--p 00000000 fe:00 5314238                    /usr/bin/rcompose
Rss:                2524 kB
Private_Clean:      2524 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
5615e989d000-5615e99a7000 r--p 01622000 fe:00 5314238                    /usr/bin/rcompose
Rss:                1064 kB
Private_Dirty:      1064 kB
Anonymous:          1064 kB
5615e99b0000-5615e99c0000 r-xp 01722000 fe:00 5314238                    /usr/bin/rcompose
Rss:                  64 kB
Private_Dirty:        64 kB
Anonymous:             0 kB
5615e99a7000-5615e99ab000 rw-p 0172b000 fe:00 5314238                    /usr/bin/rcompose
Rss:                  16 kB
Anonymous:            16 kB
7fa16e110000-7fa16e266000 r-xp 00026000 fe:00 326279                     /usr/lib/libc.so.6
Rss:                 960 kB
Anonymous:             0 kB
7fa16e300000-7fa16e301000 r--p 00000000 00:00 0                          [vvar]
Rss:                   4 kB
7fa16e400000-7fa16e401000 r--p 00000000 00:00 0
Rss:                   4 kB
7fa16e500000-7fa16e501000 r--s 00000000 00:00 0                          /dev/shm/x
Rss:                   4 kB
";

    #[test]
    fn only_clean_read_only_private_file_mappings_are_dropped() {
        let (mappings, resident) = droppable(SMAPS.lines());
        assert_eq!(
            mappings,
            vec![
                Droppable {
                    start: 0x5615e8279000,
                    end: 0x5615e8938000
                },
                Droppable {
                    start: 0x5615e99b0000,
                    end: 0x5615e99c0000
                },
                Droppable {
                    start: 0x7fa16e110000,
                    end: 0x7fa16e266000
                },
            ]
        );
        assert_eq!(resident, (2524 + 64 + 960) * 1024);
    }

    #[test]
    fn trimming_this_process_is_harmless() {
        // The test binary keeps running (and computing) after its clean pages were dropped.
        assert_eq!(poll(&mut [], 0, true).expect("poll"), 0);
        let v: Vec<u64> = (0..1000).collect();
        assert_eq!(v.iter().sum::<u64>(), 499_500);
    }
}
