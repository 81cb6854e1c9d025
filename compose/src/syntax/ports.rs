//! `ports:` short syntax: `[[HOST_IP:]HOST_PORT:]CONTAINER_PORT[/PROTOCOL]`, each port possibly a
//! range. Follows go-connections `nat.ParsePortSpec` as used by compose-go `ParsePortConfig`.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use super::SyntaxError;

/// Parses one `ports:` short-syntax string into one or more long-form entries, in the order
/// compose-go prints them.
///
/// Output entry (compose-go `ServicePortConfig` field order, empty fields omitted):
/// `{"mode":"ingress","host_ip":"127.0.0.1","target":80,"published":"8080","protocol":"tcp"}`.
///
/// A container range expands to one entry per port; a host range paired with a single container
/// port stays one entry whose `published` is the range (`"5000-5010"`), as Docker then picks a
/// free port from it. A YAML number (`- 80`) is the caller's job: pass its decimal string.
pub fn parse_port(spec: &str) -> Result<Vec<Value>, SyntaxError> {
    let err = |reason: String| SyntaxError::invalid("port", spec, reason);

    let (raw_ip, host_port, container) = split_parts(spec);
    let (container_port, proto) = container.split_once('/').unwrap_or((container, ""));
    if container_port.is_empty() {
        return Err(err("no container port specified".into()));
    }
    // go-connections lower-cases the protocol and defaults an empty one ("80/") to tcp.
    let proto = if proto.is_empty() {
        "tcp".to_string()
    } else {
        proto.to_ascii_lowercase()
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(err(format!(
            "protocol {proto:?} is not one of tcp, udp, sctp"
        )));
    }

    let host_ip = parse_host_ip(raw_ip).map_err(err)?;

    let (c_start, c_end) = parse_range(container_port, "container port").map_err(err)?;
    let host = if host_port.is_empty() {
        None
    } else {
        let (h_start, h_end) = parse_range(host_port, "host port").map_err(err)?;
        // A host range may differ in length from the container "range" only when the container
        // side is a single port: the host range is then a pool to allocate from.
        if c_end - c_start != h_end - h_start && c_end != c_start {
            return Err(err(format!(
                "container port range {container_port:?} and host port range {host_port:?} \
                 have different lengths"
            )));
        }
        Some((h_start, h_end))
    };

    let count = u32::from(c_end - c_start) + 1;
    let mut entries: Vec<(String, Value)> = Vec::with_capacity(count as usize);
    for i in 0..count {
        let target = u32::from(c_start) + i;
        let published = host.map(|(h_start, h_end)| {
            let first = u32::from(h_start) + i;
            if count == 1 && h_start != h_end {
                format!("{first}-{h_end}")
            } else {
                first.to_string()
            }
        });

        let mut entry = Map::new();
        entry.insert("mode".into(), json!("ingress"));
        if !host_ip.is_empty() {
            entry.insert("host_ip".into(), json!(host_ip));
        }
        entry.insert("target".into(), json!(target));
        if let Some(p) = published {
            entry.insert("published".into(), json!(p));
        }
        entry.insert("protocol".into(), json!(proto));
        // compose-go collects the ports in a map keyed "<port>/<proto>" and then sorts the keys
        // as strings, so "998-1001" comes out as 1000, 1001, 998, 999. Reproduce that order so
        // `config` output matches docker compose byte for byte.
        entries.push((format!("{target}/{proto}"), Value::Object(entry)));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries.into_iter().map(|(_, v)| v).collect())
}

/// Splits on `:` like go-connections: the last field is the container port, the one before it
/// the host port, and everything before that (re-joined with `:`) the host IP — which is how a
/// bare IPv6 address such as `::1:8080:80` works without brackets.
fn split_parts(spec: &str) -> (&str, &str, &str) {
    let mut fields = spec.rsplitn(3, ':');
    let container = fields.next().unwrap_or("");
    match (fields.next(), fields.next()) {
        (None, _) => ("", "", container),
        (Some(host), None) => ("", host, container),
        (Some(host), Some(ip)) => (ip, host, container),
    }
}

