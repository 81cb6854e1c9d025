//! `rcompose image build` and `rcompose build`: Dockerfile builds through `engine::build`, with
//! base images pulled like `image pull` does.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use engine::build::executor::{self, BuildHooks, BuildOptions};
use engine::image::{ImageRecord, ImageStore};
use engine::reference::Reference;

use super::stack;
use super::GlobalOpts;
use crate::model::{Project, Service};

#[derive(Debug, clap::Args)]
pub struct ImageBuildArgs {
    /// Name and optionally a tag (`name:tag`); repeatable
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// Name of the Dockerfile (default: PATH/Dockerfile; `-` reads it from standard input)
    #[arg(short = 'f', long = "file")]
    file: Option<String>,
    /// Set a build-time variable (`NAME=value`, or `NAME` to take it from the environment)
    #[arg(long = "build-arg")]
    build_args: Vec<String>,
    /// Set the target build stage
    #[arg(long)]
    target: Option<String>,
    /// Do not use the cache
    #[arg(long)]
    no_cache: bool,
    /// Always pull the base images
    #[arg(long)]
    pull: bool,
    /// Set metadata (`key=value`); repeatable
    #[arg(long)]
    label: Vec<String>,
    /// Print only the image ID
    #[arg(short, long)]
    quiet: bool,
    /// Progress output: plain or tty (both are line-based)
    #[arg(long, default_value = "plain", value_parser = ["plain", "tty", "auto"])]
    progress: String,
    /// Build context: a directory, a tarball, or `-` (a Dockerfile on standard input)
    path: String,
}

fn key_values(items: &[String], from_env: bool) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_owned(), v.to_owned());
            }
            None if from_env => {
                if let Ok(v) = std::env::var(item) {
                    out.insert(item.clone(), v);
                }
            }
            None => bail!("invalid {item:?}: expected key=value"),
        }
    }
    Ok(out)
}

/// Builds with progress on stdout unless `quiet`; base images are pulled quietly.
pub fn build_image(root: &Path, opts: &BuildOptions, quiet: bool) -> anyhow::Result<ImageRecord> {
    let store = ImageStore::open(root).context("opening the image store")?;
    let pull = |name: &str, platform: Option<&str>| -> Result<(), String> {
        super::image::pull_image(&store, name, platform, true)
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
    };
    let output = |line: &str| {
        if !quiet {
            println!("{line}");
        }
    };
    let hooks = BuildHooks {
        pull: &pull,
        output: &output,
    };
    let rec = executor::build(root, opts, &hooks)?;
    Ok(rec)
}

/// A build context given as a tarball is unpacked into a temporary directory.
fn unpack_context(tar: &Path) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir().context("creating a directory for the build context")?;
    let f = std::fs::File::open(tar).with_context(|| format!("opening {}", tar.display()))?;
    let (_, reader) = engine::unpack::decompress(f)?;
    let mut a = tar::Archive::new(reader);
    a.set_preserve_permissions(true);
    // `unpack` refuses entries that would land outside the directory.
    a.unpack(dir.path())
        .with_context(|| format!("unpacking the build context {}", tar.display()))?;
    Ok(dir)
}

