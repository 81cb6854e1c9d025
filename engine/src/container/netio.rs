//! A container's network counters for `stats`: bytes received and sent over its interfaces
//! other than loopback, as docker counts them (it sums the container's endpoints).
//!
//! `/proc/<pid>/net/dev` describes the network namespace of process `pid`, so reading it for the
//! container's init gives the container's interfaces without entering its namespace.

use std::fs;

/// Bytes received and sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetIo {
    pub rx: u64,
    pub tx: u64,
}

/// The counters of the network namespace `pid` lives in; zeros when it cannot be read (the
/// process is gone).
pub fn read(pid: i32) -> NetIo {
    if pid <= 0 {
        return NetIo::default();
    }
    fs::read_to_string(format!("/proc/{pid}/net/dev"))
        .map(|s| parse(&s))
        .unwrap_or_default()
}

/// Sums `/proc/net/dev` rows except `lo`: two header lines, then `name: rx_bytes rx_packets …`
/// with eight receive columns before the transmit ones.
pub fn parse(text: &str) -> NetIo {
    let mut io = NetIo::default();
    for (name, counters) in text.lines().filter_map(|l| l.split_once(':')) {
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let cols: Vec<u64> = counters
            .split_whitespace()
            .map_while(|c| c.parse().ok())
            .collect();
        if let (Some(rx), Some(tx)) = (cols.first(), cols.get(8)) {
            io.rx = io.rx.saturating_add(*rx);
            io.tx = io.tx.saturating_add(*tx);
        }
    }
    io
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 2097152    1024    0    0    0     0          0         0  2097152    1024    0    0    0     0       0          0
  eth0:    1296      16    0    0    0     0          0         0      936      12    0    0    0     0       0          0
  eth1:10000000    7000    0    0    0     0          0         0 123456789   80000    0    0    0     0       0          0
";

    #[test]
    fn sums_interfaces_but_loopback() {
        assert_eq!(
            parse(SAMPLE),
            NetIo {
                rx: 10_001_296,
                tx: 123_457_725
            }
        );
    }

    #[test]
    fn loopback_only_is_zero() {
        let only_lo: String = SAMPLE.lines().take(3).map(|l| format!("{l}\n")).collect();
        assert_eq!(parse(&only_lo), NetIo::default());
        assert_eq!(parse(""), NetIo::default());
    }

    #[test]
    fn short_rows_are_skipped() {
        assert_eq!(parse("  eth0: 1 2 3\n"), NetIo::default());
    }
}
