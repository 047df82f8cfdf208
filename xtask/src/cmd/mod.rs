//! One module per command; each takes the parsed flags and returns the exit code.

pub mod bench;
pub mod doctor;
pub mod forward;
pub mod lint;
pub mod rehearse;
pub mod rls;
pub mod scan;
pub mod session;
pub mod step;

use std::path::PathBuf;

/// What every command gets: the tree to work in and how to print.
pub struct Ctx {
    pub workdir: PathBuf,
    /// Print `summary.json` to stdout instead of the human summary.
    pub json: bool,
}

/// A progress line, to stderr (stdout is for the summary or `--json` alone).
#[macro_export]
macro_rules! progress {
    ($($arg:tt)*) => { eprintln!($($arg)*) };
}