/// Validates the host IP, removing the brackets of `[::1]`. Returns "" when no IP was given.
fn parse_host_ip(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Ok(String::new());
    }
    let ip = if let Some(inner) = raw.strip_prefix('[') {
        match inner.strip_suffix(']') {
            Some(inner) if !inner.is_empty() && !inner.contains(['[', ']']) => inner,
            _ => return Err(format!("host IP {raw:?} has unbalanced brackets")),
        }
    } else {
        raw
    };
    if ip.parse::<IpAddr>().is_err() {
        return Err(format!("host IP {ip:?} is not a valid IP address"));
    }
    // Keep the text as written (compose-go does not canonicalise it).
    Ok(ip.to_string())
}

/// Parses `N` or `N-M` (1 ≤ N ≤ M ≤ 65535).
fn parse_range(s: &str, what: &str) -> Result<(u16, u16), String> {
    match s.split_once('-') {
        None => {
            let p = parse_port_number(s, what)?;
            Ok((p, p))
        }
        Some((start, end)) => {
            if start.is_empty() || end.is_empty() || end.contains('-') {
                return Err(format!("{what} range {s:?} is not of the form START-END"));
            }
            let start_port = parse_port_number(start, what)?;
            let end_port = parse_port_number(end, what)?;
            if end_port < start_port {
                return Err(format!("{what} range {s:?} ends before it starts"));
            }
            Ok((start_port, end_port))
        }
    }
}

fn parse_port_number(s: &str, what: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {s:?} is not a number"));
    }
    match s.parse::<u32>() {
        Ok(n @ 1..=65535) => u16::try_from(n).map_err(|_| out_of_range(s, what)),
        _ => Err(out_of_range(s, what)),
    }
}

