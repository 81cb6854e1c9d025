//! `rcompose image …`: pull, push, ls, rm, tag, inspect, history, save, load, import, prune.
//!
//! The group takes its arguments raw and parses them with its own clap tree: the top-level
//! compose options claim `-f` and `-p` globally, while docker's image verbs use `-f` for
//! `--filter` / `--force`. A separate tree lets both keep their familiar spelling.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use engine::archive::{self, ImportOptions};
use engine::config::EngineConfig;
use engine::credentials::CredentialStore;
use engine::digest::Digest;
use engine::image::{ImageIndex, ImageRecord, ImageStore, RemoveEvent};
use engine::manifest::Platform;
use engine::reference::Reference;
use engine::registry::{
    self, LayerStatus, PullEvent, PullOptions, PushEvent, PushOptions, RegistryClient,
};
use serde_json::{json, Value};

use super::table;
use super::GlobalOpts;

pub mod project;

/// Raw arguments of `rcompose image`, parsed by [`ImageCli`].
#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., value_name = "COMMAND")]
    pub args: Vec<OsString>,
}

#[derive(Debug, Parser)]
#[command(name = "rcompose image", about = "Manage images")]
struct ImageCli {
    /// State root holding images, containers, volumes and networks
    #[arg(long = "root", global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Build an image from a Dockerfile
    Build(super::build::ImageBuildArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// List images
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Remove one or more images
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Remove unused images
    Prune(PruneArgs),
}

#[derive(Debug, clap::Args)]
struct PullArgs {
    /// Image to pull (NAME[:TAG|@DIGEST])
    name: String,
    /// Platform to pull (os/arch[/variant]) from a multi-platform image
    #[arg(long)]
    platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, clap::Args)]
struct PushArgs {
    /// Image to push (NAME[:TAG])
    name: String,
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, clap::Args)]
struct LsArgs {
    /// Only list images of this repository (REPOSITORY[:TAG])
    repository: Option<String>,
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Filter output (dangling=true|false, reference=PATTERN, label=KEY[=VALUE], before=IMAGE, since=IMAGE)
    #[arg(short, long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
    /// Output format: `table` or `json`
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
}

#[derive(Debug, clap::Args)]
struct RmArgs {
    /// Images to remove (name, tag, digest or id)
    #[arg(required = true)]
    images: Vec<String>,
    /// Force removal of the image
    #[arg(short, long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
struct TagArgs {
    source: String,
    target: String,
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct HistoryArgs {
    image: String,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Output format: `table` or `json`
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
}

#[derive(Debug, clap::Args)]
struct SaveArgs {
    #[arg(required = true)]
    images: Vec<String>,
    /// Write to a file instead of STDOUT
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct LoadArgs {
    /// Read from a tar archive file instead of STDIN
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// Tarball file, or `-` for STDIN
    file: String,
    /// Name the image (REPOSITORY[:TAG])
    reference: Option<String>,
    /// Apply a Dockerfile instruction to the image config (CMD, ENTRYPOINT, ENV, WORKDIR, EXPOSE, USER, LABEL, VOLUME, STOPSIGNAL)
    #[arg(short, long = "change", value_name = "CHANGE")]
    change: Vec<String>,
    /// Commit message for the imported image
    #[arg(short, long)]
    message: Option<String>,
    /// Platform of the image (os/arch[/variant])
    #[arg(long)]
    platform: Option<String>,
}

#[derive(Debug, clap::Args)]
struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

pub fn run(global: &GlobalOpts, args: ImageArgs) -> anyhow::Result<i32> {
    let argv = std::iter::once(OsString::from("rcompose image")).chain(args.args);
    let cli = match ImageCli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let code = e.exit_code();
            e.print().context("printing usage")?;
            return Ok(code);
        }
    };
    let root = cli.root.unwrap_or_else(|| global.root.clone());
    let store = || {
        ImageStore::open(&root)
            .with_context(|| format!("opening the image store under {}", root.display()))
    };
    match cli.command {
        ImageCommand::Build(a) => super::build::run_image_build(&root, a),
        ImageCommand::Pull(a) => pull(&store()?, a),
        ImageCommand::Push(a) => push(&store()?, a),
        ImageCommand::Ls(a) => ls(&store()?, a),
        ImageCommand::Rm(a) => rm(&store()?, a),
        ImageCommand::Tag(a) => {
            let target = Reference::parse(&a.target)?;
            store()?.tag(&a.source, &target)?;
            Ok(0)
        }
        ImageCommand::Inspect(a) => inspect(&store()?, a),
        ImageCommand::History(a) => history(&store()?, a),
        ImageCommand::Save(a) => save(&store()?, a),
        ImageCommand::Load(a) => load(&store()?, a),
        ImageCommand::Import(a) => import(&store()?, a),
        ImageCommand::Prune(a) => prune(&store()?, a),
    }
}

fn registry_client() -> anyhow::Result<RegistryClient> {
    let config = EngineConfig::load()?;
    let creds = match CredentialStore::load_default() {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "registry credentials unavailable; continuing anonymously");
            None
        }
    };
    Ok(RegistryClient::new(config, creds)?)
}

