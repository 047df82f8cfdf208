//! The single-step commands, for replays and debugging: `connectivity` (step 2), `inventory`
//! (step 3), `apply` (step 4; with `--molecule` one replay attempt), `rollback` (step 5, only
//! what an earlier run applied to this same target) and `feedback` (steps 0 and 8).

use std::path::PathBuf;

use anyhow::Result;
use serde_json::Value;

use super::forward;
use super::session::{select, Options, Session};
use super::Ctx;
use crate::clock::Utc;
use crate::exit::{self, Exit};
use crate::steps::rollback::RolledBack;
use crate::steps::{advisors, rollback};
use crate::summary::MigrationRow;
use crate::{feedback, progress, report};

/// `cargo xtask connectivity`: exit 0 when the server answers on IPv4.
pub fn connectivity(ctx: &Ctx, opts: &Options) -> Result<Exit> {
    let mut s = Session::begin(ctx, opts, None, false)?;
    let conn = s.connectivity()?;
    let rel = s.day_logs.last().map(|(_, p)| p.clone()).unwrap_or_default();
    s.target = None;
    println!(
        "{} at {} ({}): {rel}",
        conn.database.unwrap_or_default(),
        conn.server_addr.as_deref().unwrap_or("no address"),
        if s.summary.blockers.is_empty() { "IPv4" } else { "NOT IPv4" }
    );
    Ok(if s.summary.blockers.is_empty() { Exit::Passed } else { Exit::Failed })
}

/// `cargo xtask inventory`: pending, applied, applied remotely but missing locally, and gaps.
pub fn inventory(ctx: &Ctx, opts: &Options) -> Result<Exit> {
    let mut s = Session::begin(ctx, opts, None, false)?;
    let inv = s.inventory()?;
    let rel = s.day_logs.last().map(|(_, p)| p.clone()).unwrap_or_default();
    s.target = None;
    let gaps: Vec<&str> = s
        .tree
        .migrations
        .iter()
        .filter(|m| inv.pending.contains(&m.version) && m.rollback.is_none())
        .map(|m| m.file.as_str())
        .collect();
    println!("inventory from {} ({rel})", inv.source);
    println!("pending ({}): {}", inv.pending.len(), inv.pending.join(" "));
    println!("applied ({}): {}", inv.applied.len(), inv.applied.join(" "));
    println!("applied remotely, missing locally ({}): {}", inv.remote_only.len(), inv.remote_only.join(" "));
    println!("pending without a rollback script ({}): {}", gaps.len(), gaps.join(" "));
    for w in &s.summary.warnings {
        eprintln!("warning: {w}");
    }
    Ok(Exit::Passed)
}

/// `cargo xtask apply [--molecule ID]`: step 4 alone, recorded as an attempt of each molecule.
pub fn apply(ctx: &Ctx, opts: &Options) -> Result<Exit> {
    let mut s = Session::begin(ctx, opts, Some("Apply (one replay attempt of)"), false)?;
    s.connectivity()?;
    s.lock()?;
    let pre = s.inventory()?;
    let (baseline, selected) = select(s.kind, &s.tree, &pre, &s.molecules, &mut s.summary.warnings);
    s.start_attempts()?;
    s.success_status = "in_progress";
    let rel = s.rehearsal.rel_file(super::rehearse::APPLY_LOG);
    let mut log = s.rehearsal.log(super::rehearse::APPLY_LOG)?;
    s.summary.logs.push(("apply".into(), rel.clone()));
    if forward::baseline(&s.db, &baseline, &mut log, &rel, &mut s.summary)? {
        forward::apply_selected(&s.db, &selected, &s.molecules, opts, &mut log, &rel, &mut s.summary)?;
    }
    let applied: Vec<_> = s.summary.migrations.iter().filter(|r| r.applied()).map(|r| r.migration.clone()).collect();
    let found = advisors::run(&s.db, &applied)?;
    s.summary.findings.extend(found);
    s.finish(ctx)
}

