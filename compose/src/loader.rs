//! Loading a compose project: files → YAML with locations → interpolation → schema validation →
//! canonical long forms → path resolution → `extends` → `include` → merge of all files →
//! profiles → normalisation → semantic validation.
//!
//! Every step keeps the source locations of the values it touches, so a problem found at any
//! step is reported at the file, line and column it comes from.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value;

use crate::canonical::{canonicalize, CanonOptions};
use crate::discovery::{self, Environment};
use crate::error::LoadError;
use crate::interpolate::{self, VariableUse};
use crate::merge::merge;
use crate::yaml::{self, Key, Kind, Loc, Node, Source};
use crate::{normalize, paths, profiles, schema, validate};

type Result<T> = std::result::Result<T, LoadError>;

/// What to load and how; mirrors the global command-line options.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// `-f` files in order; `-` reads `stdin_text`.
    pub files: Vec<String>,
    pub project_name: Option<String>,
    pub project_directory: Option<PathBuf>,
    pub profiles: Vec<String>,
    pub env_files: Vec<PathBuf>,
    /// Services named on the command line: they are enabled whatever their profiles.
    pub explicit_services: Vec<String>,
    pub interpolate: bool,
    pub normalize: bool,
    pub resolve_paths: bool,
    /// The directory relative command-line paths are relative to.
    pub cwd: PathBuf,
    /// The shell environment.
    pub process_env: IndexMap<String, String>,
    /// What `-f -` reads.
    pub stdin_text: Option<String>,
}

impl LoadOptions {
    /// Options for the current process: its working directory and environment.
    pub fn from_process() -> std::io::Result<Self> {
        Ok(LoadOptions {
            files: Vec::new(),
            project_name: None,
            project_directory: None,
            profiles: Vec::new(),
            env_files: Vec::new(),
            explicit_services: Vec::new(),
            interpolate: true,
            normalize: true,
            resolve_paths: true,
            cwd: std::env::current_dir()?,
            process_env: std::env::vars().collect(),
            stdin_text: None,
        })
    }
}

/// A loaded project: the resolved tree (with locations), and what was learned on the way.
#[derive(Debug)]
pub struct Loaded {
    pub name: String,
    pub working_dir: PathBuf,
    pub config_files: Vec<PathBuf>,
    /// The variables interpolation used (shell over `.env`).
    pub environment: Environment,
    /// The resolved project in canonical long form, with locations.
    pub root: Node,
    /// Every profile any service names, enabled or not.
    pub all_profiles: Vec<String>,
    /// Every variable the compose files reference.
    pub variables: Vec<VariableUse>,
    pub warnings: Vec<String>,
}

impl Loaded {
    /// The project as JSON, in the key order `rcompose config` prints.
    pub fn to_value(&self) -> Value {
        self.arranged(self.root.clone()).into_value()
    }

    /// Takes the resolved tree out (leaving an empty project behind), arranged in the order
    /// `rcompose config` prints, for callers that are done with the loader's result.
    pub fn take_node(&mut self) -> Node {
        let root = std::mem::replace(&mut self.root, Node::map(Vec::new(), Loc::none()));
        self.arranged(root)
    }

    /// The project name first, then the sections with their entries sorted by name, then
    /// extensions; `version` and `include` are gone by now.
    fn arranged(&self, root: Node) -> Node {
        let loc = root.loc.clone();
        let Kind::Map(mut entries) = root.kind else {
            return root;
        };
        let mut out: Vec<(Key, Node)> = Vec::with_capacity(entries.len() + 1);
        out.push((
            Key {
                name: "name".into(),
                loc: loc.clone(),
            },
            Node::string(self.name.clone(), loc.clone()),
        ));
        for section in [
            "services", "networks", "volumes", "secrets", "configs", "models",
        ] {
            let Some(i) = entries.iter().position(|(k, _)| k.name == section) else {
                continue;
            };
            let (k, mut v) = entries.remove(i);
            if let Kind::Map(items) = &mut v.kind {
                if items.is_empty() && section != "services" {
                    continue;
                }
                items.sort_by(|a, b| a.0.name.cmp(&b.0.name));
            }
            out.push((k, v));
        }
        entries.retain(|(k, _)| !matches!(k.name.as_str(), "name" | "version" | "include"));
        out.extend(entries);
        Node::map(out, loc)
    }

