//! Step 6, the RLS contract: `supabase/rls_tests.sql` as the runbook runs it (`psql -f`, errors do
//! not stop it), tee'd to `rls_contract.log`, then each file of the Supabase test layout as `supabase
//! test db` (pg_prove) runs it: unaligned tuples, quiet, stopping at the first error. All on the
//! working session; between files the session is reset (transaction rolled back, role and settings
//! reset), and a file that ends psql gets a fresh session. The exit code is not trusted: each
//! file's TAP is read.

use anyhow::Result;

use super::chain::{self, Around, Link};
use crate::database::Target;
use crate::evidence::artifacts::Transcript;
use crate::evidence::manifest::sha256;
use crate::evidence::summary::{RlsFile, RlsRecord, TapFailure, TapTest};
use crate::prepare::tree::{SqlFile, CONTRACT};
use crate::process::psql::{quote_arg, Unit};
use crate::process::Tee;
use crate::text::findings::Finding;
use crate::text::sql::{non_transactional, Script, Statement};
use crate::text::tap::{self, TapReport};

#[derive(Debug)]
pub struct FileResult {
    pub file: String,
    pub report: TapReport,
}

#[derive(Debug, Default)]
pub struct RlsResult {
    pub files: Vec<FileResult>,
}

impl RlsResult {
    pub fn errors(&self) -> Vec<&Finding> {
        self.files.iter().flat_map(|f| &f.report.errors).collect()
    }

    pub fn record(&self) -> RlsRecord {
        let files: Vec<RlsFile> = self
            .files
            .iter()
            .map(|f| RlsFile {
                path: f.file.clone(),
                planned: f.report.planned,
                ran: f.report.ran,
                passed: f.report.passed,
                failed: f.report.failed,
                errors: f.report.errors.len() as u32,
                ran_short: f.report.ran_short(),
                ran_over: f.report.ran_over(),
                tests: f
                    .report
                    .tests
                    .iter()
                    .map(|(number, description, ok)| TapTest {
                        number: *number,
                        description: description.clone(),
                        ok: *ok,
                    })
                    .collect(),
            })
            .collect();
        let failures = self
            .files
            .iter()
            .flat_map(|f| {
                f.report.failures.iter().map(move |(n, d)| TapFailure {
                    file: f.file.clone(),
                    number: *n,
                    description: d.clone(),
                    diagnostics: f.report.diagnostics.get(n).cloned().unwrap_or_default(),
                })
            })
            .collect();
        RlsRecord {
            planned: files.iter().map(|f| f.planned.unwrap_or(0)).sum(),
            ran: files.iter().map(|f| f.ran).sum(),
            passed: files.iter().map(|f| f.passed).sum(),
            failed: files.iter().map(|f| f.failed).sum(),
            errors: files.iter().map(|f| f.errors).sum(),
            failures,
            files,
        }
    }
}

/// Run each contract file, appending its transcript to `log` under a `==> FILE` line.
pub fn run(target: &mut Target, files: &[String], log: &mut Transcript) -> Result<RlsResult> {
    let mut result = RlsResult::default();
    // As a fresh session would be, in one round trip: pgTAP keeps its plan in temporary tables, so
    // those go too.
    let mut reset: Vec<String> = vec!["rollback".to_string()];
    reset.extend(super::fresh::statements(target.holds_lock()).into_iter().map(|(statement, _)| statement));
    reset.extend(target.conn().timeouts.set_statements(false));
    let reset = format!("{};", reset.join("\\; "));
    // pg_prove's flags: unaligned tuples, quiet, no pager, stop at the first error.
    let prove_before = "\\set QUIET on\n\\pset format unaligned\n\\pset tuples_only on";
    let prove_after = format!("\\set QUIET off\n\\pset format aligned\n\\pset tuples_only off\n{reset}");
    for file in files {
        log.line(&format!("==> {file}"))?;
        target.doing(file);
        let mut text = None;
        if let Some(script) = one_transaction(&target.workdir().join(file), file).filter(|_| target.chains()) {
            // One round trip: the server skips the rest of the file at its first error, as its
            // transaction would have ignored it.
            let before = if file == CONTRACT {
                "\\set ON_ERROR_STOP off".to_string()
            } else {
                format!("\\set ON_ERROR_STOP off\n{prove_before}")
            };
            let after = if file == CONTRACT { reset.clone() } else { prove_after.clone() };
            let link = Link { file: &script, header: None, failure: None, record: None, transaction: false };
            let around = Around { before: before.clone(), after: after.clone(), sets: &[], trailer: None };
            chain::run(target, &[link], around, log, &mut None, &mut |_, outcome| {
                // Refused (a syntax error): nothing ran; psql -f runs what comes before it.
                if !outcome.refused {
                    text = Some(outcome.text);
                }
                Ok(())
            })?;
        }
        let text = match text {
            Some(text) => text,
            // Statement by statement, as `psql -f` (the runbook) or pg_prove runs it.
            None => {
                let body = format!("\\i {}", quote_arg(std::path::Path::new(file)));
                let unit = if file == CONTRACT {
                    Unit { before: "\\set ON_ERROR_STOP off".into(), body, after: reset.clone() }
                } else {
                    Unit {
                        before: format!("\\set ON_ERROR_STOP on\n{prove_before}"),
                        body,
                        after: format!("\\set ON_ERROR_STOP off\n{prove_after}"),
                    }
                };
                target.run(&unit, Some(log as &mut dyn Tee))?.text
            }
        };
        log.line("")?;
        let place = target.kind.place();
        result.files.push(FileResult { file: file.clone(), report: tap::read(&text, Some(log.rel()), place) });
    }
    Ok(result)
}

/// The file, lexed, when it is one explicit transaction that can go as one batch: BEGIN first,
/// COMMIT or ROLLBACK last, no other transaction control, no psql meta-command, nothing that
/// cannot run in a transaction block. Anything else runs statement by statement.
fn one_transaction(path: &std::path::Path, rel: &str) -> Option<SqlFile> {
    let bytes = std::fs::read(path).ok()?;
    let script = Script::lex(std::str::from_utf8(&bytes).ok()?);
    let word = |s: &Statement, i: usize| s.words.get(i).map(|w| w.to_ascii_lowercase()).unwrap_or_default();
    // Savepoints stay inside the transaction; anything else ends or nests one. `rollback to`
    // recovers from an error that psql -f would go on after, so such a file goes statement by
    // statement.
    let inside = |s: &Statement| match word(s, 0).as_str() {
        "begin" | "start" | "commit" | "end" | "abort" | "rollback" => false,
        "prepare" => word(s, 1) != "transaction",
        _ => true,
    };
    let (first, rest) = script.statements.split_first()?;
    let (last, middle) = rest.split_last()?;
    let opens = matches!(word(first, 0).as_str(), "begin" | "start");
    let closes = matches!(word(last, 0).as_str(), "commit" | "end" | "rollback" | "abort") && word(last, 1) != "to";
    let plain = middle.iter().all(inside);
    // Inside the transaction, nothing that refuses to run in one (its own BEGIN/COMMIT aside).
    let transactional = middle.iter().all(|s| non_transactional(s).is_none());
    let ok =
        opens && closes && plain && transactional && script.meta_commands.is_empty() && script.unterminated.is_none();
    ok.then(|| SqlFile { rel: rel.to_string(), sha256: sha256(&bytes), script })
}
