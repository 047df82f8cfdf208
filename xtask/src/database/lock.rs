//! One rehearsal at a time per database: an advisory lock that holds whatever the pooler does.
//!
//! - The run lock ([`KEY`]) is taken with `pg_try_advisory_xact_lock` inside a transaction the lock
//!   session keeps open for the whole run. A pooler pins a server connection to a client for as
//!   long as its transaction is open, in session and in transaction mode alike, so the lock holds
//!   in both; closing the session (the end of the run, Ctrl-C, the tool killed outright: psql gets
//!   a parent-death signal and its input closes) aborts the transaction and releases it.
//! - Every working session of a run holds [`SESSIONS_KEY`] shared for as long as it lives. A new
//!   run that finds it held waits for nothing and is refused: a statement of an earlier run that
//!   is still running on the server (its tool killed) must end before another run starts.
//! - Behind a transaction-mode pooler two client connections can share one server connection,
//!   and then session state (the working sessions' settings) leaks between clients: the run is
//!   refused with the runbook's advice when the lock session lands on the working session's
//!   backend.

use anyhow::Result;

use crate::exit;
use crate::process::psql::{Session, Unit};

/// The run lock's key: "rehears1" as a bigint, the same for every run of this tool.
pub const KEY: i64 = 0x7265_6865_6172_7331;
/// The working sessions' key: "rehears2".
pub const SESSIONS_KEY: i64 = 0x7265_6865_6172_7332;

/// `pg_locks` shows a bigint advisory key as two halves.
fn halves(key: i64) -> (u32, u32) {
    ((key >> 32) as u32, key as u32)
}

/// The statement a working session runs to hold [`SESSIONS_KEY`] shared (it prints one empty row).
pub fn hold_sessions_key() -> String {
    format!("select pg_advisory_lock_shared({SESSIONS_KEY})")
}

pub struct RunLock {
    _session: Session,
}

impl RunLock {
    /// Take the run lock on `session` (started early, so its login overlaps the working
    /// session's) or refuse (exit 2), in one round
    /// trip. `work_pid` is the backend of this run's working session.
    pub fn acquire(mut session: Session, work_pid: Option<u32>, what: &str) -> Result<RunLock> {
        let (hi, lo) = halves(SESSIONS_KEY);
        let unit = Unit {
            before: format!(
                "begin\\; set local idle_in_transaction_session_timeout = 0\\; \
                 select pg_backend_pid() as rehearsal_pid, pg_try_advisory_xact_lock({KEY}) as rehearsal_lock, \
                 (select count(*) from pg_locks where locktype = 'advisory' and classid = {hi} and objid = {lo} \
                 and objsubid = 1 and granted) as rehearsal_others \\gset\n"
            ),
            body: String::new(),
            after: "\\echo @@var pid :rehearsal_pid\n\\echo @@var lock :rehearsal_lock\n\\echo @@var others :rehearsal_others"
                .into(),
        };
        let ran = session.run(&unit, None)?;
        let var = |k: &str| ran.vars.get(k).map(String::as_str).unwrap_or_default();
        if ran.ended || var("lock").is_empty() {
            return Err(exit::cannot_run(format!(
                "could not take the rehearsal lock on {what}: {}",
                ran.stray.lines().find(|l| !l.trim().is_empty()).unwrap_or("the lock session ended").trim()
            )));
        }
        if work_pid.is_some_and(|pid| var("pid") == pid.to_string()) {
            return Err(exit::cannot_run(format!(
                "{what} is a transaction-mode pooler (two connections shared one server session), where the \
                 rehearsal lock and session settings do not hold: use the session pooler (Supavisor port 5432), \
                 as the vault DSN does"
            )));
        }
        if var("lock") != "t" {
            return Err(exit::cannot_run(format!(
                "another rehearsal is in progress on {what} (it holds advisory lock {KEY}); wait for it to finish, then run again"
            )));
        }
        if var("others") != "0" {
            return Err(exit::cannot_run(format!(
                "another rehearsal's sessions are still open on {what} ({} holding advisory lock {SESSIONS_KEY}, e.g. a \
                 statement left running by a tool that was killed); wait for them to end, then run again",
                var("others")
            )));
        }
        Ok(RunLock { _session: session })
    }
}
