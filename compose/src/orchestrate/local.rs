//! The real backend: the engine's containers, volumes and images and netctl's networks on one
//! state root.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use engine::container::ops::{CreateOptions, Engine};
use engine::container::record::{MountKind, MountSpec, NetworkMode, Status};
use engine::container::store::Container;
use engine::container::{id, ContainerError};
use engine::image::ImageStore;
use netctl::{IpamConfig, NetworkManager, NetworkSpec};

use super::execute::Backend;
use super::labels;
use super::plan::Op;
use super::translate::{container_plan, network_name, ContainerPlan, ProjectInfo};
use super::OrchestrateError;
use crate::model::{DependsCondition, Project};

/// How containers are stopped and replaced.
#[derive(Debug, Clone, Default)]
pub struct LocalOptions {
    /// `-t`: grace period before SIGKILL (default: the service's `stop_grace_period`, 10 s).
    pub timeout: Option<u64>,
    /// `-V`: new anonymous volumes instead of the old container's.
    pub renew_anon_volumes: bool,
    /// `down -v` / `rm -v`: remove anonymous volumes with the container.
    pub remove_anon_volumes: bool,
}

pub struct Local {
    pub root: PathBuf,
    pub project: Project,
    pub info: ProjectInfo,
    pub hashes: BTreeMap<String, String>,
    pub engine: Engine,
    pub opts: LocalOptions,
    nm: Mutex<NetworkManager>,
    /// Warnings about keys the engine does not honour, printed once per service.
    warned: Mutex<std::collections::BTreeSet<String>>,
}

/// Opens the network manager of a root with service DNS wired in.
pub fn network_manager(root: &Path) -> Result<NetworkManager, OrchestrateError> {
    let mut nm = NetworkManager::open(root)?;
    let dns = netctl::dns::Registry::open(root).map_err(|e| OrchestrateError::Op {
        what: "opening the DNS state".into(),
        msg: e.to_string(),
    })?;
    let dns = match std::env::current_exe() {
        Ok(exe) => dns.with_resolver(exe),
        Err(_) => dns,
    };
    nm.set_dns(Box::new(dns));
    Ok(nm)
}

impl Local {
    pub fn open(
        root: &Path,
        project: Project,
        info: ProjectInfo,
        hashes: BTreeMap<String, String>,
        opts: LocalOptions,
    ) -> Result<Local, OrchestrateError> {
        Ok(Local {
            root: root.to_owned(),
            engine: Engine::open(root)?,
            nm: Mutex::new(network_manager(root)?),
            project,
            info,
            hashes,
            opts,
            warned: Mutex::new(Default::default()),
        })
    }

