//! The verdict: what a run amounts to, in one sentence, the same on the screen, SUMMARY.md, the
//! page and the hand-off.

use super::summary::{Outcome, Summary};
use crate::database::Kind;
use crate::exit::Exit;
use crate::text::findings::Severity;

impl Summary {
    /// The run in one sentence, for every place a person reads it first (the screen, SUMMARY.md,
    /// the page, the hand-off, the CI step summary). Only a passed rehearsal on staging or a DSN
    /// is called ready for sign-off.
    pub fn verdict(&self) -> String {
        let verdict = self.verdict_alone();
        match (self.target.postgres_major, self.target.project_major) {
            (Some(have), Some(want)) if have != want => format!(
                "{verdict} Rehearsed on PostgreSQL {have}; the project runs PostgreSQL {want} (supabase/config.toml)."
            ),
            _ => verdict,
        }
    }

    fn verdict_alone(&self) -> String {
        let on = format!("{}/{}", self.target.host, self.target.database);
        match self.outcome {
            Outcome::Passed if self.nothing_rehearsed() => format!(
                "Nothing was rehearsed: no migration was pending on {} ({on}), so nothing applied or rolled back; \
                 nothing to sign off.",
                self.target.kind.as_str()
            ),
            Outcome::Passed if self.ready_for_signoff() => format!(
                "Ready for the manager's sign-off: the rehearsal passed on {} ({on}).",
                self.target.kind.as_str()
            ),
            Outcome::Passed if self.target.kind == Kind::Local => format!(
                "A local check passed (`{}` on a throwaway cluster): not a staging rehearsal, nothing to sign off; \
                 rehearse on staging next.",
                self.command
            ),
            Outcome::Passed => format!(
                "`{}` passed on {} ({on}); only a full rehearsal (`stage-rehearse`) is signed off.",
                self.command,
                self.target.kind.as_str()
            ),
            Outcome::Failed => format!(
                "Not ready for sign-off: the run found failures ({}); see the findings, what blocks it and the next actions.",
                self.failure_counts()
            ),
            Outcome::Halted if self.exit_code == Exit::Interrupted.code() => {
                "Not ready for sign-off: the run was interrupted part way; the target may hold a partial rehearsal."
                    .to_string()
            }
            Outcome::Halted => "Not ready for sign-off: the run halted for escalation to the manager.".to_string(),
            Outcome::Error => "Not ready for sign-off: the run could not finish; see what blocks it.".to_string(),
        }
    }

    /// `2 migration steps failed, 1 finding, RLS 3 failed` and the like.
    fn failure_counts(&self) -> String {
        let mut parts = Vec::new();
        let failed = self.migrations.iter().filter(|r| r.failed()).count();
        if failed > 0 {
            parts.push(format!("{failed} migration(s) failed a step"));
        }
        if self.schema_restored == Some(false) {
            parts.push("the rollback did not restore the schema".into());
        }
        if let Some(rls) = self.rls.as_ref().filter(|r| !r.clean()) {
            let unrun = rls.planned.saturating_sub(rls.ran);
            let unrun = if unrun > 0 { format!(", {unrun} of {} planned not run", rls.planned) } else { String::new() };
            parts.push(format!("RLS contract: {} failed, {} errors{unrun}", rls.failed, rls.errors));
        }
        let errors = self.findings.iter().filter(|f| f.severity == Severity::Error).count();
        if errors > 0 {
            parts.push(format!("{errors} error finding(s)"));
        }
        if !self.blockers.is_empty() {
            parts.push(format!("{} blocker(s)", self.blockers.len()));
        }
        if parts.is_empty() {
            "see the findings".into()
        } else {
            parts.join(", ")
        }
    }
}
