//! The run's one connection to the target: the working session (one psql, fed over stdin), how it
//! opens (its first round trip: the timeouts, the connectivity check, the identity, the run lock
//! and the reads of step 3, in one query string), how it reopens after a file ended it (the lock
//! taken again), and how it lets the lock go at the end.

use std::time::Duration;

use anyhow::Result;

use super::identity::{self, Identity};
use super::reads::Reads;
use super::{lock, Kind, RunLock, Target};
use crate::exit;
use crate::process::psql::{self, Ran, Session, Unit};
use crate::process::signals::Watchdog;
use crate::process::Tee;

impl Target {
    /// Run a unit on the working session, opening (or reopening) it first. A fresh session first
    /// sets the timeouts on the server and, while this run holds the lock, takes it again.
    pub fn run(&mut self, unit: &Unit, tee: Option<&mut dyn Tee>) -> Result<Ran> {
        let fresh = self.open_session()?;
        let mut unit = unit.clone();
        if fresh {
            unit.before = format!("{}\n{}", self.setup(), unit.before);
        }
        let ran = self.send(&unit, tee)?;
        if fresh {
            let var = |k: &str| ran.vars.get(k).map(String::as_str);
            self.opened(var("pid").and_then(|p| p.parse().ok()), var("server"), var("scs"));
            if self.lock == RunLock::Held && var("relock").is_some_and(|v| v != "t") {
                return Err(exit::cannot_run(format!(
                    "the connection to {} was lost and, on reconnecting, the rehearsal lock was held by another run: \
                     stopped; check the target with `cargo xtask inventory`",
                    self.what()
                )));
            }
        }
        Ok(ran)
    }

    /// A session to send to, started if there is none alive: whether it still needs its first
    /// round trip (the timeouts), which the caller sends now.
    fn open_session(&mut self) -> Result<bool> {
        if !self.work.as_ref().is_some_and(Session::alive) {
            self.work = Some(Session::start(&self.session_spec())?);
            self.set_up = false;
        }
        Ok(!std::mem::replace(&mut self.set_up, true))
    }

    /// The unit on the open session, with the in-flight line.
    fn send(&mut self, unit: &Unit, tee: Option<&mut dyn Tee>) -> Result<Ran> {
        let session = self.work.as_mut().expect("opened by the caller");
        let in_flight = crate::out::InFlight::start(self.activity.clone());
        let ran = session.run(unit, tee);
        drop(in_flight);
        self.doing("");
        ran
    }

    /// What a fresh session said of itself: its backend, the server's version, and
    /// `standard_conforming_strings`.
    fn opened(&mut self, pid: Option<u32>, server: Option<&str>, scs: Option<&str>) {
        self.work_pid = pid;
        if let Some(v) = server.filter(|v| !v.is_empty()) {
            self.server_version = Some(v.to_string());
        }
        // A server whose default is `standard_conforming_strings = off` makes psql read `\` in a
        // plain string as an escape: the tool's lexer assumes on, so files go as psql -f sends them.
        if scs == Some("off") && self.chains {
            self.chains = false;
            crate::progress!(
                "the server's standard_conforming_strings is off: each file runs statement by statement, as psql -f runs it"
            );
        }
    }

    /// The session's first round trip, one query string: the timeouts, `query` (its output to
    /// `tee`, as `psql -c` prints it), the session's own values, the database's identity and,
    /// when this run takes it, the run lock ([`lock::opening_read`]), then `reads` in one
    /// read-only transaction ([`reads`]): each read's lines, `None` for one that did not come
    /// back. On a session already open, the same without the timeouts.
    pub fn open_with(
        &mut self,
        query: &str,
        reads: &[String],
        tee: Option<&mut dyn Tee>,
        limit: Duration,
    ) -> Result<FirstTrip> {
        let fresh = self.open_session()?;
        let lock = self.lock == RunLock::Wanted;
        let mut all = vec![lock::opening_read(lock, identity::SELECT)];
        all.extend(reads.iter().cloned());
        let reads = Reads::new(&all);
        let mut statements = reads.statements();
        let first = statements.remove(0);
        let sets = if fresh { self.conn.timeouts.set_statements(false) } else { Vec::new() };
        let sets =
            if sets.is_empty() { String::new() } else { format!("begin\\; {}\\; commit\\; ", sets.join("\\; ")) };
        let rest = if statements.is_empty() {
            String::new()
        } else {
            format!(
                "\\; begin read only\\; set local search_path = pg_catalog\\; {}\\; commit",
                statements.join("\\; ")
            )
        };
        let query = query.trim_end().trim_end_matches(';');
        let unit = Unit {
            before: "\\set QUIET on".into(),
            body: format!("{sets}{query}\\; {first}{rest};"),
            after: "\\if :ERROR\nrollback;\n\\endif\n\\set QUIET off\n\\echo @@var server :SERVER_VERSION_NAME".into(),
        };
        let mut capture = reads.capture(tee);
        // The bound is for a server that takes the connection and never answers: once it has
        // answered (the connectivity query's table), the reads run as long as they need (each
        // statement has its statement timeout).
        let pids = self.work.as_ref().expect("opened above").pids();
        let mut answered = Answered { inner: &mut capture, watchdog: Some(Watchdog::arm(pids, limit)) };
        let ran = self.send(&unit, Some(&mut answered))?;
        let fired = answered.watchdog.as_ref().is_some_and(Watchdog::fired);
        drop(answered);
        let captured = capture.finish();
        let mut parts = captured.parts;
        let opened = parts.remove(0).and_then(|lines| lines.first().and_then(|l| lock::Opened::parse(l)));
        if let Some(o) = &opened {
            self.opened(Some(o.pid), ran.vars.get("server").map(String::as_str), Some(&o.scs));
            self.identity = Some(self.identity_of(&o.identity));
            if lock && o.locked(&self.what()).is_ok() {
                self.lock = RunLock::Held;
            }
        }
        Ok(FirstTrip { ran, text: captured.text, among: captured.among, timed_out: fired, reads: parts, opened })
    }

