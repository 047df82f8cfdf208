//! Which database a run really talked to, recorded in `summary.json` so that a later `rollback`
//! can prove it is on the very database the run applied to. On Supabase every project in a
//! region shares the pooler host and the database name `postgres`: the host and the name prove
//! nothing. The server's `system_identifier` (unique per cluster, when the role may read it), the
//! database's oid, the role, and the DSN's user (`postgres.<project ref>` on Supavisor) do.

use serde::{Deserialize, Serialize};

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

/// The unit that reads the server's side of the identity into `@@var` lines.
pub fn query() -> Unit {
    Unit {
        before:
            "select oid::text as rehearsal_dboid, current_database() as rehearsal_db, current_user as rehearsal_user, \
                 has_function_privilege('pg_control_system()', 'execute') as rehearsal_can_sysid \
                 from pg_database where datname = current_database() \\gset\n\
                 \\set rehearsal_sysid ''\n\
                 \\if :rehearsal_can_sysid\n\
                 select system_identifier::text as rehearsal_sysid from pg_control_system() \\gset\n\
                 \\endif"
                .into(),
        body: String::new(),
        after: "\\echo @@var sysid :rehearsal_sysid\n\\echo @@var dboid :rehearsal_dboid\n\
                \\echo @@var db :rehearsal_db\n\\echo @@var user :rehearsal_user"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::Identity;

    fn id() -> Identity {
        Identity {
            system_identifier: Some("7312".into()),
            database_oid: "5".into(),
            database: "postgres".into(),
            current_user: "postgres".into(),
            dsn_user: Some("postgres.stagingref".into()),
            dsn_database: Some("postgres".into()),
            host: "aws-0-eu-west-1.pooler.supabase.com".into(),
            port: 5432,
        }
    }

    #[test]
    fn another_project_on_the_same_pooler_host_differs() {
        assert!(id().differences(&id()).is_empty());
        let other =
            Identity { system_identifier: Some("9001".into()), dsn_user: Some("postgres.otherref".into()), ..id() };
        let why = id().differences(&other);
        assert_eq!(why.len(), 2, "{why:?}");
        assert!(why[0].contains("system identifier was 7312, is 9001"), "{why:?}");
        assert!(why[1].contains("the DSN's user was postgres.stagingref, is postgres.otherref"), "{why:?}");
    }
}
