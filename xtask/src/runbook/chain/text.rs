//! The chain's text: each file's statements with a marker query on a line of its own before
//! each, the tool's lines around them, and per line where it comes from and whether psql sends it,
//! to turn the server's `LINE n` back into the file's.

use super::Link;
use crate::runbook::fresh;

/// Where a line of the chain comes from.
#[derive(Clone, Copy, Debug)]
pub(super) enum Origin {
    /// A line (or the rest of a line) of file `.0`.
    File(usize),
    /// A line of the tool's: markers, the transaction, the history row.
    Tool,
}

pub(super) struct Chain {
    pub text: String,
    pub alias: String,
    /// Per line of `text`: where it comes from, and whether psql sends it (it skips empty lines
    /// outside quotes and comments).
    origins: Vec<Origin>,
    kept: Vec<bool>,
    /// Per file, per statement: the chain line of its first word (0-based) and its last line in
    /// the file.
    pub statements: Vec<Vec<(usize, usize)>>,
    /// Per file, per stretch (before its first statement's marker, then after each statement's
    /// marker): the command tags of the tool's own statements in it, in order, to take out.
    pub hidden: Vec<Vec<Vec<&'static str>>>,
    /// The text of the error a marker raises when the one before it did not run.
    pub disagree: String,
    /// The text of the error a file's first marker raises when its connection does not hold the
    /// run lock, before its backend's pid.
    pub unlocked: String,
    /// The end of the error a marker fails with when the file deallocated the tool's statements
    /// (`DEALLOCATE ALL`): the file runs again alone.
    pub deallocated: String,
}

impl Chain {
    /// `locked`: the session holds the run lock; each transactional file checks it first.
    /// `trailer`: statements sent after the last file (reads), on lines of their own.
    pub fn new(links: &[Link], sets: &[String], locked: bool, trailer: &[String]) -> Chain {
        let secret = crate::process::psql::nonce();
        let alias = format!("rehearsal_mark_{secret}");
        let m = Markers {
            alias: alias.clone(),
            tag: format!("$m{secret}$"),
            step: format!("rehearsal_step_{secret}"),
            term: format!("rehearsal_term_{secret}"),
            locked,
        };
        let mut b = Builder { text: String::new(), origins: vec![Origin::Tool], quoted_start: vec![false] };
        let mut statements = Vec::new();
        let mut all_hidden = Vec::new();
        for (i, link) in links.iter().enumerate() {
            let (firsts, hidden) = b.link(&m, i, link, i + 1 == links.len() && trailer.is_empty(), sets);
            statements.push(firsts);
            all_hidden.push(hidden);
        }
        if !trailer.is_empty() {
            b.newline(Origin::Tool, false);
            b.tool(&format!("{};\n", trailer.join("\\; ")));
        }
        let kept = b
            .text
            .split('\n')
            .zip(&b.quoted_start)
            .map(|(text, quoted)| !text.is_empty() || *quoted)
            .chain(std::iter::repeat(true))
            .take(b.origins.len())
            .collect();
        let disagree = format!("{alias}:disagree:");
        let unlocked = format!("{alias}:unlocked:");
        let deallocated = format!("_{secret}\" does not exist");
        Chain {
            text: b.text,
            alias,
            origins: b.origins,
            kept,
            statements,
            hidden: all_hidden,
            disagree,
            unlocked,
            deallocated,
        }
    }

    /// The file, statement and `LINE n` (as psql would print it for that statement alone) of the
    /// server's `LINE n` in the whole string.
    pub fn locate(&self, n: usize) -> Option<(usize, usize, usize)> {
        let line = (0..self.kept.len()).filter(|l| self.kept[*l]).nth(n.checked_sub(1)?)?;
        let Origin::File(file) = self.origins[line] else { return None };
        let k = self.statements[file].iter().rposition(|(first, _)| *first <= line)?;
        let first = self.statements[file][k].0;
        let in_statement = (first..=line).filter(|l| self.kept[*l]).count();
        Some((file, k, in_statement))
    }
}

/// The tool's own text in a chain: the marker queries and the blocks that check the markers ran
/// and measure each file's impact, all named by the chain's secret alias and dollar tag.
struct Markers {
    alias: String,
    tag: String,
    /// The name of the prepared statement each marker of a transactional file runs
    /// ([`super::impact::step`]).
    step: String,
    /// The prepared statement after each end of an empty statement ([`super::impact::term`]).
    term: String,
    /// Each transactional file first checks that its connection holds the run lock.
    locked: bool,
}

impl Markers {
    fn mark(&self, value: &str) -> String {
        let alias = &self.alias;
        format!("select '{alias}:{value}' as {alias}\\; ")
    }

    fn clock(&self, i: usize, what: &str) -> String {
        let alias = &self.alias;
        format!("select '{alias}:{i}:{what}:' || (extract(epoch from pg_catalog.clock_timestamp()) * 1000)::bigint as {alias}")
    }