// ---------------------------------------------------------------- pull / push

/// Pulls one image, with docker-like progress on stderr... and the final lines on stdout.
pub fn pull_image(
    store: &ImageStore,
    name: &str,
    platform: Option<&str>,
    quiet: bool,
) -> anyhow::Result<ImageRecord> {
    let reference = Reference::parse(name)?;
    let platform = platform.map(str::parse::<Platform>).transpose()?;
    let client = registry_client()?;
    let printer = Arc::new(Mutex::new(Progress::new(quiet)));
    let p2 = printer.clone();
    let progress: Arc<dyn Fn(PullEvent) + Send + Sync> = Arc::new(move |ev| {
        if let Ok(mut p) = p2.lock() {
            p.pull_event(ev);
        }
    });
    let out = registry::blocking::pull(
        &client,
        store,
        &reference,
        &PullOptions { platform },
        progress,
    )
    .with_context(|| format!("pulling {}", reference.familiar()))?;
    if let Ok(mut p) = printer.lock() {
        p.finish();
    }
    if !quiet {
        println!("Digest: {}", out.digest);
        let status = if out.up_to_date {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        };
        println!("Status: {status} {}", reference.familiar());
    }
    Ok(out.record)
}

fn pull(store: &ImageStore, a: PullArgs) -> anyhow::Result<i32> {
    pull_image(store, &a.name, a.platform.as_deref(), a.quiet)?;
    println!("{}", Reference::parse(&a.name)?);
    Ok(0)
}

fn push(store: &ImageStore, a: PushArgs) -> anyhow::Result<i32> {
    let target = Reference::parse(&a.name)?;
    if target.digest().is_some() {
        bail!("cannot push a digest reference ({}); push a tag", a.name);
    }
    push_image(store, &target, a.quiet)?;
    if a.quiet {
        println!("{}", target.familiar());
    }
    Ok(0)
}

/// Pushes the local image named `target` to its registry, printing docker-like progress unless
/// `quiet`.
pub fn push_image(store: &ImageStore, target: &Reference, quiet: bool) -> anyhow::Result<()> {
    let rec = store.resolve(&target.to_string())?;
    let client = registry_client()?;
    if !quiet {
        println!("The push refers to repository [{}]", target.name());
    }
    let progress: Arc<dyn Fn(PushEvent) + Send + Sync> = Arc::new(move |ev| {
        if quiet {
            return;
        }
        let line = match ev {
            PushEvent::Preparing { id } => format!("{id}: Preparing"),
            PushEvent::Pushing { .. } => return,
            PushEvent::Pushed { id } => format!("{id}: Pushed"),
            PushEvent::Mounted { id, from } => format!("{id}: Mounted from {from}"),
            PushEvent::AlreadyExists { id } => format!("{id}: Layer already exists"),
        };
        println!("{line}");
    });
    let out = registry::blocking::push(
        &client,
        store,
        &rec,
        target,
        &PushOptions::default(),
        progress,
    )
    .with_context(|| format!("pushing {}", target.familiar()))?;
    // Remember where the image now lives, so later pushes can mount from it.
    let repo_digest = target
        .without_tag()
        .with_digest(out.digest.clone())
        .to_string();
    store.update(|idx| {
        if let Some(r) = idx.images.get_mut(&rec.manifest) {
            if !r.repo_digests.contains(&repo_digest) {
                r.repo_digests.push(repo_digest.clone());
            }
        }
        Ok(())
    })?;
    if !quiet {
        println!("{}: digest: {} size: {}", out.tag, out.digest, out.size);
    }
    Ok(())
}

