//! Runs a parsed Dockerfile: each stage from its base, `RUN` in a container of the stage's
//! current layers (host network; the build context is never mounted), `COPY`/`ADD`/`WORKDIR` as
//! layers written directly, metadata steps into the config only. Every layer step has a cache
//! key chained from the previous one; a hit reuses the layer and its history time, so an
//! unchanged rebuild gives the same image id.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::ast::{Command, CopySpec, Dockerfile, Healthcheck, Kind, Stage};
use super::cache::{BuildCache, CachedLayer};
use super::dockerfile::{self, expand_heredoc, expand_with_escape, expand_words};
use super::ignore::IgnoreMatcher;
use super::layer::{self, clean, Entry, Source};
use crate::container::logs::{self, ReadOptions};
use crate::container::ops::Engine;
use crate::container::record::{ContainerConfig, NetworkMode};
use crate::container::ContainerError;
use crate::digest::Digest;
use crate::image::{now_secs, ImageError, ImageRecord, ImageStore, LayerRecord};
use crate::manifest::{media, Descriptor, History, ImageConfig, Manifest, Platform, RootFs};
use crate::reference::Reference;
use crate::snapshot::chain_ids;
use crate::unpack::{unpack_layer, UnpackError, UnpackOptions};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Parse(#[from] dockerfile::ParseError),
    #[error("Dockerfile:{line}: step {step} ({instruction}): {msg}")]
    Step {
        step: usize,
        line: usize,
        instruction: String,
        msg: String,
    },
    #[error("Dockerfile:{line}: step {step}: RUN {command} failed with exit code {code}")]
    RunFailed {
        step: usize,
        line: usize,
        command: String,
        code: i32,
    },
    #[error("target stage {0:?} not found")]
    NoTarget(String),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
    let what = what.into();
    move |source| BuildError::Io { what, source }
}

/// What to build and how.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub context: PathBuf,
    /// The Dockerfile's text.
    pub dockerfile: String,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub tags: Vec<Reference>,
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    /// Pull base images even when present.
    pub pull: bool,
    pub extra_hosts: Vec<String>,
    pub shm_size: u64,
    /// Every RUN without network (`build.network: none`), as `RUN --network=none` does for one.
    pub no_network: bool,
}

/// Pulls an image into the store (`platform` as written in `FROM --platform`).
pub type PullHook<'a> = &'a dyn Fn(&str, Option<&str>) -> Result<(), String>;

/// What the builder asks of its caller.
pub struct BuildHooks<'a> {
    pub pull: PullHook<'a>,
    /// One line of progress or step output.
    pub output: &'a dyn Fn(&str),
}

/// A stage being built.
#[derive(Debug, Clone, Default)]
struct State {
    layers: Vec<LayerRecord>,
    config: ImageConfig,
    /// ARG values in scope (not persisted into the image).
    args: BTreeMap<String, String>,
    shell: Vec<String>,
    /// The running cache key.
    key: String,
    /// History time of the latest step (metadata steps reuse it, keeping digests stable).
    time: String,
    /// The Dockerfile's escape character.
    escape: char,
}

impl State {
    fn run(&mut self) -> &mut crate::manifest::RunConfig {
        self.config.config.get_or_insert_with(Default::default)
    }

    fn env(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default()
    }

    fn lookup(&self, name: &str) -> Option<String> {
        let env = self.env();
        env.iter()
            .rev()
            .find_map(|e| e.strip_prefix(&format!("{name}=")).map(str::to_owned))
            .or_else(|| self.args.get(name).cloned())
    }

    fn expand(&self, word: &str) -> Result<String, String> {
        expand_with_escape(word, self.escape, &|n| self.lookup(n)).map_err(|e| e.to_string())
    }

    fn expand_words(&self, text: &str) -> Result<Vec<String>, String> {
        expand_words(text, self.escape, &|n| self.lookup(n)).map_err(|e| e.to_string())
    }

    fn workdir(&self) -> String {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }

    fn chain(&mut self, part: &str) {
        let mut h = crate::digest::Hasher::new();
        h.update(self.key.as_bytes());
        h.update(b"\n");
        h.update(part.as_bytes());
        self.key = h.finish().hex().to_owned();
    }

    fn history(&mut self, created_by: String, empty_layer: bool) {
        self.config.history.push(History {
            created: Some(self.time.clone()),
            created_by: Some(created_by),
            author: None,
            comment: None,
            empty_layer,
        });
    }
}

struct Builder<'a> {
    root: PathBuf,
    store: ImageStore,
    engine: Engine,
    cache: BuildCache,
    opts: &'a BuildOptions,
    hooks: &'a BuildHooks<'a>,
    ignore: IgnoreMatcher,
    stages: Vec<(Option<String>, State)>,
    step: usize,
    total: usize,
}

