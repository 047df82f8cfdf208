//! `cargo xtask stage-rehearse`: the runbook's steps 0–8, in order, into one rehearsal dir.
//!
//! prepare (nothing written) → open the target → 2 connectivity, 1 the lock and step 3's reads
//! (the first schema snapshot, the history, the rows) in the session's first round trip → 0 the
//! feedback header → 3 inventory (the CLI started with the run, on a thread) and lint → 4
//! apply, the advisors → 5 rollback, the schema compared, re-apply → 6 the RLS contract (the post
//! inventory meanwhile) → 7–8 the record writes every artifact. An interrupt part way still
//! writes a `halted` summary and the plan's real state.

use anyhow::Result;

use super::flow::{self, APPLY_LOG, ROLLBACK_LOG};
use super::Ctx;
use crate::database::{Kind, Target};
use crate::evidence::artifacts::write_atomic;
use crate::evidence::record::{Outputs, Record};
use crate::evidence::summary::{Inventories, Status};
use crate::exit::{self, Exit};
use crate::prepare::tree::Migration;
use crate::prepare::{self, Flags, Needs, Prepared};
use crate::progress;
use crate::runbook::{advisors::Advisors, apply, history, inventory, rollback, rows, snapshot};
use crate::text::lint;

mod verify;

pub fn run(ctx: &Ctx, flags: Flags) -> Result<Exit> {
    let p = prepare::prepare(ctx.workdir.clone(), flags, Needs { contract: true, plan: true, cli: true }, None)?;
    p.refuse_spent_molecules()?;
    let advisors = Advisors::from_config(&p.config.advisors, &p.config.advisor_exclude, p.rules.exposed())?;
    let mut target = flow::open_target(&p)?;
    target.want_lock();
    // Step 3's `supabase migration list` starts now: its start-up overlaps steps 2, 1 and 0.
    let early = inventory::spawn_list(p.cli.clone(), target.conn().clone());
    let mut record = flow::new_record(&p, &target);
    // Steps 2 and 1 and step 3's reads: the session's first round trip.
    let queries = first_reads(&p);
    let (_, _, first) = flow::connectivity_with(&mut target, &mut record, &queries)?;
    flow::lock_and_identify(&mut target, &mut record, &first)?;
    record.summary_mut().provenance.server = target.server_version().map(str::to_string);
    super::alignment::header(&p, &target, &mut record)?;
    let stop = match steps(&p, &advisors, early, (&queries, first.reads), &mut target, &mut record) {
        Ok(()) => None,
        Err(e) if exit::is_interrupt(&e) => {
            progress!("interrupted: the child processes were stopped; writing a halted summary");
            record.summary_mut().blockers.push(
                "interrupted (Ctrl-C or SIGTERM) part way: the target may hold a partial rehearsal; read the logs before re-running"
                    .into(),
            );
            Some(Exit::Interrupted)
        }
        Err(e) => {
            crate::out::err_line(&format!("error: {e:#}"));
            record.summary_mut().blockers.push(format!("the rehearsal stopped: {e:#}"));
            Some(Exit::CannotRun)
        }
    };
    // The lock goes while the record is written; then the session ends and a local cluster stops.
    target.release();
    let exit = record.finish(stop, "completed", Outputs { handoff: true, command: "stage-rehearse" }, &ctx.present);
    drop(target);
    Ok(exit)
}

/// Steps 3–7, while the target is open.
fn steps(
    p: &Prepared,
    advisors: &Advisors,
    early: inventory::Early,
    reads: (&[String], Vec<Option<Vec<String>>>),
    target: &mut Target,
    record: &mut Record,
) -> Result<()> {
    // Step 3: the session's first round trip read the first schema snapshot, the history (what is
    // pending, and the statements each applied file had) and the rows of the tables the unapplied
    // files name. The CLI's `supabase migration list` (started with the run) is not waited for: its
    // table is the runbook's evidence, checked against the tool's once step 6 is under way.
    let clock = record.step_start(3, "inventory");
    let mut pre_log = record.day_transcript("migration_status_pre", "txt", "inventory before")?;
    let place = target.kind.place();
    let Read { records, before, history, rows_first } = read_first(reads, target);
    let (pre, early) = match &history {
        Some(history) => (history.inventory(&p.tree, &mut pre_log)?, Some(early)),
        // The tool's own read failed: the CLI's table (or the SQL fallback) is the inventory.
        None => {
            let listed = early.wait(&mut pre_log, place);
            (inventory::finish(listed?, target, &p.tree, &mut pre_log)?, None)
        }
    };
    if let Some(history) = history.as_ref().filter(|_| target.kind != Kind::Local) {
        record.summary_mut().findings.extend(inventory::edited(
            &p.tree,
            &pre.applied,
            &history.statements,
            p.config.drift_fail,
        ));
    }
    {
        let s = record.summary_mut();
        s.warnings.extend(pre.warnings.iter().cloned());
        s.findings.extend(pre.findings.iter().cloned());
        s.inventory = Some(Inventories { pre: Some(pre.record()), post: None });
    }
    if !pre.ok {
        return Err(exit::cannot_run(format!(
            "step 3 inventory: could not read the migration history ({})",
            pre_log.rel()
        )));
    }
    progress!(
        "step 3 inventory ({}): {} pending, {} applied, {} applied remotely but missing locally",
        if early.is_some() { "the history query; `supabase migration list` checks it alongside" } else { &pre.source },
        pre.pending.len(),
        pre.applied.len(),
        pre.remote_only.len()
    );
    for v in &pre.remote_only {
        record.summary_mut().warnings.push(format!(
            "version {v} is applied on the target but missing locally: fetch it with `supabase migration fetch`"
        ));
    }
    let sel = flow::select(p.kind, &p.tree, &pre, &p.molecules, &mut record.summary_mut().warnings);
    lint_selected(p, &sel, record);
    record.step_end(clock);
    super::alignment::start_attempts(p)?;

    // On staging and url, the history is replayed on a throwaway cluster while the rehearsal runs,
    // and compared with the catalog step 3 read: drift.
    let replay = match (target.kind, &history, records) {
        (Kind::Local, _, _) => {
            progress!("step 3 drift: on local the database is built from the history, so there is nothing to compare");
            None
        }
        (_, Some(_), Ok(records)) => Some((records, record.day_transcript("drift_replay", "log", "drift replay")?)),
        _ => None,
    };
    let applied: Vec<Migration> =
        p.tree.migrations.iter().filter(|m| pre.applied.contains(&m.version)).cloned().collect();
    let rest = std::thread::scope(|scope| {
        let replaying = replay.map(|(records, mut log)| {
            let handle =
                scope.spawn(|| super::drift::replay_into(p, &applied, &mut log, "the history").map(|r| (r, log)));
            (records, handle)
        });
        let rest = verify::apply_and_verify(p, advisors, &sel, FirstLook { before, rows: rows_first }, target, record);
        if let Some((records, handle)) = replaying {
            let replayed = handle.join().expect("the replay thread does not panic");
            if !rest.as_ref().is_err_and(exit::is_interrupt) {
                super::drift::findings_into(p, &records, replayed, record);
            }
        }
        rest
    });
    // The CLI's table is checked whatever happened after step 3 (not after an interrupt: the CLI
    // was stopped with the rest).
    if let Some(early) = early.filter(|_| !rest.as_ref().is_err_and(exit::is_interrupt)) {
        flow::check_cli(&sel, early, &mut pre_log, place, record)?;
    }
    rest
}

