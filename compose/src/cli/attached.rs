//! Attached `up`: the logs of the project's containers with a `name |` prefix until every one
//! of them stopped, following containers that restart or that another command replaces, as
//! docker compose v2 does. There is no daemon to send events, so the project's containers are
//! looked at by label every 100 ms; a container that is new or runs again gets a follower
//! thread, which goes on from where the last one of that container stopped reading.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use engine::container::logs::{self, ReadOptions};
use engine::container::ops::Engine;
use engine::container::record::Status;
use engine::container::store::Container;

use super::logs::Printer;
use super::stack;

/// When attached mode stops the project early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cascade {
    /// Never: run until every container stopped (or Ctrl-C).
    None,
    /// `--abort-on-container-exit` / `--exit-code-from`: when any container exits.
    Exit,
    /// `--abort-on-container-failure`: when a container exits with a non-zero code.
    Failure,
}

pub struct Options<'a> {
    pub project: &'a str,
    /// Services whose containers keep `up` attached: the selected ones.
    pub watch: &'a [String],
    /// Services whose logs are shown (`--attach`, `--no-attach`, `attach: false`).
    pub show: &'a [String],
    pub cascade: Cascade,
    /// Log offsets of the containers that existed before `up` ran: only what they print from
    /// then on is shown (docker compose attaches; it does not replay the logs).
    pub offsets: HashMap<String, u64>,
}

/// Why attached mode ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every watched container stopped by itself.
    Stopped,
    /// `stop` was set (Ctrl-C).
    Interrupted,
    /// The cascade rule fired on the exit of a container, with this code.
    Aborted { exit_code: i32 },
}

const POLL: Duration = Duration::from_millis(100);

/// Streams until the watched containers stopped, `stop` is set, or the cascade rule fires.
pub fn run(
    engine: &Engine,
    printer: &Printer,
    o: &Options<'_>,
    stop: &AtomicBool,
) -> anyhow::Result<Outcome> {
    // Followers end when their container stops, or when this is set.
    let quit = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let outcome = watch(engine, printer, o, stop, &quit, scope);
        quit.store(true, Ordering::SeqCst);
        outcome
    })
}

fn watch<'scope, 'env>(
    engine: &'env Engine,
    printer: &'env Printer,
    o: &Options<'_>,
    stop: &'env AtomicBool,
    quit: &'env AtomicBool,
    scope: &'scope std::thread::Scope<'scope, 'env>,
) -> anyhow::Result<Outcome> {
    let mut offsets = o.offsets.clone();
    let mut followers: HashMap<
        String,
        std::thread::ScopedJoinHandle<'scope, std::io::Result<u64>>,
    > = HashMap::new();
    let mut muted: Vec<String> = Vec::new();
    // The log size when each container's last follower started.
    let mut spawned_len: HashMap<String, u64> = HashMap::new();
    // The `finished_at` of the last exit seen, and reported, per container.
    let mut seen_stopped: HashMap<String, String> = HashMap::new();
    let mut reported: HashMap<String, String> = HashMap::new();
    // Colours by replica, so a replacement keeps its predecessor's.
    let mut replicas: Vec<(String, u32)> = Vec::new();
    let mut idle_polls = 0;
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(Outcome::Interrupted);
        }
        let ended: Vec<String> = followers
            .iter()
            .filter(|(_, h)| h.is_finished())
            .map(|(id, _)| id.clone())
            .collect();
        for id in ended {
            match followers.remove(&id).map(|h| h.join()) {
                Some(Ok(Ok(offset))) => {
                    offsets.insert(id, offset);
                }
                // Standard output is gone (or the log unreadable): nothing more of it can
                // be shown.
                _ => {
                    muted.push(id);
                }
            }
        }
        let list = stack::containers(engine, o.project, o.watch, false)?;
        let mut alive = false;
        for c in &list {
            let id = c.id();
            let active = c.state.is_active();
            // A created container is about to start (a replacement, or `up` in another
            // process waiting for a dependency).
            alive |= active || c.state.status == Status::Created;
            let service = stack::service_of(c);
            let shown = o.show.iter().any(|s| s == service) && !muted.iter().any(|m| m == id);
            if followers.contains_key(id) {
                continue;
            }
            // A stopped container is read again only when its log changed since the last
            // follower started: a torn last line is never waited for.
            let len = log_len(c);
            let unread =
                len > offsets.get(id).copied().unwrap_or(0) && spawned_len.get(id) != Some(&len);
            if shown && (active || unread) {
                spawned_len.insert(id.to_owned(), len);
                let replica = (service.to_owned(), stack::number(c));
                let color = match replicas.iter().position(|r| *r == replica) {
                    Some(i) => i,
                    None => {
                        replicas.push(replica);
                        replicas.len() - 1
                    }
                };
                printer.widen(&c.config.name);
                let offset = offsets.get(id).copied().unwrap_or(0);
                let c = c.clone();
                followers.insert(
                    id.to_owned(),
                    scope.spawn(move || follow(engine, printer, &c, color, offset, quit)),
                );
                continue;
            }
            if active || !matches!(c.state.status, Status::Exited | Status::Dead) {
                continue;
            }
            // Stopped, with everything it printed shown: report this exit once, from the
            // second list that shows it stopped. A replacement exists before the container it
            // replaces stops, so that list has it even if the first was read as it appeared.
            let exit = &c.state.finished_at;
            if reported.get(id) == Some(exit) {
                continue;
            }
            if seen_stopped.get(id) != Some(exit) {
                seen_stopped.insert(id.to_owned(), exit.clone());
                continue;
            }
            reported.insert(id.to_owned(), exit.clone());
            let replaced = list.iter().any(|x| {
                x.id() != id
                    && stack::service_of(x) == service
                    && stack::number(x) == stack::number(c)
            });
            if replaced {
                if shown {
                    printer.note(&format!("{} has been recreated", c.config.name));
                }
                continue;
            }
            let code = c.state.exit_code;
            if shown {
                printer.note(&format!("{} exited with code {code}", c.config.name));
            }
            if o.cascade == Cascade::Exit || (o.cascade == Cascade::Failure && code != 0) {
                return Ok(Outcome::Aborted { exit_code: code });
            }
        }
        // Nothing left twice in a row (for the same reason as above), and every exit reported.
        if alive || !followers.is_empty() {
            idle_polls = 0;
        } else {
            idle_polls += 1;
            if idle_polls >= 2 {
                return Ok(Outcome::Stopped);
            }
        }
        std::thread::sleep(POLL);
    }
}

/// The size of the container's log (0 before it has one).
fn log_len(c: &Container) -> u64 {
    std::fs::metadata(logs::path(&c.dir, c.id())).map_or(0, |m| m.len())
}

/// Prints one container's log from `offset` until it stops (or `quit`); returns where it
/// stopped reading.
fn follow(
    engine: &Engine,
    printer: &Printer,
    c: &Container,
    color: usize,
    offset: u64,
    quit: &AtomicBool,
) -> std::io::Result<u64> {
    let id = c.id();
    logs::follow(
        &logs::path(&c.dir, id),
        offset,
        &ReadOptions::default(),
        |e| printer.entry(color, &c.config.name, e),
        || {
            quit.load(Ordering::SeqCst)
                || engine
                    .store
                    .load(id)
                    .map(|c| !c.state.is_active())
                    .unwrap_or(true)
        },
    )
}
