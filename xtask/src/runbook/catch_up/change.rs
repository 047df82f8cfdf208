//! The statements that take one object from one side's records to the other's.

use super::grants::{grants, COLUMN, EXECUTE, SCHEMA, TABLE};
use super::records::{column, constraint, function, policy, relation, schema, trigger, Column, Relation};
use super::{phase, role, terminated, Side};
use crate::text::sql::ident::read_ident;

pub(super) type Statements = Result<Vec<(i32, String)>, String>;

/// Both records of an object parsed with `parse`: `Err` when one is there and does not read.
fn both<T>(
    from: Option<&str>,
    to: Option<&str>,
    parse: fn(&str) -> Option<T>,
    kind: &str,
) -> Result<(Option<T>, Option<T>), String> {
    let read =
        |r: Option<&str>| r.map(|r| parse(r).ok_or_else(|| format!("its {kind} record could not be read"))).transpose();
    Ok((read(from)?, read(to)?))
}

impl Side<'_> {
    /// The statements that take one object from its `from` records to its `to` records (either
    /// may be empty: the object is made or dropped).
    pub(super) fn change(&self, kind: &str, object: &str, from: &[String], to: &[String]) -> Statements {
        let (from, to) = (from.first().map(String::as_str), to.first().map(String::as_str));
        let forward = self.forward;
        match kind {
            "index" => self.index_change(object, from, to),
            "constraint" => self.constraint_change(object, from, to),
            "function" => self.function_change(object, from, to),
            "trigger" => self.trigger_change(object, from, to),
            "policy" => match both(from, to, policy, kind)? {
                (_, Some(t)) => Ok(vec![
                    (phase::POLICY, format!("drop policy if exists {} on {};", t.name, t.table)),
                    (phase::POLICY, t.create()?),
                ]),
                (Some(f), None) => {
                    Ok(vec![(phase::DROP_POLICY, format!("drop policy if exists {} on {};", f.name, f.table))])
                }
                (None, None) => Ok(Vec::new()),
            },
            "table" => match both(from, to, relation, kind)? {
                (Some(f), Some(t)) => table_flags(&f, &t),
                (Some(_), None) if forward => Err("dropping a table deletes its rows: write it by hand".into()),
                _ => Err("a whole table: write it by hand (`supabase db dump` prints its definition)".into()),
            },
            "view" => self.view_change(object, from, to),
            "view_definition" => {
                let materialized = self.all.iter().any(|r| r.starts_with(&format!("relation {object} kind=m ")));
                match to {
                    _ if materialized => {
                        Err("a materialized view's query: write it by hand (it is dropped and made again)".into())
                    }
                    Some(r) => {
                        let def = r.split_once(": ").map(|(_, d)| d).ok_or("its view record could not be read")?;
                        // Its options as they are, or `create or replace` would reset them.
                        let with = self
                            .all
                            .iter()
                            .filter(|r| r.starts_with(&format!("relation {object} kind=v ")))
                            .find_map(|r| relation(r))
                            .and_then(|v| view_options(&v.options))
                            .ok_or("its options could not be read: write it by hand")?;
                        Ok(vec![(phase::VIEW, format!("create or replace view {object}{with} as {}", terminated(def)))])
                    }
                    None => Ok(Vec::new()),
                }
            }
            "column" => column_change(both(from, to, column, kind)?, forward),
            "schema" => self.schema_change(object, from, to),
            "extension" => self.extension_change(object, from, to),
            other => Err(format!("a kind the writer does not know ({}): write it by hand", other.replace('_', " "))),
        }
    }

    fn index_change(&self, object: &str, from: Option<&str>, to: Option<&str>) -> Statements {
        let kind = "index";
        match both(from, to, |r| r.strip_prefix("index ").map(str::to_string), kind)? {
            (_, Some(def)) => {
                let create = format!("{};", def.replacen(" INDEX ", " INDEX IF NOT EXISTS ", 1));
                Ok(if from.is_some() {
                    vec![(phase::CONSTRAINT, format!("drop index if exists {object};")), (phase::CONSTRAINT, create)]
                } else {
                    vec![(phase::CONSTRAINT, create)]
                })
            }
            (Some(_), None) => Ok(vec![(phase::DROP_CONSTRAINT, format!("drop index if exists {object};"))]),
            (None, None) => Ok(Vec::new()),
        }
    }

    fn constraint_change(&self, _object: &str, from: Option<&str>, to: Option<&str>) -> Statements {
        let kind = "constraint";
        {
            let (f, t) = both(from, to, constraint, kind)?;
            if [&f, &t].into_iter().flatten().any(|c| c.kind == "t" || !self.tables.contains(&c.table)) {
                return Err("a domain's constraint or a constraint trigger: write it by hand".into());
            }
            Ok(match (f, t) {
                (_, Some(c)) => vec![(phase::CONSTRAINT, c.guarded_add())],
                (Some(c), None) => vec![(
                    phase::DROP_CONSTRAINT,
                    format!("alter table {} drop constraint if exists {};", c.table, c.name),
                )],
                (None, None) => Vec::new(),
            })
        }
    }

    fn function_change(&self, _object: &str, from: Option<&str>, to: Option<&str>) -> Statements {
        let kind = "function";
        match both(from, to, function, kind)? {
            (f, Some(t)) => {
                if !t.definition.starts_with("CREATE") {
                    return Err(format!("not a function or procedure ({}): write it by hand", t.definition));
                }
                let returns = |d: &str| d.lines().find(|l| l.trim_start().starts_with("RETURNS ")).map(str::to_string);
                if f.as_ref().is_some_and(|f| returns(&f.definition) != returns(&t.definition)) {
                    return Err(
                        "its return type changed (`create or replace` cannot): write it by hand, drop and create"
                            .into(),
                    );
                }
                let mut out = vec![(phase::FUNCTION, format!("{};", t.definition.trim_end()))];
                if f.as_ref().is_none_or(|f| f.owner != t.owner) {
                    out.push((phase::GRANTS, format!("alter routine {} owner to {};", t.signature, role(&t.owner))));
                }
                let on = format!("function {}", t.signature);
                let was = f.as_ref().map(|f| f.acl.as_str());
                out.extend(grants(&on, None, was, &t.acl, EXECUTE)?.into_iter().map(|g| (phase::GRANTS, g)));
                Ok(out)
            }
            (Some(f), None) => Ok(vec![(phase::DROP_FUNCTION, format!("drop routine if exists {};", f.signature))]),
            (None, None) => Ok(Vec::new()),
        }
    }

    fn trigger_change(&self, _object: &str, from: Option<&str>, to: Option<&str>) -> Statements {
        let kind = "trigger";
        match both(from, to, trigger, kind)? {
            (_, Some(t)) => {
                let mut out = vec![
                    (phase::POLICY, format!("drop trigger if exists {} on {};", t.name, t.table)),
                    (phase::POLICY, format!("{};", t.definition)),
                ];
                let how = match t.enabled.as_str() {
                    "O" => None,
                    "D" => Some("disable trigger"),
                    "R" => Some("enable replica trigger"),
                    "A" => Some("enable always trigger"),
                    other => return Err(format!("a trigger enabled as `{other}`: write it by hand")),
                };
                if let Some(how) = how {
                    out.push((phase::POLICY, format!("alter table {} {how} {};", t.table, t.name)));
                }
                Ok(out)
            }
            (Some(f), None) => {
                Ok(vec![(phase::DROP_POLICY, format!("drop trigger if exists {} on {};", f.name, f.table))])
            }
            (None, None) => Ok(Vec::new()),
        }
    }

    fn view_change(&self, _object: &str, from: Option<&str>, to: Option<&str>) -> Statements {
        let kind = "view";
        match both(from, to, relation, kind)? {
            (Some(f), Some(t)) => table_flags(&f, &t),
            (None, Some(t)) => {
                let with = view_options(&t.options)
                    .ok_or_else(|| format!("a view with options {}: write it by hand", t.options))?;
                let def = self
                    .all
                    .iter()
                    .find_map(|r| r.strip_prefix(&format!("view {}: ", t.name)))
                    .ok_or_else(|| "its definition could not be read".to_string())?;
                let mut out =
                    vec![(phase::VIEW, format!("create or replace view {}{with} as {}", t.name, terminated(def)))];
                if t.owner != "-" {
                    out.push((phase::GRANTS, format!("alter view {} owner to {};", t.name, role(&t.owner))));
                }
                let on = format!("table {}", t.name);
                out.extend(grants(&on, None, None, &t.acl, TABLE)?.into_iter().map(|g| (phase::GRANTS, g)));
                Ok(out)
            }
            (Some(f), None) => Ok(vec![(phase::DROP_VIEW, format!("drop view if exists {};", f.name))]),
            (None, None) => Ok(Vec::new()),
        }
    }

    fn schema_change(&self, _object: &str, from: Option<&str>, to: Option<&str>) -> Statements {
        let kind = "schema";
        match both(from, to, schema, kind)? {
            (f, Some(t)) => {
                let mut out = vec![(phase::SCHEMA, format!("create schema if not exists {};", t.name))];
                if f.as_ref().is_none_or(|f| f.owner != t.owner) {
                    out.push((phase::GRANTS, format!("alter schema {} owner to {};", t.name, role(&t.owner))));
                }
                let on = format!("schema {}", t.name);
                let was = f.as_ref().map(|f| f.acl.as_str());
                out.extend(grants(&on, None, was, &t.acl, SCHEMA)?.into_iter().map(|g| (phase::GRANTS, g)));
                Ok(out)
            }
            (Some(f), None) => Ok(vec![(phase::DROP_SCHEMA, format!("drop schema if exists {};", f.name))]),
            (None, None) => Ok(Vec::new()),
        }
    }

    fn extension_change(&self, _object: &str, from: Option<&str>, to: Option<&str>) -> Statements {
        let kind = "extension";
        let forward = self.forward;
        match both(from, to, extension, kind)? {
            (Some(_), None) if forward => {
                Err("dropping an extension drops what it made, data included: write it by hand".into())
            }
            (Some((name, _)), None) => Ok(vec![(phase::DROP_SCHEMA, format!("drop extension if exists {name};"))]),
            (None, Some((name, schema))) => {
                Ok(vec![(phase::SCHEMA, format!("create extension if not exists {name} with schema {schema};"))])
            }
            _ => Err("an extension's version or schema: write it by hand (`alter extension ... update`)".into()),
        }
    }
}