/// Builds the image and tags it; returns its record.
pub fn build(
    root: &Path,
    opts: &BuildOptions,
    hooks: &BuildHooks<'_>,
) -> Result<ImageRecord, BuildError> {
    let df = dockerfile::parse(&opts.dockerfile)?;
    let target = match &opts.target {
        Some(t) => df
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
            .ok_or_else(|| BuildError::NoTarget(t.clone()))?,
        None => df.stages.len().saturating_sub(1),
    };
    let ignore_text = fs::read_to_string(opts.context.join(".dockerignore")).unwrap_or_default();
    let ignore = IgnoreMatcher::parse(&ignore_text).map_err(|e| BuildError::Step {
        step: 0,
        line: 0,
        instruction: ".dockerignore".into(),
        msg: e.to_string(),
    })?;
    let total = df.stages[..=target.min(df.stages.len().saturating_sub(1))]
        .iter()
        .map(|s| 1 + s.instructions.len())
        .sum();
    let mut b = Builder {
        root: root.to_owned(),
        store: ImageStore::open(root)?,
        engine: Engine::open(root)?,
        cache: BuildCache::open(root),
        opts,
        hooks,
        ignore,
        stages: Vec::new(),
        step: 0,
        total,
    };
    if df.stages.is_empty() {
        return Err(BuildError::Step {
            step: 0,
            line: 0,
            instruction: "FROM".into(),
            msg: "the Dockerfile has no FROM".into(),
        });
    }
    for stage in &df.stages[..=target] {
        let state = b.stage(&df, stage)?;
        b.stages.push((stage.name.clone(), state));
    }
    let (_, mut last) = b.stages.pop().unwrap_or_default();
    if !opts.labels.is_empty() {
        let labels = last.run().labels.get_or_insert_with(BTreeMap::new);
        labels.extend(opts.labels.clone());
    }
    b.finish(last)
}

fn global_lookup<'a>(
    df: &'a Dockerfile,
    opts: &'a BuildOptions,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name: &str| {
        let decl = df.global_args.iter().find(|a| a.name == name)?;
        opts.build_args
            .get(name)
            .cloned()
            .or_else(|| decl.default.clone())
    }
}

