//! Turning every short form of one compose file into the canonical long form, before files are
//! merged (compose-go does the same, so that merge rules only ever see one shape per key).
//!
//! Works on located nodes: a bad port or duration is reported at the value that holds it.

use serde_json::Value;

use crate::error::LoadError;
use crate::syntax;
use crate::yaml::{Key, Kind, Loc, Node, Style};

/// Options that change what canonicalisation may assume.
#[derive(Debug, Clone, Copy, Default)]
pub struct CanonOptions {
    /// Variables were not substituted: strings holding `$` are kept as written rather than parsed.
    pub no_interpolate: bool,
}

type Result<T> = std::result::Result<T, LoadError>;

/// Canonicalises a whole compose file in place.
pub fn canonicalize(root: &mut Node, opts: CanonOptions) -> Result<()> {
    if let Some(services) = root.get_mut("services").and_then(Node::as_map_mut) {
        services_in_order(services, opts)?;
    }
    for kind in ["networks", "volumes", "secrets", "configs"] {
        if let Some(entries) = root.get_mut(kind).and_then(Node::as_map_mut) {
            for (_, res) in entries.iter_mut() {
                resource(res, kind)?;
            }
        }
    }
    if let Some(inc) = root.get_mut("include") {
        include(inc);
    }
    Ok(())
}

/// Services with more than this many entries are canonicalised in two halves at once.
const PARALLEL_SERVICES: usize = 64;

/// Canonicalises each service; the error reported is the first service's in file order.
fn services_in_order(services: &mut [(Key, Node)], opts: CanonOptions) -> Result<()> {
    let each = |services: &mut [(Key, Node)]| -> Result<()> {
        for (name, svc) in services.iter_mut() {
            if svc.is_null() {
                *svc = Node::map(Vec::new(), svc.loc.clone());
            }
            service(svc, &name.name, opts)?;
        }
        Ok(())
    };
    if services.len() <= PARALLEL_SERVICES {
        return each(services);
    }
    // Services are independent of each other: a large file does its two halves at once. The
    // first half's error, if any, is the first in file order.
    let (first, second) = services.split_at_mut(services.len() / 2);
    std::thread::scope(|scope| {
        let later = scope.spawn(|| each(second));
        let earlier = each(first);
        let later = later
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        earlier.and(later)
    })
}

fn err(loc: &Loc, msg: impl std::fmt::Display) -> LoadError {
    LoadError::at(loc, msg.to_string())
}

fn keep_raw(n: &Node, opts: CanonOptions) -> bool {
    opts.no_interpolate && n.as_scalar().is_some_and(|s| s.contains('$'))
}

fn str_node(s: impl Into<String>, loc: &Loc) -> Node {
    Node::string(s, loc.clone())
}

fn key(name: &str, loc: &Loc) -> Key {
    Key {
        name: name.to_string(),
        loc: loc.clone(),
    }
}