/// A view's options as `with (...)` (`{security_invoker=true}`), empty for none; `None` for
/// options that are not plain `name=value` words.
fn view_options(options: &str) -> Option<String> {
    if options == "-" {
        return Some(String::new());
    }
    let inner = options.strip_prefix('{')?.strip_suffix('}')?;
    let plain = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    inner
        .split(',')
        .all(|o| o.split_once('=').is_some_and(|(k, v)| plain(k) && plain(v)))
        .then(|| format!(" with ({inner})"))
}

/// `extension NAME version=V schema=S`: the name and schema.
fn extension(record: &str) -> Option<(String, String)> {
    let (name, rest) = read_ident(record.strip_prefix("extension ")?)?;
    Some((name, rest.rsplit_once(" schema=")?.1.to_string()))
}

/// A table's (or view's) flags, owner and grants, from `f` to `t`.
fn table_flags(f: &Relation, t: &Relation) -> Statements {
    if f.rest != t.rest || f.options != t.options {
        return Err("its kind, persistence, options, partition key or replica identity: write it by hand".into());
    }
    let mut out = Vec::new();
    if f.rls != t.rls {
        let how = if t.rls == "true" { "enable" } else { "disable" };
        out.push((phase::GRANTS, format!("alter table {} {how} row level security;", t.name)));
    }
    if f.force_rls != t.force_rls {
        let how = if t.force_rls == "true" { "force" } else { "no force" };
        out.push((phase::GRANTS, format!("alter table {} {how} row level security;", t.name)));
    }
    if f.owner != t.owner {
        let what = if t.rest[0] == "v" { "view" } else { "table" };
        out.push((phase::GRANTS, format!("alter {what} {} owner to {};", t.name, role(&t.owner))));
    }
    let on = format!("table {}", t.name);
    out.extend(grants(&on, None, Some(&f.acl), &t.acl, TABLE)?.into_iter().map(|g| (phase::GRANTS, g)));
    Ok(out)
}

