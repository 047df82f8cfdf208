//! The loops the commands share, in the runbook's order: opening the target and the record,
//! step 2 into the day's folder, the selection of what to apply, step 4's baseline and forward
//! apply into summary rows, the seed, and step 6 into the record. Each takes the target and the
//! record and leaves what it found in the record.

use anyhow::Result;

use crate::database::{Kind, Opening, Target};
use crate::evidence::artifacts::Transcript;
use crate::evidence::plan::Molecule;
use crate::evidence::provenance;
use crate::evidence::record::Record;
use crate::evidence::summary::{MigrationRow, RollbackResult, Status, StepResult, TargetRecord};
use crate::exit;
use crate::prepare::tree::{Migration, Tree, SEED};
use crate::prepare::Prepared;
use crate::process::psql::{quote_arg, Unit};
use crate::process::Tee;
use crate::progress;
use crate::runbook::advisors::Advisors;
use crate::runbook::chain::Trailer;
use crate::runbook::history;
use crate::runbook::inventory::{self, Inventory};
use crate::runbook::{apply, connectivity};
use crate::text::findings::{self, Class, Finding};

pub const APPLY_LOG: &str = "migration_apply.log";
pub const ROLLBACK_LOG: &str = "migration_rollback.log";
pub const RLS_LOG: &str = "rls_contract.log";

/// Open the prepared target (no connection yet).
pub fn open_target(p: &Prepared) -> Result<Target> {
    Target::open(Opening {
        kind: p.kind,
        workdir: &p.workdir,
        config: &p.config,
        db_url: p.flags.db_url.as_deref(),
        superuser_postgres: p.flags.superuser_postgres,
        timeouts: p.flags.timeouts.clone(),
        psql: p.psql.clone(),
        server: p.server.clone(),
    })
}

/// A record of this run on `target`.
pub fn new_record(p: &Prepared, target: &Target) -> Record {
    let d = target.describe();
    let cli = p.cli.as_ref().map(|c| c.version_string());
    Record::new(
        &p.workdir,
        p.started,
        TargetRecord {
            kind: d.kind,
            host: d.host,
            database: d.database,
            why: p.why.clone(),
            postgres_major: p.server.as_ref().map(|s| s.major),
            project_major: p.project.major_version,
        },
        provenance::gather(&p.workdir, Some(&p.psql), cli),
    )
    .with_plan(p.plan.clone(), p.molecules.clone())
    .with_inputs(p.inputs())
}

/// Step 2 into the day's folder. An unreachable database stops the run (exit 2) with the reason.
pub fn connectivity(target: &mut Target, record: &mut Record) -> Result<(connectivity::Connectivity, String)> {
    connectivity_with(target, record, &[]).map(|(conn, rel, _)| (conn, rel))
}

/// [`connectivity`] as the session's first round trip, which also takes the run lock when the
/// run wants it, reads the database's identity, and reads `reads` (each a query whose rows are
/// one line each): what came back of them.
pub fn connectivity_with(
    target: &mut Target,
    record: &mut Record,
    reads: &[String],
) -> Result<(connectivity::Connectivity, String, crate::database::FirstTrip)> {
    let clock = record.step_start(2, "connectivity");
    let mut log = record.day_transcript("ipv4_pooler_check", "log", "connectivity")?;
    let (conn, first) = connectivity::check(target, &mut log, reads)?;
    if !conn.reached {
        let why = if conn.timed_out {
            "the server took the connection but did not answer the query; check the pooler".to_string()
        } else {
            conn.findings.first().map_or("no result row".to_string(), |f| {
                format!("{}: {}\n  what to do: {}", f.class.as_str(), f.message, f.hint)
            })
        };
        let refused = conn.findings.first().is_some_and(|f| f.sqlstate.as_deref() == Some("28P01"));
        let what = if refused { "the database refused the login" } else { "the database is unreachable" };
        return Err(exit::cannot_run(format!("step 2 connectivity: {what} ({})\n  {why}", log.rel())));
    }
    progress!(
        "step 2 connectivity: {} at {} ({})",
        conn.database.as_deref().unwrap_or("?"),
        conn.server_addr.as_deref().unwrap_or("?"),
        if conn.ipv4() { "IPv4" } else { "NOT IPv4" }
    );
    if !conn.ipv4() {
        record.summary_mut().blockers.push(format!(
            "the server address {} is not IPv4: staging must go through the IPv4 session pooler",
            conn.server_addr.as_deref().unwrap_or("(none)")
        ));
    }
    record.step_end(clock);
    Ok((conn, log.rel().to_string(), first))
}

