//! Which database a run really talked to, recorded in `summary.json` so that a later `rollback`
//! can prove it is on the very database the run applied to. On Supabase every project in a
//! region shares the pooler host and the database name `postgres`: the host and the name prove
//! nothing. The server's `system_identifier` (unique per cluster, when the role may read it), the
//! database's oid, the role, and the DSN's user (`postgres.<project ref>` on Supavisor) do.

use serde::{Deserialize, Serialize};

use anyhow::Result;

use super::lock::{self, RunLock};
use super::{Kind, Target};
use crate::process::psql::{Session, Unit};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// `pg_control_system().system_identifier`; `None` when the role may not read it.
    pub system_identifier: Option<String>,
    pub database_oid: String,
    pub database: String,
    pub current_user: String,
    /// The user the DSN logs in as (`postgres.<ref>` through Supavisor).
    pub dsn_user: Option<String>,
    /// The database the DSN names (a pooler may map it to another server's database).
    #[serde(default)]
    pub dsn_database: Option<String>,
    pub host: String,
    pub port: u16,
}

impl Identity {
    /// Where `self` (recorded) and `live` differ, as sentences; empty when they are the same database.
    pub fn differences(&self, live: &Identity) -> Vec<String> {
        let mut out = Vec::new();
        match (&self.system_identifier, &live.system_identifier) {
            (Some(_), None) | (None, Some(_)) => {
                out.push("the server's system identifier cannot be compared (readable on one side only)".to_string())
            }
            _ => {}
        }
        let mut differ = |what: &str, a: &str, b: &str| {
            if a != b {
                out.push(format!("{what} was {a}, is {b}"));
            }
        };
        if let (Some(a), Some(b)) = (&self.system_identifier, &live.system_identifier) {
            differ("the server's system identifier", a, b);
        }
        differ("the database oid", &self.database_oid, &live.database_oid);
        differ("the database", &self.database, &live.database);
        differ("the role", &self.current_user, &live.current_user);
        differ(
            "the DSN's user",
            self.dsn_user.as_deref().unwrap_or("(none)"),
            live.dsn_user.as_deref().unwrap_or("(none)"),
        );
        differ(
            "the DSN's database",
            self.dsn_database.as_deref().unwrap_or("(none)"),
            live.dsn_database.as_deref().unwrap_or("(none)"),
        );
        differ("the host", &self.host, &live.host);
        differ("the port", &self.port.to_string(), &live.port.to_string());
        out
    }
}

/// The statement that reads the server's side of the identity into psql variables (with `\gset`),
/// one round trip: the system identifier where the role may read it, else empty.
pub const SELECT: &str = "select oid::text as rehearsal_dboid, current_database() as rehearsal_db, \
    current_user as rehearsal_user, case when has_function_privilege('pg_control_system()', 'execute') then \
    (pg_catalog.xpath('/row/s/text()', pg_catalog.query_to_xml(\
    'select system_identifier::text as s from pg_catalog.pg_control_system()', false, true, '')))[1]::text \
    else '' end as rehearsal_sysid from pg_catalog.pg_database where datname = current_database()";

/// What echoes the identity's variables as `@@var` lines.
pub const ECHO: &str = "\\echo @@var sysid :rehearsal_sysid\n\\echo @@var dboid :rehearsal_dboid\n\
    \\echo @@var db :rehearsal_db\n\\echo @@var user :rehearsal_user";

/// The unit that reads the server's side of the identity into `@@var` lines.
pub fn query() -> Unit {
    Unit { before: format!("{SELECT} \\gset"), body: String::new(), after: ECHO.into() }
}

impl Target {
    /// Take the rehearsal lock (staging and url; a throwaway cluster is this run's alone), then
    /// read the identity of the database; the working session takes the sessions key in the same
    /// round trip.
    pub fn lock_and_identify(&mut self) -> Result<Identity> {
        self.lock_and_identify_with(None).map(|(identity, _)| identity)
    }

    /// [`Target::lock_and_identify`], and `extra` (a query whose rows are one line each) sent in
    /// the identity's query string, so in its round trip: its lines.
    pub fn lock_and_identify_with(&mut self, extra: Option<&str>) -> Result<(Identity, Vec<String>)> {
        let mut statements: Vec<String> = Vec::new();
        if self.kind != Kind::Local && self.lock.is_none() {
            let what = self.what();
            let session = match self.lock_session.take() {
                Some(session) => session,
                None => Session::start(&self.session_spec())?,
            };
            self.lock = Some(RunLock::acquire(session, self.work_pid, &what)?);
            if self.work.as_ref().is_some_and(Session::alive) {
                // The working session, already open, holds the sessions key from now on.
                statements.push(lock::hold_sessions_key());
            }
        }
        statements.extend(extra.map(str::to_string));
        statements.push(SELECT.to_string());
        // The rows of `extra` (and the sessions key's empty one) come between two random lines.
        let line = format!("rehearsal_extra_{}", crate::process::psql::nonce());
        let unit = Unit {
            before: String::new(),
            body: format!(
                "\\pset format unaligned\n\\pset tuples_only on\n\\echo {line}\n{} \\gset\n\\echo {line}\n\
                 \\pset format aligned\n\\pset tuples_only off",
                statements.join("\\; ")
            ),
            after: ECHO.into(),
        };
        let (identity, text) = self.identity_from(&unit)?;
        let split = format!("{line}\n");
        let lines = text.split(&split).nth(1).unwrap_or_default();
        let lines = lines.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
        Ok((identity, lines))
    }

    /// The server's side of the identity of this database, with the DSN's side.
    pub fn identity(&mut self) -> Result<Identity> {
        self.identity_from(&query()).map(|(identity, _)| identity)
    }

    fn identity_from(&mut self, unit: &Unit) -> Result<(Identity, String)> {
        let ran = self.run(unit, None)?;
        let var = |k: &str| ran.vars.get(k).cloned().unwrap_or_default();
        anyhow::ensure!(
            !ran.ended && !var("dboid").is_empty(),
            "reading the database's identity: {}",
            ran.stray.trim()
        );
        let dsn = self.conn.dsn();
        let identity = Identity {
            system_identifier: Some(var("sysid")).filter(|s| !s.is_empty()),
            database_oid: var("dboid"),
            database: var("db"),
            current_user: var("user"),
            dsn_user: dsn.user().map(str::to_string),
            dsn_database: dsn.get("dbname").map(str::to_string),
            host: dsn.hosts().join(","),
            port: dsn.port().unwrap_or(5432),
        };
        Ok((identity, ran.text))
    }
}
