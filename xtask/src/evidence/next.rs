//! The next actions of a run: what to fix first and how to replay, from what went wrong, or the
//! way on when nothing did (staging after local; the manager's sign-off after staging).

use super::summary::{Outcome, Status, Summary};
use crate::database::Kind;
use crate::exit::Exit;
use crate::text::findings::Class;

/// What to do next, from what went wrong (or the sign-off when nothing did).
pub fn next_actions(s: &Summary, command: &str) -> Vec<String> {
    let mut next = Vec::new();
    if s.exit_code == Exit::Interrupted.code() {
        next.push(format!(
            "read the logs of the interrupted run and check the target's state (`cargo xtask inventory`) before \
             re-running `cargo xtask {command}`"
        ));
    }
    let gone = s.findings.iter().any(|f| f.class.is_connection());
    if gone {
        next.push(
            "the database went away: check it is reachable (`cargo xtask connectivity`) and what it now records \
             (`cargo xtask inventory`) before anything else"
                .into(),
        );
    }
    let first_failed = failed_applies(s, command, &mut next);
    if s.migrations.iter().any(|r| {
        r.rollback.status == Status::Failed && !r.rollback.error.as_ref().is_some_and(|e| e.class.is_connection())
    }) {
        next.push("fix the failing rollback script(s) named above; a rollback must drop dependents before what they depend on".into());
    }
    if s.schema_restored == Some(false) {
        let incomplete: Vec<&str> = s
            .migrations
            .iter()
            .filter(|r| r.rollback.status == Status::Incomplete)
            .filter_map(|r| r.rollback.file.as_deref())
            .collect();
        next.push(if incomplete.is_empty() {
            "make the rollback scripts restore the schema exactly: read schema_rollback.diff".into()
        } else {
            format!(
                "make {} undo all that their migrations do: schema_rollback.diff shows what they leave",
                incomplete.join(", ")
            )
        });
    }
    if s.rls.as_ref().is_some_and(|x| !x.clean()) {
        next.push(match first_failed {
            Some(first) => format!(
                "the RLS contract ran on a partly applied schema: fix {first} first, then read the contract's result \
                 again ({}/rls_contract.log)",
                s.rehearsal_dir
            ),
            None => format!(
                "fix the policies behind the failing RLS tests ({}/rls_contract.log), then re-run `cargo xtask {command}`",
                s.rehearsal_dir
            ),
        });
    }
    if s.findings.iter().any(|f| f.class == Class::PsqlMetaCommand) {
        next.push("remove the psql meta-commands from the migrations named above".into());
    }
    if next.is_empty() && matches!(s.outcome, Outcome::Halted | Outcome::Error | Outcome::Failed) {
        next.push(if s.outcome == Outcome::Halted {
            "escalate to the manager with the blocker(s) above; re-run once they are resolved".to_string()
        } else {
            format!("resolve the blocker(s) above, then re-run `cargo xtask {command}`")
        });
    }
    if next.is_empty()
        && s.blockers.is_empty()
        && s.outcome == Outcome::Passed
        && s.findings.iter().all(|f| f.severity != crate::text::findings::Severity::Error)
    {
        next.push(if s.target.kind == Kind::Local {
            "passed on a throwaway local cluster: rehearse on staging next, with the staging vault files in place \
             (vault/occ/supabase/database_url_staging.env, service_key_staging.env): `cargo xtask stage-rehearse --target staging`"
                .into()
        } else if command == "stage-rehearse" {
            "ready for the manager's sign-off; coordinate the production window with DevOps (docs/directions/data.md)".into()
        } else {
            "passed; the full rehearsal (`cargo xtask stage-rehearse`) is what the manager signs off".into()
        });
    }
    next
}

/// What to do about each failed apply: amend the first and replay; the later ones may only follow
/// from it. The first failed file, if any.
fn failed_applies<'a>(s: &'a Summary, command: &str, next: &mut Vec<String>) -> Option<&'a str> {
    let mut first_failed: Option<&str> = None;
    for row in s.migrations.iter().filter(|r| r.apply.status == Status::Failed) {
        let Some(error) = &row.apply.error else { continue };
        if error.class.is_connection() {
            continue;
        }
        if let Some(first) = first_failed {
            next.push(format!(
                "then replay: {} failed too ({} at {}), perhaps only because {first} did",
                row.file,
                error.class.as_str(),
                error.location().unwrap_or_default()
            ));
            continue;
        }
        first_failed = Some(&row.file);
        let why = format!(" ({} at {})", error.class.as_str(), error.location().unwrap_or_default());
        let replay = row
            .molecule
            .as_ref()
            .map_or(format!("`cargo xtask {command}`"), |m| format!("`cargo xtask apply --molecule {m}`"));
        next.push(format!("amend {}{why}, then replay with {replay}", row.file));
    }
    first_failed
}
