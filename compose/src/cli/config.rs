//! `rcompose config`: parse, resolve and print the project in canonical form.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use serde_json::Value;

use super::project::{load_project, LoadSwitches};
use super::GlobalOpts;
use crate::graph::DependencyGraph;
use crate::hash::service_hash;
use crate::loader::{project_from_node, project_from_node_traced};
use crate::model::Service;

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Services to print (with what they depend on); all by default
    pub services_filter: Vec<String>,
    /// Output format: `yaml` or `json`
    #[arg(long, default_value = "yaml", value_parser = ["yaml", "json"])]
    pub format: String,
    /// Save to a file instead of printing
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only validate the configuration, print nothing
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the service names, one per line
    #[arg(long)]
    pub services: bool,
    /// Print the volume names, one per line
    #[arg(long)]
    pub volumes: bool,
    /// Print the network names, one per line
    #[arg(long)]
    pub networks: bool,
    /// Print the profile names, one per line
    #[arg(long)]
    pub profiles: bool,
    /// Print the image names, one per line
    #[arg(long)]
    pub images: bool,
    /// Print the configuration hash of services: `*` for all, or a comma-separated list
    #[arg(long, value_name = "SERVICES")]
    pub hash: Option<String>,
    /// Print the environment used for interpolation
    #[arg(long)]
    pub environment: bool,
    /// Print the variables the model references, with their defaults
    #[arg(long)]
    pub variables: bool,
    /// Don't interpolate environment variables
    #[arg(long)]
    pub no_interpolate: bool,
    /// Don't normalize the model
    #[arg(long)]
    pub no_normalize: bool,
    /// Don't resolve file paths
    #[arg(long)]
    pub no_path_resolution: bool,
}

pub fn run(global: &GlobalOpts, args: ConfigArgs) -> anyhow::Result<i32> {
    let switches = LoadSwitches {
        interpolate: !args.no_interpolate,
        normalize: !args.no_normalize,
        resolve_paths: !args.no_path_resolution,
    };
    let mut loaded = load_project(global, &args.services_filter, switches)?;
    // On the rare failure to fit the model, load again with key-path tracking to say where.
    let to_model = |node| {
        project_from_node(node).or_else(|_| {
            let mut again = load_project(global, &args.services_filter, switches)?;
            project_from_node_traced(again.take_node()).map_err(anyhow::Error::from)
        })
    };
    let keep = if args.services_filter.is_empty() {
        None
    } else {
        Some(selected(&loaded.root, &args.services_filter)?)
    };
    let typed = !args.no_interpolate && !args.no_normalize;
    let raw = loaded.take_node();
    if args.quiet {
        // Converting to the model is the last validation step; nothing is printed.
        if typed && !model_fits(raw) {
            // Something does not fit: load again and convert with key-path tracking, for the
            // error `to_model` would give.
            let mut again = load_project(global, &args.services_filter, switches)?;
            let project = project_from_node_traced(again.take_node())?;
            std::mem::forget(project);
        }
        std::mem::forget(loaded);
        return Ok(0);
    }
    // Printed through the typed model: it fixes compose-go's field order and proves the model
    // holds everything the loader produced. Without interpolation or normalisation values may
    // not fit their types yet (`${PORT}` where a number belongs), so the tree is printed as is.
    let mut value = if typed {
        serde_json::to_value(to_model(raw)?)?
    } else {
        raw.into_value()
    };
    sort_maps(&mut value);
    if let (Some(keep), Some(Value::Object(services))) = (&keep, value.get_mut("services")) {
        services.retain(|k, _| keep.contains(k));
    }
    let services = value
        .get("services")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let names = |section: &str| -> Vec<String> {
        value
            .get(section)
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };

    let text = if args.services {
        lines(services.keys().cloned())
    } else if args.volumes {
        lines(names("volumes"))
    } else if args.networks {
        lines(names("networks"))
    } else if args.profiles {
        lines(loaded.all_profiles.iter().cloned())
    } else if args.images {
        lines(services.iter().map(|(name, svc)| {
            svc.get("image")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}-{name}", loaded.name))
        }))
    } else if let Some(which) = &args.hash {
        let wanted: Vec<&str> = which.split(',').map(str::trim).collect();
        let mut out = Vec::new();
        for w in &wanted {
            if *w != "*" && !services.contains_key(*w) {
                anyhow::bail!("no such service: {w}");
            }
        }
        for (name, svc) in &services {
            if wanted.contains(&"*") || wanted.contains(&name.as_str()) {
                out.push(format!("{name} {}", service_hash(svc)));
            }
        }
        lines(out)
    } else if args.environment {
        let mut vars: Vec<(&String, &String)> = loaded.environment.vars().iter().collect();
        vars.sort();
        lines(vars.into_iter().map(|(k, v)| format!("{k}={v}")))
    } else if args.variables {
        variables_table(&loaded.variables)
    } else if args.format == "json" {
        let mut s = serde_json::to_string_pretty(&value)?;
        s.push('\n');
        s
    } else {
        crate::emit::to_yaml(&value)
    };

    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
        }
    }
    Ok(0)
}

