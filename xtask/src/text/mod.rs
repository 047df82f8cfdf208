//! The pure readers of text: SQL (the lexer and lint), logs (the failure classifier), TAP, DSNs,
//! vault env files, plan globs, `supabase/rehearsal.toml` and the hex of the catalog reads. Functions from text to values, with
//! no process, database or clock; unit-tested on real captured output under `xtask/test_data/`.

pub mod config;
pub mod dsn;
pub use xtask_scan::{escape, extensions, findings};
pub mod glob;
pub mod hex;
pub mod lint;
pub mod sql;
pub mod tap;
pub mod vault;
