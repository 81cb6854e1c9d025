//! `rcompose logs`, and the log streaming `up` does in attached mode: every container's lines
//! with a coloured `name  | ` prefix, followed until the containers stop.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::anyhow;
use engine::container::logs::{self, ReadOptions};
use engine::container::ops::Engine;
use engine::container::store::Container;
use engine::container::time;

use super::stack::{self, color_enabled, prefix_color};
use super::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Services (default: all)
    services: Vec<String>,
    /// Follow log output (`-f` after `logs`)
    #[arg(long)]
    follow: bool,
    /// Number of lines to show from the end of the logs of each container
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps
    #[arg(short, long)]
    timestamps: bool,
    /// Show logs since a timestamp (2013-01-02T13:23:37Z) or relative (42m)
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a timestamp or relative time
    #[arg(long)]
    until: Option<String>,
    /// Don't print the `name |` prefix
    #[arg(long)]
    no_log_prefix: bool,
    /// Produce monochrome output
    #[arg(long)]
    no_color: bool,
    /// The replica of the service to show (default: all)
    #[arg(long)]
    index: Option<u32>,
}

/// How lines are printed.
#[derive(Debug, Clone, Default)]
pub struct Style {
    pub timestamps: bool,
    pub prefix: bool,
    pub color: bool,
}

/// A serialised writer of prefixed lines.
pub struct Printer {
    style: Style,
    /// Prefix width: the longest container name seen.
    width: AtomicUsize,
    lock: Mutex<()>,
}

impl Printer {
    pub fn new(style: Style, containers: &[Container]) -> Self {
        let width = containers
            .iter()
            .map(|c| c.config.name.len())
            .max()
            .unwrap_or(0);
        Printer {
            style,
            width: AtomicUsize::new(width),
            lock: Mutex::new(()),
        }
    }

    /// Makes room for the prefix of a container that appeared later.
    pub fn widen(&self, name: &str) {
        self.width.fetch_max(name.len(), Ordering::Relaxed);
    }

    /// Prints one entry of container `index` (for the colour).
    pub fn entry(&self, index: usize, name: &str, e: &logs::Entry) -> io::Result<()> {
        let (on, off) = prefix_color(index, self.style.color);
        let mut line = String::new();
        if self.style.prefix {
            let w = self.width.load(Ordering::Relaxed);
            line.push_str(&format!("{on}{name:<w$} |{off} "));
        }
        if self.style.timestamps {
            line.push_str(&e.time);
            line.push(' ');
        }
        line.push_str(&e.log);
        if !line.ends_with('\n') {
            line.push('\n');
        }
        let _g = self.lock.lock();
        let mut out = io::stdout().lock();
        out.write_all(line.as_bytes())?;
        out.flush()
    }

    pub fn note(&self, text: &str) {
        let _g = self.lock.lock();
        println!("{text}");
    }
}

/// Prints what each container logged so far and, with `follow`, what it logs until it stops
/// (or `stop` is set). Returns when every container's stream has ended.
pub fn stream(
    engine: &Engine,
    containers: &[Container],
    printer: &Printer,
    opts: &ReadOptions,
    follow: bool,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut first: Vec<(usize, logs::Entry)> = Vec::new();
    let mut offsets = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let (entries, offset) = logs::read(&logs::path(&c.dir, c.id()), opts)?;
        first.extend(entries.into_iter().map(|e| (i, e)));
        offsets.push(offset);
    }
    // One interleaved history, oldest first (RFC 3339 strings of one format sort by time).
    first.sort_by(|a, b| a.1.time.cmp(&b.1.time));
    for (i, e) in &first {
        printer.entry(*i, &containers[*i].config.name, e)?;
    }
    if !follow {
        return Ok(());
    }
    let follow_opts = ReadOptions {
        tail: None,
        ..opts.clone()
    };
    std::thread::scope(|scope| {
        for (i, c) in containers.iter().enumerate() {
            let offset = offsets[i];
            let follow_opts = follow_opts.clone();
            scope.spawn(move || {
                let id = c.id().to_owned();
                let path = logs::path(&c.dir, &id);
                let _ = logs::follow(
                    &path,
                    offset,
                    &follow_opts,
                    |e| printer.entry(i, &c.config.name, e),
                    || {
                        stop.load(Ordering::Relaxed)
                            || engine
                                .store
                                .load(&id)
                                .map(|c| !c.state.is_active())
                                .unwrap_or(true)
                    },
                );
            });
        }
    });
    Ok(())
}

pub fn run(global: &GlobalOpts, a: LogsArgs) -> anyhow::Result<i32> {
    let st = stack::load_or_name(global, &a.services)?;
    let engine = stack::engine(global)?;
    let mut list = stack::containers(&engine, &st.project.name, &a.services, false)?;
    if let Some(n) = a.index {
        list.retain(|c| stack::number(c) == n);
    }
    let now = SystemTime::now();
    let parse = |s: &Option<String>| -> anyhow::Result<Option<SystemTime>> {
        s.as_deref()
            .map(|x| {
                time::parse_time_arg(x, now).ok_or_else(|| anyhow!("invalid time value {x:?}"))
            })
            .transpose()
    };
    let tail = match a.tail.as_str() {
        "all" | "-1" => None,
        t => Some(
            t.parse::<usize>()
                .map_err(|_| anyhow!("invalid --tail value {t:?}"))?,
        ),
    };
    let opts = ReadOptions {
        tail,
        since: parse(&a.since)?,
        until: parse(&a.until)?,
    };
    let printer = Printer::new(
        Style {
            timestamps: a.timestamps,
            prefix: !a.no_log_prefix,
            color: color_enabled(a.no_color),
        },
        &list,
    );
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    stream(&engine, &list, &printer, &opts, a.follow, &stop)?;
    Ok(0)
}
