//! The runbook's steps, each a function from its inputs to what it found. Steps do not call each
//! other; the commands call them in order and collect what they return.

pub mod apply;
pub mod connectivity;
pub mod inventory;
pub mod rollback;
pub mod rls;

use std::path::PathBuf;

use crate::redact::Redactor;

/// What every step that talks to the database needs.
pub struct Db {
    pub psql: PathBuf,
    /// The DSN as given; shown only through the redactor.
    pub dsn: String,
    pub redactor: Redactor,
    pub workdir: PathBuf,
}
