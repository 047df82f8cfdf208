//! `cargo xtask lint`: static checks of the migrations, no database (SPEC §3; runbook §3 and §9).
//! Each rule has a default severity, changed or turned off in `supabase/rehearsal.toml`:
//!
//! ```toml
//! [lint]
//! unguarded_create = "error"      # error | warning | off
//! exposed_schemas = ["public"]
//! ```
//!
//! A statement opts out of a rule with a comment on one of its lines (or the line before it):
//! `-- lint:allow unguarded_drop` (several rules separated by commas, or `all`).

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{self, Value};
use crate::findings::Finding;
use crate::sql;
use crate::tree::{MIGRATIONS, ROLLBACKS};

/// Every rule, its default severity, and what to do about it.
pub const RULES: &[(&str, &str, &str)] = &[
    (
        "missing_rollback",
        "error",
        "write supabase/migrations.backup/<version>_<name>_rollback.sql that undoes it exactly",
    ),
    ("orphan_rollback", "warning", "remove the rollback, or restore the migration it belongs to"),
    ("duplicate_version", "error", "give one of the files a new timestamp"),
    ("unversioned_file", "error", "name it <version>_<name>.sql, as `supabase migration new` does"),
    (
        "non_transactional",
        "warning",
        "keep it alone in its own migration: the rehearsal runs such files without a transaction",
    ),
    ("unguarded_create", "warning", "add IF NOT EXISTS so a replay does not fail on duplicate objects (runbook §9)"),
    ("unguarded_drop", "warning", "add IF EXISTS so a replay does not fail on missing objects (runbook §9)"),
    (
        "rls_missing",
        "error",
        "add `alter table <table> enable row level security;` and its policies in the same migration",
    ),
    (
        "security_definer_search_path",
        "error",
        "add `set search_path = ''` (and qualify names) to the SECURITY DEFINER function",
    ),
];

#[derive(Debug)]
pub struct Rules {
    severity: BTreeMap<&'static str, &'static str>,
    exposed: Vec<String>,
}

impl Rules {
    pub fn from_config(raw: &BTreeMap<(String, String), Value>) -> Result<Rules, String> {
        let mut severity: BTreeMap<&'static str, &'static str> = RULES.iter().map(|(r, s, _)| (*r, *s)).collect();
        let mut exposed = vec!["public".to_string()];
        for ((section, key), value) in raw {
            if section != "lint" {
                continue;
            }
            if key == "exposed_schemas" {
                match value {
                    Value::List(items) => exposed = items.clone(),
                    _ => return Err(format!("{}: [lint] exposed_schemas must be an array of strings", config::PATH)),
                }
                continue;
            }
            let rule = RULES.iter().map(|(r, _, _)| *r).find(|r| r == key).ok_or_else(|| {
                format!(
                    "{}: [lint] {key} is not a rule (rules: {})",
                    config::PATH,
                    RULES.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
                )
            })?;
            let level = match value {
                Value::Str(v) if v == "error" => "error",
                Value::Str(v) if v == "warning" => "warning",
                Value::Str(v) if v == "off" => "off",
                _ => return Err(format!("{}: [lint] {key} must be \"error\", \"warning\" or \"off\"", config::PATH)),
            };
            severity.insert(rule, level);
        }
        Ok(Rules { severity, exposed })
    }

    fn finding(&self, rule: &'static str, file: &str, line: usize, message: String) -> Option<Finding> {
        let severity = self.severity.get(rule).copied().unwrap_or("error");
        let hint = RULES.iter().find(|(r, _, _)| *r == rule).map_or("", |r| r.2);
        // Name the object where the message does (`table public.x ...`).
        let table = message.strip_prefix("table ").and_then(|rest| rest.split_whitespace().next());
        let hint = table.map_or(hint.to_string(), |t| hint.replace("<table>", t));
        // ... and the rollback to write, from the migration's own name.
        let stem = Path::new(file).file_stem().and_then(|s| s.to_str()).unwrap_or("<version>_<name>");
        let hint = hint.replace("<version>_<name>", stem);
        (severity != "off").then(|| Finding {
            class: rule,
            severity,
            sqlstate: None,
            file: Some(file.to_string()),
            line: Some(line as u32),
            message,
            hint: format!("{hint} ({file}:{line}; opt out with `-- lint:allow {rule}`)"),
            log: None,
        })
    }
}

