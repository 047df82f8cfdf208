//! The chain's transcript as it arrives: markers and the tool's own command tags taken out,
//! each file under its header, `psql:FILE:LINE:` and `LINE n` as `psql -f` would print them, each
//! file's outcome handed on as it ends.

use std::collections::VecDeque;
use std::time::Instant;

use anyhow::Result;

use super::text::Chain;
use super::{impact, Ended, Link, Outcome};
use crate::evidence::artifacts::Transcript;
use crate::process::Tee;

pub(super) struct ChainTee<'a, 'b> {
    log: &'a mut Transcript,
    links: &'a [Link<'b>],
    chain: &'a Chain,
    value: String,
    prefix: String,
    /// The file running and its statement.
    pub current: Option<(usize, Option<usize>)>,
    outcome: Outcome,
    /// The server's clock when the running file started, and when the first did; the tool's
    /// when the chain was sent (psql writes results in blocks: the tool's clock cannot time a file).
    started: i64,
    first: Option<i64>,
    sent: Instant,
    /// A marker's header was seen (aligned output): its rule and footer follow.
    header: bool,
    drop: u8,
    /// Command tags of the tool's own statements still to come, to take out.
    hide: VecDeque<&'static str>,
    /// The last line was a notice (the lines under it follow).
    in_notice: bool,
    /// Everything before the first marker: kept back in case the server refused the string.
    held: Option<Vec<String>>,
    after_error: bool,
    /// `LINE n` was renumbered: the caret line under it moves by as many columns.
    caret_shift: Option<isize>,
    ran: usize,
    activity: crate::out::Activity,
    /// A `DO` command tag, held: it is the tool's when the next line is a marker's.
    pending_do: bool,
    /// The last line was the error of a marker that found the one before it missing.
    in_disagree: bool,
    /// A file's first marker found the run lock not held, on this backend.
    unlocked: Option<Option<u32>>,
    /// The target as messages name it, and the backend that took the run lock.
    holder: (String, Option<u32>),
    done: &'a mut dyn FnMut(usize, Outcome) -> Result<()>,
}

const NOTICE: [&str; 5] = ["NOTICE:", "WARNING:", "INFO:", "LOG:", "DEBUG:"];
/// The lines psql prints under a notice.
const NOTICE_PARTS: [&str; 6] = ["DETAIL:", "HINT:", "CONTEXT:", "QUERY:", "LOCATION:", "\t"];

