//! `user` resolution (`name`, `uid`, `name:group`, `uid:gid`) through the container's own
//! `/etc/passwd` and `/etc/group`, as docker does.

use std::path::Path;

use super::ContainerError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

fn read_lines(rootfs: &Path, file: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(rootfs.join(file))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_owned).collect())
        .collect()
}

/// Resolves `spec` against the files under `rootfs`.
pub fn resolve(rootfs: &Path, spec: &str) -> Result<ResolvedUser, ContainerError> {
    resolve_adding(rootfs, spec, &[])
}

/// [`resolve`], with extra supplementary groups (`--group-add`: names from the container's
/// `/etc/group`, or numbers).
pub fn resolve_adding(
    rootfs: &Path,
    spec: &str,
    group_add: &[String],
) -> Result<ResolvedUser, ContainerError> {
    let passwd = read_lines(rootfs, "etc/passwd");
    let group = read_lines(rootfs, "etc/group");
    let mut user = resolve_with(&passwd, &group, spec)?;
    for g in group_add {
        let gid = group_id(&group, g)?;
        if gid != user.gid && !user.additional_gids.contains(&gid) {
            user.additional_gids.push(gid);
        }
    }
    Ok(user)
}

/// A group by number, or by name in `/etc/group` lines.
fn group_id(group: &[Vec<String>], g: &str) -> Result<u32, ContainerError> {
    if let Ok(n) = g.parse::<u32>() {
        return Ok(n);
    }
    group
        .iter()
        .find(|e| e.len() >= 3 && e[0] == g)
        .and_then(|e| e[2].parse().ok())
        .ok_or_else(|| {
            ContainerError::Invalid(format!(
                "unable to find group {g}: no matching entries in group file"
            ))
        })
}

fn resolve_with(
    passwd: &[Vec<String>],
    group: &[Vec<String>],
    spec: &str,
) -> Result<ResolvedUser, ContainerError> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let entry = passwd
        .iter()
        .find(|e| e.len() >= 4 && (e[0] == u || (u.parse::<u32>().is_ok() && e[2] == u)));
    let (uid, mut gid, home, name) = match (u.parse::<u32>(), entry) {
        (_, Some(e)) => (
            e[2].parse().unwrap_or(0),
            e[3].parse().unwrap_or(0),
            e.get(5).cloned().unwrap_or_else(|| "/".into()),
            e[0].clone(),
        ),
        (Ok(uid), None) => (uid, 0, "/".into(), String::new()),
        (Err(_), None) => {
            return Err(ContainerError::Invalid(format!(
                "unable to find user {u}: no matching entries in passwd file"
            )))
        }
    };
    if let Some(g) = g.filter(|g| !g.is_empty()) {
        gid = group_id(group, g)?;
    }
    let mut additional_gids = Vec::new();
    if !name.is_empty() {
        for e in group {
            if e.len() >= 4 && e[3].split(',').any(|m| m == name) {
                if let Ok(n) = e[2].parse::<u32>() {
                    if n != gid && !additional_gids.contains(&n) {
                        additional_gids.push(n);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<Vec<String>> {
        s.lines()
            .map(|l| l.split(':').map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn resolves_names_and_numbers() {
        let p = split("root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false");
        let g = split("root:x:0:\nwww:x:33:\nstaff:x:50:www,bob");
        let r = resolve_with(&p, &g, "www").unwrap();
        assert_eq!(
            (r.uid, r.gid, r.additional_gids.clone()),
            (33, 33, vec![50])
        );
        let r = resolve_with(&p, &g, "1000:staff").unwrap();
        assert_eq!((r.uid, r.gid), (1000, 50));
        let r = resolve_with(&p, &g, "").unwrap();
        assert_eq!((r.uid, r.home.as_str()), (0, "/root"));
        assert!(resolve_with(&p, &g, "nobody").is_err());
        assert!(resolve_with(&p, &g, "www:nogroup").is_err());
    }

    #[test]
    fn group_add_by_name_or_number() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "www:x:33:33:www:/var/www:/bin/false\n",
        )
        .unwrap();
        std::fs::write(d.path().join("etc/group"), "www:x:33:\naudio:x:29:\n").unwrap();
        let r = resolve_adding(
            d.path(),
            "www",
            &["audio".into(), "4000".into(), "33".into()],
        )
        .unwrap();
        assert_eq!(r.additional_gids, vec![29, 4000]);
        assert!(resolve_adding(d.path(), "www", &["nope".into()]).is_err());
    }
}
