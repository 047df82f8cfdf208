//! Security advisors after the forward apply: SQL of our own against the catalog. Each finding
//! names the migration and line that created the object when the tree says so.

use anyhow::Result;

use super::Db;
use crate::findings::Finding;
use crate::tree::Migration;

/// Tables in `public` (the schema the API exposes) with row level security off.
const RLS_DISABLED: &str = "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace \
    where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity order by 1;";

pub fn run(db: &Db, migrations: &[Migration]) -> Result<Vec<Finding>> {
    let out = db.psql().args(["-q", "-A", "-t", "-c", RLS_DISABLED]).run(&db.redactor, None)?;
    if !out.success() {
        return Ok(Vec::new());
    }
    let mut findings = Vec::new();
    for table in out.text.lines().map(str::trim).filter(|t| !t.is_empty()) {
        let (file, line) = created_in(db, migrations, table).map_or((None, None), |(f, l)| (Some(f), Some(l)));
        findings.push(Finding {
            class: "rls_disabled",
            severity: "error",
            sqlstate: None,
            hint: format!(
                "add `alter table public.{table} enable row level security;` and its policies to {}",
                file.as_deref().unwrap_or("the migration that creates it")
            ),
            file,
            line,
            message: format!("table public.{table} is exposed to the API with row level security off"),
            // Read from the catalog, not from a log.
            log: None,
        });
    }
    Ok(findings)
}

/// The migration and line whose CREATE TABLE made `table`.
fn created_in(db: &Db, migrations: &[Migration], table: &str) -> Option<(String, u32)> {
    for m in migrations {
        let text = std::fs::read_to_string(db.workdir.join(&m.file)).ok()?;
        for (n, line) in text.lines().enumerate() {
            let l = line.to_ascii_lowercase();
            let named = l.contains(&format!("public.{table} ")) || l.contains(&format!("public.{table}(")) || l.contains(&format!(" {table} ("));
            if l.contains("create table") && named {
                return Some((m.file.clone(), n as u32 + 1));
            }
        }
    }
    None
}
