//! Steps 4 to 7 of the rehearsal once step 3 has read the target: the snapshot and apply, the
//! advisors, the rollbacks newest first, the schema and rows compared, the re-apply, then the RLS
//! contract with the CLI's inventory alongside.

use super::*;

/// Steps 4–7, once step 3 has chosen what to rehearse.
pub(super) fn apply_and_verify(
    p: &Prepared,
    advisors: &Advisors,
    sel: &flow::Selection,
    first: FirstLook,
    target: &mut Target,
    record: &mut Record,
) -> Result<()> {
    // Step 4: the snapshot (taken during step 3; again after a baseline, which changes the schema
    // the molecule starts from), then apply, then the advisors.
    let clock = record.step_start(4, "apply");
    // Step 7's `supabase migration list` starts up now, held at its first connection until the
    // history is as the run leaves it: its start-up overlaps steps 4 and 5.
    let post = inventory::spawn_held(p.cli.clone(), target.conn().clone());
    let mut apply_log = record.transcript(APPLY_LOG, "apply")?;
    if !flow::apply_unrehearsed(target, &sel.baseline, "step 4 baseline", &mut apply_log, record)? {
        return Ok(());
    }
    let (before, rows_before) = snapshot_before(sel, first, target, record)?;
    // The advisors ride in the apply's last round trip.
    let mut trailer = flow::advisors_trailer(advisors);
    flow::apply_selected(
        target,
        &sel.selected,
        &p.molecules,
        (!p.flags.no_atomic, trailer.as_mut()),
        p.flags.fail_fast,
        &mut apply_log,
        record,
    )?;
    record.step_end(clock);
    if flow::lost(record, "rollback, re-apply, RLS contract, inventory") {
        return Ok(());
    }
    let applied: Vec<_> = sel.selected.iter().filter(|m| applied_in(record, &m.version)).cloned().collect();
    let advised = flow::advisors_after(target, advisors, trailer, &applied)?;
    record.summary_mut().findings.extend(advised);

    // Step 5: rollback, newest first, only what applied in this run; then compare and re-apply.
    let clock = record.step_start(5, "rollback");
    roll_back(sel, target, record)?;
    if flow::lost(record, "schema comparison, re-apply, RLS contract, inventory") {
        return Ok(());
    }
    crate::commands::schema_check::compare(target, record, before, rows_before, &sel.selected)?;
    reapply(p, sel, target, record, &mut apply_log)?;
    record.step_end(clock);
    if flow::lost(record, "RLS contract, inventory") {
        return Ok(());
    }

    // Local: the migrations after a molecule's, then the seed, so the contract sees the whole tree.
    if !flow::apply_unrehearsed(target, &sel.tail, "step 5 tail", &mut apply_log, record)? {
        return Ok(());
    }
    flow::seed(target, &mut apply_log, record)?;
    // The history is final: the held list may read it.
    post.release();
    contract_and_inventory(p, sel, post, target, record)
}

/// The schema before the apply (written to `schema_before.sql`) and the rows of the tables the
/// rehearsed files name, for what a rollback loses: read in step 3's round trip, or again with
/// the snapshot after a baseline. What could not be read is a blocker (no snapshot) or a warning
/// (no rows).
fn snapshot_before(
    sel: &flow::Selection,
    first: FirstLook,
    target: &mut Target,
    record: &mut Record,
) -> Result<(Option<String>, Option<std::collections::BTreeMap<String, rows::Rows>>)> {
    let FirstLook { before, rows: mut rows_first } = first;
    let rehearsed: Vec<&Migration> = sel.selected.iter().collect();
    let (before, rows_read) = if sel.baseline.is_empty() {
        (before, rows_first.take().ok_or_else(|| anyhow::anyhow!("they were not read with the history")))
    } else {
        match snapshot::records(target, &rows::query_for(&rehearsed).into_iter().collect::<Vec<_>>()) {
            Ok((records, rows)) => (
                Ok(snapshot::joined(&records)),
                rows.map(|parts| parts.first().map(|l| rows::parse(l)).unwrap_or_default()),
            ),
            Err(e) => (Err(e), Err(anyhow::anyhow!("the snapshot failed"))),
        }
    };
    let before = match before {
        Ok(before) => {
            write_atomic(&record.open_dir()?.file("schema_before.sql"), before.as_bytes())?;
            Some(before)
        }
        Err(e) => {
            progress!("step 4 schema snapshot: could not be taken ({e:#})");
            record
                .summary_mut()
                .blockers
                .push(format!("no schema snapshot before the apply, so no rollback evidence: {e:#}"));
            None
        }
    };
    let rows_before = match before.as_ref().map(|_| rows_read) {
        Some(Ok(rows)) => {
            let exact = rows.iter().filter(|(_, r)| r.count <= rows::COUNT_BOUND).map(|(t, r)| (t.clone(), r.count));
            target.set_exact_rows(exact.collect());
            Some(rows)
        }
        Some(Err(e)) => {
            record.summary_mut().warnings.push(format!(
                "the rows before the apply could not be counted, so rows a rollback loses go unseen: {e:#}"
            ));
            None
        }
        None => None,
    };
    Ok((before, rows_before))
}

