//! Step 0 of `stage-rehearse`: the rehearsal dir and the day's feedback header, with the commands
//! the rehearsal runs as the runbook writes them; and the plan's molecules marked as started.

use anyhow::Result;

use crate::database::Target;
use crate::evidence::record::Record;
use crate::evidence::{feedback, plan};
use crate::prepare::Prepared;
use crate::process::shown;
use crate::progress;

/// Step 0: the rehearsal dir and the day's feedback header (created once, never changed).
pub(super) fn header(p: &Prepared, target: &Target, record: &mut Record) -> Result<()> {
    let dir = record.open_dir()?.rel.clone();
    let objective = if p.molecules.is_empty() {
        format!("Rehearse (apply, rollback, re-apply, RLS contract) every pending migration on {}.", p.kind.as_str())
    } else {
        let ids: Vec<&str> = p.molecules.iter().map(|m| m.id.as_str()).collect();
        format!(
            "Rehearse (apply, rollback, re-apply, RLS contract) molecule(s) {} on {}.",
            ids.join(", "),
            p.kind.as_str()
        )
    };
    let (created, warnings) =
        feedback::ensure_header(&p.workdir, &record.date(), &objective, &planned_commands(p, target), &dir)?;
    progress!(
        "step 0 alignment: {} {}",
        feedback::path(&record.date()),
        if created { "header created" } else { "exists; header kept" }
    );
    let s = record.summary_mut();
    s.warnings.extend(warnings);
    s.warnings.extend(p.warnings.iter().cloned());
    Ok(())
}

/// The commands the rehearsal runs, as the feedback header records them (secrets replaced, each
/// word quoted for a shell).
fn planned_commands(p: &Prepared, target: &Target) -> Vec<String> {
    let dsn = "\"$DATABASE_URL\"";
    let list = match &p.cli {
        Some(c) if c.version.0 >= 3 => format!("supabase migration list --remote={dsn}"),
        _ => format!("supabase migration list --db-url {dsn}"),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    vec![
        shown(std::path::Path::new("cargo xtask"), &args, target.redactor()),
        format!("psql {dsn} -c \"{}\"", crate::runbook::connectivity::QUERY),
        list,
        format!("psql {dsn} -X -v ON_ERROR_STOP=1 --single-transaction -f supabase/migrations/<each selected>.sql"),
        format!(
            "psql {dsn} -X -v ON_ERROR_STOP=1 --single-transaction -f supabase/migrations.backup/<its rollback>.sql"
        ),
        format!("psql {dsn} -X -f supabase/rls_tests.sql"),
    ]
}

/// The molecules' attempts start: `in_progress`, attempt counted, before the first apply.
pub(super) fn start_attempts(p: &Prepared) -> Result<()> {
    let Some(path) = &p.plan else { return Ok(()) };
    if p.molecules.is_empty() {
        return Ok(());
    }
    let changes: Vec<plan::Change> = p
        .molecules
        .iter()
        .map(|m| plan::Change { id: m.id.clone(), status: "in_progress", attempts: Some(m.attempt), evidence: vec![] })
        .collect();
    plan::update(path, &changes)
}
