//! Drift: the target's catalog against its own history replayed on a throwaway cluster, object by
//! object. Both sides are read with the same snapshot query ([`super::snapshot::records`]); each
//! record is keyed by its kind and object (a column by its table and name, a policy by its table
//! and name, a function by its signature), and a key found on one side only, or with other
//! records on each side, is a difference.
//!
//! Compared: schemas, tables and partitions (RLS enabled and forced, owner, grants, options),
//! columns (type, default, nullability, identity, generated, grants), constraints, indexes, views
//! and materialized views, functions and procedures (whole definitions: body, SECURITY DEFINER,
//! settings, volatility), triggers, policies, types and enums, sequences, extensions (and
//! version), publications and their members, comments, default privileges, rules, statistics and
//! event triggers. Supabase's managed schemas are left out, except what users put into them
//! (policies on `storage.objects`, triggers on `auth.users`); roles and role settings are left
//! out (the platform makes them, not migrations). An extension only the target has is named when
//! it lives outside the managed schemas (Supabase pre-installs its own into `extensions`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::text::sql::ident::read_path;

/// The schemas Supabase manages: their own objects are not the project's history.
pub const MANAGED: &[&str] = &[
    "auth",
    "storage",
    "realtime",
    "_realtime",
    "supabase_functions",
    "supabase_migrations",
    "extensions",
    "graphql",
    "graphql_public",
    "pgsodium",
    "pgsodium_masks",
    "vault",
    "net",
    "cron",
    "pgbouncer",
    "_analytics",
    "pgtle",
    "tests",
];

/// One difference between the target and its history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub kind: String,
    pub object: String,
    /// `extra_on_target`, `missing_on_target` or `differs`.
    pub change: &'static str,
    pub detail: String,
    /// The table the object belongs to, for grouping (itself for a table).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The records each side holds for it (none on the side that lacks it), for
    /// [`super::catch_up`].
    #[serde(skip)]
    pub on_target: Vec<String>,
    #[serde(skip)]
    pub in_history: Vec<String>,
}

/// A record's key: kind, object, the table it belongs to, and the schema that decides whether
/// it is managed (`None`: never managed, as for a policy on a managed table).
struct Key {
    kind: String,
    object: String,
    table: Option<String>,
    schema: Option<String>,
}

fn schema_of(name: &str) -> String {
    name.split('.').next().unwrap_or(name).trim_matches('"').to_string()
}

/// The object after `word` in `record`'s first line.
fn after<'a>(record: &'a str, word: &str) -> Option<&'a str> {
    let first = record.lines().next().unwrap_or(record);
    let mut words = first.split_whitespace();
    words.find(|w| *w == word)?;
    words.next().map(|w| w.trim_end_matches(':'))
}

fn key(record: &str) -> Option<Key> {
    let first = record.lines().next().unwrap_or(record);
    let mut words = first.split_whitespace();
    let kind = words.next()?;
    // A name as printed, a quoted one with its spaces (`"Users can read own"`).
    let name = first
        .split_once(' ')
        .and_then(|(_, rest)| read_path(rest))
        .map_or_else(|| words.next().unwrap_or_default().trim_end_matches(':').to_string(), |(name, _)| name);
    let name = match kind {
        // A signature has spaces between its arguments; an event trigger's name comes after `trigger`.
        "function" => first["function ".len()..].split(" owner=").next().unwrap_or_default().to_string(),
        "event" => first.strip_prefix("event trigger ").and_then(read_path).map_or(name, |(name, _)| name),
        _ => name,
    };
    let k = |kind: &str, object: String, table: Option<String>, schema: Option<String>| {
        Some(Key { kind: kind.to_string(), object, table, schema })
    };
    match kind {
        "role" | "setting" => None,
        "schema" | "extension" | "event" => k(kind, name.clone(), None, Some(name)),
        "relation" => {
            let what = match after(record, "kind=").unwrap_or_default() {
                _ if first.contains(" kind=v ") => "view",
                _ if first.contains(" kind=m ") => "materialized_view",
                _ if first.contains(" kind=S ") => "sequence",
                _ if first.contains(" kind=c ") => "type",
                _ => "table",
            };
            k(what, name.clone(), Some(name.clone()), Some(schema_of(&name)))
        }
        "column" => {
            let table = name.rsplit_once('.').map(|(t, _)| t.to_string());
            k("column", name.clone(), table, Some(schema_of(&name)))
        }
        "constraint" => {
            let table = after(record, "on")?.to_string();
            let own = name.rsplit('.').next().unwrap_or(&name).to_string();
            k("constraint", format!("{table}.{own}"), Some(table.clone()), Some(schema_of(&table)))
        }
        "index" => {
            let own = after(record, "INDEX").filter(|w| *w != "CONCURRENTLY")?;
            let own = if own == "IF" { after(record, "EXISTS")? } else { own };
            let table = after(record, "ON").filter(|w| *w != "ONLY").or_else(|| after(record, "ONLY"))?.to_string();
            k("index", format!("{}.{own}", schema_of(&table)), Some(table.clone()), Some(schema_of(&table)))
        }
        "trigger" => {
            let own = after(record, "TRIGGER")?;
            let table = after(record, "ON")?.to_string();
            k("trigger", format!("{table}.{own}"), Some(table), None)
        }
        "policy" | "rule" => {
            let table = after(record, "on")?.to_string();
            let schema = (kind == "rule").then(|| schema_of(&table));
            k(kind, format!("{table}.{name}"), Some(table), schema)
        }
        "view" => k("view_definition", name.clone(), Some(name.clone()), Some(schema_of(&name))),
        "function" => k("function", name.clone(), None, Some(schema_of(&name))),
        "type" | "sequence" => k(kind, name.clone(), None, Some(schema_of(&name))),
        "comment" => {
            let on = first.strip_prefix("comment on ")?.split(": ").next()?.to_string();
            let target = on.split_whitespace().last().unwrap_or_default().to_string();
            k("comment", on, None, Some(schema_of(&target)))
        }
        "default" => {
            let schema = after(record, "privileges")
                .and_then(|_| first.split_whitespace().find_map(|w| w.strip_prefix("schema=")).map(str::to_string));
            let object = first.split(" acl=").next().unwrap_or(first).to_string();
            k("default_privileges", object, None, schema.filter(|s| s != "-"))
        }
        // A publication's own line, or one of its members: the whole line is the key.
        "publication" | "statistics" => k(kind, first.to_string(), None, None),
        _ => k(kind, first.to_string(), None, None),
    }
}

