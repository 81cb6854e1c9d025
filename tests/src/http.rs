//! A minimal HTTP/1.1 client over a raw TCP socket.
//!
//! It only talks to the loopback test registry (readiness probe, auth checks, reading manifests),
//! so a full HTTP crate would be dead weight. Every call is bounded by a timeout so a wedged
//! server fails a test instead of hanging it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::error::{Context, Error, Result};
use crate::util::base64;

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Header names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Body bytes (the request asks for `Connection: close`, so the body is everything after the
    /// headers; chunked encoding is decoded).
    pub body: Vec<u8>,
}

impl Response {
    /// First header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method path` to `host_port` (e.g. `127.0.0.1:5000`) with optional basic credentials and
/// extra headers, and reads the whole response.
pub fn request(
    method: &str,
    host_port: &str,
    path: &str,
    basic_auth: Option<(&str, &str)>,
    extra_headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<Response> {
    let addr: SocketAddr = host_port
        .parse()
        .with_context(|| format!("parsing socket address {host_port:?}"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {host_port}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .context("setting read timeout")?;
    stream
        .set_write_timeout(Some(timeout))
        .context("setting write timeout")?;

    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host_port}\r\nUser-Agent: rcompose-e2e\r\n\
         Connection: close\r\n"
    );
    if let Some((user, pass)) = basic_auth {
        let token = base64(format!("{user}:{pass}").as_bytes());
        req.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    for (k, v) in extra_headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .with_context(|| format!("sending {method} {path} to {host_port}"))?;

    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("reading response to {method} {path} from {host_port}"))?;
    parse_response(&raw, method == "HEAD")
}

/// `GET` shorthand.
pub fn get(host_port: &str, path: &str, basic_auth: Option<(&str, &str)>) -> Result<Response> {
    request(
        "GET",
        host_port,
        path,
        basic_auth,
        &[],
        Duration::from_secs(10),
    )
}

fn parse_response(raw: &[u8], head: bool) -> Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            Error::msg(format!(
                "malformed HTTP response ({} bytes, no header end)",
                raw.len()
            ))
        })?;
    let head_text = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| Error::msg(format!("malformed HTTP status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = if head {
        Vec::new()
    } else {
        raw[split + 4..].to_vec()
    };
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| Error::msg("truncated chunked body"))?;
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .with_context(|| format!("bad chunk size {size_hex:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            return Err(Error::msg("truncated chunk"));
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_responses() {
        let plain = b"HTTP/1.1 401 Unauthorized\r\nWww-Authenticate: Basic realm=x\r\n\r\nno";
        let r = parse_response(plain, false).expect("plain response parses");
        assert_eq!(r.status, 401);
        assert_eq!(r.header("WWW-Authenticate"), Some("Basic realm=x"));
        assert_eq!(r.body, b"no");

        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = parse_response(chunked, false).expect("chunked response parses");
        assert_eq!(r.body, b"abcde");
    }
}
