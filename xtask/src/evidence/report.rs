//! Rendering a [`Summary`] for people: the one screen printed at the end of a run, SUMMARY.md in
//! the rehearsal dir, and the hand-off section appended to `feedback/data/<date>.md`. All three
//! come from the same typed summary, so they cannot disagree.

use super::summary::{Impact, MigrationRow, Status, StepResult, Summary};
use crate::text::escape::{md_code, md_prose, one_line};
use crate::text::findings::{Finding, Severity};

fn dir_name(s: &Summary) -> &str {
    s.rehearsal_dir.rsplit('/').next().unwrap_or(&s.rehearsal_dir)
}

fn status(st: Status) -> &'static str {
    match st {
        Status::Applied => "applied",
        Status::RolledBack => "rolled_back",
        Status::Failed => "FAILED",
        Status::Missing => "MISSING",
        Status::Skipped => "skipped",
        Status::Interrupted => "INTERRUPTED",
        Status::Incomplete => "INCOMPLETE",
    }
}

/// The one screen: a migrations × apply / rollback / re-apply table, RLS counts, each failure
/// with where and what to do, blockers, next actions and the key logs.
pub fn screen(s: &Summary) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{} on {} ({}/{})\n",
        dir_name(s),
        s.target.kind.as_str(),
        one_line(&s.target.host),
        one_line(&s.target.database)
    ));
    migrations_lines(&mut out, s);
    rls_lines(&mut out, s);
    finding_lines(&mut out, s);
    closing_lines(&mut out, s);
    out
}

/// Each migration × step (every one that went wrong, the clean ones while it stays one screen), its worst lock, and whether the schema came back.
fn migrations_lines(out: &mut String, s: &Summary) {
    let rows = &s.migrations;
    let rollbacks = rows.iter().any(|r| r.rollback.status != Status::Skipped);
    let reapplies = rows.iter().any(|r| r.reapply.status != Status::Skipped);
    if !rows.is_empty() {
        let width = rows.iter().map(|r| r.version.len() + r.name.len() + 1).max().unwrap_or(0).max(9);
        let mut header = format!("{:<width$}  {:<8}", "migration", "apply");
        if rollbacks {
            header.push_str(&format!("  {:<11}", "rollback"));
        }
        if reapplies {
            header.push_str("  re-apply");
        }
        out.push_str(&format!("\n{}\n", header.trim_end()));
        // Every row that went wrong; the clean ones only while the screen stays one screen.
        let collapse = rows.len() > MAX_ROWS;
        let mut clean = 0;
        for r in rows {
            // A migration whose lock makes others wait while its work grows is shown too.
            let risky = r.apply.impact.iter().chain(&r.rollback.impact).any(Impact::risky);
            if collapse && !r.failed() && !risky {
                clean += 1;
                continue;
            }
            out.push_str(&row_line(r, width, rollbacks, reapplies));
            out.push('\n');
            if let Some(worst) = worst_impact(&r.apply.impact) {
                out.push_str(&format!("  locks {}\n", impact_words(worst)));
            }
        }
        if clean > 0 {
            out.push_str(&format!("({clean} more migration(s), every step of each as it should be: see SUMMARY.md)\n"));
        }
    }
    match s.schema_restored {
        Some(true) => out.push_str("schema after rollback: identical to before the apply\n"),
        Some(false) => out.push_str(&format!(
            "schema after rollback: DIFFERS from before the apply (see {}/schema_rollback.diff)\n",
            s.rehearsal_dir
        )),
        None => {}
    }
}

/// The RLS contract: the counts, each file that went wrong (all while few), each failing test.
fn rls_lines(out: &mut String, s: &Summary) {
    if let Some(rls) = &s.rls {
        out.push_str(&format!(
            "rls: {} planned, {} ran, {} passed, {} failed, {} errors\n",
            rls.planned, rls.ran, rls.passed, rls.failed, rls.errors
        ));
        let collapse = rls.files.len() > MAX_ROWS;
        let clean = rls.files.iter().filter(|f| f.clean()).count();
        for f in rls.files.iter().filter(|f| !collapse || !f.clean()) {
            let planned = f.planned.map_or("null".to_string(), |p| p.to_string());
            let verdict = if f.ran_over {
                format!("ran {} tests but planned {planned}: update the plan", f.ran)
            } else if f.clean() {
                "ok".to_string()
            } else if f.ran_short && f.planned.is_none() {
                format!(
                    "FAILED: no plan line after {} test(s) (it stopped early, or never calls plan() or finish(); pg_prove fails it too)",
                    f.ran
                )
            } else if f.ran_short {
                format!("FAILED: ran short, {} of {planned} planned tests ran", f.ran)
            } else {
                format!("FAILED {}/{}", f.failed, f.ran)
            };
            out.push_str(&format!("  {} .. {verdict}\n", one_line(&f.path)));
        }
        if collapse && clean > 0 {
            out.push_str(&format!("  ({clean} more file(s) ok)\n"));
        }
        for f in &rls.failures {
            out.push_str(&format!("    not ok {} - {} ({})\n", f.number, one_line(&f.description), one_line(&f.file)));
        }
    }
}