/// What step 3's one round trip read: the first snapshot (as records and as text), the history
/// and the rows of the tables the unapplied files name.
struct Read {
    records: Result<Vec<String>>,
    before: Result<String>,
    history: Option<history::History>,
    rows_first: Option<std::collections::BTreeMap<String, rows::Rows>>,
}

/// Step 3's reads, in the session's first round trip: the first schema snapshot, the history
/// (what is pending, and the statements each applied file had) and the rows of the tables the
/// unapplied files name.
fn first_reads(p: &Prepared) -> Vec<String> {
    let mut reads = vec![snapshot::records_query(), history::HISTORY_QUERY.to_string()];
    reads.extend(rows::query_for_unapplied(&p.tree.migrations));
    reads
}

/// What came back of [`first_reads`] (`queries`); a snapshot that did not is read again alone
/// (with the rest once more), a history or row count that did not goes without, as before.
fn read_first((queries, reads): (&[String], Vec<Option<Vec<String>>>), target: &mut Target) -> Read {
    // The snapshot, the history, and the row counts when a file names a table.
    let counted = queries.len() > 2;
    let mut reads = reads.into_iter();
    let (snapshot, history, rows) = (reads.next().flatten(), reads.next().flatten(), reads.next().flatten());
    let (records, history, rows) = match snapshot.map(|lines| snapshot::decode(&lines)) {
        Some(Ok(records)) => (Ok(records), history, rows),
        _ => {
            // Again, in a round trip of its own.
            match snapshot::records(target, &queries[1..]) {
                Ok((records, Ok(mut parts))) => {
                    let mut parts = parts.drain(..).map(Some);
                    (Ok(records), parts.next().flatten(), parts.next().flatten())
                }
                Ok((records, Err(e))) => {
                    progress!(
                        "step 3 history and row counts: not read with the snapshot ({e:#}); reading the history alone"
                    );
                    (Ok(records), None, None)
                }
                Err(e) => (Err(e), None, None),
            }
        }
    };
    let before = records.as_ref().map(|r| snapshot::joined(r)).map_err(|e| anyhow::anyhow!("{e:#}"));
    let history = history.and_then(|lines| history::History::parse(&lines));
    let rows_first = match counted {
        true => rows.map(|lines| rows::parse(&lines)),
        false => Some(Default::default()),
    };
    Read { records, before, history, rows_first }
}

/// Step 3's lint of what is about to be rehearsed and its rollbacks; a migration without a
/// rollback script is a blocker.
fn lint_selected(p: &Prepared, sel: &flow::Selection, record: &mut Record) {
    for m in sel.selected.iter().filter(|m| m.rollback.is_none()) {
        record.summary_mut().blockers.push(format!(
            "no rollback script for {}: write supabase/migrations.backup/{}_{}_rollback.sql",
            m.file(),
            m.version,
            m.name
        ));
    }
    // Step 3 also lints what is about to be rehearsed (rollback pairs are reported above).
    let mut linted = 0;
    for m in &sel.selected {
        for file in std::iter::once(&m.sql).chain(m.rollback.as_ref()) {
            let found = lint::statements(&file.rel, &file.script, &p.rules);
            linted += found.len();
            record.summary_mut().findings.extend(found);
        }
    }
    let unpaired = sel.selected.iter().filter(|m| m.rollback.is_none()).count();
    progress!(
        "step 3 lint: {linted} finding(s) in the {} migration(s) to rehearse and their rollbacks{}",
        sel.selected.len(),
        if unpaired > 0 { format!("; {unpaired} without a rollback script (a blocker)") } else { String::new() }
    );
}

/// What step 3's round trip read for step 4.
struct FirstLook {
    before: Result<String>,
    rows: Option<std::collections::BTreeMap<String, rows::Rows>>,
}
