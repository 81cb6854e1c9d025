//! The managed `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` of a container: files in
//! the container dir bind-mounted over the image's. Rewriting them (atomically: the bind mount
//! pins the inode, so they are rewritten in place) is visible inside at once.

use std::fs;
use std::io::Write;
use std::path::Path;

use super::record::{ContainerConfig, NetworkMode};
use super::store::io_err;
use super::ContainerError;

/// Writes all three files for a new container.
pub fn init(dir: &Path, config: &ContainerConfig, hostname: &str) -> Result<(), ContainerError> {
    if config.network_mode.joined().is_some() {
        // The joined container's files are mounted instead (`SpecInputs::net_dir`).
        return Ok(());
    }
    write_hostname(dir, hostname)?;
    if config.network_mode == NetworkMode::Host {
        let hosts = fs::read_to_string("/etc/hosts").unwrap_or_default();
        write_file(&dir.join("hosts"), &hosts)?;
        let resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        write_file(&dir.join("resolv.conf"), &resolv)?;
        return Ok(());
    }
    write_hosts(dir, hostname, &[], &config.extra_hosts)?;
    let nameservers = if config.dns.is_empty() {
        host_nameservers()
    } else {
        config.dns.clone()
    };
    write_resolv_conf(dir, &nameservers, &host_search(), &[])
}

fn write_file(path: &Path, content: &str) -> Result<(), ContainerError> {
    // In place: a bind-mounted file keeps its inode, so rename would hide the update.
    let mut f = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(io_err(path))?;
    // Not fsynced: these are regenerated from the record whenever they are rewritten.
    f.write_all(content.as_bytes()).map_err(io_err(path))
}

pub fn write_hostname(dir: &Path, hostname: &str) -> Result<(), ContainerError> {
    write_file(&dir.join("hostname"), &format!("{hostname}\n"))
}

/// `/etc/hosts`: localhost entries, `addresses` mapped to the hostname, then `extra`
/// (`name:ip` or `name=ip`, docker's `--add-host`).
pub fn write_hosts(
    dir: &Path,
    hostname: &str,
    addresses: &[String],
    extra: &[String],
) -> Result<(), ContainerError> {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for e in extra {
        if let Some((name, ip)) = e.split_once('=').or_else(|| e.split_once(':')) {
            s.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    for a in addresses {
        s.push_str(&format!("{a}\t{hostname}\n"));
    }
    write_file(&dir.join("hosts"), &s)
}

/// `/etc/resolv.conf` with these nameservers, search domains and options.
pub fn write_resolv_conf(
    dir: &Path,
    nameservers: &[String],
    search: &[String],
    options: &[String],
) -> Result<(), ContainerError> {
    let mut s = String::new();
    for n in nameservers {
        s.push_str(&format!("nameserver {n}\n"));
    }
    if !search.is_empty() {
        s.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        s.push_str(&format!("options {}\n", options.join(" ")));
    }
    write_file(&dir.join("resolv.conf"), &s)
}

/// The host's nameservers without loopback ones (unreachable from a private namespace);
/// Google's public resolvers when none remain, as docker does.
pub fn host_nameservers() -> Vec<String> {
    let content = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let ns = parse_nameservers(&content);
    if ns.is_empty() {
        vec!["8.8.8.8".into(), "8.8.4.4".into()]
    } else {
        ns
    }
}

fn parse_nameservers(content: &str) -> Vec<String> {
    content
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.starts_with("127.") && s != "::1" && !s.is_empty())
        .collect()
}

fn host_search() -> Vec<String> {
    fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("search"))
        .flat_map(|s| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_skip_loopback() {
        assert_eq!(
            parse_nameservers("nameserver 127.0.0.53\nnameserver 10.0.0.1\n# c\n"),
            vec!["10.0.0.1"]
        );
    }

    #[test]
    fn files_written_and_rewritten_in_place() {
        let d = tempfile::tempdir().unwrap();
        let cfg = ContainerConfig {
            extra_hosts: vec!["db:10.1.2.3".into()],
            dns: vec!["1.1.1.1".into()],
            ..Default::default()
        };
        init(d.path(), &cfg, "box").unwrap();
        let hosts = fs::read_to_string(d.path().join("hosts")).unwrap();
        assert!(hosts.contains("10.1.2.3\tdb"), "{hosts}");
        use std::os::unix::fs::MetadataExt;
        let ino = fs::metadata(d.path().join("resolv.conf")).unwrap().ino();
        write_resolv_conf(d.path(), &["10.89.0.1".into()], &[], &["ndots:0".into()]).unwrap();
        assert_eq!(
            fs::metadata(d.path().join("resolv.conf")).unwrap().ino(),
            ino
        );
        assert_eq!(
            fs::read_to_string(d.path().join("resolv.conf")).unwrap(),
            "nameserver 10.89.0.1\noptions ndots:0\n"
        );
    }
}
