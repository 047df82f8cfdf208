//! Step 5, rollback: the paired script from `migrations.backup/`, appended to
//! `migration_rollback.log` (`==> rollback FILE`, psql's output, `!! rollback failure: FILE`),
//! removing the history row in the same transaction. The caller decides which migrations: only
//! those applied in this run, newest first.

use std::io::Write;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::Db;
use crate::findings::{self, Finding};
use crate::sql;
use crate::tree::Migration;

#[derive(Clone, Debug)]
pub enum RolledBack {
    Done,
    Failed(Option<Finding>),
    /// No paired script in `migrations.backup/`: a gap to report.
    Missing,
    /// Not attempted (the apply failed, or `--fail-fast` stopped the loop).
    Skipped,
}

impl RolledBack {
    pub fn to_json(&self, migration: &Migration) -> Value {
        let (status, error) = match self {
            RolledBack::Done => ("rolled_back", None),
            RolledBack::Failed(e) => ("failed", e.as_ref()),
            RolledBack::Missing => ("missing", None),
            RolledBack::Skipped => ("skipped", None),
        };
        json!({"status": status, "file": migration.rollback, "error": error.map(Finding::to_json)})
    }
}

pub fn rollback(
    db: &Db,
    migration: &Migration,
    log: &mut dyn Write,
    log_name: &str,
) -> Result<(RolledBack, Vec<Finding>)> {
    let Some(file) = &migration.rollback else { return Ok((RolledBack::Missing, Vec::new())) };
    let text = std::fs::read_to_string(db.workdir.join(file)).with_context(|| format!("reading {file}"))?;
    writeln!(log, "==> rollback {file}")?;
    let forget = format!(
        "\\set QUIET on\ndelete from supabase_migrations.schema_migrations where version = '{}';\n",
        migration.version
    );
    let psql = || db.psql();
    let mut transcript = String::new();
    let ok = match sql::first_non_transactional(&text) {
        None => {
            let out = psql()
                .arg("--single-transaction")
                .args(["-f", file, "-f", "-"])
                .stdin(forget)
                .run(&db.redactor, Some(log))?;
            transcript.push_str(&out.text);
            out.success()
        }
        Some(reason) => {
            writeln!(
                log,
                "-- not atomic: {reason} cannot run inside a transaction block; running the file without one"
            )?;
            let out = psql().args(["-f", file]).run(&db.redactor, Some(log))?;
            transcript.push_str(&out.text);
            if out.success() {
                let out = psql().args(["-f", "-"]).stdin(forget).run(&db.redactor, Some(log))?;
                transcript.push_str(&out.text);
                out.success()
            } else {
                false
            }
        }
    };
    if !ok {
        writeln!(log, "!! rollback failure: {file}")?;
    }
    writeln!(log)?;
    log.flush()?;
    let found = findings::scan(&transcript, Some(log_name));
    Ok(if ok { (RolledBack::Done, found) } else { (RolledBack::Failed(found.first().cloned()), found) })
}
