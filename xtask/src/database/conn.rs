//! How the tool talks to the target: the DSN as given (never rewritten), what psql and the
//! Supabase CLI get on their argv (the DSN without its password, which goes in that child's
//! `PGPASSWORD`), the redactor that hides both, and the server-side timeouts.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::process::{psql, Env, Redactor};
use crate::text::dsn::Dsn;

/// `--lock-timeout` and `--statement-timeout`: set on the server, in every session and every file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    pub lock: Option<String>,
    pub statement: Option<String>,
}

impl Timeouts {
    /// `SET ...` statements for a session (`local` inside one transaction).
    pub fn set_statements(&self, local: bool) -> Vec<String> {
        let scope = if local { "set local" } else { "set" };
        let mut out = Vec::new();
        if let Some(t) = &self.lock {
            out.push(format!("{scope} lock_timeout = '{t}'"));
        }
        if let Some(t) = &self.statement {
            out.push(format!("{scope} statement_timeout = '{t}'"));
        }
        out
    }
}

/// A duration as Postgres takes it for a timeout: a positive whole number with an optional unit
/// (ms, s, min, h, d), at most Postgres's limit of 2147483647 ms. `0` would disable the timeout.
pub fn parse_timeout(value: &str) -> Result<String, String> {
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &value[digits.len()..];
    let factor: u128 = match unit {
        "" | "ms" => 1,
        "s" => 1_000,
        "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err("expected a number with a unit: 500ms, 5s, 2min, 1h".into()),
    };
    let n: u128 = digits.parse().map_err(|_| "expected a number with a unit: 500ms, 5s, 2min, 1h".to_string())?;
    if n == 0 {
        return Err("0 would disable the timeout; give a positive duration (e.g. 5s)".into());
    }
    if n.saturating_mul(factor) > i32::MAX as u128 {
        return Err("over Postgres's limit of 2147483647ms (about 24 days)".into());
    }
    Ok(value.to_string())
}

/// The connection to a target, shared by every step and child that talks to it.
#[derive(Clone, Debug)]
pub struct Conn {
    dsn: Dsn,
    pub redactor: Redactor,
    pub psql: PathBuf,
    pub workdir: PathBuf,
    pub timeouts: Timeouts,
    /// Seconds; `$REHEARSAL_CONNECT_TIMEOUT`, else 10.
    pub connect_timeout: u32,
}

impl Conn {
    pub fn new(dsn: Dsn, redactor: Redactor, psql: PathBuf, workdir: PathBuf, timeouts: Timeouts) -> Conn {
        let connect_timeout = std::env::var("REHEARSAL_CONNECT_TIMEOUT")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|v| *v > 0)
            .unwrap_or(10);
        Conn { dsn, redactor, psql, workdir, timeouts, connect_timeout }
    }

    pub fn dsn(&self) -> &Dsn {
        &self.dsn
    }

    /// The DSN for a child's argv: as given, without the password.
    pub fn argv_dsn(&self) -> String {
        self.dsn.without_password()
    }

    /// A client's environment with this connection's password and connect timeout.
    pub fn env(&self) -> Env {
        let mut env = Env::client().with("PGCONNECT_TIMEOUT", self.connect_timeout.to_string());
        if let Some(password) = self.dsn.password() {
            env = env.with("PGPASSWORD", password);
        }
        env
    }

    /// How to start a psql session on this connection.
    pub fn session_spec(&self) -> psql::Spec {
        psql::Spec {
            psql: self.psql.clone(),
            conn_arg: self.argv_dsn(),
            password: self.dsn.password().map(str::to_string),
            passfile_dir: None,
            connect_timeout: self.connect_timeout,
            cwd: self.workdir.clone(),
            redactor: self.redactor.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_timeout;

    #[test]
    fn timeouts_are_positive_and_within_postgres_limits() {
        assert_eq!(parse_timeout("5s").unwrap(), "5s");
        assert_eq!(parse_timeout("500ms").unwrap(), "500ms");
        assert!(parse_timeout("0").unwrap_err().contains("disable"));
        assert!(parse_timeout("0s").unwrap_err().contains("disable"));
        assert!(parse_timeout("25d").unwrap_err().contains("limit"));
        assert!(parse_timeout("2147483648").unwrap_err().contains("limit"));
        assert!(parse_timeout("5 s").is_err());
        assert!(parse_timeout("-1s").is_err());
    }
}
