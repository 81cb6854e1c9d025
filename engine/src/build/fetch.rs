//! `ADD <url>`: downloading a remote file into the build (HTTP or HTTPS, redirects followed).

use std::io::Write;
use std::time::Duration;

/// The file name docker gives a downloaded source: the last path segment of the URL.
pub fn file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let path = path.split_once("://").map(|(_, r)| r).unwrap_or(path);
    match path.split_once('/') {
        Some((_, p)) => p
            .rsplit('/')
            .find(|s| !s.is_empty())
            .unwrap_or("index.html")
            .to_owned(),
        None => "index.html".to_owned(),
    }
}

/// Downloads `url` into `out`; a status other than 2xx is an error naming it.
pub fn fetch(url: &str, out: &mut impl Write) -> Result<u64, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the HTTP client: {e}"))?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let mut resp = client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP status {}", resp.status()));
        }
        let mut total = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            out.write_all(&chunk).map_err(|e| format!("{url}: {e}"))?;
            total += chunk.len() as u64;
        }
        Ok(total)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    #[test]
    fn names_from_urls() {
        assert_eq!(file_name("https://h/a/b/c.tar.gz?x=1"), "c.tar.gz");
        assert_eq!(file_name("http://h/dir/"), "dir");
        assert_eq!(file_name("http://h"), "index.html");
    }

    #[test]
    fn downloads_from_a_loopback_server() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for status in ["200 OK", "404 Not Found"] {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let body = "payload";
                write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
        });
        let mut out = Vec::new();
        let n = fetch(&format!("http://{addr}/f.txt"), &mut out).unwrap();
        assert_eq!((n, out.as_slice()), (7, &b"payload"[..]));
        let e = fetch(&format!("http://{addr}/missing"), &mut Vec::new()).unwrap_err();
        assert!(e.contains("404"), "{e}");
        server.join().unwrap();
    }
}