    /// The loaded project as the typed model.
    pub fn project(&self) -> Result<crate::model::Project> {
        let node = self.arranged(self.root.clone());
        project_from_node(node.clone()).or_else(|_| project_from_node_traced(node))
    }
}

/// Converts a resolved project (as `Loaded::take_node` gives it) to the typed model. The error
/// names the value but not where it is; `project_from_node_traced` does, at a cost.
pub fn project_from_node(node: Node) -> Result<crate::model::Project> {
    use serde::Deserialize;
    crate::model::Project::deserialize(crate::yaml_de::NodeDeserializer(node)).map_err(|e| {
        LoadError::Plain(format!(
            "{e} (the value passed validation but does not fit the project model)"
        ))
    })
}

/// `project_from_node`, tracking the key path so the error can name it. Tracking allocates for
/// every key, so it is for diagnosing a failure, not for the common path.
pub fn project_from_node_traced(node: Node) -> Result<crate::model::Project> {
    let located = node.clone();
    serde_path_to_error::deserialize(crate::yaml_de::NodeDeserializer(node)).map_err(|e| {
        let message = format!(
            "{}: {} (the value passed validation but does not fit the project model)",
            e.path(),
            e.inner()
        );
        match node_at_path(&located, e.path()) {
            Some(loc) if loc.has_source() => LoadError::At { loc, message },
            _ => LoadError::Plain(message),
        }
    })
}

/// The location of the deepest node of `root` that `path` reaches (a model error's path may
/// end inside a value, e.g. at a field the value lacks).
fn node_at_path(root: &Node, path: &serde_path_to_error::Path) -> Option<crate::yaml::Loc> {
    use serde_path_to_error::Segment;
    let mut node = root;
    let mut loc = None;
    for seg in path.iter() {
        let next = match seg {
            Segment::Map { key } => node
                .as_map()
                .and_then(|entries| entries.iter().find(|(k, _)| k.name == *key).map(|(_, v)| v)),
            Segment::Seq { index } => node.as_seq().and_then(|items| items.get(*index)),
            Segment::Enum { .. } => Some(node),
            Segment::Unknown => None,
        };
        match next {
            Some(n) => {
                if n.loc.has_source() {
                    loc = Some(n.loc.clone());
                }
                node = n;
            }
            None => break,
        }
    }
    loc
}

/// Loads the project the options describe.
pub fn load(opts: &LoadOptions) -> Result<Loaded> {
    let mut env = Environment::new(opts.process_env.clone());
    let initial_dir = opts
        .project_directory
        .as_ref()
        .map(|d| opts.cwd.join(d))
        .unwrap_or_else(|| opts.cwd.clone());
    load_dotenv(&mut env, opts, &initial_dir)?;

    let files = config_files(opts, &env, &initial_dir)?;
    let working_dir = match &opts.project_directory {
        Some(d) => paths::clean(&opts.cwd.join(d)),
        None => files
            .iter()
            .find(|f| f.as_os_str() != "-")
            .and_then(|f| f.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| opts.cwd.clone()),
    };
    if working_dir != initial_dir && opts.env_files.is_empty() {
        // The .env file belongs to the project directory, known only now that the files are.
        env = Environment::new(opts.process_env.clone());
        load_dotenv(&mut env, opts, &working_dir)?;
    }

    let mut ctx = Ctx::new(env, opts);
    let mut root: Option<Node> = None;
    // Parsing is the largest step of loading. The files after the first are read and parsed on
    // threads of their own (and the schema compiled) while the first is; each file then goes
    // through the remaining steps in order, so errors and warnings come as they always do.
    std::thread::scope(|scope| -> Result<()> {
        scope.spawn(schema::prepare);
        let later: Vec<_> = files
            .iter()
            .skip(1)
            .map(|f| scope.spawn(move || read_and_parse(f, opts)))
            .collect();
        let first = files.first().map(|f| read_and_parse(f, opts));
        let rest = later
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        for file in first.into_iter().chain(rest) {
            let (source, node) = file?;
            let node = ctx.load_parsed(&source, node, &working_dir, true)?;
            match &mut root {
                None => root = Some(node),
                Some(r) => merge(r, node, ""),
            }
        }
        Ok(())
    })?;
    let mut root = root.unwrap_or_else(|| Node::map(Vec::new(), Loc::none()));

    let name = project_name(opts, &ctx.env, &root, &working_dir)?;
    if root.get("version").is_some() {
        ctx.warn("the attribute `version` is obsolete, it will be ignored".into());
    }
    let all_profiles = profiles::all_profiles(&root);
    let active = active_profiles(opts, &ctx.env);
    profiles::apply(&mut root, &active, &opts.explicit_services)?;
    validate::validate(&root)?;
    if opts.normalize {
        normalize::normalize(&mut root, &name, &ctx.env)?;
    }

    let config_files = files
        .iter()
        .map(|f| {
            if f.as_os_str() == "-" {
                f.clone()
            } else {
                paths::clean(f)
            }
        })
        .collect();
    Ok(Loaded {
        name,
        working_dir,
        config_files,
        environment: ctx.env,
        root,
        all_profiles,
        variables: ctx.variables,
        warnings: ctx.warnings,
    })
}

