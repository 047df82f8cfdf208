//! Step 4, apply: each migration appended to `migration_apply.log` in the runbook's format
//! (`==> FILE`, psql's output, `!! failure: FILE`, a blank line).
//!
//! Unlike the runbook's loop, each file runs in one transaction together with the row that records
//! it in `supabase_migrations.schema_migrations` (version, name and statements, as the Supabase CLI
//! writes them), so a failure leaves nothing half-applied and history never drifts from the schema.
//! And it reaches the server in one round trip, as the CLI sends it: the file is sent as one
//! batch ([`Batch`]), its statements joined with psql's `\;`, the history row last. Before each
//! statement the batch holds a one-row marker query whose output the tool takes out of the
//! transcript; it tells which statement an error belongs to, so the log names the failing
//! statement's line as `psql -f` would (`psql:FILE:LINE:`). A file that cannot run in a
//! transaction (CREATE INDEX CONCURRENTLY, VACUUM, its own BEGIN/COMMIT) runs statement by
//! statement with `\i` and the log says so; `--no-atomic` runs the runbook's exact command.

use std::time::Instant;

use anyhow::{Context, Result};

use crate::evidence::artifacts::Transcript;
use crate::evidence::manifest::sha256;
use crate::evidence::summary::{HistoryRecord, Status, StepResult};
use crate::prepare::tree::{Migration, SqlFile};
use crate::process::psql::{quote_arg, Unit};
use crate::process::Tee;
use crate::target::Target;
use crate::text::findings::{self, Finding};

#[derive(Clone, Debug)]
pub struct Applied {
    pub ok: bool,
    pub atomic: bool,
    pub duration_ms: u64,
    /// The first error psql printed, classified.
    pub error: Option<Finding>,
    pub findings: Vec<Finding>,
    /// The history row written (when applied).
    pub history: Option<HistoryRecord>,
}

impl Applied {
    /// The progress line: `<label> <version>_<name> .. ok (12 ms)`, with `not atomic` when so.
    pub fn progress_line(&self, label: &str, migration: &Migration) -> String {
        format!(
            "{label} {}_{} .. {}{} ({} ms)",
            migration.version,
            migration.name,
            if self.ok { "ok" } else { "FAILED" },
            if self.atomic { "" } else { ", not atomic" },
            self.duration_ms
        )
    }

    pub fn result(&self) -> StepResult {
        StepResult {
            status: if self.ok { Status::Applied } else { Status::Failed },
            atomic: Some(self.atomic),
            duration_ms: Some(self.duration_ms),
            error: self.error.clone(),
        }
    }
}

/// Apply one migration and record it. `atomic: false` (`--no-atomic`) runs the runbook's exact
/// command, `psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f FILE`, and records the history row after.
pub fn apply(target: &mut Target, m: &Migration, atomic: bool, log: &mut Transcript) -> Result<Applied> {
    let started = Instant::now();
    log.line(&format!("==> {}", m.file()))?;
    let statements = m.sql.script.statement_texts();
    let values = history_values(m, &statements);
    let reason = if atomic { m.sql.script.first_non_transactional().map(|(why, _)| why) } else { Some("--no-atomic") };
    let text = match reason {
        None => {
            let record = format!(
                "with h as (insert into supabase_migrations.schema_migrations (version, name, statements) values {values} \
                 returning 1) select count(*) as rehearsal_recorded from h"
            );
            run_batch(target, &m.sql, &record, log)?
        }
        Some(why) => {
            if why == "--no-atomic" {
                log.line("-- not atomic: --no-atomic (the runbook's command; the history row is recorded after)")?;
            } else {
                log.line(&format!(
                    "-- not atomic: {why} cannot run inside a transaction block; running the file without one"
                ))?;
            }
            let record = format!(
                "insert into supabase_migrations.schema_migrations (version, name, statements) values {values};\n"
            );
            run_by_statement(target, &m.sql, &record, log)?
        }
    };
    let ok = text.1;
    if !ok {
        log.line(&format!("!! failure: {}", m.file()))?;
    }
    log.line("")?;
    let found = findings::scan(&text.0, Some(log.rel()), target.kind.place());
    Ok(Applied {
        ok,
        atomic: reason.is_none(),
        duration_ms: started.elapsed().as_millis() as u64,
        error: if ok { None } else { found.iter().find(|f| f.class.is_connection()).or(found.first()).cloned() },
        findings: found,
        history: ok.then(|| HistoryRecord { statements_sha256: statements_hash(&statements) }),
    })
}