/// Step 1's lock, taken in step 2's round trip, and the target's identity (staging and url):
/// the lock not taken stops the run (exit 2) with the reason.
pub fn lock_and_identify(target: &mut Target, record: &mut Record, first: &crate::database::FirstTrip) -> Result<()> {
    if target.kind == Kind::Local {
        return Ok(());
    }
    if !target.holds_lock() {
        if let Some(opened) = &first.opened {
            opened.locked(&target.what())?;
        }
        let why = first.among.lines().chain(first.ran.stray.lines()).find(|l| !l.trim().is_empty());
        return Err(exit::cannot_run(format!(
            "could not take the rehearsal lock on {}: {}",
            target.what(),
            why.unwrap_or("the session ended").trim()
        )));
    }
    progress!("step 1 lock: this rehearsal holds the rehearsal lock on {}", target.what());
    record.summary_mut().identity = Some(target.identity()?);
    Ok(())
}

/// What to apply: on local every migration is pending, so a molecule's earlier migrations form a
/// baseline and its later ones a tail (applied after the rehearsal, so the contract sees the whole
/// schema); on staging, the pending ones (of the molecules, if any).
pub struct Selection {
    pub baseline: Vec<Migration>,
    pub selected: Vec<Migration>,
    pub tail: Vec<Migration>,
}

pub fn select(
    kind: Kind,
    tree: &Tree,
    pre: &Inventory,
    molecules: &[Molecule],
    warnings: &mut Vec<String>,
) -> Selection {
    let in_molecules = |m: &Migration| molecules.iter().any(|mol| mol.migrations.iter().any(|f| f == m.file()));
    let pending = |m: &Migration| pre.pending.contains(&m.version);
    let selected: Vec<Migration> =
        tree.migrations.iter().filter(|m| pending(m) && (molecules.is_empty() || in_molecules(m))).cloned().collect();
    for m in tree.migrations.iter().filter(|m| in_molecules(m) && !pending(m)) {
        warnings.push(format!("{} is already applied on the target: not re-applied", m.file()));
    }
    let (mut baseline, mut tail) = (Vec::new(), Vec::new());
    if kind == Kind::Local && !molecules.is_empty() {
        let last = selected.iter().map(|m| m.version.clone()).max().unwrap_or_default();
        for m in tree.migrations.iter().filter(|m| pending(m) && !in_molecules(m)) {
            if m.version < last {
                baseline.push(m.clone());
            } else {
                tail.push(m.clone());
            }
        }
    }
    Selection { baseline, selected, tail }
}

/// Step 3's `supabase migration list`, which ran alongside: its table against the tool's history
/// read (an `inventory_disagrees` error when they differ on a version this run did not touch).
pub fn check_cli(
    sel: &Selection,
    early: inventory::Early,
    log: &mut Transcript,
    place: findings::Place,
    record: &mut Record,
) -> Result<()> {
    let pre = record.summary().inventory.as_ref().and_then(|i| i.pre.as_ref());
    let tool: std::collections::BTreeSet<String> =
        pre.map(|pre| pre.applied.iter().chain(&pre.remote_only).cloned().collect()).unwrap_or_default();
    let touched = sel.baseline.iter().chain(&sel.selected).chain(&sel.tail).map(|m| m.version.clone()).collect();
    let check = history::check_cli(early, log, place, &tool, &touched)?;
    match &check.agreed {
        Some(cli) => progress!("step 3 inventory: {cli} agrees ({})", log.rel()),
        None if check.findings.iter().any(|f| f.class == Class::InventoryDisagrees) => {
            progress!("step 3 inventory: `supabase migration list` DISAGREES with the history ({})", log.rel())
        }
        None => {}
    }
    let s = record.summary_mut();
    s.warnings.extend(check.warnings);
    s.findings.extend(check.findings);
    if let (Some(cli), Some(pre)) = (check.agreed, s.inventory.as_mut().and_then(|i| i.pre.as_mut())) {
        pre.source = format!("{cli}, in agreement with the tool's query");
    }
    Ok(())
}

pub fn new_row(m: &Migration, molecule: Option<String>) -> MigrationRow {
    MigrationRow {
        version: m.version.clone(),
        name: m.name.clone(),
        file: m.file().to_string(),
        molecule,
        apply: StepResult::skipped(),
        rollback: RollbackResult {
            status: Status::Skipped,
            file: m.rollback_file().map(str::to_string),
            error: None,
            impact: Vec::new(),
        },
        reapply: StepResult::skipped(),
        history: None,
    }
}

/// Apply migrations that are not rehearsed (a baseline, a tail); on the first failure record a
/// blocker and return false.
pub fn apply_unrehearsed(
    target: &mut Target,
    migrations: &[Migration],
    label: &str,
    log: &mut Transcript,
    record: &mut Record,
) -> Result<bool> {
    let mut failed = false;
    apply::apply_all(target, migrations, (true, None), log, &mut None, &mut |m, applied| {
        progress!("{}", applied.progress_line(label, m));
        if !applied.ok {
            failed = true;
            record.summary_mut().findings.extend(applied.findings);
            record.summary_mut().blockers.push(format!(
                "the {} migration {} failed on the throwaway cluster",
                label.rsplit(' ').next().unwrap_or(label),
                m.file()
            ));
        }
        Ok(!failed)
    })?;
    Ok(!failed)
}

