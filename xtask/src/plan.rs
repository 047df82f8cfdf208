//! The data plan (SPEC §8; default `/tmp/data_plan.json`): molecules, each a set of migration
//! globs with a status, an attempt count and evidence. Every field the tool does not know is kept;
//! writes are atomic; a malformed plan is refused with its line and column and left untouched.
//! Each attempt appends one line to `artifacts/data/<date>/mcp_attempt<N>.jsonl`, N being the
//! attempt's number for that molecule.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

use crate::artifacts::write_atomic;
use crate::exit;
use crate::tree::Migration;

pub const MAX_ATTEMPTS: u64 = 3;
const ACTIVE: [&str; 3] = ["pending", "in_progress", "failed"];

pub struct Plan {
    pub path: PathBuf,
    doc: Value,
}

/// A molecule chosen for this run, with the migrations its globs select.
#[derive(Clone, Debug)]
pub struct Molecule {
    pub id: String,
    pub migrations: Vec<String>,
    pub attempt: u64,
}

impl Plan {
    /// The plan path: `--plan`, else `$DATA_PLAN`, else `/tmp/data_plan.json`.
    pub fn path(flag: Option<&Path>) -> PathBuf {
        flag.map(Path::to_path_buf)
            .or_else(|| std::env::var_os("DATA_PLAN").filter(|v| !v.is_empty()).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/tmp/data_plan.json"))
    }

    /// `None` when the file does not exist.
    pub fn load(path: &Path) -> Result<Option<Plan>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(exit::cannot_run(format!("reading the data plan {}: {e}", path.display()))),
        };
        let doc: Value = serde_json::from_str(&text).map_err(|e| {
            exit::cannot_run(format!(
                "{}:{}:{}: the data plan is not valid JSON ({e}); fix it by hand, the tool left it untouched",
                path.display(),
                e.line(),
                e.column()
            ))
        })?;
        let plan = Plan { path: path.to_path_buf(), doc };
        for (i, m) in plan.molecules().iter().enumerate() {
            if m.get("id").and_then(Value::as_str).is_none() {
                return Err(exit::cannot_run(format!("{}: molecules[{i}] has no \"id\"", path.display())));
            }
        }
        Ok(Some(plan))
    }

    fn molecules(&self) -> Vec<Value> {
        self.doc.get("molecules").and_then(Value::as_array).cloned().unwrap_or_default()
    }

    fn molecule_mut(&mut self, id: &str) -> Option<&mut Map<String, Value>> {
        self.doc
            .get_mut("molecules")?
            .as_array_mut()?
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .find(|m| m.get("id").and_then(Value::as_str) == Some(id))
    }

    /// The molecules to rehearse: those named (`--molecule`), else the active ones, each with the
    /// migration files its globs match. A named or active molecule that matches nothing is refused.
    pub fn select(&self, named: &[String], migrations: &[Migration]) -> Result<Vec<Molecule>> {
        let all = self.molecules();
        let mut chosen = Vec::new();
        for id in named {
            if !all.iter().any(|m| m.get("id").and_then(Value::as_str) == Some(id)) {
                return Err(exit::cannot_run(format!(
                    "molecule `{id}` is not in the data plan {}",
                    self.path.display()
                )));
            }
        }
        for m in &all {
            let id = m["id"].as_str().unwrap_or_default().to_string();
            let status = m.get("status").and_then(Value::as_str).unwrap_or("pending");
            let wanted = if named.is_empty() { ACTIVE.contains(&status) } else { named.contains(&id) };
            if !wanted {
                continue;
            }
            let globs: Vec<String> = m
                .get("migrations")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default();
            let files: Vec<String> = migrations
                .iter()
                .filter(|mig| globs.iter().any(|g| glob_match(g, &mig.file)))
                .map(|mig| mig.file.clone())
                .collect();
            if files.is_empty() {
                return Err(exit::cannot_run(format!(
                    "molecule `{id}` in {} matches no migration file (globs: {}); fix its \"migrations\"",
                    self.path.display(),
                    globs.join(", ")
                )));
            }
            let attempts = m.get("attempts").and_then(Value::as_u64).unwrap_or(0);
            chosen.push(Molecule { id, migrations: files, attempt: attempts + 1 });
        }
        Ok(chosen)
    }

    /// Record a molecule's attempt number and status, keeping every other field.
    pub fn set(&mut self, id: &str, status: &str, attempts: Option<u64>, evidence: &[String]) {
        if let Some(m) = self.molecule_mut(id) {
            m.insert("status".into(), json!(status));
            if let Some(n) = attempts {
                m.insert("attempts".into(), json!(n));
            }
            if !evidence.is_empty() {
                let list = m.entry("evidence").or_insert_with(|| json!([]));
                if let Some(list) = list.as_array_mut() {
                    for e in evidence {
                        if !list.iter().any(|v| v.as_str() == Some(e)) {
                            list.push(json!(e));
                        }
                    }
                }
            }
        }
    }

    pub fn save(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.doc)?;
        write_atomic(&self.path, format!("{text}\n").as_bytes())
    }
}

/// Append one attempt to `artifacts/data/<date>/mcp_attempt<N>.jsonl`; returns its relative path.
pub fn record_attempt(workdir: &Path, date: &str, molecule: &Molecule, line: &Value) -> Result<String> {
    let rel = format!("artifacts/data/{date}/mcp_attempt{}.jsonl", molecule.attempt);
    let path = workdir.join(&rel);
    std::fs::create_dir_all(path.parent().expect("has a parent")).with_context(|| format!("creating {rel}"))?;
    let mut file =
        std::fs::OpenOptions::new().create(true).append(true).open(&path).with_context(|| format!("opening {rel}"))?;
    writeln!(file, "{}", serde_json::to_string(line)?).with_context(|| format!("appending to {rel}"))?;
    Ok(rel)
}

/// Shell-style glob: `*` (not across `/`), `?`, and literal text.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && t[0] != b'/' && go(p, &t[1..])),
            (Some(b'?'), Some(c)) if *c != b'/' => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn the_runbooks_globs() {
        assert!(glob_match(
            "supabase/migrations/2025101109*.sql",
            "supabase/migrations/20251011090000_inventory_bundle.sql"
        ));
        assert!(!glob_match(
            "supabase/migrations/2025101109*.sql",
            "supabase/migrations/20251011140000_knowledge_base.sql"
        ));
        assert!(glob_match(
            "supabase/migrations/20251019004500_programmatic_seo_blueprints.sql",
            "supabase/migrations/20251019004500_programmatic_seo_blueprints.sql"
        ));
        assert!(!glob_match("supabase/*.sql", "supabase/migrations/x.sql"));
    }
}