/// Whether the resolved project converts to the typed model, as [`project_from_node`] would
/// convert it. Services are converted in two halves, one on another thread, the rest of the
/// project on this one: for a large project conversion is a good part of `config -q`, and what
/// it builds is thrown away.
fn model_fits(mut root: crate::yaml::Node) -> bool {
    use serde::Deserialize;

    /// Converts every service of a `services` mapping, keeping none.
    struct ServicesFit;

    impl<'de> Deserialize<'de> for ServicesFit {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = ServicesFit;

                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a map")
                }

                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<ServicesFit, A::Error> {
                    while let Some((_, service)) =
                        map.next_entry::<serde::de::IgnoredAny, Option<Service>>()?
                    {
                        // Freeing each service piece by piece would only cost time.
                        std::mem::forget(service);
                    }
                    Ok(ServicesFit)
                }
            }
            d.deserialize_map(V)
        }
    }

    let services_fit = |node: crate::yaml::Node| {
        ServicesFit::deserialize(crate::yaml_de::NodeDeserializer(node)).is_ok()
    };
    let split = match root
        .get_mut("services")
        .map(|s| (s.loc.clone(), s.as_map_mut()))
    {
        Some((loc, Some(entries))) if entries.len() >= 2 => {
            let second = entries.split_off(entries.len() / 2);
            let first = std::mem::take(entries);
            Some((
                crate::yaml::Node::map(first, loc.clone()),
                crate::yaml::Node::map(second, loc),
            ))
        }
        _ => None,
    };
    let Some((first, second)) = split else {
        return project_from_node(root).map(std::mem::forget).is_ok();
    };
    root.remove("services");
    std::thread::scope(|scope| {
        let other = scope.spawn(move || services_fit(first));
        let rest = project_from_node(root).map(std::mem::forget).is_ok();
        let mine = services_fit(second);
        let theirs = other.join().unwrap_or(false);
        rest && mine && theirs
    })
}

/// Sorts the keys of user-keyed maps, as docker compose prints them (Go sorts map keys).
fn sort_maps(value: &mut Value) {
    fn sort(v: &mut Value) {
        if let Value::Object(m) = v {
            let mut entries: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            *m = entries.into_iter().collect();
        }
    }
    let Some(Value::Object(services)) = value.get_mut("services") else {
        return;
    };
    for svc in services.values_mut() {
        for k in [
            "environment",
            "labels",
            "annotations",
            "sysctls",
            "extra_hosts",
            "ulimits",
        ] {
            if let Some(v) = svc.get_mut(k) {
                sort(v);
            }
        }
        if let Some(build) = svc.get_mut("build") {
            for k in ["args", "labels"] {
                if let Some(v) = build.get_mut(k) {
                    sort(v);
                }
            }
        }
        if let Some(v) = svc.get_mut("logging").and_then(|l| l.get_mut("options")) {
            sort(v);
        }
        if let Some(v) = svc.get_mut("deploy").and_then(|d| d.get_mut("labels")) {
            sort(v);
        }
    }
}

fn lines(items: impl IntoIterator<Item = String>) -> String {
    let mut s = String::new();
    for i in items {
        s.push_str(&i);
        s.push('\n');
    }
    s
}

/// The named services and what they depend on.
fn selected(root: &crate::yaml::Node, wanted: &[String]) -> anyhow::Result<BTreeSet<String>> {
    let graph = DependencyGraph::from_project(root);
    let known: BTreeSet<&str> = graph.services().collect();
    for w in wanted {
        if !known.contains(w.as_str()) {
            anyhow::bail!("no such service: {w}");
        }
    }
    Ok(graph.with_dependencies(wanted))
}

fn variables_table(vars: &[crate::interpolate::VariableUse]) -> String {
    let mut sorted: Vec<_> = vars.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let rows: Vec<[String; 4]> = sorted
        .iter()
        .map(|v| {
            [
                v.name.clone(),
                v.required.to_string(),
                v.default.clone().unwrap_or_default(),
                v.alternate.clone().unwrap_or_default(),
            ]
        })
        .collect();
    super::table::render(
        &["NAME", "REQUIRED", "DEFAULT VALUE", "ALTERNATE VALUE"],
        &rows,
    )
}