impl Builder<'_> {
    fn say(&self, line: &str) {
        (self.hooks.output)(line);
    }

    fn next_step(&mut self, text: &str) {
        self.step += 1;
        let first = text.lines().next().unwrap_or("");
        self.say(&format!("Step {}/{} : {first}", self.step, self.total));
    }

    fn stage(&mut self, df: &Dockerfile, stage: &Stage) -> Result<State, BuildError> {
        let lookup = global_lookup(df, self.opts);
        let base = expand_with_escape(&stage.base, df.escape, &lookup)
            .map_err(|e| self.err(stage.line, "FROM", e))?;
        let platform = stage.platform.as_deref();
        self.next_step(&format!(
            "FROM {base}{}",
            stage
                .name
                .as_ref()
                .map(|n| format!(" AS {n}"))
                .unwrap_or_default()
        ));
        let mut state = self.base_state(&base, platform, stage.line)?;
        state.escape = df.escape;
        // ONBUILD triggers of the base run first, and are not inherited further.
        let triggers: Vec<String> = state
            .run()
            .extra
            .remove("OnBuild")
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        if !triggers.is_empty() {
            self.say(&format!("# Executing {} build trigger(s)", triggers.len()));
        }
        for t in triggers {
            let kind = dockerfile::parse_trigger(&t)?;
            let inst = super::ast::Instruction {
                line: stage.line,
                original: t.clone(),
                kind,
            };
            self.instruction(&mut state, df, &inst)?;
        }
        for inst in &stage.instructions {
            self.next_step(&inst.original);
            self.instruction(&mut state, df, inst)?;
        }
        Ok(state)
    }

    fn err(&self, line: usize, instruction: &str, msg: impl ToString) -> BuildError {
        BuildError::Step {
            step: self.step,
            line,
            instruction: instruction.to_owned(),
            msg: msg.to_string(),
        }
    }

    fn base_state(
        &mut self,
        base: &str,
        platform: Option<&str>,
        line: usize,
    ) -> Result<State, BuildError> {
        let lower = base.to_ascii_lowercase();
        if let Some((_, s)) = self
            .stages
            .iter()
            .rev()
            .find(|(n, _)| n.as_deref() == Some(lower.as_str()))
        {
            let mut s = s.clone();
            s.args.clear();
            return Ok(s);
        }
        let mut state = State {
            shell: vec!["/bin/sh".into(), "-c".into()],
            ..Default::default()
        };
        if lower == "scratch" {
            let host = Platform::host();
            state.config = ImageConfig {
                architecture: host.architecture,
                os: host.os,
                rootfs: RootFs {
                    kind: "layers".into(),
                    diff_ids: Vec::new(),
                },
                ..Default::default()
            };
            state.key = "scratch".into();
            state.time = crate::container::time::now();
            return Ok(state);
        }
        let rec = match self.store.resolve(base) {
            Ok(r) if !self.opts.pull => r,
            _ => {
                self.say(&format!(" ---> pulling {base}"));
                (self.hooks.pull)(base, platform)
                    .map_err(|e| self.err(line, "FROM", format!("pulling {base}: {e}")))?;
                self.store.resolve(base)?
            }
        };
        state.config = self.store.config(&rec)?;
        state.layers = rec.layers.clone();
        if let Some(shell) = state.config.config.as_ref().and_then(|c| c.shell.clone()) {
            state.shell = shell;
        }
        state.key = format!("from {}", rec.id);
        state.time = state
            .config
            .created
            .clone()
            .unwrap_or_else(crate::container::time::now);
        Ok(state)
    }

    fn instruction(
        &mut self,
        st: &mut State,
        df: &Dockerfile,
        inst: &super::ast::Instruction,
    ) -> Result<(), BuildError> {
        let line = inst.line;
        let name = inst
            .original
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let e = |b: &Self, m: String| b.err(line, &name, m);
        macro_rules! x {
            ($w:expr) => {
                st.expand($w).map_err(|m| e(self, m))?
            };
        }
        match &inst.kind {
            Kind::Arg(decls) => {
                for d in decls {
                    let value = match self.opts.build_args.get(&d.name) {
                        Some(v) => Some(v.clone()),
                        None => match &d.default {
                            Some(def) => Some(x!(def)),
                            // A redeclared global ARG takes the global value.
                            None => global_lookup(df, self.opts)(&d.name),
                        },
                    };
                    st.args.insert(d.name.clone(), value.unwrap_or_default());
                    st.chain(&format!("ARG {}={}", d.name, st.args[&d.name]));
                }
                return Ok(());
            }
            Kind::Env(pairs) => {
                let mut expanded = Vec::new();
                for (k, v) in pairs {
                    expanded.push((k.clone(), x!(v)));
                }
                let env = st.run().env.get_or_insert_with(Vec::new);
                for (k, v) in expanded {
                    env.retain(|e| e.split('=').next() != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
            }
            Kind::Label(pairs) => {
                let mut expanded = Vec::new();
                for (k, v) in pairs {
                    expanded.push((x!(k), x!(v)));
                }
                st.run()
                    .labels
                    .get_or_insert_with(BTreeMap::new)
                    .extend(expanded);
            }
            Kind::Expose(ports) => {
                let mut list = Vec::new();
                for p in ports {
                    for p in st.expand_words(p).map_err(|m| e(self, m))? {
                        list.push(if p.contains('/') {
                            p
                        } else {
                            format!("{p}/tcp")
                        });
                    }
                }
                let ep = st.run().exposed_ports.get_or_insert_with(BTreeMap::new);
                for p in list {
                    ep.insert(p, json!({}));
                }
            }
            Kind::Volume(vols) => {
                let mut list = Vec::new();
                for v in vols {
                    list.push(x!(v));
                }
                let vs = st.run().volumes.get_or_insert_with(BTreeMap::new);
                for v in list {
                    vs.insert(v, json!({}));
                }
            }
            Kind::User(u) => {
                let u = x!(u);
                st.run().user = Some(u);
            }
            Kind::Cmd(c) => {
                let c = command_words(c, &st.shell);
                st.run().cmd = Some(c);
            }
            Kind::Entrypoint(c) => {
                let c = command_words(c, &st.shell);
                let run = st.run();
                run.entrypoint = Some(c);
                // As docker: an ENTRYPOINT resets the CMD inherited from the base.
                run.cmd = None;
            }
            Kind::Shell(words) => {
                st.shell = words.clone();
                st.run().shell = Some(words.clone());
            }
            Kind::StopSignal(s) => {
                let s = x!(s);
                st.run().stop_signal = Some(s);
            }
            Kind::Healthcheck(h) => {
                let v = healthcheck_json(h, &st.shell).map_err(|m| e(self, m))?;
                st.run().healthcheck = Some(v);
            }
            Kind::Onbuild(trigger) => {
                let extra = &mut st.run().extra;
                let list = extra
                    .entry("OnBuild".to_owned())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(a) = list {
                    a.push(Value::String(trigger.clone()));
                }
            }
            Kind::Maintainer(m) => st.config.author = Some(m.clone()),
            Kind::Workdir(w) => {
                let w = x!(w);
                let dir = if w.starts_with('/') {
                    clean(&w)
                } else {
                    clean(&format!("{}/{w}", st.workdir()))
                };
                st.run().working_dir = Some(dir.clone());
                let lowers = self.lowers(st);
                if layer::find_in_layers(&lowers, &dir).is_none() && dir != "/" {
                    let entries = vec![Entry {
                        path: dir.clone(),
                        source: Source::Dir,
                        mode: 0o755,
                        uid: 0,
                        gid: 0,
                        mtime: now_secs(),
                    }];
                    st.chain(&format!("WORKDIR {dir}"));
                    return self.layer_from_entries(st, &entries, format!("WORKDIR {dir}"));
                }
            }
            Kind::Run { command, network } => {
                if let Some(n) = network.as_deref() {
                    if !matches!(n, "default" | "host" | "none") {
                        return Err(e(self, format!("RUN --network={n} is not supported")));
                    }
                }
                let isolated = match network.as_deref() {
                    Some("none") => true,
                    Some(_) => false,
                    None => self.opts.no_network,
                };
                return self.run_step(st, command, isolated, line, &inst.original);
            }
            Kind::Copy(spec) => return self.copy_step(st, spec, false, line, &inst.original),
            Kind::Add(spec) => return self.copy_step(st, spec, true, line, &inst.original),
        }
        // Metadata steps: the key follows the instruction, the config changed in place.
        st.chain(&inst.original);
        st.history(inst.original.clone(), true);
        Ok(())
    }

    fn lowers(&self, st: &State) -> Vec<PathBuf> {
        st.layers
            .iter()
            .map(|l| self.store.snapshots.fs_path(&l.chain_id))
            .collect()
    }

    /// Reuses the cached layer of `st.key` if there is one (and caching is on).
    fn try_cache(&mut self, st: &mut State, created_by: &str) -> Result<bool, BuildError> {
        if self.opts.no_cache {
            return Ok(false);
        }
        let Some(hit) = self.cache.get(&st.key) else {
            return Ok(false);
        };
        let (blob, media_type) = match &hit.blob {
            Some(b) => (b.clone(), media::OCI_LAYER_GZIP),
            None => (hit.diff_id.clone(), media::OCI_LAYER),
        };
        if !self.store.content.exists(&blob) {
            return Ok(false);
        }
        self.say(" ---> Using cache");
        st.time = hit.created.clone();
        let layer = Descriptor::new(media_type, blob, hit.size);
        self.push_layer(st, hit.diff_id, layer, created_by.to_owned())?;
        Ok(true)
    }

    /// Adds a layer whose blob is already in the content store: snapshot, records,
    /// history.
    fn push_layer(
        &mut self,
        st: &mut State,
        diff: Digest,
        layer: Descriptor,
        created_by: String,
    ) -> Result<(), BuildError> {
        st.config.rootfs.kind = "layers".into();
        st.config.rootfs.diff_ids.push(diff.clone());
        let chains = chain_ids(&st.config.rootfs.diff_ids);
        let top = chains[chains.len() - 1].clone();
        let below = chains.len().checked_sub(2).map(|i| chains[i].clone());
        let store = &self.store;
        store
            .snapshots
            .create_with(&top, below.as_ref(), |dir| {
                let f = store
                    .content
                    .open_blob(&layer.digest)
                    .map_err(|e| UnpackError::Archive(std::io::Error::other(e)))?;
                let o = UnpackOptions {
                    expected_diff_id: Some(diff.clone()),
                    ..UnpackOptions::default()
                };
                unpack_layer(f, dir, &o)
            })
            .map_err(ImageError::from)?;
        st.layers.push(LayerRecord {
            descriptor: layer,
            diff_id: diff,
            chain_id: top,
        });
        st.history(created_by, false);
        Ok(())
    }

    /// Stores a layer tar and records it in the cache under the current key.
    fn store_layer(
        &mut self,
        st: &mut State,
        mut tar: File,
        created_by: String,
    ) -> Result<(), BuildError> {
        tar.seek(SeekFrom::Start(0))
            .map_err(io_err("rewinding a layer"))?;
        // The diff id is the digest of the tar; the stored blob is its gzip (fast level, no
        // timestamp in the header, so equal tars give equal blobs).
        let mut gz_file =
            tempfile::tempfile_in(&self.root).map_err(io_err("creating a layer file"))?;
        let mut hasher = crate::digest::Hasher::new();
        {
            let mut gz = flate2::GzBuilder::new()
                .mtime(0)
                .write(&mut gz_file, flate2::Compression::fast());
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = tar.read(&mut buf).map_err(io_err("reading a layer"))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                gz.write_all(&buf[..n])
                    .map_err(io_err("compressing a layer"))?;
            }
            gz.finish().map_err(io_err("compressing a layer"))?;
        }
        let diff = hasher.finish();
        gz_file
            .seek(SeekFrom::Start(0))
            .map_err(io_err("rewinding a layer"))?;
        let (blob, size) = self
            .store
            .content
            .put_reader(&mut gz_file)
            .map_err(ImageError::from)?;
        st.time = crate::container::time::now();
        let _ = self.cache.put(
            &st.key,
            &CachedLayer {
                diff_id: diff.clone(),
                blob: Some(blob.clone()),
                size,
                created: st.time.clone(),
            },
        );
        let layer = Descriptor::new(media::OCI_LAYER_GZIP, blob, size);
        self.push_layer(st, diff, layer, created_by)
    }

    fn layer_from_entries(
        &mut self,
        st: &mut State,
        entries: &[Entry],
        created_by: String,
    ) -> Result<(), BuildError> {
        if self.try_cache(st, &created_by)? {
            return Ok(());
        }
        let mut tmp = tempfile::tempfile_in(&self.root).map_err(io_err("creating a layer file"))?;
        layer::write_tar(entries, &mut tmp).map_err(io_err("writing a layer"))?;
        self.store_layer(st, tmp, created_by)
    }

    fn run_step(
        &mut self,
        st: &mut State,
        command: &Command,
        isolated: bool,
        line: usize,
        original: &str,
    ) -> Result<(), BuildError> {
        let words = match command {
            Command::Shell(s) => {
                let mut w = st.shell.clone();
                w.push(s.clone());
                w
            }
            Command::Exec(v) => v.clone(),
        };
        let created_by = match command {
            Command::Shell(s) => format!("RUN {} {s}", st.shell.join(" ")),
            Command::Exec(v) => format!("RUN {v:?}"),
        };
        // ARG values reach RUN as environment and so belong in its key.
        let args: Vec<String> = st.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        st.chain(&format!("{original}\n{}", args.join("\n")));
        if self.try_cache(st, &created_by)? {
            return Ok(());
        }
        if st.layers.is_empty() {
            return Err(self.err(
                line,
                "RUN",
                "RUN needs a base image with a shell (the stage is FROM scratch)",
            ));
        }
        let mut env = st.env();
        for (k, v) in &st.args {
            if !env.iter().any(|e| e.split('=').next() == Some(k.as_str())) {
                env.push(format!("{k}={v}"));
            }
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
        }
        let run = st.config.config.clone().unwrap_or_default();
        let cfg = ContainerConfig {
            name: format!("build-{}", &crate::container::id::generate_id()[..12]),
            lowerdirs: self.lowers(st),
            cmd: words.clone(),
            env,
            working_dir: st.workdir(),
            user: run.user.clone().unwrap_or_default(),
            // `RUN --network=none`: a namespace with loopback only.
            network_mode: if isolated {
                NetworkMode::None
            } else {
                NetworkMode::Host
            },
            extra_hosts: self.opts.extra_hosts.clone(),
            resources: crate::container::record::Resources {
                shm_size: self.opts.shm_size,
                ..Default::default()
            },
            labels: BTreeMap::from([("rcompose.build".to_owned(), "true".to_owned())]),
            ..Default::default()
        };
        let c = self.engine.create_from_config(cfg)?;
        let guard = RemoveOnDrop {
            engine: &self.engine,
            id: c.id().to_owned(),
        };
        self.say(&format!(" ---> Running in {}", &c.id()[..12]));
        self.engine.start(c.id(), false)?;
        let path = logs::path(&c.dir, c.id());
        let id = c.id().to_owned();
        let engine = &self.engine;
        let out = self.hooks.output;
        let _ = logs::follow(
            &path,
            0,
            &ReadOptions::default(),
            |e| {
                out(e.log.trim_end_matches('\n'));
                Ok(())
            },
            || {
                engine
                    .store
                    .load(&id)
                    .map(|c| !c.state.is_active())
                    .unwrap_or(true)
            },
        );
        let code = self.engine.wait(c.id())?;
        if code != 0 {
            return Err(BuildError::RunFailed {
                step: self.step,
                line,
                command: match command {
                    Command::Shell(s) => s.clone(),
                    Command::Exec(v) => format!("{v:?}"),
                },
                code,
            });
        }
        let c = self.engine.store.load(c.id())?;
        let mut tmp = tempfile::tempfile_in(&self.root).map_err(io_err("creating a layer file"))?;
        crate::container::commit::layer_tar(&c, &mut tmp)?;
        drop(guard);
        self.store_layer(st, tmp, created_by)
    }

    fn copy_step(
        &mut self,
        st: &mut State,
        spec: &CopySpec,
        add: bool,
        line: usize,
        original: &str,
    ) -> Result<(), BuildError> {
        let what = if add { "ADD" } else { "COPY" };
        let e = |b: &Self, m: String| b.err(line, what, m);
        let dest_raw = st.expand(&spec.dest).map_err(|m| e(self, m))?;
        let dest = if dest_raw.starts_with('/') {
            dest_raw.clone()
        } else {
            format!("{}/{dest_raw}", st.workdir())
        };
        let (uid, gid) = match &spec.chown {
            Some(c) => {
                let c = st.expand(c).map_err(|m| e(self, m))?;
                self.owner(st, &c).map_err(|m| e(self, m))?
            }
            None => (0, 0),
        };
        let chmod = spec
            .chmod
            .as_deref()
            .map(|m| u32::from_str_radix(m, 8).map_err(|_| e(self, format!("bad --chmod {m:?}"))))
            .transpose()?;
        let mut entries: Vec<Entry> = Vec::new();
        let mut sources: Vec<String> = Vec::new();
        for s in &spec.sources {
            sources.push(st.expand(s).map_err(|m| e(self, m))?);
        }
        let many = sources.len() + spec.inline.len() > 1;
        // A destination is a directory when written as one (`/x/`, `.`, `..`) or when it
        // already is one in the image.
        let lowers = self.lowers(st);
        let dest_is_dir = dest_raw.ends_with('/')
            || dest_raw == "."
            || dest_raw == ".."
            || dest_raw.ends_with("/.")
            || dest_raw.ends_with("/..")
            || many
            || layer::find_in_layers(&lowers, &dest).is_some_and(|p| p.is_dir());
        // Downloads live until the layer is written.
        let mut downloads: Vec<tempfile::NamedTempFile> = Vec::new();
        for src in &sources {
            if add && (src.starts_with("http://") || src.starts_with("https://")) {
                let mut tmp = tempfile::NamedTempFile::new_in(&self.root)
                    .map_err(io_err("creating a download file"))?;
                self.say(&format!(" ---> downloading {src}"));
                super::fetch::fetch(src, tmp.as_file_mut()).map_err(|m| e(self, m))?;
                let target = if dest_is_dir {
                    format!("{dest}/{}", super::fetch::file_name(src))
                } else {
                    dest.clone()
                };
                entries.push(Entry {
                    path: clean(&target),
                    source: Source::File(tmp.path().to_owned()),
                    mode: 0o600,
                    uid: 0,
                    gid: 0,
                    mtime: now_secs(),
                });
                downloads.push(tmp);
                continue;
            }
            let found = match &spec.from {
                Some(from) => self.source_from_image(from, src).map_err(|m| e(self, m))?,
                None => self.context_matches(src).map_err(|m| e(self, m))?,
            };
            if found.is_empty() {
                return Err(e(
                    self,
                    format!("{src}: no such file or directory in the build context"),
                ));
            }
            let multi = dest_is_dir || found.len() > 1;
            for path in found {
                let meta =
                    fs::symlink_metadata(&path).map_err(io_err(path.display().to_string()))?;
                let target = if meta.is_dir() {
                    dest.clone()
                } else if multi {
                    format!(
                        "{dest}/{}",
                        path.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    )
                } else {
                    dest.clone()
                };
                if add && meta.is_file() && spec.from.is_none() && is_archive(&path) {
                    archive_entries(&path, &dest, &mut entries).map_err(|m| e(self, m))?;
                    continue;
                }
                let context = self.opts.context.clone();
                let ignore = &self.ignore;
                let keep = |p: &Path, is_dir: bool| {
                    if spec.from.is_some() {
                        return true;
                    }
                    match p.strip_prefix(&context) {
                        Ok(rel) => !ignore.is_excluded(&rel.to_string_lossy(), is_dir),
                        Err(_) => true,
                    }
                };
                let before = entries.len();
                layer::entries_from_host(&path, &target, &keep, &mut entries)
                    .map_err(io_err(path.display().to_string()))?;
                // The directory itself is not copied, only its contents (docker's rule).
                if meta.is_dir() {
                    if let Some(first) = entries.get_mut(before) {
                        first.mode = 0o755;
                        first.uid = 0;
                        first.gid = 0;
                    }
                }
            }
        }
        for f in &spec.inline {
            let target = if dest_is_dir {
                format!("{dest}/{}", f.name)
            } else {
                dest.clone()
            };
            let content = if f.expand {
                expand_heredoc(&f.content, &|n| st.lookup(n)).map_err(|m| e(self, m.to_string()))?
            } else {
                f.content.clone()
            };
            entries.push(Entry {
                path: clean(&target),
                source: Source::Bytes(content.into_bytes()),
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: now_secs(),
            });
        }
        for en in &mut entries {
            if spec.chown.is_some() {
                en.uid = uid;
                en.gid = gid;
            }
            if let Some(m) = chmod {
                en.mode = m;
            }
        }
        let digest = layer::digest_entries(&entries).map_err(io_err("hashing the copied files"))?;
        st.chain(&format!("{original}\n{digest}"));
        let created_by = format!("{what} {digest} in {dest}");
        self.layer_from_entries(st, &entries, created_by)
    }

    /// Context paths matching `src` (a path or a glob), dockerignore applied.
    fn context_matches(&self, src: &str) -> Result<Vec<PathBuf>, String> {
        let rel = clean(src);
        let rel = rel.trim_start_matches('/');
        let ctx = &self.opts.context;
        if !rel.contains(['*', '?', '[']) {
            let p = ctx.join(rel);
            if !rel.is_empty() && self.ignore.is_excluded(rel, p.is_dir()) {
                return Ok(Vec::new());
            }
            return Ok(if fs::symlink_metadata(&p).is_ok() {
                vec![p]
            } else {
                Vec::new()
            });
        }
        let mut found = vec![ctx.clone()];
        for part in rel.split('/') {
            let mut next = Vec::new();
            for dir in &found {
                let Ok(rd) = fs::read_dir(dir) else { continue };
                let mut names: Vec<_> = rd.filter_map(Result::ok).collect();
                names.sort_by_key(|e| e.file_name());
                for entry in names {
                    if glob_match(part, &entry.file_name().to_string_lossy()) {
                        next.push(entry.path());
                    }
                }
            }
            found = next;
        }
        Ok(found
            .into_iter()
            .filter(|p| {
                let r = p
                    .strip_prefix(ctx)
                    .map(|r| r.to_string_lossy().into_owned())
                    .unwrap_or_default();
                !self.ignore.is_excluded(&r, p.is_dir())
            })
            .collect())
    }

    /// `COPY --from=`: a path in an earlier stage (by name or index) or an image.
    fn source_from_image(&mut self, from: &str, src: &str) -> Result<Vec<PathBuf>, String> {
        let lower = from.to_ascii_lowercase();
        let layers = if let Some((_, s)) = self
            .stages
            .iter()
            .find(|(n, _)| n.as_deref() == Some(lower.as_str()))
        {
            s.layers.clone()
        } else if let Some((_, s)) = from.parse::<usize>().ok().and_then(|i| self.stages.get(i)) {
            s.layers.clone()
        } else {
            let rec = match self.store.resolve(from) {
                Ok(r) => r,
                Err(_) => {
                    (self.hooks.pull)(from, None)?;
                    self.store.resolve(from).map_err(|e| e.to_string())?
                }
            };
            rec.layers
        };
        let lowers: Vec<PathBuf> = layers
            .iter()
            .map(|l| self.store.snapshots.fs_path(&l.chain_id))
            .collect();
        Ok(layer::find_in_layers(&lowers, src).into_iter().collect())
    }

    /// `--chown=user[:group]` to ids, names looked up in the stage's /etc/passwd and /etc/group.
    fn owner(&self, st: &State, spec: &str) -> Result<(u64, u64), String> {
        let lowers = self.lowers(st);
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        fs::create_dir_all(tmp.path().join("etc")).map_err(|e| e.to_string())?;
        for f in ["etc/passwd", "etc/group"] {
            if let Some(p) = layer::find_in_layers(&lowers, f) {
                fs::copy(&p, tmp.path().join(f)).map_err(|e| e.to_string())?;
            }
        }
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let u = crate::container::user::resolve(tmp.path(), user).map_err(|e| e.to_string())?;
        let gid = match group {
            None => u.gid,
            Some(g) => {
                crate::container::user::resolve(tmp.path(), &format!("0:{g}"))
                    .map_err(|e| e.to_string())?
                    .gid
            }
        };
        // Docker: a user without a group gets the group of the same id when none is named.
        let gid = if group.is_none() && user.parse::<u32>().is_ok() {
            u.uid
        } else {
            gid
        };
        Ok((u64::from(u.uid), u64::from(gid)))
    }

    /// Writes the image (config, manifest, record) and tags it.
    fn finish(&mut self, mut st: State) -> Result<ImageRecord, BuildError> {
        let _lease = self.store.lease()?;
        st.config.created = Some(st.time.clone());
        if st.config.rootfs.kind.is_empty() {
            st.config.rootfs.kind = "layers".into();
        }
        let cbytes = serde_json::to_vec(&st.config)
            .map_err(|e| io_err("encoding the image config")(std::io::Error::other(e)))?;
        let cdigest = self
            .store
            .content
            .put_bytes(&cbytes)
            .map_err(ImageError::from)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_owned()),
            config: Descriptor::new(media::OCI_CONFIG, cdigest.clone(), cbytes.len() as u64),
            layers: st.layers.iter().map(|l| l.descriptor.clone()).collect(),
            annotations: Default::default(),
            extra: Default::default(),
        };
        let mbytes = serde_json::to_vec(&manifest)
            .map_err(|e| io_err("encoding the manifest")(std::io::Error::other(e)))?;
        let mdigest = self
            .store
            .content
            .put_bytes(&mbytes)
            .map_err(ImageError::from)?;
        let size = st.layers.iter().map(|l| l.descriptor.size).sum();
        let record = ImageRecord {
            id: cdigest,
            manifest: mdigest,
            manifest_media_type: media::OCI_MANIFEST.to_owned(),
            index: None,
            repo_digests: Vec::new(),
            layers: st.layers,
            created: st.config.created.clone(),
            size,
            added: now_secs(),
        };
        self.store.add(record.clone(), &self.opts.tags)?;
        Ok(record)
    }
}

