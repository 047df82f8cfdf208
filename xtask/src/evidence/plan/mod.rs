//! The data plan (default `/tmp/data_plan.json`): molecules, each a set of migration globs with a
//! status, an attempt count and evidence. Each attempt appends one line to
//! `artifacts/data/<date>/mcp_attempt<N>.jsonl`, N being the attempt's number for that molecule.
//!
//! The plan belongs to the people who write it: every field the tool does not know is kept, and
//! numbers keep their exact text. A plan that is not what the tool expects (not an object,
//! `molecules` not an array, an `attempts` that is not a whole number, a key given twice) is
//! refused with where and why, and left untouched. Every change is a read-modify-write under a
//! lock (`.<name>.lock` beside the plan), so two runs on different molecules do not overwrite each
//! other; it is written whole (temp file and rename) through a symlink to its real file, keeping
//! its mode (and its owner: the caller; as root, a plan of another user's is refused).

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Map, Value};

use crate::exit;
use crate::text::glob::Glob;

mod lock;
use lock::{write_keeping_owner, PlanLock};

pub const MAX_ATTEMPTS: u64 = 3;
const STATUSES: [&str; 5] = ["pending", "in_progress", "completed", "failed", "blocked"];
const ACTIVE: [&str; 3] = ["pending", "in_progress", "failed"];
/// More attempts than anyone records: a larger number is a typo, not a count.
const MAX_RECORDED_ATTEMPTS: u64 = 1000;

/// A molecule chosen for this run, with the migration files its globs select.
#[derive(Clone, Debug)]
pub struct Molecule {
    pub id: String,
    pub migrations: Vec<String>,
    /// This run's attempt number.
    pub attempt: u64,
}

/// The plan as read, validated.
pub struct Plan {
    pub path: PathBuf,
    doc: Value,
}

/// The plan path: `--plan`, else `$DATA_PLAN`, else `/tmp/data_plan.json`.
pub fn path(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("DATA_PLAN").filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/tmp/data_plan.json"))
}

impl Plan {
    /// `None` when the file does not exist.
    pub fn load(path: &Path) -> Result<Option<Plan>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(exit::cannot_run(format!("reading the data plan {}: {e}", path.display()))),
        };
        Ok(Some(Plan { path: path.to_path_buf(), doc: parse(path, &text)? }))
    }

    fn molecules(&self) -> &[Value] {
        self.doc.get("molecules").and_then(Value::as_array).map_or(&[], Vec::as_slice)
    }

    /// The molecules to rehearse: those named (`--molecule`), else the active ones, each with the
    /// migration files its globs match. A named or active molecule that matches nothing is refused.
    pub fn select(&self, named: &[String], migrations: &[String]) -> Result<Vec<Molecule>> {
        let all = self.molecules();
        for id in named {
            if !all.iter().any(|m| m["id"].as_str() == Some(id)) {
                return Err(exit::cannot_run(format!(
                    "molecule `{id}` is not in the data plan {}",
                    self.path.display()
                )));
            }
        }
        let mut chosen = Vec::new();
        for m in all {
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
            let compiled = globs
                .iter()
                .map(|g| {
                    Glob::new(g).map_err(|e| exit::cannot_run(format!("{}: molecule `{id}`: {e}", self.path.display())))
                })
                .collect::<Result<Vec<_>>>()?;
            let files: Vec<String> =
                migrations.iter().filter(|file| compiled.iter().any(|g| g.matches(file))).cloned().collect();
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
}

/// One change to a molecule: its status, its attempt count, evidence to add.
#[derive(Clone, Debug)]
pub struct Change {
    pub id: String,
    pub status: &'static str,
    pub attempts: Option<u64>,
    pub evidence: Vec<String>,
}

/// Apply `changes` to the plan at `path`: under the lock, re-read, change only those molecules,
/// write it back whole.
pub fn update(path: &Path, changes: &[Change]) -> Result<()> {
    let real = std::fs::canonicalize(path).with_context(|| format!("finding the data plan {}", path.display()))?;
    let _lock = PlanLock::take(&real)?;
    let text = std::fs::read_to_string(&real).with_context(|| format!("reading the data plan {}", path.display()))?;
    let mut doc = parse(path, &text)?;
    for change in changes {
        let Some(m) = doc.get_mut("molecules").and_then(Value::as_array_mut).and_then(|all| {
            all.iter_mut().filter_map(Value::as_object_mut).find(|m| m["id"].as_str() == Some(&change.id))
        }) else {
            continue;
        };
        m.insert("status".into(), json!(change.status));
        if let Some(n) = change.attempts {
            m.insert("attempts".into(), json!(n));
        }
        if !change.evidence.is_empty() {
            let list = m.entry("evidence").or_insert_with(|| json!([]));
            if let Some(list) = list.as_array_mut() {
                for e in &change.evidence {
                    if !list.iter().any(|v| v.as_str() == Some(e)) {
                        list.push(json!(e));
                    }
                }
            }
        }
    }
    let text = format!("{}\n", serde_json::to_string_pretty(&doc)?);
    write_keeping_owner(&real, text.as_bytes()).with_context(|| format!("writing the data plan {}", path.display()))
}

/// Append one attempt to `artifacts/data/<date>/mcp_attempt<N>.jsonl`; returns its relative path.
pub fn record_attempt(workdir: &Path, date: &str, molecule: &Molecule, line: &Value) -> Result<String> {
    let rel = format!("artifacts/data/{date}/mcp_attempt{}.jsonl", molecule.attempt);
    let path = super::artifacts::real_dir(workdir, &format!("artifacts/data/{date}"))?
        .join(format!("mcp_attempt{}.jsonl", molecule.attempt));
    let mut file = super::artifacts::open_append(&path, &rel)?;
    writeln!(file, "{}", serde_json::to_string(line)?).with_context(|| format!("appending to {rel}"))?;
    Ok(rel)
}

/// Parse and check the plan; the error names the file and, for JSON errors, the line and column.
fn parse(path: &Path, text: &str) -> Result<Value> {
    let json_error = |e: serde_json::Error| {
        exit::cannot_run(format!(
            "{}:{}:{}: the data plan is not valid JSON ({e}); fix it by hand, the tool left it untouched",
            path.display(),
            e.line(),
            e.column()
        ))
    };
    serde_json::from_str::<NoDuplicates>(text).map_err(json_error)?;
    let doc: Value = serde_json::from_str(text).map_err(json_error)?;
    check(&doc).map_err(|why| {
        exit::cannot_run(format!("{}: {why}; fix it by hand, the tool left it untouched", path.display()))
    })?;
    Ok(doc)
}

/// The shape the tool relies on.
fn check(doc: &Value) -> Result<(), String> {
    let root = doc.as_object().ok_or("the data plan must be a JSON object with a \"molecules\" array")?;
    let Some(molecules) = root.get("molecules") else { return Ok(()) };
    let molecules = molecules.as_array().ok_or("\"molecules\" must be an array of molecule objects")?;
    let mut ids = HashSet::new();
    for (i, m) in molecules.iter().enumerate() {
        let at = format!("molecules[{i}]");
        let m: &Map<String, Value> = m.as_object().ok_or(format!("{at} must be an object"))?;
        let id = m.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or(format!("{at} has no \"id\""))?;
        if !ids.insert(id) {
            return Err(format!("{at}: the id `{id}` is used twice"));
        }
        if let Some(globs) = m.get("migrations") {
            if !globs.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                return Err(format!("{at}.migrations must be an array of globs"));
            }
        }
        if let Some(status) = m.get("status") {
            if !status.as_str().is_some_and(|s| STATUSES.contains(&s)) {
                return Err(format!("{at}.status must be one of {}, not {status}", STATUSES.join(", ")));
            }
        }
        if let Some(attempts) = m.get("attempts") {
            if attempts.as_u64().is_none_or(|n| n > MAX_RECORDED_ATTEMPTS) {
                return Err(format!(
                    "{at}.attempts must be a whole number of attempts (0 to {MAX_RECORDED_ATTEMPTS}), not {attempts}"
                ));
            }
        }
        if let Some(evidence) = m.get("evidence") {
            if !evidence.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                return Err(format!("{at}.evidence must be an array of paths"));
            }
        }
    }
    Ok(())
}

