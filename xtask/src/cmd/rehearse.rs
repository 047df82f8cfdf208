//! `cargo xtask stage-rehearse`: the runbook's steps 0–8, in order, into one rehearsal dir.
//!
//! The session does steps 0–3 and 7–8; this file holds the rehearsal proper, steps 4–6: apply,
//! the security advisors, rollback with the schema compared, re-apply, and the RLS contract. An
//! interrupt part way still writes a `halted` summary and the plan's real state.

use anyhow::Result;
use serde_json::json;

use super::forward;
use super::session::{select, Options, Session};
use super::Ctx;
use crate::artifacts::write_atomic;
use crate::exit::{self, Exit};
use crate::steps::rollback::RolledBack;
use crate::steps::{advisors, apply, inventory, rls, rollback};
use crate::target::Kind;
use crate::tree::{Migration, SEED};
use crate::{findings, lint, progress, schema};

pub const APPLY_LOG: &str = "migration_apply.log";
pub const ROLLBACK_LOG: &str = "migration_rollback.log";
pub const RLS_LOG: &str = "rls_contract.log";

pub fn run(ctx: &Ctx, opts: &Options) -> Result<Exit> {
    let mut s = Session::begin(ctx, opts, Some("Rehearse (apply, rollback, re-apply, RLS contract)"), true)?;
    // Step 3's CLI runs while step 2 checks the connection and step 4 takes its first snapshot.
    let (pre, before) = s.inventory_during(|s| {
        s.connectivity()?;
        s.lock()?;
        Ok(schema::snapshot(&s.pg_dump, &s.db.dsn, &[], &s.db.redactor, s.db.lock_timeout.as_deref()))
    })?;
    let (baseline, selected) = select(s.kind, &s.tree, &pre, &s.molecules, &mut s.summary.warnings);
    for m in &selected {
        if m.rollback.is_none() {
            s.summary.blockers.push(format!(
                "no rollback script for {}: write supabase/migrations.backup/{}_{}_rollback.sql",
                m.file, m.version, m.name
            ));
        }
    }
    // Step 3 also lints what is about to be rehearsed (rollback pairs are reported above).
    let rules = lint::Rules::from_config(&s.config.raw).map_err(exit::cannot_run)?;
    let mut linted = 0;
    for file in selected.iter().flat_map(|m| std::iter::once(m.file.clone()).chain(m.rollback.clone())) {
        let text = std::fs::read_to_string(s.db.workdir.join(&file))?;
        let found = lint::statements(&file, &text, &rules);
        linted += found.len();
        s.summary.findings.extend(found);
    }
    progress!(
        "step 3 lint: {linted} finding(s) in the {} migration(s) to rehearse and their rollbacks",
        selected.len()
    );
    s.start_attempts()?;
    let post = match rehearse(&mut s, &baseline, &selected, opts, before) {
        Ok(post) => post,
        Err(e) if exit::exit_of(&e) != Exit::Interrupted => return Err(e),
        Err(_) => {
            progress!("interrupted: the child processes were stopped; writing a halted summary");
            s.summary.halted = true;
            s.summary.blockers.push("interrupted (Ctrl-C or SIGTERM) part way: the target may hold a partial rehearsal; read the logs before re-running".into());
            None
        }
    };
    s.summary.inventory = Some(json!({"pre": pre.to_json(), "post": post}));
    s.finish(ctx)
}