/// Every error, first, then warnings while there is room.
fn finding_lines(out: &mut String, s: &Summary) {
    if !s.findings.is_empty() {
        out.push_str("\nfindings:\n");
        // Every error, first (what failed the run leads); then warnings while there is room.
        let mut findings: Vec<&Finding> = s.findings.iter().collect();
        findings.sort_by_key(|f| f.severity != Severity::Error);
        let mut warnings = 0;
        for f in findings {
            if f.severity == Severity::Warning {
                warnings += 1;
                if warnings > MAX_WARNINGS {
                    continue;
                }
            }
            out.push_str(&format!("  {}\n    what to do: {}\n", finding_line(f), one_line(&f.hint)));
        }
        if warnings > MAX_WARNINGS {
            out.push_str(&format!("  ({} more warning(s) in summary.json)\n", warnings - MAX_WARNINGS));
        }
    }
}

/// Warnings, blockers, next actions, where the logs and the page are, the verdict and the outcome.
fn closing_lines(out: &mut String, s: &Summary) {
    let dir = &s.rehearsal_dir;
    for (label, items) in [("warning", &s.warnings), ("blocker", &s.blockers), ("next", &s.next_actions)] {
        let shown = if label == "warning" { MAX_WARNINGS } else { usize::MAX };
        for item in items.iter().take(shown) {
            out.push_str(&format!("{label}: {}\n", one_line(item)));
        }
        if items.len() > shown {
            out.push_str(&format!("({} more warning(s) in summary.json)\n", items.len() - shown));
        }
    }
    let logs: Vec<&str> = s.logs.iter().map(|l| l.path.as_str()).collect();
    let prefix = format!("{dir}/");
    if !logs.is_empty() && logs.iter().all(|l| l.starts_with(&prefix)) {
        let names: Vec<&str> = logs.iter().map(|l| &l[prefix.len()..]).collect();
        out.push_str(&format!("logs in {dir}/:\n  {}\n", names.join("  ")));
    } else if !logs.is_empty() {
        out.push_str(&format!("logs: {}\n", logs.join("  ")));
    }
    if !dir.is_empty() {
        out.push_str(&format!("page: {dir}/index.html (the sign-off page: open it in a browser)\n"));
    }
    out.push_str(&format!("verdict: {}\n", s.verdict()));
    out.push_str(&format!("outcome: {} (exit {})\n", s.outcome.as_str(), s.exit_code));
}

/// Past this many migrations (or test files) the screen shows only those that went wrong.
const MAX_ROWS: usize = 12;
/// Warnings shown on the screen; the rest are in summary.json.
const MAX_WARNINGS: usize = 5;

fn row_line(r: &MigrationRow, width: usize, rollbacks: bool, reapplies: bool) -> String {
    let step = |x: &StepResult| status(x.status);
    let mut line = format!("{:<width$}  {:<8}", format!("{}_{}", r.version, r.name), step(&r.apply));
    if rollbacks {
        line.push_str(&format!("  {:<11}", status(r.rollback.status)));
    }
    if reapplies {
        line.push_str(&format!("  {}", step(&r.reapply)));
    }
    line.trim_end().to_string()
}

/// The impact that weighs most: what it blocks, then whether its work grows with the table, then
/// how long it held.
pub fn worst_impact(impact: &[Impact]) -> Option<&Impact> {
    let weight = |i: &Impact| {
        let blocks = match i.blocks.as_str() {
            "reads_and_writes" => 2,
            "writes" => 1,
            _ => 0,
        };
        (blocks, i.risky(), i.held_ms)
    };
    impact.iter().filter(|i| i.blocks != "nothing").max_by_key(|i| weight(i))
}

/// `public.orders ACCESS EXCLUSIVE 312 ms (reads and writes wait), rewrite, ~200000 rows, line 1`.
pub fn impact_words(i: &Impact) -> String {
    let mut parts = vec![format!("{} {} {} ms ({})", one_line(&i.relation), i.lock_words(), i.held_ms, i.waits())];
    if i.rewrite {
        parts.push("rewrite".into());
    } else if i.scan {
        parts.push("full scan".into());
    }
    if let Some(rows) = i.rows_shown() {
        parts.push(format!("{rows} rows"));
    }
    if let Some(line) = i.line {
        parts.push(format!("line {line}"));
    }
    parts.join(", ")
}