/// A scalar as the string docker compose would print for it (`1` → `"1"`, `true` → `"true"`).
fn scalar_string(n: &Node) -> Option<String> {
    match n.to_value() {
        Value::String(s) => Some(s),
        Value::Number(x) => Some(x.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `list_or_dict`: `["A=1", "B"]` or `{A: 1, B: null}` → a mapping of strings. `bare` is what an
/// entry without `=` becomes: null for environment-like keys (the value comes from the shell),
/// an empty string for labels.
fn list_or_dict(n: &mut Node, bare_is_null: bool) -> Result<()> {
    let loc = n.loc.clone();
    let entries = match &n.kind {
        Kind::Seq(items) => {
            let mut out: Vec<(Key, Node)> = Vec::new();
            for item in items {
                let Some(text) = scalar_string(item) else {
                    return Err(err(
                        &item.loc,
                        "list entries must be strings of the form KEY=VALUE",
                    ));
                };
                let (k, v) = syntax::parse_env_list_entry(&text);
                let value = match v {
                    Some(v) => str_node(v, &item.loc),
                    None if bare_is_null => Node::null(item.loc.clone()),
                    None => str_node("", &item.loc),
                };
                out.retain(|(ok, _)| ok.name != k);
                out.push((key(&k, &item.loc), value));
            }
            out
        }
        Kind::Map(entries) => entries
            .iter()
            .map(|(k, v)| {
                let value = match scalar_string(v) {
                    Some(s) => str_node(s, &v.loc),
                    None if v.is_null() => {
                        if bare_is_null {
                            Node::null(v.loc.clone())
                        } else {
                            str_node("", &v.loc)
                        }
                    }
                    None => v.clone(),
                };
                let mut value = value;
                value.tag = v.tag;
                (k.clone(), value)
            })
            .collect(),
        Kind::Scalar(..) => return Ok(()),
    };
    let tag = n.tag;
    *n = Node::map(entries, loc);
    n.tag = tag;
    Ok(())
}

/// `string_or_list` → list.
fn string_to_list(n: &mut Node) {
    if let Kind::Scalar(s, Style::Quoted) | Kind::Scalar(s, Style::Plain) = &n.kind {
        if n.is_null() {
            return;
        }
        let item = str_node(s.clone(), &n.loc);
        let tag = n.tag;
        *n = Node::seq(vec![item], n.loc.clone());
        n.tag = tag;
    }
}

/// `command`: a string is split into words as docker compose does; a list stays.
fn command(n: &mut Node, opts: CanonOptions) -> Result<()> {
    if let Some(s) = n.as_str().map(str::to_string) {
        if keep_raw(n, opts) {
            return Ok(());
        }
        let words = shell_words::split(&s)
            .map_err(|e| err(&n.loc, format!("cannot split {s:?} into words: {e}")))?;
        let tag = n.tag;
        *n = Node::seq(
            words.into_iter().map(|w| str_node(w, &n.loc)).collect(),
            n.loc.clone(),
        );
        n.tag = tag;
    } else if let Some(items) = n.as_seq() {
        let items: Vec<Node> = items
            .iter()
            .map(|i| str_node(scalar_string(i).unwrap_or_default(), &i.loc))
            .collect();
        n.kind = Kind::Seq(items);
    }
    Ok(())
}

/// Rewrites a scalar through `convert` (which parses its text), keeping its merge tag; nulls and
/// uninterpolated values are left alone.
fn convert_scalar<E: std::fmt::Display>(
    n: &mut Node,
    opts: CanonOptions,
    convert: impl FnOnce(&str) -> std::result::Result<Value, E>,
) -> Result<()> {
    if keep_raw(n, opts) || n.is_null() {
        return Ok(());
    }
    let text = scalar_string(n).unwrap_or_default();
    let v = convert(&text).map_err(|e| err(&n.loc, e))?;
    let tag = n.tag;
    *n = Node::from_value_owned(v, &n.loc);
    n.tag = tag;
    Ok(())
}

fn duration(n: &mut Node, opts: CanonOptions) -> Result<()> {
    convert_scalar(n, opts, |t| {
        syntax::parse_duration(t).map(|d| Value::from(syntax::format_duration(d)))
    })
}

fn bytes(n: &mut Node, opts: CanonOptions) -> Result<()> {
    convert_scalar(n, opts, |t| syntax::parse_bytes(t).map(Value::from))
}

/// A number the schema lets be written as a string (so interpolation can produce it): numeric
/// strings become numbers, anything else is an error at the value.
fn number(n: &mut Node, what: &str, opts: CanonOptions) -> Result<()> {
    if keep_raw(n, opts) {
        return Ok(());
    }
    if let Value::String(s) = n.to_value() {
        let t = s.trim();
        let v = if let Ok(i) = t.parse::<i64>() {
            Value::from(i)
        } else {
            match t.parse::<f64>().ok().filter(|f| f.is_finite()) {
                Some(f) => Value::from(f),
                None => return Err(err(&n.loc, format!("invalid {what} {s:?}: not a number"))),
            }
        };
        let tag = n.tag;
        *n = Node::from_value(&v, &n.loc);
        n.tag = tag;
    }
    Ok(())
}

fn with_child(n: &mut Node, name: &str, f: impl FnOnce(&mut Node) -> Result<()>) -> Result<()> {
    match n.get_mut(name) {
        Some(child) => f(child),
        None => Ok(()),
    }
}

fn map_values(n: &mut Node, mut f: impl FnMut(&mut Node) -> Result<()>) -> Result<()> {
    if let Some(entries) = n.as_map_mut() {
        for (_, v) in entries.iter_mut() {
            f(v)?;
        }
    }
    Ok(())
}

fn seq_items(n: &mut Node, mut f: impl FnMut(&mut Node) -> Result<()>) -> Result<()> {
    if let Kind::Seq(items) = &mut n.kind {
        for item in items.iter_mut() {
            f(item)?;
        }
    }
    Ok(())
}

/// Replaces a sequence's items with the flattened results of `f` (one short port can be many).
fn flat_map_items(n: &mut Node, mut f: impl FnMut(&Node) -> Result<Vec<Node>>) -> Result<()> {
    if let Kind::Seq(items) = &n.kind {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.extend(f(item)?);
        }
        n.kind = Kind::Seq(out);
    }
    Ok(())
}

fn service(svc: &mut Node, _name: &str, opts: CanonOptions) -> Result<()> {
    let Some(_) = svc.as_map() else {
        return Ok(());
    };
    with_child(svc, "build", |b| build(b, opts))?;
    with_child(svc, "command", |c| command(c, opts))?;
    with_child(svc, "entrypoint", |c| command(c, opts))?;
    with_child(svc, "environment", |n| list_or_dict(n, true))?;
    for k in ["labels", "annotations", "sysctls"] {
        with_child(svc, k, |n| list_or_dict(n, false))?;
    }
    for k in ["dns", "dns_search", "tmpfs", "label_file"] {
        with_child(svc, k, |n| {
            string_to_list(n);
            Ok(())
        })?;
    }
    with_child(svc, "env_file", env_file)?;
    with_child(svc, "extends", |n| {
        if let Some(s) = n.as_str().map(str::to_string) {
            let loc = n.loc.clone();
            *n = Node::map(vec![(key("service", &loc), str_node(s, &loc))], loc);
        }
        Ok(())
    })?;
    with_child(svc, "depends_on", depends_on)?;
    with_child(svc, "networks", service_networks)?;
    with_child(svc, "ports", |n| {
        flat_map_items(n, |item| {
            if keep_raw(item, opts) {
                return Ok(vec![item.clone()]);
            }
            match item.to_value() {
                Value::Number(x) => port_short(&x.to_string(), &item.loc),
                Value::String(s) => port_short(&s, &item.loc),
                Value::Object(_) => Ok(vec![port_long(item)?]),
                _ => Ok(vec![item.clone()]),
            }
        })
    })?;
    with_child(svc, "expose", |n| {
        seq_items(n, |i| {
            if let Some(s) = scalar_string(i) {
                *i = str_node(s, &i.loc);
            }
            Ok(())
        })
    })?;
    with_child(svc, "volumes", |n| {
        seq_items(n, |item| {
            if keep_raw(item, opts) {
                return Ok(());
            }
            if let Some(s) = item.as_str().map(str::to_string) {
                let v = syntax::parse_volume(&s).map_err(|e| err(&item.loc, e))?;
                *item = Node::from_value_owned(v, &item.loc);
            } else if item.as_map().is_some() {
                with_child(item, "tmpfs", |t| with_child(t, "size", |s| bytes(s, opts)))?;
            }
            Ok(())
        })
    })?;
    with_child(svc, "extra_hosts", extra_hosts)?;
    with_child(svc, "devices", |n| {
        seq_items(n, |item| {
            if let Some(s) = item.as_str().map(str::to_string) {
                let v = syntax::parse_device(&s).map_err(|e| err(&item.loc, e))?;
                *item = Node::from_value_owned(v, &item.loc);
            }
            Ok(())
        })
    })?;
    with_child(svc, "ulimits", ulimits)?;
    for k in ["secrets", "configs"] {
        with_child(svc, k, |n| {
            seq_items(n, |item| {
                let v = syntax::parse_secret_or_config_ref(&item.to_value())
                    .map_err(|e| err(&item.loc, e))?;
                *item = Node::from_value(&v, &item.loc);
                Ok(())
            })
        })?;
    }
    with_child(svc, "healthcheck", |h| healthcheck(h, opts))?;
    with_child(svc, "stop_grace_period", |n| duration(n, opts))?;
    for k in ["mem_limit", "memswap_limit", "mem_reservation", "shm_size"] {
        with_child(svc, k, |n| {
            // memswap_limit: -1 means unlimited swap and is kept as the number it is.
            if matches!(n.to_value(), Value::Number(ref x) if x.as_i64() == Some(-1)) {
                return Ok(());
            }
            bytes(n, opts)
        })?;
    }
    with_child(svc, "restart", |n| {
        if keep_raw(n, opts) {
            return Ok(());
        }
        if let Some(s) = scalar_string(n) {
            let r = syntax::normalize_restart(&s).map_err(|e| err(&n.loc, e))?;
            *n = str_node(r, &n.loc);
        }
        Ok(())
    })?;
    with_child(svc, "stop_signal", |n| {
        if let Some(s) = scalar_string(n) {
            if !keep_raw(n, opts) && !syntax::is_valid_signal(&s) {
                return Err(err(&n.loc, format!("invalid stop_signal {s:?}")));
            }
        }
        Ok(())
    })?;
    with_child(svc, "pull_policy", |n| {
        // compose-go treats `if_not_present` as the older spelling of `missing`.
        if n.as_str() == Some("if_not_present") {
            *n = str_node("missing", &n.loc);
        }
        Ok(())
    })?;
    with_child(svc, "logging", |l| {
        with_child(l, "options", |o| {
            map_values(o, |v| {
                if let Some(s) = scalar_string(v) {
                    *v = str_node(s, &v.loc);
                }
                Ok(())
            })
        })
    })?;
    with_child(svc, "deploy", |d| deploy(d, opts))?;
    for hook in ["post_start", "pre_stop", "pre_start"] {
        with_child(svc, hook, |n| {
            seq_items(n, |h| {
                with_child(h, "command", |c| command(c, opts))?;
                with_child(h, "environment", |e| list_or_dict(e, true))
            })
        })?;
    }
    for k in [
        "cpu_shares",
        "cpu_quota",
        "cpu_period",
        "cpu_rt_period",
        "cpu_rt_runtime",
        "mem_swappiness",
        "pids_limit",
        "scale",
    ] {
        with_child(svc, k, |n| number(n, k, opts))?;
    }
    with_child(svc, "healthcheck", |h| {
        with_child(h, "retries", |n| number(n, "retries", opts))
    })?;
    with_child(svc, "blkio_config", |b| {
        with_child(b, "weight", |n| number(n, "weight", opts))
    })?;
    with_child(svc, "cpus", |n| {
        if let Some(Value::String(s)) = Some(n.to_value()) {
            if !keep_raw(n, opts) {
                let f: f64 = s
                    .trim()
                    .parse()
                    .map_err(|_| err(&n.loc, format!("invalid cpus {s:?}: not a number")))?;
                *n = Node::from_value(&Value::from(f), &n.loc);
            }
        }
        Ok(())
    })?;
    with_child(svc, "gpus", |n| {
        if n.as_str() == Some("all") {
            let v = serde_json::json!([{"count": -1}]);
            *n = Node::from_value(&v, &n.loc);
        }
        Ok(())
    })?;
    Ok(())
}

fn port_short(s: &str, loc: &Loc) -> Result<Vec<Node>> {
    let ports = syntax::parse_port(s).map_err(|e| err(loc, e))?;
    Ok(ports
        .into_iter()
        .map(|p| Node::from_value_owned(p, loc))
        .collect())
}

/// The long port syntax, with docker compose's defaults filled in and `published` as a string.
fn port_long(item: &Node) -> Result<Node> {
    let mut v = item.to_value();
    let Value::Object(m) = &mut v else {
        return Ok(item.clone());
    };
    let mut out = serde_json::Map::new();
    if let Some(name) = m.remove("name") {
        out.insert("name".into(), name);
    }
    out.insert(
        "mode".into(),
        m.remove("mode").unwrap_or_else(|| Value::from("ingress")),
    );
    if let Some(ip) = m.remove("host_ip") {
        out.insert("host_ip".into(), ip);
    }
    match m.remove("target") {
        Some(Value::String(t)) => {
            let n: u16 = t
                .parse()
                .map_err(|_| err(&item.loc, format!("invalid port target {t:?}")))?;
            out.insert("target".into(), Value::from(n));
        }
        Some(t) => {
            out.insert("target".into(), t);
        }
        None => return Err(err(&item.loc, "a port mapping needs a target")),
    }
    match m.remove("published") {
        Some(Value::Number(n)) => {
            out.insert("published".into(), Value::from(n.to_string()));
        }
        Some(Value::String(s)) if !s.is_empty() => {
            out.insert("published".into(), Value::from(s));
        }
        _ => {}
    }
    out.insert(
        "protocol".into(),
        m.remove("protocol").unwrap_or_else(|| Value::from("tcp")),
    );
    for (k, x) in std::mem::take(m) {
        out.insert(k, x);
    }
    Ok(Node::from_value(&Value::Object(out), &item.loc))
}

fn env_file(n: &mut Node) -> Result<()> {
    string_to_list(n);
    seq_items(n, |item| {
        if let Some(p) = item.as_str().map(str::to_string) {
            let loc = item.loc.clone();
            *item = Node::map(
                vec![
                    (key("path", &loc), str_node(p, &loc)),
                    (
                        key("required", &loc),
                        Node::from_value(&Value::Bool(true), &loc),
                    ),
                ],
                loc,
            );
        } else if item.as_map().is_some() && item.get("required").is_none() {
            let loc = item.loc.clone();
            item.insert("required", Node::from_value(&Value::Bool(true), &loc));
        }
        Ok(())
    })
}

fn depends_on(n: &mut Node) -> Result<()> {
    let loc = n.loc.clone();
    if let Some(items) = n.as_seq() {
        let entries = items
            .iter()
            .map(|i| {
                let name = scalar_string(i).unwrap_or_default();
                (key(&name, &i.loc), Node::map(Vec::new(), i.loc.clone()))
            })
            .collect();
        let tag = n.tag;
        *n = Node::map(entries, loc);
        n.tag = tag;
    }
    map_values(n, |dep| {
        if dep.is_null() {
            *dep = Node::map(Vec::new(), dep.loc.clone());
        }
        let dloc = dep.loc.clone();
        if dep.get("condition").is_none() {
            dep.insert("condition", str_node("service_started", &dloc));
        }
        if dep.get("required").is_none() {
            dep.insert("required", Node::from_value(&Value::Bool(true), &dloc));
        }
        // `restart` may be written as a string ("true") where interpolation produced it.
        if let Some(Value::String(s)) = dep.get("restart").map(Node::to_value) {
            let b = matches!(s.as_str(), "true" | "True" | "TRUE" | "1");
            dep.insert("restart", Node::from_value(&Value::Bool(b), &dloc));
        }
        // Keep compose-go's field order: condition, restart, required.
        if let Some(entries) = dep.as_map_mut() {
            let rank = |k: &str| match k {
                "condition" => 0,
                "restart" => 1,
                "required" => 2,
                _ => 3,
            };
            entries.sort_by_key(|(k, _)| rank(&k.name));
        }
        Ok(())
    })
}

fn service_networks(n: &mut Node) -> Result<()> {
    let loc = n.loc.clone();
    if let Some(items) = n.as_seq() {
        let entries = items
            .iter()
            .map(|i| {
                let name = scalar_string(i).unwrap_or_default();
                (key(&name, &i.loc), Node::null(i.loc.clone()))
            })
            .collect();
        let tag = n.tag;
        *n = Node::map(entries, loc);
        n.tag = tag;
    }
    map_values(n, |net| {
        with_child(net, "aliases", |a| {
            string_to_list(a);
            Ok(())
        })
    })
}

fn extra_hosts(n: &mut Node) -> Result<()> {
    let loc = n.loc.clone();
    let mut out: Vec<(Key, Node)> = Vec::new();
    let mut add = |host: String, ips: Vec<String>, at: &Loc| {
        if let Some((_, existing)) = out.iter_mut().find(|(k, _)| k.name == host) {
            if let Kind::Seq(items) = &mut existing.kind {
                for ip in ips {
                    items.push(str_node(ip, at));
                }
            }
        } else {
            let items = ips.into_iter().map(|ip| str_node(ip, at)).collect();
            out.push((key(&host, at), Node::seq(items, at.clone())));
        }
    };
    match &n.kind {
        Kind::Seq(items) => {
            for item in items {
                let s = scalar_string(item).unwrap_or_default();
                let (host, ips) = syntax::parse_extra_host(&s).map_err(|e| err(&item.loc, e))?;
                add(host, ips, &item.loc);
            }
        }
        Kind::Map(entries) => {
            for (k, v) in entries {
                let ips: Vec<String> = match &v.kind {
                    Kind::Seq(items) => items.iter().filter_map(scalar_string).collect(),
                    _ => scalar_string(v).into_iter().collect(),
                };
                let ips = ips
                    .into_iter()
                    .map(|ip| ip.trim_start_matches('[').trim_end_matches(']').to_string())
                    .collect();
                add(k.name.clone(), ips, &v.loc);
            }
        }
        Kind::Scalar(..) => return Ok(()),
    }
    let tag = n.tag;
    *n = Node::map(out, loc);
    n.tag = tag;
    Ok(())
}

fn ulimits(n: &mut Node) -> Result<()> {
    map_values(n, |u| {
        let v = syntax::parse_ulimit_value(&u.to_value()).map_err(|e| err(&u.loc, e))?;
        *u = Node::from_value(&v, &u.loc);
        Ok(())
    })
}

fn healthcheck(h: &mut Node, opts: CanonOptions) -> Result<()> {
    with_child(h, "test", |t| {
        if let Some(s) = t.as_str().map(str::to_string) {
            let loc = t.loc.clone();
            let tag = t.tag;
            *t = Node::seq(vec![str_node("CMD-SHELL", &loc), str_node(s, &loc)], loc);
            t.tag = tag;
        }
        Ok(())
    })?;
    for k in ["interval", "timeout", "start_period", "start_interval"] {
        with_child(h, k, |n| duration(n, opts))?;
    }
    Ok(())
}

fn build(b: &mut Node, opts: CanonOptions) -> Result<()> {
    if let Some(s) = b.as_str().map(str::to_string) {
        let loc = b.loc.clone();
        let tag = b.tag;
        *b = Node::map(vec![(key("context", &loc), str_node(s, &loc))], loc);
        b.tag = tag;
    }
    if b.as_map().is_none() {
        return Ok(());
    }
    if b.get("context").is_none() {
        let loc = b.loc.clone();
        b.insert("context", str_node(".", &loc));
    }
    with_child(b, "args", |n| list_or_dict(n, true))?;
    with_child(b, "labels", |n| list_or_dict(n, false))?;
    with_child(b, "additional_contexts", |n| list_or_dict(n, false))?;
    with_child(b, "extra_hosts", extra_hosts)?;
    with_child(b, "shm_size", |n| bytes(n, opts))?;
    with_child(b, "ulimits", ulimits)?;
    with_child(b, "secrets", |n| {
        seq_items(n, |item| {
            let v = syntax::parse_secret_or_config_ref(&item.to_value())
                .map_err(|e| err(&item.loc, e))?;
            *item = Node::from_value(&v, &item.loc);
            Ok(())
        })
    })?;
    Ok(())
}

fn deploy(d: &mut Node, opts: CanonOptions) -> Result<()> {
    with_child(d, "labels", |n| list_or_dict(n, false))?;
    with_child(d, "replicas", |n| number(n, "replicas", opts))?;
    with_child(d, "restart_policy", |p| {
        with_child(p, "max_attempts", |n| number(n, "max_attempts", opts))
    })?;
    with_child(d, "placement", |p| {
        with_child(p, "max_replicas_per_node", |n| {
            number(n, "max_replicas_per_node", opts)
        })
    })?;
    for cfg in ["update_config", "rollback_config"] {
        with_child(d, cfg, |u| {
            with_child(u, "parallelism", |n| number(n, "parallelism", opts))?;
            with_child(u, "max_failure_ratio", |n| {
                number(n, "max_failure_ratio", opts)
            })
        })?;
    }
    with_child(d, "resources", |r| {
        for side in ["limits", "reservations"] {
            with_child(r, side, |l| {
                with_child(l, "memory", |m| bytes(m, opts))?;
                with_child(l, "pids", |m| number(m, "pids", opts))?;
                with_child(l, "cpus", |c| {
                    if let Value::String(s) = c.to_value() {
                        if !keep_raw(c, opts) {
                            let f: f64 = s.trim().parse().map_err(|_| {
                                err(&c.loc, format!("invalid cpus {s:?}: not a number"))
                            })?;
                            *c = Node::from_value(&Value::from(f), &c.loc);
                        }
                    }
                    Ok(())
                })
            })?;
        }
        Ok(())
    })?;
    with_child(d, "restart_policy", |p| {
        for k in ["delay", "window"] {
            with_child(p, k, |n| duration(n, opts))?;
        }
        Ok(())
    })?;
    for cfg in ["update_config", "rollback_config"] {
        with_child(d, cfg, |u| {
            for k in ["delay", "monitor"] {
                with_child(u, k, |n| duration(n, opts))?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

fn resource(res: &mut Node, kind: &str) -> Result<()> {
    if res.is_null() {
        *res = Node::map(Vec::new(), res.loc.clone());
    }
    with_child(res, "labels", |n| list_or_dict(n, false))?;
    with_child(res, "driver_opts", |o| {
        map_values(o, |v| {
            if let Some(s) = scalar_string(v) {
                *v = str_node(s, &v.loc);
            }
            Ok(())
        })
    })?;
    // The legacy `external: {name: x}` form means "external, named x".
    if let Some(ext) = res.get("external") {
        if let Some(name) = ext.get("name").cloned() {
            let loc = ext.loc.clone();
            res.insert("external", Node::from_value(&Value::Bool(true), &loc));
            if res.get("name").is_none() {
                res.insert("name", name);
            }
        }
    }
    if kind == "networks" {
        with_child(res, "ipam", |i| {
            with_child(i, "config", |c| {
                seq_items(c, |e| {
                    with_child(e, "aux_addresses", |a| list_or_dict(a, false))
                })
            })
        })?;
    }
    Ok(())
}

fn include(inc: &mut Node) {
    if let Kind::Seq(items) = &mut inc.kind {
        for item in items.iter_mut() {
            if let Some(p) = item.as_str().map(str::to_string) {
                let loc = item.loc.clone();
                *item = Node::map(
                    vec![(
                        key("path", &loc),
                        Node::seq(vec![str_node(p, &loc)], loc.clone()),
                    )],
                    loc,
                );
            } else if let Some(path) = item.get_mut("path") {
                string_to_list(path);
            }
            if let Some(envf) = item.get_mut("env_file") {
                string_to_list(envf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{parse, Source};
    use serde_json::json;

    fn canon(text: &str) -> Result<Value> {
        let mut n = parse(&Source::new("compose.yaml", text)).unwrap();
        canonicalize(&mut n, CanonOptions::default())?;
        Ok(n.to_value())
    }

    /// A file of `n` services whose ports are `80`, except `bad` ones, which are invalid.
    fn many_services(n: usize, bad: &[usize]) -> String {
        let mut text = String::from("services:\n");
        for i in 0..n {
            let port = if bad.contains(&i) { "nope" } else { "80" };
            text.push_str(&format!("  s{i}:\n    ports: [\"{port}\"]\n"));
        }
        text
    }

    #[test]
    fn large_files_report_the_first_error_in_file_order() {
        let n = PARALLEL_SERVICES * 2;
        let v = canon(&many_services(n, &[])).unwrap();
        assert_eq!(v["services"].as_object().unwrap().len(), n);
        assert_eq!(v["services"]["s0"]["ports"][0]["target"], json!(80));
        assert_eq!(
            v["services"][&format!("s{}", n - 1)]["ports"][0]["target"],
            json!(80)
        );
        for bad in [vec![3, n - 2], vec![n - 10, n - 2], vec![n / 2 - 1, n / 2]] {
            let e = canon(&many_services(n, &bad)).unwrap_err();
            // Service i's port is on line 3 + 2 i.
            assert_eq!(e.loc().unwrap().line, 3 + 2 * bad[0], "{bad:?}: {e}");
        }
    }

    #[test]
    fn lists_become_maps() {
        let v = canon("services:\n  a:\n    environment: [A=1, B]\n    labels: [x=y, z]\n    depends_on: [db]\n    networks: [front]\n").unwrap();
        let a = &v["services"]["a"];
        assert_eq!(a["environment"], json!({"A":"1","B":null}));
        assert_eq!(a["labels"], json!({"x":"y","z":""}));
        assert_eq!(
            a["depends_on"],
            json!({"db":{"condition":"service_started","required":true}})
        );
        assert_eq!(a["networks"], json!({"front":null}));
    }

    #[test]
    fn strings_become_long_forms() {
        let v = canon("services:\n  a:\n    build: ./app\n    command: echo 'a b'\n    healthcheck:\n      test: curl -f x\n      interval: 90s\n    env_file: .env\n    stop_grace_period: 1m30s\n    mem_limit: 512m\n    environment: {N: 1, B: true}\n").unwrap();
        let a = &v["services"]["a"];
        assert_eq!(a["build"], json!({"context":"./app"}));
        assert_eq!(a["command"], json!(["echo", "a b"]));
        assert_eq!(a["healthcheck"]["test"], json!(["CMD-SHELL", "curl -f x"]));
        assert_eq!(a["healthcheck"]["interval"], json!("1m30s"));
        assert_eq!(a["env_file"], json!([{"path":".env","required":true}]));
        assert_eq!(a["stop_grace_period"], json!("1m30s"));
        assert_eq!(a["mem_limit"], json!(536870912));
        assert_eq!(a["environment"], json!({"N":"1","B":"true"}));
    }

    #[test]
    fn ports_expand_and_keep_location() {
        let v = canon("services:\n  a:\n    ports: ['8080-8081:80-81', 9000, {target: 53, published: 5353, protocol: udp}]\n").unwrap();
        let ports = v["services"]["a"]["ports"].as_array().unwrap();
        assert_eq!(ports.len(), 4);
        assert_eq!(
            ports[3],
            json!({"mode":"ingress","target":53,"published":"5353","protocol":"udp"})
        );
        let e = canon("services:\n  a:\n    ports:\n      - '80:abc'\n").unwrap_err();
        assert_eq!(e.loc().unwrap().line, 4, "{e}");
    }

    #[test]
    fn bad_duration_and_size_are_located() {
        let e = canon("services:\n  a:\n    stop_grace_period: 10x\n").unwrap_err();
        assert_eq!(e.loc().unwrap().line, 3);
        let e = canon("services:\n  a:\n    shm_size: lots\n").unwrap_err();
        assert_eq!(e.loc().unwrap().line, 3);
    }

    #[test]
    fn command_strings_split_like_a_shell() {
        let v = canon("services:\n  a:\n    command: sh -c 'echo \"a b\"; exit 3'\n    entrypoint: [\"/e\", 1]\n").unwrap();
        assert_eq!(
            v["services"]["a"]["command"],
            json!(["sh", "-c", "echo \"a b\"; exit 3"])
        );
        assert_eq!(v["services"]["a"]["entrypoint"], json!(["/e", "1"]));
        let e = canon("services:\n  a:\n    command: echo 'oops\n").unwrap_err();
        assert_eq!(e.loc().unwrap().line, 3, "{e}");
    }

    #[test]
    fn legacy_external_name() {
        let v = canon("networks:\n  n:\n    external:\n      name: real\n").unwrap();
        assert_eq!(v["networks"]["n"], json!({"external":true,"name":"real"}));
    }
}
