//! Round-trip, schema-coverage and helper tests of the project model.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::*;

fn load(doc: &Value) -> Project {
    match serde_json::from_value::<Project>(doc.clone()) {
        Ok(project) => project,
        Err(e) => panic!("document does not deserialize: {e}\n{doc:#}"),
    }
}

fn dump(project: &Project) -> Value {
    serde_json::to_value(project).expect("project serializes")
}

fn assert_round_trip(doc: Value) {
    let project = load(&doc);
    let back = dump(&project);
    assert_eq!(
        back, doc,
        "round trip changed the document\n--- got\n{back:#}\n--- want\n{doc:#}"
    );
    // A second pass must be stable too.
    assert_eq!(load(&back), project);
}

/// Every key of every object, fully populated: the schema test walks this.
fn full_service() -> Value {
    // A string rather than `json!`: the macro would exceed the default recursion limit.
    serde_json::from_str(
        r#"{
        "profiles": ["debug"],
        "annotations": {"com.example.note": "a"},
        "attach": false,
        "build": {
            "context": "/src/app",
            "dockerfile": "Dockerfile.dev",
            "dockerfile_inline": "FROM busybox",
            "entitlements": ["network.host"],
            "args": {"VERSION": "1.0", "FROM_ENV": null},
            "provenance": "mode=max",
            "sbom": "true",
            "ssh": {"default": null, "deploy": "/home/u/.ssh/id_ed25519"},
            "labels": {"org.example.stage": "dev"},
            "cache_from": ["type=local,src=/tmp/cache"],
            "cache_to": ["type=local,dest=/tmp/cache"],
            "no_cache": true,
            "no_cache_filter": ["base"],
            "additional_contexts": {"lib": "/src/lib"},
            "pull": true,
            "extra_hosts": {"build.local": ["10.0.0.1"]},
            "isolation": "default",
            "network": "host",
            "target": "dev",
            "secrets": [{"source": "token", "target": "/run/secrets/token", "uid": "0", "gid": "0", "mode": 256}],
            "shm_size": "67108864",
            "tags": ["example/app:dev"],
            "ulimits": {"nofile": {"soft": 1024, "hard": 2048}},
            "platforms": ["linux/amd64"],
            "privileged": true,
            "x-build-note": "kept"
        },
        "develop": {
            "watch": [{
                "path": "/src/app",
                "action": "sync+exec",
                "target": "/app",
                "exec": {
                    "command": ["kill", "-HUP", "1"],
                    "user": "root",
                    "privileged": true,
                    "working_dir": "/app",
                    "environment": {"RELOAD": "1"}
                },
                "include": ["*.py"],
                "ignore": ["*.pyc"],
                "initial_sync": true
            }]
        },
        "blkio_config": {
            "weight": 300,
            "weight_device": [{"path": "/dev/sda", "weight": 400}],
            "device_read_bps": [{"path": "/dev/sda", "rate": "1048576"}],
            "device_read_iops": [{"path": "/dev/sda", "rate": "100"}],
            "device_write_bps": [{"path": "/dev/sda", "rate": "2097152"}],
            "device_write_iops": [{"path": "/dev/sda", "rate": "50"}]
        },
        "cap_add": ["NET_ADMIN"],
        "cap_drop": ["MKNOD"],
        "cgroup_parent": "/rcompose",
        "cgroup": "private",
        "cpu_count": 2,
        "cpu_percent": 50,
        "cpu_period": 100000,
        "cpu_quota": 50000,
        "cpu_rt_period": 1000000,
        "cpu_rt_runtime": 950000,
        "cpus": 1.5,
        "cpuset": "0-1",
        "cpu_shares": 512,
        "command": ["python", "app.py"],
        "configs": [{"source": "app_config", "target": "/etc/app.conf", "uid": "1000", "gid": "1000", "mode": 292}],
        "container_name": "app-main",
        "credential_spec": {"config": "cred", "file": "spec.json", "registry": "reg-spec"},
        "depends_on": {"db": {"condition": "service_healthy", "restart": true, "required": true}},
        "deploy": {
            "mode": "replicated",
            "replicas": 2,
            "labels": {"tier": "web"},
            "update_config": {
                "parallelism": 1, "delay": "10s", "failure_action": "rollback",
                "monitor": "1m0s", "max_failure_ratio": 0.3, "order": "start-first"
            },
            "rollback_config": {
                "parallelism": 2, "delay": "5s", "failure_action": "pause",
                "monitor": "30s", "max_failure_ratio": 0.5, "order": "stop-first"
            },
            "resources": {
                "limits": {"cpus": 0.5, "memory": "536870912", "pids": 100},
                "reservations": {
                    "cpus": 0.25,
                    "memory": "268435456",
                    "devices": [{
                        "capabilities": ["gpu"], "driver": "nvidia", "count": 1,
                        "device_ids": ["0"], "options": {"virtualization": "false"}
                    }],
                    "generic_resources": [{"discrete_resource_spec": {"kind": "SSD", "value": "1"}}]
                }
            },
            "restart_policy": {"condition": "on-failure", "delay": "5s", "max_attempts": 3, "window": "2m0s"},
            "placement": {
                "constraints": ["node.role==manager"],
                "preferences": [{"spread": "node.labels.zone"}],
                "max_replicas_per_node": 1
            },
            "endpoint_mode": "vip"
        },
        "device_cgroup_rules": ["c 1:3 mr"],
        "devices": [{"source": "/dev/ttyUSB0", "target": "/dev/ttyUSB1", "permissions": "rwm"}],
        "dns": ["8.8.8.8"],
        "dns_opt": ["use-vc"],
        "dns_search": ["example.com"],
        "domainname": "example.com",
        "entrypoint": ["/entrypoint.sh"],
        "provider": {"type": "model", "options": {"model": "ai/smollm2", "flags": ["a", "b"]}},
        "environment": {"DEBUG": "1", "PASSTHROUGH": null},
        "env_file": [{"path": "/src/app/.env", "required": false, "format": "raw"}],
        "expose": ["3000"],
        "extends": {"file": "base.yaml", "service": "base"},
        "external_links": ["redis:cache"],
        "extra_hosts": {"somehost": ["162.242.195.82"], "otherhost": ["50.31.209.229", "::1"]},
        "group_add": ["mail"],
        "gpus": [{
            "capabilities": ["gpu"], "driver": "nvidia", "count": -1,
            "device_ids": ["1"], "options": {"mode": "compute"}
        }],
        "hostname": "app",
        "healthcheck": {
            "test": ["CMD", "true"], "timeout": "5s", "interval": "30s", "retries": 3,
            "start_period": "10s", "start_interval": "1s", "disable": true
        },
        "image": "example/app:1.0",
        "init": true,
        "ipc": "shareable",
        "isolation": "default",
        "labels": {"com.example.role": "web"},
        "label_file": ["/src/app/labels"],
        "links": ["db:database"],
        "logging": {"driver": "json-file", "options": {"max-size": "10m"}},
        "mem_limit": "1073741824",
        "mem_reservation": "536870912",
        "memswap_limit": "-1",
        "mem_swappiness": 60,
        "mac_address": "02:42:ac:11:65:43",
        "models": {"llm": {"endpoint_var": "LLM_URL", "model_var": "LLM_NAME"}},
        "network_mode": "bridge",
        "networks": {
            "front": {
                "aliases": ["web"],
                "driver_opts": {"com.docker.network.endpoint.ifname": "front0"},
                "gw_priority": 1,
                "interface_name": "eth0",
                "ipv4_address": "172.28.0.10",
                "ipv6_address": "fd00::10",
                "link_local_ips": ["169.254.8.8"],
                "mac_address": "02:42:ac:11:65:44",
                "priority": 100
            }
        },
        "oom_kill_disable": true,
        "oom_score_adj": -500,
        "pid": "host",
        "pids_limit": 200,
        "platform": "linux/amd64",
        "ports": [{
            "name": "http", "mode": "ingress", "host_ip": "127.0.0.1", "target": 80,
            "published": "8080", "protocol": "tcp", "app_protocol": "http"
        }],
        "privileged": true,
        "pull_policy": "missing",
        "pull_refresh_after": "24h",
        "read_only": true,
        "restart": "on-failure:3",
        "runtime": "runc",
        "scale": 2,
        "secrets": [{"source": "token", "target": "/run/secrets/token", "uid": "0", "gid": "0", "mode": 256}],
        "security_opt": ["no-new-privileges:true"],
        "shm_size": "67108864",
        "stdin_open": true,
        "stop_grace_period": "1m30s",
        "stop_signal": "SIGINT",
        "storage_opt": {"size": "20G"},
        "sysctls": {"net.core.somaxconn": "1024"},
        "tmpfs": ["/run"],
        "tty": true,
        "ulimits": {"nproc": 65535, "nofile": {"soft": 20000, "hard": 40000}},
        "use_api_socket": true,
        "user": "1000:1000",
        "userns_mode": "host",
        "uts": "host",
        "volumes": [{
            "type": "bind",
            "source": "/src/app",
            "target": "/app",
            "read_only": true,
            "consistency": "cached",
            "bind": {"selinux": "z", "propagation": "rprivate", "create_host_path": true, "recursive": "enabled"},
            "volume": {"labels": {"backup": "yes"}, "nocopy": true, "subpath": "sub"},
            "tmpfs": {"size": "1048576", "mode": 1023},
            "image": {"subpath": "etc"}
        }],
        "volumes_from": ["other:ro"],
        "working_dir": "/app",
        "pre_start": [{
            "command": ["migrate"], "image": "example/migrate:1", "user": "root", "privileged": true,
            "working_dir": "/", "environment": {"STEP": "1"}, "per_replica": true
        }],
        "post_start": [{
            "command": ["echo", "started"], "user": "root", "privileged": true,
            "working_dir": "/", "environment": {"UNSET": null}
        }],
        "pre_stop": [{
            "command": ["echo", "stopping"], "user": "app", "privileged": true,
            "working_dir": "/tmp", "environment": {"WHY": "stop"}
        }],
        "x-service-note": {"nested": ["json", 1, true]}
    }"#,
    )
    .expect("fixture is valid JSON")
}