    /// A transactional file's marker statement, prepared once per file (the reset between
    /// files deallocates it with the file's own).
    fn prepare(&self) -> String {
        format!(
            "prepare {} as {}\\; prepare {} as {}\\; ",
            self.step,
            super::impact::step(&self.alias),
            self.term,
            super::impact::term(&self.alias)
        )
    }

    /// A transactional file's marker, before its first statement and after each `;` that ends one:
    /// the prepared statement ([`super::impact::step`]). The server keeps the last marker that ran
    /// (a setting local to the file's transaction), each one moves it on, and the file commits only
    /// once the last has moved it as far as the file has statements: a marker that psql read as part of a literal or a comment (its split and
    /// the tool's disagree) stops the file before anything commits.
    fn execute(&self) -> String {
        format!("execute {}\\; ", self.step)
    }

    /// After the `\;` that ends an empty statement of a transactional file ([`super::impact::term`]).
    fn term(&self) -> String {
        format!("execute {}\\; ", self.term)
    }

    /// What a file does first, in PL/pgSQL: a transactional one checks that its connection holds
    /// the run lock (when the session took it), takes the chain's baseline (its first file) and
    /// starts the markers; then, before a statement, the notice psql prints as it starts (a result
    /// is printed only once the next is in), which is what the in-flight line names.
    fn begin(&self, i: usize, link: &Link, notice: Option<usize>) -> String {
        let (alias, tag) = (&self.alias, &self.tag);
        let mut body = String::new();
        if link.transaction {
            if self.locked {
                body.push_str(&crate::database::lock::held_check(&format!("{alias}:unlocked:{i}:")));
            }
            if i == 0 {
                body.push_str(&super::impact::baseline());
            }
            body.push_str(&format!(" perform pg_catalog.set_config('rehearsal.mark', '{alias}:{i}:-1', true);"));
        }
        if let Some(k) = notice {
            body.push_str(&format!(" raise notice '{alias}:{i}:{k}:go';"));
        }
        format!("do {tag} begin{body} end {tag}\\; ")
    }

    /// Before a statement of a file after its first: its notice.
    fn notice(&self, i: usize, k: usize) -> String {
        let (alias, tag) = (&self.alias, &self.tag);
        format!("do {tag} begin raise notice '{alias}:{i}:{k}:go'; end {tag}\\; ")
    }
}

/// The chain's text and, per line, its origin and whether it starts inside a quote.
struct Builder {
    text: String,
    origins: Vec<Origin>,
    quoted_start: Vec<bool>,
}

impl Builder {
    /// File `i` of the chain, its markers around each statement: per statement, the chain line
    /// of its first word and its last line in the file; per stretch, the tool's command tags.
    fn link(
        &mut self,
        m: &Markers,
        i: usize,
        link: &Link,
        last: bool,
        sets: &[String],
    ) -> (Vec<(usize, usize)>, Vec<Vec<&'static str>>) {
        let b = self;
        let script = &link.file.script;
        let quoted = script.quoted_line_starts();
        let quoted_start = |line: usize| quoted.get(line - 1).copied().unwrap_or(false);
        let count = script.statements.len();
        let mut hidden: Vec<Vec<&'static str>> =
            vec![if link.transaction { vec!["BEGIN", "PREPARE", "PREPARE", "DO"] } else { vec![] }];
        if i > 0 {
            b.newline(Origin::Tool, false);
        }
        b.tool(&format!("{}\\; ", m.clock(i, "s")));
        if link.transaction {
            b.tool("begin\\; ");
            b.tool(&m.prepare());
            b.tool(&m.begin(i, link, (count > 0).then_some(0)));
        }
        // The file's text as written, in order. A transactional file: before its first
        // statement's first word a marker on a line of its own, and each `;` that ends a
        // statement (an empty one too) as `\;` followed by a marker on a line of its own (with
        // the next statement's notice). A test file: before each statement's first word its notice
        // and marker. Everything the tool adds is followed by a marker before the file's text goes
        // on, and the last check counts them all before the commit.
        let mut events: Vec<(usize, Option<usize>)> =
            script.statements.iter().enumerate().map(|(k, s)| (s.code, Some(k))).collect();
        events.extend(script.terminators.iter().map(|t| (*t, None)));
        events.sort_unstable();
        b.newline(Origin::File(i), quoted_start(1));
        let mut line = 1;
        let mut at = 0;
        let mut firsts = Vec::new();
        // Empty statements' ends, and the statement that is open (its end not yet seen).
        let (mut ends, mut open) = (0, None);
        for (offset, statement) in events {
            line = b.file(i, line, &script.text[at..offset], &quoted_start);
            match statement {
                Some(k) => {
                    if !link.transaction || k == 0 {
                        b.newline(Origin::Tool, false);
                        if link.transaction {
                            b.tool(&m.execute());
                        } else {
                            b.tool(&m.notice(i, k));
                            b.tool(&m.mark(&format!("{i}:{k}")));
                        }
                        b.newline(Origin::File(i), false);
                    }
                    hidden.push(Vec::new());
                    firsts.push((b.origins.len() - 1, script.statements[k].end_line));
                    open = Some(k);
                    at = offset;
                }
                None => {
                    // The marker on a line of its own: the server's `LINE n` shows the
                    // statement's line as psql -f sends it.
                    b.tool("\\;");
                    if link.transaction {
                        b.newline(Origin::Tool, false);
                        match open.take() {
                            Some(k) => {
                                if k + 1 < count {
                                    b.tool(&m.notice(i, k + 1));
                                }
                                b.tool(&m.execute());
                            }
                            None => {
                                b.tool(&m.term());
                                ends += 1;
                            }
                        }
                        b.newline(Origin::File(i), false);
                    }
                    at = offset + 1;
                }
            }
        }
        b.file(i, line, &script.text[at..], &quoted_start);
        if script.statements.last().is_some_and(|s| !s.terminated) {
            b.newline(Origin::Tool, false);
            b.tool("\\;");
            if link.transaction {
                b.tool(&m.execute());
            }
        }
        b.end(m, (i, ends), link, last, sets, hidden.last_mut().expect("a stretch"));
        (firsts, hidden)
    }

