//! A SQL file in one round trip: its statements joined with psql's `\;` into one query string, as
//! the Supabase CLI sends a migration. Before each statement the batch holds a one-row marker
//! query (`select '<alias>:<k>' as <alias>`) whose output the tool takes out of the transcript; it
//! tells which statement an error belongs to, so the log names the failing statement's line as
//! `psql -f` would (`psql:FILE:LINE:`), and `LINE n` of the error counts from that statement.
//!
//! The server runs a query string as one transaction unless it holds its own BEGIN/COMMIT, and
//! skips the rest of it after an error: a migration batch is all or nothing, and a test file
//! wrapped in BEGIN … ROLLBACK stops at its first error as it would have in its transaction.

use anyhow::{Context, Result};

use crate::evidence::artifacts::Transcript;
use crate::prepare::tree::SqlFile;
use crate::process::psql::{quote_arg, Unit};
use crate::process::Tee;
use crate::target::Target;

/// psql settings around a batch: sent before and after it, their output not kept.
#[derive(Clone, Copy, Debug)]
pub struct Around<'a> {
    pub before: &'a str,
    pub after: &'a str,
}

const PLAIN: Around = Around { before: "\\set ON_ERROR_STOP off", after: "" };

/// Run a file as one batch with `record` (a history row's insert or delete, its result put in
/// psql variables) last; the transcript goes to `log` as it arrives. Returns it and whether the
/// batch succeeded.
pub fn run(target: &mut Target, file: &SqlFile, record: Option<&str>, log: &mut Transcript) -> Result<(String, bool)> {
    let sets = target.conn().timeouts.set_statements(true);
    run_with(target, file, &sets, record, PLAIN, log)
}

/// [`run`] with other leading statements and psql settings.
pub fn run_with(
    target: &mut Target,
    file: &SqlFile,
    sets: &[String],
    record: Option<&str>,
    around: Around,
    log: &mut Transcript,
) -> Result<(String, bool)> {
    let batch = Batch::new(file, sets, record);
    let path = target.scratch().join(&file.rel);
    std::fs::create_dir_all(path.parent().expect("a file in a dir")).context("creating the batch dir")?;
    std::fs::write(&path, &batch.text).with_context(|| format!("writing the batch of {}", file.rel))?;
    let unit =
        Unit { before: around.before.into(), body: format!("\\i {}", quote_arg(&path)), after: around.after.into() };
    let mut tee = batch.tee(log, &path);
    let ran = target.run(&unit, Some(&mut tee))?;
    Ok((tee.text, ran.ok()))
}

/// Run a file statement by statement with `\i` (psql's own `-f`), stopping at the first error,
/// then `record` in a statement of its own.
pub fn run_by_statement(
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
pub struct Batch {
    pub text: String,
    alias: String,
    rel: String,
    /// Per statement: the line of its first word and of its end.
    lines: Vec<(usize, usize)>,
}

impl Batch {
    pub fn new(file: &SqlFile, sets: &[String], record: Option<&str>) -> Batch {
        let script = &file.script;
        let alias = format!("rehearsal_mark_{}", &file.sha256[..12]);
        let marker = |k: &str| format!("select '{alias}:{k}' as {alias}\\; ");
        let mut text = String::with_capacity(script.text.len() + 64 * script.statements.len() + 256);
        // Line 1 starts with a marker, so a line of the batch is the same line of the file.
        text.push_str(&marker("s"));
        for set in sets {
            text.push_str(set);
            text.push_str("\\; ");
        }
        let with_record = |text: &mut String| {
            if let Some(record) = record {
                text.push_str(&marker("h"));
                text.push_str(record);
                text.push_str(" \\gset\n");
            }
        };
        let last = script.statements.len().checked_sub(1);
        let mut at = 0;
        for (k, s) in script.statements.iter().enumerate() {
            text.push_str(&script.text[at..s.code]);
            text.push_str(&marker(&k.to_string()));
            text.push_str(script.tight(s));
            if Some(k) == last && record.is_none() {
                text.push(';');
            } else {
                text.push_str("\\;");
            }
            if Some(k) == last {
                text.push(' ');
                with_record(&mut text);
            }
            // What lies between the statement's last word and its `;`, kept for its line breaks.
            text.push_str(&script.text[s.code_end..s.end]);
            at = if s.terminated { s.end + 1 } else { s.end };
        }
        if last.is_none() {
            with_record(&mut text);
        }
        text.push_str(&script.text[at..]);
        let lines = script.statements.iter().map(|s| (s.line, s.end_line)).collect();
        Batch { text, alias, rel: file.rel.clone(), lines }
    }

    fn tee<'a>(&self, log: &'a mut Transcript, path: &std::path::Path) -> BatchTee<'a> {
        BatchTee {
            log,
            value: format!("{}:", self.alias),
            alias: self.alias.clone(),
            prefix: format!("psql:{}:", path.display()),
            rel: self.rel.clone(),
            lines: self.lines.clone(),
            current: None,
            header: false,
            drop: 0,
            after_error: false,
            text: String::new(),
        }
    }
}

/// Takes the marker queries' output out of a batch's transcript (aligned: header, rule, value,
/// `(1 row)`, blank; tuples only: the value) and gives an error the line of the statement it
/// belongs to, as `psql -f` would have printed it.
struct BatchTee<'a> {
    log: &'a mut Transcript,
    alias: String,
    /// `<alias>:`, how a marker's value starts.
    value: String,
    /// `psql:<the batch file>:`, as psql names what it runs.
    prefix: String,
    /// The file in the tree, as the log names it.
    rel: String,
    lines: Vec<(usize, usize)>,
    current: Option<usize>,
    /// A marker's header was seen: its rule and footer follow.
    header: bool,
    /// Lines of a marker's output still to drop.
    drop: u8,
    after_error: bool,
    text: String,
}

impl Tee for BatchTee<'_> {
    fn tee(&mut self, line: &str) -> Result<()> {
        if self.drop > 0 {
            self.drop -= 1;
            return Ok(());
        }
        let trimmed = line.trim();
        if trimmed == self.alias {
            self.header = true;
            return Ok(());
        }
        if self.header && !trimmed.is_empty() && trimmed.bytes().all(|b| b == b'-' || b == b'+') {
            return Ok(());
        }
        if let Some(k) = trimmed.strip_prefix(&self.value) {
            self.current = k.parse().ok();
            if std::mem::take(&mut self.header) {
                self.drop = 2; // `(1 row)` and the blank line
            }
            return Ok(());
        }
        let mut line = line.to_string();
        if let Some(rest) = line.strip_prefix(&self.prefix) {
            // psql names the batch; the log names the file, and an error the line of its statement.
            if let Some((n, after)) = rest.split_once(": ") {
                let error = after.starts_with("ERROR:") || after.starts_with("FATAL:");
                // psql -f names the line where the statement ends, notices included.
                let n = match self.current {
                    Some(k) => self.lines[k].1.to_string(),
                    None => n.to_string(),
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