fn full_project() -> Value {
    json!({
        "name": "full",
        "include": [{
            "path": ["/src/other/compose.yaml"],
            "project_directory": "/src/other",
            "env_file": ["/src/other/.env"]
        }],
        "services": {"app": full_service()},
        "networks": {
            "front": {
                "name": "full_front",
                "driver": "bridge",
                "driver_opts": {"com.docker.network.bridge.name": "br-front"},
                "ipam": {
                    "driver": "default",
                    "config": [{
                        "subnet": "172.28.0.0/16", "gateway": "172.28.0.1",
                        "ip_range": "172.28.5.0/24", "aux_addresses": {"host1": "172.28.1.5"}
                    }],
                    "options": {"foo": "bar"}
                },
                "external": true,
                "internal": true,
                "attachable": true,
                "labels": {"com.example.net": "front"},
                "enable_ipv4": true,
                "enable_ipv6": false
            }
        },
        "volumes": {
            "data": {
                "name": "full_data",
                "driver": "local",
                "driver_opts": {"type": "none", "o": "bind", "device": "/srv/data"},
                "external": true,
                "labels": {"com.example.vol": "data"}
            }
        },
        "secrets": {
            "token": {
                "name": "full_token",
                "file": "/src/token.txt",
                "environment": "TOKEN",
                "external": true,
                "labels": {"com.example.secret": "token"},
                "driver": "vault",
                "driver_opts": {"path": "kv/token"},
                "template_driver": "golang"
            }
        },
        "configs": {
            "app_config": {
                "name": "full_app_config",
                "file": "/src/app.conf",
                "environment": "APP_CONFIG",
                "content": "debug=1\n",
                "external": true,
                "labels": {"com.example.config": "app"},
                "template_driver": "golang"
            }
        },
        "models": {
            "llm": {
                "name": "smol",
                "model": "ai/smollm2",
                "context_size": 2048,
                "runtime_flags": ["--verbose"]
            }
        },
        "x-project-note": "kept"
    })
}

