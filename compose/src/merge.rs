//! Merging compose files (and `extends` bases) by the Compose Specification's rules.
//!
//! Both sides are already in canonical long form (see `canonical`), so most rules fall out of
//! "mappings merge, sequences append": environment, labels, depends_on and networks are maps by
//! then. What remains are the paths the spec singles out: `command`, `entrypoint` and
//! `healthcheck.test` replace; ports, volumes, secrets and configs merge by their identity; logging
//! with another driver replaces. `!reset` drops an inherited value and `!override` replaces it.

use std::collections::HashMap;

use crate::yaml::{Kind, MergeTag, Node};

/// Merges `over` into `base` (the value from the later file wins). `path` is the dotted key path of
/// `base`, with `*` standing for service and resource names.
pub fn merge(base: &mut Node, over: Node, path: &str) {
    match over.tag {
        Some(MergeTag::Reset) => {
            *base = strip_tag(over);
            return;
        }
        Some(MergeTag::Override) => {
            *base = strip_tag(over);
            return;
        }
        None => {}
    }
    if path == "services.*.logging" && driver_changes(base, &over) {
        *base = over;
        return;
    }
    let over_loc = over.loc.clone();
    match (&mut base.kind, over.kind) {
        (Kind::Map(base_entries), Kind::Map(over_entries)) => {
            // Files with hundreds of services make a linear search per key quadratic.
            let index: Option<HashMap<String, usize>> = (base_entries.len() > 16).then(|| {
                base_entries
                    .iter()
                    .enumerate()
                    .map(|(i, (k, _))| (k.name.clone(), i))
                    .collect()
            });
            let mut removed: Vec<usize> = Vec::new();
            for (k, v) in over_entries {
                let pos = match &index {
                    Some(ix) => ix.get(&k.name).copied(),
                    None => base_entries.iter().position(|(bk, _)| bk.name == k.name),
                };
                match (pos, v.tag) {
                    (Some(i), Some(MergeTag::Reset)) => removed.push(i),
                    (None, Some(MergeTag::Reset)) => {}
                    (Some(i), _) => {
                        merge(&mut base_entries[i].1, v, child_path(path, &k.name));
                    }
                    (None, _) => base_entries.push((k, strip_tag(v))),
                }
            }
            if !removed.is_empty() {
                let mut i = 0;
                base_entries.retain(|_| {
                    let keep = !removed.contains(&i);
                    i += 1;
                    keep
                });
            }
        }
        (Kind::Seq(base_items), Kind::Seq(over_items)) => {
            merge_seq(base_items, over_items, path);
        }
        (_, kind) => {
            *base = Node::new(kind, over_loc);
        }
    }
}

fn strip_tag(mut n: Node) -> Node {
    n.tag = None;
    n
}

/// Paths no merge rule looks at, at any depth below: their children need no path of their own.
const NO_RULE: &str = "-";

/// The rule-table path of `key` under `path`. Only paths that lead to a rule are spelled out;
/// the rest collapse to [`NO_RULE`], so merging allocates no path strings.
fn child_path(path: &str, key: &str) -> &'static str {
    match path {
        "" => match key {
            "services" => "services",
            _ => NO_RULE,
        },
        // Service names are wildcards in the rule table.
        "services" => "services.*",
        "services.*" => match key {
            "logging" => "services.*.logging",
            "command" => "services.*.command",
            "entrypoint" => "services.*.entrypoint",
            "healthcheck" => "services.*.healthcheck",
            "volumes" => "services.*.volumes",
            "secrets" => "services.*.secrets",
            "configs" => "services.*.configs",
            "devices" => "services.*.devices",
            "env_file" => "services.*.env_file",
            "post_start" => "services.*.post_start",
            "pre_stop" => "services.*.pre_stop",
            _ => NO_RULE,
        },
        "services.*.healthcheck" if key == "test" => "services.*.healthcheck.test",
        "services.*.post_start" => "services.*.post_start.*",
        "services.*.pre_stop" => "services.*.pre_stop.*",
        "services.*.post_start.*" if key == "command" => "services.*.post_start.*.command",
        "services.*.pre_stop.*" if key == "command" => "services.*.pre_stop.*.command",
        _ => NO_RULE,
    }
}

