//! `index.html` in every rehearsal dir: the sign-off page, one self-contained file (no script, no
//! network, no asset of its own), readable in any browser and printable. The verdict in words and
//! colour first; then the target and why, the migrations × apply / rollback / re-apply grid, each
//! finding with its file:line, what to do and a link to its line in the embedded log, the RLS
//! contract per file and each failing test with pgTAP's diagnostics, the schema diff when a
//! rollback did not restore the schema, what blocks and what next, step durations, provenance,
//! a sign-off block, and the logs themselves.

use std::fmt::Write as _;
use std::path::Path;

use super::report::finding_line;
use super::summary::{Outcome, Status, Summary};
use crate::text::findings::{Finding, Severity};

/// Embedded per log at most; a longer log is cut and says where the rest is.
const MAX_LOG: usize = 2 << 20;

fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Prose for the page: escaped, its `code spans` as code.
fn prose(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in esc(text).split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{part}</code>"));
        } else {
            out.push_str(part);
        }
    }
    out
}

fn cell(st: Status) -> (&'static str, &'static str) {
    match st {
        Status::Applied => ("ok", "applied"),
        Status::RolledBack => ("ok", "rolled back"),
        Status::Failed => ("bad", "FAILED"),
        Status::Missing => ("bad", "MISSING"),
        Status::Skipped => ("skip", "-"),
        Status::Interrupted => ("bad", "INTERRUPTED"),
        Status::Incomplete => ("bad", "INCOMPLETE"),
    }
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:1rem 1.5rem;color:#1f2328}\
h1{margin:.2rem 0;font-size:1.8rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2rem;margin-top:2rem}\
.verdict{border-radius:8px;padding:1rem 1.25rem;color:#fff}.verdict p{margin:.3rem 0 0;font-size:1.05rem}\
.verdict.passed{background:#1a7f37}.verdict.local{background:#0969da}.verdict.failed{background:#cf222e}.verdict.halted,.verdict.error{background:#9a6700}\
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa}td.ok{background:#dafbe1}td.bad{background:#ffebe9;color:#82071e;font-weight:600}td.skip{color:#6e7781}\
li{margin:.4rem 0}li.error{border-left:4px solid #cf222e;padding-left:.5rem;list-style:none}\
li.warning{border-left:4px solid #9a6700;padding-left:.5rem;list-style:none}code,pre{font:13px/1.4 ui-monospace,monospace}\
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;white-space:pre-wrap}pre span:target{background:#fff8c5}\
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}\
.sign{border:2px solid #1f2328;border-radius:8px;padding:1rem}.sign p.line{border-bottom:1px solid #1f2328;min-height:1.8rem;margin:1.2rem 0 .2rem}\
@media print{details{display:block}.verdict{-webkit-print-color-adjust:exact;print-color-adjust:exact}}";

/// Render the page for `s`, reading the logs it names from `workdir`.
pub fn render(s: &Summary, workdir: &Path) -> String {
    let name = s.rehearsal_dir.rsplit('/').next().unwrap_or(&s.rehearsal_dir);
    let class = match s.outcome {
        Outcome::Passed if s.target.kind == crate::database::Kind::Local => "local",
        other => other.as_str(),
    };
    let logs: Vec<(String, String, Vec<String>)> = s
        .logs
        .iter()
        .filter(|l| !l.path.ends_with("summary.json"))
        .map(|l| (l.label.clone(), l.path.clone(), read_log(workdir, &l.path)))
        .collect();
    let mut h = String::new();
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
    if !s.migrations.is_empty() {
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
        locks(&mut h, s);
        drifted(&mut h, s);
    }
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
    if s.schema_restored == Some(false) {
        let diff =
            std::fs::read_to_string(workdir.join(&s.rehearsal_dir).join("schema_rollback.diff")).unwrap_or_default();
        let _ = writeln!(
            h,
            "<section id=\"schema-diff\"><h2>Schema diff after rollback</h2><pre>{}</pre></section>",
            esc(&diff)
        );
    }
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
    h.push_str("</body>\n</html>\n");
    h
}

/// "Staging differs from its history": each `drift` finding, when there are any.
fn drifted(h: &mut String, s: &Summary) {
    let drift: Vec<&crate::text::findings::Finding> =
        s.findings.iter().filter(|f| f.class == crate::text::findings::Class::Drift).collect();
    if drift.is_empty() {
        return;
    }
    let place = if s.target.kind.as_str() == "staging" { "Staging" } else { "The target" };
    let _ = write!(
        h,
        "<section id=\"drift\"><h2>{place} differs from its history</h2><p>Changes no migration made (or that a \
         migration made and the target lost): a rehearsal on a drifted database may pass where production fails.</p><ul>"
    );
    for f in drift {
        let _ = write!(h, "<li>{}</li>", esc(&f.message));
    }
    h.push_str("</ul></section>\n");
}

/// "What it locks": per migration and step (apply, rollback), each relation that existed before
/// the file and that it locked against others, as measured while it ran.
fn locks(h: &mut String, s: &Summary) {
    let rows = s.locked();
    if rows.is_empty() {
        return;
    }
    h.push_str(
        "<section id=\"locks\"><h2>What it locks</h2><p>Measured while each file ran, on this target's rows: on \
         production, expect the time to grow with the table.</p>\n<table class=\"grid\"><tr><th>migration</th><th>step</th>\
         <th>relation</th><th>rows</th><th>lock</th><th>blocks</th><th>rewrite / scan</th><th>held</th></tr>\n",
    );
    for (r, step, i) in rows {
        let work = if i.rewrite {
            "rewrite"
        } else if i.scan {
            "full scan"
        } else {
            "-"
        };
        let class = if i.risky() { "bad" } else { "" };
        let _ = write!(
            h,
            "<tr class=\"{class}\"><td><code>{}_{}</code></td><td>{step}</td><td><code>{}</code></td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{work}</td><td>{} ms</td></tr>\n",
            esc(&r.version),
            esc(&r.name),
            esc(&i.relation),
            i.rows_shown().unwrap_or_else(|| "-".to_string()),
            esc(&i.lock),
            esc(&i.blocks.replace('_', " ")),
            i.held_ms
        );
    }
    h.push_str("</table></section>\n");
}

fn read_log(workdir: &Path, rel: &str) -> Vec<String> {
    let Ok(bytes) = std::fs::read(workdir.join(rel)) else { return vec![format!("({rel} could not be read)")] };
    let cut = bytes.len() > MAX_LOG;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_LOG)]).into_owned();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if cut {
        lines.push(format!("(cut at {} MiB; the whole log is {rel})", MAX_LOG >> 20));
    }
    lines
}

/// The log and line where a finding shows: its `psql:FILE:LINE:` line, else its message.
fn log_line(f: &Finding, logs: &[(String, String, Vec<String>)]) -> Option<(usize, usize)> {
    let (i, (_, _, lines)) = logs.iter().enumerate().find(|(_, (_, path, _))| Some(path) == f.log.as_ref())?;
    let at = match (&f.file, f.line) {
        (Some(file), Some(line)) => format!("psql:{file}:{line}:"),
        _ => String::new(),
    };
    let probe: String = f.message.chars().take(60).collect();
    let n = lines
        .iter()
        .position(|l| !at.is_empty() && l.contains(&at))
        .or_else(|| lines.iter().position(|l| l.contains(&probe)))?;
    Some((i, n + 1))
}
