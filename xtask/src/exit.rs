//! Exit codes and the error that carries one.
//!
//! `0` everything passed; `1` the rehearsal ran and found failures; `2` it could not run (usage,
//! config, missing tool, refused DSN, unreachable database, another rehearsal holds the lock, an
//! artifact that could not be written); `3` halted for escalation (missing contract, attempts used
//! up); `130` interrupted (Ctrl-C, SIGTERM), after cleaning up.
//!
//! Any error reaching `main` without a [`Stop`] is a "could not run" (exit 2): the tool failed to
//! do its job before it could judge the migrations.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Passed = 0,
    Failed = 1,
    CannotRun = 2,
    Halted = 3,
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An error that decides the exit code. Its message says what happened and what to do.
#[derive(Debug)]
pub struct Stop {
    pub exit: Exit,
    pub message: String,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Stop {}

/// Exit 2: the tool could not run. `message` says why and the fix.
pub fn cannot_run(message: impl Into<String>) -> anyhow::Error {
    Stop { exit: Exit::CannotRun, message: message.into() }.into()
}

/// Exit 3: halted for escalation to the manager.
pub fn halt(message: impl Into<String>) -> anyhow::Error {
    Stop { exit: Exit::Halted, message: message.into() }.into()
}

/// Exit 130: interrupted by a signal; cleanup has run by the time `main` sees it.
pub fn interrupted() -> anyhow::Error {
    Stop { exit: Exit::Interrupted, message: "interrupted: stopped the child processes and cleaned up".into() }.into()
}

/// The exit code an error maps to.
pub fn exit_of(err: &anyhow::Error) -> Exit {
    err.chain().find_map(|e| e.downcast_ref::<Stop>()).map_or(Exit::CannotRun, |s| s.exit)
}

/// Whether the error is an interrupt (Ctrl-C or SIGTERM).
pub fn is_interrupt(err: &anyhow::Error) -> bool {
    exit_of(err) == Exit::Interrupted
}