impl<'a, 'b> ChainTee<'a, 'b> {
    pub fn new(
        chain: &'a Chain,
        links: &'a [Link<'b>],
        log: &'a mut Transcript,
        path: &std::path::Path,
        activity: crate::out::Activity,
        holder: (String, Option<u32>),
        done: &'a mut dyn FnMut(usize, Outcome) -> Result<()>,
    ) -> ChainTee<'a, 'b> {
        ChainTee {
            log,
            links,
            chain,
            value: format!("{}:", chain.alias),
            prefix: format!("psql:{}:", path.display()),
            current: None,
            outcome: Outcome::default(),
            started: 0,
            first: None,
            sent: Instant::now(),
            header: false,
            drop: 0,
            hide: VecDeque::new(),
            in_notice: false,
            held: Some(Vec::new()),
            after_error: false,
            caret_shift: None,
            ran: 0,
            activity,
            pending_do: false,
            in_disagree: false,
            unlocked: None,
            holder,
            done,
        }
    }

    /// A marker's value: `i:s:ms`, `i:k`, `i:h:n`, `i:e:ms`; whether it is the one the tool
    /// placed next (any other is output like any other).
    fn marker(&mut self, value: &str) -> Result<bool> {
        let parts: Vec<&str> = value.split(':').collect();
        let Some(i) = parts.first().and_then(|i| i.parse::<usize>().ok()).filter(|i| *i < self.links.len()) else {
            return Ok(false);
        };
        self.held = None;
        let link = &self.links[i];
        match parts.get(1).copied() {
            Some("s") if self.current.is_none() && i == self.ran => {
                self.current = Some((i, None));
                self.outcome = Outcome::default();
                self.started = parts.get(2).and_then(|t| t.parse().ok()).unwrap_or(0);
                self.first.get_or_insert(self.started);
                self.hide = self.chain.hidden[i][0].iter().copied().collect();
                if let Some(header) = &link.header {
                    self.log.line(header)?;
                }
            }
            // After the end of a statement: counted on the server, nothing to do here.
            Some("t") if self.current.is_some_and(|(f, _)| f == i) => {}
            Some("h") if self.current.is_some_and(|(f, _)| f == i) => {
                self.outcome.recorded = parts.get(2).is_some_and(|n| *n != "0");
            }
            Some("e") if self.current.is_some_and(|(f, _)| f == i) => {
                let ended: i64 = parts.get(2).and_then(|t| t.parse().ok()).unwrap_or(self.started);
                let mut outcome = std::mem::take(&mut self.outcome);
                outcome.ok = true;
                outcome.duration_ms = (ended - self.started).max(0) as u64;
                if link.header.is_some() {
                    self.log.line("")?;
                }
                self.current = None;
                self.ran = i + 1;
                (self.done)(i, outcome)?;
            }
            Some(_) if parts.len() > 2 => return Ok(false),
            Some(k) => {
                // Only the statement after the one running, of the file running.
                let (Some((file, previous)), Ok(k)) = (self.current, k.parse::<usize>()) else { return Ok(false) };
                let count = self.chain.statements[file].len();
                if file != i || k != previous.map_or(0, |p| p + 1) || k > count {
                    return Ok(false);
                }
                if k == count {
                    // A transactional file's last marker, after its last statement.
                    return Ok(true);
                }
                self.current = Some((file, Some(k)));
                self.hide = self.chain.hidden[file][k + 1].iter().copied().collect();
            }
            None => return Ok(false),
        }
        Ok(true)
    }

    /// The statement a notice printed now came from. psql prints a result only once it has the
    /// next, and libpq hands on a notice as soon as the result before it is complete: a notice
    /// shows after the marker of the statement before its own and before its own marker. So it
    /// is the next statement's (the last one's, for the commit's).
    fn notice_statement(&self) -> (Option<usize>, Option<usize>) {
        let Some((file, k)) = self.current else { return (None, None) };
        let count = self.chain.statements[file].len();
        let next = k.map_or(0, |k| k + 1).min(count.saturating_sub(1));
        (Some(file), (count > 0).then_some(next))
    }

    /// A line of psql's with the chain's names replaced by the file's: `psql:FILE:LINE:` and `LINE n`.
    fn rewrite(&mut self, line: &str, file: Option<usize>, statement: Option<usize>) -> String {
        if let Some(shift) = self.caret_shift.take() {
            let spaces = line.len() - line.trim_start_matches(' ').len();
            if line.trim_start_matches(' ') == "^" {
                return format!("{}^", " ".repeat((spaces as isize + shift).max(0) as usize));
            }
        }
        if let Some(rest) = line.strip_prefix(&self.prefix) {
            if let Some((n, after)) = rest.split_once(": ") {
                self.after_error = after.starts_with("ERROR:") || after.starts_with("FATAL:");
                if let (Some(file), Some(k)) = (file, statement) {
                    let end = self.chain.statements[file][k].1;
                    return format!("psql:{}:{end}: {after}", self.links[file].file.rel);
                }
                let rel = file.map_or(&self.links[0].file.rel, |f| &self.links[f].file.rel);
                return format!("psql:{rel}:{n}: {after}");
            }
        } else if let (Some(rest), true) = (line.strip_prefix("LINE "), self.after_error) {
            if let Some((n, after)) = rest.split_once(':') {
                if let Some((_, _, in_statement)) = n.parse().ok().and_then(|n| self.chain.locate(n)) {
                    let renumbered = in_statement.to_string();
                    self.caret_shift = Some(renumbered.len() as isize - n.len() as isize);
                    return format!("LINE {renumbered}:{after}");
                }
            }
        }
        line.to_string()
    }

    fn write(&mut self, line: &str) -> Result<()> {
        if self.current.is_some() {
            self.outcome.text.push_str(line);
            self.outcome.text.push('\n');
        }
        self.log.line(line)
    }

    /// After psql is done: a file that started and did not end failed; a string that never got to
    /// its first marker was refused.
    pub fn finish(mut self) -> Result<Ended> {
        if std::mem::take(&mut self.pending_do) {
            self.line("DO")?;
        }
        if let Some(held) = self.held.take() {
            return self.refused(held);
        }
        if let Some((i, _)) = self.current {
            // A failure ends the chain: the file ran from its start to the chain's end.
            let before = (self.started - self.first.unwrap_or(self.started)).max(0) as u128;
            let ms = self.sent.elapsed().as_millis().saturating_sub(before) as u64;
            return self.failed(i, ms, false);
        }
        Ok(Ended::Ran(self.ran))
    }

    /// File `i` failed: its failure line and blank line in the log, its outcome handed on.
    fn failed(mut self, i: usize, duration_ms: u64, refused: bool) -> Result<Ended> {
        self.current = None;
        let link = &self.links[i];
        if let Some(pid) = self.unlocked {
            // Nothing of it ran (its first statement is the check), and no other file may run.
            let (what, work_pid) = &self.holder;
            return Err(crate::database::lock::lost(&link.file.rel, pid, *work_pid, what));
        }
        if self.outcome.disagreed {
            self.log.line(&format!(
                "-- the tool's split of {} and psql's differ; rolled back, it runs again alone as psql -f runs it",
                link.file.rel
            ))?;
            return Ok(Ended::Alone(i));
        }
        if let Some(failure) = &link.failure {
            self.log.line(failure)?;
        }
        if link.header.is_some() {
            self.log.line("")?;
        }
        let outcome = Outcome { ok: false, refused, duration_ms, ..std::mem::take(&mut self.outcome) };
        (self.done)(i, outcome)?;
        Ok(Ended::Ran(i + 1))
    }

    /// Nothing ran: the server refused the string (a syntax error, an unterminated comment) or
    /// psql could not send it. The file that holds the error, from its `LINE n`; a lone file
    /// reports it as psql would have.
    fn refused(mut self, held: Vec<String>) -> Result<Ended> {
        let at = held.iter().find_map(|l| {
            let n = l.strip_prefix("LINE ")?.split_once(':')?.0.parse().ok()?;
            self.chain.locate(n)
        });
        if self.links.len() > 1 {
            // The file that holds the error, else (the error is in none of them, or has no
            // line) each file on its own from the first: another file is never blamed.
            return Ok(Ended::Rejected(at.map_or(0, |(file, _, _)| file)));
        }
        if !self.links[0].transaction {
            // A test file: its caller runs it again as psql -f would, and that is its transcript.
            let outcome = Outcome { refused: true, ..Outcome::default() };
            (self.done)(0, outcome)?;
            return Ok(Ended::Ran(1));
        }
        // A lone migration or rollback: it runs again as psql -f runs it, whose error (file,
        // line, the statements before it) is the one to report.
        self.held = None;
        Ok(Ended::Alone(0))
    }
}

