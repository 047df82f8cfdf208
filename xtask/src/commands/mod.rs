//! One module per command; each takes the parsed flags and returns the exit code. The flow of a
//! run is the same for all: `prepare` (nothing written) → the target → the runbook's steps →
//! the record, which writes the evidence.

pub mod adopt;
mod alignment;
pub mod apply;
pub mod bench;
mod contract;
pub mod doctor;
pub mod drift;
pub mod flow;
pub mod lint;
pub mod rehearse;
pub mod rls;
pub mod rollback;
pub mod scan;
mod schema_check;
pub mod steps;

use std::path::PathBuf;

/// What every command gets: the tree to work in and how to print.
pub struct Ctx {
    pub workdir: PathBuf,
    /// Print `summary.json` to stdout instead of the human summary.
    pub json: bool,
    /// JSON, JUnit and CI outputs besides the screen.
    pub present: crate::evidence::ci::Present,
}
