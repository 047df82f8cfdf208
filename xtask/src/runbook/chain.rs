//! Several files in one round trip: a chain of migrations (or rollbacks), each its own
//! transaction (`begin`, its statements, its history row, `commit`), joined into one query
//! string. Over a network a round trip costs more than most migrations take, so a run of nine
//! files costs one round trip, not nine.
//!
//! The server runs the string until a statement fails and skips the rest: the files before the
//! failing one are committed, the failing one is rolled back (the unit's `after` ends its
//! transaction), the ones after it have not run. The caller starts a new chain after the failed
//! file, so every file runs exactly as it would on its own. Marker queries (as in [`super::batch`])
//! tell the transcript where each file starts, which statement an error belongs to, whether the
//! history row was written, and (from `clock_timestamp()`) how long each file took; the log reads
//! as the one-file-at-a-time log does, file by file.

use anyhow::{Context, Result};

use crate::evidence::artifacts::Transcript;
use crate::prepare::tree::SqlFile;
use crate::process::psql::{quote_arg, Unit};
use crate::process::Tee;
use crate::target::Target;

/// At most this many files per round trip: progress keeps coming on long runs.
pub const MAX_LINKS: usize = 100;

/// One file of a chain.
pub struct Link<'a> {
    pub file: &'a SqlFile,
    /// The log's line before the file's output: `==> FILE`, `==> rollback FILE`.
    pub header: String,
    /// The log's line after a failure: `!! failure: FILE`.
    pub failure: String,
    /// The history row's change as a data-modifying statement with `returning 1`.
    pub record: String,
}

/// What one file of a chain did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Its transcript, markers taken out.
    pub text: String,
    pub ok: bool,
    /// The history row was written (inserted or deleted).
    pub recorded: bool,
    /// From the server's clock: its first statement to its commit.
    pub duration_ms: u64,
}

/// Run `links` as one chain; `done(i, outcome)` is called as each file ends, in order, up to and
/// including the first that fails. Returns how many files ran. On an interrupt the error comes
/// back with `in_flight` set to the file that was running.
pub fn run(
    target: &mut Target,
    links: &[Link],
    log: &mut Transcript,
    in_flight: &mut Option<usize>,
    done: &mut dyn FnMut(usize, Outcome) -> Result<()>,
) -> Result<usize> {
    let sets = target.conn().timeouts.set_statements(true);
    let chain = Chain::new(links, &sets);
    let path = target.scratch().join(format!("chain-{}.sql", &links[0].file.sha256[..12]));
    std::fs::write(&path, &chain.text).with_context(|| format!("writing the chain from {}", links[0].file.rel))?;
    let unit = Unit {
        before: "\\set ON_ERROR_STOP off".into(),
        body: format!("\\i {}", quote_arg(&path)),
        // A failed file's transaction is still open (and aborted): end it (no round trip otherwise).
        after: "\\if :ERROR\n\\set QUIET on\nrollback;\n\\set QUIET off\n\\endif".into(),
    };
    let mut tee = ChainTee::new(&chain, links, log, &path, done);
    let ran = target.run(&unit, Some(&mut tee));
    *in_flight = tee.current.map(|(i, _)| i);
    ran?;
    tee.finish()
}

struct Chain {
    text: String,
    alias: String,
    /// Per file: the chain's line where its text starts (0-based offset), and per statement the
    /// line of its first word and of its end, in the file.
    offsets: Vec<usize>,
    lines: Vec<Vec<(usize, usize)>>,
}

impl Chain {
    fn new(links: &[Link], sets: &[String]) -> Chain {
        let alias = format!("rehearsal_chain_{}", &links[0].file.sha256[..12]);
        let mark = |value: &str| format!("select '{alias}:{value}' as {alias}\\; ");
        let clock = |i: usize, what: &str| {
            format!(
                "select '{alias}:{i}:{what}:' || (extract(epoch from clock_timestamp()) * 1000)::bigint as {alias}\\; "
            )
        };
        let mut text = String::new();
        let (mut offsets, mut lines) = (Vec::new(), Vec::new());
        let mut line = 0;
        for (i, link) in links.iter().enumerate() {
            let script = &link.file.script;
            offsets.push(line);
            // The file's first line starts with its markers, so its lines keep their numbers.
            text.push_str(&clock(i, "s"));
            text.push_str("begin\\; ");
            for set in sets {
                text.push_str(set);
                text.push_str("\\; ");
            }
            let mut at = 0;
            for (k, s) in script.statements.iter().enumerate() {
                text.push_str(&script.text[at..s.code]);
                text.push_str(&mark(&format!("{i}:{k}")));
                text.push_str(script.tight(s));
                text.push_str("\\;");
                text.push_str(&script.text[s.code_end..s.end]);
                at = if s.terminated { s.end + 1 } else { s.end };
            }
            text.push_str(&script.text[at..]);
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!(
                "with h as ({}) select '{alias}:{i}:h:' || count(*) as {alias} from h\\; commit\\; {}\n",
                link.record,
                clock(i, "e").trim_end_matches("\\; ")
            ));
            let last = i + 1 == links.len();
            if !last {
                // Every statement but the chain's very last is joined with `\;`.
                text.truncate(text.len() - 1);
                text.push_str("\\;\n");
            } else {
                text.truncate(text.len() - 1);
                text.push_str(";\n");
            }
            line += script.text.lines().count().max(1) + 1;
            lines.push(script.statements.iter().map(|s| (s.line, s.end_line)).collect());
        }
        Chain { text, alias, offsets, lines }
    }
}