pub use xtask_scan::stream::finding_line;

/// The hand-off section appended to the day's feedback file (runbook step 8). Its links open
/// from where that file is (`feedback/data/`), the sign-off page and SUMMARY.md first.
pub fn handoff(s: &Summary) -> String {
    let count =
        |st: Status, pick: &dyn Fn(&MigrationRow) -> Status| s.migrations.iter().filter(|r| pick(r) == st).count();
    let apply = |r: &MigrationRow| r.apply.status;
    let rollback = |r: &MigrationRow| r.rollback.status;
    let reapply = |r: &MigrationRow| r.reapply.status;
    let from_feedback = |path: &str| format!("../../{path}");
    let mut out = format!("\n## Hand-off: {} ({}, {})\n\n", dir_name(s), s.target.kind.as_str(), s.finished_at);
    out.push_str(&format!("**{}**\n\n", md_prose(&s.verdict())));
    out.push_str(&format!(
        "- Evidence: [sign-off page]({}), [SUMMARY.md]({})\n",
        from_feedback(&format!("{}/index.html", s.rehearsal_dir)),
        from_feedback(&format!("{}/SUMMARY.md", s.rehearsal_dir))
    ));
    out.push_str(&format!("- Outcome: **{}** (exit {})\n", s.outcome.as_str(), s.exit_code));
    // The steps this command runs, no others (`apply` rolls nothing back).
    let applied =
        format!("Apply: {} applied, {} failed.", count(Status::Applied, &apply), count(Status::Failed, &apply));
    let rolled = format!(
        "Rollback: {} rolled back, {} incomplete, {} failed, {} missing.",
        count(Status::RolledBack, &rollback),
        count(Status::Incomplete, &rollback),
        count(Status::Failed, &rollback),
        count(Status::Missing, &rollback)
    );
    let again =
        format!("Re-apply: {} applied, {} failed.", count(Status::Applied, &reapply), count(Status::Failed, &reapply));
    let steps = match s.command.as_str() {
        "apply" => applied,
        "rollback" => rolled,
        _ => format!("{applied} {rolled} {again}"),
    };
    out.push_str(&format!("- {steps}\n"));
    if let Some(restored) = s.schema_restored {
        out.push_str(&format!(
            "- Schema after rollback: {}\n",
            if restored { "identical to before the apply" } else { "differs (see schema_rollback.diff)" }
        ));
    }
    if let Some(rls) = &s.rls {
        out.push_str(&format!(
            "- RLS contract: {} of {} planned passed, {} failed, {} errors\n",
            rls.passed, rls.planned, rls.failed, rls.errors
        ));
    }
    let logs: Vec<String> = s.logs.iter().map(|l| format!("[{}]({})", l.label, from_feedback(&l.path))).collect();
    out.push_str(&format!("- Logs: {}\n", logs.join(", ")));
    let errors: Vec<&Finding> = s.findings.iter().filter(|f| f.severity == Severity::Error).collect();
    if errors.is_empty() && s.blockers.is_empty() {
        out.push_str("- What blocks it: nothing\n");
    } else {
        out.push_str("- What blocks it (blockers, then error findings):\n");
        for b in &s.blockers {
            out.push_str(&format!("  - {}\n", md_prose(b)));
        }
        for f in errors {
            out.push_str(&format!("  - {}: {}\n", md_code(&finding_line(f), false), md_prose(&f.hint)));
        }
    }
    let risks: Vec<&Finding> =
        s.findings.iter().filter(|f| f.class == crate::text::findings::Class::LockRisk).collect();
    if !risks.is_empty() {
        out.push_str(
            "- Lock risks (measured on this target's rows; on production, expect the time to grow with the table):\n",
        );
        for f in risks {
            out.push_str(&format!("  - {}: {}\n", md_code(&finding_line(f), false), md_prose(&f.hint)));
        }
    }
    let drift = s.findings.iter().filter(|f| f.class == crate::text::findings::Class::Drift).count();
    if drift > 0 {
        out.push_str(&format!(
            "- Drift: {drift} difference(s) between the target and its migration history (a rehearsal on a drifted \
             staging may pass where production fails; `cargo xtask drift` lists them)\n"
        ));
    }
    out.push_str("- Next actions:\n");
    for n in &s.next_actions {
        out.push_str(&format!("  - {}\n", md_prose(n)));
    }
    out
}
