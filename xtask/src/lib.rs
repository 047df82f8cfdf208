//! The rehearsal tool as a library: `main.rs` parses flags and dispatches to [`commands`]; the
//! integration tests in `xtask/tests/` reuse the local target and the readers directly.
//!
//! The flow is one way, and the layout follows it:
//! flags ([`cli`]) → [`prepare`] (config, tree, plan, programs; nothing written) → [`target`] (the
//! DSN and its guards, or a throwaway cluster; the lock; every Postgres session) → [`runbook`]'s
//! steps, each returning what it found → [`evidence`] (the record that writes every artifact).
//! Beside them: [`text`] (the pure readers of SQL, logs, TAP, DSNs and config), [`process`] (the
//! one home for child processes) and [`tools`] (the programs and where they come from).

pub mod cli;
pub mod commands;
pub mod database;
pub mod evidence;
pub mod exit;
pub mod out;
pub mod prepare;
pub mod process;
pub mod runbook;
pub mod text;
pub mod tools;
pub mod walk;

/// A progress line, to stderr (stdout is for the summary or `--json` alone).
#[macro_export]
macro_rules! progress {
    ($($arg:tt)*) => { $crate::out::err_line(&format!($($arg)*)) };
}