#[test]
fn round_trip_minimal() {
    assert_round_trip(json!({
        "name": "hello",
        "services": {
            "hello": {
                "command": ["echo", "hello"],
                "image": "busybox:latest",
                "networks": {"default": null}
            }
        },
        "networks": {"default": {"name": "hello_default"}}
    }));
}

#[test]
fn round_trip_web_and_db() {
    assert_round_trip(json!({
        "name": "shop",
        "services": {
            "db": {
                "environment": {"POSTGRES_PASSWORD_FILE": "/run/secrets/db_password", "PGDATA": null},
                "healthcheck": {
                    "test": ["CMD-SHELL", "pg_isready -U postgres"],
                    "timeout": "5s",
                    "interval": "10s",
                    "retries": 5,
                    "start_period": "30s"
                },
                "image": "postgres:16",
                "networks": {"back": null},
                "restart": "unless-stopped",
                "secrets": [{"source": "db_password", "target": "/run/secrets/db_password"}],
                "volumes": [{"type": "volume", "source": "pgdata", "target": "/var/lib/postgresql/data", "volume": {}}]
            },
            "web": {
                "build": {"context": "/src/shop", "dockerfile": "Dockerfile", "args": {"PY": "3.12"}},
                "command": ["gunicorn", "shop:app"],
                "configs": [{"source": "nginx", "target": "/etc/nginx.conf", "mode": 292}],
                "depends_on": {
                    "db": {"condition": "service_healthy", "required": true},
                    "cache": {"condition": "service_started", "restart": true, "required": false}
                },
                "deploy": {
                    "replicas": 3,
                    "resources": {"limits": {"cpus": 2, "memory": "268435456"}}
                },
                "entrypoint": [],
                "env_file": [{"path": "/src/shop/.env", "required": true}],
                "environment": {"DATABASE_HOST": "db"},
                "networks": {
                    "front": {"aliases": ["shop"], "priority": 10},
                    "back": null
                },
                "ports": [
                    {"mode": "ingress", "target": 8000, "published": "8080", "protocol": "tcp"},
                    {"mode": "ingress", "host_ip": "127.0.0.1", "target": 9000, "published": "9000-9001", "protocol": "udp"}
                ],
                "stop_grace_period": "1m30s",
                "volumes": [
                    {"type": "bind", "source": "/src/shop", "target": "/app", "read_only": true, "bind": {"create_host_path": true}},
                    {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": "10485760"}}
                ]
            },
            "cache": {"image": "redis:7", "networks": {"back": null}}
        },
        "networks": {
            "front": {"name": "shop_front"},
            "back": {"name": "shop_back", "internal": true}
        },
        "volumes": {"pgdata": {"name": "shop_pgdata"}},
        "secrets": {"db_password": {"name": "shop_db_password", "file": "/src/shop/db_password.txt"}},
        "configs": {"nginx": {"name": "shop_nginx", "content": "server {}"}}
    }));
}

#[test]
fn round_trip_resources_and_extensions() {
    assert_round_trip(json!({
        "name": "lab",
        "services": {
            "toolchain": {
                "blkio_config": {"weight": 500},
                "cap_add": ["SYS_PTRACE"],
                "devices": [{"source": "/dev/kvm", "target": "/dev/kvm", "permissions": "rwm"}],
                "extra_hosts": {"host.docker.internal": ["host-gateway"]},
                "gpus": [{"count": -1}],
                "image": "lab/toolchain",
                "logging": {"driver": "json-file", "options": {"max-file": "3"}, "x-log": true},
                "networks": {"default": {"ipv4_address": "10.5.0.5", "x-net": "v"}},
                "ports": [{"mode": "host", "target": 1234, "protocol": "tcp", "x-port": 1}],
                "post_start": [{"command": ["sh", "-c", "echo up"]}],
                "security_opt": ["seccomp=unconfined"],
                "stdin_open": true,
                "tty": true,
                "ulimits": {"core": 0, "nofile": {"soft": 1024, "hard": 4096}},
                "volumes": [
                    {"type": "bind", "source": "/home/student/os", "target": "/work", "bind": {"propagation": "rshared", "selinux": "Z"}},
                    {"type": "volume", "target": "/cache"},
                    {"type": "image", "source": "lab/data:1", "target": "/data", "image": {"subpath": "set1"}}
                ],
                "x-lab": {"course": "os"}
            }
        },
        "networks": {
            "default": {
                "name": "lab_default",
                "ipam": {"config": [{"subnet": "10.5.0.0/16", "gateway": "10.5.0.1"}]},
                "x-net-note": 1
            }
        },
        "volumes": {"scratch": {"name": "lab_scratch", "driver_opts": {"size": "10G"}, "x-vol": "a"}},
        "x-defaults": {"restart": "no"}
    }));
}

#[test]
fn round_trip_full_project() {
    assert_round_trip(full_project());
}

/// compose-go's `ServiceConfig` field order, with this project's `pre_start` before `post_start`
/// and `pull_refresh_after` after `pull_policy`.
const SERVICE_KEY_ORDER: &[&str] = &[
    "profiles",
    "annotations",
    "attach",
    "build",
    "develop",
    "blkio_config",
    "cap_add",
    "cap_drop",
    "cgroup_parent",
    "cgroup",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpus",
    "cpuset",
    "cpu_shares",
    "command",
    "configs",
    "container_name",
    "credential_spec",
    "depends_on",
    "deploy",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "provider",
    "environment",
    "env_file",
    "expose",
    "extends",
    "external_links",
    "extra_hosts",
    "group_add",
    "gpus",
    "hostname",
    "healthcheck",
    "image",
    "init",
    "ipc",
    "isolation",
    "labels",
    "label_file",
    "links",
    "logging",
    "mem_limit",
    "mem_reservation",
    "memswap_limit",
    "mem_swappiness",
    "mac_address",
    "models",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "ports",
    "privileged",
    "pull_policy",
    "pull_refresh_after",
    "read_only",
    "restart",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "use_api_socket",
    "user",
    "userns_mode",
    "uts",
    "volumes",
    "volumes_from",
    "working_dir",
    "pre_start",
    "post_start",
    "pre_stop",
    "x-service-note",
];

fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn serializes_in_compose_go_field_order() {
    let out = dump(&load(&full_project()));
    assert_eq!(
        keys(&out),
        [
            "name",
            "include",
            "services",
            "networks",
            "volumes",
            "secrets",
            "configs",
            "models",
            "x-project-note"
        ]
    );
    assert_eq!(keys(&out["services"]["app"]), SERVICE_KEY_ORDER);
    assert_eq!(
        keys(&out["services"]["app"]["ports"][0]),
        [
            "name",
            "mode",
            "host_ip",
            "target",
            "published",
            "protocol",
            "app_protocol"
        ]
    );
    assert_eq!(
        keys(&out["services"]["app"]["healthcheck"]),
        [
            "test",
            "timeout",
            "interval",
            "retries",
            "start_period",
            "start_interval",
            "disable"
        ]
    );
    assert_eq!(
        keys(&out["services"]["app"]["deploy"]),
        [
            "mode",
            "replicas",
            "labels",
            "update_config",
            "rollback_config",
            "resources",
            "restart_policy",
            "placement",
            "endpoint_mode"
        ]
    );
    assert_eq!(
        keys(&out["networks"]["front"]),
        [
            "name",
            "driver",
            "driver_opts",
            "ipam",
            "external",
            "internal",
            "attachable",
            "labels",
            "enable_ipv4",
            "enable_ipv6"
        ]
    );
}

// ---- schema coverage -------------------------------------------------------------------------

const SCHEMA_FILE: &str = "compose-spec.compose-go.json";

fn schema_candidates() -> Vec<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("RCOMPOSE_COMPOSE_SCHEMA") {
        candidates.push(PathBuf::from(path));
    }
    // Developers have shared/ beside the workspace; CI has it beside the clone. Both are two
    // levels above this crate.
    candidates.push(manifest.join("../../shared").join(SCHEMA_FILE));
    candidates.push(manifest.join("../shared").join(SCHEMA_FILE));
    candidates
}