struct ChainTee<'a, 'b> {
    log: &'a mut Transcript,
    links: &'a [Link<'b>],
    alias: String,
    value: String,
    prefix: String,
    offsets: Vec<usize>,
    lines: Vec<Vec<(usize, usize)>>,
    /// The file running and its statement.
    current: Option<(usize, Option<usize>)>,
    outcome: Outcome,
    started: i64,
    header: bool,
    drop: u8,
    /// The command tag of the transaction this tool wraps each file in, to take out of the log
    /// (`BEGIN` after a file's start, `COMMIT` after its history row): the file's output reads as
    /// it does run on its own.
    hide: Option<&'static str>,
    after_error: bool,
    ran: usize,
    done: &'a mut dyn FnMut(usize, Outcome) -> Result<()>,
}

impl<'a, 'b> ChainTee<'a, 'b> {
    fn new(
        chain: &Chain,
        links: &'a [Link<'b>],
        log: &'a mut Transcript,
        path: &std::path::Path,
        done: &'a mut dyn FnMut(usize, Outcome) -> Result<()>,
    ) -> ChainTee<'a, 'b> {
        ChainTee {
            log,
            links,
            alias: chain.alias.clone(),
            value: format!("{}:", chain.alias),
            prefix: format!("psql:{}:", path.display()),
            offsets: chain.offsets.clone(),
            lines: chain.lines.clone(),
            current: None,
            outcome: Outcome::default(),
            started: 0,
            header: false,
            drop: 0,
            hide: None,
            after_error: false,
            ran: 0,
            done,
        }
    }

    /// A marker's value: `i:s:ms`, `i:k`, `i:h:n`, `i:e:ms`.
    fn marker(&mut self, value: &str) -> Result<()> {
        let parts: Vec<&str> = value.split(':').collect();
        let Some(i) = parts.first().and_then(|i| i.parse::<usize>().ok()) else { return Ok(()) };
        match parts.get(1).copied() {
            Some("s") => {
                self.current = Some((i, None));
                self.outcome = Outcome::default();
                self.started = parts.get(2).and_then(|t| t.parse().ok()).unwrap_or(0);
                self.hide = Some("BEGIN");
                self.log.line(&self.links[i].header)?;
            }
            Some("h") => {
                self.outcome.recorded = parts.get(2).is_some_and(|n| *n != "0");
                self.hide = Some("COMMIT");
            }
            Some("e") => {
                let ended: i64 = parts.get(2).and_then(|t| t.parse().ok()).unwrap_or(self.started);
                let mut outcome = std::mem::take(&mut self.outcome);
                outcome.ok = true;
                outcome.duration_ms = (ended - self.started).max(0) as u64;
                self.log.line("")?;
                self.current = None;
                self.ran = i + 1;
                (self.done)(i, outcome)?;
            }
            Some(k) => {
                if let (Some((file, _)), Ok(k)) = (self.current, k.parse::<usize>()) {
                    self.current = Some((file, Some(k)));
                }
            }
            None => {}
        }
        Ok(())
    }

    /// After psql is done: a file that started and did not end failed.
    fn finish(mut self) -> Result<usize> {
        if let Some((i, _)) = self.current.take() {
            self.log.line(&self.links[i].failure)?;
            self.log.line("")?;
            let mut outcome = std::mem::take(&mut self.outcome);
            outcome.ok = false;
            self.ran = i + 1;
            (self.done)(i, outcome)?;
        }
        Ok(self.ran)
    }
}

impl Tee for ChainTee<'_, '_> {
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
        if let Some(value) = trimmed.strip_prefix(&self.value) {
            if std::mem::take(&mut self.header) {
                self.drop = 2; // `(1 row)` and the blank line
            }
            return self.marker(value);
        }
        if let Some(tag) = self.hide.take() {
            if line == tag {
                return Ok(());
            }
        }
        let mut line = line.to_string();
        if let Some((file, statement)) = self.current {
            let link = &self.links[file];
            if let Some(rest) = line.strip_prefix(&self.prefix) {
                // psql names the chain; the log names the file and the line of the statement.
                if let Some((n, after)) = rest.split_once(": ") {
                    let n = match statement {
                        Some(k) => self.lines[file][k].1,
                        None => n.parse::<usize>().unwrap_or(0).saturating_sub(self.offsets[file]),
                    };
                    self.after_error = after.starts_with("ERROR:") || after.starts_with("FATAL:");
                    line = format!("psql:{}:{n}: {after}", link.file.rel);
                }
            } else if let (Some(rest), Some(k), true) = (line.strip_prefix("LINE "), statement, self.after_error) {
                if let Some((n, after)) = rest.split_once(':') {
                    if let Ok(n) = n.parse::<usize>() {
                        let in_file = n.saturating_sub(self.offsets[file]);
                        line = format!("LINE {}:{after}", (in_file + 1).saturating_sub(self.lines[file][k].0));
                    }
                }
            }
            self.outcome.text.push_str(&line);
            self.outcome.text.push('\n');
        }
        self.log.line(&line)?;
        Ok(())
    }
}
