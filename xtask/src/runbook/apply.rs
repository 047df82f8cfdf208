//! Step 4, apply: each migration appended to `migration_apply.log` in the runbook's format
//! (`==> FILE`, psql's output, `!! failure: FILE`, a blank line).
//!
//! Unlike the runbook's loop, each file runs in one transaction together with the row that records
//! it in `supabase_migrations.schema_migrations` (version, name and statements, as the Supabase CLI
//! writes them), so a failure leaves nothing half-applied and history never drifts from the schema.
//! And it reaches the server in one round trip, as the CLI sends it: the file is sent as one
//! batch ([`batch`]), the history row last. A file that cannot run in a
//! transaction (CREATE INDEX CONCURRENTLY, VACUUM, its own BEGIN/COMMIT) runs statement by
//! statement with `\i` and the log says so; `--no-atomic` runs the runbook's exact command.

use std::time::Instant;

use anyhow::Result;

use super::batch;
use super::chain::{self, Ended, Link};
use crate::database::Target;
use crate::evidence::artifacts::Transcript;
use crate::evidence::manifest::sha256;
use crate::evidence::summary::{HistoryRecord, Status, StepResult};
use crate::prepare::tree::{Migration, SqlFile};
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
    /// What it did to the relations that existed before it, measured.
    pub impact: Vec<chain::impact::Impact>,
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
            impact: self.impact.clone(),
        }
    }
}

/// Apply one migration and record it. `atomic: false` (`--no-atomic`) runs the runbook's exact
/// command, `psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f FILE`, and records the history row after.
pub fn apply(target: &mut Target, m: &Migration, atomic: bool, log: &mut Transcript) -> Result<Applied> {
    apply_as(target, m, atomic, false, log)
}

/// [`apply`]; `psql_split`: a transactional file runs statement by statement as psql -f runs it
/// (after the chain found its split and psql's differ), in one transaction with its row.
fn apply_as(
    target: &mut Target,
    m: &Migration,
    atomic: bool,
    psql_split: bool,
    log: &mut Transcript,
) -> Result<Applied> {
    let started = Instant::now();
    log.line(&format!("==> {}", m.file()))?;
    let statements = m.sql.script.history_statements();
    let record = format!(
        "insert into supabase_migrations.schema_migrations (version, name, statements) values {}",
        history_values(m, &statements)
    );
    let reason = if atomic { m.sql.script.first_non_transactional().map(|(why, _)| why) } else { Some("--no-atomic") };
    let text = match reason {
        None => alone(target, &m.sql, &record, psql_split, log)?,
        Some(why) => {
            if why == "--no-atomic" {
                log.line("-- not atomic: --no-atomic (the runbook's command; the history row is recorded after)")?;
            } else {
                log.line(&format!(
                    "-- not atomic: {why} cannot run inside a transaction block; running the file without one"
                ))?;
            }
            batch::run_by_statement(target, &m.sql, &format!("{record};\n"), log)?
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
        // Run outside the chain: not measured; outside a transaction (CONCURRENTLY), what it
        // takes by definition.
        impact: if reason.is_some() { chain::impact::by_definition(&m.sql) } else { Vec::new() },
    })
}

/// Apply `migrations` in order, chains of transactional files in one round trip each ([`chain`]),
/// the others one by one ([`apply`]); `done(m, applied)` gets each result as it comes and says
/// whether to go on. A file that fails ends its chain; the next chain starts after it. On an
/// interrupt, `in_flight` names the file that was running. `trailer` rides with the chain that
/// ends with the last migration ([`chain::Trailer`]).
pub fn apply_all(
    target: &mut Target,
    migrations: &[Migration],
    (atomic, mut trailer): (bool, Option<&mut chain::Trailer>),
    log: &mut Transcript,
    in_flight: &mut Option<usize>,
    done: &mut dyn FnMut(&Migration, Applied) -> Result<bool>,
) -> Result<()> {
    let chains = target.chains();
    // Counted just before the run's first file: true for that file only.
    let exact = target.take_exact_rows();
    let chainable = |m: &Migration| atomic && chain::fits(chains, &m.sql);
    let mut at = 0;
    while at < migrations.len() {
        if !chainable(&migrations[at]) {
            *in_flight = Some(at);
            let applied = apply(target, &migrations[at], atomic, log)?;
            *in_flight = None;
            at += 1;
            if !done(&migrations[at - 1], applied)? {
                return Ok(());
            }
            continue;
        }
        let group: Vec<&Migration> =
            migrations[at..].iter().take_while(|m| chainable(m)).take(chain::MAX_LINKS).collect();
        let statements: Vec<Vec<String>> = group.iter().map(|m| m.sql.script.history_statements()).collect();
        let mut end = group.len();
        loop {
            let links = links(&group[..end], &statements);
            let place = target.kind.place();
            let error_from = target.lock_risk_error_from();
            let first = at;
            let rel = log.rel().to_string();
            let mut go_on = true;
            let mut on_done = |i: usize, mut outcome: chain::Outcome| -> Result<()> {
                if first + i == 0 {
                    chain::impact::Impact::use_exact(&mut outcome.impact, &exact);
                }
                let applied = chained(&group[i].sql, &statements[i], outcome, &rel, place, error_from);
                go_on = done(group[i], applied)?;
                Ok(())
            };
            let last = (at + end == migrations.len()).then_some(()).and(trailer.as_deref_mut());
            match chain::run_files(target, &links, log, (at, last), in_flight, &mut on_done)? {
                // A syntax error in file `j` ran nothing: the files before it first, then it alone.
                Ended::Rejected(j) => end = j.max(1),
                Ended::Ran(ran) => {
                    at += ran.max(1);
                    if !go_on {
                        return Ok(());
                    }
                    break;
                }
                Ended::Alone(j) => {
                    if !go_on {
                        return Ok(());
                    }
                    *in_flight = Some(at + j);
                    let applied = apply_as(target, group[j], atomic, true, log)?;
                    *in_flight = None;
                    at += j + 1;
                    if !done(group[j], applied)? {
                        return Ok(());
                    }
                    break;
                }
            }
        }
    }
    Ok(())
}