/// `cargo xtask rollback --target staging|url`: roll back, newest first, what the latest run on this
/// same target applied and the target still records. Never on `local` or a defaulted target: a
/// rollback runs only on a database named on purpose.
pub fn rollback(ctx: &Ctx, opts: &Options) -> Result<Exit> {
    match opts.target.as_deref() {
        None => return Err(exit::cannot_run("rollback needs --target staging or --target url: it never runs on a target chosen by default")),
        Some("local") => return Err(exit::cannot_run("rollback has nothing to undo on local: each run's throwaway cluster is gone when it ends; `cargo xtask stage-rehearse` rehearses the rollbacks")),
        _ => {}
    }
    let mut s = Session::begin(ctx, opts, None, false)?;
    // Undoing a run is not an attempt at a molecule: the plan is left as it is.
    s.plan = None;
    s.molecules.clear();
    s.connectivity()?;
    s.lock()?;
    let pre = s.inventory()?;
    let host = s.summary.target.host.clone();
    let database = s.summary.target.database.clone();
    let Some((run_dir, versions)) = latest_applied(&ctx.workdir, &host, &database, &s.rehearsal.path) else {
        return Err(exit::cannot_run(format!(
            "no earlier run applied anything to {host}/{database}: nothing of ours to roll back"
        )));
    };
    progress!("step 5 rollback: undoing what {run_dir} applied, where the target still records it");
    let rel = s.rehearsal.rel_file(super::rehearse::ROLLBACK_LOG);
    let mut log = s.rehearsal.log(super::rehearse::ROLLBACK_LOG)?;
    s.summary.logs.push(("rollback".into(), rel.clone()));
    let mut targets: Vec<_> = s
        .tree
        .migrations
        .iter()
        .filter(|m| versions.contains(&m.version) && pre.applied.contains(&m.version))
        .cloned()
        .collect();
    targets.reverse();
    for m in targets {
        let (result, found) = rollback::rollback(&s.db, &m, &mut log, &rel)?;
        progress!(
            "step 5 rollback {}_{} .. {}",
            m.version,
            m.name,
            if matches!(result, RolledBack::Done) { "ok" } else { "FAILED" }
        );
        s.summary.findings.extend(found);
        let mut row = MigrationRow::new(&m, None);
        row.rollback = Some(result);
        s.summary.migrations.insert(0, row);
    }
    s.finish(ctx)
}

/// The versions the most recent earlier run on `host`/`database` applied, and that run's dir.
fn latest_applied(
    workdir: &std::path::Path,
    host: &str,
    database: &str,
    skip: &std::path::Path,
) -> Option<(String, Vec<String>)> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(workdir.join("artifacts/ops"))
        .ok()?
        .flatten()
        .flat_map(|day| std::fs::read_dir(day.path()).into_iter().flatten().flatten().map(|e| e.path()))
        .filter(|p| p != skip)
        .collect();
    runs.sort_by_key(|p| p.file_name().map(|n| n.to_owned()));
    runs.into_iter().rev().find_map(|dir| {
        let summary: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).ok()?).ok()?;
        if summary["target"]["host"] != host
            || summary["target"]["database"] != database
            || summary["target"]["kind"] == "local"
        {
            return None;
        }
        let versions: Vec<String> = summary["migrations"]
            .as_array()?
            .iter()
            .filter(|m| m["apply"]["status"] == "applied" || m["reapply"]["status"] == "applied")
            .filter_map(|m| m["version"].as_str().map(str::to_string))
            .collect();
        (!versions.is_empty()).then(|| (summary["rehearsal_dir"].as_str().unwrap_or_default().to_string(), versions))
    })
}

/// `cargo xtask feedback`: start today's header if the file is absent; otherwise append the
/// hand-off of the latest rehearsal that is not in it yet.
pub fn feedback(ctx: &Ctx) -> Result<Exit> {
    let w = &ctx.workdir;
    let today = Utc::now().date();
    let rel = feedback::path(&today);
    if !w.join(&rel).exists() {
        let commands = vec!["cargo xtask stage-rehearse".to_string()];
        let (_, warnings) = feedback::ensure_header(
            w,
            &today,
            "Rehearse the pending Supabase migrations on staging and hand off a clean audit trail.",
            &commands,
            &format!("artifacts/ops/{today}/"),
        )?;
        for warning in warnings {
            eprintln!("warning: {warning}");
        }
        println!("started today's header: {rel}");
        return Ok(Exit::Passed);
    }
    let mut runs: Vec<PathBuf> = std::fs::read_dir(w.join(format!("artifacts/ops/{today}")))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("summary.json").is_file())
        .collect();
    runs.sort();
    let Some(latest) = runs.pop() else {
        println!("{rel} has its header and there is no rehearsal today to hand off");
        return Ok(Exit::Passed);
    };
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(latest.join("summary.json"))?)?;
    let name = latest.file_name().unwrap_or_default().to_string_lossy().into_owned();
    if std::fs::read_to_string(w.join(&rel))?.contains(&format!("## Hand-off: {name} ")) {
        println!("{rel} already holds the hand-off of {name}");
        return Ok(Exit::Passed);
    }
    feedback::append(w, &today, &report::handoff(&summary))?;
    println!("appended the hand-off of {name} to {rel}");
    Ok(Exit::Passed)
}