/// Step 5's rollbacks, newest first, of what applied in this run; after one that could not run,
/// the older ones are left (they would meet the newer migration's objects), and said so.
fn roll_back(sel: &flow::Selection, target: &mut Target, record: &mut Record) -> Result<()> {
    let mut rollback_log = record.transcript(ROLLBACK_LOG, "rollback")?;
    let to_roll_back: Vec<&Migration> = sel.selected.iter().rev().filter(|m| applied_in(record, &m.version)).collect();
    let mut in_flight = None;
    let rolled =
        rollback::rollback_all(target, &to_roll_back, &mut rollback_log, &mut in_flight, &mut |m, result, found| {
            progress!(
                "step 5 rollback {}_{} .. {}",
                m.version,
                m.name,
                match result.status {
                    Status::RolledBack => "ok",
                    Status::Missing => "MISSING (no rollback script)",
                    _ => "FAILED",
                }
            );
            // Rollbacks go newest first: once one could not run, an older one would meet the
            // newer migration's objects (its foreign keys, its views) and fail for a reason that
            // is not its own. The older ones are left, and said so.
            let stop = matches!(result.status, Status::Missing | Status::Failed);
            record.summary_mut().findings.extend(found);
            record.row_mut(&m.version).rollback = result;
            if stop {
                let older: Vec<&&Migration> =
                    to_roll_back.iter().skip_while(|o| o.version != m.version).skip(1).collect();
                for o in older.iter().filter(|o| o.rollback.is_none()) {
                    record.row_mut(&o.version).rollback.status = Status::Missing;
                }
                let left: Vec<String> =
                    older.iter().filter(|o| o.rollback.is_some()).map(|o| o.file().to_string()).collect();
                if !left.is_empty() {
                    record.summary_mut().blockers.push(format!(
                        "not rolled back, because {} could not be rolled back first (rollbacks go newest first): {}",
                        m.file(),
                        left.join(", ")
                    ));
                }
            }
            Ok(!stop)
        });
    if let Err(e) = rolled {
        if let Some(m) = in_flight.filter(|_| exit::is_interrupt(&e)).map(|i| to_roll_back[i]) {
            record.row_mut(&m.version).rollback.status = Status::Interrupted;
        }
        return Err(e);
    }
    Ok(())
}

/// Step 5's re-apply of what rolled back.
fn reapply(
    p: &Prepared,
    sel: &flow::Selection,
    target: &mut Target,
    record: &mut Record,
    apply_log: &mut crate::evidence::artifacts::Transcript,
) -> Result<()> {
    apply_log.line("== re-apply")?;
    apply_log.line("")?;
    let again: Vec<Migration> = sel
        .selected
        .iter()
        .filter(|m| record.row_mut(&m.version).rollback.status == Status::RolledBack)
        .cloned()
        .collect();
    apply::apply_all(target, &again, (!p.flags.no_atomic, None), apply_log, &mut None, &mut |m, again| {
        progress!("step 5 re-apply {}_{} .. {}", m.version, m.name, if again.ok { "ok" } else { "FAILED" });
        // The apply already said what the migration locks; its re-apply's figures are in its row.
        let again_found = again.findings.iter().filter(|f| f.class != crate::text::findings::Class::LockRisk);
        record.summary_mut().findings.extend(again_found.cloned());
        let r = record.row_mut(&m.version);
        r.reapply = again.result();
        if again.history.is_some() {
            r.history = again.history.clone();
        }
        Ok(true)
    })?;
    Ok(())
}

/// Step 6, the RLS contract, while step 7's `supabase migration list` (released once the history
/// was final) runs alongside; then step 7.
fn contract_and_inventory(
    p: &Prepared,
    sel: &flow::Selection,
    post: inventory::Early,
    target: &mut Target,
    record: &mut Record,
) -> Result<()> {
    let place = target.kind.place();
    let clock = record.step_start(6, "rls");
    let mut post_log = record.open_dir()?.transcript("migration_status_post.txt")?;
    crate::commands::contract::contract(target, &p.contract, record, "step 6 rls")?;
    let listed = post.wait(&mut post_log, place);
    if let Some(rls) = &record.summary().rls {
        progress!(
            "step 6 rls: {} of {} planned passed, {} failed, {} errors",
            rls.passed,
            rls.planned,
            rls.failed,
            rls.errors
        );
    }
    record.step_end(clock);
    let clock = record.step_start(7, "inventory after");
    let post = inventory::finish(listed?, target, &p.tree, &mut post_log)?;
    progress!("step 7 inventory after: {} pending, {} applied", post.pending.len(), post.applied.len());
    let left = history_left(sel, record);
    let s = record.summary_mut();
    s.findings.extend(post.findings.iter().cloned());
    if let (Some(left), true) = (left, post.ok && post.source != inventory::SQL_SOURCE) {
        let listed = post.applied.iter().chain(&post.remote_only).cloned().collect();
        if let Some(found) = history::check_post(&left, &listed, post_log.rel()) {
            progress!("step 7 inventory after: `supabase migration list` DISAGREES with the history the run left");
            s.findings.push(found);
        }
    }
    if let Some(inv) = s.inventory.as_mut() {
        inv.post = Some(post.record());
    }
    record.step_end(clock);
    Ok(())
}

/// The history as the run left it: what step 3 read, with what the run applied and left applied
/// and without what it rolled back and did not apply again; `None` without step 3's.
fn history_left(sel: &flow::Selection, record: &Record) -> Option<std::collections::BTreeSet<String>> {
    let pre = record.summary().inventory.as_ref()?.pre.as_ref()?;
    let mut left: std::collections::BTreeSet<String> = pre.applied.iter().chain(&pre.remote_only).cloned().collect();
    left.extend(sel.baseline.iter().chain(&sel.tail).map(|m| m.version.clone()));
    for row in &record.summary().migrations {
        if row.left_applied() {
            left.insert(row.version.clone());
        } else {
            left.remove(&row.version);
        }
    }
    Some(left)
}

fn applied_in(record: &Record, version: &str) -> bool {
    record.summary().migrations.iter().any(|r| r.version == version && r.applied())
}