/// The hash a run records for a history row: sha256 of its statements joined by U+001F.
pub fn statements_hash<S: AsRef<str>>(statements: &[S]) -> String {
    let joined: Vec<&str> = statements.iter().map(AsRef::as_ref).collect();
    sha256(joined.join("\u{1f}").as_bytes())
}

/// The `(version, name, statements)` values of the history row, on one line.
fn history_values(m: &Migration, statements: &[&str]) -> String {
    let array: Vec<String> = statements.iter().map(|s| e_string(s)).collect();
    format!("({}, {}, array[{}]::text[])", e_string(&m.version), e_string(&m.name), array.join(", "))
}

/// A string literal on one line: `E'...'` with backslashes, quotes and line breaks escaped.
pub fn e_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 3);
    out.push_str("E'");
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Run a file as one batch with `record` (the history row's insert or delete) last, in one
/// implicit transaction; the transcript goes to `log` as it arrives. Returns it and whether it
/// succeeded.
pub(super) fn run_batch(
    target: &mut Target,
    file: &SqlFile,
    record: &str,
    log: &mut Transcript,
) -> Result<(String, bool)> {
    let batch = Batch::new(file, &target.conn().timeouts.set_statements(true), record);
    let path = target.scratch().join(&file.rel);
    std::fs::create_dir_all(path.parent().expect("a file in a dir")).context("creating the batch dir")?;
    std::fs::write(&path, &batch.text).with_context(|| format!("writing the batch of {}", file.rel))?;
    let unit = Unit {
        before: "\\set ON_ERROR_STOP off".into(),
        body: format!("\\i {}", quote_arg(&path)),
        after: String::new(),
    };
    let mut tee = batch.tee(log, &path);
    let ran = target.run(&unit, Some(&mut tee))?;
    Ok((tee.text, ran.ok()))
}

/// Run a file statement by statement with `\i` (psql's own `-f`), stopping at the first error,
/// then `record` in a statement of its own.
pub(super) fn run_by_statement(
    target: &mut Target,
    file: &SqlFile,
    record: &str,
    log: &mut Transcript,
) -> Result<(String, bool)> {
    let sets: String = target.conn().timeouts.set_statements(false).iter().map(|s| format!("{s};\n")).collect();
    let unit = Unit {
        before: "\\set ON_ERROR_STOP on".into(),
        body: format!("{sets}\\i {}", quote_arg(std::path::Path::new(&file.rel))),
        after: "\\set ON_ERROR_STOP off".into(),
    };
    let ran = target.run(&unit, Some(log as &mut dyn Tee))?;
    let mut text = ran.text.clone();
    if !ran.ok() {
        return Ok((text, false));
    }
    let path = target.scratch().join(format!("{}.record.sql", file.rel));
    std::fs::create_dir_all(path.parent().expect("a file in a dir")).context("creating the batch dir")?;
    std::fs::write(&path, record).with_context(|| format!("writing the history row of {}", file.rel))?;
    let unit = Unit {
        before: "\\set QUIET on\n\\set ON_ERROR_STOP off".into(),
        body: format!("\\i {}", quote_arg(&path)),
        after: "\\set QUIET off".into(),
    };
    let ran = target.run(&unit, Some(log as &mut dyn Tee))?;
    text.push_str(&ran.text);
    Ok((text, ran.ok()))
}

/// A file as one batch: its lines kept where they are (a statement's line in the batch is its
/// line in the file), each statement preceded by a marker query, the record after the last.
pub(super) struct Batch {
    pub text: String,
    alias: String,
    rel: String,
    /// Per statement: the line of its first word and of its end.
    lines: Vec<(usize, usize)>,
}

impl Batch {
    pub fn new(file: &SqlFile, sets: &[String], record: &str) -> Batch {
        let script = &file.script;
        let alias = format!("rehearsal_mark_{}", &file.sha256[..12]);
        let marker = |k: &str| format!("select '{k}' as {alias}\\; ");
        let mut text = String::with_capacity(script.text.len() + 64 * script.statements.len() + record.len());
        // Line 1 starts with a marker, so a line of the batch is the same line of the file.
        text.push_str(&marker("s"));
        for set in sets {
            text.push_str(set);
            text.push_str("\\; ");
        }
        let last = script.statements.len().checked_sub(1);
        let mut at = 0;
        for (k, s) in script.statements.iter().enumerate() {
            text.push_str(&script.text[at..s.code]);
            text.push_str(&marker(&k.to_string()));
            text.push_str(script.tight(s));
            text.push_str("\\;");
            if Some(k) == last {
                text.push(' ');
                text.push_str(&marker("h"));
                text.push_str(record);
                text.push_str(" \\gset\n");
            }
            // What lies between the statement's last word and its `;`, kept for its line breaks.
            text.push_str(&script.text[s.code_end..s.end]);
            at = if s.terminated { s.end + 1 } else { s.end };
        }
        if last.is_none() {
            text.push_str(&marker("h"));
            text.push_str(record);
            text.push_str(" \\gset\n");
        }
        text.push_str(&script.text[at..]);
        let lines = script.statements.iter().map(|s| (s.line, s.end_line)).collect();
        Batch { text, alias, rel: file.rel.clone(), lines }
    }

    fn tee<'a>(&self, log: &'a mut Transcript, path: &std::path::Path) -> BatchTee<'a> {
        BatchTee {
            log,
            alias: self.alias.clone(),
            prefix: format!("psql:{}:", path.display()),
            rel: self.rel.clone(),
            lines: self.lines.clone(),
            current: None,
            in_marker: 0,
            after_error: false,
            text: String::new(),
        }
    }
}

