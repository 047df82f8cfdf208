//! Where the tool writes: the rehearsal dir (`artifacts/ops/<date>/rehearsal_<stamp>/`, never
//! reused), the day's folder for the step 2 and 3 transcripts (names made unique per run), the
//! append-only transcripts (flushed line by line), and whole-or-nothing writes (temp + rename).
//! A write that fails names the file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::process::Tee;

/// `2025-10-19`: the day folder of `artifacts/ops/` and the feedback file name.
pub fn date(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// `2025-10-19T00:45:00.123Z`.
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `artifacts/ops/<YYYY-MM-DD>/rehearsal_<YYYYMMDDTHHMMSSZ>/`; a clash gets `_2`, `_3`, ...
pub struct RehearsalDir {
    pub path: PathBuf,
    /// Relative to the workdir, as written in summaries and feedback.
    pub rel: String,
}

impl RehearsalDir {
    pub fn create(workdir: &Path, now: &DateTime<Utc>) -> Result<RehearsalDir> {
        let day = format!("artifacts/ops/{}", date(now));
        std::fs::create_dir_all(workdir.join(&day)).with_context(|| format!("creating {day}"))?;
        for n in 1.. {
            let suffix = if n == 1 { String::new() } else { format!("_{n}") };
            let rel = format!("{day}/rehearsal_{}{suffix}", now.format("%Y%m%dT%H%M%SZ"));
            match std::fs::create_dir(workdir.join(&rel)) {
                Ok(()) => return Ok(RehearsalDir { path: workdir.join(&rel), rel }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("creating the rehearsal dir {rel}")),
            }
        }
        unreachable!("the suffix loop only ends by returning")
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn rel_file(&self, name: &str) -> String {
        format!("{}/{name}", self.rel)
    }

    /// Open an append-only transcript in the rehearsal dir.
    pub fn transcript(&self, name: &str) -> Result<Transcript> {
        Transcript::append(&self.file(name), self.rel_file(name))
    }
}

/// An append-only log, written and flushed a line at a time.
pub struct Transcript {
    file: std::fs::File,
    rel: String,
}

impl Transcript {
    pub fn append(path: &Path, rel: String) -> Result<Transcript> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {rel}"))?;
        Ok(Transcript { file, rel })
    }

    /// A new file in the day's folder for this run alone: `<stem>_<HHMMSS>.<ext>`, with `_2`, `_3`,
    /// ... when another run made that name in the same second.
    pub fn new_in_day(workdir: &Path, now: &DateTime<Utc>, stem: &str, ext: &str) -> Result<Transcript> {
        let day = format!("artifacts/ops/{}", date(now));
        std::fs::create_dir_all(workdir.join(&day)).with_context(|| format!("creating {day}"))?;
        for n in 1.. {
            let suffix = if n == 1 { String::new() } else { format!("_{n}") };
            let rel = format!("{day}/{stem}_{}{suffix}.{ext}", now.format("%H%M%S"));
            match std::fs::OpenOptions::new().write(true).create_new(true).open(workdir.join(&rel)) {
                Ok(file) => return Ok(Transcript { file, rel }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("creating {rel}")),
            }
        }
        unreachable!("the suffix loop only ends by returning")
    }

    /// Relative to the workdir.
    pub fn rel(&self) -> &str {
        &self.rel
    }

    /// The file name alone.
    pub fn name(&self) -> &str {
        self.rel.rsplit('/').next().unwrap_or(&self.rel)
    }

    pub fn line(&mut self, line: &str) -> Result<()> {
        let written = self
            .file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.write_all(b"\n"))
            .and_then(|_| self.file.flush());
        written.with_context(|| format!("writing {}", self.rel))
    }

    /// Several lines (a psql transcript already collected).
    pub fn text(&mut self, text: &str) -> Result<()> {
        for line in text.lines() {
            self.line(line)?;
        }
        Ok(())
    }
}

impl Tee for Transcript {
    fn tee(&mut self, line: &str) -> Result<()> {
        self.line(line)
    }
}

/// Write a file whole or not at all: a temp file beside it, then a rename.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}
