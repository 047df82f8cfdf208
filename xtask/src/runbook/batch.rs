//! A file run statement by statement with psql's `\i` (its own `-f`): for what cannot go in one
//! round trip ([`super::chain`]): a file that cannot run in a transaction, `--no-atomic`, a test
//! file that is not one transaction.

use anyhow::{Context, Result};

use crate::database::{lock, Target};
use crate::evidence::artifacts::Transcript;
use crate::prepare::tree::SqlFile;
use crate::process::psql::{quote_arg, Unit};
use crate::process::Tee;
use crate::runbook::fresh;

/// Run a file statement by statement with `\i` (psql's own `-f`), stopping at the first error,
/// then `record` in a statement of its own.
pub fn run_by_statement(
    target: &mut Target,
    file: &SqlFile,
    record: &str,
    log: &mut Transcript,
) -> Result<(String, bool)> {
    let sets = set_lines(target);
    let unit = Unit {
        before: format!("\\set ON_ERROR_STOP on\n{}", lock_check(target)),
        body: format!("{sets}\\i {}", quote_arg(std::path::Path::new(&file.rel))),
        after: "\\set ON_ERROR_STOP off".into(),
    };
    target.doing(&file.rel);
    let ran = target.run(&unit, Some(log as &mut dyn Tee))?;
    held(target, file, &ran)?;
    let mut text = ran.text.clone();
    if !ran.ok() {
        return Ok((text, false));
    }
    let path = record_file(target, file, record)?;
    let unit = Unit {
        before: "\\set QUIET on\n\\set ON_ERROR_STOP off".into(),
        body: format!("\\i {}", quote_arg(&path)),
        after: format!("{}{sets}\\set QUIET off", fresh::joined(target.holds_lock(), ";\n")),
    };
    let ran = target.run(&unit, Some(log as &mut dyn Tee))?;
    text.push_str(&ran.text);
    Ok((text, ran.ok()))
}

/// A file that can run in a transaction, statement by statement with `\i` as psql -f runs it, in
/// one transaction with `record` (a data-modifying statement): for the file the server refused in
/// one round trip, or whose split psql and the tool disagree on. The session is reset first, as
/// after a file of a chain; the first error ends psql, and with it the transaction.
pub fn run_in_transaction(
    target: &mut Target,
    file: &SqlFile,
    record: &str,
    log: &mut Transcript,
) -> Result<(String, bool)> {
    let sets = set_lines(target);
    let path = record_file(target, file, &format!("{record};\ncommit;\n"))?;
    let fresh = fresh::joined(target.holds_lock(), ";\n");
    let check = lock_check(target);
    let unit = Unit {
        before: format!("\\set ON_ERROR_STOP on\n\\set QUIET on\n{fresh}begin;\n{check}{sets}\\set QUIET off"),
        body: format!(
            "\\i {}\n\\set QUIET on\n\\i {}\n\\set QUIET off",
            quote_arg(std::path::Path::new(&file.rel)),
            quote_arg(&path)
        ),
        // What the file set (`standard_conforming_strings`, a role) ends with it, as with its
        // psql -f session: the next file, chained or not, starts fresh.
        after: format!("\\set QUIET on\n{fresh}{sets}\\set QUIET off\n\\set ON_ERROR_STOP off"),
    };
    target.doing(&file.rel);
    let ran = target.run(&unit, Some(log as &mut dyn Tee))?;
    held(target, file, &ran)?;
    Ok((ran.text.clone(), ran.ok()))
}

/// When the session holds the run lock, the statement that checks its connection does, before
/// the file ([`lock::held_check`]); the first error ends psql.
fn lock_check(target: &Target) -> String {
    if target.holds_lock() {
        format!("do $rehearsal_lock$ begin{} end $rehearsal_lock$;\n", lock::held_check(lock::LOST))
    } else {
        String::new()
    }
}

/// The error that says `file` did not run because its connection did not hold the run lock.
fn held(target: &Target, file: &SqlFile, ran: &crate::process::psql::Ran) -> Result<()> {
    match ran.stray.split_once(lock::LOST) {
        Some((_, after)) if target.holds_lock() => {
            let pid = after.split(|c: char| !c.is_ascii_digit()).next().and_then(|p| p.parse().ok());
            Err(lock::lost(&file.rel, pid, target.work_pid(), &target.what()))
        }
        _ => Ok(()),
    }
}

/// The session's timeouts as psql input, one `set` statement a line.
fn set_lines(target: &Target) -> String {
    target.conn().timeouts.set_statements(false).iter().map(|s| format!("{s};\n")).collect()
}

/// The history row's change in a file of its own beside the batch, as the tool's role (a
/// `SET ROLE` in the file ends with the file).
fn record_file(target: &Target, file: &SqlFile, record: &str) -> Result<std::path::PathBuf> {
    let path = target.scratch().join(format!("{}.record.sql", file.rel));
    std::fs::create_dir_all(path.parent().expect("a file in a dir")).context("creating the batch dir")?;
    std::fs::write(&path, format!("reset role;\n{record}"))
        .with_context(|| format!("writing the history row of {}", file.rel))?;
    Ok(path)
}
