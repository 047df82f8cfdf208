//! Step 5, rollback: the paired script from `migrations.backup/`, appended to
//! `migration_rollback.log` (`==> rollback FILE`, psql's output, `!! rollback failure: FILE`),
//! removing the history row in the same transaction (one batch, as for apply). The caller decides
//! which migrations: only those this run applied, newest first.

use anyhow::Result;

use super::apply::{alone, e_string};
use super::batch;
use super::chain::{self, Ended, Link};
use crate::database::Target;
use crate::evidence::artifacts::Transcript;
use crate::evidence::summary::{RollbackResult, Status};
use crate::prepare::tree::Migration;
use crate::text::findings::{self, Finding};

pub fn rollback(target: &mut Target, m: &Migration, log: &mut Transcript) -> Result<(RollbackResult, Vec<Finding>)> {
    rollback_as(target, m, false, log)
}

/// [`rollback`]; `psql_split`: a transactional rollback runs statement by statement as psql -f
/// runs it (after the chain found its split and psql's differ), in one transaction with its row.
fn rollback_as(
    target: &mut Target,
    m: &Migration,
    psql_split: bool,
    log: &mut Transcript,
) -> Result<(RollbackResult, Vec<Finding>)> {
    let Some(file) = &m.rollback else {
        return Ok((
            RollbackResult { status: Status::Missing, file: None, error: None, impact: Vec::new() },
            Vec::new(),
        ));
    };
    log.line(&format!("==> rollback {}", file.rel))?;
    let (text, ok) = match file.script.first_non_transactional() {
        None => {
            let record =
                format!("delete from supabase_migrations.schema_migrations where version = {}", e_string(&m.version));
            alone(target, file, &record, psql_split, log)?
        }
        Some((why, _)) => {
            log.line(&format!(
                "-- not atomic: {why} cannot run inside a transaction block; running the file without one"
            ))?;
            let record = format!(
                "delete from supabase_migrations.schema_migrations where version = {};\n",
                e_string(&m.version)
            );
            batch::run_by_statement(target, file, &record, log)?
        }
    };
    if !ok {
        log.line(&format!("!! rollback failure: {}", file.rel))?;
    }
    log.line("")?;
    let found = findings::scan(&text, Some(log.rel()), target.kind.place());
    let result = RollbackResult {
        status: if ok { Status::RolledBack } else { Status::Failed },
        file: Some(file.rel.clone()),
        error: if ok { None } else { found.iter().find(|f| f.class.is_connection()).or(found.first()).cloned() },
        // Run statement by statement, outside the chain: not measured.
        impact: Vec::new(),
    };
    Ok((result, found))
}

/// What [`rollback_all`] reports for each migration as its rollback ends; it answers whether to go
/// on.
pub type RolledBack<'a> = dyn FnMut(&Migration, RollbackResult, Vec<Finding>) -> Result<bool> + 'a;

/// Roll back `migrations` in the order given, chains of transactional rollbacks in one round trip
/// each ([`chain`]), the others one by one ([`rollback`]); `done(m, result, findings)` gets each
/// result as it comes. A rollback that fails ends its chain; the next starts after it. On an
/// interrupt, `in_flight` names the migration whose rollback was running.
pub fn rollback_all(
    target: &mut Target,
    migrations: &[&Migration],
    log: &mut Transcript,
    in_flight: &mut Option<usize>,
    done: &mut RolledBack,
) -> Result<()> {
    let chains = target.chains();
    let chainable = |m: &Migration| m.rollback.as_ref().is_some_and(|f| chain::fits(chains, f));
    let mut at = 0;
    while at < migrations.len() {
        if !chainable(migrations[at]) {
            *in_flight = Some(at);
            let (result, found) = rollback(target, migrations[at], log)?;
            *in_flight = None;
            at += 1;
            if !done(migrations[at - 1], result, found)? {
                return Ok(());
            }
            continue;
        }
        let group: Vec<&Migration> =
            migrations[at..].iter().copied().take_while(|m| chainable(m)).take(chain::MAX_LINKS).collect();
        let mut end = group.len();
        loop {
            let links: Vec<Link> = group[..end]
                .iter()
                .map(|m| {
                    let file = m.rollback.as_ref().expect("chainable");
                    Link {
                        file,
                        header: Some(format!("==> rollback {}", file.rel)),
                        failure: Some(format!("!! rollback failure: {}", file.rel)),
                        record: Some(format!(
                            "delete from supabase_migrations.schema_migrations where version = {} returning 1",
                            e_string(&m.version)
                        )),
                        transaction: true,
                    }
                })
                .collect();
            let place = target.kind.place();
            let error_from = target.lock_risk_error_from();
            let rel = log.rel().to_string();
            let mut go_on = true;
            let mut on_done = |i: usize, outcome: chain::Outcome| -> Result<()> {
                let mut found = findings::scan(&outcome.text, Some(&rel), place);
                let ok = outcome.ok;
                if let (true, Some(file)) = (ok, group[i].rollback.as_ref()) {
                    found.extend(chain::impact::lock_risk(file, &outcome.impact, place, error_from));
                }
                let result = RollbackResult {
                    status: if ok { Status::RolledBack } else { Status::Failed },
                    file: Some(links_file(group[i])),
                    error: if ok {
                        None
                    } else {
                        found.iter().find(|f| f.class.is_connection()).or(found.first()).cloned()
                    },
                    impact: outcome.impact,
                };
                go_on = done(group[i], result, found)?;
                Ok(())
            };
            match chain::run_files(target, &links, log, (at, None), in_flight, &mut on_done)? {
                Ended::Rejected(j) => end = j.max(1),
                Ended::Ran(ran) => {
                    at += ran.max(1);
                    if !go_on {
                        return Ok(());
                    }
                    break;
                }
                Ended::Alone(j) => {
                    if !go_on {
                        return Ok(());
                    }
                    *in_flight = Some(at + j);
                    let (result, found) = rollback_as(target, group[j], true, log)?;
                    *in_flight = None;
                    at += j + 1;
                    if !done(group[j], result, found)? {
                        return Ok(());
                    }
                    break;
                }
            }
        }
    }
    Ok(())
}

fn links_file(m: &Migration) -> String {
    m.rollback.as_ref().map(|f| f.rel.clone()).unwrap_or_default()
}