impl Tee for ChainTee<'_, '_> {
    fn tee(&mut self, line: &str) -> Result<()> {
        // The statement starting now, for the in-flight line.
        if let Some(go) =
            line.strip_prefix(&self.prefix).and_then(|rest| rest.split_once(&format!("NOTICE:  {}", self.value)))
        {
            if let Some(payload) = go.1.split_once(":impact:").map(|(_, p)| p) {
                if let (Some(mut impact), Some((i, _))) = (impact::parse(payload), self.current) {
                    let statements = &self.links[i].file.script.statements;
                    impact.line = statements.get(impact.statement).map(|s| s.line);
                    self.outcome.impact.push(impact);
                }
                return Ok(());
            }
            let mut parts = go.1.split(':');
            if let (Some(Ok(i)), Some(Ok(k))) =
                (parts.next().map(str::parse::<usize>), parts.next().map(str::parse::<usize>))
            {
                let file = self.links.get(i).map(|l| l.file);
                if let (Ok(mut a), Some(f)) = (self.activity.lock(), file) {
                    if let Some(s) = f.script.statements.get(k) {
                        *a = format!("{}:{}", f.rel, s.line);
                    }
                }
            }
            return Ok(());
        }
        let marker = {
            let t = line.trim();
            t == self.chain.alias || t.starts_with(&self.value)
        };
        if line == "DO" && self.hide.front() == Some(&"DO") {
            self.hide.pop_front();
            return Ok(());
        }
        if std::mem::take(&mut self.pending_do) && !marker {
            self.line("DO")?;
        }
        if line == "DO" {
            self.pending_do = true;
            return Ok(());
        }
        self.line(line)
    }
}

