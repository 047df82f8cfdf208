//! The rehearsal tool as a library: `main.rs` parses flags and dispatches to [`cmd`]; the
//! integration tests in `xtask/tests/` reuse the local target and the readers directly.
//!
//! Data flows one way: workdir + config → target → steps → artifacts → summary.

pub mod artifacts;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod dsn;
pub mod exit;
pub mod feedback;
pub mod findings;
pub mod lint;
pub mod local;
pub mod lock;
pub mod plan;
pub mod process;
pub mod redact;
pub mod report;
pub mod schema;
pub mod sha256;
pub mod signals;
pub mod sql;
pub mod steps;
pub mod summary;
pub mod supabase_cli;
pub mod tap;
pub mod target;
pub mod tree;
pub mod vault;