fn load_schema() -> Value {
    // The loader validates against the copy compiled into the binary: that is the one to cover.
    if !crate::schema::schema().is_null() {
        return crate::schema::schema().clone();
    }
    let candidates = schema_candidates();
    for path in &candidates {
        if let Ok(text) = std::fs::read_to_string(path) {
            return serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()));
        }
    }
    panic!(
        "compose schema `{SCHEMA_FILE}` not found; looked at:\n  {}\n\
         set RCOMPOSE_COMPOSE_SCHEMA to its path",
        candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

/// Keys the schema has that the model deliberately never prints.
const NEVER_PRINTED: &[&str] = &[
    // Deprecated and ignored; docker compose drops it too.
    "version",
];

/// Keys the model prints beyond the schema (pattern path, `*` for map keys).
const BEYOND_SCHEMA: &[&str] = &["configs.*.driver", "configs.*.driver_opts"];

struct SchemaWalk<'a> {
    root: &'a Value,
    problems: Vec<String>,
    checked_objects: usize,
}

impl<'a> SchemaWalk<'a> {
    fn resolve(&self, mut node: &'a Value) -> &'a Value {
        while let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            let name = reference.trim_start_matches("#/$defs/");
            node = &self.root["$defs"][name];
        }
        node
    }

    /// The node itself, or each alternative of a `oneOf`/`anyOf`, references resolved.
    fn variants(&self, node: &'a Value) -> Vec<&'a Value> {
        let node = self.resolve(node);
        for key in ["oneOf", "anyOf"] {
            if let Some(list) = node.get(key).and_then(Value::as_array) {
                return list.iter().flat_map(|v| self.variants(v)).collect();
            }
        }
        vec![node]
    }

    fn allows(node: &Value, kind: &str) -> bool {
        match node.get("type") {
            Some(Value::String(t)) => t == kind,
            Some(Value::Array(types)) => types.iter().any(|t| t == kind),
            None => match kind {
                "object" => {
                    node.get("properties").is_some() || node.get("patternProperties").is_some()
                }
                "array" => node.get("items").is_some(),
                _ => false,
            },
            _ => false,
        }
    }

    /// Schema for a map value under `patternProperties`, ignoring the `^x-` pattern.
    fn pattern_schema(node: &'a Value) -> Option<&'a Value> {
        node.get("patternProperties")?
            .as_object()?
            .iter()
            .find(|(pattern, _)| pattern.as_str() != "^x-")
            .map(|(_, schema)| schema)
    }

    fn walk(&mut self, path: &str, pattern: &str, node: &'a Value, value: &Value) {
        let kind = match value {
            Value::Object(_) => "object",
            Value::Array(_) => "array",
            _ => return,
        };
        let Some(schema) = self
            .variants(node)
            .into_iter()
            .find(|v| Self::allows(v, kind))
        else {
            self.problems
                .push(format!("{path}: the schema does not allow {kind} here"));
            return;
        };
        match value {
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.walk(
                            &format!("{path}[{i}]"),
                            &format!("{pattern}[]"),
                            item_schema,
                            item,
                        );
                    }
                }
            }
            Value::Object(map) => {
                self.checked_objects += 1;
                let properties = schema.get("properties").and_then(Value::as_object);
                if let Some(properties) = properties {
                    for key in properties.keys() {
                        if !map.contains_key(key) && !NEVER_PRINTED.contains(&key.as_str()) {
                            self.problems.push(format!(
                                "{path}: schema key `{key}` is not printed by the model"
                            ));
                        }
                    }
                }
                for (key, child) in map {
                    if key.starts_with("x-") {
                        continue;
                    }
                    let (child_path, child_pattern) = (join(path, key), join(pattern, key));
                    if let Some(sub) = properties.and_then(|p| p.get(key)) {
                        self.walk(&child_path, &child_pattern, sub, child);
                    } else if let Some(sub) = Self::pattern_schema(schema) {
                        self.walk(&child_path, &join(pattern, "*"), sub, child);
                    } else if schema.get("additionalProperties") == Some(&Value::Bool(false))
                        && !BEYOND_SCHEMA.contains(&child_pattern.as_str())
                    {
                        self.problems.push(format!(
                            "{child_path}: printed key `{key}` is not in the schema"
                        ));
                    }
                }
            }
            _ => {}
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn walk_problems(schema: &Value, printed: &Value) -> (Vec<String>, usize) {
    let mut walk = SchemaWalk {
        root: schema,
        problems: Vec::new(),
        checked_objects: 0,
    };
    walk.walk("", "", schema, printed);
    (walk.problems, walk.checked_objects)
}

#[test]
fn every_schema_key_is_modelled() {
    let schema = load_schema();
    let printed = dump(&load(&full_project()));
    let (problems, checked) = walk_problems(&schema, &printed);
    assert!(
        problems.is_empty(),
        "model and schema disagree:\n  {}",
        problems.join("\n  ")
    );
    // Guard against a walk that silently skipped everything.
    assert!(checked > 50, "only {checked} objects checked");
}

#[test]
fn schema_walk_catches_missing_and_unknown_keys() {
    let schema = load_schema();
    let mut printed = dump(&load(&full_project()));
    let service = printed["services"]["app"]
        .as_object_mut()
        .expect("service is an object");
    service.remove("tty");
    service.insert("ttty".into(), json!(true));
    let (problems, _) = walk_problems(&schema, &printed);
    assert_eq!(
        problems,
        [
            "services.app: schema key `tty` is not printed by the model",
            "services.app.ttty: printed key `ttty` is not in the schema",
        ]
    );
}

#[test]
fn every_service_schema_property_is_a_service_key() {
    let schema = load_schema();
    let printed = dump(&load(&full_project()));
    let service = &printed["services"]["app"];
    for def in [
        "service",
        "network",
        "volume",
        "secret",
        "config",
        "healthcheck",
        "deployment",
    ] {
        let Some(properties) = schema["$defs"][def]["properties"].as_object() else {
            panic!("schema has no $defs.{def}.properties");
        };
        let object = match def {
            "service" => service,
            "network" => &printed["networks"]["front"],
            "volume" => &printed["volumes"]["data"],
            "secret" => &printed["secrets"]["token"],
            "config" => &printed["configs"]["app_config"],
            "healthcheck" => &service["healthcheck"],
            _ => &service["deploy"],
        };
        for key in properties.keys() {
            assert!(
                object.get(key).is_some(),
                "$defs.{def}: `{key}` missing from {object:#}"
            );
        }
    }
}

// ---- lenient input ---------------------------------------------------------------------------

#[test]
fn accepts_polymorphic_long_form_values() {
    let project = load(&json!({
        "name": "p",
        "services": {
            "s": {
                "cpus": "0.5",
                "gpus": "all",
                "healthcheck": {"test": "curl -f http://localhost"},
                "expose": [3000, "4000-4001"],
                "group_add": [100],
                "labels": {"n": 1, "b": true},
                "mem_limit": "512m",
                "shm_size": "64mb",
                "ports": [{"target": 80, "published": 8080}],
                "secrets": [{"source": "k", "mode": "0440"}],
                "deploy": {"resources": {"reservations": {"devices": [{"capabilities": ["gpu"], "count": "all"}]}}},
                "ulimits": {"nofile": "1024"},
                "networks": {"n": null}
            }
        },
        "networks": {"n": null},
        "volumes": {"v": null},
        "secrets": {"k": {"external": {"name": "old_style"}}}
    }));
    let s = &project.services["s"];
    assert_eq!(s.name, "s");
    assert_eq!(s.cpus, Some(0.5));
    assert_eq!(s.gpus[0].count, Some(-1));
    assert_eq!(
        s.healthcheck.as_ref().map(|h| h.test.clone()),
        Some(vec!["CMD-SHELL".into(), "curl -f http://localhost".into()])
    );
    assert_eq!(s.expose, ["3000", "4000-4001"]);
    assert_eq!(s.group_add, ["100"]);
    assert_eq!(s.labels["n"], "1");
    assert_eq!(s.labels["b"], "true");
    assert_eq!(s.mem_limit, Some(512 * 1024 * 1024));
    assert_eq!(s.shm_size, Some(64 * 1024 * 1024));
    assert_eq!(s.ports[0].published.as_deref(), Some("8080"));
    assert_eq!(s.secrets[0].mode, Some(0o440));
    let devices = &s
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.reservations.as_ref())
        .map(|r| r.devices.clone())
        .unwrap_or_default();
    assert_eq!(devices[0].count, Some(-1));
    assert_eq!(s.ulimits["nofile"], Ulimit::Single(1024));
    assert_eq!(s.networks["n"], None);
    assert_eq!(project.networks["n"], Network::default());
    assert_eq!(project.volumes["v"], Volume::default());
    assert!(project.secrets["k"].external);

    let out = dump(&project);
    assert_eq!(out["services"]["s"]["cpus"], json!(0.5));
    assert_eq!(out["services"]["s"]["ports"][0]["published"], json!("8080"));
    assert_eq!(out["services"]["s"]["secrets"][0]["mode"], json!(288));
    assert_eq!(out["services"]["s"]["networks"]["n"], Value::Null);
    assert_eq!(out["secrets"]["k"]["external"], json!(true));
}

#[test]
fn keeps_only_extension_keys() {
    let project = load(&json!({
        "name": "p",
        "version": "3.8",
        "services": {"s": {"image": "i", "x-keep": 1, "unknown": 2}},
        "x-top": {"a": 1},
        "bogus": true
    }));
    let out = dump(&project);
    assert_eq!(
        out,
        json!({
            "name": "p",
            "services": {"s": {"image": "i", "x-keep": 1}},
            "x-top": {"a": 1}
        })
    );
    assert_eq!(project.extensions.get("x-top"), Some(&json!({"a": 1})));
}

#[test]
fn floats_print_like_go() {
    let project = load(&json!({"services": {"s": {"cpus": 2.0, "cpu_percent": 12.5}}}));
    let out = dump(&project);
    assert_eq!(out["services"]["s"]["cpus"], json!(2));
    assert_eq!(out["services"]["s"]["cpu_percent"], json!(12.5));
}

#[test]
fn rejects_malformed_values() {
    for bad in [
        json!({"services": {"s": {"stop_grace_period": "soon"}}}),
        json!({"services": {"s": {"ports": [{"target": 70000}]}}}),
        json!({"services": {"s": {"mem_limit": "lots"}}}),
        json!({"services": {"s": {"depends_on": {"d": {"condition": "service_ready"}}}}}),
        json!({"services": {"s": {"volumes": [{"type": "floppy", "target": "/a"}]}}}),
        json!({"services": {"s": {"labels": {"a": ["list"]}}}}),
    ] {
        assert!(
            serde_json::from_value::<Project>(bad.clone()).is_err(),
            "accepted {bad}"
        );
    }
}

// ---- helpers ---------------------------------------------------------------------------------

fn service(doc: Value) -> Service {
    let project = load(&json!({"name": "proj", "services": {"svc": doc}}));
    project.services["svc"].clone()
}

#[test]
fn replicas_prefers_scale_then_deploy() {
    assert_eq!(service(json!({})).replicas(), 1);
    assert_eq!(service(json!({"deploy": {"replicas": 3}})).replicas(), 3);
    assert_eq!(service(json!({"scale": 2})).replicas(), 2);
    assert_eq!(
        service(json!({"scale": 0, "deploy": {"replicas": 0}})).replicas(),
        0
    );
}

#[test]
fn image_defaults_to_project_dash_service() {
    let project = load(&json!({
        "name": "proj",
        "services": {
            "built": {"build": {"context": "."}},
            "tagged": {"build": {"context": "."}, "image": "me/app:1"}
        }
    }));
    assert_eq!(
        project.services["built"].image_or_default(&project),
        "proj-built"
    );
    assert_eq!(
        project.services["tagged"].image_or_default(&project),
        "me/app:1"
    );
}

#[test]
fn restart_policy_from_restart_and_deploy() {
    let policy = |doc| service(doc).restart_policy();
    assert_eq!(
        policy(json!({})),
        RestartPolicy {
            mode: RestartMode::No,
            max_retries: 0
        }
    );
    assert_eq!(
        policy(json!({"restart": "always"})).mode,
        RestartMode::Always
    );
    assert_eq!(
        policy(json!({"restart": "unless-stopped"})).mode,
        RestartMode::UnlessStopped
    );
    assert_eq!(
        policy(json!({"restart": "on-failure:5"})),
        RestartPolicy {
            mode: RestartMode::OnFailure,
            max_retries: 5
        }
    );
    assert_eq!(
        policy(
            json!({"restart": "always", "deploy": {"restart_policy": {"condition": "on-failure", "max_attempts": 2}}})
        ),
        RestartPolicy {
            mode: RestartMode::OnFailure,
            max_retries: 2
        }
    );
    assert_eq!(
        policy(json!({"deploy": {"restart_policy": {"condition": "any"}}})).mode,
        RestartMode::Always
    );
    assert_eq!(
        policy(json!({"deploy": {"restart_policy": {"condition": "none"}}})).mode,
        RestartMode::No
    );
}

#[test]
fn network_names_by_priority_then_name() {
    let s = service(json!({"networks": {
        "zeta": null,
        "beta": {"priority": 5},
        "alpha": null,
        "omega": {"priority": 100},
        "low": {"priority": -1}
    }}));
    assert_eq!(s.network_names(), ["omega", "beta", "alpha", "zeta", "low"]);
}

#[test]
fn service_names_are_sorted() {
    let project = load(&json!({"services": {"web": {}, "db": {}, "cache": {}}}));
    assert_eq!(project.service_names(), ["cache", "db", "web"]);
}

#[test]
fn healthcheck_disabled_forms() {
    let check = |doc| {
        serde_json::from_value::<Healthcheck>(doc)
            .expect("healthcheck")
            .is_disabled()
    };
    assert!(check(json!({"disable": true})));
    assert!(check(json!({"test": ["NONE"]})));
    assert!(!check(json!({"test": ["CMD", "true"]})));
    assert!(!check(json!({})));
}

#[test]
fn depends_on_defaults() {
    let s = service(json!({"depends_on": {"db": {"condition": "service_completed_successfully"}}}));
    let dep = &s.depends_on["db"];
    assert_eq!(
        dep.condition,
        DependsCondition::ServiceCompletedSuccessfully
    );
    assert!(dep.required);
    assert!(!dep.restart);
    assert_eq!(dep.condition.as_str(), "service_completed_successfully");
}

#[test]
fn port_helpers() {
    let s = service(json!({"ports": [
        {"target": 80, "published": "8000-8002"},
        {"target": 53, "published": "53", "protocol": "udp"},
        {"target": 9000}
    ]}));
    assert_eq!(s.ports[0].published_range(), Some((8000, 8002)));
    assert_eq!(s.ports[0].protocol(), "tcp");
    assert_eq!(s.ports[1].published_range(), Some((53, 53)));
    assert_eq!(s.ports[1].protocol(), "udp");
    assert_eq!(s.ports[2].published_range(), None);
}

#[test]
fn byte_sizes_parse_like_docker() {
    assert_eq!(parse_byte_size("1024"), Some(1024));
    assert_eq!(parse_byte_size("1k"), Some(1024));
    assert_eq!(parse_byte_size("1.5g"), Some(1_610_612_736));
    assert_eq!(parse_byte_size("64MB"), Some(64 << 20));
    assert_eq!(parse_byte_size("2 GiB"), Some(2 << 30));
    assert_eq!(parse_byte_size("lots"), None);
    assert_eq!(parse_byte_size("12q"), None);
}
