//! `drift --write-migration NAME`: the two files, a migration that records what the target has
//! and its rollback ([`catch_up`]).

use anyhow::Result;
use serde::Serialize;

use crate::exit;
use crate::prepare::Prepared;
use crate::runbook::catch_up;
use crate::runbook::drift::Difference;

/// What `--write-migration` wrote (no files when it could write nothing).
#[derive(Serialize)]
pub(super) struct WrittenFiles {
    pub migration: Option<String>,
    pub rollback: Option<String>,
    #[serde(flatten)]
    pub written: catch_up::Written,
}

/// `--write-migration NAME`: the migration that records what the target has, and its rollback
/// ([`catch_up`]), under a version after every migration here; none when nothing can be written.
pub(super) fn write_files(
    p: &Prepared,
    name: &str,
    drift: &[Difference],
    target: &[String],
    history: &[String],
) -> Result<WrittenFiles> {
    let written = catch_up::write(drift, target, history);
    if written.objects.is_empty() {
        return Ok(WrittenFiles { migration: None, rollback: None, written });
    }
    let version = next_version(p);
    let migration = format!("supabase/migrations/{version}_{name}.sql");
    let rollback = format!("supabase/migrations.backup/{version}_{name}_rollback.sql");
    let kind = p.kind.as_str();
    let mut head = format!(
        "-- Written by `cargo xtask drift --write-migration {name}` on {} from the {kind} target: what it has\n\
         -- that its migration history did not make, from the server's own definitions, so the history\n\
         -- catches up with a hand fix. On that target it changes nothing that matters (each statement is\n\
         -- guarded, or replaces a definition with the same one): apply it there so its history lists it.\n\
         -- Its rollback ({rollback}) returns a database to what the history made.\n",
        p.started.format("%Y-%m-%d %H:%M UTC")
    );
    if !written.not_written.is_empty() {
        head.push_str("--\n-- Not written (write these by hand):\n");
        for n in &written.not_written {
            head.push_str(&format!(
                "--   {} {} ({}): {}\n",
                n.kind,
                crate::text::escape::one_line(&n.object),
                n.change,
                crate::text::escape::one_line(&n.why)
            ));
        }
    }
    let body = |statements: &[String]| statements.iter().map(|s| format!("{s}\n")).collect::<Vec<_>>().join("\n");
    let forward = format!("{head}\n{}", body(&written.forward));
    let back = format!(
        "-- Rollback of {migration}, written with it: returns a database to what its migration history\n\
         -- made before it.\n\n{}",
        body(&written.rollback)
    );
    for (rel, text) in [(&migration, &forward), (&rollback, &back)] {
        let path = p.workdir.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| exit::cannot_run(format!("creating {}: {e}", dir.display())))?;
        }
        std::fs::write(&path, text).map_err(|e| exit::cannot_run(format!("writing {rel}: {e}")))?;
    }
    Ok(WrittenFiles { migration: Some(migration), rollback: Some(rollback), written })
}

/// Now as a migration version (`YYYYMMDDHHMMSS`), or one after the latest here when that is later.
fn next_version(p: &Prepared) -> String {
    let now: u64 = p.started.format("%Y%m%d%H%M%S").to_string().parse().unwrap_or(0);
    let latest = p.tree.migrations.iter().filter_map(|m| m.version.parse::<u64>().ok()).max().unwrap_or(0);
    now.max(latest + 1).to_string()
}