/// How a comparison names its two sides in a detail.
pub struct Sides {
    /// `on the target`, `in the history`.
    pub a: &'static str,
    pub b: &'static str,
    /// The diff's legend: `history (-) / target (+)`.
    pub legend: &'static str,
}

/// The target against its history.
pub const TARGET: Sides = Sides { a: "on the target", b: "in the history", legend: "history (-) / target (+)" };

/// The declarative schema against the migrations.
pub const DECLARED: Sides =
    Sides { a: "in supabase/schemas", b: "after the migrations", legend: "migrations (-) / supabase/schemas (+)" };

/// What the records of a key say that the other side's do not, in short.
fn detail(target: &[&str], history: &[&str], sides: &Sides) -> String {
    let show = |records: &[&str]| -> Vec<String> {
        records.iter().flat_map(|r| r.lines()).map(str::to_string).collect::<Vec<_>>()
    };
    let (t, h) = (show(target), show(history));
    let (ts, hs): (BTreeSet<&String>, BTreeSet<&String>) = (t.iter().collect(), h.iter().collect());
    // One-line records (columns, tables, policies): only the attributes that differ.
    if t.len() == 1 && h.len() == 1 {
        let attrs = |line: &str| -> BTreeMap<String, String> {
            line.split_whitespace()
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| {
                    let v = match v {
                        "t" => "true",
                        "f" => "false",
                        v => v,
                    };
                    (k.to_string(), v.to_string())
                })
                .collect()
        };
        let (a, b) = (attrs(&t[0]), attrs(&h[0]));
        let changed: Vec<String> = a
            .iter()
            .filter(|(k, v)| b.get(*k) != Some(*v))
            .map(|(k, v)| format!("{k}: {v} {}, {} {}", sides.a, b.get(k).map_or("-", String::as_str), sides.b))
            .collect();
        if !changed.is_empty() && t[0].split(": ").nth(1) == h[0].split(": ").nth(1) {
            return changed.join("; ");
        }
    }
    // Definitions: the lines only one side has, as a small diff.
    let mut out: Vec<String> = h.iter().filter(|l| !ts.contains(l)).map(|l| format!("- {}", l.trim())).collect();
    out.extend(t.iter().filter(|l| !hs.contains(l)).map(|l| format!("+ {}", l.trim())));
    let more = out.len().saturating_sub(8);
    out.truncate(8);
    if more > 0 {
        out.push(format!("… and {more} more line(s)"));
    }
    format!("{}: {}", sides.legend, out.join(" | "))
}

/// The differences between the `target`'s records and the `history`'s (the replay), leaving out
/// the managed schemas and `ignore`.
pub fn compare(target: &[String], history: &[String], ignore: &[String]) -> Vec<Difference> {
    compare_sides(target, history, ignore, &TARGET)
}

