//! Step 5's schema check: the snapshot after the rollbacks against the one before the apply,
//! `schema_restored`, the diff when they differ, and each difference pinned on the rollback that
//! should have undone it; and the rows: a table with fewer (or other) rows after the rollbacks
//! than before the apply is `data_lost` on the rollback that names it.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::database::Target;
use crate::evidence::artifacts::write_atomic;
use crate::evidence::record::Record;
use crate::evidence::summary::Status;
use crate::prepare::tree::Migration;
use crate::progress;
use crate::runbook::{rows, snapshot};
use crate::text::findings::{Class, Finding, Severity};

/// The second snapshot against the first (`schema_restored`, and the diff when they differ) and,
/// read in the same round trip, the rows of the tables the rehearsed files name against before
/// the apply: each table that lost rows is a `data_lost` error.
pub(super) fn compare(
    target: &mut Target,
    record: &mut Record,
    before: Option<String>,
    rows_before: Option<BTreeMap<String, rows::Rows>>,
    selected: &[Migration],
) -> Result<()> {
    let Some(before) = before else { return Ok(()) };
    // Nothing applied, so no rollback ran: `schema_restored` stays null, not "identical".
    if !record.summary().migrations.iter().any(|r| r.applied()) {
        progress!("step 5 schema after rollback: no rollback ran, nothing to compare");
        return Ok(());
    }
    let rolled: Vec<&Migration> = selected
        .iter()
        .filter(|m| matches!(record.row_mut(&m.version).rollback.status, Status::RolledBack | Status::Incomplete))
        .collect();
    let rows_before = rows_before.filter(|b| !b.is_empty() && !rolled.is_empty());
    let rows_query = rows_before.as_ref().and_then(|_| rows::query_for(&rolled));
    let (after, rows_after) = match snapshot::records(target, &rows_query.iter().cloned().collect::<Vec<_>>()) {
        Ok((records, rows)) => (snapshot::joined(&records), rows),
        Err(e) => {
            progress!("step 5 schema after rollback: could not be read ({e:#})");
            record.summary_mut().blockers.push(format!(
                "the schema after the rollbacks could not be read, so the rollback evidence is incomplete: {e:#}"
            ));
            return Ok(());
        }
    };
    let dir = record.open_dir()?;
    write_atomic(&dir.file("schema_after_rollback.sql"), after.as_bytes())?;
    let same = before == after;
    if !same {
        let diff = snapshot::diff(&dir.path, "schema_before.sql", "schema_after_rollback.sql", &before, &after);
        write_atomic(&dir.file("schema_rollback.diff"), diff.as_bytes())?;
        let rel = dir.rel_file("schema_rollback.diff");
        record.summary_mut().logs.push(crate::evidence::summary::LogRef { label: "schema diff".into(), path: rel });
        blame_rollbacks(record, &before, &after, selected);
    }
    record.summary_mut().schema_restored = Some(same);
    progress!(
        "step 5 schema after rollback: {}",
        if same { "identical to before the apply" } else { "DIFFERS (schema_rollback.diff)" }
    );
    let (Some(rows_before), Some(_)) = (rows_before, rows_query) else { return Ok(()) };
    let after = match rows_after {
        Ok(parts) => parts.first().map(|lines| rows::parse(lines)).unwrap_or_default(),
        Err(e) => {
            record.summary_mut().blockers.push(format!(
                "the rows after the rollbacks could not be counted, so whether a rollback lost rows is not known: {e:#}"
            ));
            return Ok(());
        }
    };
    let rolled: Vec<&Migration> = selected
        .iter()
        .filter(|m| matches!(record.row_mut(&m.version).rollback.status, Status::RolledBack | Status::Incomplete))
        .collect();
    let lost = rows::lost(&rows_before, &after, &rolled);
    progress!(
        "step 5 rows after rollback: {}",
        if lost.is_empty() {
            format!("as before the apply ({} table(s) the migrations name)", rows_before.len())
        } else {
            format!("{} table(s) LOST rows (data_lost)", lost.len())
        }
    );
    record.summary_mut().findings.extend(lost);
    Ok(())
}

/// What the rollbacks left different, pinned on the rollback that should have undone it: that
/// rollback is `incomplete`, with a finding naming the objects, its file and its migration.
fn blame_rollbacks(record: &mut Record, before: &str, after: &str, selected: &[Migration]) {
    let rolled: Vec<&Migration> =
        selected.iter().filter(|m| record.row_mut(&m.version).rollback.status == Status::RolledBack).collect();
    for (owner, objects) in snapshot::leftovers(before, after, &rolled) {
        let shown: Vec<&str> = objects.iter().take(5).map(String::as_str).collect();
        let more = if objects.len() > 5 { format!(" and {} more", objects.len() - 5) } else { String::new() };
        let (file, hint) = match owner.map(|i| rolled[i]) {
            Some(m) => {
                record.row_mut(&m.version).rollback.status = Status::Incomplete;
                record.summary_mut().blockers.push(format!(
                    "{} was not re-applied: its rollback left what its rollback_incomplete finding names, on which \
                     the re-apply would fail; fix the rollback, then rehearse again on a database without them",
                    m.file()
                ));
                let rollback = m.rollback_file().unwrap_or_default().to_string();
                let hint = format!(
                    "make {rollback} undo what {} does to these objects (the whole difference is in schema_rollback.diff); \
                     the re-apply of {} fails on what the rollback left, not on a fault of the migration",
                    m.file(),
                    m.file()
                );
                (Some(rollback), hint)
            }
            None => (
                None,
                "no rehearsed migration names these objects: read schema_rollback.diff for what changed".to_string(),
            ),
        };
        record.summary_mut().findings.push(Finding {
            class: Class::RollbackIncomplete,
            severity: Severity::Error,
            sqlstate: None,
            file,
            line: None,
            message: crate::text::findings::clean_message(&format!(
                "the schema after the rollbacks is not as before the apply: {}{more}",
                shown.join("; ")
            )),
            hint,
            log: None,
        });
    }
}