    /// The end of file `i`: for a transactional one, the last marker, the check that every marker
    /// ran and the impact report, the history row, the commit and the session reset; then the
    /// file's end clock. `tail` takes the command tags of the tool's statements.
    fn end(
        &mut self,
        m: &Markers,
        (i, ends): (usize, usize),
        link: &Link,
        last: bool,
        sets: &[String],
        tail: &mut Vec<&'static str>,
    ) {
        let b = self;
        let (alias, tag) = (m.alias.as_str(), m.tag.as_str());
        b.newline(Origin::Tool, false);
        if link.transaction {
            // The marker after the last statement moved the count to the number of statements.
            let statements = link.file.script.statements.len();
            let count = if statements == 0 { "-1".to_string() } else { statements.to_string() };
            tail.push("DO");
            let mut check = format!(
                "if coalesce(pg_catalog.current_setting('rehearsal.mark', true), '') <> '{alias}:{i}:{count}' or \
                 coalesce(nullif(pg_catalog.current_setting('rehearsal.term', true), ''), '0') <> '{ends}' then \
                 raise exception '{alias}:disagree:{i}:{count}'; end if;"
            );
            if m.locked {
                // A file that let the run lock go (pg_advisory_unlock_all()) commits only if the
                // session has it again.
                check.push_str(&format!(
                    " if not {} and not pg_catalog.pg_try_advisory_lock({}) then raise exception \
                     '{alias}:unlocked:{i}:%', pg_catalog.pg_backend_pid(); end if;",
                    crate::database::lock::held(crate::database::lock::KEY, "ExclusiveLock"),
                    crate::database::lock::KEY
                ));
            }
            let report =
                super::impact::report().replace("{notice}", &format!("{alias}:{i}:impact:")).replace("{check}", &check);
            b.tool(&format!("do {tag} {report} end {tag}\\; "));
        }
        if let Some(record) = &link.record {
            // As the tool's own role: a `SET ROLE` in the file ends with the file.
            b.tool("reset role\\; ");
            tail.push("RESET");
            b.tool(&format!("with h as ({record}) select '{alias}:{i}:h:' || count(*) as {alias} from h\\; "));
        }
        if link.transaction {
            // Then the session as fresh as psql -f finds it ([`fresh`]).
            b.tool(&format!("commit\\; {}", fresh::joined(m.locked, "\\; ")));
            tail.push("COMMIT");
            tail.extend(fresh::tags());
            for set in sets {
                b.tool(&format!("{set}\\; "));
                tail.push("SET");
            }
        }
        b.tool(&m.clock(i, "e"));
        b.tool(if last { ";\n" } else { "\\;" });
    }

    fn tool(&mut self, text: &str) {
        self.text.push_str(text);
    }

    fn newline(&mut self, origin: Origin, quoted: bool) {
        self.text.push('\n');
        self.origins.push(origin);
        self.quoted_start.push(quoted);
    }

    /// Text of file `i` from its line `line`; returns the line it ends on.
    fn file(&mut self, i: usize, mut line: usize, text: &str, quoted_start: &dyn Fn(usize) -> bool) -> usize {
        let mut parts = text.split('\n');
        self.text.push_str(parts.next().unwrap_or_default());
        for part in parts {
            line += 1;
            self.newline(Origin::File(i), quoted_start(line));
            self.text.push_str(part);
        }
        line
    }
}
