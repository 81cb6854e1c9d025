//! Healthchecks: the command to run inside the container, timing (docker's defaults:
//! interval 30 s, timeout 30 s, 3 retries, start interval 5 s) and the status transitions
//! `starting` → `healthy` / `unhealthy`, with the last five results kept.

use std::time::Duration;

use super::record::{Health, HealthConfig, HealthResult};

const NANOS: u64 = 1_000_000_000;
pub const MAX_LOG: usize = 5;
pub const MAX_OUTPUT: usize = 4096;

/// Effective timing of a healthcheck.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: u32,
}

fn or(ns: u64, default_secs: u64) -> Duration {
    if ns == 0 {
        Duration::from_secs(default_secs)
    } else {
        Duration::from_nanos(ns)
    }
}

pub fn timing(c: &HealthConfig) -> Timing {
    Timing {
        interval: or(c.interval, 30),
        timeout: or(c.timeout, 30),
        start_period: Duration::from_nanos(c.start_period),
        start_interval: or(c.start_interval, 5),
        retries: if c.retries == 0 { 3 } else { c.retries },
    }
}

/// The command to exec for a check, or `None` when checks are disabled.
pub fn command(c: &HealthConfig) -> Option<Vec<String>> {
    match c.test.first().map(String::as_str) {
        Some("CMD") => Some(c.test[1..].to_vec()),
        Some("CMD-SHELL") => Some(vec!["/bin/sh".into(), "-c".into(), c.test[1..].join(" ")]),
        _ => None,
    }
}

/// Parses a duration in nanoseconds from docker-style text (`30s`, `1m`).
pub fn parse_nanos(s: &str) -> Option<u64> {
    super::time::parse_duration(s).map(|d| d.as_nanos() as u64)
}

/// Folds one result into the health state. `in_start_period`: failures do not count yet.
pub fn record(h: &mut Health, r: HealthResult, retries: u32, in_start_period: bool) {
    let ok = r.exit_code == 0;
    h.log.push(r);
    if h.log.len() > MAX_LOG {
        let extra = h.log.len() - MAX_LOG;
        h.log.drain(..extra);
    }
    if ok {
        h.status = "healthy".into();
        h.failing_streak = 0;
    } else if !in_start_period {
        h.failing_streak += 1;
        if h.failing_streak >= retries {
            h.status = "unhealthy".into();
        }
    }
}

/// A fresh health state for a (re)started container.
pub fn starting() -> Health {
    Health {
        status: "starting".into(),
        failing_streak: 0,
        log: Vec::new(),
    }
}

/// Interval to the next check: the start interval while still starting inside the start
/// period, else the interval.
pub fn next_delay(t: &Timing, h: &Health, since_start: Duration) -> Duration {
    if h.status == "starting" && since_start < t.start_period {
        t.start_interval
    } else {
        t.interval
    }
}

/// Nanoseconds in a second (for CLI conversions).
pub const fn secs(n: u64) -> u64 {
    n * NANOS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(code: i32) -> HealthResult {
        HealthResult {
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn transitions() {
        let mut h = starting();
        record(&mut h, res(1), 2, true);
        assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 0));
        record(&mut h, res(0), 2, false);
        assert_eq!(h.status, "healthy");
        record(&mut h, res(1), 2, false);
        assert_eq!(h.status, "healthy");
        record(&mut h, res(1), 2, false);
        assert_eq!(h.status, "unhealthy");
        for _ in 0..10 {
            record(&mut h, res(0), 2, false);
        }
        assert_eq!(h.log.len(), MAX_LOG);
        let c = HealthConfig {
            test: vec!["CMD-SHELL".into(), "test -f /ok".into()],
            ..Default::default()
        };
        assert_eq!(command(&c).unwrap()[2], "test -f /ok");
        assert_eq!(timing(&c).retries, 3);
        assert!(command(&HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        })
        .is_none());
    }
}
