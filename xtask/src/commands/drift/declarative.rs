//! The declarative schema (`supabase/schemas/`) against the migrations: each replayed on a
//! throwaway cluster and compared object by object, so a change declared without its migration is
//! named.

use anyhow::Result;
use serde::Serialize;

use super::replay_into;
use crate::evidence::artifacts::Transcript;
use crate::prepare::tree::Migration;
use crate::prepare::Prepared;
use crate::progress;
use crate::runbook::drift::{self, Difference};

/// The declarative schema (`supabase/schemas/`, replayed) against every local migration (replayed):
/// `declared_only` (in the schema files, made by no migration), `migrations_only`, `differs`.
#[derive(Serialize)]
pub(super) struct Declarative {
    pub files: usize,
    pub differences: Vec<Difference>,
    pub log: String,
}

/// `supabase/schemas/` replayed on a throwaway cluster against every local migration replayed on
/// another (`migrations`: that replay's records when the target's history holds them all).
pub(super) fn declarative(p: &Prepared, files: &[Migration], migrations: Option<&[String]>) -> Result<Declarative> {
    progress!(
        "drift: replaying the declarative schema ({} file(s) in supabase/schemas) and the migrations",
        files.len()
    );
    let mut log = Transcript::new_in_day(&p.workdir, &p.started, "drift_declared", "log")?;
    let migrations = match migrations {
        Some(records) => records.to_vec(),
        None => replay_into(p, &p.tree.migrations, &mut log, "the migrations")?,
    };
    let declared = replay_into(p, files, &mut log, "the declarative schema (supabase/schemas)")?;
    let mut differences =
        drift::compare_sides(&declared, &migrations, &p.config.drift_ignore_schemas, &drift::DECLARED);
    for d in &mut differences {
        d.change = match d.change {
            "extra_on_target" => "declared_only",
            "missing_on_target" => "migrations_only",
            other => other,
        };
    }
    Ok(Declarative { files: files.len(), differences, log: log.rel().to_string() })
}