    fn nm(&self) -> Result<std::sync::MutexGuard<'_, NetworkManager>, OrchestrateError> {
        self.nm.lock().map_err(|_| OrchestrateError::Op {
            what: "network manager".into(),
            msg: "a previous operation panicked".into(),
        })
    }

    /// The plan of replica `number` of `service`, with its warnings printed once.
    pub fn container_plan(
        &self,
        service: &str,
        number: u32,
    ) -> Result<ContainerPlan, OrchestrateError> {
        let svc = self
            .project
            .services
            .get(service)
            .ok_or_else(|| OrchestrateError::NoSuchService(service.to_owned()))?;
        let hash = self.hashes.get(service).cloned().unwrap_or_default();
        let plan = container_plan(&self.project, &self.info, svc, number, &hash)?;
        if let Ok(mut w) = self.warned.lock() {
            if w.insert(service.to_owned()) {
                for msg in &plan.warnings {
                    eprintln!("WARN service {service}: {msg}");
                }
            }
        }
        Ok(plan)
    }

    fn create_network(&self, name: &str) -> Result<(), OrchestrateError> {
        let (key, def) = self
            .project
            .networks
            .iter()
            .find(|(k, _)| network_name(&self.project, k) == name)
            .ok_or_else(|| OrchestrateError::Missing(format!("network {name} is not declared")))?;
        let mut labels: BTreeMap<String, String> = def
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.insert(labels::PROJECT.into(), self.project.name.clone());
        labels.insert(labels::NETWORK.into(), key.clone());
        let mut ipam = Vec::new();
        for pool in def.ipam.iter().flat_map(|i| i.config.iter()) {
            let bad = |what: &str, v: &str| OrchestrateError::Op {
                what: format!("network {name}"),
                msg: format!("invalid {what} {v:?}"),
            };
            let mut c = IpamConfig::default();
            if let Some(s) = &pool.subnet {
                c.subnet = Some(s.parse().map_err(|_| bad("subnet", s))?);
            }
            if let Some(s) = &pool.ip_range {
                c.ip_range = Some(s.parse().map_err(|_| bad("ip_range", s))?);
            }
            if let Some(s) = &pool.gateway {
                c.gateway = Some(s.parse().map_err(|_| bad("gateway", s))?);
            }
            for (k, v) in &pool.aux_addresses {
                c.aux_addresses
                    .insert(k.clone(), v.parse().map_err(|_| bad("aux address", v))?);
            }
            ipam.push(c);
        }
        let options: BTreeMap<String, String> = def
            .driver_opts
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mtu = options
            .get("com.docker.network.driver.mtu")
            .and_then(|m| m.parse().ok());
        let spec = NetworkSpec {
            name: name.to_owned(),
            driver: def.driver.clone(),
            internal: def.internal,
            enable_ipv6: def.enable_ipv6.unwrap_or(false),
            ipam,
            labels,
            options,
            mtu,
        };
        match self.nm()?.create_network(&spec) {
            Ok(_) | Err(netctl::NetworkError::Exists(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn create_volume(&self, name: &str) -> Result<(), OrchestrateError> {
        let found = self
            .project
            .volumes
            .iter()
            .find(|(k, _)| super::translate::volume_name(&self.project, k) == name);
        let mut labels = BTreeMap::new();
        let mut options = BTreeMap::new();
        let mut driver = String::new();
        if let Some((key, def)) = found {
            labels.extend(def.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            labels.insert(labels::VOLUME.into(), key.clone());
            options.extend(def.driver_opts.iter().map(|(k, v)| (k.clone(), v.clone())));
            driver = def.driver.clone().unwrap_or_default();
        }
        labels.insert(labels::PROJECT.into(), self.project.name.clone());
        self.engine
            .volumes
            .create(name, &driver, labels, options, false)?;
        Ok(())
    }

    fn pull(&self, image: &str) -> Result<(), OrchestrateError> {
        let store = ImageStore::open(&self.root).map_err(|e| OrchestrateError::Op {
            what: "opening the image store".into(),
            msg: e.to_string(),
        })?;
        let platform = self
            .project
            .services
            .values()
            .find(|s| s.image_or_default(&self.project) == image)
            .and_then(|s| s.platform.clone());
        crate::cli::image::pull_image(&store, image, platform.as_deref(), true).map_err(|e| {
            OrchestrateError::Op {
                what: format!("pulling {image}"),
                msg: format!("{e:#}"),
            }
        })?;
        Ok(())
    }

    /// Creates, networks and fills one container; on failure nothing of it is left.
    fn create_container(
        &self,
        service: &str,
        number: u32,
        anon_volumes: &[(String, String)],
    ) -> Result<Container, OrchestrateError> {
        let plan = self.container_plan(service, number)?;
        self.create_from_plan(plan, anon_volumes)
    }

    /// Creates, networks and fills one container from a (possibly adjusted) plan, e.g. a
    /// one-off `run` container; `anon_volumes` (target, volume) reuses anonymous volumes. On
    /// failure nothing of it is left.
    pub fn create_from_plan(
        &self,
        mut plan: ContainerPlan,
        anon_volumes: &[(String, String)],
    ) -> Result<Container, OrchestrateError> {
        if !plan.ports.is_empty() {
            self.nm()?.check_ports(&plan.ports)?;
        }
        let c = self.create_record(&mut plan, anon_volumes)?;
        self.fill_or_remove(c, &plan, anon_volumes.is_empty())
    }

    /// The engine's container of a plan (its id chosen here), not yet networked or filled.
    fn create_record(
        &self,
        plan: &mut ContainerPlan,
        anon_volumes: &[(String, String)],
    ) -> Result<Container, OrchestrateError> {
        let cid = id::generate_id();
        plan.config.id = cid.clone();
        let files_dir = self.engine.store.dir(&cid).join("files");
        for f in &plan.files {
            plan.config.mounts.push(MountSpec {
                kind: MountKind::Bind,
                source: files_dir.join(&f.key).display().to_string(),
                target: f.target.clone(),
                read_only: true,
                ..Default::default()
            });
        }
        for (target, volume) in anon_volumes {
            match plan.config.mounts.iter_mut().find(|m| &m.target == target) {
                Some(m) if m.kind == MountKind::Volume && m.source.is_empty() => {
                    m.source = volume.clone()
                }
                Some(_) => {}
                None => plan.config.mounts.push(MountSpec {
                    kind: MountKind::Volume,
                    source: volume.clone(),
                    target: target.clone(),
                    ..Default::default()
                }),
            }
        }
        Ok(self.engine.create(CreateOptions {
            config: plan.config.clone(),
            entrypoint_set: plan.entrypoint_set,
        })?)
    }

    /// Fills a created container (see `fill`); on failure the container is removed, with its
    /// anonymous volumes unless they were carried over from a container it replaces.
    fn fill_or_remove(
        &self,
        c: Container,
        plan: &ContainerPlan,
        remove_volumes: bool,
    ) -> Result<Container, OrchestrateError> {
        let files_dir = self.engine.store.dir(c.id()).join("files");
        if let Err(e) = self.fill(&c, plan, &files_dir) {
            let _ = self.nm().map(|mut nm| {
                let _ = nm.unpublish(c.id());
                let _ = nm.detach_all(c.id());
            });
            let _ = self.engine.remove(c.id(), true, remove_volumes);
            return Err(e);
        }
        Ok(c)
    }

    /// Secrets/configs, networks, published ports and the /etc files of a new container.
    fn fill(
        &self,
        c: &Container,
        plan: &ContainerPlan,
        files_dir: &Path,
    ) -> Result<(), OrchestrateError> {
        let io = |what: &str, p: &Path, e: std::io::Error| OrchestrateError::Op {
            what: format!("{what} {}", p.display()),
            msg: e.to_string(),
        };
        if !plan.files.is_empty() {
            std::fs::create_dir_all(files_dir).map_err(|e| io("creating", files_dir, e))?;
        }
        for f in &plan.files {
            let p = files_dir.join(&f.key);
            std::fs::write(&p, &f.content).map_err(|e| io("writing", &p, e))?;
            std::os::unix::fs::chown(&p, Some(f.uid), Some(f.gid))
                .map_err(|e| io("changing the owner of", &p, e))?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(f.mode))
                .map_err(|e| io("changing the mode of", &p, e))?;
        }
        if c.config.network_mode != NetworkMode::Bridge {
            return Ok(());
        }
        let mut nm = self.nm()?;
        super::join::join(
            &self.root,
            &mut nm,
            c,
            &plan.networks,
            &plan.ports,
            &super::join::DnsOverrides {
                search: plan.dns_search.clone(),
                options: plan.dns_opt.clone(),
            },
        )?;
        Ok(())
    }

    /// Stops (gracefully) and removes a container with its network endpoints and ports.
    pub fn remove_container(&self, key: &str, volumes: bool) -> Result<(), OrchestrateError> {
        let c = match self.engine.store.find(key) {
            Ok(c) => c,
            Err(ContainerError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if c.state.is_active() {
            self.stop_container(c.id())?;
        }
        // The container (and its network namespace) goes first: the kernel then tears the veth
        // pairs down with the namespace in the background, instead of netctl deleting each one
        // synchronously (~20-35 ms apiece, serialised on the network lock). The records are
        // released even when the removal failed.
        let removed = self.engine.remove(c.id(), true, volumes);
        let released = self.nm().and_then(|mut nm| {
            let unpublished = nm.unpublish(c.id());
            let detached = nm.detach_all(c.id());
            unpublished.and(detached).map_err(OrchestrateError::from)
        });
        removed?;
        released
    }

    /// Replaces a container as docker compose does: the new one is created first under a
    /// temporary name (`<old id prefix>_<name>`), then the old one is stopped and removed, the
    /// new one renamed and networked (addresses and ports are free by then). Whoever watches
    /// the project (an attached `up` in another process) so never sees the replica missing.
    fn recreate(&self, service: &str, number: u32, old_id: &str) -> Result<(), OrchestrateError> {
        let old = match self.engine.store.find(old_id) {
            Ok(c) => c,
            Err(ContainerError::NotFound(_)) => {
                return self.create_container(service, number, &[]).map(|_| ())
            }
            Err(e) => return Err(e.into()),
        };
        let mut anon = Vec::new();
        if !self.opts.renew_anon_volumes {
            for m in &old.config.mounts {
                if m.kind == MountKind::Volume
                    && self
                        .engine
                        .volumes
                        .get(&m.source)
                        .is_ok_and(|v| v.anonymous)
                {
                    anon.push((m.target.clone(), m.source.clone()));
                }
            }
        }
        let mut plan = self.container_plan(service, number)?;
        let name = std::mem::take(&mut plan.config.name);
        let prefix: String = old.id().chars().take(12).collect();
        plan.config.name = format!("{prefix}_{name}");
        let new = self.create_record(&mut plan, &anon)?;
        let fresh_volumes = anon.is_empty();
        let swapped = self
            .remove_container(old.id(), self.opts.renew_anon_volumes)
            .and_then(|()| Ok(self.engine.store.rename(new.id(), &name)?))
            .and_then(|()| {
                if !plan.ports.is_empty() {
                    self.nm()?.check_ports(&plan.ports)?;
                }
                Ok(())
            });
        if let Err(e) = swapped {
            let _ = self.engine.remove(new.id(), true, fresh_volumes);
            return Err(e);
        }
        plan.config.name = name;
        let new = self.engine.store.load(new.id())?;
        self.fill_or_remove(new, &plan, fresh_volumes)?;
        Ok(())
    }

    /// Starts a container and runs its service's `post_start` hooks.
    fn start(&self, service: &str, name: &str) -> Result<(), OrchestrateError> {
        let c = self.engine.start(name, false)?;
        if let Some(svc) = self.project.services.get(service) {
            if !svc.post_start.is_empty() {
                super::hooks::run(&self.root, name, c.id(), "post_start", &svc.post_start)?;
            }
        }
        Ok(())
    }

    /// Runs the service's `pre_stop` hooks (a failing hook is reported, the stop goes on), then
    /// stops the container gracefully.
    pub fn stop_container(&self, key: &str) -> Result<(), OrchestrateError> {
        let c = self.engine.store.find(key)?;
        if c.state.is_active() {
            let service = c.config.labels.get(labels::SERVICE);
            if let Some(svc) = service.and_then(|s| self.project.services.get(s)) {
                if !svc.pre_stop.is_empty() {
                    if let Err(e) = super::hooks::run(
                        &self.root,
                        &c.config.name,
                        c.id(),
                        "pre_stop",
                        &svc.pre_stop,
                    ) {
                        eprintln!("WARN {e}");
                    }
                }
            }
        }
        self.engine.stop(c.id(), self.opts.timeout)?;
        Ok(())
    }
}

impl Backend for Local {
    fn execute(&self, op: &Op) -> Result<(), OrchestrateError> {
        match op {
            Op::CreateNetwork { name } => self.create_network(name),
            Op::CreateVolume { name } => self.create_volume(name),
            Op::PullImage { image } => self.pull(image),
            Op::CreateContainer {
                service, number, ..
            } => self.create_container(service, *number, &[]).map(|_| ()),
            Op::RecreateContainer {
                service,
                number,
                old_id,
                ..
            } => self.recreate(service, *number, old_id),
            Op::StartContainer { service, name } => self.start(service, name),
            Op::RestartContainer { service, name } => {
                self.stop_container(name)?;
                self.start(service, name)
            }
            Op::Keep { .. } => Ok(()),
            Op::StopContainer { name } => self.stop_container(name),
            Op::RemoveContainer { id, .. } => {
                self.remove_container(id, self.opts.remove_anon_volumes)
            }
            Op::RemoveNetwork { name } => match self.nm()?.remove_network(name) {
                Ok(()) | Err(netctl::NetworkError::NotFound(_)) => Ok(()),
                Err(e) => Err(e.into()),
            },
            Op::RemoveVolume { name } => match self.engine.remove_volume(name) {
                Ok(()) => Ok(()),
                Err(ContainerError::Volume(engine::volume::VolumeError::NotFound(_))) => Ok(()),
                Err(e) => Err(e.into()),
            },
        }
    }

    fn wait_for(&self, name: &str, cond: DependsCondition) -> Result<(), OrchestrateError> {
        wait_condition(&self.engine, name, cond, None)
    }
}

/// Polls a container until it meets `cond`; `deadline` bounds the wait (`--wait-timeout`).
pub fn wait_condition(
    engine: &Engine,
    name: &str,
    cond: DependsCondition,
    deadline: Option<Instant>,
) -> Result<(), OrchestrateError> {
    let fail = |msg: String| OrchestrateError::Dependency(msg);
    loop {
        let c = engine.store.find(name)?;
        let st = &c.state;
        match cond {
            DependsCondition::ServiceStarted => {
                if st.is_active() || st.status == Status::Exited {
                    return Ok(());
                }
            }
            DependsCondition::ServiceHealthy => {
                let has_check = c.config.healthcheck.as_ref().is_some_and(|h| !h.disabled());
                if !has_check {
                    return Err(fail(format!(
                        "container {name} has no healthcheck configured"
                    )));
                }
                match st.health.as_ref().map(|h| h.status.as_str()) {
                    Some("healthy") => return Ok(()),
                    Some("unhealthy") => {
                        return Err(fail(format!("container {name} is unhealthy")))
                    }
                    _ => {}
                }
                if matches!(st.status, Status::Exited | Status::Dead) {
                    return Err(fail(format!(
                        "container {name} exited ({}) before it became healthy",
                        st.exit_code
                    )));
                }
            }
            DependsCondition::ServiceCompletedSuccessfully => {
                if matches!(st.status, Status::Exited | Status::Dead) {
                    if st.exit_code == 0 {
                        return Ok(());
                    }
                    return Err(fail(format!(
                        "service {} didn't complete successfully: exit {}",
                        c.config
                            .labels
                            .get(labels::SERVICE)
                            .map(String::as_str)
                            .unwrap_or(name),
                        st.exit_code
                    )));
                }
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(OrchestrateError::Timeout {
                container: name.to_owned(),
                condition: cond.as_str(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