/// Pull progress: in place per layer on a terminal, one line per step otherwise.
struct Progress {
    quiet: bool,
    tty: bool,
    layers: Vec<(String, String)>,
    drawn: usize,
    last_draw: Instant,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        Progress {
            quiet,
            tty: io::stdout().is_terminal(),
            layers: Vec::new(),
            drawn: 0,
            last_draw: Instant::now(),
        }
    }

    fn pull_event(&mut self, ev: PullEvent) {
        if self.quiet {
            return;
        }
        match ev {
            PullEvent::PullingFrom { tag, repository } => {
                self.line(format!("{tag}: Pulling from {repository}"))
            }
            PullEvent::EndpointFailed { host, error } => {
                self.line(format!("mirror {host} failed ({error}); trying next"))
            }
            PullEvent::Layer { id, status } => {
                let downloading = matches!(status, LayerStatus::Downloading { .. });
                let text = match status {
                    LayerStatus::Waiting => "Pulling fs layer".to_owned(),
                    LayerStatus::AlreadyExists => "Already exists".to_owned(),
                    LayerStatus::Downloading { done, total } => {
                        if !self.tty {
                            // One line per step: the first chunk announces the download, no more.
                            if self
                                .status_of(&id)
                                .is_some_and(|s| s.starts_with("Downloading"))
                            {
                                return;
                            }
                            "Downloading".to_owned()
                        } else {
                            format!(
                                "Downloading {} {}/{}",
                                bar(done, total),
                                human_size(done),
                                human_size(total)
                            )
                        }
                    }
                    LayerStatus::Verifying => "Verifying Checksum".to_owned(),
                    LayerStatus::DownloadComplete => "Download complete".to_owned(),
                    LayerStatus::Extracting => "Extracting".to_owned(),
                    LayerStatus::PullComplete => "Pull complete".to_owned(),
                    LayerStatus::Retrying { attempt, error } => {
                        format!("Retrying (attempt {attempt}): {error}")
                    }
                };
                if self.tty {
                    match self.layers.iter_mut().find(|(l, _)| *l == id) {
                        Some(entry) => entry.1 = text,
                        None => self.layers.push((id, text)),
                    }
                    // Redraw at most ten times a second for byte counts; always for status changes.
                    if !downloading || self.last_draw.elapsed() >= Duration::from_millis(100) {
                        self.redraw();
                    }
                } else {
                    match self.layers.iter_mut().find(|(l, _)| *l == id) {
                        Some(entry) => entry.1 = text.clone(),
                        None => self.layers.push((id.clone(), text.clone())),
                    }
                    println!("{id}: {text}");
                }
            }
        }
    }

    fn status_of(&self, id: &str) -> Option<&str> {
        self.layers
            .iter()
            .find(|(l, _)| l == id)
            .map(|(_, s)| s.as_str())
    }

    fn line(&mut self, s: String) {
        println!("{s}");
    }

    fn redraw(&mut self) {
        let mut out = io::stdout().lock();
        let mut buf = String::new();
        if self.drawn > 0 {
            buf.push_str(&format!("\x1b[{}A", self.drawn));
        }
        for (id, status) in &self.layers {
            buf.push_str(&format!("\x1b[2K{id}: {status}\n"));
        }
        let _ = out.write_all(buf.as_bytes());
        let _ = out.flush();
        self.drawn = self.layers.len();
        self.last_draw = Instant::now();
    }

    fn finish(&mut self) {
        if self.tty && !self.quiet {
            self.redraw();
        }
    }
}

fn bar(done: u64, total: u64) -> String {
    const W: u64 = 50;
    let filled = (done.min(total) * W).checked_div(total).unwrap_or(W);
    let mut s = String::from("[");
    for i in 0..W {
        s.push(if i < filled.saturating_sub(1) {
            '='
        } else if i == filled.saturating_sub(1) {
            '>'
        } else {
            ' '
        });
    }
    s.push(']');
    s
}

// ---------------------------------------------------------------- ls

struct Row {
    repo: String,
    tag: String,
    digest: String,
    rec: ImageRecord,
}

