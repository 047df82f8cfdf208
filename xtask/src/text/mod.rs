//! The pure readers of text: SQL (the lexer and lint), logs (the failure classifier), TAP, DSNs,
//! vault env files, plan globs and `supabase/rehearsal.toml`. Functions from text to values, with
//! no process, database or clock; unit-tested on real captured output under `xtask/test_data/`.

pub mod config;
pub mod dsn;
pub use xtask_scan::{escape, extensions, findings};
pub mod glob;
pub mod lint;
pub mod sql;
pub mod tap;
pub mod vault;
