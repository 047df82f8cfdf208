//! One rehearsal at a time per database, on the run's one connection.
//!
//! - The run lock ([`KEY`]) is a session-level advisory lock the working session takes in its
//!   first round trip and holds for the whole run, across the transaction of each file; it goes
//!   when the session does (the end of the run, Ctrl-C, the tool killed outright: psql gets a
//!   parent-death signal and its input closes). A second run is refused at once.
//! - The working session also holds [`SESSIONS_KEY`] shared: a new run that finds it held by
//!   another session is refused, as a statement of an earlier run may still be running on the
//!   server (its tool killed) and must end first.
//! - Every file runs in a transaction whose first statement checks, on the server, that the
//!   connection it runs on holds the run lock ([`held_check`]); the session's reset between
//!   files keeps both keys. So no file ever runs where the lock is not held: not after a file
//!   released it (`pg_advisory_unlock_all()`), and not behind a transaction-mode pooler, which
//!   hands a client's transactions to any server connection: there the run stops at the first
//!   file that lands elsewhere, with the runbook's advice to use the session pooler.

use anyhow::Result;
use serde::Deserialize;

use crate::exit;

/// The run lock's key: "rehears1" as a bigint, the same for every run of this tool.
pub const KEY: i64 = 0x7265_6865_6172_7331;
/// The working sessions' key: "rehears2".
pub const SESSIONS_KEY: i64 = 0x7265_6865_6172_7332;

/// `pg_locks` shows a bigint advisory key as two halves.
pub fn halves(key: i64) -> (u32, u32) {
    ((key >> 32) as u32, key as u32)
}

/// Whether this backend holds `key` in `mode` (`ExclusiveLock`, `ShareLock`), as SQL.
pub fn held(key: i64, mode: &str) -> String {
    let (hi, lo) = halves(key);
    format!(
        "exists (select 1 from pg_catalog.pg_locks where locktype = 'advisory' and pid = pg_catalog.pg_backend_pid() \
         and classid = {hi} and objid = {lo} and objsubid = 1 and mode = '{mode}' and granted)"
    )
}

/// The session's values and the lock, as one JSON line ([`Opened`]): a read of the first round
/// trip. With `lock`, the run lock is tried and, when it was got, the sessions key taken; `others`
/// counts the other sessions that hold the sessions key.
pub fn opening_read(lock: bool, identity: &str) -> String {
    let (hi, lo) = halves(SESSIONS_KEY);
    let (take, shared) = if lock {
        (
            format!("pg_catalog.pg_try_advisory_lock({KEY})"),
            format!("case when l.got then (select true from pg_catalog.pg_advisory_lock_shared({SESSIONS_KEY}) s) end"),
        )
    } else {
        ("null::boolean".to_string(), "null::boolean".to_string())
    };
    format!(
        "select pg_catalog.json_build_object('pid', pg_catalog.pg_backend_pid(), 'scs', \
         pg_catalog.current_setting('standard_conforming_strings'), 'lock', l.got, 'shared', {shared}, 'others', \
         (select count(*) from pg_catalog.pg_locks where locktype = 'advisory' and classid = {hi} and objid = {lo} \
         and objsubid = 1 and granted and pid <> pg_catalog.pg_backend_pid()), 'identity', i)::text \
         from (select {take} as got) l, ({identity}) i"
    )
}

/// What the first round trip's [`opening_read`] said.
#[derive(Debug, Deserialize)]
pub struct Opened {
    pub pid: u32,
    pub scs: String,
    /// Whether the run lock was taken (`None`: not tried).
    pub lock: Option<bool>,
    pub others: i64,
    pub identity: serde_json::Value,
}

impl Opened {
    pub fn parse(line: &str) -> Option<Opened> {
        serde_json::from_str(line).ok()
    }

    /// The run lock taken, or why not (exit 2).
    pub fn locked(&self, what: &str) -> Result<()> {
        if self.lock != Some(true) {
            return Err(exit::cannot_run(format!(
                "another rehearsal is in progress on {what} (it holds advisory lock {KEY}); wait for it to finish, then run again"
            )));
        }
        if self.others != 0 {
            return Err(exit::cannot_run(format!(
                "another rehearsal's sessions are still open on {what} ({} holding advisory lock {SESSIONS_KEY}, e.g. a \
                 statement left running by a tool that was killed); wait for them to end, then run again",
                self.others
            )));
        }
        Ok(())
    }
}

/// The columns a session that reconnects adds to its first select: the run lock tried again
/// (`rehearsal_relock` says whether it was got back), and the sessions key.
pub fn relock() -> String {
    format!(
        ", pg_catalog.pg_try_advisory_lock({KEY}) as rehearsal_relock, pg_catalog.pg_advisory_lock_shared({SESSIONS_KEY}) as rehearsal_shared"
    )
}

/// A PL/pgSQL statement that raises `{tag}` and the backend's pid when the connection it runs on
/// does not hold the run lock: each file's transaction starts with it.
pub fn held_check(tag: &str) -> String {
    format!(
        " if not {} then raise exception '{tag}%', pg_catalog.pg_backend_pid(); end if;",
        held(KEY, "ExclusiveLock")
    )
}

/// The text of the error [`held_check`] raises in a file run outside a chain.
pub const LOST: &str = "rehearsal_lock_not_held:";

/// Why a file did not run: its connection (backend `pid`) did not hold the run lock. `work_pid`:
/// the backend that took it.
pub fn lost(file: &str, pid: Option<u32>, work_pid: Option<u32>, what: &str) -> anyhow::Error {
    let why = match (pid, work_pid) {
        (Some(pid), Some(work)) if pid != work => format!(
            "its transaction ran on another server connection (backend {pid}) than the one that holds the rehearsal lock \
             (backend {work}): {what} is a transaction-mode pooler, where the lock and session settings do not hold; use \
             the session pooler (Supavisor port 5432), as the vault DSN does"
        ),
        _ => format!(
            "the session no longer holds the rehearsal lock on {what} (a file released it with pg_advisory_unlock_all() or \
             DISCARD ALL, and another run took it); check the target with `cargo xtask inventory`, then run again"
        ),
    };
    exit::cannot_run(format!("{file} was not run: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_opening_read_reads_back() {
        let o = Opened::parse(r#"{"pid" : 42, "scs" : "on", "lock" : true, "shared" : true, "others" : 0, "identity" : {"db" : "postgres"}}"#)
            .unwrap();
        assert_eq!((o.pid, o.scs.as_str(), o.lock), (42, "on", Some(true)));
        assert!(o.locked("h/db").is_ok());
        let taken = Opened { lock: Some(false), ..o };
        assert!(format!("{:#}", taken.locked("h/db").unwrap_err()).contains("another rehearsal is in progress"));
        let (hi, lo) = halves(KEY);
        assert!(held(KEY, "ExclusiveLock").contains(&format!("classid = {hi} and objid = {lo}")));
    }

    #[test]
    fn a_lost_lock_says_which_case_it_is() {
        let other = format!("{:#}", lost("a.sql", Some(7), Some(8), "h/db"));
        assert!(other.contains("transaction-mode pooler") && other.contains("a.sql was not run"), "{other}");
        let released = format!("{:#}", lost("a.sql", Some(8), Some(8), "h/db"));
        assert!(released.contains("pg_advisory_unlock_all()"), "{released}");
    }
}
