//! `summary.json` (SPEC §7), built from what the steps returned. Everything a person reads (the
//! screen, SUMMARY.md, the feedback hand-off) is rendered from this JSON by [`crate::report`],
//! so they cannot disagree. Paths are relative to the workdir.

use serde_json::{json, Value};

use crate::exit::Exit;
use crate::findings::Finding;
use crate::steps::apply::Applied;
use crate::steps::rls::RlsResult;
use crate::steps::rollback::RolledBack;
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

#[derive(Clone, Debug)]
pub struct MigrationRow {
    pub migration: Migration,
    pub molecule: Option<String>,
    pub apply: Option<Applied>,
    pub rollback: Option<RolledBack>,
    pub reapply: Option<Applied>,
}

impl MigrationRow {
    pub fn new(migration: &Migration, molecule: Option<String>) -> MigrationRow {
        MigrationRow { migration: migration.clone(), molecule, apply: None, rollback: None, reapply: None }
    }

    pub fn applied(&self) -> bool {
        self.apply.as_ref().is_some_and(|a| a.ok)
    }

    /// Whether this migration's part of the run went wrong.
    pub fn failed(&self) -> bool {
        self.apply.as_ref().is_some_and(|a| !a.ok)
            || matches!(self.rollback, Some(RolledBack::Failed(_)) | Some(RolledBack::Missing))
            || self.reapply.as_ref().is_some_and(|a| !a.ok)
    }
}

pub struct Summary {
    pub target: Target,
    pub started_at: String,
    pub finished_at: String,
    pub rehearsal_dir: String,
    pub migrations: Vec<MigrationRow>,
    pub schema_restored: Option<bool>,
    pub inventory: Option<Value>,
    pub rls: Option<RlsResult>,
    pub findings: Vec<Finding>,
    pub blockers: Vec<String>,
    pub next_actions: Vec<String>,
    pub warnings: Vec<String>,
    /// `(label, path)` of the key logs, for the hand-off.
    pub logs: Vec<(String, String)>,
    /// Set when the run stopped for escalation or an interrupt.
    pub halted: bool,
}

impl Summary {
    /// An empty summary of a run that started at `started_at` into `rehearsal_dir`.
    pub fn new(target: Target, started_at: String, rehearsal_dir: &str) -> Summary {
        Summary {
            target,
            started_at,
            finished_at: String::new(),
            rehearsal_dir: rehearsal_dir.to_string(),
            migrations: Vec::new(),
            schema_restored: None,
            inventory: None,
            rls: None,
            findings: Vec::new(),
            blockers: Vec::new(),
            next_actions: Vec::new(),
            warnings: Vec::new(),
            logs: Vec::new(),
            halted: false,
        }
    }

    pub fn outcome(&self) -> Outcome {
        if self.halted {
            return Outcome::Halted;
        }
        let failed = self.migrations.iter().any(MigrationRow::failed)
            || self.schema_restored == Some(false)
            || self.rls.as_ref().is_some_and(|r| !r.is_clean())
            || self.findings.iter().any(|f| f.severity == "error")
            || !self.blockers.is_empty();
        if failed {
            Outcome::Failed
        } else {
            Outcome::Passed
        }
    }

    pub fn to_json(&self) -> Value {
        let skipped = || json!({"status": "skipped", "error": null});
        let migrations: Vec<Value> = self
            .migrations
            .iter()
            .map(|row| {
                let m = &row.migration;
                json!({
                    "version": m.version, "name": m.name, "file": m.file, "molecule": row.molecule,
                    "apply": row.apply.as_ref().map_or_else(
                        || json!({"status": "skipped", "atomic": null, "duration_ms": null, "error": null}),
                        Applied::to_json),
                    "rollback": row.rollback.as_ref().map_or_else(
                        || json!({"status": "skipped", "file": m.rollback, "error": null}),
                        |r| r.to_json(m)),
                    "reapply": row.reapply.as_ref().map_or_else(skipped, Applied::to_json),
                })
            })
            .collect();
        let outcome = self.outcome();
        json!({
            "schema_version": 1,
            "outcome": outcome.as_str(),
            "exit_code": outcome.exit().code(),
            "target": {"kind": self.target.kind, "host": self.target.host, "database": self.target.database},
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "rehearsal_dir": self.rehearsal_dir,
            "migrations": migrations,
            "schema_restored": self.schema_restored,
            "inventory": self.inventory,
            "rls": self.rls.as_ref().map(RlsResult::to_json),
            "findings": self.findings.iter().map(Finding::to_json).collect::<Vec<_>>(),
            "blockers": self.blockers,
            "next_actions": self.next_actions,
            "warnings": self.warnings,
            "logs": self.logs.iter().map(|(label, path)| json!({"label": label, "path": path})).collect::<Vec<_>>(),
        })
    }
}
