//! Step 6, the RLS contract (SPEC §5): `psql "$DATABASE_URL" -f supabase/rls_tests.sql` tee'd to
//! `rls_contract.log`, then each file of the Supabase test layout in its own session, as
//! `supabase test db` (pg_prove) runs them. The exit code is not trusted: each file's TAP is read.

use std::io::Write;

use anyhow::Result;
use serde_json::{json, Value};

use super::Db;
use crate::findings::Finding;
use crate::process::Cmd;
use crate::tap::{self, TapReport};
use crate::tree::CONTRACT;

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
    pub fn planned(&self) -> u32 {
        self.files.iter().map(|f| f.report.planned.unwrap_or(0)).sum()
    }
    pub fn ran(&self) -> u32 {
        self.files.iter().map(|f| f.report.ran).sum()
    }
    pub fn passed(&self) -> u32 {
        self.files.iter().map(|f| f.report.passed).sum()
    }
    pub fn failed(&self) -> u32 {
        self.files.iter().map(|f| f.report.failed).sum()
    }
    pub fn errors(&self) -> Vec<&Finding> {
        self.files.iter().flat_map(|f| &f.report.errors).collect()
    }
    pub fn is_clean(&self) -> bool {
        !self.files.is_empty() && self.files.iter().all(|f| f.report.is_clean())
    }

    pub fn to_json(&self) -> Value {
        let failures: Vec<Value> = self
            .files
            .iter()
            .flat_map(|f| {
                f.report.failures.iter().map(move |(n, d)| json!({"file": f.file, "number": n, "description": d}))
            })
            .collect();
        let files: Vec<Value> = self
            .files
            .iter()
            .map(|f| {
                json!({
                    "path": f.file, "planned": f.report.planned, "ran": f.report.ran, "passed": f.report.passed,
                    "failed": f.report.failed, "errors": f.report.errors.len(), "ran_short": f.report.ran_short(), "ran_over": f.report.ran_over(),
                })
            })
            .collect();
        json!({
            "planned": self.planned(), "ran": self.ran(), "passed": self.passed(), "failed": self.failed(),
            "errors": self.errors().len(), "failures": failures, "files": files,
        })
    }
}

/// Run each contract file, appending its transcript to `log` under a `==> FILE` line.
pub fn run(db: &Db, files: &[String], log: &mut dyn Write, log_name: &str) -> Result<RlsResult> {
    let mut result = RlsResult::default();
    for file in files {
        writeln!(log, "==> {file}")?;
        let cmd = Cmd::new(&db.psql).arg(&db.dsn).arg("-X").current_dir(&db.workdir);
        let cmd = if file == CONTRACT {
            // The runbook's own command, so the log reads as it always has.
            cmd.args(["-f", file])
        } else {
            // pg_prove's flags: unaligned tuples, no pager, stop at the first error.
            cmd.args(["--no-align", "--tuples-only", "--quiet", "-P", "pager=off", "-v", "ON_ERROR_STOP=1", "-f", file])
        };
        let out = cmd.run(&db.redactor, Some(log))?;
        writeln!(log)?;
        log.flush()?;
        result.files.push(FileResult { file: file.clone(), report: tap::read(&out.text, Some(log_name)) });
    }
    Ok(result)
}
