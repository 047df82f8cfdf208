//! `cargo xtask lint`'s rules: static checks of migrations and rollbacks, no database (runbook
//! steps 3 and 9). Each rule has a default severity, changed or turned off in
//! `supabase/rehearsal.toml` `[lint]`; `exposed_schemas` (default `["public"]`) says where a table
//! needs row level security. A statement opts out of a rule with `-- lint:allow RULE` (several
//! separated by commas, or `all`) on one of its lines or the line before it.
//!
//! `psql_meta_command` and `not_utf8` cannot be turned off: the rehearsal refuses such files.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use super::config::{Level, Setting};
use super::findings::{Class, Finding, Severity};
use super::sql::{self, Script};

/// Every rule, its default severity, and what to do about it.
pub const RULES: &[(Class, Severity, &str)] = &[
    (Class::MissingRollback, Severity::Error, "write supabase/migrations.backup/<version>_<name>_rollback.sql that undoes it exactly"),
    (Class::OrphanRollback, Severity::Warning, "remove the rollback, or restore the migration it belongs to"),
    (Class::DuplicateVersion, Severity::Error, "give one of the files a new timestamp"),
    (Class::UnversionedFile, Severity::Error, "name it <version>_<name>.sql, as `supabase migration new` does"),
    (Class::NonTransactional, Severity::Warning, "keep it alone in its own migration: the rehearsal runs such files without a transaction"),
    (Class::UnguardedCreate, Severity::Warning, "add IF NOT EXISTS so a replay does not fail on duplicate objects (runbook step 9)"),
    (Class::UnguardedDrop, Severity::Warning, "add IF EXISTS so a replay does not fail on missing objects (runbook step 9)"),
    (Class::RlsMissing, Severity::Error, "add `alter table <table> enable row level security;` and its policies in the same migration"),
    (Class::SecurityDefinerSearchPath, Severity::Error, "add `set search_path = ''` (and qualify names) to the SECURITY DEFINER function"),
    (Class::PsqlMetaCommand, Severity::Error, "remove it: a migration is SQL only (the Supabase CLI rejects psql meta-commands, and the rehearsal refuses to run them)"),
    (Class::NotUtf8, Severity::Error, "save the file as UTF-8"),
];

/// Rules that a project cannot turn off or lower: the rehearsal refuses the file anyway.
const FORCED: [Class; 2] = [Class::PsqlMetaCommand, Class::NotUtf8];

#[derive(Debug)]
pub struct Rules {
    severity: BTreeMap<Class, Option<Severity>>,
    exposed: Vec<String>,
}

impl Rules {
    /// The schemas `[lint] exposed_schemas` names (`public` when it is not set).
    pub fn exposed(&self) -> &[String] {
        &self.exposed
    }

    /// The rules with the project's `[lint]` settings; an unknown rule or level is refused.
    pub fn from_config(settings: &[Setting]) -> Result<Rules> {
        let mut severity: BTreeMap<Class, Option<Severity>> = RULES.iter().map(|(c, s, _)| (*c, Some(*s))).collect();
        let mut exposed = vec!["public".to_string()];
        for setting in settings {
            if setting.key == "exposed_schemas" {
                exposed = setting.strings()?;
                continue;
            }
            let Some((class, _, _)) = RULES.iter().find(|(c, _, _)| c.as_str() == setting.key) else {
                let names: Vec<&str> = RULES.iter().map(|(c, _, _)| c.as_str()).collect();
                return Err(setting.error(&format!("is not a rule (rules: {}, exposed_schemas)", names.join(", "))));
            };
            let level = Level::of(setting)?;
            if FORCED.contains(class) && level != Level::Error {
                return Err(setting.error("cannot be lowered: the rehearsal refuses such files whatever lint says"));
            }
            severity.insert(
                *class,
                match level {
                    Level::Error => Some(Severity::Error),
                    Level::Warning => Some(Severity::Warning),
                    Level::Off => None,
                },
            );
        }
        Ok(Rules { severity, exposed })
    }

