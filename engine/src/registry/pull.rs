//! Pulling an image: resolve the manifest (through an index when there is one), fetch config and
//! layers into the content store — in parallel, bounded per registry, each verified while it
//! streams — and unpack every layer into its snapshot as soon as its download completes, so
//! unpacking overlaps the remaining downloads.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;
use tokio::sync::Semaphore;

use super::client::{join, pull_scope, Endpoint, RegistryClient};
use super::RegistryError;
use crate::content::{ContentStore, Ingest, TryIngest};
use crate::digest::Digest;
use crate::image::{now_secs, ImageRecord, ImageStore, LayerRecord};
use crate::manifest::{media, AnyManifest, Descriptor, ImageConfig, Manifest, Platform};
use crate::reference::Reference;
use crate::snapshot::chain_ids;
use crate::unpack::{unpack_layer, UnpackOptions};

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Platform to pick from a multi-platform index (default: this host's).
    pub platform: Option<Platform>,
}

/// Per-layer progress, in the order docker shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerStatus {
    Waiting,
    AlreadyExists,
    Downloading { done: u64, total: u64 },
    Verifying,
    DownloadComplete,
    Extracting,
    PullComplete,
    Retrying { attempt: u32, error: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEvent {
    /// `<tag>: Pulling from <repo>`.
    PullingFrom { tag: String, repository: String },
    /// A layer (named by the short form of its blob digest) changed status.
    Layer { id: String, status: LayerStatus },
    /// A mirror failed; trying the next endpoint.
    EndpointFailed { host: String, error: String },
}

pub type Progress = Arc<dyn Fn(PullEvent) + Send + Sync>;

#[derive(Debug, Clone)]
pub struct PullOutcome {
    pub record: ImageRecord,
    /// The digest the registry knows this image by (index digest when multi-platform).
    pub digest: Digest,
    /// The tag already pointed at this exact manifest.
    pub up_to_date: bool,
}

/// Pulls `reference` into `store`.
pub async fn pull(
    client: &RegistryClient,
    store: &ImageStore,
    reference: &Reference,
    opts: &PullOptions,
    progress: Progress,
) -> Result<PullOutcome, RegistryError> {
    let endpoints = client.endpoints(reference);
    let mut errors = Vec::new();
    let last = endpoints.len().saturating_sub(1);
    for (i, ep) in endpoints.iter().enumerate() {
        match pull_from(client, store, ep, reference, opts, progress.clone()).await {
            Ok(o) => return Ok(o),
            Err(e) if i < last => {
                progress(PullEvent::EndpointFailed {
                    host: ep.host.clone(),
                    error: e.to_string(),
                });
                tracing::warn!(mirror = %ep.host, error = %e, "mirror failed, trying next endpoint");
                errors.push(format!("{}: {e}", ep.host));
            }
            Err(e) if errors.is_empty() => return Err(e),
            Err(e) => {
                errors.push(format!("{}: {e}", ep.host));
                return Err(RegistryError::AllEndpointsFailed {
                    reference: reference.familiar(),
                    errors: errors.join("; "),
                });
            }
        }
    }
    Err(RegistryError::AllEndpointsFailed {
        reference: reference.familiar(),
        errors: errors.join("; "),
    })
}

async fn pull_from(
    client: &RegistryClient,
    store: &ImageStore,
    ep: &Endpoint,
    reference: &Reference,
    opts: &PullOptions,
    progress: Progress,
) -> Result<PullOutcome, RegistryError> {
    let _lease = store.lease()?;
    let repo = reference.repository();
    let wanted = opts.platform.clone().unwrap_or_else(Platform::host);
    let tag_or_digest = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => crate::reference::DEFAULT_TAG.to_owned(),
    };
    progress(PullEvent::PullingFrom {
        tag: tag_or_digest.clone(),
        repository: reference.familiar_name(),
    });

    let (bytes, ct, top_digest) =
        fetch_manifest(client, ep, reference, &tag_or_digest, reference.digest()).await?;
    let mut index_digest = None;
    let (manifest_bytes, manifest_digest, manifest_mt) =
        match AnyManifest::parse(&bytes, ct.as_deref())? {
            AnyManifest::Index(idx) => {
                let desc = idx.select(&wanted)?.clone();
                store.content.put_bytes(&bytes)?;
                index_digest = Some(top_digest.clone());
                let (b, ct2, d) = fetch_manifest(
                    client,
                    ep,
                    reference,
                    &desc.digest.to_string(),
                    Some(&desc.digest),
                )
                .await?;
                let mt = ct2
                    .filter(|c| media::is_manifest(c))
                    .unwrap_or(desc.media_type.clone());
                (b, d, mt)
            }
            AnyManifest::Image(m) => {
                let mt = m
                    .media_type
                    .clone()
                    .or(ct)
                    .unwrap_or_else(|| media::OCI_MANIFEST.to_owned());
                (bytes, top_digest.clone(), mt)
            }
        };
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes).map_err(|source| {
        crate::manifest::ManifestError::Json {
            what: "manifest",
            source,
        }
    })?;

    let config_bytes = if store.content.exists(&manifest.config.digest) {
        store.content.read(&manifest.config.digest)?
    } else {
        download_blob(
            client,
            ep,
            repo,
            &manifest.config,
            &store.content,
            None,
            None,
        )
        .await?;
        store.content.read(&manifest.config.digest)?
    };
    let config = ImageConfig::parse(&config_bytes)?;
    let diff_ids = config.rootfs.diff_ids.clone();
    if diff_ids.len() != manifest.layers.len() {
        return Err(RegistryError::LayerCountMismatch(
            manifest.config.digest.clone(),
        ));
    }
    let chains = chain_ids(&diff_ids);

    let sem = Arc::new(Semaphore::new(client.config().max_downloads()));
    let mut jobs = Vec::new();
    for (i, layer) in manifest.layers.iter().enumerate() {
        let id = layer.digest.short().to_owned();
        if layer.media_type == media::DOCKER_FOREIGN_LAYER {
            return Err(RegistryError::ForeignLayer {
                digest: layer.digest.clone(),
            });
        }
        if store.snapshots.exists(&chains[i]) && store.content.exists(&layer.digest) {
            progress(PullEvent::Layer {
                id,
                status: LayerStatus::AlreadyExists,
            });
            continue;
        }
        progress(PullEvent::Layer {
            id: id.clone(),
            status: LayerStatus::Waiting,
        });
        let sem = sem.clone();
        let progress = progress.clone();
        let parent = if i == 0 {
            None
        } else {
            Some(chains[i - 1].clone())
        };
        let chain = chains[i].clone();
        let diff_id = diff_ids[i].clone();
        let layer = layer.clone();
        jobs.push(async move {
            // Unpack while downloading: the bytes are teed to a blocking unpacker as they
            // arrive. The snapshot is verified against the diff id on its own, so it does not
            // wait for the compressed digest; if the tee breaks (retry, error), the layer is
            // unpacked again from the verified blob afterwards.
            // The unpacker starts with the download, under the same per-registry bound.
            let permit = sem.acquire().await.map_err(|e| RegistryError::Task(e.to_string()))?;
            let mut streamed = None;
            let tee = if store.snapshots.exists(&chain) {
                None
            } else {
                let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
                let (snapshots, chain, parent, diff_id) =
                    (store.snapshots.clone(), chain.clone(), parent.clone(), diff_id.clone());
                streamed = Some(tokio::task::spawn_blocking(move || {
                    let opts = UnpackOptions { expected_diff_id: Some(diff_id), ..UnpackOptions::default() };
                    snapshots.create_with(&chain, parent.as_ref(), |dir| unpack_layer(ChannelReader::new(rx), dir, &opts))
                }));
                progress(PullEvent::Layer { id: id.clone(), status: LayerStatus::Extracting });
                Some(tx)
            };
            download_blob(client, ep, repo, &layer, &store.content, Some((&id, &progress)), tee).await?;
            drop(permit);
            progress(PullEvent::Layer { id: id.clone(), status: LayerStatus::DownloadComplete });
            let streamed_ok = match streamed {
                Some(handle) => match handle.await {
                    Ok(Ok(_)) => true,
                    Ok(Err(e)) => {
                        tracing::debug!(layer = %id, error = %e, "streamed unpack failed; unpacking from the stored blob");
                        false
                    }
                    Err(e) => return Err(RegistryError::Task(e.to_string())),
                },
                None => false,
            };
            if !streamed_ok && !store.snapshots.exists(&chain) {
                progress(PullEvent::Layer { id: id.clone(), status: LayerStatus::Extracting });
                let snapshots = store.snapshots.clone();
                let content = store.content.clone();
                let blob = layer.digest.clone();
                tokio::task::spawn_blocking(move || -> Result<(), RegistryError> {
                    let opts = UnpackOptions { expected_diff_id: Some(diff_id), ..UnpackOptions::default() };
                    snapshots.create_with(&chain, parent.as_ref(), |dir| {
                        let f = content
                            .open_blob(&blob)
                            .map_err(|e| crate::unpack::UnpackError::Archive(std::io::Error::other(e)))?;
                        unpack_layer(f, dir, &opts)
                    })?;
                    Ok(())
                })
                .await
                .map_err(|e| RegistryError::Task(e.to_string()))??;
            }
            progress(PullEvent::Layer { id, status: LayerStatus::PullComplete });
            Ok::<(), RegistryError>(())
        });
    }
    futures_util::future::try_join_all(jobs).await?;

    let mut layers = Vec::new();
    let mut size = 0;
    for ((desc, diff), chain) in manifest.layers.iter().zip(&diff_ids).zip(&chains) {
        size += store
            .snapshots
            .info(chain)
            .map(|i| i.size)
            .unwrap_or(desc.size);
        layers.push(LayerRecord {
            descriptor: desc.clone(),
            diff_id: diff.clone(),
            chain_id: chain.clone(),
        });
    }
    store.content.put_bytes(&manifest_bytes)?;
    let before = store.index()?;
    let tag_ref = reference
        .tag()
        .and_then(|t| reference.without_tag().with_tag(t).ok());
    let up_to_date = tag_ref
        .as_ref()
        .is_some_and(|t| before.tags.get(&t.to_string()) == Some(&manifest_digest))
        || (tag_ref.is_none() && before.images.contains_key(&manifest_digest));
    let record = ImageRecord {
        id: manifest.config.digest.clone(),
        manifest: manifest_digest,
        manifest_media_type: manifest_mt,
        index: index_digest,
        repo_digests: vec![reference
            .without_tag()
            .with_digest(top_digest.clone())
            .to_string()],
        layers,
        created: config.created.clone(),
        size,
        added: now_secs(),
    };
    let tags: Vec<Reference> = tag_ref.into_iter().collect();
    store.add(record.clone(), &tags)?;
    Ok(PullOutcome {
        record,
        digest: top_digest,
        up_to_date,
    })
}

