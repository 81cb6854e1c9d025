//! Pushing an image: every blob the registry lacks (checked with HEAD) is mounted from another
//! repository of the same registry when one is known to hold it, else uploaded — in one PUT for
//! small blobs, in PATCH chunks for large ones — and the manifest goes last.

use std::io::Read;
use std::sync::Arc;

use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Body, StatusCode, Url};
use tokio::sync::Semaphore;

use super::client::{join, parse_url, Endpoint, RegistryClient};
use super::RegistryError;
use crate::content::ContentStore;
use crate::digest::Digest;
use crate::image::{ImageRecord, ImageStore};
use crate::manifest::Descriptor;
use crate::reference::Reference;

#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Blobs larger than this are uploaded in chunks of `chunk_size`.
    pub chunk_threshold: u64,
    pub chunk_size: u64,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            chunk_threshold: 64 << 20,
            chunk_size: 16 << 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    Preparing { id: String },
    Pushing { id: String, done: u64, total: u64 },
    Pushed { id: String },
    Mounted { id: String, from: String },
    AlreadyExists { id: String },
}

pub type PushProgress = Arc<dyn Fn(PushEvent) + Send + Sync>;

#[derive(Debug, Clone)]
pub struct PushOutcome {
    pub tag: String,
    pub digest: Digest,
    pub size: u64,
}

/// Pushes the image `rec` as `target`.
pub async fn push(
    client: &RegistryClient,
    store: &ImageStore,
    rec: &ImageRecord,
    target: &Reference,
    opts: &PushOptions,
    progress: PushProgress,
) -> Result<PushOutcome, RegistryError> {
    let ep = client.endpoint_for(target.registry());
    let repo = target.repository().to_owned();
    // Other repositories of the same registry that hold this image: sources for mounts.
    let mount_from: Vec<String> = rec
        .repo_digests
        .iter()
        .filter_map(|d| Reference::parse(d).ok())
        .filter(|r| r.registry() == target.registry() && r.repository() != repo)
        .map(|r| r.repository().to_owned())
        .collect();
    let mut scope = format!("repository:{repo}:pull,push");
    if let Some(f) = mount_from.first() {
        scope.push_str(&format!(" repository:{f}:pull"));
    }

    let manifest_bytes = store.content.read(&rec.manifest)?;
    let config_size = store.content.size(&rec.id)?;
    let mut blobs: Vec<Descriptor> = rec.layers.iter().map(|l| l.descriptor.clone()).collect();
    blobs.push(Descriptor::new(
        "application/octet-stream",
        rec.id.clone(),
        config_size,
    ));
    let sem = Arc::new(Semaphore::new(client.config().max_uploads()));
    let mut jobs = Vec::new();
    for desc in blobs {
        let id = desc.digest.short().to_owned();
        // Layers are reported as docker does; the config blob goes up silently.
        let progress: PushProgress = if desc.digest == rec.id {
            Arc::new(|_| {})
        } else {
            progress.clone()
        };
        progress(PushEvent::Preparing { id: id.clone() });
        let (sem, ep, repo, scope, mount_from) = (
            sem.clone(),
            ep.clone(),
            repo.clone(),
            scope.clone(),
            mount_from.clone(),
        );
        jobs.push(async move {
            let _permit = sem
                .acquire()
                .await
                .map_err(|e| RegistryError::Task(e.to_string()))?;
            push_blob(
                client,
                &ep,
                &repo,
                &scope,
                &desc,
                &store.content,
                &mount_from,
                opts,
                &id,
                &progress,
            )
            .await
        });
    }
    futures_util::future::try_join_all(jobs).await?;

    let tag = target
        .tag()
        .unwrap_or(crate::reference::DEFAULT_TAG)
        .to_owned();
    let path = format!("v2/{repo}/manifests/{tag}");
    let mt = rec.manifest_media_type.clone();
    let resp = client
        .send(&ep, &scope, |c, base| {
            Ok(c.put(join(base, &path)?)
                .header(CONTENT_TYPE, mt.as_str())
                .body(manifest_bytes.clone()))
        })
        .await?;
    expect_status(
        resp,
        &[StatusCode::CREATED, StatusCode::OK, StatusCode::ACCEPTED],
    )
    .await?;
    Ok(PushOutcome {
        tag,
        digest: rec.manifest.clone(),
        size: manifest_bytes.len() as u64,
    })
}