/// Lint the whole tree: the file layout, then each migration and rollback.
pub fn tree(workdir: &Path, rules: &Rules) -> Vec<Finding> {
    let mut out = Vec::new();
    let names = |dir: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(workdir.join(dir))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        v.sort();
        v
    };
    let version = |name: &str| -> String { name.chars().take_while(char::is_ascii_digit).collect() };
    let migrations = names(MIGRATIONS);
    let rollbacks: Vec<String> = names(ROLLBACKS).into_iter().filter(|n| n.contains("rollback")).collect();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for name in &migrations {
        let file = format!("{MIGRATIONS}/{name}");
        let v = version(name);
        if v.is_empty() || !name[v.len()..].starts_with('_') {
            out.extend(rules.finding("unversioned_file", &file, 1, format!("{file} has no leading version")));
            continue;
        }
        if let Some(first) = seen.insert(v.clone(), file.clone()) {
            out.extend(rules.finding("duplicate_version", &file, 1, format!("{file} and {first} share version {v}")));
        }
        if !rollbacks.iter().any(|r| version(r) == v) {
            out.extend(rules.finding(
                "missing_rollback",
                &file,
                1,
                format!("{file} has no rollback script in {ROLLBACKS}/"),
            ));
        }
        if let Ok(text) = std::fs::read_to_string(workdir.join(&file)) {
            out.extend(statements(&file, &text, rules));
        }
    }
    for name in &rollbacks {
        let file = format!("{ROLLBACKS}/{name}");
        if !seen.contains_key(&version(name)) {
            out.extend(rules.finding(
                "orphan_rollback",
                &file,
                1,
                format!("{file} rolls back no migration in the tree"),
            ));
        }
        if let Ok(text) = std::fs::read_to_string(workdir.join(&file)) {
            out.extend(statements(&file, &text, rules));
        }
    }
    out
}

/// The statement rules over one file.
pub fn statements(file: &str, text: &str, rules: &Rules) -> Vec<Finding> {
    let lines: Vec<&str> = text.lines().collect();
    let spans = sql::spans(text);
    let mut out = Vec::new();
    let enabled: Vec<String> = spans.iter().filter_map(|s| rls_enabled_table(s.text)).collect();
    for span in &spans {
        let allowed = |rule: &str| {
            let from = span.line.saturating_sub(2);
            lines[from..span.end_line.min(lines.len())].iter().any(|l| {
                l.split_once("lint:allow")
                    .is_some_and(|(_, rest)| rest.split([',', ' ']).any(|r| r == rule || r == "all"))
            })
        };
        let mut push = |rule: &'static str, message: String| {
            if !allowed(rule) {
                out.extend(rules.finding(rule, file, span.line, message));
            }
        };
        let words = words(span.text, 8);
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        let first_line = span.text.lines().find(|l| !l.trim_start().starts_with("--")).unwrap_or(span.text).trim();
        if let Some(reason) = sql::non_transactional(span.text) {
            push("non_transactional", format!("{reason} cannot run inside a transaction block: {first_line}"));
        }
        let guarded_create = ["TABLE", "INDEX", "SCHEMA", "SEQUENCE", "EXTENSION"];
        if w.first() == Some(&"CREATE") {
            // The object kind is the first word after CREATE and its modifiers.
            const MODIFIERS: [&str; 10] = [
                "OR",
                "REPLACE",
                "TEMP",
                "TEMPORARY",
                "UNLOGGED",
                "UNIQUE",
                "MATERIALIZED",
                "GLOBAL",
                "LOCAL",
                "RECURSIVE",
            ];
            let kind = w.iter().skip(1).find(|x| !MODIFIERS.contains(x)).copied().unwrap_or_default();
            let temp = w.iter().take_while(|x| **x != kind).any(|x| *x == "TEMP" || *x == "TEMPORARY");
            let materialized = w.get(1) == Some(&"MATERIALIZED");
            let offers = guarded_create.contains(&kind) || (materialized && kind == "VIEW");
            let guarded = w.iter().any(|x| *x == "EXISTS");
            if offers && !guarded && !temp && !w.contains(&"CONCURRENTLY") {
                push("unguarded_create", format!("CREATE {kind} without IF NOT EXISTS: {first_line}"));
            }
            if kind == "TABLE" && !temp {
                if let Some(table) = created_table(span.text) {
                    let (schema, name) = table
                        .split_once('.')
                        .map_or(("public".to_string(), table.clone()), |(s, n)| (s.to_string(), n.to_string()));
                    if rules.exposed.contains(&schema) && !enabled.iter().any(|e| e == &format!("{schema}.{name}")) {
                        push("rls_missing", format!("table {schema}.{name} is created in an exposed schema without ENABLE ROW LEVEL SECURITY in this migration"));
                    }
                }
            }
            let upper = span.text.to_ascii_uppercase();
            if upper.contains("FUNCTION")
                && upper.contains("SECURITY DEFINER")
                && !upper.replace(char::is_whitespace, "").contains("SETSEARCH_PATH")
            {
                push(
                    "security_definer_search_path",
                    format!("a SECURITY DEFINER function without SET search_path: {first_line}"),
                );
            }
        }
        if w.first() == Some(&"DROP") && !w.contains(&"EXISTS") {
            push("unguarded_drop", format!("DROP without IF EXISTS: {first_line}"));
        }
        if w.first() == Some(&"ALTER") {
            let upper = span.text.to_ascii_uppercase();
            let squashed = upper.split_whitespace().collect::<Vec<_>>().join(" ");
            for target in ["DROP COLUMN", "DROP CONSTRAINT"] {
                if squashed.contains(target) && !squashed.contains(&format!("{target} IF EXISTS")) {
                    push("unguarded_drop", format!("{target} without IF EXISTS: {first_line}"));
                }
            }
        }
    }
    out
}