/// Steps 4–6 (and the post-run inventory of step 7), which run while the target is open.
fn rehearse(
    s: &mut Session,
    baseline: &[Migration],
    selected: &[Migration],
    opts: &Options,
    before: Result<String>,
) -> Result<Option<serde_json::Value>> {
    let Session { db, pg_dump, rehearsal, tree, contract, molecules, kind, summary: r, cli, .. } = s;
    let (db, rehearsal, kind) = (&*db, &*rehearsal, *kind);
    let apply_rel = rehearsal.rel_file(APPLY_LOG);
    let mut apply_log = rehearsal.log(APPLY_LOG)?;
    r.logs.push(("apply".into(), apply_rel.clone()));
    if !forward::baseline(db, baseline, &mut apply_log, &apply_rel, r)? {
        return Ok(None);
    }

    // Step 4: the schema snapshot (taken during step 3; again after a baseline, which changes the
    // schema the molecule starts from), then apply. Without a snapshot there is no rollback
    // evidence, which the summary says; the rehearsal goes on.
    let snapshot = || schema::snapshot(pg_dump.as_path(), &db.dsn, &[], &db.redactor, db.lock_timeout.as_deref());
    let before = if baseline.is_empty() { before } else { snapshot() };
    let before = match before {
        Ok(before) => {
            write_atomic(&rehearsal.file("schema_before.sql"), before.as_bytes())?;
            Some(before)
        }
        Err(e) if exit::exit_of(&e) == Exit::Interrupted => return Err(e),
        Err(e) => {
            progress!("step 4 schema snapshot: could not be taken ({})", first_line(&format!("{e:#}")));
            r.blockers.push(format!(
                "no schema snapshot before the apply, so no rollback evidence: {}",
                first_line(&format!("{e:#}"))
            ));
            None
        }
    };
    forward::apply_selected(db, selected, molecules, opts, &mut apply_log, &apply_rel, r)?;

    if lost(r) {
        return Ok(None);
    }
    // After the forward apply: the security advisors.
    let applied: Vec<Migration> =
        r.migrations.iter().filter(|row| row.applied()).map(|row| row.migration.clone()).collect();
    r.findings.extend(advisors::run(db, &applied)?);

    // Step 5: rollback, newest first, only what applied in this run; then compare and re-apply.
    let rollback_rel = rehearsal.rel_file(ROLLBACK_LOG);
    let mut rollback_log = rehearsal.log(ROLLBACK_LOG)?;
    r.logs.push(("rollback".into(), rollback_rel.clone()));
    for row in r.migrations.iter_mut().rev() {
        if !row.applied() {
            row.rollback = Some(RolledBack::Skipped);
            continue;
        }
        let (result, found) = rollback::rollback(db, &row.migration, &mut rollback_log, &rollback_rel)?;
        progress!(
            "step 5 rollback {}_{} .. {}",
            row.migration.version,
            row.migration.name,
            match &result {
                RolledBack::Done => "ok",
                RolledBack::Missing => "MISSING (no rollback script)",
                _ => "FAILED",
            }
        );
        r.findings.extend(found);
        row.rollback = Some(result);
    }
    if lost(r) {
        return Ok(None);
    }
    match before.map(|before| (before, snapshot())) {
        Some((before, Ok(after))) => {
            write_atomic(&rehearsal.file("schema_after_rollback.sql"), after.as_bytes())?;
            r.schema_restored = Some(before == after);
            if before != after {
                let diff =
                    schema::diff(&rehearsal.path, "schema_before.sql", "schema_after_rollback.sql", &before, &after);
                write_atomic(&rehearsal.file("schema_rollback.diff"), diff.as_bytes())?;
                r.logs.push(("schema diff".into(), rehearsal.rel_file("schema_rollback.diff")));
            }
            progress!(
                "step 5 schema after rollback: {}",
                if before == after { "identical to before the apply" } else { "DIFFERS (schema_rollback.diff)" }
            );
        }
        // The database went away, or a lock stayed held: say so in the summary rather than stop.
        Some((_, Err(e))) if exit::exit_of(&e) != Exit::Interrupted => {
            progress!("step 5 schema after rollback: could not be read ({})", first_line(&format!("{e:#}")));
            r.blockers.push(format!(
                "the schema after the rollbacks could not be read, so the rollback evidence is incomplete: {}",
                first_line(&format!("{e:#}"))
            ));
        }
        Some((_, Err(e))) => return Err(e),
        None => {}
    }
    use std::io::Write;
    writeln!(apply_log, "== re-apply\n")?;
    for row in r.migrations.iter_mut() {
        if matches!(row.rollback, Some(RolledBack::Done)) {
            let again = apply::apply(db, &row.migration, !opts.no_atomic, &mut apply_log, &apply_rel)?;
            progress!(
                "step 5 re-apply {}_{} .. {}",
                row.migration.version,
                row.migration.name,
                if again.ok { "ok" } else { "FAILED" }
            );
            r.findings.extend(again.findings.iter().cloned());
            row.reapply = Some(again);
        }
    }

    // Step 7's inventory reads only the history, final once the re-apply is done: the CLI starts
    // now and runs while step 6 (the seed on local, then the RLS contract) does.
    let post_rel = rehearsal.rel_file("migration_status_post.txt");
    let post_path = rehearsal.file("migration_status_post.txt");
    let (post, rls_result) = std::thread::scope(|scope| {
        let post = scope.spawn(|| inventory::run(db, tree, cli.as_ref(), &post_path, &post_rel));
        let rls_result = (|| -> Result<rls::RlsResult> {
            if kind == Kind::Local && db.workdir.join(SEED).is_file() {
                writeln!(apply_log, "==> {SEED}")?;
                let out = db.psql().args(["-f", SEED]).run(&db.redactor, Some(&mut apply_log))?;
                if !out.success() {
                    writeln!(apply_log, "!! failure: {SEED}")?;
                    r.findings.extend(findings::scan(&out.text, Some(&apply_rel)));
                }
                writeln!(apply_log)?;
            }
            let rls_rel = rehearsal.rel_file(RLS_LOG);
            let result = rls::run(db, contract, &mut rehearsal.log(RLS_LOG)?, &rls_rel)?;
            r.logs.push(("RLS contract".into(), rls_rel));
            Ok(result)
        })();
        (post.join().expect("the inventory thread does not panic"), rls_result)
    });
    let result = rls_result?;
    progress!(
        "step 6 rls: {} of {} planned passed, {} failed, {} errors",
        result.passed(),
        result.planned(),
        result.failed(),
        result.errors().len()
    );
    r.findings.extend(result.errors().into_iter().cloned());
    r.rls = Some(result);
    let post = post?;
    r.findings.extend(post.findings.iter().cloned());
    progress!("step 7 inventory after: {} pending, {} applied", post.pending.len(), post.applied.len());
    Ok(Some(post.to_json()))
}

fn first_line(text: &str) -> &str {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or(text).trim()
}

/// Whether the database went away: then no further command is sent (behind a pooler each would
/// wait minutes for a server that is gone), and the summary says what was not done.
fn lost(r: &mut crate::summary::Summary) -> bool {
    let gone = r.findings.iter().any(|f| f.class == "connection");
    if gone {
        r.blockers.push(
            "the database went away during the run: the remaining steps (rollback, re-apply, RLS contract, inventory) \
             were not run; check the target's state with `cargo xtask inventory` before anything else"
                .into(),
        );
        progress!("stopping: the database went away; the remaining steps were not run");
    }
    gone
}