fn rows(idx: &ImageIndex) -> Vec<Row> {
    let mut out = Vec::new();
    for rec in idx.images.values() {
        let tags = idx.tags_of(&rec.manifest);
        let digest_for = |name: &str| {
            rec.repo_digests
                .iter()
                .filter_map(|d| Reference::parse(d).ok())
                .find(|r| r.familiar_name() == name)
                .and_then(|r| r.digest().map(|d| d.to_string()))
                .unwrap_or_else(|| "<none>".to_owned())
        };
        if tags.is_empty() {
            let repos: Vec<Reference> = rec
                .repo_digests
                .iter()
                .filter_map(|d| Reference::parse(d).ok())
                .collect();
            if repos.is_empty() {
                out.push(Row {
                    repo: "<none>".into(),
                    tag: "<none>".into(),
                    digest: "<none>".into(),
                    rec: rec.clone(),
                });
            }
            for r in repos {
                let digest = r
                    .digest()
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "<none>".to_owned());
                out.push(Row {
                    repo: r.familiar_name(),
                    tag: "<none>".into(),
                    digest,
                    rec: rec.clone(),
                });
            }
        }
        for t in tags {
            let name = t.familiar_name();
            out.push(Row {
                digest: digest_for(&name),
                repo: name,
                tag: t.tag().unwrap_or("").to_owned(),
                rec: rec.clone(),
            });
        }
    }
    // Newest first, as docker lists.
    out.sort_by(|a, b| {
        created_secs(&b.rec)
            .cmp(&created_secs(&a.rec))
            .then(a.repo.cmp(&b.repo))
            .then(a.tag.cmp(&b.tag))
    });
    out
}

fn created_secs(rec: &ImageRecord) -> i64 {
    rec.created
        .as_deref()
        .and_then(archive::parse_rfc3339)
        .unwrap_or(0)
}

fn ls(store: &ImageStore, a: LsArgs) -> anyhow::Result<i32> {
    let idx = store.index()?;
    let mut rows = rows(&idx);
    for f in &a.filter {
        let (key, val) = f
            .split_once('=')
            .with_context(|| format!("bad filter {f:?}: expected KEY=VALUE"))?;
        match key {
            "dangling" => {
                let want = match val {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => bail!("invalid filter 'dangling={val}'"),
                };
                rows.retain(|r| (r.tag == "<none>") == want);
            }
            "reference" => {
                rows.retain(|r| glob(val, &r.repo) || glob(val, &format!("{}:{}", r.repo, r.tag)))
            }
            "label" => {
                let (k, v) = val
                    .split_once('=')
                    .map_or((val, None), |(k, v)| (k, Some(v)));
                let mut keep = std::collections::HashSet::new();
                for r in &rows {
                    let labels = store
                        .config(&r.rec)
                        .ok()
                        .and_then(|c| c.config)
                        .and_then(|c| c.labels)
                        .unwrap_or_default();
                    if labels
                        .get(k)
                        .is_some_and(|have| v.is_none_or(|v| v == have))
                    {
                        keep.insert(r.rec.manifest.clone());
                    }
                }
                rows.retain(|r| keep.contains(&r.rec.manifest));
            }
            "before" | "since" => {
                let pivot = created_secs(&idx.resolve(val)?.clone());
                if key == "before" {
                    rows.retain(|r| created_secs(&r.rec) < pivot);
                } else {
                    rows.retain(|r| created_secs(&r.rec) > pivot);
                }
            }
            other => bail!("invalid filter '{other}'"),
        }
    }
    if let Some(repo) = &a.repository {
        let (name, tag) = match repo.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n.to_owned(), Some(t.to_owned())),
            _ => (repo.clone(), None),
        };
        let name = Reference::parse_named(&name)
            .map(|r| r.familiar_name())
            .unwrap_or(name);
        rows.retain(|r| r.repo == name && tag.as_ref().is_none_or(|t| *t == r.tag));
    }
    let _ = a.all; // Every image is listed: rcompose keeps no hidden intermediate images.
    let id = |r: &Row| {
        if a.no_trunc {
            r.rec.id.to_string()
        } else {
            r.rec.id.short().to_owned()
        }
    };
    if a.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for r in &rows {
            if seen.insert(r.rec.id.clone()) {
                println!("{}", id(r));
            }
        }
        return Ok(0);
    }
    if a.format == "json" {
        for r in &rows {
            let v = json!({
                "Containers": "N/A",
                "CreatedAt": r.rec.created.clone().unwrap_or_default(),
                "CreatedSince": since(created_secs(&r.rec)),
                "Digest": r.digest,
                "ID": id(r),
                "Repository": r.repo,
                "SharedSize": "N/A",
                "Size": human_size(r.rec.size),
                "Tag": r.tag,
                "UniqueSize": "N/A",
                "VirtualSize": human_size(r.rec.size),
            });
            println!("{v}");
        }
        return Ok(0);
    }
    if a.digests {
        let body: Vec<[String; 6]> = rows
            .iter()
            .map(|r| {
                [
                    r.repo.clone(),
                    r.tag.clone(),
                    r.digest.clone(),
                    id(r),
                    since(created_secs(&r.rec)),
                    human_size(r.rec.size),
                ]
            })
            .collect();
        print!(
            "{}",
            table::render(
                &["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"],
                &body
            )
        );
    } else {
        let body: Vec<[String; 5]> = rows
            .iter()
            .map(|r| {
                [
                    r.repo.clone(),
                    r.tag.clone(),
                    id(r),
                    since(created_secs(&r.rec)),
                    human_size(r.rec.size),
                ]
            })
            .collect();
        print!(
            "{}",
            table::render(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], &body)
        );
    }
    Ok(0)
}

