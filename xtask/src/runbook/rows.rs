//! Rows a rollback loses: for each table that existed before the rehearsal's apply and that the
//! rehearsed files name, its row count (exact up to [`COUNT_BOUND`], else "more than") and, for a
//! table of up to [`FINGERPRINT_BOUND`] rows, an order-independent fingerprint of its rows (the sum
//! of each row's md5, cut to 60 bits). Read in one query before the apply and again after the
//! rollbacks; fewer rows, or the same count with other rows, is `data_lost` on the rollback that
//! names the table. The bounds keep a large staging table from turning the count into minutes:
//! a count reads at most a million rows, a fingerprint a hundred thousand.

use std::collections::BTreeMap;

use crate::prepare::tree::Migration;
use crate::text::findings::{Class, Finding, Severity};

/// Rows counted exactly; past it a table has "more than" this many.
pub const COUNT_BOUND: u64 = 1_000_000;
/// Tables up to this many rows (by the planner's estimate, then exactly) are fingerprinted.
pub const FINGERPRINT_BOUND: u64 = 100_000;

/// One table's rows as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rows {
    /// Exact, or [`COUNT_BOUND`] + 1 for "more than".
    pub count: u64,
    pub fingerprint: Option<String>,
}

impl Rows {
    fn shown(&self) -> String {
        if self.count > COUNT_BOUND {
            format!("more than {COUNT_BOUND}")
        } else {
            self.count.to_string()
        }
    }
}

