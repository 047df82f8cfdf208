//! SQL files in one round trip: one file, or a chain of migrations (or rollbacks), joined into one
//! query string with psql's `\;`. Each migration is its own transaction (`begin`, its statements,
//! its history row, `commit`), then the session is reset as a fresh `psql -f` would find it. Over a
//! network a round trip costs more than most migrations take: nine files cost one, not nine.
//!
//! The server runs the string until a statement fails and skips the rest: the files before the
//! failing one are committed, the failing one is rolled back (the unit's `after` ends its
//! transaction), the ones after it have not run, and the caller starts a new chain after it. The
//! server parses the whole string before it runs any of it: a syntax error anywhere runs nothing,
//! and the caller is told which file holds it.
//!
//! Marker queries, each on a line of its own, tell the transcript where each file starts, which
//! statement an error belongs to, whether the history row was written and (from
//! `clock_timestamp()`) how long each file took. The tool's lines are taken out of the transcript,
//! so the log reads as one `psql -f` per file does: `psql:FILE:LINE:` names the line where the
//! statement ends, `LINE n` counts the lines psql sent from the statement's first, and notices
//! come with their statement.

use anyhow::{Context, Result};

use crate::database::reads::Reads;
use crate::database::Target;
use crate::evidence::artifacts::Transcript;
use crate::prepare::tree::SqlFile;
use crate::process::psql::{quote_arg, Unit};

/// At most this many files per round trip: progress keeps coming on long runs.
pub const MAX_LINKS: usize = 100;

pub mod impact;
mod tee;
mod text;

use tee::ChainTee;
use text::Chain;

/// One file of a chain.
pub struct Link<'a> {
    pub file: &'a SqlFile,
    /// The log's line before the file's output (`==> FILE`), and a blank line after it.
    pub header: Option<String>,
    /// The log's line after a failure (`!! failure: FILE`).
    pub failure: Option<String>,
    /// The history row's change, as a data-modifying statement with `returning 1`.
    pub record: Option<String>,
    /// In a transaction of its own, the session reset after it (migrations and rollbacks). A test
    /// file runs as it is.
    pub transaction: bool,
}

/// psql settings around the chain, the session's `set` statements (the timeouts) restored after
/// each transactional file, and reads to send after the last file.
pub struct Around<'a> {
    pub before: String,
    pub after: String,
    pub sets: &'a [String],
    pub trailer: Option<&'a mut Trailer>,
}

/// Reads that ride at the end of a chain, in its round trip ([`crate::database::reads`]): they run
/// only when every file of the chain did, and what came back of them is kept.
pub struct Trailer {
    reads: Reads,
    got: Option<Vec<Option<Vec<String>>>>,
}

impl Trailer {
    pub fn new(queries: &[String]) -> Trailer {
        Trailer { reads: Reads::new(queries), got: None }
    }

    /// Each read's lines, when the last chain that carried them got to them.
    pub fn take(&mut self) -> Option<Vec<Vec<String>>> {
        self.got.take()?.into_iter().collect()
    }
}

/// What one file of a chain did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Its transcript, markers taken out.
    pub text: String,
    pub ok: bool,
    /// The server refused it before running any of it (a syntax error). A test file's transcript
    /// is then not written: run it statement by statement instead.
    pub refused: bool,
    /// The history row was written (inserted or deleted).
    pub recorded: bool,
    /// From the server's clock when it ended, else the tool's.
    pub duration_ms: u64,
    /// A marker found the one before it missing: the file was rolled back.
    pub disagreed: bool,
    /// What it did to the relations that existed before it, measured ([`impact`]).
    pub impact: Vec<impact::Impact>,
}

/// How a chain ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// This many files ran, the last of them possibly failing.
    Ran(usize),
    /// The server refused the string: the file at this index holds a syntax error, nothing ran.
    /// Its transcript is not written; run the files before it, then it alone.
    Rejected(usize),
    /// The files before this one ran (their outcomes were handed on); this one did not commit and
    /// its outcome was not handed on: the server refused it alone, or psql split it elsewhere
    /// than the tool (a marker did not run where it was placed). Run it alone with
    /// [`crate::runbook::batch::run_in_transaction`], as psql -f runs it.
    Alone(usize),
}