    pub fn finding(&self, class: Class, file: &str, line: usize, message: String) -> Option<Finding> {
        let severity = (*self.severity.get(&class)?)?;
        let hint = RULES.iter().find(|(c, _, _)| *c == class).map_or("", |r| r.2);
        // Name the object where the message does (`table public.x ...`), and the rollback to
        // write from the migration's own name.
        let table = message.strip_prefix("table ").and_then(|rest| rest.split_whitespace().next());
        let hint = table.map_or(hint.to_string(), |t| hint.replace("<table>", t));
        let stem = Path::new(file).file_stem().and_then(|s| s.to_str()).unwrap_or("<version>_<name>");
        let hint = hint.replace("<version>_<name>", stem);
        Some(Finding {
            class,
            severity,
            sqlstate: None,
            file: Some(file.to_string()),
            line: Some(line as u32),
            message,
            hint: format!("{hint} ({file}:{line}; opt out with `-- lint:allow {}`)", class.as_str()),
            log: None,
        })
    }
}

/// A file of the tree, as lint sees it: its path and its bytes.
pub struct SqlFile<'a> {
    pub rel: &'a str,
    pub bytes: &'a [u8],
}

/// Lint the tree's migrations and rollbacks (both sorted, relative to the workdir).
pub fn tree(migrations: &[SqlFile], rollbacks: &[SqlFile], rules: &Rules) -> Vec<Finding> {
    let version = |rel: &str| -> String {
        rel.rsplit('/').next().unwrap_or(rel).chars().take_while(char::is_ascii_digit).collect()
    };
    let mut out = Vec::new();
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for m in migrations {
        let name = m.rel.rsplit('/').next().unwrap_or(m.rel);
        let v = version(m.rel);
        if v.is_empty() || !name[v.len()..].starts_with('_') {
            out.extend(rules.finding(Class::UnversionedFile, m.rel, 1, format!("{} has no leading version", m.rel)));
        } else {
            if let Some(first) = seen.insert(v.clone(), m.rel) {
                out.extend(rules.finding(
                    Class::DuplicateVersion,
                    m.rel,
                    1,
                    format!("{} and {first} share version {v}", m.rel),
                ));
            }
            if !rollbacks.iter().any(|r| version(r.rel) == v) {
                out.extend(rules.finding(
                    Class::MissingRollback,
                    m.rel,
                    1,
                    format!("{} has no rollback script in supabase/migrations.backup/", m.rel),
                ));
            }
        }
        out.extend(file(m, rules));
    }
    for r in rollbacks {
        if !seen.contains_key(&version(r.rel)) {
            out.extend(rules.finding(
                Class::OrphanRollback,
                r.rel,
                1,
                format!("{} rolls back no migration in the tree", r.rel),
            ));
        }
        out.extend(file(r, rules));
    }
    out
}

/// The rules of one file: encoding, meta-commands, then each statement.
pub fn file(f: &SqlFile, rules: &Rules) -> Vec<Finding> {
    match std::str::from_utf8(f.bytes) {
        Ok(text) => statements(f.rel, &Script::lex(text), rules),
        Err(e) => {
            let line = f.bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
            let message = format!("{} is not UTF-8 (byte {} is not valid UTF-8)", f.rel, e.valid_up_to());
            rules.finding(Class::NotUtf8, f.rel, line, message).into_iter().collect()
        }
    }
}

