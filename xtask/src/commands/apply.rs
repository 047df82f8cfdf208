//! `cargo xtask apply [--molecule ID]`: step 4 alone, for replays. With `--molecule`, one replay
//! attempt recorded in the plan; its status stays `in_progress` on success (applied, not yet
//! rolled back or verified).

use anyhow::Result;

use super::flow::{self, APPLY_LOG};
use super::Ctx;
use crate::evidence::feedback;
use crate::evidence::plan;
use crate::evidence::record::Outputs;
use crate::evidence::summary::Inventories;
use crate::exit::{self, Exit};
use crate::prepare::{self, Flags, Needs};
use crate::progress;
use crate::runbook::advisors::Advisors;
use crate::runbook::{history, inventory};

pub fn run(ctx: &Ctx, flags: Flags) -> Result<Exit> {
    let p = prepare::prepare(ctx.workdir.clone(), flags, Needs { contract: false, plan: true, cli: true }, None)?;
    p.refuse_spent_molecules()?;
    let advisors = Advisors::from_config(&p.config.advisors, &p.config.advisor_exclude, p.rules.exposed())?;
    let mut target = flow::open_target(&p)?;
    target.want_lock();
    let mut record = flow::new_record(&p, &target);
    // Steps 2 and 1 and the history: the session's first round trip.
    let (_, _, first) = flow::connectivity_with(&mut target, &mut record, &[history::HISTORY_QUERY.to_string()])?;
    flow::lock_and_identify(&mut target, &mut record, &first)?;
    let history = first.reads.into_iter().next().flatten().and_then(|lines| history::History::parse(&lines));
    let dir = record.open_dir()?.rel.clone();
    let (_, warnings) = feedback::ensure_header(
        &p.workdir,
        &record.date(),
        &format!("Apply (one replay attempt of) the selected migrations on {}.", p.kind.as_str()),
        &["cargo xtask apply".to_string()],
        &dir,
    )?;
    record.summary_mut().warnings.extend(warnings);
    let done = (|| -> Result<()> {
        // What is pending comes from the tool's own history query, its table the transcript (a
        // replay needs no second reader: `stage-rehearse` keeps the CLI's table as the runbook's
        // evidence). Only when that query fails does `supabase migration list` run.
        let mut log = record.day_transcript("migration_status_pre", "txt", "inventory before")?;
        let history = match history {
            Some(history) => Some(history),
            None => history::read_history(&mut target)?,
        };
        let pre = match history {
            Some(history) => history.inventory(&p.tree, &mut log)?,
            None => {
                let listed = inventory::list(p.cli.as_ref(), &target.conn().clone(), &mut log, target.kind.place())?;
                inventory::finish(listed, &mut target, &p.tree, &mut log)?
            }
        };
        if !pre.ok {
            return Err(exit::cannot_run(format!(
                "step 3 inventory: could not read the migration history ({})",
                log.rel()
            )));
        }
        record.summary_mut().inventory = Some(Inventories { pre: Some(pre.record()), post: None });
        let sel = flow::select(p.kind, &p.tree, &pre, &p.molecules, &mut record.summary_mut().warnings);
        mark_in_progress(&p)?;
        let clock = record.step_start(4, "apply");
        let mut apply_log = record.transcript(APPLY_LOG, "apply")?;
        // The advisors ride in the apply's last round trip.
        let mut trailer = flow::advisors_trailer(&advisors);
        if flow::apply_unrehearsed(&mut target, &sel.baseline, "step 4 baseline", &mut apply_log, &mut record)? {
            flow::apply_selected(
                &mut target,
                &sel.selected,
                &p.molecules,
                (!p.flags.no_atomic, trailer.as_mut()),
                p.flags.fail_fast,
                &mut apply_log,
                &mut record,
            )?;
        }
        record.step_end(clock);
        if !flow::lost(&mut record, "the advisors") {
            let applied: Vec<_> = sel
                .selected
                .iter()
                .filter(|m| record.summary().migrations.iter().any(|r| r.version == m.version && r.applied()))
                .cloned()
                .collect();
            let advised = flow::advisors_after(&mut target, &advisors, trailer, &applied)?;
            record.summary_mut().findings.extend(advised);
        }
        Ok(())
    })();
    let stop = stopped(done, &mut record);
    // The lock goes while the record is written.
    target.release();
    let exit = record.finish(stop, "in_progress", Outputs { handoff: true, command: "apply" }, &ctx.present);
    drop(target);
    Ok(exit)
}

/// The selected molecules are `in_progress` in the plan while their attempt runs.
fn mark_in_progress(p: &crate::prepare::Prepared) -> Result<()> {
    let Some(path) = &p.plan else { return Ok(()) };
    let changes: Vec<plan::Change> = p
        .molecules
        .iter()
        .map(|m| plan::Change { id: m.id.clone(), status: "in_progress", attempts: Some(m.attempt), evidence: vec![] })
        .collect();
    if !changes.is_empty() {
        plan::update(path, &changes)?;
    }
    Ok(())
}

/// How the apply ended early, if it did, with its blocker.
fn stopped(done: Result<()>, record: &mut crate::evidence::record::Record) -> Option<Exit> {
    match done {
        Ok(()) => None,
        Err(e) if exit::is_interrupt(&e) => {
            progress!("interrupted: the child processes were stopped; writing a halted summary");
            record
                .summary_mut()
                .blockers
                .push("interrupted (Ctrl-C or SIGTERM) part way: read the logs before re-running".into());
            Some(Exit::Interrupted)
        }
        Err(e) => {
            crate::out::err_line(&format!("error: {e:#}"));
            record.summary_mut().blockers.push(format!("the apply stopped: {e:#}"));
            Some(Exit::CannotRun)
        }
    }
}
