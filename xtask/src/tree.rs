//! The Supabase tree under the workdir (SPEC §1–2): migrations in version order, their rollback
//! pairs, the RLS contract, the test layout and the seed. Bad input is refused here, before any
//! database is touched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::exit;

pub const MIGRATIONS: &str = "supabase/migrations";
pub const ROLLBACKS: &str = "supabase/migrations.backup";
pub const CONTRACT: &str = "supabase/rls_tests.sql";
pub const TESTS: &str = "supabase/tests";
pub const SEED: &str = "supabase/seed.sql";

#[derive(Clone, Debug)]
pub struct Migration {
    pub version: String,
    pub name: String,
    /// Relative to the workdir, as psql will name it in errors.
    pub file: String,
    /// Its paired rollback script, relative to the workdir.
    pub rollback: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Tree {
    pub workdir: PathBuf,
    pub migrations: Vec<Migration>,
    /// Rollback scripts whose version has no migration (a warning, not an error).
    pub orphan_rollbacks: Vec<String>,
}

impl Tree {
    /// Read `supabase/migrations` and `supabase/migrations.backup`.
    pub fn load(workdir: &Path) -> Result<Tree> {
        let dir = workdir.join(MIGRATIONS);
        let names = sql_files(&dir).map_err(|_| {
            exit::cannot_run(format!(
                "{MIGRATIONS} is missing under {}: nothing to rehearse (pass --workdir to point at the repo root)",
                workdir.display()
            ))
        })?;
        if names.is_empty() {
            return Err(exit::cannot_run(format!("{MIGRATIONS} holds no .sql migration files")));
        }
        let mut by_version: BTreeMap<String, Migration> = BTreeMap::new();
        for name in names {
            let file = format!("{MIGRATIONS}/{name}");
            // The Supabase CLI's pattern: <digits>_<name>.sql.
            let (version, rest) = name.split_at(name.find(|c: char| !c.is_ascii_digit()).unwrap_or(0));
            let Some(rest) = rest.strip_prefix('_').filter(|_| !version.is_empty()) else {
                return Err(exit::cannot_run(format!(
                    "{file}: no leading version; name migrations <version>_<name>.sql, as `supabase migration new` does"
                )));
            };
            let migration = Migration {
                version: version.to_string(),
                name: rest.trim_end_matches(".sql").to_string(),
                file: file.clone(),
                rollback: None,
            };
            if let Some(first) = by_version.insert(version.to_string(), migration) {
                return Err(exit::cannot_run(format!(
                    "{file} and {} share version {version}; give one a new timestamp",
                    first.file
                )));
            }
        }

        let mut orphan_rollbacks = Vec::new();
        for name in sql_files(&workdir.join(ROLLBACKS)).unwrap_or_default() {
            if !name.contains("rollback") {
                continue;
            }
            let file = format!("{ROLLBACKS}/{name}");
            let version: String = name.chars().take_while(char::is_ascii_digit).collect();
            match by_version.get_mut(&version) {
                Some(m) if m.rollback.is_some() => {
                    return Err(exit::cannot_run(format!(
                        "{file} and {} both roll back version {version}; keep one",
                        m.rollback.as_deref().unwrap_or_default()
                    )))
                }
                Some(m) => m.rollback = Some(file),
                None => orphan_rollbacks.push(file),
            }
        }
        Ok(Tree { workdir: workdir.to_path_buf(), migrations: by_version.into_values().collect(), orphan_rollbacks })
    }
}

/// The RLS contract and the Supabase test layout, in the order they run: `rls_tests.sql` first,
/// then every `*.sql` and `*.pg` under `supabase/tests/`, recursively, sorted.
pub fn contract_files(workdir: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    if workdir.join(CONTRACT).is_file() {
        files.push(CONTRACT.to_string());
    }
    let mut tests = Vec::new();
    collect_tests(&workdir.join(TESTS), TESTS, &mut tests)?;
    tests.sort();
    files.extend(tests);
    Ok(files)
}

fn collect_tests(dir: &Path, rel: &str, out: &mut Vec<String>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = format!("{rel}/{name}");
        if entry.file_type()?.is_dir() {
            collect_tests(&entry.path(), &rel, out)?;
        } else if name.ends_with(".sql") || name.ends_with(".pg") {
            out.push(rel);
        }
    }
    Ok(())
}

/// Names of the `.sql` files in `dir`, sorted.
fn sql_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    Ok(names)
}
