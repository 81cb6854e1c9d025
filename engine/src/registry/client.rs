//! HTTP plumbing shared by pull and push: endpoint choice (mirrors, insecure registries),
//! authentication (anonymous or credentialed bearer tokens, basic auth) and retries.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode, Url};

use super::auth::{parse_challenge, Challenge};
use super::RegistryError;
use crate::config::EngineConfig;
use crate::credentials::{CredentialStore, Credentials};
use crate::reference::{Reference, DEFAULT_REGISTRY, DEFAULT_REGISTRY_HOST};

const USER_AGENT: &str = concat!("rcompose/", env!("CARGO_PKG_VERSION"));
const MAX_ATTEMPTS: u32 = 4;

/// One place to fetch a repository from: the registry itself or a mirror of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host (and port) the requests go to.
    pub host: String,
    /// Explicit scheme://host base (mirrors are configured with one).
    pub base: Option<Url>,
    /// Key for credentials lookup (`docker.io` for Docker Hub).
    pub auth_key: String,
    pub mirror: bool,
}

#[derive(Default)]
struct State {
    bases: HashMap<String, Url>,
    auth: HashMap<(String, String), String>,
}

/// A registry client: holds HTTP connections, resolved endpoints and tokens for one command.
pub struct RegistryClient {
    config: EngineConfig,
    creds: Option<CredentialStore>,
    override_creds: Option<Credentials>,
    secure: reqwest::Client,
    insecure: reqwest::Client,
    state: Mutex<State>,
}

fn http_err(url: &str) -> impl FnOnce(reqwest::Error) -> RegistryError + '_ {
    move |source| RegistryError::Http {
        url: url.to_owned(),
        source,
    }
}

impl RegistryClient {
    /// `creds`: the docker-compatible credential file (None: anonymous only).
    pub fn new(
        config: EngineConfig,
        creds: Option<CredentialStore>,
    ) -> Result<RegistryClient, RegistryError> {
        let build = |insecure: bool| {
            reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .connect_timeout(Duration::from_secs(15))
                .danger_accept_invalid_certs(insecure)
                .redirect(reqwest::redirect::Policy::limited(10))
                .build()
                .map_err(http_err("client"))
        };
        Ok(RegistryClient {
            config,
            creds,
            override_creds: None,
            secure: build(false)?,
            insecure: build(true)?,
            state: Mutex::new(State::default()),
        })
    }

