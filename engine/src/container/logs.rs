//! Container logs in docker's json-file format: one `{"log":"…\n","stream":"stdout",
//! "time":"RFC3339Nano"}` object per line, rotated at `max_size` keeping `max_file` files
//! (`<id>-json.log`, `.1`, `.2`, …). The supervisor writes; `logs` reads and follows.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::record::LogConfig;

/// The log file of a container dir.
pub fn path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}-json.log"))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Appends entries with rotation. Partial lines are held per stream until their newline (or
/// 16 KiB, as docker splits long lines).
#[derive(Debug)]
pub struct Writer {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    cfg: LogConfig,
    partial: [Vec<u8>; 2],
}

const MAX_LINE: usize = 16 * 1024;

impl Writer {
    pub fn open(path: PathBuf, cfg: LogConfig) -> io::Result<Writer> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(Writer {
            path,
            file: Some(file),
            size,
            cfg,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Feeds bytes read from stream 1 (stdout) or 2 (stderr).
    pub fn feed(&mut self, stream: u8, data: &[u8]) -> io::Result<()> {
        let idx = usize::from(stream == 2);
        self.partial[idx].extend_from_slice(data);
        loop {
            let buf = &self.partial[idx];
            let cut = match buf.iter().position(|b| *b == b'\n') {
                Some(p) => p + 1,
                None if buf.len() >= MAX_LINE => MAX_LINE,
                None => break,
            };
            let line: Vec<u8> = self.partial[idx].drain(..cut).collect();
            self.write_line(stream, &line)?;
        }
        Ok(())
    }

    /// Writes out held partial lines (at stream end).
    pub fn flush_partial(&mut self) -> io::Result<()> {
        for (idx, stream) in [(0usize, 1u8), (1, 2)] {
            if !self.partial[idx].is_empty() {
                let line = std::mem::take(&mut self.partial[idx]);
                self.write_line(stream, &line)?;
            }
        }
        Ok(())
    }

    fn write_line(&mut self, stream: u8, line: &[u8]) -> io::Result<()> {
        let e = Entry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: if stream == 2 { "stderr" } else { "stdout" }.into(),
            time: super::time::now(),
        };
        let mut json = serde_json::to_vec(&e).map_err(io::Error::other)?;
        json.push(b'\n');
        if self.cfg.max_size > 0
            && self.size > 0
            && self.size + json.len() as u64 > self.cfg.max_size
        {
            self.rotate()?;
        }
        let f = match &mut self.file {
            Some(f) => f,
            None => return Ok(()),
        };
        f.write_all(&json)?;
        self.size += json.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        let keep = self.cfg.max_file.max(1);
        if keep == 1 {
            fs::remove_file(&self.path).or_else(ignore_missing)?;
        } else {
            let _ = fs::remove_file(rotated(&self.path, keep - 1));
            for i in (1..keep - 1).rev() {
                let _ = fs::rename(rotated(&self.path, i), rotated(&self.path, i + 1));
            }
            fs::rename(&self.path, rotated(&self.path, 1)).or_else(ignore_missing)?;
        }
        self.file = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?,
        );
        self.size = 0;
        Ok(())
    }
}

fn ignore_missing(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Options of `logs`.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub tail: Option<usize>,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
}

fn in_window(e: &Entry, o: &ReadOptions) -> bool {
    let t = super::time::parse_rfc3339(&e.time);
    match t {
        Some(t) => o.since.is_none_or(|s| t >= s) && o.until.is_none_or(|u| t <= u),
        None => true,
    }
}

