//! `rcompose events`: container events of the project. There is no daemon to subscribe to, so
//! the project's containers (their `state.json` in the engine store) are polled and changes are
//! printed as docker compose prints events, until Ctrl-C.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use engine::container::ops::Engine;
use engine::container::record::Status;
use engine::container::store::Container;
use serde_json::json;

use super::stack;
use super::GlobalOpts;

/// How often the store is read.
const POLL: Duration = Duration::from_millis(200);

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Services (default: all)
    services: Vec<String>,
    /// Output events as a stream of JSON objects
    #[arg(long)]
    json: bool,
}

/// What one poll knows of a container.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snap {
    pub name: String,
    pub service: String,
    pub image: String,
    pub status: Status,
    pub started_at: String,
    pub health: Option<String>,
}

impl Snap {
    fn of(c: &Container) -> Snap {
        Snap {
            name: c.config.name.clone(),
            service: stack::service_of(c).to_owned(),
            image: c.config.image.clone(),
            status: c.state.status,
            started_at: c.state.started_at.clone(),
            health: c.state.health.as_ref().map(|h| h.status.clone()),
        }
    }

    fn active(&self) -> bool {
        matches!(
            self.status,
            Status::Running | Status::Paused | Status::Restarting
        )
    }
}

/// One event: the container id, its snapshot and the action (`start`, `health_status: healthy`).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub action: String,
    pub snap: Snap,
}

/// The events that turn `before` into `now` (both keyed by container id), in id order.
pub fn diff(before: &BTreeMap<String, Snap>, now: &BTreeMap<String, Snap>) -> Vec<Event> {
    let mut out = Vec::new();
    let mut push = |id: &str, action: &str, snap: &Snap| {
        out.push(Event {
            id: id.to_owned(),
            action: action.to_owned(),
            snap: snap.clone(),
        })
    };
    for (id, n) in now {
        let Some(b) = before.get(id) else {
            push(id, "create", n);
            if n.active() || !n.started_at.is_empty() {
                push(id, "start", n);
            }
            if !n.active() && !n.started_at.is_empty() {
                push(id, "die", n);
            }
            continue;
        };
        let restarted = n.started_at != b.started_at && !n.started_at.is_empty();
        if b.active() && (!n.active() || restarted) {
            push(id, "die", n);
        }
        if restarted || (!b.active() && n.active()) {
            push(id, "start", n);
        }
        match (b.status, n.status) {
            (Status::Running, Status::Paused) => push(id, "pause", n),
            (Status::Paused, Status::Running) => push(id, "unpause", n),
            _ => {}
        }
        if n.health != b.health {
            if let Some(h) = n.health.as_deref().filter(|h| !h.is_empty()) {
                push(id, &format!("health_status: {h}"), n);
            }
        }
    }
    for (id, b) in before {
        if !now.contains_key(id) {
            if b.active() {
                push(id, "die", b);
            }
            push(id, "destroy", b);
        }
    }
    out
}

/// `2024-05-01 10:00:00.123456 container start <id> (image=busybox, name=p-web-1)`.
pub fn text_line(time: &str, e: &Event) -> String {
    format!(
        "{} container {} {} (image={}, name={})",
        text_time(time),
        e.action,
        e.id,
        e.snap.image,
        e.snap.name
    )
}

/// One JSON object per line, as `docker compose events --json` prints.
pub fn json_line(time: &str, e: &Event) -> String {
    json!({
        "time": time,
        "type": "container",
        "action": e.action,
        "id": e.id,
        "service": e.snap.service,
        "attributes": {"name": e.snap.name, "image": e.snap.image},
    })
    .to_string()
}

/// RFC 3339 with nanoseconds to `2006-01-02 15:04:05.000000`.
fn text_time(rfc: &str) -> String {
    let t = rfc.trim_end_matches('Z').replacen('T', " ", 1);
    match t.split_once('.') {
        Some((secs, frac)) => format!("{secs}.{}", &frac[..frac.len().min(6)]),
        None => t,
    }
}

