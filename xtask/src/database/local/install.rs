//! A private installation of the server for each throwaway cluster, so it offers extensions as a
//! Supabase database does without touching a system file:
//!
//! - PostgreSQL finds its share and library dirs relative to the `postgres` executable it runs
//!   from. A copy of the binary in the cluster's dir, beside a share dir whose entries link to the
//!   system's and a library dir that links to the system's, is the same server with an extension
//!   dir of its own: the system's extensions plus this tool's stand-ins (pg_graphql,
//!   supabase_vault, pg_net, pgjwt, pgsodium; see `standins/`).
//! - `pgextwlist` (Debian's postgresql-<major>-pgextwlist, the extension supautils grew from) lets
//!   `postgres`, which is not a superuser, create the extensions Supabase lets it create: their
//!   scripts run as the bootstrap superuser `supabase_admin`, who owns them, as on Supabase. Its
//!   after-create scripts give `postgres` what Supabase's give it (pg_cron's schema, the
//!   postgres_fdw wrapper) and take what Supabase takes (`dblink_connect_u`).
//! - The server preloads pg_stat_statements, pgextwlist and, when installed, pg_cron (with
//!   `cron.database_name = 'postgres'`), with `wal_level = logical`, as Supabase sets them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::text::extensions::{Local, SUPABASE};
use crate::tools::server::Server;

/// The stand-ins: `(name, version, control file lines, script)`.
const STANDINS: &[(&str, &str, &str, &str)] = &[
    (
        "pg_graphql",
        "1.5.11",
        "comment = 'GraphQL support (a stand-in of the rehearsal tool: no GraphQL engine)'\nrelocatable = false\nschema = graphql\nsuperuser = true",
        include_str!("standins/pg_graphql.sql"),
    ),
    (
        "supabase_vault",
        "0.3.1",
        "comment = 'Supabase Vault (a stand-in of the rehearsal tool: secrets are encoded, not encrypted)'\nrelocatable = false\nschema = vault\nsuperuser = true",
        include_str!("standins/supabase_vault.sql"),
    ),
    (
        "pg_net",
        "0.14.0",
        "comment = 'Async HTTP (a stand-in of the rehearsal tool: requests are queued, never sent)'\nrelocatable = false\nsuperuser = true",
        include_str!("standins/pg_net.sql"),
    ),
    (
        "pgsodium",
        "3.1.8",
        "comment = 'Pgsodium (a stand-in of the rehearsal tool: the schema only, none of its functions)'\nrelocatable = false\nschema = pgsodium\nsuperuser = true",
        include_str!("standins/pgsodium.sql"),
    ),
    (
        "pgjwt",
        "0.2.0",
        "comment = 'JSON Web Token API for Postgresql (written for the rehearsal tool, over pgcrypto)'\nrelocatable = false\nrequires = 'pgcrypto'\nsuperuser = false",
        include_str!("standins/pgjwt.sql"),
    ),
];

/// What pgextwlist runs, as `supabase_admin`, after `postgres` creates an extension.
const AFTER_CREATE: &[(&str, &str)] = &[
    (
        "pg_cron",
        "grant usage on schema cron to postgres with grant option;\n\
         grant all on all functions in schema cron to postgres with grant option;\n\
         alter default privileges for user supabase_admin in schema cron grant all on sequences to postgres with grant option;\n\
         alter default privileges for user supabase_admin in schema cron grant all on tables to postgres with grant option;\n\
         alter default privileges for user supabase_admin in schema cron grant all on functions to postgres with grant option;\n\
         grant all privileges on all tables in schema cron to postgres with grant option;\n\
         revoke all on table cron.job from postgres;\n\
         grant select on table cron.job to postgres with grant option;\n",
    ),
    (
        "dblink",
        "do $$ declare f regprocedure; begin\n\
           for f in select oid::regprocedure from pg_proc where proname = 'dblink_connect_u' loop\n\
             execute format('revoke all on function %s from public, postgres', f);\n\
           end loop;\n\
         end $$;\n",
    ),
    // A foreign-data wrapper's owner must be a superuser: as Supabase's script does, `postgres` is
    // one for this statement only, inside the `create extension` transaction.
    (
        "postgres_fdw",
        "do $$ begin\n\
           if not (select rolsuper from pg_roles where rolname = 'postgres') then\n\
             alter role postgres superuser;\n\
             alter foreign data wrapper postgres_fdw owner to postgres;\n\
             alter role postgres nosuperuser;\n\
           end if;\n\
         end $$;\n",
    ),
];