/// Every entry currently stored (oldest first) filtered by the options, and the offset in the
/// current file where a follower continues.
pub fn read(path: &Path, o: &ReadOptions) -> io::Result<(Vec<Entry>, u64)> {
    let mut files = Vec::new();
    for n in (1..100).rev() {
        let r = rotated(path, n);
        if r.exists() {
            files.push(r);
        }
    }
    files.push(path.to_owned());
    let mut out = Vec::new();
    let mut offset = 0;
    for f in &files {
        let file = match File::open(f) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut r = BufReader::new(file);
        let mut line = String::new();
        let mut pos = 0u64;
        loop {
            line.clear();
            let n = r.read_line(&mut line)?;
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            pos += n as u64;
            if let Ok(e) = serde_json::from_str::<Entry>(&line) {
                if in_window(&e, o) {
                    out.push(e);
                }
            }
        }
        if f == path {
            offset = pos;
        }
    }
    if let Some(t) = o.tail {
        let skip = out.len().saturating_sub(t);
        out.drain(..skip);
    }
    Ok((out, offset))
}

/// Follows the current file from `offset`, calling `emit` per entry, until `done()` says the
/// writer is gone and the file is drained. Handles rotation (the file shrinking or being
/// replaced) by starting the new file from the top. Returns the offset after the last whole
/// entry read, where a later follow of the same file goes on.
pub fn follow(
    path: &Path,
    mut offset: u64,
    o: &ReadOptions,
    mut emit: impl FnMut(&Entry) -> io::Result<()>,
    mut done: impl FnMut() -> bool,
) -> io::Result<u64> {
    let mut partial = String::new();
    loop {
        let finished = done();
        if let Ok(mut f) = File::open(path) {
            let len = f.metadata()?.len();
            if len < offset {
                offset = 0;
                partial.clear();
            }
            f.seek(SeekFrom::Start(offset))?;
            let mut r = BufReader::new(f);
            loop {
                let n = r.read_line(&mut partial)?;
                if n == 0 {
                    break;
                }
                offset += n as u64;
                if !partial.ends_with('\n') {
                    break;
                }
                if let Ok(e) = serde_json::from_str::<Entry>(&partial) {
                    if o.until
                        .is_some_and(|u| super::time::parse_rfc3339(&e.time).is_some_and(|t| t > u))
                    {
                        return Ok(offset);
                    }
                    if in_window(&e, o) {
                        emit(&e)?;
                    }
                }
                partial.clear();
            }
        }
        if finished {
            return Ok(offset.saturating_sub(partial.len() as u64));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_splits_rotates_and_reads() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        let mut w = Writer::open(
            p.clone(),
            LogConfig {
                max_size: 300,
                max_file: 3,
            },
        )
        .unwrap();
        w.feed(1, b"hello\nwor").unwrap();
        w.feed(2, b"oops\n").unwrap();
        w.feed(1, b"ld\n").unwrap();
        for i in 0..20 {
            w.feed(1, format!("line {i}\n").as_bytes()).unwrap();
        }
        w.feed(1, b"tail-no-newline").unwrap();
        w.flush_partial().unwrap();
        assert!(rotated(&p, 1).exists() && rotated(&p, 2).exists() && !rotated(&p, 3).exists());
        let (all, _) = read(&p, &ReadOptions::default()).unwrap();
        assert_eq!(all.last().unwrap().log, "tail-no-newline");
        assert!(all.len() < 24, "old files dropped");
        let (last2, off) = read(
            &p,
            &ReadOptions {
                tail: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(last2[0].log, "line 19\n");
        assert_eq!(off, fs::metadata(&p).unwrap().len());
        let d2 = tempfile::tempdir().unwrap();
        let p2 = d2.path().join("x-json.log");
        let mut w2 = Writer::open(p2.clone(), LogConfig::default()).unwrap();
        w2.feed(1, b"a\n").unwrap();
        w2.feed(2, b"b\n").unwrap();
        let (e, _) = read(&p2, &ReadOptions::default()).unwrap();
        assert_eq!(
            (e[0].stream.as_str(), e[1].stream.as_str()),
            ("stdout", "stderr")
        );
        assert!(e[0].time.ends_with('Z') && e[0].time.len() == 30);
        let mut got = Vec::new();
        follow(
            &p2,
            0,
            &ReadOptions::default(),
            |e| {
                got.push(e.log.clone());
                Ok(())
            },
            || true,
        )
        .unwrap();
        assert_eq!(got, vec!["a\n", "b\n"]);
    }
}
