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

mod sections;

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
    let logs: Vec<(String, String, Vec<String>)> = s
        .logs
        .iter()
        .filter(|l| !l.path.ends_with("summary.json"))
        .map(|l| (l.label.clone(), l.path.clone(), read_log(workdir, &l.path)))
        .collect();
    let mut h = String::new();
    sections::head(&mut h, s, name);
    sections::target(&mut h, s);
    if !s.migrations.is_empty() {
        sections::migrations(&mut h, s);
        locks(&mut h, s);
        drifted(&mut h, s);
    }
    sections::findings_section(&mut h, s, &logs);
    sections::rls_section(&mut h, s);
    sections::schema_diff(&mut h, s, workdir);
    sections::lists(&mut h, s);
    sections::steps(&mut h, s);
    sections::provenance(&mut h, s);
    sections::signoff(&mut h, s, name);
    sections::log_sections(&mut h, &logs);
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
