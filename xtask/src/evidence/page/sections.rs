//! The sign-off page's sections, in the order the page shows them.

use std::fmt::Write;
use std::path::Path;

use super::*;

/// The document's head and the verdict, first.
pub(super) fn head(h: &mut String, s: &Summary, name: &str) {
    let class = match s.outcome {
        Outcome::Passed if s.target.kind == crate::database::Kind::Local => "local",
        other => other.as_str(),
    };
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(name),
        s.outcome.as_str()
    );
    let _ = write!(
        h,
        "<header id=\"verdict\" class=\"verdict {class}\" data-outcome=\"{}\" data-exit=\"{}\">\n<h1>{}</h1>\n<p>{}</p>\n</header>\n",
        s.outcome.as_str(),
        s.exit_code,
        esc(&format!("{}: {} (exit {})", name, s.outcome.as_str().to_uppercase(), s.exit_code)),
        prose(&s.verdict())
    );
}

/// The command, the target and why, the times.
pub(super) fn target(h: &mut String, s: &Summary) {
    let _ = writeln!(
        h,
        "<section id=\"target\"><h2>Target</h2><dl><dt>Command</dt><dd><code>cargo xtask {}</code></dd><dt>Target</dt><dd>{} ({}/{})</dd>\
         <dt>Why</dt><dd>{}</dd><dt>Started</dt><dd>{}</dd><dt>Finished</dt><dd>{}</dd></dl></section>",
        esc(&s.command),
        s.target.kind.as_str(),
        esc(&s.target.host),
        esc(&s.target.database),
        esc(&s.target.why),
        esc(&s.started_at),
        esc(&s.finished_at)
    );
}

