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

mod locks;
mod names;
use names::{created_table, rls_enabled_table};

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
    (Class::IndexNotConcurrent, Severity::Warning, "CREATE INDEX CONCURRENTLY, in a migration of its own (it cannot run in a transaction; if it fails it leaves an INVALID index to drop)"),
    (Class::DropIndexNotConcurrent, Severity::Warning, "DROP INDEX CONCURRENTLY, in a migration of its own"),
    (Class::ColumnTypeRewrite, Severity::Warning, "add a new column of the new type, backfill it in batches, move reads and writes to it, then drop the old one (a widening to text or a longer varchar needs no rewrite)"),
    (Class::VolatileDefault, Severity::Warning, "add the column nullable without a default, SET DEFAULT for new rows, then backfill existing rows in batches"),
    (Class::SetNotNullScan, Severity::Warning, "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT in a later migration, then SET NOT NULL (no scan) and drop the CHECK"),
    (Class::ConstraintNotValid, Severity::Warning, "add it NOT VALID, then VALIDATE CONSTRAINT in a later migration (SHARE UPDATE EXCLUSIVE: reads and writes go on)"),
    (Class::UniqueWithoutIndex, Severity::Warning, "CREATE UNIQUE INDEX CONCURRENTLY in a migration of its own, then ADD CONSTRAINT ... UNIQUE (or PRIMARY KEY) USING INDEX"),
    (Class::RefreshNotConcurrent, Severity::Warning, "REFRESH MATERIALIZED VIEW CONCURRENTLY (it needs a unique index on the view over all its rows)"),
    (Class::TableRewriteCommand, Severity::Warning, "pg_repack for a table, REINDEX ... CONCURRENTLY for an index, outside a migration"),
    (Class::BreakingChange, Severity::Warning, "expand and contract: add the new name or column, move the clients, drop the old in a later release (a view can keep the old name meanwhile)"),
    (Class::LockTimeoutMissing, Severity::Warning, "start the file with `set lock_timeout = '5s';` so it gives up instead of stalling the table, and retry it"),
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
    let rollback = file.contains("migrations.backup/");
    let mut seen = locks::Seen::default();
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
        let upper = format!(" {} ", plain.to_ascii_uppercase().split_whitespace().collect::<Vec<_>>().join(" "));
        for (rule, message) in locks::check(plain, upper.trim_start(), &mut seen, rollback) {
            push(rule, format!("{message}: {first_line}"));
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

#[cfg(test)]
mod tests;