/// Removes a build container however the step ends.
struct RemoveOnDrop<'a> {
    engine: &'a Engine,
    id: String,
}

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.engine.remove(&self.id, true, true);
    }
}

fn command_words(c: &Command, shell: &[String]) -> Vec<String> {
    match c {
        Command::Shell(s) => {
            let mut w = shell.to_vec();
            w.push(s.clone());
            w
        }
        Command::Exec(v) => v.clone(),
    }
}

fn nanos(d: &Option<String>) -> Result<u64, String> {
    match d {
        None => Ok(0),
        Some(t) => {
            crate::container::health::parse_nanos(t).ok_or_else(|| format!("bad duration {t:?}"))
        }
    }
}

fn healthcheck_json(h: &Healthcheck, shell: &[String]) -> Result<Value, String> {
    Ok(match h {
        Healthcheck::None => json!({"Test": ["NONE"]}),
        Healthcheck::Check {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => {
            let _ = shell;
            let test = match test {
                Command::Shell(s) => vec!["CMD-SHELL".to_owned(), s.clone()],
                Command::Exec(v) => {
                    let mut t = vec!["CMD".to_owned()];
                    t.extend(v.iter().cloned());
                    t
                }
            };
            json!({
                "Test": test,
                "Interval": nanos(interval)?,
                "Timeout": nanos(timeout)?,
                "StartPeriod": nanos(start_period)?,
                "StartInterval": nanos(start_interval)?,
                "Retries": retries.unwrap_or(0),
            })
        }
    })
}

/// `*`, `?` and `[…]` within one path component.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn rec(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| rec(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && rec(&p[1..], &n[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|c| *c == ']') else {
                    return n.first() == Some(&'[') && rec(&p[1..], &n[1..]);
                };
                let Some(c) = n.first() else { return false };
                let class = &p[1..end];
                let (neg, class) = match class.first() {
                    Some('!') | Some('^') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= *c && *c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == *c;
                        i += 1;
                    }
                }
                hit != neg && rec(&p[end + 1..], &n[1..])
            }
            Some(ch) => n.first() == Some(ch) && rec(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    rec(&p, &n)
}

