//! The lint rules for what a statement locks, and for how long, on a table that already exists:
//! what can be known without a database, at parity with squawk, eugene and strong_migrations.
//! Each message names PostgreSQL 15's lock and what waits behind it; each hint the safe form. A
//! table created earlier in the same file is nobody else's yet, so nothing is said about it.

use super::names::{after_words, qualified_name};
use crate::text::findings::Class;

/// What the rules know of the file so far.
#[derive(Default)]
pub struct Seen {
    /// Tables and materialized views the file created (`schema.name`).
    pub created: Vec<String>,
    /// Tables on which the file validated a constraint (a later SET NOT NULL needs no scan).
    pub validated: Vec<String>,
    /// The file set `lock_timeout`.
    pub lock_timeout: bool,
    /// `lock_timeout_missing` was said once for the file.
    pub said_timeout: bool,
}

/// Functions whose value differs per row: a column default of one rewrites the table.
const VOLATILE: [&str; 8] = [
    "GEN_RANDOM_UUID(",
    "UUID_GENERATE_V4(",
    "UUID_GENERATE_V1(",
    "RANDOM(",
    "CLOCK_TIMESTAMP(",
    "TIMEOFDAY(",
    "NEXTVAL(",
    "TXID_CURRENT(",
];

fn name_after(plain: &str, words: &[&str], optional: &[&[&str]]) -> Option<String> {
    let (schema, name) = qualified_name(after_words(plain, words, optional)?)?;
    Some(format!("{schema}.{name}"))
}

/// The rules of one statement: `(rule, message)` pairs. `upper` is the statement without its
/// comments, upper-cased, its blanks squashed to one space; `rollback` says the file undoes a
/// migration (dropping what it made is its job, not a breaking change).
pub fn check(plain: &str, upper: &str, seen: &mut Seen, rollback: bool) -> Vec<(Class, String)> {
    let mut out = Vec::new();
    let word = |i: usize| upper.split(' ').nth(i).unwrap_or_default();
    if word(0) == "SET" && upper.contains("LOCK_TIMEOUT") {
        seen.lock_timeout = true;
    }
    let created = |t: &str, seen: &Seen| seen.created.iter().any(|c| c == t);
    if word(0) == "CREATE" {
        let made = name_after(plain, &["create", "table"], &[&["if", "not", "exists"]])
            .or_else(|| name_after(plain, &["create", "unlogged", "table"], &[&["if", "not", "exists"]]))
            .or_else(|| name_after(plain, &["create", "materialized", "view"], &[&["if", "not", "exists"]]));
        seen.created.extend(made);
    }
    if let Some(found) = commands(plain, upper, seen, rollback) {
        out.extend(found);
        return out;
    }
    if word(0) != "ALTER" || word(1) != "TABLE" {
        return out;
    }
    let Some(table) = name_after(plain, &["alter", "table"], &[&["if", "exists"], &["only"]]) else { return out };
    if created(&table, seen) {
        return out;
    }
    out.extend(alter_table(upper, &table, seen, rollback));
    out
}

