//! SUMMARY.md: the rehearsal for a reader on a code host or in an editor, as real Markdown: the
//! verdict first, then tables (migrations × steps, RLS per file, provenance, step timings), each
//! finding with where and what to do, and links that open from the rehearsal dir.

use super::report::finding_line;
use super::summary::{MigrationRow, Status, Summary};
use crate::text::findings::Severity;

/// A path relative to the workdir, as a link from inside the rehearsal dir.
pub fn from_dir(s: &Summary, path: &str) -> String {
    match path.strip_prefix(&format!("{}/", s.rehearsal_dir)) {
        Some(inside) => inside.to_string(),
        None => format!("{}{path}", "../".repeat(s.rehearsal_dir.split('/').count())),
    }
}

/// A table cell: no line breaks, no pipes that would end it.
fn cell(text: &str) -> String {
    text.replace('\n', " ").replace('|', "\\|")
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

pub fn markdown(s: &Summary) -> String {
    let name = s.rehearsal_dir.rsplit('/').next().unwrap_or(&s.rehearsal_dir);
    let mut md = format!("# Rehearsal summary: {name}\n\n**{}**\n\n", s.verdict());
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

    if !s.migrations.is_empty() {
        md.push_str(
            "\n## Migrations\n\n| migration | apply | rollback | re-apply | apply time |\n|---|---|---|---|---|\n",
        );
        for r in &s.migrations {
            md.push_str(&row(r));
        }
    }
    match s.schema_restored {
        Some(true) => md.push_str("\nSchema after rollback: identical to before the apply.\n"),
        Some(false) => md.push_str(
            "\nSchema after rollback: **differs** from before the apply: [schema_rollback.diff](schema_rollback.diff).\n",
        ),
        None => {}
    }
    if let Some(rls) = &s.rls {
        md.push_str(&format!(
            "\n## RLS contract\n\n{} planned, {} ran, {} passed, {} failed, {} errors.\n\n\
             | file | planned | ran | passed | failed | errors |\n|---|---|---|---|---|---|\n",
            rls.planned, rls.ran, rls.passed, rls.failed, rls.errors
        ));
        for f in &rls.files {
            let planned = f.planned.map_or("none".to_string(), |p| p.to_string());
            let mark = if f.clean() { "" } else { " **FAILED**" };
            md.push_str(&format!(
                "| `{}`{mark} | {planned} | {} | {} | {} | {} |\n",
                cell(&f.path),
                f.ran,
                f.passed,
                f.failed,
                f.errors
            ));
        }
        if !rls.failures.is_empty() {
            md.push_str("\nFailing tests:\n\n");
            for f in &rls.failures {
                md.push_str(&format!("- `{}` not ok {} - {}\n", f.file, f.number, cell(&f.description)));
                if !f.diagnostics.is_empty() {
                    md.push_str(&format!("\n  ```\n  {}\n  ```\n", f.diagnostics.join("\n  ")));
                }
            }
        }
    }
    if !s.findings.is_empty() {
        md.push_str("\n## Findings\n\n");
        for f in &s.findings {
            let kind = if f.severity == Severity::Error { "error" } else { "warning" };
            md.push_str(&format!("- {kind}: `{}`\n  - What to do: {}\n", finding_line(f).replace('`', "'"), f.hint));
        }
    }
    for (title, items) in
        [("What blocks it", &s.blockers), ("Next actions", &s.next_actions), ("Warnings", &s.warnings)]
    {
        if !items.is_empty() {
            md.push_str(&format!("\n## {title}\n\n"));
            for item in items {
                md.push_str(&format!("- {item}\n"));
            }
        }
    }
    let p = &s.provenance;
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    md.push_str("\n## Provenance\n\n| | |\n|---|---|\n");
    md.push_str(&format!(
        "| Git commit | {}{} |\n",
        or(&p.git_commit),
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
    if !s.steps.is_empty() {
        md.push_str("\n## Steps\n\n| step | started | duration |\n|---|---|---|\n");
        for step in &s.steps {
            md.push_str(&format!("| {} {} | {} | {} ms |\n", step.step, step.name, step.started_at, step.duration_ms));
        }
    }
    md
}

fn row(r: &MigrationRow) -> String {
    format!(
        "| `{}_{}` | {} | {} | {} | {} |\n",
        r.version,
        cell(&r.name),
        status(r.apply.status),
        status(r.rollback.status),
        status(r.reapply.status),
        r.apply.duration_ms.map_or("-".into(), |ms| format!("{ms} ms"))
    )
}
