//! `--init`: a small init process (tini) runs as the container's PID 1, reaps orphaned zombies
//! and forwards signals to the command, as docker's `docker-init` does.
//!
//! rcompose ships no init of its own: like docker (which bundles tini as `docker-init`) and
//! podman (which uses the host's catatonit), it bind-mounts a host binary into the container.
//! That binary runs inside whatever image the container has, so it must be statically linked;
//! Debian's `tini` package provides `/usr/bin/tini-static`.

use std::path::{Path, PathBuf};

use super::ContainerError;

/// Where the init is mounted inside the container (docker's path).
pub const INIT_TARGET: &str = "/sbin/docker-init";

/// Statically linked inits looked for on the host, in this order, when the engine config names
/// none (`init-path`, docker's `daemon.json` key).
const CANDIDATES: &[&str] = &[
    "/usr/libexec/docker/docker-init",
    "/usr/bin/docker-init",
    "/usr/local/bin/docker-init",
    "/usr/bin/tini-static",
    "/usr/local/bin/tini-static",
    "/usr/libexec/podman/catatonit",
    "/usr/bin/catatonit",
];

/// The host's init binary: `configured` (the engine config's `init-path`) when set, else the
/// first statically linked candidate that exists.
pub fn find(configured: Option<&Path>) -> Result<PathBuf, ContainerError> {
    find_in(configured, CANDIDATES.iter().map(Path::new))
}

fn find_in<'a>(
    configured: Option<&Path>,
    candidates: impl Iterator<Item = &'a Path>,
) -> Result<PathBuf, ContainerError> {
    if let Some(p) = configured {
        return if p.is_file() {
            Ok(p.to_owned())
        } else {
            Err(ContainerError::Invalid(format!(
                "--init: the configured init-path {} does not exist",
                p.display()
            )))
        };
    }
    for c in candidates {
        if c.is_file() && is_static(c) {
            return Ok(c.to_owned());
        }
    }
    Err(ContainerError::Invalid(
        "--init: no statically linked init found on this host (install Debian's `tini` package for /usr/bin/tini-static, or set \"init-path\" in /etc/rcompose/config.json)".into(),
    ))
}

/// Whether an ELF file has no program interpreter (`PT_INTERP`), i.e. runs without the host's
/// dynamic loader and libc, which an image may not have.
fn is_static(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| elf_is_static(&b))
}

fn elf_is_static(b: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        // Only 64-bit little-endian ELF is understood; anything else is not trusted as static.
        return false;
    }
    let u16_at = |o: usize| b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
    let u32_at = |o: usize| {
        b.get(o..o + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
            .map(u64::from_le_bytes)
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    (0..usize::from(phnum)).all(|i| {
        let o = phoff + i * usize::from(phentsize);
        u32_at(o).is_some_and(|t| t != PT_INTERP)
    })
}

/// The process arguments with the init in front: `docker-init -- ARGS…`.
pub fn wrap(args: Vec<String>) -> Vec<String> {
    let mut out = vec![INIT_TARGET.to_owned(), "--".to_owned()];
    out.extend(args);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 header with one program header of type `ptype`.
    fn elf(ptype: u32) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        b[64..68].copy_from_slice(&ptype.to_le_bytes());
        b
    }

    #[test]
    fn static_means_no_interpreter() {
        assert!(elf_is_static(&elf(1)));
        assert!(!elf_is_static(&elf(3)));
        assert!(!elf_is_static(b"#!/bin/sh\n"));
        let mut truncated = elf(1);
        truncated[0x38..0x3a].copy_from_slice(&9u16.to_le_bytes());
        assert!(!elf_is_static(&truncated));
    }

    #[test]
    fn configured_path_wins_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let dynamic = dir.path().join("tini");
        std::fs::write(&dynamic, elf(3)).unwrap();
        let stat = dir.path().join("tini-static");
        std::fs::write(&stat, elf(1)).unwrap();
        // Configured: taken as is, even when dynamic (the user knows their images).
        assert_eq!(
            find_in(Some(&dynamic), std::iter::empty()).unwrap(),
            dynamic
        );
        assert!(find_in(Some(&dir.path().join("nope")), std::iter::empty()).is_err());
        // Searched: only static candidates count.
        let found = find_in(None, [dynamic.as_path(), stat.as_path()].into_iter()).unwrap();
        assert_eq!(found, stat);
        let e = find_in(None, [dynamic.as_path()].into_iter()).unwrap_err();
        assert!(e.to_string().contains("tini"), "{e}");
    }

    #[test]
    fn wrap_puts_the_init_first() {
        assert_eq!(
            wrap(vec!["sh".into(), "-c".into(), "x".into()]),
            ["/sbin/docker-init", "--", "sh", "-c", "x"]
        );
    }
}
