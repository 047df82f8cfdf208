//! Step 4, apply (SPEC §5): each migration with `psql -v ON_ERROR_STOP=1 -f FILE`, appended to
//! `migration_apply.log` in the runbook's format (`==> FILE`, psql's output, `!! failure: FILE`,
//! a blank line).
//!
//! Unlike the runbook's loop, each file runs in one transaction together with the row that records
//! it in `supabase_migrations.schema_migrations` (version, name and statements, as the Supabase CLI
//! writes them), so a failure leaves nothing half-applied and history never drifts from the schema.
//! A file holding a statement that cannot run in a transaction runs without one, and the log says so.

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::Db;
use crate::findings::{self, Finding};
use crate::process::Cmd;
use crate::sql;
use crate::tree::Migration;

#[derive(Clone, Debug)]
pub struct Applied {
    pub ok: bool,
    pub atomic: bool,
    pub duration_ms: u128,
    /// The first error psql printed, classified.
    pub error: Option<Finding>,
    pub findings: Vec<Finding>,
}

impl Applied {
    /// The progress line: `<label> <version>_<name> .. ok (12 ms)`, with `not atomic` when so.
    pub fn progress_line(&self, label: &str, migration: &Migration) -> String {
        format!(
            "{label} {}_{} .. {}{} ({} ms)",
            migration.version,
            migration.name,
            if self.ok { "ok" } else { "FAILED" },
            if self.atomic { "" } else { ", not atomic" },
            self.duration_ms
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "status": if self.ok { "applied" } else { "failed" },
            "atomic": self.atomic,
            "duration_ms": self.duration_ms,
            "error": self.error.as_ref().map(Finding::to_json),
        })
    }
}

/// Apply one migration and record it, appending the transcript to `log` (`log_name` is its path
/// relative to the workdir, for findings). `atomic: false` (`--no-atomic`) runs the runbook's exact
/// command, `psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f FILE`, and records the history row after.
pub fn apply(db: &Db, migration: &Migration, atomic: bool, log: &mut dyn Write, log_name: &str) -> Result<Applied> {
    let started = Instant::now();
    let text = std::fs::read_to_string(db.workdir.join(&migration.file))
        .with_context(|| format!("reading {}", migration.file))?;
    let statements = sql::split(&text);
    let blocker = if atomic { statements.iter().find_map(|s| sql::non_transactional(s)) } else { Some("--no-atomic") };

    writeln!(log, "==> {}", migration.file)?;
    let record = history_insert(migration, &statements);
    let mut transcript = String::new();
    let ok = match blocker {
        None => {
            let out = db
                .psql()
                .arg("--single-transaction")
                .args(["-f", &migration.file, "-f", "-"])
                .stdin(record)
                .run(&db.redactor, Some(log))?;
            transcript.push_str(&out.text);
            out.success()
        }
        Some(reason) => {
            let out = if reason == "--no-atomic" {
                writeln!(log, "-- not atomic: --no-atomic (the runbook's command; the history row is recorded after)")?;
                let mut cmd = Cmd::new(&db.psql).arg(&db.dsn).args(["-v", "ON_ERROR_STOP=1"]).current_dir(&db.workdir);
                for setting in &db.settings {
                    cmd = cmd.arg("-c").arg(format!("set {setting}"));
                }
                cmd.args(["-f", &migration.file])
            } else {
                writeln!(
                    log,
                    "-- not atomic: {reason} cannot run inside a transaction block; running the file without one"
                )?;
                db.psql().args(["-f", &migration.file])
            };
            let out = out.run(&db.redactor, Some(log))?;
            transcript.push_str(&out.text);
            if out.success() {
                let out = db.psql().args(["-f", "-"]).stdin(record).run(&db.redactor, Some(log))?;
                transcript.push_str(&out.text);
                out.success()
            } else {
                false
            }
        }
    };
    if !ok {
        writeln!(log, "!! failure: {}", migration.file)?;
    }
    writeln!(log)?;
    log.flush()?;

    let findings = findings::scan(&transcript, Some(log_name));
    Ok(Applied {
        ok,
        atomic: blocker.is_none(),
        duration_ms: started.elapsed().as_millis(),
        error: if ok { None } else { findings.first().cloned() },
        findings,
    })
}

/// The history row, as `supabase migration up` inserts it, as a psql script read from stdin.
fn history_insert(migration: &Migration, statements: &[String]) -> String {
    let quoted: Vec<String> = std::iter::once(migration.version.as_str())
        .chain(std::iter::once(migration.name.as_str()))
        .chain(statements.iter().map(String::as_str))
        .map(dollar_quote)
        .collect();
    format!(
        "\\set QUIET on\ninsert into supabase_migrations.schema_migrations (version, name, statements) \
         values ({}, {}, array[{}]::text[]);\n",
        quoted[0],
        quoted[1],
        quoted[2..].join(", ")
    )
}

/// A dollar-quoted literal whose tag does not occur in `text`.
fn dollar_quote(text: &str) -> String {
    let mut n = 0;
    loop {
        let tag = format!("$r{n}$");
        if !text.contains(&tag) {
            return format!("{tag}{text}{tag}");
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_row_quotes_statements_that_hold_dollar_tags() {
        let m = Migration { version: "1".into(), name: "a".into(), file: "f".into(), rollback: None };
        let row = history_insert(&m, &["select $r0$x$r0$".into()]);
        assert!(row.contains("array[$r1$select $r0$x$r0$$r1$]"), "{row}");
    }
}
