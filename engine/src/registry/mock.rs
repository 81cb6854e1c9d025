//! A small in-process registry speaking the distribution API over HTTP/1.1 on loopback, for the
//! registry client's unit tests (no network, no external registry).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use base64::Engine as _;

use crate::digest::Digest;

#[derive(Clone, Debug)]
pub enum Auth {
    None,
    /// Bearer tokens from `/token`; with `Some`, the token endpoint wants these basic credentials.
    Bearer(Option<(String, String)>),
    Basic(String, String),
}

#[derive(Default)]
pub struct State {
    pub manifests: HashMap<(String, String), (String, Vec<u8>)>,
    pub blobs: HashMap<Digest, Vec<u8>>,
    pub linked: HashMap<String, HashSet<Digest>>,
    pub uploads: HashMap<String, (String, Vec<u8>)>,
    pub log: Vec<String>,
    /// Answer every request with this status (a broken mirror).
    pub fail_all: Option<u16>,
    /// Serve these bytes instead of the real blob (corruption).
    pub corrupt: HashSet<Digest>,
    next: u64,
}

pub struct Mock {
    pub addr: String,
    pub state: Arc<Mutex<State>>,
}

impl Mock {
    pub fn start(auth: Auth) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr").to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let (st, a) = (state.clone(), addr.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (st, auth, a) = (st.clone(), auth.clone(), a.clone());
                std::thread::spawn(move || serve(conn, &st, &auth, &a));
            }
        });
        Mock { addr, state }
    }

    pub fn put_blob(&self, repo: &str, data: &[u8]) -> Digest {
        let d = Digest::of(data);
        let mut s = self.state.lock().expect("lock");
        s.blobs.insert(d.clone(), data.to_vec());
        s.linked
            .entry(repo.to_owned())
            .or_default()
            .insert(d.clone());
        d
    }

    pub fn put_manifest(&self, repo: &str, tag: &str, media_type: &str, data: &[u8]) -> Digest {
        let d = Digest::of(data);
        let mut s = self.state.lock().expect("lock");
        s.manifests.insert(
            (repo.to_owned(), tag.to_owned()),
            (media_type.to_owned(), data.to_vec()),
        );
        s.manifests.insert(
            (repo.to_owned(), d.to_string()),
            (media_type.to_owned(), data.to_vec()),
        );
        d
    }

    pub fn log(&self) -> Vec<String> {
        self.state.lock().expect("lock").log.clone()
    }
}

