//! `cargo xtask rollback --target staging|url`: step 5 alone. It undoes, newest first, what the
//! latest earlier run in this workdir applied, and only on the very database that run applied
//! to: the server must prove it is the same (system identifier, database oid, role, the DSN's
//! user, host and port, as recorded in that run's summary.json), and each history row must still
//! be the one that run wrote (its statements' hash). Anything else is refused (exit 2), saying why.
//! Never on `local` or on a target chosen by default.

use std::collections::BTreeMap;

use anyhow::Result;

use super::flow::{self, ROLLBACK_LOG};
use super::Ctx;
use crate::database::identity::Identity;
use crate::database::{Kind, Target};
use crate::evidence::record::Outputs;
use crate::evidence::summary::{MigrationRow, Summary};
use crate::exit::{self, Exit};
use crate::prepare::{self, Flags, Needs};
use crate::process::psql::Unit;
use crate::progress;
use crate::runbook::rollback;

pub fn run(ctx: &Ctx, flags: Flags) -> Result<Exit> {
    match (flags.target.as_deref(), flags.db_url.is_some()) {
        (None, false) => {
            return Err(exit::cannot_run(
                "rollback needs --target staging or --target url: it never runs on a target chosen by default",
            ))
        }
        (Some("local"), _) => {
            return Err(exit::cannot_run(
                "rollback has nothing to undo on local: each run's throwaway cluster is gone when it ends; \
                 `cargo xtask stage-rehearse` rehearses the rollbacks",
            ))
        }
        _ => {}
    }
    // Undoing a run is not an attempt at a molecule: the plan is left as it is.
    let flags = Flags { molecules: Vec::new(), ..flags };
    let p = prepare::prepare(ctx.workdir.clone(), flags, Needs::default(), None)?;
    let mut target = flow::open_target(&p)?;
    target.want_lock();
    let mut record = flow::new_record(&p, &target);
    let (_, _, first) = flow::connectivity_with(&mut target, &mut record, &[])?;
    flow::lock_and_identify(&mut target, &mut record, &first)?;
    let live = record.summary().identity.clone().expect("staging and url record their identity");
    let (run_dir, rows) = latest_run(&ctx.workdir, &live, &target)?;
    let recorded_history = history_on(&mut target)?;
    let mut changed = Vec::new();
    let mut targets = Vec::new();
    for row in &rows {
        match (recorded_history.get(&row.version), &row.history) {
            (None, _) => {}
            (Some(live_hash), Some(h)) if *live_hash == h.statements_sha256 => targets.push(row.version.clone()),
            (Some(_), _) => changed.push(row.file.clone()),
        }
    }
    if !changed.is_empty() {
        return Err(exit::cannot_run(format!(
            "refusing to roll back: the history rows of {} on {} are not the ones {run_dir} wrote (applied again since, by \
             another run or by hand); nothing was rolled back",
            changed.join(", "),
            target.what()
        )));
    }
    if targets.is_empty() {
        return Err(exit::cannot_run(format!(
            "nothing of {run_dir} is still applied on {}: nothing to roll back",
            target.what()
        )));
    }
    progress!("step 5 rollback: undoing what {run_dir} applied, on the same database (identity checked)");
    record.open_dir()?;
    let mut log = record.transcript(ROLLBACK_LOG, "rollback")?;
    let migrations: Vec<_> = p.tree.migrations.iter().filter(|m| targets.contains(&m.version)).rev().cloned().collect();
    let done = (|| -> Result<()> {
        for m in &migrations {
            let (result, found) = rollback::rollback(&mut target, m, &mut log)?;
            progress!(
                "step 5 rollback {}_{} .. {}",
                m.version,
                m.name,
                if result.status == crate::evidence::summary::Status::RolledBack { "ok" } else { "FAILED" }
            );
            record.summary_mut().findings.extend(found);
            let mut row = flow::new_row(m, None);
            row.rollback = result;
            record.summary_mut().migrations.insert(0, row);
            if flow::lost(&mut record, "the remaining rollbacks") {
                break;
            }
        }
        Ok(())
    })();
    let stop = match done {
        Ok(()) => None,
        Err(e) if exit::is_interrupt(&e) => Some(Exit::Interrupted),
        Err(e) => {
            crate::out::err_line(&format!("error: {e:#}"));
            Some(Exit::CannotRun)
        }
    };
    // The lock goes while the record is written.
    target.release();
    let exit = record.finish(stop, "completed", Outputs { handoff: true, command: "rollback" }, &ctx.present);
    drop(target);
    Ok(exit)
}

/// The latest earlier run in the workdir that applied something to a staging or url target,
/// with the rows it left applied; refused when it applied to another database than `live`.
fn latest_run(workdir: &std::path::Path, live: &Identity, target: &Target) -> Result<(String, Vec<MigrationRow>)> {
    let mut summaries: Vec<std::path::PathBuf> = crate::walk::tree(&workdir.join("artifacts/ops"))
        .min_depth(2)
        .max_depth(2)
        .into_iter()
        .flatten()
        .map(|e| e.path().join("summary.json"))
        .filter(|p| p.is_file())
        .collect();
    summaries.sort();
    let mut unproven = 0;
    for path in summaries.iter().rev() {
        let Ok(summary) = serde_json::from_str::<Summary>(&std::fs::read_to_string(path).unwrap_or_default()) else {
            unproven += 1;
            continue;
        };
        if summary.target.kind == Kind::Local {
            continue;
        }
        let rows: Vec<MigrationRow> = summary.migrations.iter().filter(|r| r.left_applied()).cloned().collect();
        if rows.is_empty() {
            continue;
        }
        let Some(recorded) = &summary.identity else {
            unproven += 1;
            continue;
        };
        let differences = recorded.differences(live);
        if !differences.is_empty() {
            return Err(exit::cannot_run(format!(
                "refusing to roll back {}: the latest run that applied migrations from this workdir ({}) applied them to \
                 another database ({}); roll back only where a run applied, with the DSN that run used",
                target.what(),
                summary.rehearsal_dir,
                differences.join("; ")
            )));
        }
        return Ok((summary.rehearsal_dir, rows));
    }
    let note = if unproven > 0 {
        format!(" ({unproven} earlier run(s) recorded no database identity to prove it)")
    } else {
        String::new()
    };
    Err(exit::cannot_run(format!(
        "no earlier run applied anything to {} that this tool can prove: nothing of ours to roll back{note}",
        target.what()
    )))
}

/// Each history row on the target: version and the hash of its statements.
fn history_on(target: &mut Target) -> Result<BTreeMap<String, String>> {
    let unit = Unit {
        before: "\\pset format unaligned\n\\pset tuples_only on\n\\pset fieldsep ' '".into(),
        body: "select version, encode(sha256(convert_to(coalesce(array_to_string(statements, chr(31)), ''), 'UTF8')), 'hex') \
               from supabase_migrations.schema_migrations order by 1;"
            .into(),
        after: "\\pset format aligned\n\\pset tuples_only off\n\\pset fieldsep '|'".into(),
    };
    let ran = target.run(&unit, None)?;
    if !ran.ok() {
        return Err(exit::cannot_run(format!("reading supabase_migrations.schema_migrations: {}", ran.text.trim())));
    }
    Ok(ran.text.lines().filter_map(|l| l.split_once(' ')).map(|(v, h)| (v.to_string(), h.trim().to_string())).collect())
}