/// The commands other than ALTER TABLE that lock: index builds and drops, refreshes, rewrites,
/// dropped tables. `None` for any other statement.
fn commands(plain: &str, upper: &str, seen: &mut Seen, rollback: bool) -> Option<Vec<(Class, String)>> {
    let mut out = Vec::new();
    let word = |i: usize| upper.split(' ').nth(i).unwrap_or_default();
    let created = |t: &str, seen: &Seen| seen.created.iter().any(|c| c == t);
    // CREATE [UNIQUE] INDEX [name] ON [ONLY] table
    if word(0) == "CREATE" && (word(1) == "INDEX" || (word(1) == "UNIQUE" && word(2) == "INDEX")) {
        let on = plain.to_ascii_lowercase().find(" on ").map(|at| &plain[at + 4..]);
        let table = on.and_then(|rest| {
            let rest = after_words(rest, &["only"], &[]).unwrap_or(rest);
            qualified_name(rest).map(|(s, n)| format!("{s}.{n}"))
        });
        if let Some(table) = table.filter(|t| !created(t, seen)) {
            if !upper.contains(" CONCURRENTLY ") {
                out.push((
                    Class::IndexNotConcurrent,
                    format!(
                        "CREATE INDEX takes SHARE on {table} while it builds the index: writes wait (PostgreSQL 15)"
                    ),
                ));
            }
        }
        return Some(out);
    }
    if word(0) == "DROP" && word(1) == "INDEX" && !upper.contains(" CONCURRENTLY ") {
        out.push((
            Class::DropIndexNotConcurrent,
            "DROP INDEX takes ACCESS EXCLUSIVE on the index's table: reads and writes wait (PostgreSQL 15)".to_string(),
        ));
        timeout(&mut out, seen, "DROP INDEX", "the index's table");
        return Some(out);
    }
    if word(0) == "REFRESH" && word(1) == "MATERIALIZED" && !upper.contains(" CONCURRENTLY ") {
        let view = name_after(plain, &["refresh", "materialized", "view"], &[]).unwrap_or_default();
        if !created(&view, seen) {
            out.push((
                Class::RefreshNotConcurrent,
                format!(
                    "REFRESH MATERIALIZED VIEW takes ACCESS EXCLUSIVE on {view} while it runs its query: reads wait (PostgreSQL 15)"
                ),
            ));
        }
        return Some(out);
    }
    let rewrite_command = match (word(0), word(1)) {
        ("VACUUM", _) if upper.contains("FULL") => Some("VACUUM FULL"),
        ("CLUSTER", _) => Some("CLUSTER"),
        ("REINDEX", _) if !upper.contains("CONCURRENTLY") => Some("REINDEX"),
        _ => None,
    };
    if let Some(command) = rewrite_command {
        out.push((
            Class::TableRewriteCommand,
            format!(
                "{command} takes ACCESS EXCLUSIVE and rewrites what it names: reads and writes wait (PostgreSQL 15)"
            ),
        ));
        return Some(out);
    }
    if word(0) == "DROP" && word(1) == "TABLE" && !rollback {
        let table = name_after(plain, &["drop", "table"], &[&["if", "exists"]]).unwrap_or_default();
        if !created(&table, seen) {
            out.push((Class::BreakingChange, format!("DROP TABLE {table}: clients still using it fail")));
        }
        return Some(out);
    }
    None
}