/// Apply each selected migration in version order, one summary row each; `--fail-fast` leaves the
/// rest skipped after the first failure. A migration interrupted by Ctrl-C is in the table too.
pub fn apply_selected(
    target: &mut Target,
    selected: &[Migration],
    molecules: &[Molecule],
    (atomic, trailer): (bool, Option<&mut Trailer>),
    fail_fast: bool,
    log: &mut Transcript,
    record: &mut Record,
) -> Result<()> {
    let mut rows: Vec<MigrationRow> = selected
        .iter()
        .map(|m| {
            let molecule =
                molecules.iter().find(|mol| mol.migrations.iter().any(|f| f == m.file())).map(|mol| mol.id.clone());
            new_row(m, molecule)
        })
        .collect();
    let mut next = 0;
    let mut in_flight = None;
    let ran = apply::apply_all(target, selected, (atomic, trailer), log, &mut in_flight, &mut |m, applied| {
        progress!("{}", applied.progress_line("step 4 apply", m));
        record.summary_mut().findings.extend(applied.findings.iter().cloned());
        let row = &mut rows[next];
        next += 1;
        row.apply = applied.result();
        row.history = applied.history.clone();
        // No further command to a database that is gone: the rest stay skipped.
        let gone = applied.findings.iter().any(|f| f.class.is_connection());
        Ok(!(gone || (!applied.ok && fail_fast)))
    });
    if let Err(e) = ran {
        // Every selected migration stays in the table: those that ran, the one that was running
        // after an interrupt, and the ones never reached (skipped), so none goes missing.
        if let Some(i) = in_flight.filter(|_| exit::is_interrupt(&e)) {
            rows[i].apply.status = Status::Interrupted;
        }
        let never: Vec<&str> =
            rows.iter().filter(|r| r.apply.status == Status::Skipped).map(|r| r.file.as_str()).collect();
        if !never.is_empty() {
            record
                .summary_mut()
                .blockers
                .push(format!("not applied, the run stopped before them: {}", never.join(", ")));
        }
        record.summary_mut().migrations.extend(rows);
        return Err(e);
    }
    record.summary_mut().migrations.extend(rows);
    Ok(())
}

/// The security advisors after step 4: read in the apply's last round trip when it got that far
/// (`trailer`, made of [`Advisors::query`]), else now, in a round trip of their own.
pub fn advisors_after(
    target: &mut Target,
    advisors: &Advisors,
    trailer: Option<Trailer>,
    applied: &[Migration],
) -> Result<Vec<Finding>> {
    match trailer.and_then(|mut t| t.take()).and_then(|mut parts| parts.pop()) {
        Some(lines) => Ok(advisors.findings(&lines, applied)),
        None => advisors.run(target, applied),
    }
}

/// The trailer that reads `advisors` in the apply's last round trip ([`advisors_after`]).
pub fn advisors_trailer(advisors: &Advisors) -> Option<Trailer> {
    advisors.query().map(|query| Trailer::new(&[query]))
}

/// Whether the database went away: then no further command is sent (behind a pooler each would
/// wait minutes for a server that is gone), and the summary says what was not done.
pub fn lost(record: &mut Record, remaining: &str) -> bool {
    let gone = record.summary().findings.iter().any(|f| f.class.is_connection());
    if gone {
        record.summary_mut().blockers.push(format!(
            "the database went away during the run: the remaining steps ({remaining}) were not run; check the \
             target's state with `cargo xtask inventory` before anything else"
        ));
        progress!("stopping: the database went away; the remaining steps were not run");
    }
    gone
}

/// As `supabase db reset` does on local: the seed after the migrations, before the tests.
pub fn seed(target: &mut Target, log: &mut Transcript, record: &mut Record) -> Result<()> {
    if target.kind != Kind::Local || !target.workdir().join(SEED).is_file() {
        return Ok(());
    }
    log.line(&format!("==> {SEED}"))?;
    let unit = Unit {
        before: "\\set ON_ERROR_STOP on".into(),
        body: format!("\\i {}", quote_arg(std::path::Path::new(SEED))),
        after: "\\set ON_ERROR_STOP off".into(),
    };
    let ran = target.run(&unit, Some(log as &mut dyn Tee))?;
    if !ran.ok() {
        log.line(&format!("!! failure: {SEED}"))?;
        let found = findings::scan(&ran.text, Some(log.rel()), target.kind.place());
        record.summary_mut().findings.extend(found);
    }
    log.line("")?;
    progress!("seed {SEED} .. {}", if ran.ok() { "ok" } else { "FAILED" });
    Ok(())
}