#[allow(clippy::too_many_arguments)]
async fn push_blob(
    client: &RegistryClient,
    ep: &Endpoint,
    repo: &str,
    scope: &str,
    desc: &Descriptor,
    content: &ContentStore,
    mount_from: &[String],
    opts: &PushOptions,
    id: &str,
    progress: &PushProgress,
) -> Result<(), RegistryError> {
    let head_path = format!("v2/{repo}/blobs/{}", desc.digest);
    let resp = client
        .send(ep, scope, |c, base| Ok(c.head(join(base, &head_path)?)))
        .await?;
    if resp.status().is_success() {
        progress(PushEvent::AlreadyExists { id: id.to_owned() });
        return Ok(());
    }

    let mut location = None;
    for from in mount_from {
        let path = format!("v2/{repo}/blobs/uploads/?mount={}&from={from}", desc.digest);
        let resp = client
            .send(ep, scope, |c, base| {
                Ok(c.post(join(base, &path)?).header(CONTENT_LENGTH, 0))
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED => {
                progress(PushEvent::Mounted {
                    id: id.to_owned(),
                    from: from.clone(),
                });
                return Ok(());
            }
            StatusCode::ACCEPTED => {
                // Mount refused but an upload session was opened instead: use it.
                location = Some(upload_location(&resp)?);
                break;
            }
            _ => {}
        }
    }
    let mut location = match location {
        Some(l) => l,
        None => {
            let path = format!("v2/{repo}/blobs/uploads/");
            let resp = client
                .send(ep, scope, |c, base| {
                    Ok(c.post(join(base, &path)?).header(CONTENT_LENGTH, 0))
                })
                .await?;
            let resp = expect_status(resp, &[StatusCode::ACCEPTED]).await?;
            upload_location(&resp)?
        }
    };

    let total = desc.size;
    if total > opts.chunk_threshold {
        let mut file = content.open_blob(&desc.digest)?;
        let mut offset = 0u64;
        while offset < total {
            let len = opts.chunk_size.min(total - offset);
            let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
            file.read_exact(&mut buf).map_err(|e| RegistryError::Io {
                path: desc.digest.to_string(),
                source: e,
            })?;
            let range = format!("{}-{}", offset, offset + len - 1);
            let loc = location.clone();
            let resp = client
                .send(ep, scope, |c, _| {
                    Ok(c.patch(loc.clone())
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_RANGE, range.as_str())
                        .header(CONTENT_LENGTH, len)
                        .body(buf.clone()))
                })
                .await?;
            let resp = expect_status(resp, &[StatusCode::ACCEPTED, StatusCode::NO_CONTENT]).await?;
            location = upload_location(&resp).unwrap_or(location);
            offset += len;
            progress(PushEvent::Pushing {
                id: id.to_owned(),
                done: offset,
                total,
            });
        }
        let url = with_digest(&location, &desc.digest);
        let resp = client
            .send(ep, scope, |c, _| {
                Ok(c.put(url.clone()).header(CONTENT_LENGTH, 0))
            })
            .await?;
        expect_status(resp, &[StatusCode::CREATED]).await?;
    } else {
        let url = with_digest(&location, &desc.digest);
        let path = content.path(&desc.digest);
        let resp = client
            .send(ep, scope, |c, _| {
                let file = std::fs::File::open(&path).map_err(|e| RegistryError::Io {
                    path: path.display().to_string(),
                    source: e,
                })?;
                Ok(c.put(url.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, total)
                    .body(file_body(file)))
            })
            .await?;
        expect_status(resp, &[StatusCode::CREATED]).await?;
        progress(PushEvent::Pushing {
            id: id.to_owned(),
            done: total,
            total,
        });
    }
    progress(PushEvent::Pushed { id: id.to_owned() });
    Ok(())
}

/// A streaming request body over a blob file (no need to hold a large layer in memory).
fn file_body(file: std::fs::File) -> Body {
    let stream = futures_util::stream::unfold(Some(file), |state| async move {
        let mut f = state?;
        let mut buf = vec![0u8; 1 << 20];
        match f.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<Vec<u8>, std::io::Error>(buf), Some(f)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    Body::wrap_stream(stream)
}

fn upload_location(resp: &reqwest::Response) -> Result<Url, RegistryError> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Status {
            url: resp.url().to_string(),
            status: resp.status().as_u16(),
            body: "upload response has no Location header".to_owned(),
        })?;
    // Location may be relative to the request URL.
    match resp.url().join(loc) {
        Ok(u) => Ok(u),
        Err(_) => parse_url(loc),
    }
}

fn with_digest(location: &Url, digest: &Digest) -> Url {
    let mut u = location.clone();
    u.query_pairs_mut()
        .append_pair("digest", &digest.to_string());
    u
}

async fn expect_status(
    resp: reqwest::Response,
    ok: &[StatusCode],
) -> Result<reqwest::Response, RegistryError> {
    if ok.contains(&resp.status()) {
        return Ok(resp);
    }
    let url = resp.url().to_string();
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    Err(RegistryError::Status { url, status, body })
}