/// [`compare`] of any two sides, named in details as `sides` says (`extra_on_target`: only the
/// first side has it).
pub fn compare_sides(target: &[String], history: &[String], ignore: &[String], sides: &Sides) -> Vec<Difference> {
    let skip = |key: &Key| {
        key.schema.as_deref().is_some_and(|s| MANAGED.contains(&s) || ignore.iter().any(|i| i == s))
            || key.table.as_deref().is_some_and(|t| ignore.iter().any(|i| *i == schema_of(t)))
    };
    let side = |records: &[String]| -> BTreeMap<(String, String), (Option<String>, Vec<String>)> {
        let mut out: BTreeMap<(String, String), (Option<String>, Vec<String>)> = BTreeMap::new();
        for record in records {
            let Some(key) = key(record).filter(|k| !skip(k)) else { continue };
            let entry = out.entry((key.kind, key.object)).or_insert((key.table, Vec::new()));
            entry.1.push(record.clone());
        }
        out
    };
    let (t, h) = (side(target), side(history));
    let mut out = Vec::new();
    for ((kind, object), (table, records)) in &t {
        match h.get(&(kind.clone(), object.clone())) {
            None => {
                // Supabase pre-installs extensions into its own schemas.
                let managed_extension = kind == "extension"
                    && records.iter().any(|r| MANAGED.iter().any(|m| r.contains(&format!(" schema={m}"))));
                if !managed_extension {
                    out.push(Difference {
                        kind: kind.clone(),
                        object: object.clone(),
                        change: "extra_on_target",
                        detail: short(&refs(records)),
                        table: table.clone(),
                        on_target: records.clone(),
                        in_history: Vec::new(),
                    });
                }
            }
            Some((_, theirs)) if theirs != records => out.push(Difference {
                kind: kind.clone(),
                object: object.clone(),
                change: "differs",
                detail: detail(&refs(records), &refs(theirs), sides),
                table: table.clone(),
                on_target: records.clone(),
                in_history: theirs.clone(),
            }),
            Some(_) => {}
        }
    }
    for ((kind, object), (table, records)) in &h {
        if !t.contains_key(&(kind.clone(), object.clone())) {
            out.push(Difference {
                kind: kind.clone(),
                object: object.clone(),
                change: "missing_on_target",
                detail: short(&refs(records)),
                table: table.clone(),
                on_target: Vec::new(),
                in_history: records.clone(),
            });
        }
    }
    // A table (a view, a composite type) only one side has is one difference, not one per column.
    let whole: BTreeSet<(String, &'static str)> = out
        .iter()
        .filter(|d| matches!(d.kind.as_str(), "table" | "view" | "materialized_view" | "type") && d.change != "differs")
        .map(|d| (d.object.clone(), d.change))
        .collect();
    out.retain(|d| {
        d.table.as_ref() == Some(&d.object) || !d.table.as_ref().is_some_and(|t| whole.contains(&(t.clone(), d.change)))
    });
    out.sort_by(|a, b| (&a.table, &a.kind, &a.object).cmp(&(&b.table, &b.kind, &b.object)));
    out
}

/// The records as `&str`.
fn refs(records: &[String]) -> Vec<&str> {
    records.iter().map(String::as_str).collect()
}

/// A record in one line, cut short.
fn short(records: &[&str]) -> String {
    let one: String = records.iter().flat_map(|r| r.split_whitespace()).collect::<Vec<_>>().join(" ");
    if one.chars().count() > 200 {
        format!("{}…", one.chars().take(200).collect::<String>())
    } else {
        one
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_change_is_named_once_and_managed_schemas_are_left_out() {
        let history: Vec<String> = [
            "relation public.items kind=r owner=postgres rls=true force_rls=false persistence=p options=- acl=- partition_key=- replica_identity=d",
            "column public.items.id type=integer not_null=true default=- identity=- generated=- collation=- acl=- storage=p statistics=-1",
            "policy items_read on public.items command=r permissive=true roles={authenticated} using=true check=-",
            "relation auth.users kind=r owner=supabase_auth_admin rls=true force_rls=false persistence=p options=- acl=- partition_key=- replica_identity=d",
        ]
        .map(String::from)
        .into();
        let target: Vec<String> = [
            "relation public.items kind=r owner=postgres rls=false force_rls=false persistence=p options=- acl=- partition_key=- replica_identity=d",
            "column public.items.id type=integer not_null=true default=- identity=- generated=- collation=- acl=- storage=p statistics=-1",
            "column public.items.legacy_code type=text not_null=false default=- identity=- generated=- collation=- acl=- storage=x statistics=-1",
            "relation auth.users kind=r owner=supabase_auth_admin rls=false force_rls=false persistence=p options=- acl=- partition_key=- replica_identity=d",
            "extension pg_graphql version=1.5 schema=graphql",
        ]
        .map(String::from)
        .into();
        let found = compare(&target, &history, &[]);
        let shown: Vec<(&str, &str, &str)> =
            found.iter().map(|d| (d.kind.as_str(), d.object.as_str(), d.change)).collect();
        assert_eq!(
            shown,
            [
                ("column", "public.items.legacy_code", "extra_on_target"),
                ("policy", "public.items.items_read", "missing_on_target"),
                ("table", "public.items", "differs"),
            ]
        );
        assert_eq!(found[2].detail, "rls: false on the target, true in the history");
    }
}
