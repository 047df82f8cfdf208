//! Replays kept: the catalog a history makes on a throwaway cluster depends on that history's
//! files, in order, and on the local server and its template, nothing else. Each replay that
//! succeeds is kept, with its transcript, under the template cache (`replays/`), keyed by all of
//! those (and the snapshot query and this tool's version); the same history on the same server
//! reads it back instead of starting a cluster, and its log says so. The newest
//! [`KEPT`] are kept.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::prepare::tree::Migration;
use crate::tools::server::Server;

/// How many replays are kept.
const KEPT: usize = 32;

/// A replay as kept.
#[derive(Serialize, Deserialize)]
pub struct Replay {
    pub records: Vec<String>,
    /// The transcript the replay wrote.
    pub transcript: String,
    /// When it ran (RFC 3339).
    pub replayed_at: String,
}

/// Where the replay of `applied` on `server` is kept, and its key.
pub fn slot(server: &Server, applied: &[Migration]) -> Result<(PathBuf, String)> {
    let (root, template) = crate::database::local::cache(server)?;
    let mut parts: Vec<&str> = vec![env!("CARGO_PKG_VERSION"), &template, crate::runbook::snapshot::QUERY];
    for m in applied {
        parts.extend([m.sql.rel.as_str(), m.sql.script.text.as_str()]);
    }
    let key = crate::database::local::cache_key(&parts);
    Ok((root.join("replays").join(format!("{key}.json")), key))
}

/// The kept replay at `path`, if there is one that reads back.
pub fn read(path: &std::path::Path) -> Option<Replay> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Keep `replay` at `path` (whole or not at all), and only the newest [`KEPT`] beside it.
pub fn keep(path: &std::path::Path, replay: &Replay) -> Result<()> {
    let dir = path.parent().expect("under the cache");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    crate::evidence::artifacts::write_atomic(path, &serde_json::to_vec(replay)?)?;
    let mut kept: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    kept.sort();
    for (_, old) in kept.iter().rev().skip(KEPT) {
        let _ = std::fs::remove_file(old);
    }
    Ok(())
}