/// The words of `texts` that could name a table (lower-cased identifiers).
fn words(texts: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for text in texts {
        let lower = text.to_ascii_lowercase();
        for word in lower.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$')) {
            if word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                out.push(word.to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `names` as an SQL `text[]`.
fn literal(names: &[String]) -> String {
    let list: Vec<String> = names.iter().map(|n| format!("'{}'", n.replace('\'', "''"))).collect();
    format!("array[{}]::text[]", if list.is_empty() { "''".to_string() } else { list.join(", ") })
}

/// The query: every readable table outside the system schemas whose name is in `names` (an SQL
/// `text[]`), one JSON line each: `[name, count, fingerprint or null]`.
fn query(names: &str) -> String {
    format!(
        "select pg_catalog.json_build_array(format('%I.%I', n.nspname, c.relname), \
         (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from (select 1 from %I.%I limit {count}) s', \
         n.nspname, c.relname), false, true, '')))[1]::text, \
         case when c.reltuples <= {fp} then (xpath('/row/f/text()', query_to_xml(format('select case when count(*) > {fp} \
         then null else coalesce(sum((''x'' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0) end as f \
         from (select * from %I.%I limit {fp1}) t', n.nspname, c.relname), true, true, '')))[1]::text end)::text \
         from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
         where c.relkind in ('r', 'p') and not c.relispartition \
         and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_' \
         and not exists (select 1 from pg_catalog.pg_depend d where d.objid = c.oid and d.deptype = 'e') \
         and has_table_privilege(c.oid, 'select') and lower(c.relname) = any({names}) \
         order by 1",
        count = COUNT_BOUND + 1,
        fp = FINGERPRINT_BOUND,
        fp1 = FINGERPRINT_BOUND + 1,
    )
}

/// The words of a migration and its rollback.
fn words_of(m: &Migration) -> Vec<String> {
    let texts: Vec<&str> = std::iter::once(m.sql.script.text.as_str())
        .chain(m.rollback.as_ref().map(|r| r.script.text.as_str()))
        .collect();
    words(&texts)
}

/// The query for the tables the `migrations` (and their rollbacks) name; `None` when they name none.
pub fn query_for(migrations: &[&Migration]) -> Option<String> {
    let mut names: Vec<String> = migrations.iter().flat_map(|m| words_of(m)).collect();
    names.sort();
    names.dedup();
    (!names.is_empty()).then(|| query(&literal(&names)))
}

/// The query for the tables named by those of the `migrations` whose versions the target's
/// history does not list (read by the server in the same statement): before step 3 knows what is
/// pending, in its round trip.
pub fn query_for_unapplied(migrations: &[Migration]) -> Option<String> {
    let rows: Vec<String> = migrations
        .iter()
        .filter(|m| m.version.chars().all(|c| c.is_ascii_digit()))
        .map(|m| format!("('{}', {})", m.version, literal(&words_of(m))))
        .collect();
    if rows.is_empty() {
        return None;
    }
    let names = format!(
        "array(select distinct w from (values {}) p(version, words) cross join unnest(p.words) w \
         where p.version <> all({}))",
        rows.join(", "),
        crate::runbook::history::APPLIED_SQL
    );
    Some(query(&names))
}

/// The rows of each table in the output of a [`query_for`] query.
pub fn parse(lines: &[String]) -> BTreeMap<String, Rows> {
    let mut out = BTreeMap::new();
    for line in lines {
        let Ok((table, count, fingerprint)) = serde_json::from_str::<(String, Option<String>, Option<String>)>(line)
        else {
            continue;
        };
        let Some(Ok(count)) = count.map(|c| c.trim().parse()) else { continue };
        let fingerprint = fingerprint.map(|f| f.trim().to_string()).filter(|f| !f.is_empty());
        out.insert(table, Rows { count, fingerprint });
    }
    out
}

/// `data_lost` for each table with fewer rows after the rollbacks than before the apply, or as
/// many but other rows; on the rollback (of `rolled`, in version order) that names the table.
pub fn lost(before: &BTreeMap<String, Rows>, after: &BTreeMap<String, Rows>, rolled: &[&Migration]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (table, was) in before {
        let Some(now) = after.get(table) else { continue }; // gone: the schema check says so
        let fewer = now.count < was.count;
        let other = !fewer
            && now.count == was.count
            && matches!((&was.fingerprint, &now.fingerprint), (Some(a), Some(b)) if a != b);
        if !fewer && !other {
            continue;
        }
        let name = table.rsplit('.').next().unwrap_or(table).trim_matches('"').to_ascii_lowercase();
        let names_it = |text: &str| words(&[text]).contains(&name);
        let owner = rolled
            .iter()
            .find(|m| m.rollback.as_ref().is_some_and(|r| names_it(&r.script.text)))
            .or_else(|| rolled.iter().find(|m| names_it(&m.sql.script.text)));
        let (file, line, version) = match owner {
            Some(m) => {
                let rollback = m.rollback.as_ref();
                let line = rollback.and_then(|r| r.script.text.lines().position(|l| names_it(l)).map(|i| i as u32 + 1));
                (rollback.map(|r| r.rel.clone()), line, m.version.clone())
            }
            None => (None, None, "the rehearsed migrations".to_string()),
        };
        let what = if fewer {
            format!("had {} rows before {version} applied and {} after its rollback", was.shown(), now.shown())
        } else {
            format!(
                "had {} rows before {version} applied and as many after its rollback, but not the same rows",
                was.shown()
            )
        };
        findings.push(Finding {
            class: Class::DataLost,
            severity: Severity::Error,
            sqlstate: None,
            message: format!("{table} {what}"),
            hint: format!(
                "make {} keep the rows it found: undo the migration's change in place (ALTER ... instead of DROP and \
                 CREATE), or put back what the migration moved or deleted (keep it in a backup table the migration \
                 fills); rehearse again",
                file.as_deref().unwrap_or("the rollback")
            ),
            file,
            line,
            log: None,
        });
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(count: u64, fingerprint: Option<&str>) -> Rows {
        Rows { count, fingerprint: fingerprint.map(str::to_string) }
    }

    #[test]
    fn fewer_or_other_rows_are_lost_and_more_are_not() {
        let before: BTreeMap<String, Rows> = [
            ("public.a".to_string(), rows(1000, Some("1"))),
            ("public.b".to_string(), rows(10, Some("2"))),
            ("public.c".to_string(), rows(10, Some("3"))),
            ("public.d".to_string(), rows(COUNT_BOUND + 1, None)),
        ]
        .into();
        let after: BTreeMap<String, Rows> = [
            ("public.a".to_string(), rows(0, Some("0"))),
            ("public.b".to_string(), rows(10, Some("9"))),
            ("public.c".to_string(), rows(11, Some("4"))),
            ("public.d".to_string(), rows(5, Some("5"))),
        ]
        .into();
        let found = lost(&before, &after, &[]);
        let messages: Vec<&str> = found.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "public.a had 1000 rows before the rehearsed migrations applied and 0 after its rollback",
                "public.b had 10 rows before the rehearsed migrations applied and as many after its rollback, but not the same rows",
                "public.d had more than 1000000 rows before the rehearsed migrations applied and 5 after its rollback",
            ]
        );
        assert_eq!(
            words(&["drop table public.Accounts; create table \"x\" (id int)"]),
            ["accounts", "create", "drop", "id", "int", "public", "table", "x"]
        );
    }
}
