//! The target and its guards: `local` (a throwaway cluster), `staging` (the DSN from the vault
//! files) or `url` (`--db-url` or `$DATABASE_URL`). An open [`Target`] owns the DSN, the rehearsal
//! lock and the run's one connection to the database: the working session (one psql, fed over
//! stdin, reopened only when a file ends it), which holds the lock too. Staging and url DSNs pass
//! the guards of [`guard`] first and are used as given.

pub mod conn;
pub mod guard;
pub mod identity;
pub mod local;
pub mod lock;
pub mod reads;
mod session;

pub use session::FirstTrip;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::exit;
use crate::process::psql::Session;
use crate::process::Redactor;
use crate::text::config::Config;
use crate::text::dsn::Dsn;
use crate::text::findings::{Place, TargetKind};
use crate::text::vault;
use crate::tools::server::Server;
use conn::{Conn, Timeouts};
use identity::Identity;
use local::{LocalCluster, Scratch};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Local,
    Staging,
    Url,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Local => "local",
            Kind::Staging => "staging",
            Kind::Url => "url",
        }
    }

    /// Where findings on this target happened, for their hints.
    pub fn place(self) -> Place {
        Place::on(match self {
            Kind::Local => TargetKind::Local,
            _ => TargetKind::Remote,
        })
    }
}

/// Which target, and the reason the first line of output gives. A given `--db-url` means `url`.
pub fn choose(flag: Option<&str>, db_url_given: bool, workdir: &Path, config: &Config) -> Result<(Kind, String)> {
    match (flag, db_url_given) {
        (Some("local"), true) => Err(exit::cannot_run(
            "--db-url is for --target url; drop it to rehearse on a throwaway local cluster",
        )),
        (Some("staging"), true) => Err(exit::cannot_run(
            "--target staging reads the DSN from the staging vault files; use --target url for the DSN given with --db-url",
        )),
        (Some("local"), false) => Ok((Kind::Local, "--target local".into())),
        (Some("staging"), false) => Ok((Kind::Staging, "--target staging".into())),
        (Some(_), _) => Ok((Kind::Url, "--target url".into())),
        (None, true) => Ok((Kind::Url, "--db-url given".into())),
        (None, false) => {
            let found: Vec<&String> = config.env_files.iter().filter(|f| workdir.join(f).is_file()).collect();
            if found.is_empty() {
                Ok((Kind::Local, format!("no staging vault files ({}) under the workdir", config.env_files.join(", "))))
            } else {
                let names: Vec<&str> = found.iter().map(|f| f.as_str()).collect();
                Ok((Kind::Staging, format!("staging vault files found: {}", names.join(", "))))
            }
        }
    }
}

/// What opening a target needs.
pub struct Opening<'a> {
    pub kind: Kind,
    pub workdir: &'a Path,
    pub config: &'a Config,
    pub db_url: Option<&'a str>,
    pub superuser_postgres: bool,
    pub timeouts: Timeouts,
    pub psql: PathBuf,
    /// The server binaries, for `local`.
    pub server: Option<Server>,
}

/// The kind, host and database of a target, for summaries (never a password).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Described {
    pub kind: Kind,
    pub host: String,
    pub database: String,
}

/// The run lock ([`lock`]) as this run stands with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RunLock {
    /// Not taken (local, and the read-only commands).
    No,
    /// Taken in the session's first round trip.
    Wanted,
    Held,
}

/// An open target. Field order is drop order: the session ends (and with it the lock) before the
/// local cluster stops.
pub struct Target {
    pub kind: Kind,
    work: Option<Session>,
    /// The working session has had its first round trip (its timeouts set).
    set_up: bool,
    lock: RunLock,
    /// The database's identity, read in the session's first round trip.
    identity: Option<Identity>,
    conn: Conn,
    /// What the working session runs now, for the in-flight line.
    activity: crate::out::Activity,
    work_pid: Option<u32>,
    server_version: Option<String>,
    /// psql shows each result of a query string of several statements (15 and later).
    chains: bool,
    scratch: Scratch,
    cluster: Option<LocalCluster>,
    /// `[lock_risk]`: from how many rows a measured lock risk is an error.
    lock_risk_error_from: Option<u64>,
    /// Tables' rows counted exactly before the apply (step 3), for the impact's `rows`.
    exact_rows: std::collections::BTreeMap<String, u64>,
}