/// GETs a manifest; returns its bytes, content type and digest (verified when `expect` is given).
async fn fetch_manifest(
    client: &RegistryClient,
    ep: &Endpoint,
    reference: &Reference,
    tag_or_digest: &str,
    expect: Option<&Digest>,
) -> Result<(Vec<u8>, Option<String>, Digest), RegistryError> {
    let repo = reference.repository();
    let path = format!("v2/{repo}/manifests/{tag_or_digest}");
    let resp = client
        .send(ep, &pull_scope(repo), |c, base| {
            Ok(c.get(join(base, &path)?)
                .header(ACCEPT, media::ACCEPT_MANIFESTS))
        })
        .await?;
    let status = resp.status();
    let url = resp.url().to_string();
    if status == StatusCode::NOT_FOUND {
        return Err(RegistryError::ManifestUnknown {
            reference: format!("{}:{tag_or_digest}", reference.familiar_name()),
        });
    }
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(RegistryError::Status {
            url,
            status: status.as_u16(),
            body,
        });
    }
    let ct = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or(s).trim().to_owned());
    let bytes = resp
        .bytes()
        .await
        .map_err(|source| RegistryError::Http {
            url: url.clone(),
            source,
        })?
        .to_vec();
    let digest = Digest::of(&bytes);
    if let Some(want) = expect {
        if *want != digest {
            return Err(RegistryError::ManifestDigest {
                reference: url,
                expected: want.clone(),
                actual: digest,
            });
        }
    }
    Ok((bytes, ct, digest))
}

