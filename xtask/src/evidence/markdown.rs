//! SUMMARY.md: the rehearsal for a reader on a code host or in an editor, as real Markdown: the
//! verdict first, then tables (migrations × steps, RLS per file, provenance, step timings), each
//! finding with where and what to do, and links that open from the rehearsal dir.

use super::report::finding_line;
use super::summary::{MigrationRow, Status, Summary};
use crate::text::escape::{md_code, md_fence, md_prose, md_text};
use crate::text::findings::Severity;

/// How much of each list a rendering shows; the rest is "… and N more, see index.html".
#[derive(Clone, Copy)]
struct Room {
    /// Clean migration rows and clean test files, after every failed one.
    clean_rows: usize,
    /// Failing tests, findings and other list items.
    items: usize,
    /// Diagnostic lines under each failing test.
    diagnostics: usize,
}

const ALL: Room = Room { clean_rows: usize::MAX, items: usize::MAX, diagnostics: usize::MAX };

/// A table cell or list item's plain text.
fn cell(text: &str) -> String {
    md_text(text)
}

fn more(md: &mut String, left: usize, what: &str) {
    if left > 0 {
        md.push_str(&format!("\n… and {left} more {what}, see [the sign-off page](index.html)\n"));
    }
}

/// SUMMARY.md: everything.
pub fn markdown(s: &Summary) -> String {
    render(s, ALL)
}

/// The summary within `cap` bytes (GitHub's step summary takes 1 MiB): every failure first,
/// then as many clean rows and items as fit; past that, cut at a line with a note.
pub fn markdown_within(s: &Summary, cap: usize) -> String {
    let rooms = [
        ALL,
        Room { clean_rows: 200, items: 200, diagnostics: 40 },
        Room { clean_rows: 20, items: 50, diagnostics: 10 },
        Room { clean_rows: 0, items: 10, diagnostics: 3 },
        Room { clean_rows: 0, items: 0, diagnostics: 0 },
    ];
    let mut md = String::new();
    for room in rooms {
        md = render(s, room);
        if md.len() <= cap {
            return md;
        }
    }
    cut(&md, cap)
}

/// `md` cut at the last line that fits in `cap` bytes, with a closing note.
pub fn cut(md: &str, cap: usize) -> String {
    const NOTE: &str = "\n… cut at GitHub's step summary size limit: see index.html in the rehearsal dir\n";
    if md.len() <= cap {
        return md.to_string();
    }
    let room = cap.saturating_sub(NOTE.len());
    let mut boundary = room.min(md.len());
    while !md.is_char_boundary(boundary) {
        boundary -= 1;
    }
    let end = md[..boundary].rfind('\n').map_or(0, |i| i + 1);
    format!("{}{}", &md[..end], if cap >= NOTE.len() { NOTE } else { "" })
}

/// A path relative to the workdir, as a link from inside the rehearsal dir.
pub fn from_dir(s: &Summary, path: &str) -> String {
    match path.strip_prefix(&format!("{}/", s.rehearsal_dir)) {
        Some(inside) => inside.to_string(),
        None => format!("{}{path}", "../".repeat(s.rehearsal_dir.split('/').count())),
    }
}

fn status(st: Status) -> &'static str {
    match st {
        Status::Applied => "applied",
        Status::RolledBack => "rolled back",
        Status::Failed => "**FAILED**",
        Status::Missing => "**MISSING**",
        Status::Skipped => "-",
        Status::Interrupted => "**INTERRUPTED**",
        Status::Incomplete => "**INCOMPLETE**",
    }
}

fn render(s: &Summary, room: Room) -> String {
    let mut md = String::new();
    header(&mut md, s);
    migrations(&mut md, s, room);
    locks(&mut md, s, room);
    schema(&mut md, s);
    rls(&mut md, s, room);
    findings(&mut md, s, room);
    lists(&mut md, s, room);
    provenance(&mut md, s);
    steps(&mut md, s, room);
    md
}