/// What an ALTER TABLE on an existing `table` locks, rewrites or scans, and what it breaks.
fn alter_table(upper: &str, table: &str, seen: &mut Seen, rollback: bool) -> Vec<(Class, String)> {
    let mut out = Vec::new();
    if upper.contains(" VALIDATE CONSTRAINT ") {
        seen.validated.push(table.to_string());
    }
    let mut strongest_is_exclusive = false;
    if let Some(at) = upper.find(" TYPE ").filter(|_| upper.contains(" ALTER COLUMN ") || upper.contains(" ALTER ")) {
        let new_type = upper[at + 6..].trim_start();
        let coercible = ["TEXT", "VARCHAR", "CHARACTER VARYING", "CITEXT"].iter().any(|t| new_type.starts_with(t));
        strongest_is_exclusive = true;
        if !coercible {
            out.push((
                Class::ColumnTypeRewrite,
                format!(
                    "ALTER COLUMN ... TYPE takes ACCESS EXCLUSIVE on {table} and rewrites it and its indexes: reads and writes \
                     wait (PostgreSQL 15)"
                ),
            ));
        }
    }
    if upper.contains(" ADD ") && !upper.contains(" ADD CONSTRAINT ") {
        let volatile = VOLATILE
            .iter()
            .find(|f| upper.contains(&format!("DEFAULT {f}")) || upper.contains(&format!("DEFAULT ({f}")));
        let generated = upper.contains(" GENERATED ALWAYS AS (") && upper.contains(" STORED");
        let serial = [" SERIAL", " BIGSERIAL", " SMALLSERIAL"].iter().any(|t| upper.contains(t));
        if let Some(what) = volatile
            .map(|f| format!("a volatile default ({})", f.to_ascii_lowercase().trim_end_matches('(')))
            .or(generated.then(|| "GENERATED ... STORED".to_string()))
            .or(serial.then(|| "a serial type".to_string()))
        {
            out.push((
                Class::VolatileDefault,
                format!(
                    "ADD COLUMN with {what} takes ACCESS EXCLUSIVE on {table} and rewrites it: reads and writes wait \
                     (PostgreSQL 15)"
                ),
            ));
        }
        strongest_is_exclusive = true;
    }
    if upper.contains(" SET NOT NULL") && !seen.validated.iter().any(|v| v == table) {
        out.push((
            Class::SetNotNullScan,
            format!(
                "SET NOT NULL takes ACCESS EXCLUSIVE on {table} and scans it: reads and writes wait (PostgreSQL 15)"
            ),
        ));
    }
    let not_valid = upper.contains(" NOT VALID");
    if (upper.contains(" FOREIGN KEY ") || (upper.contains(" ADD CONSTRAINT ") && upper.contains(" REFERENCES ")))
        && !not_valid
    {
        out.push((
            Class::ConstraintNotValid,
            format!(
                "ADD FOREIGN KEY takes SHARE ROW EXCLUSIVE on {table} and the table it references and scans {table}: \
                 writes wait on both (PostgreSQL 15)"
            ),
        ));
    }
    if upper.contains(" ADD ") && upper.contains(" CHECK ") && !not_valid && upper.contains(" CONSTRAINT ") {
        out.push((
            Class::ConstraintNotValid,
            format!("ADD CHECK takes ACCESS EXCLUSIVE on {table} and scans it: reads and writes wait (PostgreSQL 15)"),
        ));
    }
    let unique = upper.contains(" ADD ") && (upper.contains(" UNIQUE") || upper.contains(" PRIMARY KEY"));
    if unique && !upper.contains(" USING INDEX") {
        out.push((
            Class::UniqueWithoutIndex,
            format!(
                "ADD UNIQUE or PRIMARY KEY takes ACCESS EXCLUSIVE on {table} while it builds the index: reads and writes \
                 wait (PostgreSQL 15)"
            ),
        ));
    }
    if !rollback {
        if upper.contains(" RENAME ") {
            out.push((Class::BreakingChange, format!("RENAME on {table}: clients still using the old name fail")));
        } else if upper.contains(" DROP COLUMN ") {
            out.push((Class::BreakingChange, format!("DROP COLUMN on {table}: clients still using the column fail")));
        }
    }
    // Every ALTER TABLE but these takes ACCESS EXCLUSIVE (tablecmds.c AlterTableGetLockLevel).
    let weaker = [
        "VALIDATE CONSTRAINT",
        "SET STATISTICS",
        "ENABLE TRIGGER",
        "DISABLE TRIGGER",
        "ATTACH PARTITION",
        "CLUSTER ON",
    ];
    if strongest_is_exclusive || !weaker.iter().any(|w| upper.contains(w)) {
        timeout(&mut out, seen, "ALTER TABLE", table);
    }
    out
}

/// `lock_timeout_missing`, once per file, at its first ACCESS EXCLUSIVE on an existing table.
fn timeout(out: &mut Vec<(Class, String)>, seen: &mut Seen, what: &str, on: &str) {
    if seen.lock_timeout || seen.said_timeout {
        return;
    }
    seen.said_timeout = true;
    out.push((
        Class::LockTimeoutMissing,
        format!(
            "{what} takes ACCESS EXCLUSIVE on {on} and the file sets no lock_timeout: on production it waits behind any \
             long transaction, and every read and write of {on} waits behind it"
        ),
    ));
}