/// Takes the marker queries' output out of a batch's transcript and gives an error the line of
/// the statement it belongs to, as `psql -f` would have printed it.
pub(super) struct BatchTee<'a> {
    log: &'a mut Transcript,
    alias: String,
    /// `psql:<the batch file>:`, as psql names what it runs.
    prefix: String,
    /// The file in the tree, as the log names it.
    rel: String,
    lines: Vec<(usize, usize)>,
    current: Option<usize>,
    /// Lines of a marker's output still to drop: header, rule, value, `(1 row)`, blank.
    in_marker: u8,
    after_error: bool,
    pub text: String,
}

impl Tee for BatchTee<'_> {
    fn tee(&mut self, line: &str) -> Result<()> {
        if self.in_marker > 0 {
            if self.in_marker == 3 {
                self.current = line.trim().parse().ok();
            }
            self.in_marker -= 1;
            return Ok(());
        }
        if line.trim() == self.alias {
            self.in_marker = 4;
            return Ok(());
        }
        let mut line = line.to_string();
        if let Some(rest) = line.strip_prefix(&self.prefix) {
            // psql names the batch; the log names the file, and an error the line of its statement.
            if let Some((n, after)) = rest.split_once(": ") {
                let error = after.starts_with("ERROR:") || after.starts_with("FATAL:");
                let n = match self.current {
                    Some(k) if error => self.lines[k].1.to_string(),
                    _ => n.to_string(),
                };
                self.after_error = error;
                line = format!("psql:{}:{n}: {after}", self.rel);
            }
        } else if let (Some(rest), Some(k), true) = (line.strip_prefix("LINE "), self.current, self.after_error) {
            if let Some((n, after)) = rest.split_once(':') {
                if let Ok(n) = n.parse::<usize>() {
                    line = format!("LINE {}:{after}", (n + 1).saturating_sub(self.lines[k].0));
                }
            }
        }
        self.log.line(&line)?;
        self.text.push_str(&line);
        self.text.push('\n');
        Ok(())
    }
}
