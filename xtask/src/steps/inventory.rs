//! Step 3, inventory: `supabase migration list` against the DSN (`--db-url` on CLI 2.x,
//! `--remote=<url>` on 3.x), tee'd to `migration_status_*.txt`. Without the CLI, the same table
//! from `supabase_migrations.schema_migrations`, with a warning. The result: what is pending, what
//! is applied, and what was applied remotely but is missing locally.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};

use super::Db;
use crate::findings::{self, Finding};
use crate::process::Cmd;
use crate::supabase_cli::SupabaseCli;
use crate::tree::Tree;

#[derive(Debug, Default)]
pub struct Inventory {
    /// `supabase CLI 2.122.1` or `SQL (supabase_migrations.schema_migrations)`.
    pub source: String,
    pub remote: BTreeSet<String>,
    pub pending: Vec<String>,
    pub applied: Vec<String>,
    pub remote_only: Vec<String>,
    pub warnings: Vec<String>,
    pub findings: Vec<Finding>,
    /// False when neither the CLI nor SQL could read the history.
    pub ok: bool,
}

impl Inventory {
    pub fn to_json(&self) -> Value {
        json!({
            "source": self.source, "pending": self.pending, "applied": self.applied,
            "remote_only": self.remote_only,
        })
    }
}

/// Read the remote history and compare it with the tree.
pub fn run(db: &Db, tree: &Tree, cli: Option<&SupabaseCli>, log: &Path, log_name: &str) -> Result<Inventory> {
    let mut file = std::fs::File::create(log)?;
    let mut inventory = Inventory::default();
    let mut remote = None;
    if let Some(cli) = cli {
        // The CLI unpacks a native module into TMPDIR; give it a dir of its own and remove it after.
        let scratch = crate::local::scratch_dir("rehearsal-cli-")?;
        let out = Cmd::new(&cli.path)
            .args(["migration", "list"])
            .args(cli.dsn_args(&db.dsn))
            .arg("--workdir")
            .arg(&db.workdir)
            .current_dir(&db.workdir)
            .env("TMPDIR", scratch.path())
            .run(&db.redactor, Some(&mut file));
        drop(scratch);
        let out = out?;
        if out.success() {
            inventory.source = format!("supabase CLI {}", cli.version_string());
            remote = Some(parse_cli_table(&out.text));
        } else {
            let first = out.text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().trim().to_string();
            inventory
                .warnings
                .push(format!("`supabase migration list` failed ({first}); read the history with SQL instead"));
            inventory.findings.extend(findings::scan(&out.text, Some(log_name)));
        }
    } else {
        inventory.warnings.push(
            "the Supabase CLI is not installed (`npm install --no-save` installs the pinned version); the inventory comes from \
             supabase_migrations.schema_migrations instead"
                .into(),
        );
    }
    if remote.is_none() {
        let out = Cmd::new(&db.psql)
            .arg(&db.dsn)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"])
            .stdin(HISTORY_SQL)
            .run(&db.redactor, None)?;
        if out.success() {
            inventory.source = "SQL (supabase_migrations.schema_migrations)".into();
            let versions: BTreeSet<String> =
                out.text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
            file.write_all(render_table(tree, &versions).as_bytes())?;
            remote = Some(versions);
        } else {
            file.write_all(out.text.as_bytes())?;
            inventory.findings.extend(findings::scan(&out.text, Some(log_name)));
        }
    }
    let Some(remote) = remote else { return Ok(inventory) };
    let local: BTreeSet<&str> = tree.migrations.iter().map(|m| m.version.as_str()).collect();
    inventory.pending =
        tree.migrations.iter().filter(|m| !remote.contains(&m.version)).map(|m| m.version.clone()).collect();
    inventory.applied =
        tree.migrations.iter().filter(|m| remote.contains(&m.version)).map(|m| m.version.clone()).collect();
    inventory.remote_only = remote.iter().filter(|v| !local.contains(v.as_str())).cloned().collect();
    inventory.remote = remote;
    inventory.ok = true;
    Ok(inventory)
}

const HISTORY_SQL: &str =
    "select to_regclass('supabase_migrations.schema_migrations') is not null as has_history \\gset\n\
    \\if :has_history\nselect version from supabase_migrations.schema_migrations order by version;\n\\endif\n";

/// The remote versions in the CLI's table (`Local | Remote | Time`), with or without backticks.
pub fn parse_cli_table(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(|c| c.trim().trim_matches('`').trim()).collect();
            (cells.len() == 3).then(|| cells[1].to_string())
        })
        .filter(|remote| !remote.is_empty() && remote.chars().all(|c| c.is_ascii_digit()))
        .collect()
}

/// The CLI's table, drawn from the tree and the history read by SQL.
fn render_table(tree: &Tree, remote: &BTreeSet<String>) -> String {
    let mut versions: BTreeSet<&str> = tree.migrations.iter().map(|m| m.version.as_str()).collect();
    versions.extend(remote.iter().map(String::as_str));
    let local: BTreeSet<&str> = tree.migrations.iter().map(|m| m.version.as_str()).collect();
    let mut out = String::from("   Local          | Remote         \n  ----------------|----------------\n");
    for v in versions {
        let l = if local.contains(v) { v } else { "" };
        let r = if remote.contains(v) { v } else { "" };
        out.push_str(&format!("   {l:<14} | {r:<14} \n"));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cli_table_as_printed_to_a_pipe() {
        let text = "\n  \n   Local            | Remote           | Time (UTC)            \n  ------------------|------------------|-----------------------\n   `20251011090000` | `20251011090000` | `2025-10-11 09:00:00` \n   `20251011093000` | ` `              | `2025-10-11 09:30:00` \n   ` `              | `20990101000000` | `2099-01-01 00:00:00` \n";
        let remote = super::parse_cli_table(text);
        assert_eq!(remote.into_iter().collect::<Vec<_>>(), vec!["20251011090000", "20990101000000"]);
    }
}
