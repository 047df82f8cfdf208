//! Step 4's loops, shared by `stage-rehearse` and `apply`: the baseline (on local, the migrations
//! before a molecule's) and the forward apply of the selected migrations into summary rows.

use std::io::Write;

use anyhow::Result;

use super::session::Options;
use crate::plan::Molecule;
use crate::progress;
use crate::steps::{apply, Db};
use crate::summary::{MigrationRow, Summary};
use crate::tree::Migration;

/// Apply the baseline; on the first failure record a blocker and return false.
pub fn baseline(db: &Db, baseline: &[Migration], log: &mut dyn Write, log_name: &str, r: &mut Summary) -> Result<bool> {
    for m in baseline {
        let applied = apply::apply(db, m, true, log, log_name)?;
        progress!("{}", applied.progress_line("step 4 baseline", m));
        if !applied.ok {
            r.findings.extend(applied.findings);
            r.blockers.push(format!("the baseline migration {} failed on the throwaway cluster", m.file));
            return Ok(false);
        }
    }
    Ok(true)
}

/// Apply each selected migration in version order, one summary row each; `--fail-fast` leaves
/// the rest skipped after the first failure.
pub fn apply_selected(
    db: &Db,
    selected: &[Migration],
    molecules: &[Molecule],
    opts: &Options,
    log: &mut dyn Write,
    log_name: &str,
    r: &mut Summary,
) -> Result<()> {
    let mut stopped = false;
    for m in selected {
        let molecule = molecules.iter().find(|mol| mol.migrations.contains(&m.file)).map(|mol| mol.id.clone());
        let mut row = MigrationRow::new(m, molecule);
        if !stopped {
            let applied = apply::apply(db, m, !opts.no_atomic, log, log_name)?;
            progress!("{}", applied.progress_line("step 4 apply", m));
            stopped = !applied.ok && opts.fail_fast;
            r.findings.extend(applied.findings.iter().cloned());
            row.apply = Some(applied);
        }
        r.migrations.push(row);
    }
    Ok(())
}
