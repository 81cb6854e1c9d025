//! Deterministic kernel object names and addresses.
//!
//! Interface names are limited to 15 bytes (`IFNAMSIZ` 16 including the NUL). Every link we create
//! starts with a *root prefix* `rc` + 4 hex digits of the state root's hash, so two state roots
//! (the real one and a test's temporary one) never touch each other's links and `prune` can tell
//! ours from everyone else's:
//!
//! - bridge: `rcRRRRb` + 8 hex of the network id  (15 bytes)
//! - host end of a veth: `rcRRRRv` + 8 hex of (network id, container id)  (15 bytes)

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Hex of the sha256 of the parts, each terminated by a NUL so ("ab","c") ≠ ("a","bc").
pub fn hash_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
        h.update([0u8]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `rc` + 4 hex digits identifying a state root.
pub fn root_prefix(root: &Path) -> String {
    let hex = hash_hex(&[root.as_os_str().as_encoded_bytes()]);
    format!("rc{}", &hex[..4])
}

/// The nftables table name for a root: `rcompose` for the default root, `rcompose-RRRR` for any
/// other (so test roots and the real one never rewrite each other's rules).
pub fn table_name(root: &Path, default_root: &Path) -> String {
    if root == default_root {
        "rcompose".to_string()
    } else {
        let p = root_prefix(root);
        format!("rcompose-{}", &p[2..])
    }
}

/// Bridge name of a network.
pub fn bridge_name(prefix: &str, network_id: &str) -> String {
    format!("{prefix}b{}", &network_id[..8.min(network_id.len())])
}

/// Host-side veth name of one endpoint.
pub fn veth_name(prefix: &str, network_id: &str, container_id: &str) -> String {
    let hex = hash_hex(&[network_id.as_bytes(), container_id.as_bytes()]);
    format!("{prefix}v{}", &hex[..8])
}

/// Whether `name` is a valid Linux interface name.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
}

/// Docker's MAC rule: `02:42` followed by the four bytes of the IPv4 address (locally
/// administered, unicast). Without an IPv4 address the last four bytes come from a hash.
pub fn mac_for(ip: Option<Ipv4Addr>, seed: &str) -> [u8; 6] {
    let tail = match ip {
        Some(ip) => ip.octets(),
        None => {
            let h = hash_hex(&[seed.as_bytes()]);
            let b = |i: usize| u8::from_str_radix(&h[i * 2..i * 2 + 2], 16).unwrap_or(0);
            [b(0), b(1), b(2), b(3)]
        }
    };
    [0x02, 0x42, tail[0], tail[1], tail[2], tail[3]]
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff` (or `-` separated); refuses multicast addresses.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return None;
        }
        mac[i] = u8::from_str_radix(p, 16).ok()?;
    }
    if mac[0] & 1 == 1 {
        return None;
    }
    Some(mac)
}

/// A 64-hex id (docker style) from some seed parts plus the current time and pid.
pub fn new_id(parts: &[&str]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut all: Vec<Vec<u8>> = parts.iter().map(|p| p.as_bytes().to_vec()).collect();
    all.push(now.to_le_bytes().to_vec());
    all.push(std::process::id().to_le_bytes().to_vec());
    let refs: Vec<&[u8]> = all.iter().map(Vec::as_slice).collect();
    hash_hex(&refs)
}

/// An address as docker prints it in `inspect` (`10.0.0.2/24`).
pub fn with_prefix(ip: IpAddr, prefix: u8) -> String {
    format!("{ip}/{prefix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_ifnamsiz() {
        let p = root_prefix(Path::new("/var/lib/rcompose"));
        assert_eq!(p.len(), 6);
        let id = hash_hex(&[b"x"]);
        let b = bridge_name(&p, &id);
        let v = veth_name(&p, &id, "c1");
        assert_eq!(b.len(), 15);
        assert_eq!(v.len(), 15);
        assert!(valid_ifname(&b) && valid_ifname(&v));
        assert_ne!(
            root_prefix(Path::new("/tmp/a")),
            root_prefix(Path::new("/tmp/b"))
        );
    }

    #[test]
    fn docker_like_mac() {
        let mac = mac_for(Some(Ipv4Addr::new(172, 18, 0, 2)), "x");
        assert_eq!(format_mac(&mac), "02:42:ac:12:00:02");
        assert_eq!(parse_mac("02:42:ac:12:00:02"), Some(mac));
        assert_eq!(parse_mac("01:00:00:00:00:00"), None);
        assert_eq!(parse_mac("02:42"), None);
        let a = mac_for(None, "a");
        assert_eq!(&a[..2], &[2, 0x42]);
    }

    #[test]
    fn table_names() {
        let d = Path::new("/var/lib/rcompose");
        assert_eq!(table_name(d, d), "rcompose");
        assert!(table_name(Path::new("/tmp/x"), d).starts_with("rcompose-"));
    }
}