fn is_archive(p: &Path) -> bool {
    let mut head = [0u8; 262];
    let Ok(mut f) = File::open(p) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    let head = &head[..n];
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (n >= 262 && &head[257..262] == b"ustar")
}

/// `ADD` of a local tarball: its entries under `dest` (gzip, zstd or plain).
fn archive_entries(path: &Path, dest: &str, out: &mut Vec<Entry>) -> Result<(), String> {
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (_, reader) =
        crate::unpack::decompress(f).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut a = tar::Archive::new(reader);
    for entry in a.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let rel = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        let target = clean(&format!("{dest}/{rel}"));
        let h = entry.header();
        let mode = h.mode().unwrap_or(0o644);
        let uid = h.uid().unwrap_or(0);
        let gid = h.gid().unwrap_or(0);
        let mtime = h.mtime().unwrap_or(0);
        let source = match h.entry_type() {
            tar::EntryType::Directory => Source::Dir,
            tar::EntryType::Symlink => Source::Symlink(
                entry
                    .link_name()
                    .map_err(|e| e.to_string())?
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
                Source::Bytes(bytes)
            }
            other => {
                return Err(format!(
                    "{rel}: tar entry type {other:?} is not supported by ADD"
                ))
            }
        };
        out.push(Entry {
            path: target,
            source,
            mode,
            uid,
            gid,
            mtime,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "a.txt.bak"));
        assert!(glob_match("f?le[0-9]", "file7"));
        assert!(!glob_match("[!a]*", "abc"));
    }
}