pub fn run_image_build(root: &Path, a: ImageBuildArgs) -> anyhow::Result<i32> {
    let mut _holder = None;
    let (context, dockerfile) = if a.path == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the Dockerfile from standard input")?;
        let empty = tempfile::tempdir().context("creating an empty build context")?;
        let ctx = empty.path().to_owned();
        _holder = Some(empty);
        (ctx, text)
    } else {
        let p = PathBuf::from(&a.path);
        let ctx = if p.is_file() {
            let dir = unpack_context(&p)?;
            let ctx = dir.path().to_owned();
            _holder = Some(dir);
            ctx
        } else if p.is_dir() {
            p
        } else {
            bail!("unable to prepare context: path {:?} not found", a.path);
        };
        let df_path = match a.file.as_deref() {
            Some("-") => None,
            Some(f) if Path::new(f).is_absolute() => Some(PathBuf::from(f)),
            Some(f) => Some(if Path::new(f).exists() {
                PathBuf::from(f)
            } else {
                ctx.join(f)
            }),
            None => Some(ctx.join("Dockerfile")),
        };
        let text = match df_path {
            Some(p) => std::fs::read_to_string(&p)
                .with_context(|| format!("reading the Dockerfile {}", p.display()))?,
            None => {
                let mut t = String::new();
                std::io::stdin().read_to_string(&mut t)?;
                t
            }
        };
        (ctx, text)
    };
    let tags = a
        .tags
        .iter()
        .map(|t| Reference::parse(t).map_err(|e| anyhow!("invalid tag {t:?}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let opts = BuildOptions {
        context,
        dockerfile,
        build_args: key_values(&a.build_args, true)?,
        target: a.target,
        tags: tags.clone(),
        labels: key_values(&a.label, false)?,
        no_cache: a.no_cache,
        pull: a.pull,
        extra_hosts: Vec::new(),
        shm_size: 0,
        no_network: false,
    };
    let rec = build_image(root, &opts, a.quiet)?;
    if a.quiet {
        println!("{}", rec.id);
    } else {
        println!("Successfully built {}", rec.id.short());
        for t in &tags {
            println!("Successfully tagged {}", t.familiar());
        }
    }
    Ok(0)
}

/// The build options of a service (`build:`), with `--build-arg`s from the command line.
pub fn service_build_options(
    project: &Project,
    svc: &Service,
    extra_args: &BTreeMap<String, String>,
    no_cache: bool,
    pull: bool,
) -> anyhow::Result<BuildOptions> {
    let b = svc
        .build
        .as_ref()
        .ok_or_else(|| anyhow!("service {} has no build section", svc.name))?;
    let context = PathBuf::from(b.context.as_deref().unwrap_or("."));
    if b.context.as_deref().is_some_and(|c| c.contains("://")) {
        bail!(
            "service {}: remote build contexts are not supported",
            svc.name
        );
    }
    let dockerfile = match (&b.dockerfile_inline, &b.dockerfile) {
        (Some(inline), _) => inline.clone(),
        (None, df) => {
            let p = context.join(df.as_deref().unwrap_or("Dockerfile"));
            std::fs::read_to_string(&p)
                .with_context(|| format!("service {}: reading {}", svc.name, p.display()))?
        }
    };
    let mut build_args: BTreeMap<String, String> = b
        .args
        .iter()
        .filter_map(|(k, v)| {
            v.clone()
                .or_else(|| std::env::var(k).ok())
                .map(|v| (k.clone(), v))
        })
        .collect();
    build_args.extend(extra_args.clone());
    let mut tags = vec![Reference::parse(&svc.image_or_default(project))?];
    for t in &b.tags {
        tags.push(Reference::parse(t)?);
    }
    let no_network = match b.network.as_deref() {
        None | Some("host") | Some("default") => false,
        Some("none") => true,
        Some(n) => bail!(
            "service {}: build network {n:?} is not supported (host, default or none)",
            svc.name
        ),
    };
    Ok(BuildOptions {
        context,
        dockerfile,
        build_args,
        target: b.target.clone(),
        tags,
        labels: b
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        no_cache: no_cache || b.no_cache,
        pull: pull || b.pull,
        extra_hosts: b
            .extra_hosts
            .iter()
            .flat_map(|(h, ips)| ips.iter().map(move |ip| format!("{h}:{ip}")))
            .collect(),
        shm_size: b.shm_size.unwrap_or(0).max(0) as u64,
        no_network,
    })
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Services to build (default: all with a build section)
    services: Vec<String>,
    /// Do not use the cache
    #[arg(long)]
    no_cache: bool,
    /// Always pull the base images
    #[arg(long)]
    pull: bool,
    /// Set a build-time variable for services (`NAME=value`)
    #[arg(long = "build-arg")]
    build_args: Vec<String>,
    /// Print only the image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Also build the services the named ones depend on
    #[arg(long)]
    with_dependencies: bool,
}

pub fn run_build(global: &GlobalOpts, a: BuildArgs) -> anyhow::Result<i32> {
    let st = stack::load(global, &a.services)?;
    let names = if a.with_dependencies {
        crate::orchestrate::plan::selected_services(&st.project, &a.services, false)?
    } else if a.services.is_empty() {
        st.project.services.keys().cloned().collect()
    } else {
        a.services.clone()
    };
    let extra = key_values(&a.build_args, true)?;
    let mut failed = false;
    for name in names {
        let svc = &st.project.services[&name];
        if svc.build.is_none() {
            continue;
        }
        if !a.quiet {
            eprintln!(" - Building {name}");
        }
        let result = service_build_options(&st.project, svc, &extra, a.no_cache, a.pull)
            .and_then(|o| build_image(&global.root, &o, a.quiet));
        match result {
            Ok(rec) => {
                if a.quiet {
                    println!("{}", rec.id);
                } else {
                    eprintln!(" ✔ Service {name}  Built");
                }
            }
            Err(e) => {
                eprintln!(" ✘ Service {name}  Error: {e:#}");
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}