struct Req {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn read_req(r: &mut BufReader<TcpStream>) -> Option<Req> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let mut body = Vec::new();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            let mut sz = String::new();
            r.read_line(&mut sz).ok()?;
            let n = usize::from_str_radix(sz.trim(), 16).ok()?;
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = headers
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        body = vec![0u8; n];
        r.read_exact(&mut body).ok()?;
    }
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let query = q
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            (
                k.to_owned(),
                v.replace("%3A", ":")
                    .replace("%2F", "/")
                    .replace("%2C", ",")
                    .replace('+', " "),
            )
        })
        .collect();
    Some(Req {
        method,
        path: path.to_owned(),
        query,
        headers,
        body,
    })
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn resp(status: u16) -> Resp {
    Resp {
        status,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

fn serve(conn: TcpStream, st: &Mutex<State>, auth: &Auth, addr: &str) {
    let Ok(write_half) = conn.try_clone() else {
        return;
    };
    let mut w = write_half;
    let mut r = BufReader::new(conn);
    while let Some(req) = read_req(&mut r) {
        let out = handle(&req, st, auth, addr);
        let mut head = format!(
            "HTTP/1.1 {} X\r\nContent-Length: {}\r\n",
            out.status,
            out.body.len()
        );
        for (k, v) in &out.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        if w.write_all(head.as_bytes()).is_err() {
            return;
        }
        if req.method != "HEAD" && w.write_all(&out.body).is_err() {
            return;
        }
    }
}

fn authorized(req: &Req, auth: &Auth) -> bool {
    let h = req
        .headers
        .get("authorization")
        .cloned()
        .unwrap_or_default();
    match auth {
        Auth::None => true,
        Auth::Bearer(_) => h.starts_with("Bearer tok-"),
        Auth::Basic(u, p) => h == basic(u, p),
    }
}

fn basic(u: &str, p: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
    )
}

fn handle(req: &Req, st: &Mutex<State>, auth: &Auth, addr: &str) -> Resp {
    let mut s = st.lock().unwrap_or_else(|p| p.into_inner());
    let q: Vec<String> = req.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    s.log.push(format!(
        "{} {}{}",
        req.method,
        req.path,
        if q.is_empty() {
            String::new()
        } else {
            format!("?{}", q.join("&"))
        }
    ));
    if let Some(code) = s.fail_all {
        return resp(code);
    }
    if req.path == "/token" {
        if let Auth::Bearer(Some((u, p))) = auth {
            if req.headers.get("authorization") != Some(&basic(u, p)) {
                return resp(401);
            }
        }
        s.next += 1;
        return Resp {
            status: 200,
            headers: vec![],
            body: format!("{{\"token\":\"tok-{}\"}}", s.next).into_bytes(),
        };
    }
    if let Some(hex) = req.path.strip_prefix("/_redirected/") {
        // Redirect target (like object storage): no registry auth here.
        if req.headers.contains_key("authorization") {
            return resp(400);
        }
        let Ok(d) = Digest::from_hex(hex) else {
            return resp(404);
        };
        let corrupt = s.corrupt.contains(&d);
        return match s.blobs.get(&d) {
            Some(b) if corrupt => Resp {
                status: 200,
                headers: vec![],
                body: b.iter().map(|x| x ^ 1).collect(),
            },
            Some(b) => Resp {
                status: 200,
                headers: vec![],
                body: b.clone(),
            },
            None => resp(404),
        };
    }
    if !authorized(req, auth) {
        let h = match auth {
            Auth::Basic(..) => "Basic realm=\"mock\"".to_owned(),
            _ => format!("Bearer realm=\"http://{addr}/token\",service=\"mock\""),
        };
        return Resp {
            status: 401,
            headers: vec![("WWW-Authenticate".into(), h)],
            body: b"{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}".to_vec(),
        };
    }
    if req.path == "/v2/" {
        return resp(200);
    }
    let Some(rest) = req.path.strip_prefix("/v2/") else {
        return resp(404);
    };
    if let Some((repo, reference)) = rest.split_once("/manifests/") {
        let key = (repo.to_owned(), reference.to_owned());
        return match req.method.as_str() {
            "GET" | "HEAD" => match s.manifests.get(&key) {
                Some((mt, b)) => Resp {
                    status: 200,
                    headers: vec![("Content-Type".into(), mt.clone())],
                    body: b.clone(),
                },
                None => resp(404),
            },
            "PUT" => {
                let mt = req.headers.get("content-type").cloned().unwrap_or_default();
                let d = Digest::of(&req.body);
                s.manifests.insert(key, (mt.clone(), req.body.clone()));
                s.manifests
                    .insert((repo.to_owned(), d.to_string()), (mt, req.body.clone()));
                Resp {
                    status: 201,
                    headers: vec![("Docker-Content-Digest".into(), d.to_string())],
                    body: vec![],
                }
            }
            _ => resp(405),
        };
    }
    if let Some((repo, tail)) = rest.split_once("/blobs/uploads/") {
        let repo = repo.to_owned();
        match (req.method.as_str(), tail) {
            ("POST", "") => {
                if let (Some(m), Some(from)) = (req.query.get("mount"), req.query.get("from")) {
                    if let Ok(d) = m.parse::<Digest>() {
                        if s.linked.get(from).is_some_and(|l| l.contains(&d)) {
                            s.linked.entry(repo).or_default().insert(d);
                            return resp(201);
                        }
                    }
                }
                s.next += 1;
                let id = format!("u{}", s.next);
                s.uploads.insert(id.clone(), (repo.clone(), Vec::new()));
                // Relative Location, as distribution sends.
                Resp {
                    status: 202,
                    headers: vec![(
                        "Location".into(),
                        format!("/v2/{repo}/blobs/uploads/{id}?state=x"),
                    )],
                    body: vec![],
                }
            }
            ("PATCH", id) => {
                let Some((_, data)) = s.uploads.get_mut(id) else {
                    return resp(404);
                };
                data.extend_from_slice(&req.body);
                Resp {
                    status: 202,
                    headers: vec![(
                        "Location".into(),
                        format!("/v2/{repo}/blobs/uploads/{id}?state=y"),
                    )],
                    body: vec![],
                }
            }
            ("PUT", id) => {
                let Some((_, mut data)) = s.uploads.remove(id) else {
                    return resp(404);
                };
                data.extend_from_slice(&req.body);
                let Some(want) = req
                    .query
                    .get("digest")
                    .and_then(|d| d.parse::<Digest>().ok())
                else {
                    return resp(400);
                };
                if Digest::of(&data) != want {
                    return resp(400);
                }
                s.blobs.insert(want.clone(), data);
                s.linked.entry(repo).or_default().insert(want);
                resp(201)
            }
            _ => resp(405),
        }
    } else if let Some((repo, d)) = rest.split_once("/blobs/") {
        let Ok(d) = d.parse::<Digest>() else {
            return resp(404);
        };
        if !s.linked.get(repo).is_some_and(|l| l.contains(&d)) {
            return resp(404);
        }
        match req.method.as_str() {
            "HEAD" => resp(200),
            // To another origin (`localhost` instead of `127.0.0.1`), as object storage would be: the
            // client must follow it and must not send the registry's credentials there.
            "GET" => {
                let port = addr.rsplit(':').next().unwrap_or("0");
                Resp {
                    status: 307,
                    headers: vec![(
                        "Location".into(),
                        format!("http://localhost:{port}/_redirected/{}", d.hex()),
                    )],
                    body: vec![],
                }
            }
            _ => resp(405),
        }
    } else {
        resp(404)
    }
}
