//! The per-service configuration hash that decides whether a container must be recreated.
//!
//! It covers what the container is made from, and deliberately not what only changes how many
//! there are or how the image is obtained (build, pull_policy, scale and replicas), nor what
//! only changes start order or selection (depends_on, profiles, develop) — as docker compose's
//! `ServiceHash` does. Keys are sorted before hashing so the order a file writes them in does
//! not matter.

use serde_json::Value;
use sha2::{Digest, Sha256};

pub fn service_hash(service: &Value) -> String {
    let mut v = service.clone();
    if let Value::Object(m) = &mut v {
        for k in [
            "build",
            "pull_policy",
            "scale",
            "depends_on",
            "profiles",
            "develop",
        ] {
            m.remove(k);
        }
        if let Some(Value::Object(d)) = m.get_mut("deploy") {
            d.remove("replicas");
            if d.is_empty() {
                m.remove("deploy");
            }
        }
    }
    let canonical = sorted(&v).to_string();
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, x)| (k.clone(), sorted(x)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stable_under_key_order_and_scale() {
        let a = json!({"image":"x","environment":{"A":"1","B":"2"}});
        let b =
            json!({"environment":{"B":"2","A":"1"},"image":"x","scale":3,"deploy":{"replicas":3}});
        assert_eq!(service_hash(&a), service_hash(&b));
        assert_eq!(service_hash(&a).len(), 64);
    }

    #[test]
    fn changes_with_configuration() {
        let a = json!({"image":"x","environment":{"A":"1"}});
        let b = json!({"image":"x","environment":{"A":"2"}});
        assert_ne!(service_hash(&a), service_hash(&b));
    }
}
