//! `extra_hosts:` list entries, after compose-go `NewHostsList`.

use super::SyntaxError;

/// Splits one `extra_hosts` list entry into the host name and its IP addresses.
///
/// `host=IP` is tried first, then `host:IP`, so `host:::1` gives `::1` and `host=::1` is the
/// readable IPv6 form. Several IPs may be given comma-separated (`host=1.2.3.4,::1`), and
/// `[::1]` loses its brackets. The IPs are not otherwise checked: Docker also accepts the
/// special value `host-gateway`.
pub fn parse_extra_host(s: &str) -> Result<(String, Vec<String>), SyntaxError> {
    let err = |reason: &str| SyntaxError::invalid("extra host", s, reason);

    let Some((host, ips)) = s.split_once('=').or_else(|| s.split_once(':')) else {
        return Err(err("missing IP address; expected HOST=IP or HOST:IP"));
    };
    if host.is_empty() {
        return Err(err("the host name is empty; expected HOST=IP or HOST:IP"));
    }
    // A separator inside the name means the entry was split somewhere the user did not mean.
    if host.contains([':', '=']) {
        return Err(SyntaxError::invalid(
            "extra host",
            s,
            format!("bad host name {host:?}; expected HOST=IP or HOST:IP"),
        ));
    }
    let ips: Vec<String> = ips
        .split(',')
        .map(|ip| {
            ip.strip_prefix('[')
                .and_then(|i| i.strip_suffix(']'))
                .filter(|i| !i.is_empty())
                .unwrap_or(ip)
                .to_string()
        })
        .collect();
    if ips.iter().any(String::is_empty) {
        return Err(err("missing IP address; expected HOST=IP or HOST:IP"));
    }
    Ok((host.to_string(), ips))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> (String, Vec<String>) {
        parse_extra_host(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn pair(host: &str, ips: &[&str]) -> (String, Vec<String>) {
        (
            host.to_string(),
            ips.iter().map(|s| s.to_string()).collect(),
        )
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(ok("host:1.2.3.4"), pair("host", &["1.2.3.4"]));
        assert_eq!(ok("host=1.2.3.4"), pair("host", &["1.2.3.4"]));
        assert_eq!(ok("host:::1"), pair("host", &["::1"]));
        assert_eq!(ok("host=::1"), pair("host", &["::1"]));
        assert_eq!(ok("host=[::1]"), pair("host", &["::1"]));
        assert_eq!(ok("host:[::1]"), pair("host", &["::1"]));
        assert_eq!(
            ok("host=1.2.3.4,[::1],::2"),
            pair("host", &["1.2.3.4", "::1", "::2"])
        );
        assert_eq!(
            ok("host.docker.internal:host-gateway"),
            pair("host.docker.internal", &["host-gateway"])
        );
        // '=' is tried first, so what follows it may contain ':'.
        assert_eq!(ok("h=a:b"), pair("h", &["a:b"]));
        // "[]" is not a bracketed address; it is left alone like compose-go does.
        assert_eq!(ok("h=[]"), pair("h", &["[]"]));
        assert_eq!(ok("hé=1.2.3.4"), pair("hé", &["1.2.3.4"]));
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_extra_host("host").unwrap_err().0,
            r#"invalid extra host "host": missing IP address; expected HOST=IP or HOST:IP"#
        );
        assert!(parse_extra_host("").unwrap_err().0.contains("missing IP"));
        assert!(parse_extra_host("=1.2.3.4")
            .unwrap_err()
            .0
            .contains("host name is empty"));
        assert!(parse_extra_host(":1.2.3.4")
            .unwrap_err()
            .0
            .contains("host name is empty"));
        assert!(parse_extra_host("a:b=c")
            .unwrap_err()
            .0
            .contains(r#"bad host name "a:b""#));
        assert!(parse_extra_host("host=")
            .unwrap_err()
            .0
            .contains("missing IP"));
        assert!(parse_extra_host("host:")
            .unwrap_err()
            .0
            .contains("missing IP"));
        assert!(parse_extra_host("host=1.2.3.4,")
            .unwrap_err()
            .0
            .contains("missing IP"));
    }

    #[test]
    fn multibyte_input_does_not_panic() {
        for s in ["é", "é:", ":é", "é=[é]", "😀=[", "h=[😀"] {
            let _ = parse_extra_host(s);
        }
        assert_eq!(ok("h=[😀]"), pair("h", &["😀"]));
    }
}
