//! `drift --write-migration`: the migration that makes a history catch up with a hand fix, and its
//! rollback, written from the server's own definitions as the snapshot records hold them
//! (`pg_get_functiondef`, `pg_get_indexdef`, `pg_get_constraintdef`, `pg_get_triggerdef`,
//! `pg_get_viewdef`, the policy and grant catalogs). The migration takes a database that its
//! history made to what the target has; on the target itself it changes nothing that matters
//! (each statement is guarded, or replaces a definition with the same one), so it can be applied
//! there to record it. The rollback takes it back to what the history made.
//!
//! A difference is written only when both ways can be: a kind the writer does not know, or a
//! change that would delete data going forward (a dropped column, a dropped table), or rewrite a
//! table (a column's type), is listed, never guessed.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::runbook::drift::Difference;

mod change;
mod grants;
mod records;

use records::{constraint, relation};

/// What was written and what was not.
#[derive(Debug, Default, Serialize)]
pub struct Written {
    /// The forward statements, in an order that works (drops first, then what others use).
    #[serde(skip)]
    pub forward: Vec<String>,
    #[serde(skip)]
    pub rollback: Vec<String>,
    /// `kind object` of each difference written.
    pub objects: Vec<String>,
    pub not_written: Vec<NotWritten>,
}

/// A difference the writer left to a person.
#[derive(Debug, Serialize)]
pub struct NotWritten {
    pub kind: String,
    pub object: String,
    pub change: String,
    pub why: String,
}

/// The statements for `diffs`; `target` and `history` are every record of each side (a view's
/// definition is a record of its own).
pub fn write(diffs: &[Difference], target: &[String], history: &[String]) -> Written {
    // Primary keys, unique and exclusion constraints make their index: it is written with them.
    let by_constraint: BTreeSet<String> = diffs
        .iter()
        .filter(|d| d.kind == "constraint")
        .flat_map(|d| d.on_target.iter().chain(&d.in_history))
        .filter_map(|r| constraint(r))
        .filter(|c| c.backed_by_index)
        .map(|c| c.index_object)
        .collect();
    // A whole view's text is written with it.
    let whole: BTreeSet<&str> =
        diffs.iter().filter(|d| d.kind == "view" && d.change != "differs").map(|d| d.object.as_str()).collect();
    let tables: BTreeSet<String> = target
        .iter()
        .chain(history)
        .filter_map(|r| relation(r).filter(|rel| matches!(rel.rest[0].as_str(), "r" | "p" | "f" | "m")).map(|r| r.name))
        .collect();
    let mut out = Written::default();
    let (mut forward, mut rollback) = (Vec::new(), Vec::new());
    for d in diffs {
        if d.kind == "index" && by_constraint.contains(&d.object) {
            continue;
        }
        if d.kind == "view_definition" && whole.contains(d.object.as_str()) {
            continue;
        }
        let there = Side { all: target, tables: &tables, forward: true };
        let back = Side { all: history, tables: &tables, forward: false };
        match (
            there.change(&d.kind, &d.object, &d.in_history, &d.on_target),
            back.change(&d.kind, &d.object, &d.on_target, &d.in_history),
        ) {
            (Ok(f), Ok(r)) => {
                forward.extend(f);
                rollback.extend(r);
                out.objects.push(format!("{} {}", d.kind, d.object));
            }
            (Err(why), _) | (_, Err(why)) => out.not_written.push(NotWritten {
                kind: d.kind.clone(),
                object: d.object.clone(),
                change: d.change.to_string(),
                why,
            }),
        }
    }
    forward.sort_by_key(|(phase, _)| *phase);
    rollback.sort_by_key(|(phase, _)| *phase);
    out.forward = forward.into_iter().map(|(_, s)| s).collect();
    out.rollback = rollback.into_iter().map(|(_, s)| s).collect();
    out
}

/// The side a change goes to: its records (a view's definition is a record of its own), the
/// tables of both sides, and whether it is the migration (a change that deletes data is refused
/// there) or its rollback.
struct Side<'a> {
    all: &'a [String],
    tables: &'a BTreeSet<String>,
    forward: bool,
}

/// The order statements run in: drops first (what uses an object before it), then creations
/// (what others use first), then flags, owners and grants.
pub(super) mod phase {
    pub const DROP_POLICY: i32 = -6;
    pub const DROP_CONSTRAINT: i32 = -5;
    pub const DROP_VIEW: i32 = -4;
    pub const DROP_FUNCTION: i32 = -3;
    pub const DROP_COLUMN: i32 = -2;
    pub const DROP_SCHEMA: i32 = -1;
    pub const SCHEMA: i32 = 1;
    pub const COLUMN: i32 = 2;
    pub const FUNCTION: i32 = 3;
    pub const VIEW: i32 = 4;
    pub const CONSTRAINT: i32 = 5;
    pub const POLICY: i32 = 6;
    pub const GRANTS: i32 = 8;
}

/// A statement ending in exactly one `;`.
pub(super) fn terminated(sql: &str) -> String {
    format!("{};", sql.trim_end().trim_end_matches(';'))
}

