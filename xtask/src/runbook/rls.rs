//! Step 6, the RLS contract: `supabase/rls_tests.sql` as the runbook runs it (`psql -f`, errors do
//! not stop it), tee'd to `rls_contract.log`, then each file of the Supabase test layout as `supabase
//! test db` (pg_prove) runs it: unaligned tuples, quiet, stopping at the first error. All on the
//! working session; between files the session is reset (transaction rolled back, role and settings
//! reset), and a file that ends psql gets a fresh session. The exit code is not trusted: each
//! file's TAP is read.

use anyhow::Result;

use crate::evidence::artifacts::Transcript;
use crate::evidence::summary::{RlsFile, RlsRecord, TapFailure};
use crate::prepare::tree::CONTRACT;
use crate::process::psql::{quote_arg, Unit};
use crate::process::Tee;
use crate::target::Target;
use crate::text::findings::Finding;
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
    let sets: String = target.conn().timeouts.set_statements(false).iter().map(|s| format!("{s};\n")).collect();
    // As a fresh session would be: pgTAP keeps its plan in temporary tables, so those go too.
    let reset = format!("rollback;\nreset session authorization;\nreset all;\ndiscard temp;\ndeallocate all;\ndiscard sequences;\n{sets}");
    for file in files {
        log.line(&format!("==> {file}"))?;
        let include = format!("\\i {}", quote_arg(std::path::Path::new(file)));
        let unit = if file == CONTRACT {
            // The runbook's own command, so the log reads as it always has.
            Unit { before: "\\set ON_ERROR_STOP off".into(), body: include, after: reset.clone() }
        } else {
            // pg_prove's flags: unaligned tuples, quiet, no pager, stop at the first error.
            Unit {
                before: "\\set ON_ERROR_STOP on\n\\set QUIET on\n\\pset format unaligned\n\\pset tuples_only on".into(),
                body: include,
                after: format!(
                    "\\set QUIET off\n\\pset format aligned\n\\pset tuples_only off\n\\set ON_ERROR_STOP off\n{reset}"
                ),
            }
        };
        let ran = target.run(&unit, Some(log as &mut dyn Tee))?;
        log.line("")?;
        let place = target.kind.place();
        result.files.push(FileResult { file: file.clone(), report: tap::read(&ran.text, Some(log.rel()), place) });
    }
    Ok(result)
}