/// The private installation of one cluster.
pub struct Install {
    /// The `postgres` executable to run.
    pub postgres: PathBuf,
    /// `-c name=value` settings for the server.
    pub settings: Vec<String>,
}

/// A key over everything the installation holds: the server, the packages of the extensions it
/// offers, the stand-ins and the scripts. Part of the template's cache key.
pub fn key(server: &Server) -> String {
    let mut parts = vec![server.version.clone()];
    for (name, local) in SUPABASE {
        if let Local::Package(_) = local {
            parts.push(format!("{name}={}", server.extension_version(name).unwrap_or_default()));
        }
    }
    if let Ok(meta) = std::fs::metadata(server.pkglibdir.join("pgextwlist.so")) {
        parts.push(format!("pgextwlist={}", meta.len()));
    }
    for (name, version, control, script) in STANDINS {
        parts.push(format!("{name}{version}{control}{script}"));
    }
    for (name, script) in AFTER_CREATE {
        parts.push(format!("{name}{script}"));
    }
    parts.join("\u{1f}")
}

/// Lay the installation out in `dir` (the cluster's own), readable by the server's user.
pub fn create(server: &Server, dir: &Path) -> Result<Install> {
    if dir.exists() {
        // A restart of the same cluster: lay it out afresh.
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let bindir = server.bindir.canonicalize().unwrap_or_else(|_| server.bindir.clone());
    let prefix = common_prefix(&[&bindir, &server.sharedir, &server.pkglibdir]);
    let under = |p: &Path| dir.join(p.strip_prefix(&prefix).unwrap_or(p));
    let (bin, share, lib) = (under(&bindir), under(&server.sharedir), under(&server.pkglibdir));
    for d in [&bin, &share.join("extension")] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    if let Some(parent) = lib.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // A copy, not a symlink: the server resolves symlinks to find where it was installed.
    let postgres = bin.join("postgres");
    if std::fs::hard_link(bindir.join("postgres"), &postgres).is_err() {
        std::fs::copy(bindir.join("postgres"), &postgres).context("copying the postgres executable")?;
    }
    std::os::unix::fs::symlink(&server.pkglibdir, &lib).context("linking the server's libraries")?;
    for entry in std::fs::read_dir(&server.sharedir).context("reading the server's share dir")?.flatten() {
        if entry.file_name() != "extension" {
            std::os::unix::fs::symlink(entry.path(), share.join(entry.file_name()))?;
        }
    }
    let extension = share.join("extension");
    for entry in std::fs::read_dir(server.sharedir.join("extension")).context("reading the extension dir")?.flatten() {
        std::os::unix::fs::symlink(entry.path(), extension.join(entry.file_name()))?;
    }
    for (name, version, control, script) in STANDINS {
        if extension.join(format!("{name}.control")).exists() {
            continue; // the real one is installed: it wins
        }
        std::fs::write(
            extension.join(format!("{name}.control")),
            format!("default_version = '{version}'\n{control}\n"),
        )?;
        std::fs::write(extension.join(format!("{name}--{version}.sql")), script)?;
    }
    let custom = dir.join("extension-scripts");
    for (name, script) in AFTER_CREATE {
        std::fs::create_dir_all(custom.join(name))?;
        std::fs::write(custom.join(name).join("after-create.sql"), script)?;
    }
    // Every extension Supabase offers that this server has, `postgres` may create.
    let offered: Vec<&str> = SUPABASE
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| *name != "plpgsql" && extension.join(format!("{name}.control")).exists())
        .collect();
    let mut preload = vec!["pg_stat_statements", "pgextwlist"];
    if server.extension_version("pg_cron").is_some() {
        preload.push("pg_cron");
    }
    let settings = vec![
        format!("shared_preload_libraries={}", preload.join(",")),
        format!("extwlist.extensions={}", offered.join(",")),
        format!("extwlist.custom_path={}", custom.display()),
        "cron.database_name=postgres".to_string(),
        "wal_level=logical".to_string(),
    ];
    Ok(Install { postgres, settings })
}

/// Which stand-ins this server offers in place of a real extension.
pub fn standins(server: &Server) -> Vec<&'static str> {
    STANDINS.iter().map(|s| s.0).filter(|name| server.extension_version(name).is_none()).collect()
}

fn common_prefix(paths: &[&Path]) -> PathBuf {
    let mut prefix = PathBuf::new();
    let first: Vec<_> = paths[0].components().collect();
    'outer: for (i, part) in first.iter().enumerate() {
        for p in &paths[1..] {
            if p.components().nth(i).as_ref() != Some(part) {
                break 'outer;
            }
        }
        prefix.push(part);
    }
    prefix
}