fn out_of_range(s: &str, what: &str) -> String {
    format!("{what} {s:?} is out of range 1-65535")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> Value {
        let v = parse_port(spec).unwrap();
        assert_eq!(v.len(), 1, "{spec} gave {v:?}");
        v.into_iter().next().unwrap()
    }

    fn err(spec: &str) -> String {
        parse_port(spec).unwrap_err().0
    }

    #[test]
    fn container_port_only() {
        assert_eq!(
            one("80"),
            json!({"mode":"ingress","target":80,"protocol":"tcp"})
        );
        // Key order is compose-go's field order.
        let keys: Vec<_> = one("127.0.0.1:8080:80")
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["mode", "host_ip", "target", "published", "protocol"]);
    }

    #[test]
    fn host_and_container() {
        assert_eq!(
            one("8080:80"),
            json!({"mode":"ingress","target":80,"published":"8080","protocol":"tcp"})
        );
        // Leading zeros are normalised like strconv does.
        assert_eq!(one("08080:080")["published"], json!("8080"));
        assert_eq!(one("08080:080")["target"], json!(80));
        // An empty host port means "no published port".
        assert_eq!(
            one(":80"),
            json!({"mode":"ingress","target":80,"protocol":"tcp"})
        );
    }

    #[test]
    fn host_ip_forms() {
        assert_eq!(
            one("127.0.0.1:8080:80"),
            json!({"mode":"ingress","host_ip":"127.0.0.1","target":80,"published":"8080","protocol":"tcp"})
        );
        assert_eq!(
            one("127.0.0.1::80"),
            json!({"mode":"ingress","host_ip":"127.0.0.1","target":80,"protocol":"tcp"})
        );
        assert_eq!(one("[::1]:8080:80")["host_ip"], json!("::1"));
        assert_eq!(one("[::1]:8080:80")["published"], json!("8080"));
        // Bare IPv6: everything before the last two fields is the IP.
        assert_eq!(one("::1:8080:80")["host_ip"], json!("::1"));
        assert_eq!(one("::1::80")["host_ip"], json!("::1"));
        assert_eq!(one("fe80::1:2:8080:80")["host_ip"], json!("fe80::1:2"));
        assert_eq!(
            one("[::ffff:1.2.3.4]:1:2")["host_ip"],
            json!("::ffff:1.2.3.4")
        );
        assert_eq!(one("0.0.0.0:80:80")["host_ip"], json!("0.0.0.0"));
    }

    #[test]
    fn protocols() {
        assert_eq!(one("8080:80/udp")["protocol"], json!("udp"));
        assert_eq!(one("80/UDP")["protocol"], json!("udp"));
        assert_eq!(one("80/sctp")["protocol"], json!("sctp"));
        assert_eq!(one("80/")["protocol"], json!("tcp"));
        assert_eq!(
            one("127.0.0.1:53:53/udp"),
            json!({"mode":"ingress","host_ip":"127.0.0.1","target":53,"published":"53","protocol":"udp"})
        );
    }

    #[test]
    fn container_range_expands() {
        let v = parse_port("3000-3002").unwrap();
        assert_eq!(
            v,
            vec![
                json!({"mode":"ingress","target":3000,"protocol":"tcp"}),
                json!({"mode":"ingress","target":3001,"protocol":"tcp"}),
                json!({"mode":"ingress","target":3002,"protocol":"tcp"}),
            ]
        );
        let v = parse_port("9090-9091:8080-8081/udp").unwrap();
        assert_eq!(
            v,
            vec![
                json!({"mode":"ingress","target":8080,"published":"9090","protocol":"udp"}),
                json!({"mode":"ingress","target":8081,"published":"9091","protocol":"udp"}),
            ]
        );
        assert_eq!(parse_port("1-65535").unwrap().len(), 65535);
    }

    #[test]
    fn range_order_is_compose_go_string_order() {
        let targets: Vec<_> = parse_port("998-1001")
            .unwrap()
            .iter()
            .map(|v| v["target"].clone())
            .collect();
        assert_eq!(targets, [json!(1000), json!(1001), json!(998), json!(999)]);
        let published: Vec<_> = parse_port("8998-9001:998-1001")
            .unwrap()
            .iter()
            .map(|v| v["published"].clone())
            .collect();
        assert_eq!(
            published,
            [json!("9000"), json!("9001"), json!("8998"), json!("8999")]
        );
    }

    #[test]
    fn host_range_to_single_container_port() {
        assert_eq!(
            one("127.0.0.1:5000-5010:5000"),
            json!({"mode":"ingress","host_ip":"127.0.0.1","target":5000,"published":"5000-5010","protocol":"tcp"})
        );
        // A one-port "range" is just that port.
        assert_eq!(one("5000-5000:80")["published"], json!("5000"));
        assert_eq!(one("80-80")["target"], json!(80));
    }

    #[test]
    fn errors() {
        assert_eq!(
            err("80:abc"),
            r#"invalid port "80:abc": container port "abc" is not a number"#
        );
        assert_eq!(
            err("abc:80"),
            r#"invalid port "abc:80": host port "abc" is not a number"#
        );
        assert!(err("").contains("no container port"));
        assert!(err("8080:").contains("no container port"));
        assert!(err("/udp").contains("no container port"));
        assert!(err("80/icmp").contains(r#"protocol "icmp" is not one of tcp, udp, sctp"#));
        assert!(err("0").contains("out of range"));
        assert!(err("0:80").contains(r#"host port "0" is out of range"#));
        assert!(err("65536").contains("out of range 1-65535"));
        assert!(err("99999999999999999999").contains("out of range"));
        assert!(err("+80").contains("not a number"));
        assert!(err("-80").contains("not of the form START-END"));
        assert!(err("80-").contains("not of the form START-END"));
        assert!(err("1-2-3").contains("not of the form START-END"));
        assert!(err("3005-3000").contains("ends before it starts"));
        assert!(err("9090-9092:8080-8081").contains("different lengths"));
        assert!(err("8080:80-81").contains("different lengths"));
        assert!(err("localhost:8080:80").contains(r#"host IP "localhost" is not a valid IP"#));
        assert!(err("1.2.3:8080:80").contains("not a valid IP"));
        assert!(err("[::1:8080:80").contains("unbalanced brackets"));
        assert!(err("[]:8080:80").contains("unbalanced brackets"));
        assert!(err("[::1]x:8080:80").contains("unbalanced brackets"));
        assert!(err("a:b:c:d").contains(r#"host IP "a:b" is not a valid IP"#));
    }

    #[test]
    fn multibyte_input_does_not_panic() {
        for spec in [
            "é",
            "8080:é",
            "é:80",
            "80/é",
            "[é]:1:2",
            "ü-ü",
            "1-é",
            "::é::80",
            "😀:😀:😀",
        ] {
            assert!(parse_port(spec).is_err(), "{spec}");
        }
    }
}