/// A compose file (`-` for standard input) read and parsed.
type Parsed = (Arc<Source>, std::result::Result<Node, yaml::YamlError>);

fn read_and_parse(f: &Path, opts: &LoadOptions) -> Result<Parsed> {
    let source = if f.as_os_str() == "-" {
        Source::new("<stdin>", opts.stdin_text.clone().unwrap_or_default())
    } else {
        read_source(f)?
    };
    let node = yaml::parse(&source);
    Ok((source, node))
}

fn read_source(path: &Path) -> Result<Arc<Source>> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::io(path, e))?;
    Ok(Source::new(path, text))
}

fn load_dotenv(env: &mut Environment, opts: &LoadOptions, dir: &Path) -> Result<()> {
    if !opts.env_files.is_empty() {
        // Later --env-file files win over earlier ones; the shell wins over all.
        let mut merged: IndexMap<String, String> = IndexMap::new();
        for f in &opts.env_files {
            let path = opts.cwd.join(f);
            let snapshot = Environment::new({
                let mut m = opts.process_env.clone();
                for (k, v) in &merged {
                    m.entry(k.clone()).or_insert_with(|| v.clone());
                }
                m
            });
            for (k, v) in discovery::read_env_file(&path, &snapshot)? {
                merged.insert(k, v);
            }
        }
        env.add_defaults(merged);
        return Ok(());
    }
    if env.flag("COMPOSE_DISABLE_ENV_FILE") {
        return Ok(());
    }
    let dotenv = dir.join(".env");
    if dotenv.is_file() {
        let vars = discovery::read_env_file(&dotenv, env)?;
        env.add_defaults(vars);
    }
    Ok(())
}

fn config_files(opts: &LoadOptions, env: &Environment, dir: &Path) -> Result<Vec<PathBuf>> {
    let named: Vec<String> = if !opts.files.is_empty() {
        opts.files.clone()
    } else if let Some(list) = env.get("COMPOSE_FILE").filter(|s| !s.is_empty()) {
        let sep = env
            .get("COMPOSE_PATH_SEPARATOR")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| ":".into());
        list.split(sep.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    } else {
        return discovery::find_compose_files(dir).ok_or_else(|| {
            LoadError::Plain(format!(
                "no configuration file provided: no compose.yaml, compose.yml, \
                 docker-compose.yaml or docker-compose.yml in {} or its parents",
                dir.display()
            ))
        });
    };
    let mut files = Vec::new();
    for n in named {
        if n == "-" {
            files.push(PathBuf::from("-"));
            continue;
        }
        let p = paths::clean(&opts.cwd.join(&n));
        if !p.is_file() {
            return Err(LoadError::Plain(format!(
                "compose file {} does not exist",
                p.display()
            )));
        }
        files.push(p);
    }
    Ok(files)
}

