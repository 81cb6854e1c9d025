//! `rcompose cp`: copy files between a service container and the local filesystem, through
//! `rcompose container cp` with the container's id.

use std::ffi::OsString;

use anyhow::{anyhow, bail};

use super::stack;
use super::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct CpArgs {
    /// Index of the container if the service has multiple replicas
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    follow_link: bool,
    /// SERVICE:SRC_PATH or a local path
    src: String,
    /// SERVICE:DEST_PATH or a local path
    dest: String,
}

/// `SERVICE:PATH` split in two; local paths (absolute, starting with `.`, or without a colon)
/// give `None`, as docker compose decides.
pub fn split_service_path(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('/') || s.starts_with('.') {
        return None;
    }
    s.split_once(':').filter(|(svc, _)| !svc.is_empty())
}

pub fn run(global: &GlobalOpts, a: CpArgs) -> anyhow::Result<i32> {
    let (service, src, dest) = match (split_service_path(&a.src), split_service_path(&a.dest)) {
        (Some((svc, p)), None) => (svc.to_owned(), Side::Container(p), Side::Local(&a.dest)),
        (None, Some((svc, p))) => (svc.to_owned(), Side::Local(&a.src), Side::Container(p)),
        (Some(_), Some(_)) => bail!("copying between services is not supported"),
        (None, None) => bail!("one of the paths must be SERVICE:PATH"),
    };
    let st = stack::load_or_name(global, std::slice::from_ref(&service))?;
    let engine = stack::engine(global)?;
    let c = stack::containers(
        &engine,
        &st.project.name,
        std::slice::from_ref(&service),
        false,
    )?
    .into_iter()
    .find(|c| stack::number(c) == a.index)
    .ok_or_else(|| {
        anyhow!(
            "service {service:?} has no container with index {}",
            a.index
        )
    })?;
    let mut args: Vec<OsString> = vec!["cp".into()];
    if a.archive {
        args.push("-a".into());
    }
    if a.follow_link {
        args.push("-L".into());
    }
    args.push(src.arg(c.id()));
    args.push(dest.arg(c.id()));
    super::container::run(global, super::container::ContainerArgs { args })
}

enum Side<'a> {
    Local(&'a str),
    Container(&'a str),
}

impl Side<'_> {
    fn arg(&self, id: &str) -> OsString {
        match self {
            // A local path `container cp` could read as CONTAINER:PATH gets a `./` in front.
            Side::Local(p) if !p.starts_with('/') && !p.starts_with('.') && p.contains(':') => {
                format!("./{p}").into()
            }
            Side::Local(p) => (*p).into(),
            Side::Container(p) => format!("{id}:{p}").into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_paths() {
        assert_eq!(split_service_path("web:/etc/x"), Some(("web", "/etc/x")));
        assert_eq!(split_service_path("./a:b"), None);
        assert_eq!(split_service_path("/tmp/x"), None);
        assert_eq!(split_service_path("file"), None);
        assert_eq!(split_service_path(":x"), None);
        assert_eq!(Side::Local("a:b").arg("id"), OsString::from("./a:b"));
        assert_eq!(Side::Local("-").arg("id"), OsString::from("-"));
        assert_eq!(Side::Container("/x").arg("id"), OsString::from("id:/x"));
    }
}
