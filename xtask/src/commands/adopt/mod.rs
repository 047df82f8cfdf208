//! `cargo xtask adopt DIR [--force]`: an existing Supabase repository runs `cargo xtask ...`
//! after one command. Written: the xtask crate (this tool's own sources, read from where it was
//! built), the `cargo xtask` alias, the workspace, the Supabase CLI pin, the CI workflows (under
//! names of their own), a commented `supabase/rehearsal.toml` and the `.gitignore` lines; the
//! files a team already has are merged, never replaced ([`merge`]).
//!
//! What it wrote whole is recorded with its hash in `xtask/adopted.json`: a second `adopt` of the
//! same version changes nothing, a newer one updates what the team did not edit, and a file they
//! edited is not overwritten without `--force` (exit 2, each file named).

mod merge;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::evidence::manifest::sha256;
use crate::exit::{self, Exit};

/// Where the record of what `adopt` wrote lives, in the adopted repository.
const RECORD: &str = "xtask/adopted.json";

/// What `adopt` wrote whole, by path, with the hash of what it wrote.
#[derive(Default, Serialize, Deserialize)]
struct Adopted {
    version: String,
    files: BTreeMap<String, String>,
}

/// What a run did to one path.
#[derive(Debug, PartialEq, Eq)]
enum Done {
    Created,
    Updated,
    Unchanged,
    Removed,
}

pub fn run(dir: &Path, force: bool) -> Result<Exit> {
    let dir = dir.canonicalize().map_err(|e| exit::cannot_run(format!("adopt {}: {e}", dir.display())))?;
    if !dir.join("supabase").is_dir() {
        return Err(exit::cannot_run(format!(
            "adopt: {} has no supabase/ directory: adopt a Supabase project's repository (its root, where \
             `supabase init` made supabase/)",
            dir.display()
        )));
    }
    let source = source_root();
    if dir == source {
        return Err(exit::cannot_run("adopt: that is this tool's own repository; name another one"));
    }
    let wanted = whole_files(&source)?;
    let record: Adopted = match std::fs::read_to_string(dir.join(RECORD)) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| exit::cannot_run(format!("adopt: {RECORD} is not what adopt writes ({e}): restore it")))?,
        Err(_) => Adopted::default(),
    };

    // First every decision, then the writes: a refusal leaves the repository as it was.
    let mut plan: Vec<(String, Option<Vec<u8>>, Done)> = Vec::new();
    let mut edited: Vec<String> = Vec::new();
    for (rel, bytes) in &wanted {
        let current = std::fs::read(dir.join(rel)).ok();
        let done = match &current {
            None => Done::Created,
            Some(c) if c == bytes => Done::Unchanged,
            Some(c) => {
                if record.files.get(rel) != Some(&sha256(c)) && !force {
                    edited.push(rel.clone());
                }
                Done::Updated
            }
        };
        plan.push((rel.clone(), Some(bytes.clone()), done));
    }
    for (rel, hash) in &record.files {
        // Only what adopt itself writes is ever removed: the record is a file in their tree, and
        // an entry that names anything else (`../x`, `/etc/x`, their migrations) is left alone.
        if wanted.contains_key(rel) || !ours(rel) {
            continue;
        }
        if let Ok(c) = std::fs::read(dir.join(rel)) {
            if sha256(&c) != *hash && !force {
                edited.push(rel.clone());
            }
            plan.push((rel.clone(), None, Done::Removed));
        }
    }
    if !edited.is_empty() {
        return Err(exit::cannot_run(format!(
            "adopt: {} file(s) the last adopt wrote were edited since, and this version would replace them: {}; \
             keep your change elsewhere (or in a file adopt does not write), or pass --force to replace them",
            edited.len(),
            edited.join(", ")
        )));
    }
    let merged = merge::all(&dir, &source)?;

    let mut report = Vec::new();
    for (rel, bytes, done) in &plan {
        let path = dir.join(rel);
        match (bytes, done) {
            (_, Done::Unchanged) => {}
            (Some(bytes), _) => write(&path, bytes)?,
            (None, _) => {
                std::fs::remove_file(&path).map_err(|e| exit::cannot_run(format!("adopt: removing {rel}: {e}")))?
            }
        }
        report.push((rel.clone(), done));
    }
    for (rel, text, _) in &merged {
        write(&dir.join(rel), text.as_bytes())?;
    }
    let files = wanted.iter().map(|(rel, bytes)| (rel.clone(), sha256(bytes))).collect();
    let record = Adopted { version: env!("CARGO_PKG_VERSION").to_string(), files };
    let text = format!("{}\n", serde_json::to_string_pretty(&record)?);
    if std::fs::read_to_string(dir.join(RECORD)).ok().as_deref() != Some(text.as_str()) {
        write(&dir.join(RECORD), text.as_bytes())?;
    }
    say(&dir, &report, &merged)?;
    Ok(Exit::Passed)
}