fn snapshot(
    engine: &Engine,
    project: &str,
    services: &[String],
) -> anyhow::Result<BTreeMap<String, Snap>> {
    Ok(stack::containers(engine, project, services, true)?
        .iter()
        .map(|c| (c.id().to_owned(), Snap::of(c)))
        .collect())
}

pub fn run(global: &GlobalOpts, a: EventsArgs) -> anyhow::Result<i32> {
    let st = stack::load_or_name(global, &a.services)?;
    let engine = stack::engine(global)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing a signal handler")?;
    }
    let mut before = snapshot(&engine, &st.project.name, &a.services)?;
    let mut out = std::io::stdout().lock();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(POLL);
        // A container being written or removed can fail to read; the next poll sees it.
        let Ok(now) = snapshot(&engine, &st.project.name, &a.services) else {
            continue;
        };
        let time = engine::container::time::rfc3339_nano(SystemTime::now());
        for e in diff(&before, &now) {
            let line = if a.json {
                json_line(&time, &e)
            } else {
                text_line(&time, &e)
            };
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                // The reader went away (a closed pipe): nothing left to do.
                return Ok(0);
            }
        }
        before = now;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(status: Status, started: &str, health: Option<&str>) -> Snap {
        Snap {
            name: "p-web-1".into(),
            service: "web".into(),
            image: "busybox".into(),
            status,
            started_at: started.into(),
            health: health.map(str::to_owned),
        }
    }

    fn actions(b: &[(&str, Snap)], n: &[(&str, Snap)]) -> Vec<String> {
        let m = |v: &[(&str, Snap)]| {
            v.iter()
                .map(|(k, s)| (k.to_string(), s.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        diff(&m(b), &m(n)).into_iter().map(|e| e.action).collect()
    }

    #[test]
    fn lifecycle() {
        let created = snap(Status::Created, "", None);
        let running = snap(Status::Running, "t1", Some("starting"));
        let healthy = snap(Status::Running, "t1", Some("healthy"));
        let exited = snap(Status::Exited, "t1", Some("healthy"));
        let again = snap(Status::Running, "t2", Some("healthy"));
        assert_eq!(actions(&[], &[("a", created.clone())]), ["create"]);
        assert_eq!(
            actions(&[("a", created.clone())], &[("a", running.clone())]),
            ["start", "health_status: starting"]
        );
        assert_eq!(
            actions(&[("a", running.clone())], &[("a", healthy.clone())]),
            ["health_status: healthy"]
        );
        assert_eq!(
            actions(&[("a", healthy.clone())], &[("a", exited.clone())]),
            ["die"]
        );
        assert_eq!(
            actions(&[("a", healthy.clone())], &[("a", again)]),
            ["die", "start"]
        );
        assert_eq!(actions(&[("a", exited)], &[]), ["destroy"]);
        assert_eq!(actions(&[("a", healthy)], &[]), ["die", "destroy"]);
        assert_eq!(
            actions(&[], &[("a", running)]),
            ["create", "start"],
            "created and started between two polls"
        );
        assert!(actions(&[("a", created.clone())], &[("a", created)]).is_empty());
    }

    #[test]
    fn formats() {
        let e = Event {
            id: "abc".into(),
            action: "start".into(),
            snap: snap(Status::Running, "t", None),
        };
        let t = "2024-05-01T10:00:00.123456789Z";
        assert_eq!(
            text_line(t, &e),
            "2024-05-01 10:00:00.123456 container start abc (image=busybox, name=p-web-1)"
        );
        let v: serde_json::Value = serde_json::from_str(&json_line(t, &e)).unwrap();
        assert_eq!(v["type"], "container");
        assert_eq!(v["action"], "start");
        assert_eq!(v["service"], "web");
        assert_eq!(v["attributes"]["name"], "p-web-1");
        assert_eq!(v["attributes"]["image"], "busybox");
    }
}