fn column_change((f, t): (Option<Column>, Option<Column>), forward: bool) -> Statements {
    match (f, t) {
        (Some(_), None) if forward => Err("dropping a column deletes its data: write it by hand".into()),
        (Some(f), None) => {
            Ok(vec![(phase::DROP_COLUMN, format!("alter table {} drop column if exists {};", f.table, f.name))])
        }
        (None, Some(t)) => {
            if t.identity != "-" || t.generated != "-" || t.collation != "-" {
                return Err("an identity, generated or collated column: write it by hand".into());
            }
            let mut sql = format!("alter table {} add column if not exists {} {}", t.table, t.name, t.kind);
            if t.default != "-" {
                sql.push_str(&format!(" default {}", t.default));
            }
            if t.not_null {
                sql.push_str(" not null");
            }
            sql.push(';');
            let mut out = vec![(phase::COLUMN, sql)];
            let on = format!("table {}", t.table);
            out.extend(grants(&on, Some(&t.name), None, &t.acl, COLUMN)?.into_iter().map(|g| (phase::GRANTS, g)));
            Ok(out)
        }
        (Some(f), Some(t)) => {
            if f.kind != t.kind {
                return Err("a column's type: changing it rewrites the table, write it by hand".into());
            }
            if (&f.identity, &f.generated, &f.collation, &f.storage_and_statistics)
                != (&t.identity, &t.generated, &t.collation, &t.storage_and_statistics)
            {
                return Err(
                    "a column's identity, generation, collation, storage or statistics: write it by hand".into()
                );
            }
            let at = format!("alter table {} alter column {}", t.table, t.name);
            let mut out = Vec::new();
            if f.default != t.default {
                out.push((
                    phase::COLUMN,
                    if t.default == "-" {
                        format!("{at} drop default;")
                    } else {
                        format!("{at} set default {};", t.default)
                    },
                ));
            }
            if f.not_null != t.not_null {
                out.push((phase::COLUMN, format!("{at} {} not null;", if t.not_null { "set" } else { "drop" })));
            }
            let on = format!("table {}", t.table);
            out.extend(
                grants(&on, Some(&t.name), Some(&f.acl), &t.acl, COLUMN)?.into_iter().map(|g| (phase::GRANTS, g)),
            );
            Ok(out)
        }
        (None, None) => Ok(Vec::new()),
    }
}
