//! A file run statement by statement with psql's `\i` (its own `-f`): for what cannot go in one
//! round trip ([`super::chain`]): a file that cannot run in a transaction, `--no-atomic`, a test
//! file that is not one transaction.

use anyhow::{Context, Result};

use crate::evidence::artifacts::Transcript;
use crate::prepare::tree::SqlFile;
use crate::process::psql::{quote_arg, Unit};
use crate::process::Tee;
use crate::target::Target;

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
    target.doing(&file.rel);
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