fn driver_changes(base: &Node, over: &Node) -> bool {
    let driver = |n: &Node| {
        n.get("driver")
            .and_then(Node::as_scalar)
            .map(str::to_string)
    };
    match (driver(base), driver(over)) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

/// The identity under which an item of a keyed sequence is merged.
fn item_key(path: &str, item: &Node) -> Option<String> {
    let field = |name: &str| item.get(name).and_then(Node::as_scalar).map(str::to_string);
    match path {
        "services.*.volumes" => field("target"),
        "services.*.secrets" | "services.*.configs" => field("target").or_else(|| field("source")),
        "services.*.devices" => field("target").or_else(|| field("source")),
        "services.*.env_file" => field("path"),
        _ => None,
    }
}

fn merge_seq(base: &mut Vec<Node>, over: Vec<Node>, path: &str) {
    match path {
        "services.*.command"
        | "services.*.entrypoint"
        | "services.*.healthcheck.test"
        | "services.*.post_start.*.command"
        | "services.*.pre_stop.*.command" => {
            *base = over;
        }
        "services.*.volumes"
        | "services.*.secrets"
        | "services.*.configs"
        | "services.*.devices"
        | "services.*.env_file" => {
            for item in over {
                let key = item_key(path, &item);
                match key.and_then(|k| {
                    base.iter()
                        .position(|b| item_key(path, b).as_deref() == Some(k.as_str()))
                }) {
                    Some(i) => base[i] = item,
                    None => base.push(item),
                }
            }
        }
        _ => {
            // Everything else appends; an item equal to one already there is not repeated
            // (cap_add, dns, ports, profiles … are sets in practice).
            for item in over {
                if !base.iter().any(|b| b.same_value(&item)) {
                    base.push(item);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{parse, Source};
    use serde_json::json;

    fn merged(a: &str, b: &str) -> serde_json::Value {
        let mut base = parse(&Source::new("a.yaml", a)).unwrap();
        let over = parse(&Source::new("b.yaml", b)).unwrap();
        merge(&mut base, over, "");
        base.to_value()
    }

    #[test]
    fn maps_merge_and_scalars_replace() {
        let v = merged(
            "services: {web: {image: a, environment: {A: '1', B: '2'}}}",
            "services: {web: {image: b, environment: {B: '3', C: '4'}}}",
        );
        assert_eq!(
            v,
            json!({"services":{"web":{"image":"b","environment":{"A":"1","B":"3","C":"4"}}}})
        );
    }

    #[test]
    fn command_replaces_and_lists_append() {
        let v = merged(
            "services: {web: {command: [a, b], cap_add: [X], healthcheck: {test: [CMD, a]}}}",
            "services: {web: {command: [c], cap_add: [X, Y], healthcheck: {test: [CMD, b]}}}",
        );
        assert_eq!(
            v,
            json!({"services":{"web":{"command":["c"],"cap_add":["X","Y"],"healthcheck":{"test":["CMD","b"]}}}})
        );
    }

    #[test]
    fn volumes_merge_by_target() {
        let v = merged(
            "services: {web: {volumes: [{type: bind, source: /a, target: /data}, {type: volume, source: v, target: /v}]}}",
            "services: {web: {volumes: [{type: bind, source: /b, target: /data}]}}",
        );
        assert_eq!(
            v["services"]["web"]["volumes"],
            json!([{"type":"bind","source":"/b","target":"/data"},{"type":"volume","source":"v","target":"/v"}])
        );
    }

    #[test]
    fn reset_and_override_tags() {
        let v = merged(
            "services: {web: {ports: [{target: 80}], environment: {A: '1'}, labels: {x: y}}}",
            "services: {web: {ports: !reset [], environment: !override {B: '2'}, labels: !reset null}}",
        );
        assert_eq!(v, json!({"services":{"web":{"environment":{"B":"2"}}}}));
    }

    #[test]
    fn logging_with_other_driver_replaces() {
        let v = merged(
            "services: {web: {logging: {driver: json-file, options: {max-size: 1m}}}}",
            "services: {web: {logging: {driver: syslog}}}",
        );
        assert_eq!(v["services"]["web"]["logging"], json!({"driver":"syslog"}));
        let v = merged(
            "services: {web: {logging: {driver: json-file, options: {max-size: 1m}}}}",
            "services: {web: {logging: {options: {max-file: '3'}}}}",
        );
        assert_eq!(
            v["services"]["web"]["logging"],
            json!({"driver":"json-file","options":{"max-size":"1m","max-file":"3"}})
        );
    }
}