/// Whether `rel` is a path adopt writes whole: plain components under `xtask/`, or one of its two
/// workflows.
fn ours(rel: &str) -> bool {
    let plain = Path::new(rel).components().all(|c| matches!(c, std::path::Component::Normal(_)));
    plain
        && (rel.starts_with("xtask/")
            || rel == ".github/workflows/rehearsal-pr.yml"
            || rel == ".github/workflows/rehearsal-staging.yml")
}

/// The repository this tool was built from: its sources are what `adopt` copies.
fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in its workspace").to_path_buf()
}

/// Every file `adopt` writes whole, by path in the adopted repository: the crate (its manifest,
/// sources and its classifier crate, the runbook's bash the bench times, the unit tests' data), the workflows under names
/// of their own, and a commented `supabase/rehearsal.toml` (only when there is none).
fn whole_files(source: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let read = |rel: &str| {
        std::fs::read(source.join(rel)).map_err(|e| exit::cannot_run(format!("adopt: reading this tool's {rel}: {e}")))
    };
    out.insert("xtask/Cargo.toml".to_string(), read("xtask/Cargo.toml")?);
    out.insert("xtask/scan/Cargo.toml".to_string(), read("xtask/scan/Cargo.toml")?);
    for dir in ["xtask/src", "xtask/scan/src", "xtask/bench", "xtask/test_data"] {
        for entry in crate::walk::tree(&source.join(dir)) {
            let entry = entry.map_err(|e| exit::cannot_run(format!("adopt: reading this tool's {dir}: {e}")))?;
            if entry.file_type().is_file() {
                let rel = entry.path().strip_prefix(source).unwrap_or(entry.path()).to_string_lossy().into_owned();
                out.insert(rel.clone(), read(&rel)?);
            }
        }
    }
    for (ours, theirs) in [
        (".github/workflows/pr.yml", ".github/workflows/rehearsal-pr.yml"),
        (".github/workflows/staging.yml", ".github/workflows/rehearsal-staging.yml"),
    ] {
        out.insert(theirs.to_string(), read(ours)?);
    }
    Ok(out)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| exit::cannot_run(format!("adopt: creating {}: {e}", parent.display())))?;
    }
    std::fs::write(path, bytes).map_err(|e| exit::cannot_run(format!("adopt: writing {}: {e}", path.display())))
}

/// What it did, in a few lines, and the next command.
fn say(dir: &Path, report: &[(String, &Done)], merged: &[(String, String, bool)]) -> Result<()> {
    let count = |d: Done| report.iter().filter(|(_, done)| **done == d).count();
    let (created, updated, removed) = (count(Done::Created), count(Done::Updated), count(Done::Removed));
    let mut out = format!("adopt: {}\n", dir.display());
    if created + updated + removed == 0 && merged.is_empty() {
        out.push_str(&format!(
            "nothing to change: this version ({}) is already here, as adopt wrote it\n",
            env!("CARGO_PKG_VERSION")
        ));
    } else {
        out.push_str(&format!(
            "the xtask crate and workflows: {created} file(s) written, {updated} updated, {removed} removed, {} as they were\n",
            count(Done::Unchanged)
        ));
        for (rel, _, existed) in merged {
            out.push_str(&format!("{}: {rel}\n", if *existed { "merged into yours" } else { "written" }));
        }
        for (rel, done) in report {
            if matches!(done, Done::Created) && rel.starts_with(".github/") {
                out.push_str(&format!("workflow: {rel}\n"));
            }
        }
    }
    out.push_str(&format!(
        "next: cd {} && cargo xtask doctor && cargo xtask rls (the first run compiles the tool, about half a minute)\n",
        dir.display()
    ));
    Ok(crate::out::text(&out)?)
}
