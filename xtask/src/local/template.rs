//! The cached template: a data directory already initialised and bootstrapped with the Supabase
//! surface (`bootstrap.sql`), copied for each throwaway cluster. Copying ~40 MB takes a fraction
//! of what initdb and the bootstrap take, which is how a cluster comes up in well under a second.
//!
//! The cache lives in `$REHEARSAL_PG_CACHE`, else `$XDG_CACHE_HOME/rehearsal-xtask`, else
//! `~/.cache/rehearsal-xtask`. Its key covers the server version, the pgTAP version, the bootstrap
//! SQL, initdb's flags and the server's user, so a change to any of them builds a new template. Two tools building
//! at once each build their own and the first atomic rename wins.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::binaries::{find_client, Server};
use super::postmaster::{initdb, Postmaster, INITDB_ARGS};
use super::rundir::{copy_tree, RunAs, RunDir};
use crate::exit;
use crate::process::Cmd;
use crate::redact::Redactor;

pub const BOOTSTRAP_SQL: &str = include_str!("bootstrap.sql");

/// The template's data dir, building it on first use.
pub fn ensure(server: &Server, run_as: &RunAs) -> Result<PathBuf> {
    let root = cache_root();
    let key = fnv1a(&[
        server.version.as_str(),
        server.pgtap_version().unwrap_or_default().as_str(),
        BOOTSTRAP_SQL,
        &INITDB_ARGS.join(" "),
        &run_as.key(),
    ]);
    let template = root.join(format!("pg{}-{key:016x}", server.major));
    if template.join("PG_VERSION").is_file() {
        return Ok(template);
    }
    eprintln!("building the local cluster template (once per PostgreSQL and pgTAP version) in {}", root.display());
    std::fs::create_dir_all(&root).with_context(|| format!("creating the template cache {}", root.display()))?;
    let built = build(server, run_as)?;
    let staging = root.join(format!(".building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    copy_tree(&built.data(), &staging, &RunAs(None))
        .with_context(|| format!("saving the cluster template to {}", staging.display()))?;
    if std::fs::rename(&staging, &template).is_err() {
        // Another run finished first; its template is as good as ours.
        let _ = std::fs::remove_dir_all(&staging);
    }
    if !template.join("PG_VERSION").is_file() {
        anyhow::bail!("the cluster template {} was not saved", template.display());
    }
    Ok(template)
}

/// initdb, start, run the bootstrap as the superuser, shut down cleanly.
fn build(server: &Server, run_as: &RunAs) -> Result<RunDir> {
    let rundir = RunDir::create(run_as)?;
    initdb(server, &rundir, run_as)?;
    let postmaster = Postmaster::start(server, &rundir, run_as)?;
    let dsn = format!("postgresql://{}@127.0.0.1:{}/postgres", super::ADMIN_ROLE, postmaster.port);
    let out = Cmd::new(find_client("psql")?)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &dsn, "-f", "-"])
        .stdin(BOOTSTRAP_SQL)
        .run(&Redactor::new(), None)?;
    if !out.success() {
        return Err(exit::cannot_run(format!(
            "bootstrapping the Supabase surface on the throwaway cluster failed:\n{}",
            out.text.trim_end()
        )));
    }
    postmaster.stop_clean()?;
    Ok(rundir)
}

fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("REHEARSAL_PG_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("rehearsal-xtask")
}

/// FNV-1a: a stable hash for the cache key (std's hasher may change between Rust releases).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}
