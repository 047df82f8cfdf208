//! The `local` target: a throwaway PostgreSQL cluster that looks like a Supabase database to
//! migrations and pgTAP tests, with no Docker.
//!
//! A cluster is a copy of a cached, already bootstrapped data directory ([`template`]) started on a
//! free 127.0.0.1 port with its socket in its own directory. [`LocalCluster`]'s `Drop` stops the
//! server and deletes the directory, so success, error, panic and Ctrl-C (see
//! [`crate::process::signals`]) all clean up. As root, the server runs as an unprivileged user
//! (`postgres`, else `nobody`), because initdb and postgres refuse to run as root.

pub mod install;
pub mod pooler;
mod postmaster;
mod rundir;
mod template;

use std::path::Path;

use anyhow::Result;
use xshell::{cmd, Shell};

use crate::process::{self, Env};
use crate::tools::server::Server;
use postmaster::Postmaster;
pub use rundir::{scratch_dir, Scratch};
use rundir::{RunAs, RunDir};
pub use template::cache_key;

/// The bootstrap superuser: owns the Supabase surface and the extensions, as on Supabase.
pub const ADMIN_ROLE: &str = "supabase_admin";
/// The role migrations and tests run as; not a superuser, as on Supabase.
pub const APP_ROLE: &str = "postgres";

/// A running throwaway cluster. Dropping it stops the server and removes its directory.
pub struct LocalCluster {
    // Field order is drop order: stop the server before its directory goes.
    postmaster: Postmaster,
    rundir: RunDir,
    server: Server,
}

impl LocalCluster {
    /// Start a cluster with the Supabase surface, building the cached template first if needed.
    pub fn start(server: &Server) -> Result<LocalCluster> {
        let run_as = RunAs::detect()?;
        rundir::sweep_stale();
        let template = template::ensure(server, &run_as)?;
        let rundir = RunDir::create(&run_as)?;
        rundir.copy_data_from(&template)?;
        let postmaster = Postmaster::start(server, &rundir, &run_as)?;
        Ok(LocalCluster { postmaster, rundir, server: server.clone() })
    }

    /// A cluster of its own, not a copy of the cached template: its own `initdb`, so its own system
    /// identifier (as two Supabase projects have). Slower; for tests that need two distinct servers.
    pub fn start_uncached(server: &Server) -> Result<LocalCluster> {
        let run_as = RunAs::detect()?;
        let rundir = template::build(server, &run_as)?;
        let postmaster = Postmaster::start(server, &rundir, &run_as)?;
        Ok(LocalCluster { postmaster, rundir, server: server.clone() })
    }

    /// Make `postgres` a superuser, for projects written against the old Supabase images
    /// (`--superuser-postgres`).
    pub fn make_postgres_superuser(&self) -> Result<()> {
        self.admin_sql("alter role postgres superuser")
    }

    /// Run SQL as the bootstrap superuser.
    pub fn admin_sql(&self, sql: &str) -> Result<()> {
        let (sh, psql, dsn) = (Shell::new()?, crate::tools::find_client("psql")?, self.admin_dsn());
        let out = process::output(cmd!(sh, "{psql} -X -q -v ON_ERROR_STOP=1 -d {dsn} -c {sql}"), Env::client())?;
        anyhow::ensure!(out.success(), "running `{sql}` on the throwaway cluster: {}{}", out.stdout, out.stderr);
        Ok(())
    }

    /// The DSN migrations and tests use: role `postgres`, over TCP on 127.0.0.1.
    pub fn dsn(&self) -> String {
        self.dsn_as(APP_ROLE)
    }

    /// The DSN of the bootstrap superuser.
    pub fn admin_dsn(&self) -> String {
        self.dsn_as(ADMIN_ROLE)
    }

    fn dsn_as(&self, role: &str) -> String {
        // sslmode=disable: the Supabase CLI insists on TLS unless told the server has none.
        format!("postgresql://{role}@127.0.0.1:{}/postgres?sslmode=disable", self.postmaster.port)
    }

    pub fn port(&self) -> u16 {
        self.postmaster.port
    }

    pub fn dir(&self) -> &Path {
        self.rundir.path()
    }

    pub fn server(&self) -> &Server {
        &self.server
    }
}

/// Where the tool keeps what it builds once per server (the cluster template), and the key of
/// the template `server` makes: what a cached result of a throwaway cluster depends on.
pub fn cache(server: &Server) -> Result<(std::path::PathBuf, String)> {
    Ok((template::cache_root(), template::key(server, &RunAs::detect()?)))
}