fn project_name(opts: &LoadOptions, env: &Environment, root: &Node, dir: &Path) -> Result<String> {
    if let Some(n) = &opts.project_name {
        return discovery::check_project_name(n, "from --project-name");
    }
    if let Some(n) = env.get("COMPOSE_PROJECT_NAME").filter(|s| !s.is_empty()) {
        return discovery::check_project_name(&n, "from COMPOSE_PROJECT_NAME");
    }
    if let Some(node) = root.get("name") {
        if let Some(n) = node.as_scalar().filter(|s| !s.is_empty()) {
            return discovery::check_project_name(n, "from the top-level name")
                .map_err(|e| LoadError::at(&node.loc, e.to_string()));
        }
    }
    let base = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = discovery::normalize_project_name(&base);
    if n.is_empty() {
        return Err(LoadError::Plain(format!(
            "cannot derive a project name from the directory {}; use --project-name",
            dir.display()
        )));
    }
    Ok(n)
}

fn active_profiles(opts: &LoadOptions, env: &Environment) -> Vec<String> {
    if !opts.profiles.is_empty() {
        return opts
            .profiles
            .iter()
            .flat_map(|p| p.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
    env.get("COMPOSE_PROFILES")
        .map(|s| {
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// State shared while loading the files of one project (and the files they extend or include).
struct Ctx<'o> {
    env: Environment,
    opts: &'o LoadOptions,
    warnings: Vec<String>,
    warned: HashSet<String>,
    variables: Vec<VariableUse>,
    /// Files loaded for `extends`, by path: each is read and processed once.
    extends_cache: HashMap<PathBuf, Node>,
    /// Included projects being loaded, to refuse include cycles.
    include_stack: Vec<PathBuf>,
}

impl<'o> Ctx<'o> {
    fn new(env: Environment, opts: &'o LoadOptions) -> Self {
        Ctx {
            env,
            opts,
            warnings: Vec::new(),
            warned: HashSet::new(),
            variables: Vec::new(),
            extends_cache: HashMap::new(),
            include_stack: Vec::new(),
        }
    }

    fn warn(&mut self, w: String) {
        if self.warned.insert(w.clone()) {
            self.warnings.push(w);
        }
    }

    /// One file through the per-file steps. `with_extends` is false while loading a file only
    /// for the services another file extends (its own extends are resolved lazily).
    fn load_file(&mut self, source: &Arc<Source>, base: &Path, top: bool) -> Result<Node> {
        let parsed = yaml::parse(source);
        self.load_parsed(source, parsed, base, top)
    }

    /// [`Ctx::load_file`] for a file already parsed.
    fn load_parsed(
        &mut self,
        source: &Arc<Source>,
        parsed: std::result::Result<Node, yaml::YamlError>,
        base: &Path,
        top: bool,
    ) -> Result<Node> {
        let mut node = parsed?;
        if node.as_map().is_none() {
            return Err(LoadError::at(
                &node.loc,
                format!("a compose file must be a mapping, not {}", node.type_name()),
            ));
        }
        self.variables_and_interpolation(&mut node)?;
        schema::validate(&mut node)?;
        canonicalize(
            &mut node,
            CanonOptions {
                no_interpolate: !self.opts.interpolate,
            },
        )?;
        if self.opts.resolve_paths {
            let home = self.env.get("HOME");
            paths::resolve(&mut node, base, home.as_deref());
        }
        let file = source.path.clone();
        self.resolve_extends(&mut node, &file)?;
        if top {
            self.apply_includes(&mut node, base)?;
        }
        Ok(node)
    }

    /// Records the variables every scalar references and, when interpolation is on, substitutes
    /// them: one walk over the file does both.
    fn variables_and_interpolation(&mut self, node: &mut Node) -> Result<()> {
        let env = &self.env;
        let variables = &mut self.variables;
        let interpolate = self.opts.interpolate;
        let mut unset: Vec<String> = Vec::new();
        node.walk_scalars_mut::<LoadError>(&mut |text, style, loc| {
            if !interpolate::has_variables(text) {
                return Ok(());
            }
            if let Ok(vars) = interpolate::variables(text) {
                for v in vars {
                    interpolate::merge_variable(variables, v);
                }
            }
            if !interpolate {
                return Ok(());
            }
            let out = interpolate::interpolate(text, &|k| env.get(k))
                .map_err(|e| LoadError::at(loc, e.to_string()))?;
            unset.extend(out.unset);
            // A plain scalar is typed again after substitution (`${PORT}` can be a number), but
            // a value that substituted to nothing is an empty string, not YAML's null.
            if out.value.is_empty() || matches!(out.value.as_str(), "~" | "null" | "Null" | "NULL")
            {
                *style = yaml::Style::Quoted;
            }
            *text = out.value;
            Ok(())
        })?;
        for name in unset {
            self.warn(format!(
                "The \"{name}\" variable is not set. Defaulting to a blank string."
            ));
        }
        Ok(())
    }

    /// Replaces every `extends` in the file's services by the merge of the base service and the
    /// extending one.
    fn resolve_extends(&mut self, node: &mut Node, file: &Path) -> Result<()> {
        let Some(services) = node.get("services").and_then(Node::as_map) else {
            return Ok(());
        };
        let pending: Vec<usize> = services
            .iter()
            .enumerate()
            .filter(|(_, (_, svc))| svc.get("extends").is_some())
            .map(|(i, _)| i)
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let index = service_index(node);
        for i in pending {
            let name = match node.get("services").and_then(Node::as_map) {
                Some(s) => s[i].0.name.clone(),
                None => break,
            };
            // The service is moved out while its base is resolved (a placeholder stands in; a
            // service that extends itself is caught by the cycle check before it is looked at).
            let own = match node.get_mut("services").and_then(Node::as_map_mut) {
                Some(entries) => {
                    std::mem::replace(&mut entries[i].1, Node::map(Vec::new(), Loc::none()))
                }
                None => break,
            };
            let mut stack = vec![(file.to_path_buf(), name.clone())];
            let resolved = self.extend(node, &index, file, &name, own, &mut stack)?;
            // Services resolved earlier are read back resolved, so chains are walked once.
            if let Some(entries) = node.get_mut("services").and_then(Node::as_map_mut) {
                entries[i].1 = resolved;
            }
        }
        Ok(())
    }

    /// The service `name` of the file `root` (at `file`), with its extends chain applied.
    fn resolved_service(
        &mut self,
        root: &Node,
        index: &HashMap<String, usize>,
        file: &Path,
        name: &str,
        stack: &mut Vec<(PathBuf, String)>,
    ) -> Result<Node> {
        let here = (file.to_path_buf(), name.to_string());
        if stack.contains(&here) {
            let mut chain: Vec<String> = stack.iter().map(|(_, s)| s.clone()).collect();
            chain.push(name.to_string());
            let loc = lookup_service(root, index, name)
                .and_then(|s| s.get("extends"))
                .map(|e| e.loc.clone())
                .unwrap_or_else(Loc::none);
            return Err(LoadError::at(
                &loc,
                format!("circular reference with extends: {}", chain.join(" -> ")),
            ));
        }
        let Some(svc) = lookup_service(root, index, name).cloned() else {
            return Err(LoadError::Plain(format!(
                "service {name:?} not found in {}",
                file.display()
            )));
        };
        if svc.get("extends").is_none() {
            return Ok(svc);
        }
        stack.push(here);
        let result = self.extend(root, index, file, name, svc, stack);
        stack.pop();
        result
    }

    /// `svc` (the service `name` of `file`) merged onto the base its `extends` names.
    fn extend(
        &mut self,
        root: &Node,
        index: &HashMap<String, usize>,
        file: &Path,
        name: &str,
        mut svc: Node,
        stack: &mut Vec<(PathBuf, String)>,
    ) -> Result<Node> {
        let Some(ext) = svc.remove("extends") else {
            return Ok(svc);
        };
        let base_name = ext
            .get("service")
            .and_then(Node::as_scalar)
            .unwrap_or_default()
            .to_string();
        let mut base = match ext.get("file").and_then(Node::as_scalar) {
            Some(other) => {
                let other = PathBuf::from(other);
                let other_root = self.extends_file(&other, &ext.loc)?;
                let other_index = service_index(&other_root);
                if !other_index.contains_key(&base_name) {
                    return Err(LoadError::at(
                        &ext.loc,
                        format!(
                            "cannot extend service {name:?}: service {base_name:?} not found in {}",
                            other.display()
                        ),
                    ));
                }
                self.resolved_service(&other_root, &other_index, &other, &base_name, stack)
            }
            None => {
                if !index.contains_key(&base_name) {
                    return Err(LoadError::at(
                        &ext.loc,
                        format!("cannot extend service {name:?}: service {base_name:?} not found"),
                    ));
                }
                self.resolved_service(root, index, file, &base_name, stack)
            }
        }
        .map_err(|e| match e {
            // A cycle is reported where it closes; other errors keep their own location.
            LoadError::At { loc, message } if !loc.has_source() => LoadError::At {
                loc: ext.loc.clone(),
                message,
            },
            other => other,
        })?;
        base.remove("extends");
        merge(&mut base, svc, "services.*");
        Ok(base)
    }

    fn extends_file(&mut self, path: &Path, at: &Loc) -> Result<Node> {
        if let Some(n) = self.extends_cache.get(path) {
            return Ok(n.clone());
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            LoadError::at(
                at,
                format!("cannot read extended file {}: {e}", path.display()),
            )
        })?;
        let source = Source::new(path, text);
        let mut node = yaml::parse(&source)?;
        self.variables_and_interpolation(&mut node)?;
        schema::validate(&mut node)?;
        canonicalize(
            &mut node,
            CanonOptions {
                no_interpolate: !self.opts.interpolate,
            },
        )?;
        if self.opts.resolve_paths {
            let home = self.env.get("HOME");
            let dir = path.parent().unwrap_or(Path::new("/"));
            paths::resolve(&mut node, dir, home.as_deref());
        }
        self.extends_cache.insert(path.to_path_buf(), node.clone());
        Ok(node)
    }

    /// Loads each `include` entry as a project of its own and adds its resources to this file.
    fn apply_includes(&mut self, node: &mut Node, base: &Path) -> Result<()> {
        let Some(Kind::Seq(items)) = node.remove("include").map(|n| n.kind) else {
            return Ok(());
        };
        for item in items {
            let included = self.load_include(&item, base)?;
            add_included(node, included)?;
        }
        Ok(())
    }

    fn load_include(&mut self, item: &Node, base: &Path) -> Result<Node> {
        let home = self.env.get("HOME");
        let files: Vec<PathBuf> = item
            .get("path")
            .and_then(Node::as_seq)
            .map(|s| {
                s.iter()
                    .filter_map(Node::as_scalar)
                    .map(|p| PathBuf::from(paths::absolutize(base, p, home.as_deref())))
                    .collect()
            })
            .unwrap_or_default();
        let Some(first) = files.first() else {
            return Err(LoadError::at(&item.loc, "include needs a path"));
        };
        if self.include_stack.contains(first) {
            return Err(LoadError::at(
                &item.loc,
                format!("include cycle: {} includes itself", first.display()),
            ));
        }
        let project_dir = match item.get("project_directory").and_then(Node::as_scalar) {
            Some(d) => PathBuf::from(paths::absolutize(base, d, home.as_deref())),
            None => first
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| base.to_path_buf()),
        };
        // The included project sees its own .env under this project's variables.
        let mut env = self.env.clone();
        let env_files: Vec<PathBuf> = match item.get("env_file").and_then(Node::as_seq) {
            Some(list) => list
                .iter()
                .filter_map(Node::as_scalar)
                .map(|p| PathBuf::from(paths::absolutize(base, p, home.as_deref())))
                .collect(),
            None => vec![project_dir.join(".env")],
        };
        for f in env_files {
            if f.is_file() {
                let vars = discovery::read_env_file(&f, &env)?;
                env.add_defaults(vars);
            } else if item.get("env_file").is_some() {
                return Err(LoadError::at(
                    &item.loc,
                    format!("env file {} not found", f.display()),
                ));
            }
        }
        let saved_env = std::mem::replace(&mut self.env, env);
        self.include_stack.push(first.clone());
        let result = (|| {
            let mut merged: Option<Node> = None;
            for f in &files {
                let source = std::fs::read_to_string(f)
                    .map(|t| Source::new(f, t))
                    .map_err(|e| {
                        LoadError::at(&item.loc, format!("cannot read {}: {e}", f.display()))
                    })?;
                let n = self.load_file(&source, &project_dir, true)?;
                match &mut merged {
                    None => merged = Some(n),
                    Some(m) => merge(m, n, ""),
                }
            }
            Ok(merged.unwrap_or_else(|| Node::map(Vec::new(), item.loc.clone())))
        })();
        self.include_stack.pop();
        self.env = saved_env;
        result
    }
}

/// Positions of a file's services by name.
fn service_index(root: &Node) -> HashMap<String, usize> {
    root.get("services")
        .and_then(Node::as_map)
        .map(|s| {
            s.iter()
                .enumerate()
                .map(|(i, (k, _))| (k.name.clone(), i))
                .collect()
        })
        .unwrap_or_default()
}

fn lookup_service<'a>(
    root: &'a Node,
    index: &HashMap<String, usize>,
    name: &str,
) -> Option<&'a Node> {
    let i = *index.get(name)?;
    root.get("services")?.as_map()?.get(i).map(|(_, v)| v)
}

