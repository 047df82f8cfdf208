//! Step 5, rollback: the paired script from `migrations.backup/`, appended to
//! `migration_rollback.log` (`==> rollback FILE`, psql's output, `!! rollback failure: FILE`),
//! removing the history row in the same transaction (one batch, as for apply). The caller decides
//! which migrations: only those this run applied, newest first.

use anyhow::Result;

use super::apply::{e_string, run_batch, run_by_statement};
use crate::evidence::artifacts::Transcript;
use crate::evidence::summary::{RollbackResult, Status};
use crate::prepare::tree::Migration;
use crate::target::Target;
use crate::text::findings::{self, Finding};

pub fn rollback(target: &mut Target, m: &Migration, log: &mut Transcript) -> Result<(RollbackResult, Vec<Finding>)> {
    let Some(file) = &m.rollback else {
        return Ok((RollbackResult { status: Status::Missing, file: None, error: None }, Vec::new()));
    };
    log.line(&format!("==> rollback {}", file.rel))?;
    let (text, ok) = match file.script.first_non_transactional() {
        None => {
            let record = format!(
                "with d as (delete from supabase_migrations.schema_migrations where version = {} returning 1) \
                 select count(*) as rehearsal_forgotten from d",
                e_string(&m.version)
            );
            run_batch(target, file, &record, log)?
        }
        Some((why, _)) => {
            log.line(&format!(
                "-- not atomic: {why} cannot run inside a transaction block; running the file without one"
            ))?;
            let record = format!(
                "delete from supabase_migrations.schema_migrations where version = {};\n",
                e_string(&m.version)
            );
            run_by_statement(target, file, &record, log)?
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
    };
    Ok((result, found))
}
