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

use xshell::{cmd, Shell};

use super::postmaster::{initdb, Postmaster, INITDB_ARGS};
use super::rundir::{copy_tree, RunAs, RunDir};
use crate::exit;
use crate::process::{self, Env};
use crate::tools::find_client;
use crate::tools::server::Server;

pub const BOOTSTRAP_SQL: &str = include_str!("bootstrap.sql");

/// The key of the template `server` makes, over every input of it.
pub fn key(server: &Server, run_as: &RunAs) -> String {
    cache_key(&[
        server.version.as_str(),
        server.pgtap_version().unwrap_or_default().as_str(),
        &super::install::key(server),
        BOOTSTRAP_SQL,
        &INITDB_ARGS.join(" "),
        &run_as.key(),
    ])
}

/// The template's data dir, building it on first use.
pub fn ensure(server: &Server, run_as: &RunAs) -> Result<PathBuf> {
    let root = cache_root();
    let key = key(server, run_as);
    let template = root.join(format!("pg{}-{key}", server.major));
    if template.join("PG_VERSION").is_file() {
        return Ok(template);
    }
    eprintln!("building the local cluster template (once per PostgreSQL and pgTAP version) in {}", root.display());
    std::fs::create_dir_all(&root).with_context(|| format!("creating the template cache {}", root.display()))?;
    let built = build(server, run_as)?;
    let staging = root.join(format!(".building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging).with_context(|| format!("creating {}", staging.display()))?;
    copy_tree(&built.data(), &staging)
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
pub(super) fn build(server: &Server, run_as: &RunAs) -> Result<RunDir> {
    let rundir = RunDir::create(run_as)?;
    rundir.hand_over_data()?;
    initdb(server, &rundir, run_as)?;
    let postmaster = Postmaster::start(server, &rundir, run_as)?;
    let dsn = format!("postgresql://{}@127.0.0.1:{}/postgres", super::ADMIN_ROLE, postmaster.port);
    let (sh, psql) = (Shell::new()?, find_client("psql")?);
    let out = process::output_with_input(
        cmd!(sh, "{psql} -X -q -v ON_ERROR_STOP=1 -d {dsn} -f -"),
        Env::client(),
        Some(BOOTSTRAP_SQL.as_bytes().to_vec()),
    )?;
    if !out.success() {
        return Err(exit::cannot_run(format!(
            "bootstrapping the Supabase surface on the throwaway cluster failed:\n{}{}",
            out.stdout,
            out.stderr.trim_end()
        )));
    }
    postmaster.stop_clean()?;
    Ok(rundir)
}

pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("REHEARSAL_PG_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("rehearsal-xtask")
}

/// A stable key over `parts` (sha256, the first 16 hex digits).
pub fn cache_key(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}