/// Upper-cased leading words, comments skipped.
fn words(statement: &str, n: usize) -> Vec<String> {
    let code = statement.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join(" ");
    code.split(|c: char| c.is_whitespace() || c == '(')
        .filter(|w| !w.is_empty())
        .take(n)
        .map(|w| w.to_ascii_uppercase())
        .collect()
}

/// `schema.table` (lower-case, unquoted) of a CREATE TABLE.
fn created_table(statement: &str) -> Option<String> {
    let code = statement.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join(" ");
    let lower = code.to_ascii_lowercase();
    let after = lower.split_once("table")?.1.trim_start();
    let after = after.strip_prefix("if not exists").unwrap_or(after).trim_start();
    let name: String = after.chars().take_while(|c| !c.is_whitespace() && *c != '(').collect();
    (!name.is_empty()).then(|| name.replace('"', ""))
}

/// `schema.table` of an `alter table ... enable row level security`.
fn rls_enabled_table(statement: &str) -> Option<String> {
    let lower = statement.to_ascii_lowercase().split_whitespace().collect::<Vec<_>>().join(" ");
    let rest = lower.strip_prefix("alter table ")?;
    let rest = rest.strip_prefix("if exists ").unwrap_or(rest);
    let rest = rest.strip_prefix("only ").unwrap_or(rest);
    let (name, action) = rest.split_once(' ')?;
    action.starts_with("enable row level security").then(|| {
        let name = name.replace('"', "");
        if name.contains('.') {
            name
        } else {
            format!("public.{name}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lint(text: &str) -> Vec<(&'static str, u32)> {
        let rules = Rules::from_config(&BTreeMap::new()).unwrap();
        statements("m.sql", text, &rules).into_iter().map(|f| (f.class, f.line.unwrap())).collect()
    }

    #[test]
    fn each_statement_rule() {
        assert_eq!(lint("create table public.t (id int);\n"), vec![("unguarded_create", 1), ("rls_missing", 1)]);
        assert_eq!(
            lint("create table if not exists t (id int);\nalter table public.t enable row level security;\n"),
            vec![]
        );
        assert_eq!(
            lint("drop table t;\nalter table t drop column x;\n"),
            vec![("unguarded_drop", 1), ("unguarded_drop", 2)]
        );
        assert_eq!(lint("create index concurrently if not exists i on t (x);\n"), vec![("non_transactional", 1)]);
        assert_eq!(
            lint("create function f() returns int language sql security definer as $$ select 1 $$;\n"),
            vec![("security_definer_search_path", 1)]
        );
        assert_eq!(lint("create function f() returns int language sql security definer set search_path = '' as $$ select 1 $$;\n"), vec![]);
        assert_eq!(
            lint("create table private.t (id int);\n"),
            vec![("unguarded_create", 1)],
            "only exposed schemas need RLS"
        );
        assert_eq!(
            lint("create or replace function f() returns table (x int) language sql as $$ select 1 $$;\n"),
            vec![],
            "RETURNS TABLE is not a CREATE TABLE"
        );
    }

    #[test]
    fn opt_outs_and_severities() {
        assert_eq!(lint("-- lint:allow unguarded_create, rls_missing\ncreate table t (id int);\n"), vec![]);
        assert_eq!(lint("drop table t; -- lint:allow unguarded_drop\n"), vec![]);
        let mut raw = BTreeMap::new();
        raw.insert(("lint".to_string(), "unguarded_drop".to_string()), Value::Str("off".into()));
        let rules = Rules::from_config(&raw).unwrap();
        assert!(statements("m.sql", "drop table t;\n", &rules).is_empty());
        raw.insert(("lint".to_string(), "nonsense".to_string()), Value::Str("off".into()));
        assert!(Rules::from_config(&raw).unwrap_err().contains("[lint] nonsense is not a rule"));
    }
}
