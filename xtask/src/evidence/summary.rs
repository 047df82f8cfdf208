//! `summary.json`, one typed schema: the record of a run that everything a person reads (the
//! screen, SUMMARY.md, the feedback hand-off) is rendered from, and that `rollback` reads back to
//! know what an earlier run applied and where. Paths are relative to the workdir; times are UTC.

use serde::{Deserialize, Serialize};

pub use super::impact::Impact;
use crate::database::identity::Identity;
use crate::database::Kind;
use crate::exit::Exit;
use crate::text::findings::{Finding, Severity};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed,
    /// Stopped part way: for escalation (exit 3) or by Ctrl-C/SIGTERM (exit 130).
    Halted,
    /// The tool could not do its job (exit 2): an artifact could not be written, say.
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Halted => "halted",
            Outcome::Error => "error",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub schema_version: u32,
    /// The command that ran: `stage-rehearse`, `rls`, `apply`, `rollback`.
    #[serde(default)]
    pub command: String,
    pub outcome: Outcome,
    /// The process's own exit code (130 after Ctrl-C).
    pub exit_code: u8,
    pub target: TargetRecord,
    /// The database proven by the server itself (staging and url), for a later `rollback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    pub started_at: String,
    pub finished_at: String,
    pub rehearsal_dir: String,
    pub migrations: Vec<MigrationRow>,
    pub schema_restored: Option<bool>,
    pub inventory: Option<Inventories>,
    pub rls: Option<RlsRecord>,
    pub findings: Vec<Finding>,
    pub blockers: Vec<String>,
    pub next_actions: Vec<String>,
    pub warnings: Vec<String>,
    pub logs: Vec<LogRef>,
    pub provenance: Provenance,
    pub steps: Vec<StepTiming>,
}

/// Where the run went: never a password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRecord {
    pub kind: Kind,
    pub host: String,
    pub database: String,
    /// Why this target: the flag, or what the tool found (the staging vault files, or none).
    #[serde(default)]
    pub why: String,
    /// The local target's PostgreSQL major (what it rehearsed on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_major: Option<u32>,
    /// The major `supabase/config.toml` says the project runs (`[db] major_version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_major: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Applied,
    RolledBack,
    Failed,
    Missing,
    Skipped,
    /// Ctrl-C or SIGTERM arrived while this file ran; its transaction was rolled back.
    Interrupted,
    /// The rollback ran, but the schema after the rollbacks still holds (or lacks) what its
    /// migration changed.
    Incomplete,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub status: Status,
    /// Whether the file ran in one transaction with its history row.
    pub atomic: Option<bool>,
    pub duration_ms: Option<u64>,
    pub error: Option<Finding>,
    /// What the file did to the relations that existed before it (locks, rewrites, scans).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub impact: Vec<Impact>,
}