/// Deserializes any JSON, refusing an object that gives a key twice (serde_json would keep the last).
struct NoDuplicates;

impl<'de> Deserialize<'de> for NoDuplicates {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<NoDuplicates, D::Error> {
        d.deserialize_any(NoDuplicatesVisitor)
    }
}

struct NoDuplicatesVisitor;

impl<'de> Visitor<'de> for NoDuplicatesVisitor {
    type Value = NoDuplicates;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_unit<E: de::Error>(self) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NoDuplicates, A::Error> {
        while seq.next_element::<NoDuplicates>()?.is_some() {}
        Ok(NoDuplicates)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NoDuplicates, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("the key \"{key}\" is given twice")));
            }
            map.next_value::<NoDuplicates>()?;
        }
        Ok(NoDuplicates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        format!("{:#}", parse(Path::new("plan.json"), text).unwrap_err())
    }

    #[test]
    fn malformed_plans_are_refused_with_why() {
        assert!(refused("[1,2,3]").contains("must be a JSON object"));
        assert!(refused("{\"molecules\": {}}").contains("\"molecules\" must be an array"));
        assert!(refused("{\"molecules\": [{\"id\": \"a\", \"attempts\": \"3\"}]}")
            .contains("molecules[0].attempts must be a whole number"));
        assert!(refused("{\"molecules\": [{\"id\": \"a\", \"attempts\": 3.0}]}").contains("not 3.0"));
        assert!(refused("{\"molecules\": [{\"id\": \"a\", \"attempts\": -1}]}").contains("not -1"));
        assert!(refused("{\"molecules\": [{\"id\": \"a\", \"attempts\": 123456789012345678901234567890}]}")
            .contains("attempts"));
        let dup = refused("{\"molecules\": [{\"id\": \"a\",\n \"id\": \"b\"}]}");
        assert!(dup.starts_with("plan.json:2:") && dup.contains("the key \"id\" is given twice"), "{dup}");
    }

    #[test]
    fn numbers_keep_their_text() {
        let doc =
            parse(Path::new("p"), "{\"big\": 123456789012345678901234567890, \"f\": 1.50, \"molecules\": []}").unwrap();
        assert_eq!(
            serde_json::to_string(&doc).unwrap(),
            "{\"big\":123456789012345678901234567890,\"f\":1.50,\"molecules\":[]}"
        );
    }
}
