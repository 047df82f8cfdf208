//! Where the tool writes: the rehearsal dir (`artifacts/ops/<date>/rehearsal_<stamp>/`, never
//! reused), the day's folder for the step 2 and 3 transcripts (names made unique per run), the
//! append-only transcripts (flushed line by line), and whole-or-nothing writes (temp + rename).
//! A write that fails names the file. Nothing is written through a symlink: the folders under
//! the workdir must be real directories, files are opened with `O_NOFOLLOW`, and temp files are
//! created new under an unpredictable name.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::exit;
use crate::process::Tee;

/// `workdir/rel`, each folder of `rel` created when missing; one that is a symlink (or not a
/// directory) is refused, so a tree cannot send the evidence, or an append, somewhere else.
pub fn real_dir(workdir: &Path, rel: &str) -> Result<PathBuf> {
    let mut path = workdir.to_path_buf();
    let mut so_far = String::new();
    for part in Path::new(rel).components() {
        let Component::Normal(part) = part else {
            return Err(exit::cannot_run(format!("{rel}: not a plain path under the workdir")));
        };
        path.push(part);
        so_far = if so_far.is_empty() {
            part.to_string_lossy().into_owned()
        } else {
            format!("{so_far}/{}", part.to_string_lossy())
        };
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(exit::cannot_run(format!(
                    "{so_far} is a symlink: the tool writes its evidence only into real folders of the workdir, \
                     never through a link; remove the link (or make it a folder)"
                )))
            }
            Ok(m) if !m.is_dir() => {
                return Err(exit::cannot_run(format!("{so_far} is not a folder; the tool needs it to write into")))
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).with_context(|| format!("creating {so_far}")),
            },
            Err(e) => return Err(e).with_context(|| format!("reading {so_far}")),
        }
    }
    Ok(path)
}

/// Open `path` to append, creating it when missing; a symlink there is refused (`O_NOFOLLOW`).
pub fn open_append(path: &Path, rel: &str) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| refused_link(e, rel))
}

/// Create `path`, which must not exist (no symlink is followed), readable by its owner alone
/// until its final mode is set.
pub fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)
}

/// A file the tool writes that is a symlink: said so, never followed.
fn refused_link(e: std::io::Error, rel: &str) -> anyhow::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        exit::cannot_run(format!(
            "{rel} is a symlink: the tool never writes through one (it could point anywhere); remove the link"
        ))
    } else {
        anyhow::Error::new(e).context(format!("opening {rel}"))
    }
}

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
        real_dir(workdir, &day)?;
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
    path: PathBuf,
}

impl Transcript {
    pub fn append(path: &Path, rel: String) -> Result<Transcript> {
        let file = open_append(path, &rel)?;
        Ok(Transcript { file, rel, path: path.to_path_buf() })
    }

    /// How many bytes it holds.
    pub fn len(&self) -> Result<u64> {
        Ok(self.file.metadata().with_context(|| format!("reading {}", self.rel))?.len())
    }

    /// What was written from byte `offset` on ([`Transcript::len`] before), as text.
    pub fn since(&self, offset: u64) -> Result<String> {
        let bytes = std::fs::read(&self.path).with_context(|| format!("reading {}", self.rel))?;
        Ok(String::from_utf8_lossy(bytes.get(offset as usize..).unwrap_or_default()).into_owned())
    }

    /// A new file in the day's folder for this run alone: `<stem>_<HHMMSS>.<ext>`, with `_2`, `_3`,
    /// ... when another run made that name in the same second.
    pub fn new_in_day(workdir: &Path, now: &DateTime<Utc>, stem: &str, ext: &str) -> Result<Transcript> {
        let day = format!("artifacts/ops/{}", date(now));
        real_dir(workdir, &day)?;
        for n in 1.. {
            let suffix = if n == 1 { String::new() } else { format!("_{n}") };
            let rel = format!("{day}/{stem}_{}{suffix}.{ext}", now.format("%H%M%S"));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(workdir.join(&rel))
            {
                Ok(file) => return Ok(Transcript { file, path: workdir.join(&rel), rel }),
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

/// A temp file's path beside `path`: `.<name>.tmp-<random>`, a name no one can guess ahead.
pub fn temp_beside(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dir.join(format!(".{name}.tmp-{}", crate::process::psql::nonce()))
}

/// Write a file whole or not at all: a new temp file beside it (mode 0644), then a rename, which
/// replaces a symlink at `path` rather than writing through it.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = temp_beside(path);
    let result = (|| {
        let mut file = create_new(&tmp)?;
        file.write_all(contents)?;
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_written_through_a_symlink() {
        let dir = std::env::temp_dir().join(format!("artifacts-links-{}", crate::process::psql::nonce()));
        std::fs::create_dir(&dir).unwrap();
        let target = dir.join("precious");
        std::fs::write(&target, "precious\n").unwrap();
        let link = dir.join("summary.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        // A whole-file write replaces the link itself.
        write_atomic(&link, b"{}\n").unwrap();
        assert!(!std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
        // An append is refused by name.
        let log = dir.join("apply.log");
        std::os::unix::fs::symlink(&target, &log).unwrap();
        let e = format!("{:#}", open_append(&log, "x/apply.log").unwrap_err());
        assert!(e.contains("x/apply.log is a symlink: the tool never writes through one"), "{e}");
        // A folder that is a link is refused; a missing one is made.
        std::os::unix::fs::symlink(&dir, dir.join("linked")).unwrap();
        let e = format!("{:#}", real_dir(&dir, "linked/day").unwrap_err());
        assert!(e.starts_with("linked is a symlink"), "{e}");
        assert!(real_dir(&dir, "made/day").unwrap().is_dir());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