    /// Uses these credentials for every registry (for `login`, to check them).
    pub fn with_credentials(mut self, creds: Credentials) -> Self {
        self.override_creds = Some(creds);
        self
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Where to fetch `reference` from, in order: mirrors first for Docker Hub.
    pub fn endpoints(&self, reference: &Reference) -> Vec<Endpoint> {
        let mut out = Vec::new();
        if reference.registry() == DEFAULT_REGISTRY {
            for m in &self.config.registry_mirrors {
                let with_scheme = if m.contains("://") {
                    m.clone()
                } else {
                    format!("https://{m}")
                };
                match Url::parse(&with_scheme) {
                    Ok(url) => {
                        let host = host_port(&url);
                        out.push(Endpoint {
                            host: host.clone(),
                            base: Some(url),
                            auth_key: host,
                            mirror: true,
                        });
                    }
                    Err(e) => {
                        tracing::warn!(mirror = %m, error = %e, "ignoring invalid registry mirror")
                    }
                }
            }
        }
        out.push(self.endpoint_for(reference.registry()));
        out
    }

    /// The registry's own endpoint (for push, which never goes to mirrors).
    pub fn endpoint_for(&self, registry: &str) -> Endpoint {
        let host = if registry == DEFAULT_REGISTRY {
            DEFAULT_REGISTRY_HOST
        } else {
            registry
        };
        Endpoint {
            host: host.to_owned(),
            base: None,
            auth_key: registry.to_owned(),
            mirror: false,
        }
    }

    fn client_for(&self, host: &str) -> &reqwest::Client {
        if self.config.is_insecure(host) {
            &self.insecure
        } else {
            &self.secure
        }
    }

    /// Scheme and authority for an endpoint. Insecure registries are tried over HTTPS (without
    /// verification) first and plain HTTP second, as docker does.
    pub(crate) async fn base(&self, ep: &Endpoint) -> Result<Url, RegistryError> {
        if let Some(b) = &ep.base {
            return Ok(b.clone());
        }
        if let Some(b) = self.lock().bases.get(&ep.host) {
            return Ok(b.clone());
        }
        let https = parse_url(&format!("https://{}/", ep.host))?;
        let chosen = if self.config.is_insecure(&ep.host) {
            let probe = https.join("v2/").map_err(|e| url_err(&ep.host, e))?;
            match self
                .insecure
                .get(probe)
                .timeout(Duration::from_secs(10))
                .send()
                .await
            {
                Ok(_) => https,
                Err(e) => {
                    tracing::debug!(host = %ep.host, error = %e, "HTTPS failed, using plain HTTP for insecure registry");
                    parse_url(&format!("http://{}/", ep.host))?
                }
            }
        } else {
            https
        };
        self.lock().bases.insert(ep.host.clone(), chosen.clone());
        Ok(chosen)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the maps inconsistent; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn credentials(&self, ep: &Endpoint) -> Option<Credentials> {
        self.override_creds
            .clone()
            .or_else(|| self.creds.as_ref().and_then(|c| c.get(&ep.auth_key)))
    }

    /// Sends a request built by `make` (called again for each attempt) with the authorization
    /// for `scope`, answering a 401 challenge once and retrying transient failures with backoff.
    pub(crate) async fn send(
        &self,
        ep: &Endpoint,
        scope: &str,
        make: impl Fn(&reqwest::Client, &Url) -> Result<RequestBuilder, RegistryError>,
    ) -> Result<Response, RegistryError> {
        let base = self.base(ep).await?;
        let key = (base.to_string(), scope.to_owned());
        let mut authed_once = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut rb = make(self.client_for(&ep.host), &base)?;
            let cached = self.lock().auth.get(&key).cloned();
            if let Some(h) = &cached {
                rb = rb.header(AUTHORIZATION, h);
            }
            let result = rb.send().await;
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    let err = RegistryError::Http {
                        url: base.to_string(),
                        source: e,
                    };
                    if attempt < MAX_ATTEMPTS && err.is_transient() {
                        backoff(attempt, &err).await;
                        continue;
                    }
                    return Err(err);
                }
            };
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !authed_once {
                authed_once = true;
                let challenge = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
                let url = resp.url().to_string();
                let Some(challenge) = challenge else {
                    return Err(RegistryError::Unauthorized {
                        url,
                        registry: ep.auth_key.clone(),
                        body: String::new(),
                    });
                };
                let header = self.authorize(ep, &challenge, scope).await?;
                self.lock().auth.insert(key.clone(), header);
                attempt -= 1;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let url = resp.url().to_string();
                let body = resp.text().await.unwrap_or_default();
                return Err(RegistryError::Unauthorized {
                    url,
                    registry: ep.auth_key.clone(),
                    body,
                });
            }
            if (status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error())
                && attempt < MAX_ATTEMPTS
            {
                let err = RegistryError::Status {
                    url: resp.url().to_string(),
                    status: status.as_u16(),
                    body: String::new(),
                };
                backoff(attempt, &err).await;
                continue;
            }
            return Ok(resp);
        }
    }

    /// Answers a challenge: a basic header from credentials, or a bearer token from the realm.
    async fn authorize(
        &self,
        ep: &Endpoint,
        challenge: &Challenge,
        scope: &str,
    ) -> Result<String, RegistryError> {
        let creds = self.credentials(ep);
        match challenge {
            Challenge::Basic => match creds {
                Some(c) => Ok(basic_header(&c)),
                None => Err(RegistryError::Unauthorized {
                    url: ep.host.clone(),
                    registry: ep.auth_key.clone(),
                    body: String::new(),
                }),
            },
            Challenge::Bearer {
                realm,
                service,
                scope: challenged,
            } => {
                let mut url = parse_url(realm)?;
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    let mut scopes: Vec<&str> =
                        scope.split(' ').filter(|s| !s.is_empty()).collect();
                    if let Some(c) = challenged {
                        if !scopes.contains(&c.as_str()) {
                            scopes.push(c);
                        }
                    }
                    for s in scopes {
                        q.append_pair("scope", s);
                    }
                    if let Some(c) = &creds {
                        q.append_pair("account", &c.username);
                    }
                }
                let client = self.client_for(url.host_str().unwrap_or(""));
                let mut rb = client.get(url.clone());
                if let Some(c) = &creds {
                    rb = rb.header(AUTHORIZATION, basic_header(c));
                }
                let resp = rb.send().await.map_err(|e| RegistryError::Token {
                    realm: realm.clone(),
                    message: e.to_string(),
                })?;
                let status = resp.status();
                if !status.is_success() {
                    let body = resp.text().await.unwrap_or_default();
                    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                        return Err(RegistryError::Unauthorized {
                            url: realm.clone(),
                            registry: ep.auth_key.clone(),
                            body,
                        });
                    }
                    return Err(RegistryError::Token {
                        realm: realm.clone(),
                        message: format!("HTTP {status}: {}", body.trim()),
                    });
                }
                #[derive(serde::Deserialize)]
                struct Token {
                    #[serde(default)]
                    token: Option<String>,
                    #[serde(default)]
                    access_token: Option<String>,
                }
                let t: Token = resp.json().await.map_err(|e| RegistryError::Token {
                    realm: realm.clone(),
                    message: e.to_string(),
                })?;
                let tok = t
                    .token
                    .or(t.access_token)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| RegistryError::Token {
                        realm: realm.clone(),
                        message: "response has no token".to_owned(),
                    })?;
                Ok(format!("Bearer {tok}"))
            }
        }
    }

    /// `GET /v2/` with authentication: checks that the registry answers and that the client's
    /// credentials are accepted (what `login` verifies).
    pub async fn check(&self, ep: &Endpoint) -> Result<(), RegistryError> {
        let resp = self
            .send(ep, "", |c, base| Ok(c.get(join(base, "v2/")?)))
            .await?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            let url = resp.url().to_string();
            Err(RegistryError::Status {
                url,
                status: status.as_u16(),
                body: resp.text().await.unwrap_or_default(),
            })
        }
    }
}

async fn backoff(attempt: u32, err: &RegistryError) {
    let ms = 200u64 << attempt.min(6);
    tracing::debug!(attempt, error = %err, "retrying in {ms} ms");
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

fn basic_header(c: &Credentials) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password))
    )
}

fn host_port(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => String::new(),
    }
}

fn url_err(url: &str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Url {
        url: url.to_owned(),
        message: e.to_string(),
    }
}

pub(crate) fn parse_url(s: &str) -> Result<Url, RegistryError> {
    Url::parse(s).map_err(|e| url_err(s, e))
}

/// `base` + relative path (a mirror base may carry a path prefix).
pub(crate) fn join(base: &Url, path: &str) -> Result<Url, RegistryError> {
    let mut b = base.clone();
    if !b.path().ends_with('/') {
        let p = format!("{}/", b.path());
        b.set_path(&p);
    }
    b.join(path).map_err(|e| url_err(path, e))
}

/// Pull scope for a repository.
pub(crate) fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}