impl Target {
    /// Open the target: start the local cluster, or read and guard the DSN. Nothing connects yet.
    pub fn open(o: Opening<'_>) -> Result<Target> {
        if o.superuser_postgres && o.kind != Kind::Local {
            return Err(exit::cannot_run(
                "--superuser-postgres changes the throwaway local cluster only; drop it for --target staging or url",
            ));
        }
        let scratch = local::scratch_dir("rehearsal-work-")?;
        let chains = crate::tools::client_chains(&crate::tools::version_line(&o.psql));
        let (conn, cluster) = match o.kind {
            Kind::Local => {
                let server = o.server.as_ref().expect("the local target comes with its server");
                let cluster = LocalCluster::start(server)?;
                if o.superuser_postgres {
                    cluster.make_postgres_superuser()?;
                }
                let dsn = Dsn::parse(&cluster.dsn()).map_err(exit::cannot_run)?;
                (Conn::new(dsn, Redactor::new(), o.psql, o.workdir.to_path_buf(), o.timeouts), Some(cluster))
            }
            Kind::Staging => {
                // Each vault file as the runbook sources it, in order. Only the DSN is needed: the
                // service key, when its file is there, is read so that it is redacted everywhere.
                let present: Vec<String> =
                    o.config.env_files.iter().filter(|f| o.workdir.join(f).is_file()).cloned().collect();
                let vars = vault::read(o.workdir, &present)?;
                let first = o.config.env_files.first().map_or("the vault files", String::as_str);
                let dsn = vars.get("DATABASE_URL").filter(|v| !v.is_empty()).cloned().ok_or_else(|| {
                    if present.iter().any(|f| f == first) {
                        exit::cannot_run(format!("reading {first}: no DATABASE_URL (source of the pooler DSN)"))
                    } else {
                        exit::cannot_run(format!(
                            "reading {first}: No such file or directory (the staging vault file; fetch it from the vault)"
                        ))
                    }
                })?;
                let key = vars.get("SUPABASE_SERVICE_KEY").filter(|k| !k.is_empty());
                (guarded(&dsn, key.map(String::as_str), o.config, "the DSN from the staging vault", &o)?, None)
            }
            Kind::Url => {
                let dsn = o
                    .db_url
                    .map(str::to_string)
                    .or_else(|| std::env::var("DATABASE_URL").ok())
                    .filter(|d| !d.is_empty())
                    .ok_or_else(|| exit::cannot_run("--target url needs --db-url URL or $DATABASE_URL"))?;
                let key = std::env::var("SUPABASE_SERVICE_KEY").ok().filter(|k| !k.is_empty());
                (guarded(&dsn, key.as_deref(), o.config, "the DSN", &o)?, None)
            }
        };
        let mut target = Target {
            kind: o.kind,
            work: None,
            set_up: false,
            lock: RunLock::No,
            identity: None,
            conn,
            activity: Default::default(),
            work_pid: None,
            server_version: None,
            chains,
            scratch,
            cluster,
            lock_risk_error_from: o.config.lock_risk_error_from,
            exact_rows: Default::default(),
        };
        if target.kind != Kind::Local {
            // psql connects as it starts: its TLS and SCRAM round trips overlap what the run does
            // before its first query.
            target.work = Some(Session::start(&target.session_spec())?);
        }
        Ok(target)
    }

    /// Rows counted exactly before the apply, by table (`public.orders`), once: the first file
    /// applied after the count takes them.
    pub fn take_exact_rows(&mut self) -> std::collections::BTreeMap<String, u64> {
        std::mem::take(&mut self.exact_rows)
    }

    pub fn set_exact_rows(&mut self, rows: std::collections::BTreeMap<String, u64>) {
        self.exact_rows = rows;
    }

    /// `[lock_risk] severity = "error"`: from how many rows (estimated) a `lock_risk` is an error.
    pub fn lock_risk_error_from(&self) -> Option<u64> {
        self.lock_risk_error_from
    }

    /// Whether files may go several statements to a round trip ([`crate::runbook::chain`]): psql
    /// 15 or later, and a server whose `standard_conforming_strings` is on (read when the working
    /// session starts). Else each runs statement by statement, as psql -f runs it.
    pub fn chains(&self) -> bool {
        self.chains
    }

    pub fn conn(&self) -> &Conn {
        &self.conn
    }

    /// Say what the working session runs now (`supabase/migrations/x.sql:12`), for the in-flight
    /// line; the handle lets a transcript's reader update it as the statements go by.
    pub fn activity(&self) -> crate::out::Activity {
        self.activity.clone()
    }

    pub fn doing(&self, what: &str) {
        if let Ok(mut a) = self.activity.lock() {
            *a = what.to_string();
        }
    }

    pub fn redactor(&self) -> &Redactor {
        &self.conn.redactor
    }

    pub fn workdir(&self) -> &Path {
        &self.conn.workdir
    }

    /// A private directory for files the sessions read (batches of a migration and its history row).
    pub fn scratch(&self) -> &Path {
        self.scratch.path()
    }

    pub fn cluster(&self) -> Option<&LocalCluster> {
        self.cluster.as_ref()
    }

    pub fn describe(&self) -> Described {
        let dsn = self.conn.dsn();
        Described { kind: self.kind, host: dsn.hosts().join(","), database: dsn.database() }
    }

    /// `host/database`, as messages name the target.
    pub fn what(&self) -> String {
        let d = self.describe();
        format!("{}/{}", d.host, d.database)
    }

    /// The server's version, once a session has connected.
    pub fn server_version(&self) -> Option<&str> {
        self.server_version.as_deref()
    }
}

fn guarded(dsn: &str, key: Option<&str>, config: &Config, what: &str, o: &Opening<'_>) -> Result<Conn> {
    let mut redactor = Redactor::new().with_dsn(dsn);
    if let Some(key) = key {
        redactor = redactor.with_secret(key);
    }
    let parsed = Dsn::parse(dsn)
        .map_err(|why| exit::cannot_run(format!("{what} is not a valid DSN: {}", redactor.redact(&why))))?;
    let refusals = guard::refusals(&parsed, config);
    if !refusals.is_empty() {
        let list: Vec<String> = refusals.iter().map(|r| format!("  - {}", redactor.redact(r))).collect();
        return Err(exit::cannot_run(format!(
            "refusing {what} (host {}):\n{}",
            redactor.redact(&parsed.hosts().join(",")),
            list.join("\n")
        )));
    }
    Ok(Conn::new(parsed, redactor, o.psql.clone(), o.workdir.to_path_buf(), o.timeouts.clone()))
}