/// Shell-style glob with `*` and `?` (what `reference=` filters use).
fn glob(pattern: &str, s: &str) -> bool {
    fn m(p: &[char], s: &[char]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some('*'), _) => m(&p[1..], s) || (!s.is_empty() && s[0] != '/' && m(p, &s[1..])),
            (Some('?'), Some(_)) => m(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => m(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    m(&p, &s)
}

// ---------------------------------------------------------------- rm / prune

fn in_use(store: &ImageStore) -> impl Fn(&Digest) -> bool + '_ {
    move |id| {
        engine::usage::containers_using(store.root(), id)
            .map(|c| !c.is_empty())
            .unwrap_or(true)
    }
}

fn print_events(events: &[RemoveEvent]) {
    for e in events {
        match e {
            RemoveEvent::Untagged(n) => println!("Untagged: {n}"),
            RemoveEvent::Deleted(d) => println!("Deleted: {d}"),
        }
    }
}

fn rm(store: &ImageStore, a: RmArgs) -> anyhow::Result<i32> {
    let mut code = 0;
    for name in &a.images {
        match store.remove(name, a.force, &in_use(store)) {
            Ok(events) => print_events(&events),
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// Untags (and deletes when nothing else names it) one image, refusing one a container uses.
pub fn remove_image(store: &ImageStore, name: &str) -> anyhow::Result<()> {
    store.remove(name, false, &in_use(store))?;
    Ok(())
}

fn prune(store: &ImageStore, a: PruneArgs) -> anyhow::Result<i32> {
    if !a.force {
        let what = if a.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        io::stdin()
            .read_line(&mut answer)
            .context("reading the confirmation")?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let before: u64 = store
        .content
        .list()?
        .iter()
        .filter_map(|d| store.content.size(d).ok())
        .sum();
    let events = store.prune(a.all, &in_use(store))?;
    let after: u64 = store
        .content
        .list()?
        .iter()
        .filter_map(|d| store.content.size(d).ok())
        .sum();
    if !events.is_empty() {
        println!("Deleted Images:");
        for e in &events {
            match e {
                RemoveEvent::Untagged(n) => println!("untagged: {n}"),
                RemoveEvent::Deleted(d) => println!("deleted: {d}"),
            }
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(before.saturating_sub(after))
    );
    Ok(0)
}

// ---------------------------------------------------------------- inspect / history

fn inspect(store: &ImageStore, a: InspectArgs) -> anyhow::Result<i32> {
    let idx = store.index()?;
    let mut out = Vec::new();
    let mut code = 0;
    for name in &a.images {
        let rec = match idx.resolve(name) {
            Ok(r) => r.clone(),
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
                continue;
            }
        };
        let cfg = store.config(&rec)?;
        let raw: Value = serde_json::from_slice(&store.content.read(&rec.id)?)?;
        let tags: Vec<String> = idx
            .tags_of_id(&rec.id)
            .iter()
            .map(|t| t.familiar())
            .collect();
        let digests: Vec<String> = rec
            .repo_digests
            .iter()
            .filter_map(|d| Reference::parse(d).ok())
            .map(|r| r.familiar())
            .collect();
        out.push(json!({
            "Id": rec.id.to_string(),
            "RepoTags": tags,
            "RepoDigests": digests,
            "Parent": "",
            "Comment": cfg.history.last().and_then(|h| h.comment.clone()).unwrap_or_default(),
            "Created": cfg.created.clone().unwrap_or_default(),
            "Author": cfg.author.clone().unwrap_or_default(),
            "Config": raw.get("config").cloned().unwrap_or(Value::Null),
            "Architecture": cfg.architecture,
            "Variant": cfg.variant,
            "Os": cfg.os,
            "Size": rec.size,
            "RootFS": {"Type": "layers", "Layers": cfg.rootfs.diff_ids},
            "Descriptor": {"mediaType": rec.manifest_media_type, "digest": rec.manifest.to_string(),
                "size": store.content.size(&rec.manifest).unwrap_or(0)},
            "Metadata": {"LastTagTime": archive::format_rfc3339(rec.added)},
        }));
    }
    println!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
    Ok(code)
}

fn history(store: &ImageStore, a: HistoryArgs) -> anyhow::Result<i32> {
    let rec = store.resolve(&a.image)?;
    let cfg = store.config(&rec)?;
    let mut sizes = rec.layers.iter().map(|l| {
        store
            .snapshots
            .info(&l.chain_id)
            .map(|i| i.size)
            .unwrap_or(l.descriptor.size)
    });
    let mut entries: Vec<(String, String, u64, String, String)> = Vec::new();
    let history = if cfg.history.is_empty() {
        rec.layers
            .iter()
            .map(|_| engine::manifest::History::default())
            .collect()
    } else {
        cfg.history.clone()
    };
    for h in &history {
        let size = if h.empty_layer {
            0
        } else {
            sizes.next().unwrap_or(0)
        };
        entries.push((
            "<missing>".to_owned(),
            h.created.clone().unwrap_or_default(),
            size,
            h.created_by.clone().unwrap_or_default(),
            h.comment.clone().unwrap_or_default(),
        ));
    }
    entries.reverse();
    if let Some(first) = entries.first_mut() {
        first.0 = if a.no_trunc {
            rec.id.to_string()
        } else {
            rec.id.short().to_owned()
        };
    }
    if a.quiet {
        for e in &entries {
            println!("{}", e.0);
        }
        return Ok(0);
    }
    if a.format == "json" {
        for e in &entries {
            println!(
                "{}",
                json!({"ID": e.0, "CreatedAt": e.1, "CreatedSince": since(archive::parse_rfc3339(&e.1).unwrap_or(0)),
                    "CreatedBy": e.3, "Size": human_size(e.2), "Comment": e.4})
            );
        }
        return Ok(0);
    }
    let body: Vec<[String; 5]> = entries
        .iter()
        .map(|e| {
            let by = if a.no_trunc || e.3.chars().count() <= 45 {
                e.3.clone()
            } else {
                format!("{}…", e.3.chars().take(44).collect::<String>())
            };
            [
                e.0.clone(),
                since(archive::parse_rfc3339(&e.1).unwrap_or(0)),
                by,
                human_size(e.2),
                e.4.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
            &body
        )
    );
    Ok(0)
}

// ---------------------------------------------------------------- save / load / import

fn save(store: &ImageStore, a: SaveArgs) -> anyhow::Result<i32> {
    let idx = store.index()?;
    let mut images: Vec<(ImageRecord, Vec<Reference>)> = Vec::new();
    for name in &a.images {
        let rec = idx.resolve(name)?.clone();
        // Named by tag: that tag; by id or digest: every tag of the image.
        let tags = match Reference::parse(name) {
            Ok(r) if idx.tags.contains_key(&r.to_string()) => vec![r],
            _ => idx.tags_of(&rec.manifest),
        };
        match images.iter_mut().find(|(r, _)| r.manifest == rec.manifest) {
            Some((_, t)) => t.extend(
                tags.into_iter()
                    .filter(|x| !t.contains(x))
                    .collect::<Vec<_>>(),
            ),
            None => images.push((rec, tags)),
        }
    }
    match &a.output {
        Some(path) => archive::save_to_path(store, &images, path)
            .with_context(|| format!("writing {}", path.display()))?,
        None => {
            let stdout = io::stdout();
            if stdout.is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            archive::save(store, &images, BufWriter::new(stdout.lock()))?;
        }
    }
    Ok(0)
}

fn load(store: &ImageStore, a: LoadArgs) -> anyhow::Result<i32> {
    let input: Box<dyn Read> = match &a.input {
        Some(p) => Box::new(File::open(p).with_context(|| format!("opening {}", p.display()))?),
        None => {
            if io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            Box::new(io::stdin().lock())
        }
    };
    let loaded = archive::load(store, input)?;
    if !a.quiet {
        for l in &loaded {
            if l.tags.is_empty() {
                println!("Loaded image ID: {}", l.record.id);
            }
            for t in &l.tags {
                println!("Loaded image: {}", t.familiar());
            }
        }
    }
    Ok(0)
}

fn import(store: &ImageStore, a: ImportArgs) -> anyhow::Result<i32> {
    let input: Box<dyn Read> = if a.file == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(&a.file).with_context(|| format!("opening {}", a.file))?)
    };
    let opts = ImportOptions {
        changes: a.change,
        message: a.message,
        platform: a
            .platform
            .as_deref()
            .map(str::parse::<Platform>)
            .transpose()?,
        tag: a.reference.as_deref().map(Reference::parse).transpose()?,
    };
    let out = archive::import(store, input, &opts)?;
    println!("{}", out.record.id);
    Ok(0)
}

// ---------------------------------------------------------------- formatting

/// Sizes as docker prints them: decimal units, three significant digits (`4.26MB`).
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    format!("{s}{}", UNITS[u])
}

/// "3 weeks ago", as docker's `CreatedSince`.
pub fn since(created: i64) -> String {
    if created <= 0 {
        return "N/A".to_owned();
    }
    let now = i64::try_from(engine::image::now_secs()).unwrap_or(i64::MAX);
    let secs = (now - created).max(0);
    let d = |n: i64, unit: &str| format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" });
    let (min, hour, day) = (60, 3600, 86_400);
    match secs {
        s if s < 1 => "Less than a second ago".to_owned(),
        s if s < min => d(s, "second"),
        s if s < 2 * min => "About a minute ago".to_owned(),
        s if s < hour => d(s / min, "minute"),
        s if s < 2 * hour => "About an hour ago".to_owned(),
        s if s < 2 * day => d(s / hour, "hour"),
        s if s < 14 * day => d(s / day, "day"),
        s if s < 60 * day => d(s / (7 * day), "week"),
        s if s < 730 * day => d(s / (30 * day), "month"),
        s => d(s / (365 * day), "year"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_234), "4.26MB");
        assert_eq!(human_size(56_700_000), "56.7MB");
        assert_eq!(human_size(1_000_000), "1MB");
        assert_eq!(human_size(1_240_000_000), "1.24GB");
    }

    #[test]
    fn globs() {
        assert!(glob("busy*", "busybox"));
        assert!(glob("busybox:*", "busybox:latest"));
        assert!(!glob("busy*", "library/busybox"));
        assert!(glob("*/app", "team/app"));
        assert!(glob("a?c", "abc"));
    }

    #[test]
    fn since_phrases() {
        let now = i64::try_from(engine::image::now_secs()).unwrap();
        assert_eq!(since(now - 30), "30 seconds ago");
        assert_eq!(since(now - 3 * 86_400), "3 days ago");
        assert_eq!(since(now - 21 * 86_400), "3 weeks ago");
        assert_eq!(since(0), "N/A");
    }

    #[test]
    fn subcommands_parse() {
        use clap::CommandFactory;
        ImageCli::command().debug_assert();
        let c = ImageCli::try_parse_from(["x", "ls", "-f", "dangling=true", "-a", "--root", "/r"])
            .unwrap();
        assert_eq!(c.root, Some(PathBuf::from("/r")));
        assert!(matches!(
            c.command,
            ImageCommand::Ls(LsArgs { all: true, .. })
        ));
        let c = ImageCli::try_parse_from(["x", "rm", "-f", "a", "b"]).unwrap();
        assert!(matches!(
            c.command,
            ImageCommand::Rm(RmArgs { force: true, .. })
        ));
        let c =
            ImageCli::try_parse_from(["x", "import", "-", "app:1", "-c", "CMD [\"sh\"]"]).unwrap();
        assert!(matches!(c.command, ImageCommand::Import(ImportArgs { .. })));
    }
}
