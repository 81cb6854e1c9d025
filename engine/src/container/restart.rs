//! Restart decisions and docker's growing delay: 100 ms doubling per consecutive restart up to
//! one minute, reset once a run lasted at least 10 s.

use std::time::Duration;

use super::record::RestartPolicy;

pub const INITIAL: Duration = Duration::from_millis(100);
pub const MAX: Duration = Duration::from_secs(60);
pub const RESET_AFTER: Duration = Duration::from_secs(10);

/// Whether the policy restarts a container that exited with `code` after `restarts` restarts.
pub fn should_restart(
    policy: &RestartPolicy,
    code: i32,
    restarts: u32,
    manually_stopped: bool,
) -> bool {
    if manually_stopped {
        return false;
    }
    match policy {
        RestartPolicy::No => false,
        RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        RestartPolicy::OnFailure { max_retries } => {
            code != 0 && (*max_retries == 0 || restarts < *max_retries)
        }
    }
}

/// The delay tracker.
#[derive(Debug, Clone)]
pub struct Backoff {
    current: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            current: Duration::ZERO,
        }
    }
}

impl Backoff {
    /// The delay before the next start, given how long the last run lasted.
    pub fn next(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= RESET_AFTER || self.current.is_zero() {
            self.current = INITIAL;
        } else {
            self.current = (self.current * 2).min(MAX);
        }
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_and_backoff() {
        assert!(!should_restart(&RestartPolicy::No, 1, 0, false));
        assert!(should_restart(&RestartPolicy::Always, 0, 9, false));
        assert!(!should_restart(&RestartPolicy::Always, 0, 9, true));
        let of = RestartPolicy::OnFailure { max_retries: 2 };
        assert!(should_restart(&of, 1, 1, false));
        assert!(!should_restart(&of, 1, 2, false));
        assert!(!should_restart(&of, 0, 0, false));
        let mut b = Backoff::default();
        let quick = Duration::from_millis(5);
        assert_eq!(b.next(quick), INITIAL);
        assert_eq!(b.next(quick), INITIAL * 2);
        assert_eq!(b.next(quick), INITIAL * 4);
        assert_eq!(b.next(Duration::from_secs(11)), INITIAL);
        for _ in 0..20 {
            b.next(quick);
        }
        assert_eq!(b.next(quick), MAX);
    }
}
