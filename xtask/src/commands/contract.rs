//! Step 6 into the record: the RLS contract, and on a database that outlives the run, the check
//! that the contract left its schema as it found it.

use anyhow::Result;

use super::flow::RLS_LOG;
use crate::database::{Kind, Target};
use crate::evidence::artifacts::write_atomic;
use crate::evidence::record::Record;
use crate::evidence::summary::LogRef;
use crate::progress;
use crate::runbook::{rls, snapshot};
use crate::text::findings::{Class, Finding, Severity};

/// Step 6 into the record.
pub fn contract(target: &mut Target, files: &[String], record: &mut Record, label: &str) -> Result<()> {
    let mut log = record.transcript(RLS_LOG, "RLS contract")?;
    // On a database that outlives the run, the contract must leave it as it found it.
    let before = if target.kind == Kind::Local { None } else { Some(snapshot::take(target)?) };
    let result = rls::run(target, files, &mut log)?;
    if let Some(before) = before {
        contract_left(target, record, &before)?;
    }
    let rec = result.record();
    for f in &rec.files {
        match f.planned {
            Some(planned) if planned > 0 || f.ran > 0 => {
                progress!("{label} {} .. {} of {planned} passed", f.path, f.passed)
            }
            Some(_) => progress!("{label} {} .. no tests (its plan is 0)", f.path),
            None => progress!("{label} {} .. {} of {} passed, no plan line: FAILED", f.path, f.passed, f.ran),
        }
    }
    record.summary_mut().findings.extend(result.errors().into_iter().cloned());
    record.summary_mut().rls = Some(rec);
    Ok(())
}

/// The schema after the contract against the one before it (staging and url): a difference is
/// an error finding, with `schema_contract.diff`.
fn contract_left(target: &mut Target, record: &mut Record, before: &str) -> Result<()> {
    let after = match snapshot::take(target) {
        Ok(after) => after,
        Err(e) => {
            record.summary_mut().blockers.push(format!(
                "the schema after the RLS contract could not be read, so whether the contract changed the \
                 database is not known: {e:#}"
            ));
            return Ok(());
        }
    };
    if after == before {
        progress!("step 6 schema after the contract: as before it");
        return Ok(());
    }
    let dir = record.open_dir()?;
    write_atomic(&dir.file("schema_before_contract.sql"), before.as_bytes())?;
    write_atomic(&dir.file("schema_after_contract.sql"), after.as_bytes())?;
    let diff = snapshot::diff(&dir.path, "schema_before_contract.sql", "schema_after_contract.sql", before, &after);
    write_atomic(&dir.file("schema_contract.diff"), diff.as_bytes())?;
    let rel = dir.rel_file("schema_contract.diff");
    record.summary_mut().logs.push(LogRef { label: "contract schema diff".into(), path: rel.clone() });
    let objects: Vec<String> = snapshot::leftovers(before, &after, &[]).into_iter().flat_map(|(_, o)| o).collect();
    let shown: Vec<&str> = objects.iter().take(5).map(String::as_str).collect();
    let more = if objects.len() > 5 { format!(" and {} more", objects.len() - 5) } else { String::new() };
    progress!("step 6 schema after the contract: DIFFERS ({rel})");
    record.summary_mut().findings.push(Finding {
        class: Class::ContractChangedSchema,
        severity: Severity::Error,
        sqlstate: None,
        file: None,
        line: None,
        message: crate::text::findings::clean_message(&format!(
            "the RLS contract left the database's schema different from before it ran: {}{more}",
            shown.join("; ")
        )),
        hint: format!(
            "wrap each test file in `begin;` ... `rollback;` (pgTAP's own form) so it leaves nothing behind; undo by \
             hand what {rel} shows it left"
        ),
        log: None,
    });
    Ok(())
}