/// The links of a chain: each file with its history row.
fn links<'a>(group: &[&'a Migration], statements: &[Vec<String>]) -> Vec<Link<'a>> {
    group
        .iter()
        .zip(statements)
        .map(|(m, statements)| Link {
            file: &m.sql,
            header: Some(format!("==> {}", m.file())),
            failure: Some(format!("!! failure: {}", m.file())),
            record: Some(format!(
                "insert into supabase_migrations.schema_migrations (version, name, statements) values {} returning 1",
                history_values(m, statements)
            )),
            transaction: true,
        })
        .collect()
}

/// What a chained file's outcome says: applied (with its history row and lock risks) or failed
/// (with the finding that says why).
fn chained(
    file: &crate::prepare::tree::SqlFile,
    statements: &[String],
    outcome: chain::Outcome,
    log: &str,
    place: findings::Place,
    error_from: Option<u64>,
) -> Applied {
    let mut found = findings::scan(&outcome.text, Some(log), place);
    let ok = outcome.ok && outcome.recorded;
    if ok {
        found.extend(chain::impact::lock_risk(file, &outcome.impact, place, error_from));
    }
    Applied {
        ok,
        atomic: true,
        duration_ms: outcome.duration_ms,
        error: if ok { None } else { found.iter().find(|f| f.class.is_connection()).or(found.first()).cloned() },
        findings: found,
        history: ok.then(|| HistoryRecord { statements_sha256: statements_hash(statements) }),
        impact: outcome.impact,
    }
}

/// One transactional file in a transaction with `record` (a data-modifying statement): its
/// transcript and whether it applied and recorded. In one round trip when it [`chain::fits`] and
/// `psql_split` is off; else, or when the server refuses it, or psql splits it elsewhere than the
/// tool, statement by statement, as psql -f runs it.
pub(super) fn alone(
    target: &mut Target,
    file: &SqlFile,
    record: &str,
    psql_split: bool,
    log: &mut Transcript,
) -> Result<(String, bool)> {
    if psql_split || !chain::fits(target.chains(), file) {
        return batch::run_in_transaction(target, file, record, log);
    }
    let link =
        Link { file, header: None, failure: None, record: Some(format!("{record} returning 1")), transaction: true };
    let sets = target.conn().timeouts.set_statements(false);
    let mut result = (String::new(), false);
    let locked = target.holds_lock();
    let ended = chain::run(target, &[link], chain::around_files(&sets, locked), log, &mut None, &mut |_, outcome| {
        result = (outcome.text, outcome.ok && outcome.recorded);
        Ok(())
    })?;
    if let Ended::Alone(_) = ended {
        return batch::run_in_transaction(target, file, record, log);
    }
    Ok(result)
}

/// The hash a run records for a history row: sha256 of its statements joined by U+001F.
pub fn statements_hash<S: AsRef<str>>(statements: &[S]) -> String {
    let joined: Vec<&str> = statements.iter().map(AsRef::as_ref).collect();
    sha256(joined.join("\u{1f}").as_bytes())
}

/// The `(version, name, statements)` values of the history row, on one line.
fn history_values<S: AsRef<str>>(m: &Migration, statements: &[S]) -> String {
    let array: Vec<String> = statements.iter().map(|s| e_string(s.as_ref())).collect();
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