impl StepResult {
    pub fn skipped() -> StepResult {
        StepResult { status: Status::Skipped, atomic: None, duration_ms: None, error: None, impact: Vec::new() }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollbackResult {
    pub status: Status,
    /// The rollback script, from `supabase/migrations.backup/`.
    pub file: Option<String>,
    pub error: Option<Finding>,
    /// What the rollback did to the relations that existed before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub impact: Vec<Impact>,
}

/// The history row a run wrote for a migration, to prove later it is still the same row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// sha256 of the recorded statements joined by U+001F.
    pub statements_sha256: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MigrationRow {
    pub version: String,
    pub name: String,
    pub file: String,
    pub molecule: Option<String>,
    pub apply: StepResult,
    pub rollback: RollbackResult,
    pub reapply: StepResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryRecord>,
}

impl MigrationRow {
    pub fn applied(&self) -> bool {
        self.apply.status == Status::Applied
    }

    /// Whether its history row is on the target after the run (applied, or re-applied).
    pub fn left_applied(&self) -> bool {
        match self.reapply.status {
            Status::Applied => true,
            Status::Skipped => self.applied() && self.rollback.status != Status::RolledBack,
            _ => false,
        }
    }

    /// Whether this migration's part of the run went wrong.
    pub fn failed(&self) -> bool {
        matches!(self.apply.status, Status::Failed | Status::Interrupted)
            || matches!(
                self.rollback.status,
                Status::Failed | Status::Missing | Status::Interrupted | Status::Incomplete
            )
            || matches!(self.reapply.status, Status::Failed | Status::Interrupted)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Inventories {
    pub pre: Option<InventoryRecord>,
    pub post: Option<InventoryRecord>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryRecord {
    pub source: String,
    pub pending: Vec<String>,
    pub applied: Vec<String>,
    pub remote_only: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RlsRecord {
    pub planned: u32,
    pub ran: u32,
    pub passed: u32,
    pub failed: u32,
    pub errors: u32,
    pub failures: Vec<TapFailure>,
    pub files: Vec<RlsFile>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TapFailure {
    pub file: String,
    pub number: u32,
    pub description: String,
    /// pgTAP's diagnostics under the failure (`# have: ...`, `# want: ...`).
    #[serde(default)]
    pub diagnostics: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RlsFile {
    pub path: String,
    pub planned: Option<u32>,
    pub ran: u32,
    pub passed: u32,
    pub failed: u32,
    pub errors: u32,
    pub ran_short: bool,
    pub ran_over: bool,
    /// Each test that ran, in order (for JUnit and the sign-off page).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TapTest>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TapTest {
    pub number: u32,
    pub description: String,
    pub ok: bool,
}

impl RlsFile {
    pub fn clean(&self) -> bool {
        self.failed == 0 && self.errors == 0 && !self.ran_short && !self.ran_over
    }
}

impl RlsRecord {
    pub fn clean(&self) -> bool {
        !self.files.is_empty() && self.files.iter().all(RlsFile::clean)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogRef {
    pub label: String,
    pub path: String,
}

/// Who ran what, where, with which tools.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Provenance {
    pub git_commit: Option<String>,
    pub git_dirty: Option<bool>,
    pub tool_version: String,
    pub psql: Option<String>,
    pub server: Option<String>,
    pub supabase_cli: Option<String>,
    pub user: String,
    pub host: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepTiming {
    pub step: u8,
    pub name: String,
    pub started_at: String,
    pub duration_ms: u64,
}

impl Summary {
    /// Each relation a migration's apply or rollback locked against others, as measured: the
    /// rows of the "What it locks" tables of SUMMARY.md and the sign-off page.
    pub fn locked(&self) -> Vec<(&MigrationRow, &'static str, &Impact)> {
        self.migrations
            .iter()
            .flat_map(|r| {
                let apply = r.apply.impact.iter().map(move |i| (r, "apply", i));
                apply.chain(r.rollback.impact.iter().map(move |i| (r, "rollback", i)))
            })
            .filter(|(_, _, i)| i.blocks != "nothing")
            .collect()
    }

    /// Whether this is what a manager signs off: a rehearsal (`stage-rehearse`) that passed on a
    /// shared database (staging or a DSN), not a local check and not a single step.
    pub fn ready_for_signoff(&self) -> bool {
        self.outcome == Outcome::Passed
            && self.command == "stage-rehearse"
            && self.target.kind != Kind::Local
            && !self.nothing_rehearsed()
    }

    /// No migration was pending: the run applied and rolled back nothing, so it proves nothing
    /// about a change.
    pub fn nothing_rehearsed(&self) -> bool {
        self.command == "stage-rehearse" && !self.migrations.iter().any(MigrationRow::applied)
    }

    /// What the run amounts to, before any stop: failures found or not.
    pub fn judged(&self) -> Outcome {
        let failed = self.migrations.iter().any(MigrationRow::failed)
            || self.schema_restored == Some(false)
            || self.rls.as_ref().is_some_and(|r| !r.clean())
            || self.findings.iter().any(|f| f.severity == Severity::Error)
            || !self.blockers.is_empty();
        if failed {
            Outcome::Failed
        } else {
            Outcome::Passed
        }
    }

    /// Settle the outcome and exit code: `stop` is how the run ended early, if it did.
    pub fn settle(&mut self, stop: Option<Exit>) {
        let (outcome, exit) = match stop {
            Some(Exit::Interrupted) => (Outcome::Halted, Exit::Interrupted),
            Some(Exit::Halted) => (Outcome::Halted, Exit::Halted),
            Some(Exit::CannotRun) => (Outcome::Error, Exit::CannotRun),
            _ => match self.judged() {
                Outcome::Passed => (Outcome::Passed, Exit::Passed),
                _ => (Outcome::Failed, Exit::Failed),
            },
        };
        self.outcome = outcome;
        self.exit_code = exit.code();
    }

    pub fn exit(&self) -> Exit {
        match self.exit_code {
            0 => Exit::Passed,
            1 => Exit::Failed,
            3 => Exit::Halted,
            130 => Exit::Interrupted,
            _ => Exit::CannotRun,
        }
    }
}