/// Adds an included project's services and resources; a name defined differently on both sides
/// is a conflict.
fn add_included(node: &mut Node, included: Node) -> Result<()> {
    let Kind::Map(sections) = included.kind else {
        return Ok(());
    };
    for (section, content) in sections {
        if !matches!(
            section.name.as_str(),
            "services" | "networks" | "volumes" | "secrets" | "configs" | "models"
        ) {
            continue;
        }
        let Kind::Map(entries) = content.kind else {
            continue;
        };
        if node.get(&section.name).is_none() {
            node.insert(&section.name, Node::map(Vec::new(), content.loc.clone()));
        }
        let Some(target) = node.get_mut(&section.name) else {
            continue;
        };
        for (k, v) in entries {
            let existing = target
                .as_map()
                .and_then(|m| m.iter().find(|(ek, _)| ek.name == k.name));
            if let Some((existing_key, existing)) = existing {
                if existing.to_value() != v.to_value() {
                    return Err(LoadError::at(
                        &existing_key.loc,
                        format!(
                            "{}.{} conflicts with a resource of the same name imported by include \
                             (from {})",
                            section.name, k.name, k.loc
                        ),
                    ));
                }
                continue;
            }
            if let Some(m) = target.as_map_mut() {
                m.push((
                    Key {
                        name: k.name,
                        loc: k.loc,
                    },
                    v,
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(dir: &Path) -> LoadOptions {
        LoadOptions {
            files: Vec::new(),
            project_name: None,
            project_directory: None,
            profiles: Vec::new(),
            env_files: Vec::new(),
            explicit_services: Vec::new(),
            interpolate: true,
            normalize: true,
            resolve_paths: true,
            cwd: dir.to_path_buf(),
            process_env: IndexMap::new(),
            stdin_text: None,
        }
    }

    fn write(dir: &Path, name: &str, text: &str) {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, text).unwrap();
    }

    /// Loads a project named `p` made of the given files.
    fn load_files(files: &[(&str, &str)]) -> Result<Loaded> {
        let d = tempfile::tempdir().unwrap();
        for (name, text) in files {
            write(d.path(), name, text);
        }
        let mut o = opts(d.path());
        o.project_name = Some("p".into());
        load(&o)
    }

    #[test]
    fn stdin_file_uses_working_directory() {
        let d = tempfile::tempdir().unwrap();
        let mut o = opts(d.path());
        o.files = vec!["-".into()];
        o.project_name = Some("p".into());
        o.stdin_text = Some("services:\n  a:\n    build: ./ctx\n".into());
        let l = load(&o).unwrap();
        let v = l.to_value();
        assert_eq!(
            v["services"]["a"]["build"]["context"],
            json!(d.path().join("ctx").to_string_lossy())
        );
    }

    #[test]
    fn stdin_errors_name_stdin() {
        let d = tempfile::tempdir().unwrap();
        let mut o = opts(d.path());
        o.files = vec!["-".into()];
        o.project_name = Some("p".into());
        o.stdin_text = Some("services:\n  a:\n    imagee: x\n".into());
        let e = load(&o).unwrap_err().to_string();
        assert!(e.starts_with("<stdin>:3:5:"), "{e}");
    }

    #[test]
    fn disable_env_file() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "compose.yaml",
            "services:\n  a:\n    image: \"x:${TAG:-none}\"\n",
        );
        write(d.path(), ".env", "TAG=dotenv\n");
        let mut o = opts(d.path());
        o.project_name = Some("p".into());
        assert_eq!(
            load(&o).unwrap().to_value()["services"]["a"]["image"],
            json!("x:dotenv")
        );
        o.process_env
            .insert("COMPOSE_DISABLE_ENV_FILE".into(), "true".into());
        assert_eq!(
            load(&o).unwrap().to_value()["services"]["a"]["image"],
            json!("x:none")
        );
    }

    #[test]
    fn project_directory_sets_env_and_paths() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "files/compose.yaml",
            "services:\n  a:\n    image: \"x:${TAG}\"\n    build: .\n",
        );
        write(d.path(), "proj/.env", "TAG=proj\n");
        let mut o = opts(d.path());
        o.files = vec!["files/compose.yaml".into()];
        o.project_directory = Some("proj".into());
        let l = load(&o).unwrap();
        assert_eq!(l.name, "proj");
        let v = l.to_value();
        assert_eq!(v["services"]["a"]["image"], json!("x:proj"));
        assert_eq!(
            v["services"]["a"]["build"]["context"],
            json!(d.path().join("proj").to_string_lossy())
        );
    }

    #[test]
    fn directory_name_is_normalized() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("My App.Dir");
        write(&dir, "compose.yaml", "services:\n  a: {image: x}\n");
        assert_eq!(load(&opts(&dir)).unwrap().name, "myappdir");
    }

    #[test]
    fn missing_files_are_clear() {
        let d = tempfile::tempdir().unwrap();
        let e = load(&opts(d.path())).unwrap_err().to_string();
        assert!(e.contains("no configuration file provided"), "{e}");
        let mut o = opts(d.path());
        o.files = vec!["nope.yaml".into()];
        let e = load(&o).unwrap_err().to_string();
        assert!(e.contains("nope.yaml does not exist"), "{e}");
    }

    #[test]
    fn unset_variables_warn_once() {
        let l = load_files(&[(
            "compose.yaml",
            "services:\n  a:\n    image: \"x:${NOPE}\"\n    environment: [A=$NOPE]\n",
        )])
        .unwrap();
        assert_eq!(
            l.warnings,
            ["The \"NOPE\" variable is not set. Defaulting to a blank string."]
        );
        assert_eq!(l.to_value()["services"]["a"]["environment"]["A"], json!(""));
    }

    #[test]
    fn extends_cycle_across_files() {
        let e = load_files(&[
            (
                "compose.yaml",
                "services:\n  a:\n    extends: {file: other.yaml, service: b}\n",
            ),
            (
                "other.yaml",
                "services:\n  b:\n    extends: {file: compose.yaml, service: a}\n",
            ),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("circular reference with extends: a -> b -> a"),
            "{e}"
        );
    }

    #[test]
    fn include_cycle_is_refused() {
        let e = load_files(&[
            (
                "compose.yaml",
                "include: [sub/compose.yaml]\nservices:\n  a: {image: x}\n",
            ),
            (
                "sub/compose.yaml",
                "include: [compose.yaml]\nservices:\n  b: {image: y}\n",
            ),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("include cycle"), "{e}");
    }

    #[test]
    fn version_key_warns() {
        let l = load_files(&[(
            "compose.yaml",
            "version: '3.8'\nservices:\n  a: {image: x}\n",
        )])
        .unwrap();
        assert!(l.warnings[0].contains("`version` is obsolete"));
        assert!(l.to_value().get("version").is_none());
    }
}