    /// The run is done with the database: a session that holds the run lock lets it go with
    /// `DISCARD ALL` (what a pooler's reset does; behind a transaction-mode pooler nothing of the
    /// run's session then stays on the server connection), and psql's input ends. The caller goes
    /// on meanwhile (the round trip overlaps writing the record); dropping the target waits.
    pub fn release(&mut self) {
        if let Some(work) = self.work.as_mut().filter(|w| w.alive()) {
            // Also when the lock was wanted and not got: the sessions key may be held.
            work.close_with(if self.lock != RunLock::No { "discard all;\n" } else { "" });
        }
    }

    /// This run takes the run lock, in the session's first round trip (staging and url).
    pub fn want_lock(&mut self) {
        if self.kind != Kind::Local && self.lock == RunLock::No {
            self.lock = RunLock::Wanted;
        }
    }

    /// Whether the session holds the run lock: each file checks it, and its reset keeps it.
    pub fn holds_lock(&self) -> bool {
        self.lock == RunLock::Held
    }

    /// The backend of the working session, once it has connected.
    pub fn work_pid(&self) -> Option<u32> {
        self.work_pid
    }

    /// The identity read in the session's first round trip.
    pub fn known_identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// How this run's sessions start: the password in a private passfile, not in the
    /// environment of a psql that runs the tree's test files (or could be asked about it).
    pub(super) fn session_spec(&self) -> psql::Spec {
        psql::Spec { passfile_dir: Some(self.scratch().to_path_buf()), ..self.conn.session_spec() }
    }

    /// What a session that is not opened by [`Target::open_with`] (a reconnect, a command without
    /// a connectivity check) runs first, in one round trip: the timeouts, the backend's pid and,
    /// while this run holds the lock, the lock again and the sessions key.
    fn setup(&self) -> String {
        let mut statements = self.conn.timeouts.set_statements(false);
        let relock = if self.lock == RunLock::Held { lock::relock() } else { String::new() };
        statements.push(format!(
            "select pg_backend_pid() as rehearsal_pid, current_setting('standard_conforming_strings') as rehearsal_scs{relock} \\gset"
        ));
        // A session that did not get the lock back runs nothing more: psql ends before the unit.
        format!(
            "{}\n\\echo @@var pid :rehearsal_pid\n\\echo @@var server :SERVER_VERSION_NAME\n\\echo @@var scs :rehearsal_scs{}",
            statements.join("\\; "),
            if relock.is_empty() {
                ""
            } else {
                "\n\\echo @@var relock :rehearsal_relock\n\\if :rehearsal_relock\n\\else\n\\q\n\\endif"
            }
        )
    }
}

impl Drop for Target {
    /// However the run ends, the lock goes as [`Target::release`] lets it go.
    fn drop(&mut self) {
        self.release();
    }
}

/// A tee that disarms its watchdog at the first line the server sends.
struct Answered<'a, 'b> {
    inner: &'a mut (dyn Tee + 'b),
    watchdog: Option<Watchdog>,
}

impl Tee for Answered<'_, '_> {
    fn tee(&mut self, line: &str) -> Result<()> {
        if !self.watchdog.as_ref().is_some_and(Watchdog::fired) {
            self.watchdog = None;
        }
        self.inner.tee(line)
    }
}

/// What [`Target::open_with`] got back.
pub struct FirstTrip {
    pub ran: Ran,
    /// The query's output (the transcript), without the reads.
    pub text: String,
    /// What came among the reads besides them: a failed read's error.
    pub among: String,
    /// The session's values and the lock, as the server said them.
    pub opened: Option<lock::Opened>,
    pub timed_out: bool,
    pub reads: Vec<Option<Vec<String>>>,
}
