//! Which database a run really talked to, recorded in `summary.json` so that a later `rollback`
//! can prove it is on the very database the run applied to. On Supabase every project in a
//! region shares the pooler host and the database name `postgres`: the host and the name prove
//! nothing. The server's `system_identifier` (unique per cluster, when the role may read it), the
//! database's oid, the role, and the DSN's user (`postgres.<project ref>` on Supavisor) do.

use serde::{Deserialize, Serialize};

use anyhow::Result;

use super::Target;
use crate::process::psql::Unit;

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
    /// The identity of the database: as read in the session's first round trip, else read now.
    pub fn identity(&mut self) -> Result<Identity> {
        if let Some(identity) = self.known_identity() {
            return Ok(identity.clone());
        }
        let ran = self.run(&query(), None)?;
        let var = |k: &str| ran.vars.get(k).cloned().unwrap_or_default();
        anyhow::ensure!(
            !ran.ended && !var("dboid").is_empty(),
            "reading the database's identity: {}",
            ran.stray.trim()
        );
        Ok(self.with_dsn(var("sysid"), var("dboid"), var("db"), var("user")))
    }

    /// The identity from the first round trip's JSON of [`SELECT`]'s row.
    pub(super) fn identity_of(&self, row: &serde_json::Value) -> Identity {
        let var = |k: &str| row[format!("rehearsal_{k}")].as_str().unwrap_or_default().to_string();
        self.with_dsn(var("sysid"), var("dboid"), var("db"), var("user"))
    }

    /// The server's side of the identity with the DSN's side.
    fn with_dsn(&self, sysid: String, dboid: String, db: String, user: String) -> Identity {
        let dsn = self.conn().dsn();
        Identity {
            system_identifier: Some(sysid).filter(|s| !s.is_empty()),
            database_oid: dboid,
            database: db,
            current_user: user,
            dsn_user: dsn.user().map(str::to_string),
            dsn_database: dsn.get("dbname").map(str::to_string),
            host: dsn.hosts().join(","),
            port: dsn.port().unwrap_or(5432),
        }
    }
}
