//! The hand-off (SPEC §7): `summary.json` and the one-screen human summary, both built from what
//! the steps returned. Paths are relative to the workdir.

use serde_json::{json, Value};

use crate::exit::Exit;
use crate::findings::Finding;
use crate::steps::apply::Applied;
use crate::steps::rls::RlsResult;
use crate::tree::Migration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    Halted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Halted => "halted",
        }
    }

    pub fn exit(self) -> Exit {
        match self {
            Outcome::Passed => Exit::Passed,
            Outcome::Failed => Exit::Failed,
            Outcome::Halted => Exit::Halted,
        }
    }
}

/// Where the rehearsal ran: `kind` is `local`, `staging` or `url`; never a password.
#[derive(Clone, Debug)]
pub struct Target {
    pub kind: &'static str,
    pub host: String,
    pub database: String,
}

pub struct MigrationRow {
    pub migration: Migration,
    pub apply: Option<Applied>,
}

pub struct Summary {
    pub target: Target,
    pub started_at: String,
    pub finished_at: String,
    pub rehearsal_dir: String,
    pub migrations: Vec<MigrationRow>,
    pub rls: Option<RlsResult>,
    pub findings: Vec<Finding>,
    pub blockers: Vec<String>,
    pub next_actions: Vec<String>,
    pub warnings: Vec<String>,
    pub logs: Vec<String>,
}

impl Summary {
    pub fn outcome(&self) -> Outcome {
        let apply_failed = self.migrations.iter().any(|m| m.apply.as_ref().is_some_and(|a| !a.ok));
        let rls_failed = self.rls.as_ref().is_some_and(|r| !r.is_clean());
        if apply_failed || rls_failed || !self.findings.is_empty() {
            Outcome::Failed
        } else {
            Outcome::Passed
        }
    }

    pub fn to_json(&self) -> Value {
        let migrations: Vec<Value> = self
            .migrations
            .iter()
            .map(|row| {
                let m = &row.migration;
                json!({
                    "version": m.version, "name": m.name, "file": m.file, "molecule": null,
                    "apply": row.apply.as_ref().map_or_else(
                        || json!({"status": "skipped", "atomic": null, "duration_ms": null, "error": null}),
                        Applied::to_json),
                })
            })
            .collect();
        json!({
            "schema_version": 1,
            "outcome": self.outcome().as_str(),
            "target": {"kind": self.target.kind, "host": self.target.host, "database": self.target.database},
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "rehearsal_dir": self.rehearsal_dir,
            "migrations": migrations,
            "rls": self.rls.as_ref().map(RlsResult::to_json),
            "findings": self.findings.iter().map(Finding::to_json).collect::<Vec<_>>(),
            "blockers": self.blockers,
            "next_actions": self.next_actions,
            "warnings": self.warnings,
        })
    }

    /// The one screen: outcome, RLS counts per file, each failure with where and what to do.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let applied = self.migrations.iter().filter(|m| m.apply.as_ref().is_some_and(|a| a.ok)).count();
        let failed: Vec<&MigrationRow> =
            self.migrations.iter().filter(|m| m.apply.as_ref().is_some_and(|a| !a.ok)).collect();
        let skipped = self.migrations.len() - applied - failed.len();
        out.push_str(&format!(
            "migrations: {applied} applied, {} failed{}\n",
            failed.len(),
            if skipped > 0 { format!(", {skipped} skipped") } else { String::new() }
        ));
        for row in &failed {
            let apply = row.apply.as_ref().expect("failed rows have an apply result");
            out.push_str(&format!("  FAILED {}\n", row.migration.file));
            if let Some(e) = &apply.error {
                out.push_str(&format!(
                    "    {} {}{}: {}\n    what to do: {}\n",
                    e.class,
                    e.sqlstate.as_deref().map(|s| format!("{s} ")).unwrap_or_default(),
                    e.location().unwrap_or_default(),
                    e.message,
                    e.hint
                ));
            }
        }
        if let Some(rls) = &self.rls {
            out.push_str(&format!(
                "rls: {} planned, {} ran, {} passed, {} failed, {} errors\n",
                rls.planned(),
                rls.ran(),
                rls.passed(),
                rls.failed(),
                rls.errors().len()
            ));
            for f in &rls.files {
                let r = &f.report;
                let verdict = if r.is_clean() {
                    "ok".to_string()
                } else if r.ran_short() && r.failed == 0 && r.errors.is_empty() {
                    format!("ran short: {} of {} planned", r.ran, r.planned.unwrap_or(0))
                } else if r.ran_over() && r.failed == 0 && r.errors.is_empty() {
                    format!("ran {} tests but planned {}: update the plan", r.ran, r.planned.unwrap_or(0))
                } else {
                    format!("FAILED {}/{}", r.failed, r.ran)
                };
                out.push_str(&format!("  {} .. {verdict}\n", f.file));
                for (n, d) in &r.failures {
                    out.push_str(&format!("    not ok {n} - {d}\n"));
                }
                if r.ran_short() && (r.failed > 0 || !r.errors.is_empty()) {
                    out.push_str(&format!("    ran short: {} of {} planned tests ran\n", r.ran, r.planned.unwrap_or(0)));
                }
                for e in &r.errors {
                    out.push_str(&format!(
                        "    error {}: {}\n    what to do: {}\n",
                        e.location().unwrap_or_else(|| f.file.clone()),
                        e.message,
                        e.hint
                    ));
                }
            }
        }
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        for b in &self.blockers {
            out.push_str(&format!("blocker: {b}\n"));
        }
        for a in &self.next_actions {
            out.push_str(&format!("next: {a}\n"));
        }
        if !self.logs.is_empty() {
            out.push_str(&format!("logs: {}\n", self.logs.join("  ")));
        }
        let outcome = self.outcome();
        out.push_str(&format!("outcome: {} (exit {})\n", outcome.as_str(), outcome.exit().code()));
        out
    }
}