/// The verdict, the outcome, command, target and times, the evidence's links.
fn header(md: &mut String, s: &Summary) {
    let name = s.rehearsal_dir.rsplit('/').next().unwrap_or(&s.rehearsal_dir);
    // The dir's name and the verdict are the tool's own words.
    md.push_str(&format!("# Rehearsal summary: {name}\n\n**{}**\n\n", md_prose(&s.verdict())));
    md.push_str("| | |\n|---|---|\n");
    md.push_str(&format!("| Outcome | **{}** (exit {}) |\n", s.outcome.as_str(), s.exit_code));
    md.push_str(&format!("| Command | `cargo xtask {}` |\n", s.command));
    md.push_str(&format!(
        "| Target | {} ({}/{}) |\n",
        s.target.kind.as_str(),
        cell(&s.target.host),
        cell(&s.target.database)
    ));
    md.push_str(&format!("| Started | {} |\n| Finished | {} |\n", s.started_at, s.finished_at));
    md.push_str("\nEvidence: [sign-off page](index.html), [summary.json](summary.json)");
    for log in &s.logs {
        if log.label != "summary" {
            md.push_str(&format!(", [{}]({})", log.label, from_dir(s, &log.path)));
        }
    }
    md.push('\n');
}

/// Each migration × step: every failed one, then the clean ones room allows.
fn migrations(md: &mut String, s: &Summary, room: Room) {
    if !s.migrations.is_empty() {
        md.push_str(
            "\n## Migrations\n\n| migration | apply | rollback | re-apply | apply time |\n|---|---|---|---|---|\n",
        );
        let clean = s.migrations.iter().filter(|r| !r.failed()).count();
        let shown = clean.min(room.clean_rows);
        let mut clean_seen = 0;
        for r in &s.migrations {
            if !r.failed() {
                clean_seen += 1;
                if clean_seen > shown {
                    continue;
                }
            }
            md.push_str(&row(r));
        }
        more(md, clean - shown, "clean migration(s)");
    }
}

/// What each migration locked, measured.
fn locks(md: &mut String, s: &Summary, room: Room) {
    let locked = s.locked();
    if !locked.is_empty() {
        md.push_str(
            "\n## What it locks\n\nMeasured while each file ran, on this target's rows (on production, expect the time to grow with the table).\n\n\
             | migration | step | relation | rows | lock | blocks | rewrite / scan | held |\n|---|---|---|---|---|---|---|---|\n",
        );
        for (r, step, i) in locked.iter().take(room.items.max(1)) {
            md.push_str(&format!(
                "| {} | {step} | {} | {} | {} | {} | {} | {} ms |\n",
                md_code(&format!("{}_{}", r.version, r.name), true),
                md_code(&i.relation, true),
                i.rows_shown().unwrap_or_else(|| "-".into()),
                cell(&i.lock),
                cell(&i.blocks.replace('_', " ")),
                if i.rewrite {
                    "rewrite"
                } else if i.scan {
                    "full scan"
                } else {
                    "-"
                },
                i.held_ms
            ));
        }
        more(md, locked.len().saturating_sub(room.items.max(1)), "locked relation(s)");
    }
}

/// Whether the schema came back after the rollbacks.
fn schema(md: &mut String, s: &Summary) {
    match s.schema_restored {
        Some(true) => md.push_str("\nSchema after rollback: identical to before the apply.\n"),
        Some(false) => md.push_str(
            "\nSchema after rollback: **differs** from before the apply: [schema_rollback.diff](schema_rollback.diff).\n",
        ),
        None => {}
    }
}

