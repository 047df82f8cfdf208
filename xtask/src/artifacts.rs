//! Where the tool writes (SPEC §6): the rehearsal dir, never reused, and whole-or-nothing writes.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::clock::Utc;

/// `artifacts/ops/<YYYY-MM-DD>/rehearsal_<YYYYMMDDTHHMMSSZ>/`; a clash gets `_2`, `_3`, ...
pub struct RehearsalDir {
    pub path: PathBuf,
    /// Relative to the workdir, as written in summaries and feedback.
    pub rel: String,
}

impl RehearsalDir {
    pub fn create(workdir: &Path, now: &Utc) -> Result<RehearsalDir> {
        let day = format!("artifacts/ops/{}", now.date());
        std::fs::create_dir_all(workdir.join(&day)).with_context(|| format!("creating {day}"))?;
        for n in 1.. {
            let suffix = if n == 1 { String::new() } else { format!("_{n}") };
            let rel = format!("{day}/rehearsal_{}{suffix}", now.stamp());
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

    /// Open an append-only log in the rehearsal dir.
    pub fn log(&self, name: &str) -> Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.file(name))
            .with_context(|| format!("opening {}", self.rel_file(name)))
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

/// `MANIFEST.sha256` in `dir`: `<sha256>  <name>` for every file in it (sorted, recursively),
/// the format `sha256sum -c MANIFEST.sha256` verifies from inside the dir.
pub fn write_manifest(dir: &Path) -> Result<()> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                walk(root, &entry.path(), out)?;
            } else {
                let rel = entry.path().strip_prefix(root).expect("under root").to_string_lossy().into_owned();
                if rel != "MANIFEST.sha256" && !rel.starts_with('.') {
                    out.push(rel);
                }
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    let mut manifest = String::new();
    for rel in files {
        let bytes = std::fs::read(dir.join(&rel)).with_context(|| format!("hashing {rel}"))?;
        manifest.push_str(&format!("{}  {rel}\n", crate::sha256::hex(&bytes)));
    }
    write_atomic(&dir.join("MANIFEST.sha256"), manifest.as_bytes())
}