/// Streams a blob into the content store, verified; waits for a concurrent writer of the same
/// blob instead of downloading it twice; retries interrupted transfers.
pub(crate) async fn download_blob(
    client: &RegistryClient,
    ep: &Endpoint,
    repo: &str,
    desc: &Descriptor,
    content: &ContentStore,
    progress: Option<(&str, &Progress)>,
    mut tee: Option<tokio::sync::mpsc::Sender<bytes::Bytes>>,
) -> Result<(), RegistryError> {
    const ATTEMPTS: u32 = 4;
    let path = format!("v2/{repo}/blobs/{}", desc.digest);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut writer = loop {
            match content.try_writer(&desc.digest, Some(desc.size))? {
                TryIngest::Ready(Ingest::Exists(_)) => return Ok(()),
                TryIngest::Ready(Ingest::Write(w)) => break w,
                TryIngest::Busy => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let result: Result<(), RegistryError> = async {
            let resp = client
                .send(ep, &pull_scope(repo), |c, base| {
                    Ok(c.get(join(base, &path)?))
                })
                .await?;
            let status = resp.status();
            let url = resp.url().to_string();
            if !status.is_success() {
                let body = resp.text().await.unwrap_or_default();
                return Err(RegistryError::Status {
                    url,
                    status: status.as_u16(),
                    body,
                });
            }
            let mut stream = resp.bytes_stream();
            let mut last_report = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|source| RegistryError::Http {
                    url: url.clone(),
                    source,
                })?;
                writer.write(&chunk)?;
                if let Some(tx) = &tee {
                    // The unpacker gave up (or finished early): keep downloading without it.
                    if tx.send(chunk.clone()).await.is_err() {
                        tee = None;
                    }
                }
                if let Some((id, p)) = progress {
                    let done = writer.written();
                    // Report every 256 KiB at most: a callback per TCP read is wasted work.
                    if done - last_report >= 256 * 1024 || done == desc.size {
                        last_report = done;
                        p(PullEvent::Layer {
                            id: id.to_owned(),
                            status: LayerStatus::Downloading {
                                done,
                                total: desc.size,
                            },
                        });
                    }
                }
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                if let Some((id, p)) = progress {
                    p(PullEvent::Layer {
                        id: id.to_owned(),
                        status: LayerStatus::Verifying,
                    });
                }
                writer.commit()?;
                return Ok(());
            }
            Err(e) if attempt < ATTEMPTS && e.is_transient() => {
                drop(writer);
                // The streamed unpack saw a cut stream; it will fail and the layer is unpacked
                // from the blob once the retry has stored it.
                tee = None;
                if let Some((id, p)) = progress {
                    p(PullEvent::Layer {
                        id: id.to_owned(),
                        status: LayerStatus::Retrying {
                            attempt,
                            error: e.to_string(),
                        },
                    });
                }
                tokio::time::sleep(Duration::from_millis(300u64 << attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Blocking `Read` over the chunks a download tees to the unpacker; EOF when the sender is gone.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    cur: bytes::Bytes,
}

impl ChannelReader {
    fn new(rx: tokio::sync::mpsc::Receiver<bytes::Bytes>) -> Self {
        ChannelReader {
            rx,
            cur: bytes::Bytes::new(),
        }
    }
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        bytes::Buf::advance(&mut self.cur, n);
        Ok(n)
    }
}