/// Each migration × apply, rollback, re-apply, and whether the schema came back.
pub(super) fn migrations(h: &mut String, s: &Summary) {
    h.push_str("<section id=\"migrations\"><h2>Migrations</h2>\n<table class=\"grid\"><tr><th>migration</th><th>apply</th><th>rollback</th><th>re-apply</th></tr>\n");
    for r in &s.migrations {
        let _ = write!(
            h,
            "<tr data-version=\"{}\"><td><code>{}_{}</code></td>",
            esc(&r.version),
            esc(&r.version),
            esc(&r.name)
        );
        for st in [r.apply.status, r.rollback.status, r.reapply.status] {
            let (c, text) = cell(st);
            let _ = write!(h, "<td class=\"{c}\">{text}</td>");
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    match s.schema_restored {
        Some(true) => h.push_str("<p id=\"schema\" class=\"ok\">Schema after rollback: identical to before the apply.</p>\n"),
        Some(false) => h.push_str("<p id=\"schema\" class=\"bad\"><strong>Schema after rollback: DIFFERS from before the apply</strong> (the diff is below).</p>\n"),
        None => {}
    }
    h.push_str("</section>\n");
}

/// Every finding, errors first, each with what to do and its line in the log.
pub(super) fn findings_section(h: &mut String, s: &Summary, logs: &[(String, String, Vec<String>)]) {
    if !s.findings.is_empty() {
        h.push_str("<section id=\"findings\"><h2>Findings</h2><ol>\n");
        // Errors first: what blocks the sign-off, then what to look at.
        let mut ordered: Vec<&Finding> = s.findings.iter().collect();
        ordered.sort_by_key(|f| f.severity != Severity::Error);
        for f in ordered {
            let level = if f.severity == Severity::Error { "error" } else { "warning" };
            let _ = write!(
                h,
                "<li class=\"{level}\"><code>{}</code><br>What to do: {}",
                esc(&finding_line(f)),
                prose(&f.hint)
            );
            if let Some((i, n)) = log_line(f, &logs) {
                let _ = write!(h, " <a href=\"#log-{i}-L{n}\">the log, line {n}</a>");
            }
            h.push_str("</li>\n");
        }
        h.push_str("</ol></section>\n");
    }
}

/// The RLS contract: per file, and each failing test with its diagnostics.
pub(super) fn rls_section(h: &mut String, s: &Summary) {
    if let Some(rls) = &s.rls {
        let _ = write!(
            h,
            "<section id=\"rls\"><h2>RLS contract</h2><p>{} planned, {} ran, {} passed, {} failed, {} errors.</p>\n\
             <table><tr><th>file</th><th>planned</th><th>ran</th><th>passed</th><th>failed</th><th>errors</th></tr>\n",
            rls.planned, rls.ran, rls.passed, rls.failed, rls.errors
        );
        for f in &rls.files {
            let c = if f.clean() { "ok" } else { "bad" };
            let _ = writeln!(
                h,
                "<tr><td class=\"{c}\"><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.path),
                f.planned.map_or("none".into(), |p| p.to_string()),
                f.ran,
                f.passed,
                f.failed,
                f.errors
            );
        }
        h.push_str("</table>\n");
        if !rls.failures.is_empty() {
            h.push_str("<h3>Failing tests</h3><ul id=\"failing-tests\">\n");
            for t in &rls.failures {
                let _ = write!(
                    h,
                    "<li class=\"error\"><code>{}</code> not ok {} - {}",
                    esc(&t.file),
                    t.number,
                    esc(&t.description)
                );
                if !t.diagnostics.is_empty() {
                    let _ = write!(h, "<pre>{}</pre>", esc(&t.diagnostics.join("\n")));
                }
                h.push_str("</li>\n");
            }
            h.push_str("</ul>\n");
        }
        h.push_str("</section>\n");
    }
}

/// The schema diff after the rollback, when the schema did not come back.
pub(super) fn schema_diff(h: &mut String, s: &Summary, workdir: &Path) {
    if s.schema_restored == Some(false) {
        let diff =
            std::fs::read_to_string(workdir.join(&s.rehearsal_dir).join("schema_rollback.diff")).unwrap_or_default();
        let _ = writeln!(
            h,
            "<section id=\"schema-diff\"><h2>Schema diff after rollback</h2><pre>{}</pre></section>",
            esc(&diff)
        );
    }
}

/// What blocks it, the next actions, the warnings.
pub(super) fn lists(h: &mut String, s: &Summary) {
    for (id, title, items) in [
        ("blockers", "What blocks it", &s.blockers),
        ("next", "Next actions", &s.next_actions),
        ("warnings", "Warnings", &s.warnings),
    ] {
        if !items.is_empty() {
            let _ = write!(h, "<section id=\"{id}\"><h2>{title}</h2><ul>");
            for item in items {
                let _ = write!(h, "<li>{}</li>", prose(item));
            }
            h.push_str("</ul></section>\n");
        }
    }
}

/// Each step's start and duration.
pub(super) fn steps(h: &mut String, s: &Summary) {
    if !s.steps.is_empty() {
        h.push_str(
            "<section id=\"steps\"><h2>Steps</h2><table><tr><th>step</th><th>started</th><th>duration</th></tr>\n",
        );
        for st in &s.steps {
            let _ = writeln!(
                h,
                "<tr><td>{} {}</td><td>{}</td><td>{} ms</td></tr>",
                st.step,
                esc(&st.name),
                esc(&st.started_at),
                st.duration_ms
            );
        }
        h.push_str("</table></section>\n");
    }
}

/// The commit, the tool, psql, the server, the CLI, who ran it.
pub(super) fn provenance(h: &mut String, s: &Summary) {
    let p = &s.provenance;
    let or = |v: &Option<String>| esc(v.as_deref().unwrap_or("-"));
    let _ = writeln!(
        h,
        "<section id=\"provenance\"><h2>Provenance</h2><dl><dt>Git commit</dt><dd><code>{}</code>{}</dd><dt>Tool</dt><dd>{}</dd>\
         <dt>psql</dt><dd>{}</dd><dt>Server</dt><dd>{}</dd><dt>Supabase CLI</dt><dd>{}</dd><dt>Run by</dt><dd>{}@{}</dd></dl></section>",
        or(&p.git_commit),
        match p.git_dirty {
            Some(true) => " (uncommitted changes in the tree)",
            Some(false) => " (clean tree)",
            None => "",
        },
        esc(&p.tool_version),
        or(&p.psql),
        or(&p.server),
        or(&p.supabase_cli),
        esc(&p.user),
        esc(&p.host)
    );
}

/// The sign-off block, or why there is none.
pub(super) fn signoff(h: &mut String, s: &Summary, name: &str) {
    if s.ready_for_signoff() {
        let _ = writeln!(
            h,
            "<section id=\"signoff\" class=\"sign\"><h2>Sign-off</h2><p>{}</p>\
             <p>I have read this rehearsal's evidence ({}, its logs and <code>MANIFEST.sha256</code>) and decide: \
             &#9744; approved for the production window &#9744; changes needed</p>\
             <p class=\"line\"></p>Name and role<p class=\"line\"></p>Date<p class=\"line\"></p>Signature</section>",
            prose(&s.verdict()),
            esc(name)
        );
    } else {
        // Nothing here may be approved: the block says so instead of offering a signature.
        let _ = writeln!(
            h,
            "<section id=\"signoff\" class=\"sign\"><h2>Sign-off</h2><p><strong>Not for sign-off.</strong> {}</p>\
             <p>Only a <code>stage-rehearse</code> that passed on staging is signed off.</p></section>",
            prose(&s.verdict())
        );
    }
}

/// Every log, each line with an anchor the findings link to.
pub(super) fn log_sections(h: &mut String, logs: &[(String, String, Vec<String>)]) {
    if !logs.is_empty() {
        h.push_str("<section id=\"logs\"><h2>Logs</h2>\n");
        for (i, (label, path, lines)) in logs.iter().enumerate() {
            let _ = write!(
                h,
                "<details id=\"log-{i}\"><summary>{} (<code>{}</code>)</summary><pre>",
                esc(label),
                esc(path)
            );
            for (n, line) in lines.iter().enumerate() {
                let _ = writeln!(h, "<span id=\"log-{i}-L{}\">{}</span>", n + 1, esc(line));
            }
            h.push_str("</pre></details>\n");
        }
        h.push_str("</section>\n");
    }
}