/// The statement rules over one lexed file.
pub fn statements(file: &str, script: &Script, rules: &Rules) -> Vec<Finding> {
    let mut out = Vec::new();
    for (line, command) in &script.meta_commands {
        out.extend(rules.finding(Class::PsqlMetaCommand, file, *line, format!("the psql meta-command `{command}`")));
    }
    let lines: Vec<&str> = script.text.lines().collect();
    let plain: Vec<String> = script.statements.iter().map(|s| script.plain(s)).collect();
    let enabled: Vec<String> = plain.iter().filter_map(|p| rls_enabled_table(p)).collect();
    for (s, plain) in script.statements.iter().zip(&plain) {
        let allowed = |rule: Class| {
            let from = s.line.saturating_sub(2);
            lines[from.min(lines.len())..s.end_line.min(lines.len())].iter().any(|l| {
                l.split_once("lint:allow")
                    .is_some_and(|(_, rest)| rest.split([',', ' ']).any(|r| r == rule.as_str() || r == "all"))
            })
        };
        let mut push = |rule: Class, message: String| {
            if !allowed(rule) {
                out.extend(rules.finding(rule, file, s.line, message));
            }
        };
        let w: Vec<&str> = s.words.iter().map(String::as_str).collect();
        let first_line = plain.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
        if let Some(reason) = sql::non_transactional(s) {
            push(Class::NonTransactional, format!("{reason} cannot run inside a transaction block: {first_line}"));
        }
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
            let offers = ["TABLE", "INDEX", "SCHEMA", "SEQUENCE", "EXTENSION"].contains(&kind)
                || (materialized && kind == "VIEW");
            let guarded = w.iter().take(7).any(|x| *x == "EXISTS");
            if offers && !guarded && !temp && !s.concurrently {
                push(Class::UnguardedCreate, format!("CREATE {kind} without IF NOT EXISTS: {first_line}"));
            }
            if kind == "TABLE" && !temp {
                if let Some((schema, name)) = created_table(plain) {
                    if rules.exposed.contains(&schema) && !enabled.contains(&format!("{schema}.{name}")) {
                        push(Class::RlsMissing, format!("table {schema}.{name} is created in an exposed schema without ENABLE ROW LEVEL SECURITY in this migration"));
                    }
                }
            }
            let upper = plain.to_ascii_uppercase();
            let squashed: String = upper.split_whitespace().collect();
            if w.contains(&"FUNCTION") && squashed.contains("SECURITYDEFINER") && !squashed.contains("SETSEARCH_PATH") {
                push(
                    Class::SecurityDefinerSearchPath,
                    format!("a SECURITY DEFINER function without SET search_path: {first_line}"),
                );
            }
        }
        if w.first() == Some(&"DROP") && !w.iter().take(5).any(|x| *x == "EXISTS") {
            push(Class::UnguardedDrop, format!("DROP without IF EXISTS: {first_line}"));
        }
        if w.first() == Some(&"ALTER") {
            let squashed = plain.to_ascii_uppercase().split_whitespace().collect::<Vec<_>>().join(" ");
            for target in ["DROP COLUMN", "DROP CONSTRAINT"] {
                if squashed.contains(target) && !squashed.contains(&format!("{target} IF EXISTS")) {
                    push(Class::UnguardedDrop, format!("{target} without IF EXISTS: {first_line}"));
                }
            }
        }
    }
    out
}

/// A table name part as Postgres folds it: unquoted lower-cased, quoted kept.
fn fold(part: &str) -> String {
    match part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => part.to_ascii_lowercase(),
    }
}

/// `schema.table` (folded) from the text after a table keyword: `name`, `schema.name`, quoted.
fn qualified_name(after: &str) -> Option<(String, String)> {
    let after = after.trim_start();
    let mut parts = Vec::new();
    let mut rest = after;
    loop {
        let len = if let Some(quoted) = rest.strip_prefix('"') {
            quoted.find('"').map(|n| n + 2)?
        } else {
            rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$')).unwrap_or(rest.len())
        };
        if len == 0 {
            break;
        }
        parts.push(fold(&rest[..len]));
        rest = rest[len..].trim_start();
        match rest.strip_prefix('.') {
            Some(more) => rest = more.trim_start(),
            None => break,
        }
    }
    match parts.as_slice() {
        [name] => Some(("public".into(), name.clone())),
        [schema, name] => Some((schema.clone(), name.clone())),
        _ => None,
    }
}

