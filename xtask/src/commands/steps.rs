//! The single-step commands for checks: `connectivity` (step 2) and `inventory` (step 3), whose
//! transcripts stay in the day's folder as the runbook leaves them in `$LOG_ROOT`, and `feedback`
//! (steps 0 and 8).

use std::path::PathBuf;

use anyhow::Result;
use chrono::Utc;

use super::flow;
use super::Ctx;
use crate::evidence::artifacts::date;
use crate::evidence::summary::Summary;
use crate::evidence::{feedback, report};
use crate::exit::{self, Exit};
use crate::out;
use crate::prepare::{self, Flags, Needs};
use crate::runbook::inventory;

/// `cargo xtask connectivity`: exit 0 when the server answers on IPv4.
pub fn connectivity(ctx: &Ctx, flags: Flags) -> Result<Exit> {
    let p = prepare::prepare(ctx.workdir.clone(), flags, Needs::default(), None)?;
    let mut target = flow::open_target(&p)?;
    let mut record = flow::new_record(&p, &target);
    let (conn, rel) = flow::connectivity(&mut target, &mut record)?;
    drop(target);
    out::line(&format!(
        "{} at {} ({}): {}",
        conn.database.as_deref().unwrap_or_default(),
        conn.server_addr.as_deref().unwrap_or("no address"),
        if conn.ipv4() { "IPv4" } else { "NOT IPv4" },
        rel
    ))?;
    Ok(if conn.ipv4() { Exit::Passed } else { Exit::Failed })
}

/// `cargo xtask inventory`: pending, applied, applied remotely but missing locally, and gaps.
pub fn inventory(ctx: &Ctx, flags: Flags) -> Result<Exit> {
    let p = prepare::prepare(ctx.workdir.clone(), flags, Needs { cli: true, ..Needs::default() }, None)?;
    let mut target = flow::open_target(&p)?;
    let mut record = flow::new_record(&p, &target);
    let mut log = record.day_transcript("migration_status_pre", "txt", "inventory")?;
    let place = target.kind.place();
    let conn = target.conn().clone();
    let listed = inventory::list(p.cli.as_ref(), &conn, &mut log, place)?;
    let inv = inventory::finish(listed, &mut target, &p.tree, &mut log)?;
    drop(target);
    if !inv.ok {
        let why = inv
            .findings
            .first()
            .map_or(String::new(), |f| format!("\n  {}: {}\n  what to do: {}", f.class.as_str(), f.message, f.hint));
        return Err(exit::cannot_run(format!(
            "step 3 inventory: could not read the migration history ({}){why}",
            log.rel()
        )));
    }
    let gaps: Vec<&str> = p
        .tree
        .migrations
        .iter()
        .filter(|m| inv.pending.contains(&m.version) && m.rollback.is_none())
        .map(|m| m.file())
        .collect();
    out::text(&format!(
        "inventory from {} ({})\npending ({}): {}\napplied ({}): {}\napplied remotely, missing locally ({}): {}\npending without a rollback script ({}): {}\n",
        inv.source,
        log.rel(),
        inv.pending.len(),
        inv.pending.join(" "),
        inv.applied.len(),
        inv.applied.join(" "),
        inv.remote_only.len(),
        inv.remote_only.join(" "),
        gaps.len(),
        gaps.join(" ")
    ))?;
    for w in &inv.warnings {
        out::err_line(&format!("warning: {w}"));
    }
    Ok(Exit::Passed)
}

/// `cargo xtask feedback`: start today's header if the file is absent; otherwise append the
/// hand-off of the latest rehearsal that is not in it yet.
pub fn feedback(ctx: &Ctx) -> Result<Exit> {
    let w = &ctx.workdir;
    let today = date(&Utc::now());
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
            out::err_line(&format!("warning: {warning}"));
        }
        out::line(&format!("started today's header: {rel}"))?;
        return Ok(Exit::Passed);
    }
    let mut runs: Vec<PathBuf> = crate::walk::tree(&w.join(format!("artifacts/ops/{today}")))
        .min_depth(1)
        .max_depth(1)
        .into_iter()
        .flatten()
        .map(|e| e.path().to_path_buf())
        // A rehearsal's dir: `rls` writes no SUMMARY.md and hands nothing off.
        .filter(|p| p.join("summary.json").is_file() && p.join("SUMMARY.md").is_file())
        .collect();
    runs.sort();
    let Some(latest) = runs.pop() else {
        out::line(&format!("{rel} has its header and there is no rehearsal today to hand off"))?;
        return Ok(Exit::Passed);
    };
    let text = std::fs::read_to_string(latest.join("summary.json"))?;
    let summary: Summary = serde_json::from_str(&text).map_err(|e| {
        exit::cannot_run(format!("{}: not a summary.json this tool reads ({e})", latest.join("summary.json").display()))
    })?;
    let name = latest.file_name().unwrap_or_default().to_string_lossy().into_owned();
    if std::fs::read_to_string(w.join(&rel))?.contains(&format!("## Hand-off: {name} ")) {
        out::line(&format!("{rel} already holds the hand-off of {name}"))?;
        return Ok(Exit::Passed);
    }
    feedback::append(w, &today, &report::handoff(&summary))?;
    out::line(&format!("appended the hand-off of {name} to {rel}"))?;
    Ok(Exit::Passed)
}
