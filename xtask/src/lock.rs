//! One rehearsal at a time per database (SPEC §9): a Postgres advisory lock taken on a session
//! kept open for the whole run. Through a pooler in session mode the session is pinned to one
//! server connection, so the lock holds. Closing the session releases it: on drop, on Ctrl-C (the
//! psql is a registered child), and when the tool dies outright (a parent-death signal).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{Context, Result};

use crate::exit;
use crate::redact::Redactor;
use crate::signals::ChildGuard;

/// The lock's key: "rehears1" as a bigint, the same for every run of this tool.
pub const KEY: i64 = 0x7265_6865_6172_7331;

pub struct RehearsalLock {
    child: Child,
    stdin: Option<ChildStdin>,
    _guard: ChildGuard,
}

impl RehearsalLock {
    /// Take the lock or refuse (exit 2) because another rehearsal holds it.
    pub fn acquire(psql: &Path, dsn: &str, redactor: &Redactor, what: &str) -> Result<RehearsalLock> {
        let mut cmd = Command::new(psql);
        cmd.arg(dsn).args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]);
        for var in ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGOPTIONS", "PGSERVICE"]
            .iter()
            .chain(crate::process::SECRET_VARS)
        {
            cmd.env_remove(var);
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; it runs in the child between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd.spawn().context("starting the psql session that holds the rehearsal lock")?;
        let guard = ChildGuard::register(child.id(), None);
        let mut stdin = child.stdin.take().expect("piped");
        writeln!(stdin, "select pg_try_advisory_lock({KEY});").context("asking for the rehearsal lock")?;
        stdin.flush()?;
        let mut answer = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut answer)
            .context("reading the rehearsal lock's answer")?;
        let mut lock = RehearsalLock { child, stdin: Some(stdin), _guard: guard };
        match answer.trim() {
            "t" => Ok(lock),
            "f" => Err(exit::cannot_run(format!(
                "another rehearsal is in progress on {what} (it holds advisory lock {KEY}); wait for it to finish, then run again"
            ))),
            _ => {
                lock.release();
                let mut err = String::new();
                let _ = std::io::Read::read_to_string(&mut lock.child.stderr.take().expect("piped"), &mut err);
                Err(exit::cannot_run(format!("could not take the rehearsal lock on {what}: {}", redactor.redact(err.trim()))))
            }
        }
    }

    /// End the session, which releases the lock.
    fn release(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for RehearsalLock {
    fn drop(&mut self) {
        self.release();
    }
}