/// A role as an identifier.
pub(super) fn role(name: &str) -> String {
    // As the snapshot prints it (`quote_ident`): quoted already when it must be.
    if name.starts_with('"') && crate::text::sql::ident::is_identifier(name) {
        return name.to_string();
    }
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A SQL string literal.
pub(super) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use grants::{grants, TABLE};

    fn diff(kind: &str, object: &str, change: &'static str, target: &[&str], history: &[&str]) -> Difference {
        Difference {
            kind: kind.into(),
            object: object.into(),
            change,
            detail: String::new(),
            table: None,
            on_target: target.iter().map(|s| s.to_string()).collect(),
            in_history: history.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_policy_with_a_quoted_name_is_made_again_and_its_rollback_drops_it() {
        let rec = "policy \"Users can read own\" on public.profiles command=r permissive=true roles=authenticated using=(( SELECT auth.uid() AS uid) = id) check=-";
        let d = diff("policy", "public.profiles.\"Users can read own\"", "extra_on_target", &[rec], &[]);
        let w = write(&[d], &[], &[]);
        assert_eq!(
            w.forward,
            [
                "drop policy if exists \"Users can read own\" on public.profiles;",
                "create policy \"Users can read own\" on public.profiles as permissive for select to \"authenticated\" using ((( SELECT auth.uid() AS uid) = id));"
            ]
        );
        assert_eq!(w.rollback, ["drop policy if exists \"Users can read own\" on public.profiles;"]);
    }

    #[test]
    fn grants_are_revoked_and_given_per_grantee_whose_privileges_differ() {
        let g = grants(
            "table public.t",
            None,
            Some("anon=r/postgres,postgres=arwdDxt/postgres"),
            "postgres=arwdDxt/postgres,svc=r*w/postgres",
            TABLE,
        )
        .unwrap();
        assert_eq!(
            g,
            [
                "revoke all on table public.t from \"anon\";",
                "revoke all on table public.t from \"svc\";",
                "grant update on table public.t to \"svc\";",
                "grant select on table public.t to \"svc\" with grant option;"
            ]
        );
    }

    #[test]
    fn a_dropped_column_or_a_retyped_one_is_left_to_a_person() {
        let col = |t: &str| {
            format!("column public.t.c type={t} not_null=false default=- identity=- generated=- collation=- acl=- storage=x statistics=-1")
        };
        let w = write(
            &[
                diff("column", "public.t.c", "missing_on_target", &[], &[&col("text")]),
                diff(
                    "column",
                    "public.t.d",
                    "differs",
                    &[&col("bigint").replace(".c ", ".d ")],
                    &[&col("integer").replace(".c ", ".d ")],
                ),
            ],
            &[],
            &[],
        );
        assert!(w.forward.is_empty());
        let why: Vec<&str> = w.not_written.iter().map(|n| n.why.as_str()).collect();
        assert_eq!(
            why,
            [
                "dropping a column deletes its data: write it by hand",
                "a column's type: changing it rewrites the table, write it by hand"
            ]
        );
    }

    #[test]
    fn a_constraint_is_added_in_a_block_whose_tag_its_definition_does_not_hold() {
        let rec = "constraint public.c type=c on public.t: CHECK ((note <> '$catch_up$'::text))";
        let table = "relation public.t kind=r owner=postgres rls=false force_rls=false persistence=p options=- acl=- partition_key=- replica_identity=d";
        let w = write(&[diff("constraint", "public.t.c", "extra_on_target", &[rec], &[])], &[table.to_string()], &[]);
        assert!(
            w.forward[0].starts_with("do $catch_up_1$\n") && w.forward[0].ends_with("end $catch_up_1$;"),
            "{}",
            w.forward[0]
        );
        assert!(w.forward[0].contains("alter table public.t add constraint c CHECK ((note <> '$catch_up$'::text));"));
        assert_eq!(w.rollback, ["alter table public.t drop constraint if exists c;"]);
    }

    #[test]
    fn names_from_the_target_stay_names_whatever_they_hold() {
        // A role named to end the statement, as the snapshot prints it (quote_ident).
        let evil = "\"x using=1=1); drop table users; --\"";
        let rec = format!("policy p on public.t command=r permissive=true roles={evil},anon using=true check=-");
        let w = write(&[diff("policy", "public.t.p", "extra_on_target", &[&rec], &[])], &[], &[]);
        assert_eq!(
            w.forward[1],
            format!("create policy p on public.t as permissive for select to {evil}, \"anon\" using (true);")
        );
        // A grantee as aclitemout quotes it, and one that is not a name at all.
        let g = grants("table public.t", None, Some("-x=r/postgres"), "\"a,b\"\"=/c\"=r/postgres", TABLE);
        assert!(g.is_err(), "not a name: {g:?}");
        let g = grants(
            "table public.t",
            None,
            Some("postgres=r/postgres"),
            "\"a,b\"\"=/c\"=r/postgres,postgres=r/postgres",
            TABLE,
        )
        .unwrap();
        assert_eq!(
            g,
            ["revoke all on table public.t from \"a,b\"\"=/c\";", "grant select on table public.t to \"a,b\"\"=/c\";"]
        );
    }
}