/// Whether a migration or rollback goes in a chain: `chains`, the target's psql shows each result
/// of a query string ([`Target::chains`]), the file can run in a transaction, and it reads the same sent whole as
/// sent statement by statement (no COPY data, no `standard_conforming_strings`).
pub fn fits(chains: bool, file: &SqlFile) -> bool {
    chains && file.script.first_non_transactional().is_none() && file.script.needs_psql_f().is_none()
}

/// The usual settings for migrations and rollbacks: errors do not end psql, and a failed file's
/// transaction (still open, aborted) is ended, with no round trip when nothing failed. `locked`:
/// the session holds the run lock, which its reset keeps.
pub fn around_files(sets: &[String], locked: bool) -> Around<'_> {
    // After a failure the chain stopped before the file's session reset: it comes here, so the
    // next file still starts as fresh as psql -f gives.
    let restore: String = sets.iter().map(|s| format!("{s};\n")).collect();
    Around {
        before: "\\set ON_ERROR_STOP off".into(),
        after: format!(
            "\\if :ERROR\n\\set QUIET on\nrollback;\n{}{restore}\\set QUIET off\n\\endif",
            crate::runbook::fresh::joined(locked, ";\n")
        ),
        sets,
        trailer: None,
    }
}

/// Run `links` as one chain; `done(i, outcome)` is called as each file ends, in order, up to and
/// including the first that fails. A lone file that the server refuses is reported failed (with its
/// error where psql would put it), not [`Ended::Rejected`]. On an interrupt the error comes back
/// with `in_flight` set to the file that was running.
pub fn run(
    target: &mut Target,
    links: &[Link],
    around: Around,
    log: &mut Transcript,
    in_flight: &mut Option<usize>,
    done: &mut dyn FnMut(usize, Outcome) -> Result<()>,
) -> Result<Ended> {
    let Around { before, after, sets, trailer } = around;
    let statements = trailer.as_ref().map(|t| t.reads.statements()).unwrap_or_default();
    let chain = Chain::new(links, sets, target.holds_lock(), &statements);
    let path = target.scratch().join(format!("chain-{}.sql", &chain.alias["rehearsal_mark_".len()..]));
    std::fs::write(&path, &chain.text).with_context(|| format!("writing the batch of {}", links[0].file.rel))?;
    let unit = Unit { before, body: format!("\\i {}", quote_arg(&path)), after };
    let holder = (target.what(), target.work_pid());
    let mut tee = ChainTee::new(&chain, links, log, &path, target.activity(), holder, done);
    let ran = match trailer {
        Some(trailer) => {
            let mut capture = trailer.reads.capture(Some(&mut tee));
            let ran = target.run(&unit, Some(&mut capture));
            let parts = capture.finish().parts;
            trailer.got = Some(parts);
            ran
        }
        None => target.run(&unit, Some(&mut tee)),
    };
    *in_flight = tee.current.map(|(i, _)| i);
    ran?;
    tee.finish()
}

/// [`run`] for migrations or rollbacks at `at` of the caller's list: the usual settings, and
/// `in_flight` as an index of that list; `trailer` after the last file.
pub fn run_files(
    target: &mut Target,
    links: &[Link],
    log: &mut Transcript,
    (at, trailer): (usize, Option<&mut Trailer>),
    in_flight: &mut Option<usize>,
    done: &mut dyn FnMut(usize, Outcome) -> Result<()>,
) -> Result<Ended> {
    let sets = target.conn().timeouts.set_statements(false);
    let mut running = None;
    let locked = target.holds_lock();
    let around = Around { trailer, ..around_files(&sets, locked) };
    let ended = run(target, links, around, log, &mut running, done);
    *in_flight = running.map(|i| at + i);
    let ended = ended?;
    *in_flight = None;
    Ok(ended)
}