/// The RLS contract per file, and the failing tests with their diagnostics.
fn rls(md: &mut String, s: &Summary, room: Room) {
    if let Some(rls) = &s.rls {
        md.push_str(&format!(
            "\n## RLS contract\n\n{} planned, {} ran, {} passed, {} failed, {} errors.\n\n\
             | file | planned | ran | passed | failed | errors |\n|---|---|---|---|---|---|\n",
            rls.planned, rls.ran, rls.passed, rls.failed, rls.errors
        ));
        let clean = rls.files.iter().filter(|f| f.clean()).count();
        let shown = clean.min(room.clean_rows);
        let mut clean_seen = 0;
        for f in &rls.files {
            if f.clean() {
                clean_seen += 1;
                if clean_seen > shown {
                    continue;
                }
            }
            let planned = f.planned.map_or("none".to_string(), |p| p.to_string());
            let mark = if f.clean() { "" } else { " **FAILED**" };
            md.push_str(&format!(
                "| {}{mark} | {planned} | {} | {} | {} | {} |\n",
                md_code(&f.path, true),
                f.ran,
                f.passed,
                f.failed,
                f.errors
            ));
        }
        more(md, clean - shown, "clean test file(s)");
        if !rls.failures.is_empty() {
            md.push_str("\nFailing tests:\n\n");
            for f in rls.failures.iter().take(room.items) {
                md.push_str(&format!("- {} not ok {} - {}\n", md_code(&f.file, false), f.number, cell(&f.description)));
                if !f.diagnostics.is_empty() && room.diagnostics > 0 {
                    let mut lines: Vec<String> = f.diagnostics.iter().take(room.diagnostics).cloned().collect();
                    if f.diagnostics.len() > lines.len() {
                        lines.push(format!("… {} more line(s)", f.diagnostics.len() - lines.len()));
                    }
                    md.push('\n');
                    md.push_str(&md_fence(&lines, "  "));
                }
            }
            more(md, rls.failures.len().saturating_sub(room.items), "failing test(s)");
        }
    }
}

/// Every finding, errors first.
fn findings(md: &mut String, s: &Summary, room: Room) {
    if !s.findings.is_empty() {
        md.push_str("\n## Findings\n\n");
        // Errors before warnings, so a cut keeps what blocks the run.
        let mut findings: Vec<_> = s.findings.iter().collect();
        findings.sort_by_key(|f| f.severity != Severity::Error);
        for f in findings.iter().take(room.items) {
            let kind = if f.severity == Severity::Error { "error" } else { "warning" };
            md.push_str(&format!(
                "- {kind}: {}\n  - What to do: {}\n",
                md_code(&finding_line(f), false),
                cell(&f.hint)
            ));
        }
        more(md, findings.len().saturating_sub(room.items), "finding(s)");
    }
}

/// What blocks it, the next actions, the warnings.
fn lists(md: &mut String, s: &Summary, room: Room) {
    for (title, items) in
        [("What blocks it", &s.blockers), ("Next actions", &s.next_actions), ("Warnings", &s.warnings)]
    {
        if !items.is_empty() {
            md.push_str(&format!("\n## {title}\n\n"));
            for item in items.iter().take(room.items) {
                md.push_str(&format!("- {}\n", md_prose(item)));
            }
            more(md, items.len().saturating_sub(room.items), "item(s)");
        }
    }
}

/// The commit, the tool, psql, the server, the CLI, who ran it.
fn provenance(md: &mut String, s: &Summary) {
    let p = &s.provenance;
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    md.push_str("\n## Provenance\n\n| | |\n|---|---|\n");
    md.push_str(&format!(
        "| Git commit | {}{} |\n",
        cell(&or(&p.git_commit)),
        match p.git_dirty {
            Some(true) => " (uncommitted changes in the tree)",
            Some(false) => " (clean tree)",
            None => "",
        }
    ));
    md.push_str(&format!("| Tool | {} |\n", cell(&p.tool_version)));
    md.push_str(&format!(
        "| psql | {} |\n| Server | {} |\n| Supabase CLI | {} |\n",
        cell(&or(&p.psql)),
        cell(&or(&p.server)),
        cell(&or(&p.supabase_cli))
    ));
    md.push_str(&format!("| Run by | {}@{} |\n", cell(&p.user), cell(&p.host)));
}

/// Each step's start and duration.
fn steps(md: &mut String, s: &Summary, room: Room) {
    if !s.steps.is_empty() && room.items > 0 {
        md.push_str("\n## Steps\n\n| step | started | duration |\n|---|---|---|\n");
        for step in &s.steps {
            md.push_str(&format!(
                "| {} {} | {} | {} ms |\n",
                step.step,
                cell(&step.name),
                step.started_at,
                step.duration_ms
            ));
        }
    }
}

fn row(r: &MigrationRow) -> String {
    format!(
        "| {} | {} | {} | {} | {} |\n",
        md_code(&format!("{}_{}", r.version, r.name), true),
        status(r.apply.status),
        status(r.rollback.status),
        status(r.reapply.status),
        r.apply.duration_ms.map_or("-".into(), |ms| format!("{ms} ms"))
    )
}
