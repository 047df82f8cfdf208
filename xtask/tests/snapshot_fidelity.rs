//! The schema snapshot step 5 compares (one catalog query, one round trip) sees what `pg_dump
//! --schema-only` sees: one change of each kind of object a migration makes, left in place by a
//! rollback that forgets it, shows in both. And a rollback that undoes it shows in neither.

mod common;

use std::process::Command;

use xtask::database::Target;
use xtask::process::psql::Unit;
use xtask::runbook::snapshot;
use xtask::tools::find_client;

/// `(kind, the migration's change, what a correct rollback runs)`.
const CHANGES: &[(&str, &str, &str)] = &[
    ("table", "create table public.fx_new (id int)", "drop table public.fx_new"),
    ("column", "alter table public.fx add column extra int", "alter table public.fx drop column extra"),
    (
        "column type",
        "alter table public.fx alter column name type varchar(50)",
        "alter table public.fx alter column name type text",
    ),
    (
        "default",
        "alter table public.fx alter column name set default 'x'",
        "alter table public.fx alter column name drop default",
    ),
    (
        "constraint",
        "alter table public.fx add constraint fx_name_check check (name <> '')",
        "alter table public.fx drop constraint fx_name_check",
    ),
    ("index", "create index fx_name_idx on public.fx (name)", "drop index public.fx_name_idx"),
    ("view", "create view public.fx_v as select id from public.fx", "drop view public.fx_v"),
    (
        "function",
        "create or replace function public.fx_f() returns int language sql as 'select 2'",
        "create or replace function public.fx_f() returns int language sql as 'select 1'",
    ),
    (
        "trigger",
        "create function public.fx_t() returns trigger language plpgsql as $$begin return new; end$$;\n\
         create trigger fx_trg before insert on public.fx for each row execute function public.fx_t()",
        "drop trigger fx_trg on public.fx;\ndrop function public.fx_t()",
    ),
    ("policy", "create policy fx_p on public.fx for select using (true)", "drop policy fx_p on public.fx"),
    ("rls flag", "alter table public.fx enable row level security", "alter table public.fx disable row level security"),
    ("grant", "revoke all on public.fx from anon", "grant all on public.fx to anon"),
    (
        "default privilege",
        "alter default privileges in schema public revoke all on tables from anon",
        "alter default privileges in schema public grant all on tables to anon",
    ),
    ("sequence", "create sequence public.fx_seq", "drop sequence public.fx_seq"),
    (
        "enum",
        "alter type public.fx_mood add value 'c'",
        "drop type public.fx_mood;\ncreate type public.fx_mood as enum ('a', 'b')",
    ),
    ("extension", "create extension citext with schema extensions", "drop extension citext"),
    (
        "publication",
        "alter publication supabase_realtime add table public.fx",
        "alter publication supabase_realtime drop table public.fx",
    ),
    ("comment", "comment on table public.fx is 'people and their names'", "comment on table public.fx is null"),
    (
        "replica identity",
        "alter table public.fx replica identity full",
        "alter table public.fx replica identity default",
    ),
    (
        "column storage",
        "alter table public.fx alter column name set storage external",
        "alter table public.fx alter column name set storage extended",
    ),
    (
        "column statistics",
        "alter table public.fx alter column name set statistics 500",
        "alter table public.fx alter column name set statistics -1",
    ),
];

/// Changes `pg_dump --schema-only` does not print (roles and settings are `pg_dumpall`'s), which
/// a rollback must undo all the same: the snapshot sees each.
const GLOBAL_CHANGES: &[(&str, &str, &str)] = &[
    ("role", "create role fx_reader nologin", "drop role fx_reader"),
    ("role attribute", "alter role authenticator connection limit 7", "alter role authenticator connection limit -1"),
    ("role membership", "grant anon to service_role", "revoke anon from service_role"),
    (
        "role setting",
        "alter role authenticator set pgrst.db_schemas = 'public, api'",
        "alter role authenticator reset pgrst.db_schemas",
    ),
    (
        "database setting",
        "alter database postgres set statement_timeout = '5min'",
        "alter database postgres reset statement_timeout",
    ),
];

#[test]
fn every_kind_of_change_a_rollback_forgets_shows_in_the_snapshot_and_in_pg_dump() {
    common::prepare();
    let workdir = common::repo_root();
    let mut target = common::local_target(&workdir);
    let admin = target.cluster().unwrap().admin_dsn();
    let pg_dump = find_client("pg_dump").unwrap();
    let dump = || {
        let out = Command::new(&pg_dump).args(["--schema-only", "--no-owner", "--dbname", &admin]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // As a set of lines: pg_dump prints GRANTs in the order they were made.
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict") && !l.starts_with("-- Dumped"))
            .map(str::to_string)
            .collect();
        lines.sort();
        lines.join("\n")
    };
    let sql = |target: &mut Target, text: &str| {
        let ran = target.run(&Unit::body(format!("\\set ON_ERROR_STOP on\n{text};")), None).unwrap();
        assert!(ran.ok(), "{text}: {}", ran.text);
    };
    sql(
        &mut target,
        "create table public.fx (id int primary key, name text);\n\
         create function public.fx_f() returns int language sql as 'select 1';\n\
         create type public.fx_mood as enum ('a', 'b')",
    );
    for (kind, change, undo) in CHANGES {
        let (before, dumped) = (snapshot::take(&mut target).unwrap(), dump());
        sql(&mut target, change);
        // The rollback that forgets the change: the schema is not what it was.
        let (after, after_dump) = (snapshot::take(&mut target).unwrap(), dump());
        assert_ne!(after, before, "the snapshot misses a {kind} change: {change}");
        assert_ne!(after_dump, dumped, "pg_dump misses a {kind} change (the test is wrong): {change}");
        // The rollback that undoes it: both see the schema as it was.
        sql(&mut target, undo);
        assert_eq!(snapshot::take(&mut target).unwrap(), before, "the snapshot still sees the {kind} after: {undo}");
        assert_eq!(dump(), dumped, "pg_dump still sees the {kind} after (the test is wrong): {undo}");
    }
    for (kind, change, undo) in GLOBAL_CHANGES {
        let before = snapshot::take(&mut target).unwrap();
        sql(&mut target, change);
        assert_ne!(snapshot::take(&mut target).unwrap(), before, "the snapshot misses a {kind} change: {change}");
        sql(&mut target, undo);
        assert_eq!(snapshot::take(&mut target).unwrap(), before, "the snapshot still sees the {kind} after: {undo}");
    }
    // A secret in a setting is compared by its hash, never written out.
    sql(&mut target, "alter role authenticator set pgrst.jwt_secret = 'super-secret-jwt-value'");
    let with_secret = snapshot::take(&mut target).unwrap();
    assert!(!with_secret.contains("super-secret-jwt-value"), "{with_secret}");
    assert!(with_secret.contains("setting role=authenticator database=- pgrst.jwt_secret=md5:"), "{with_secret}");
    sql(&mut target, "alter role authenticator reset pgrst.jwt_secret");
}
