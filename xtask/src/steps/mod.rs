//! The runbook's steps, each a function from its inputs to what it found. Steps do not call each
//! other; the commands call them in order and collect what they return.

pub mod advisors;
pub mod apply;
pub mod connectivity;
pub mod inventory;
pub mod rls;
pub mod rollback;

use std::path::PathBuf;

use crate::process::Cmd;
use crate::redact::Redactor;

/// What every step that talks to the database needs.
#[derive(Clone)]
pub struct Db {
    pub psql: PathBuf,
    /// The DSN as given; shown only through the redactor.
    pub dsn: String,
    pub redactor: Redactor,
    pub workdir: PathBuf,
    /// Server-side settings for every session, e.g. `lock_timeout = '5s'`. Sent as `SET`
    /// statements (not psql variables, which the server never sees, and not startup options, which
    /// poolers refuse), so they work through pgbouncer and Supavisor in session mode.
    pub settings: Vec<String>,
    /// `--lock-timeout`, also given to pg_dump as its lock wait.
    pub lock_timeout: Option<String>,
}

impl Db {
    /// `psql "$DATABASE_URL" -X -v ON_ERROR_STOP=1`, then a `SET` per setting, run from the workdir
    /// so psql names files as the tree does. `-X`: a user's `.psqlrc` must not change what is logged.
    pub fn psql(&self) -> Cmd {
        let mut cmd =
            Cmd::new(&self.psql).arg(&self.dsn).args(["-X", "-v", "ON_ERROR_STOP=1"]).current_dir(&self.workdir);
        for setting in &self.settings {
            cmd = cmd.arg("-c").arg(format!("set {setting}"));
        }
        cmd
    }
}