impl ChainTee<'_, '_> {
    fn line(&mut self, line: &str) -> Result<()> {
        // After a marker's result row: its `(1 row)` footer, then the blank line under it, each
        // only when it is there (`\pset footer off` prints neither), so no line of the file's is lost.
        match std::mem::take(&mut self.drop) {
            2 if line.trim() == "(1 row)" => {
                self.drop = 1;
                return Ok(());
            }
            2 if line.is_empty() => return Ok(()),
            1 if line.is_empty() => return Ok(()),
            _ => {}
        }
        // Every file has ended: what follows is the tool's (a read after the chain), not a file's.
        if self.ran == self.links.len() && self.current.is_none() && self.held.is_none() {
            return Ok(());
        }
        let trimmed = line.trim();
        if trimmed == self.chain.alias {
            self.header = true;
            return Ok(());
        }
        if self.header && !trimmed.is_empty() && trimmed.bytes().all(|b| b == b'-' || b == b'+') {
            return Ok(());
        }
        if let Some(value) = trimmed.strip_prefix(&self.value) {
            let header = std::mem::take(&mut self.header);
            if self.marker(value)? {
                if header {
                    self.drop = 2; // `(1 row)` and the blank line
                }
                return Ok(());
            }
        }
        // A marker did not run where the tool placed it: psql read it as part of a literal or a
        // comment. The file's transaction is rolled back; it runs again alone, as psql -f runs it.
        if line.contains(&self.chain.disagree) || (self.current.is_some() && line.ends_with(&self.chain.deallocated)) {
            self.outcome.disagreed = true;
            self.in_disagree = true;
            return Ok(());
        }
        if let Some((_, after)) = line.split_once(&self.chain.unlocked) {
            let pid = after.split(':').nth(1).and_then(|p| p.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok());
            self.unlocked = Some(pid);
            self.in_disagree = true;
            return Ok(());
        }
        if self.in_disagree && (line.starts_with("CONTEXT:") || line.starts_with('\t')) {
            return Ok(());
        }
        self.in_disagree = false;
        if let Some(held) = self.held.as_mut() {
            held.push(line.to_string());
            return Ok(());
        }
        let notice = line
            .strip_prefix(&self.prefix)
            .and_then(|rest| rest.split_once(": "))
            .is_some_and(|(_, after)| NOTICE.iter().any(|n| after.starts_with(n)));
        // A notice and the lines under it (DETAIL, HINT, CONTEXT), with their statement's line.
        let under = self.in_notice && NOTICE_PARTS.iter().any(|p| line.starts_with(p));
        self.in_notice = notice || under;
        if self.in_notice {
            let (file, statement) = self.notice_statement();
            let line = self.rewrite(line, file, statement);
            return self.write(&line);
        }
        if self.hide.front().is_some_and(|tag| *tag == line) {
            self.hide.pop_front();
            return Ok(());
        }
        let (file, statement) = match self.current {
            Some((f, k)) => (Some(f), k),
            None => (None, None),
        };
        let line = self.rewrite(line, file, statement);
        self.write(&line)
    }
}