/// Skip the leading words of `plain` (case-insensitive) and any of `optional` right after them.
fn after_words<'a>(plain: &'a str, words: &[&str], optional: &[&[&str]]) -> Option<&'a str> {
    let mut rest = plain.trim_start();
    let take = |word: &str, rest: &mut &'a str| -> bool {
        let r = rest.trim_start();
        let ok = r.len() >= word.len()
            && r[..word.len()].eq_ignore_ascii_case(word)
            && r[word.len()..].starts_with(|c: char| c.is_whitespace() || c == '"' || c == '(');
        if ok {
            *rest = r[word.len()..].trim_start();
        }
        ok
    };
    for word in words {
        if !take(word, &mut rest) {
            return None;
        }
    }
    for group in optional {
        let mut probe = rest;
        if group.iter().all(|w| take(w, &mut probe)) {
            rest = probe;
        }
    }
    Some(rest)
}

/// The table a CREATE TABLE creates.
fn created_table(plain: &str) -> Option<(String, String)> {
    let upper = plain.to_ascii_uppercase();
    let at = upper.find("TABLE")?;
    let after = after_words(&plain[at..], &["table"], &[&["if", "not", "exists"]])?;
    qualified_name(after)
}

/// `schema.table` of an `alter table ... enable row level security`.
fn rls_enabled_table(plain: &str) -> Option<String> {
    let after = after_words(plain, &["alter", "table"], &[&["if", "exists"], &["only"]])?;
    let (schema, name) = qualified_name(after)?;
    let squashed = plain.to_ascii_lowercase().split_whitespace().collect::<Vec<_>>().join(" ");
    squashed.contains("enable row level security").then(|| format!("{schema}.{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::config::Config;

    fn lint(text: &str) -> Vec<(&'static str, u32)> {
        let rules = Rules::from_config(&[]).unwrap();
        statements("m.sql", &Script::lex(text), &rules)
            .into_iter()
            .map(|f| (f.class.as_str(), f.line.unwrap()))
            .collect()
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
            vec![]
        );
        assert_eq!(lint("\\i other.sql\nselect 1;\n"), vec![("psql_meta_command", 1)]);
    }

    #[test]
    fn comments_and_quotes_do_not_hide_an_enabled_table() {
        let text = "create table if not exists public.\"Docs\" (id int);\n-- turn it on\nalter table public.\"Docs\"\n  enable row level security;\n";
        assert_eq!(lint(text), vec![]);
        let bom = "\u{feff}create table if not exists public.t (id int);\n";
        assert_eq!(lint(bom), vec![("rls_missing", 1)], "a byte order mark hides nothing");
    }

    #[test]
    fn opt_outs_and_severities() {
        assert_eq!(lint("-- lint:allow unguarded_create, rls_missing\ncreate table t (id int);\n"), vec![]);
        assert_eq!(lint("drop table t; -- lint:allow unguarded_drop\n"), vec![]);
        let config = Config::parse("[lint]\nunguarded_drop = \"off\"\n").unwrap();
        let rules = Rules::from_config(&config.lint).unwrap();
        assert!(statements("m.sql", &Script::lex("drop table t;\n"), &rules).is_empty());
        let config = Config::parse("[lint]\nnonsense = \"off\"\n").unwrap();
        assert!(
            format!("{:#}", Rules::from_config(&config.lint).unwrap_err()).contains("[lint] nonsense is not a rule")
        );
        let config = Config::parse("[lint]\npsql_meta_command = \"off\"\n").unwrap();
        assert!(format!("{:#}", Rules::from_config(&config.lint).unwrap_err()).contains("cannot be lowered"));
    }

    #[test]
    fn a_file_that_is_not_utf8_is_a_finding() {
        let rules = Rules::from_config(&[]).unwrap();
        let found = file(&SqlFile { rel: "m.sql", bytes: b"select 1;\nselect '\xff';\n" }, &rules);
        assert_eq!((found[0].class, found[0].line), (Class::NotUtf8, Some(2)));
    }
}
