//! The rehearsal's failure classifier, the hot path of `cargo xtask scan`: a log's lines to
//! findings (class, SQLSTATE, file and line, what to do), streamed in constant memory; the
//! catalogue of Supabase's extensions the hints read; and the escaping every line the tool prints
//! goes through. No I/O but the reader it is handed.

pub mod escape;
pub mod extensions;
pub mod findings;
pub mod stream;
