//! The lint rules, each on the statements that trip it and those that must not.

use super::*;
use crate::text::config::Config;

fn lint(text: &str) -> Vec<(&'static str, u32)> {
    let rules = Rules::from_config(&[]).unwrap();
    statements("m.sql", &Script::lex(text), &rules).into_iter().map(|f| (f.class.as_str(), f.line.unwrap())).collect()
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
        vec![
            ("breaking_change", 1),
            ("unguarded_drop", 1),
            ("breaking_change", 2),
            ("lock_timeout_missing", 2),
            ("unguarded_drop", 2)
        ]
    );
    assert_eq!(lint("create index concurrently if not exists i on t (x);\n"), vec![("non_transactional", 1)]);
    assert_eq!(
        lint("create function f() returns int language sql security definer as $$ select 1 $$;\n"),
        vec![("security_definer_search_path", 1)]
    );
    assert_eq!(
        lint("create function f() returns int language sql security definer set search_path = '' as $$ select 1 $$;\n"),
        vec![]
    );
    assert_eq!(
        lint("create table private.t (id int);\n"),
        vec![("unguarded_create", 1)],
        "only exposed schemas need RLS"
    );
    assert_eq!(lint("create or replace function f() returns table (x int) language sql as $$ select 1 $$;\n"), vec![]);
    assert_eq!(lint("\\i other.sql\nselect 1;\n"), vec![("psql_meta_command", 1)]);
}

/// Each lock rule on a table that existed before the file, none on one the file created, on
/// the safe forms, or on what a rollback drops.
#[test]
fn lock_rules_name_the_lock_and_spare_the_safe_forms() {
    let only = |text: &str| -> Vec<&'static str> {
        let rules = Rules::from_config(&[]).unwrap();
        let locking =
            |c: &str| !["unguarded_create", "unguarded_drop", "rls_missing", "non_transactional"].contains(&c);
        statements("supabase/migrations/1_m.sql", &Script::lex(text), &rules)
            .into_iter()
            .map(|f| f.class.as_str())
            .filter(|c| locking(c))
            .collect()
    };
    let t = "set lock_timeout = '5s';\n";
    for (sql, rule) in [
        ("create index orders_at on public.orders (created_at);", "index_not_concurrent"),
        ("create unique index if not exists orders_ref on orders (ref);", "index_not_concurrent"),
        ("drop index if exists orders_at;", "drop_index_not_concurrent"),
        ("alter table public.orders alter column id type bigint;", "column_type_rewrite"),
        ("alter table orders add column token uuid default gen_random_uuid();", "volatile_default"),
        ("alter table orders add column total numeric generated always as (qty * price) stored;", "volatile_default"),
        ("alter table orders alter column ref set not null;", "set_not_null_scan"),
        (
            "alter table orders add constraint orders_user_fk foreign key (user_id) references users (id);",
            "constraint_not_valid",
        ),
        ("alter table orders add constraint orders_qty_check check (qty > 0);", "constraint_not_valid"),
        ("alter table orders add constraint orders_ref_key unique (ref);", "unique_without_index"),
        ("refresh materialized view public.daily_totals;", "refresh_not_concurrent"),
        ("vacuum full orders;", "table_rewrite_command"),
        ("cluster orders using orders_pkey;", "table_rewrite_command"),
        ("reindex table orders;", "table_rewrite_command"),
        ("alter table orders rename column ref to reference;", "breaking_change"),
        ("drop table if exists public.legacy;", "breaking_change"),
    ] {
        assert_eq!(only(&format!("{t}{sql}\n")), vec![rule], "{sql}");
    }
    // The safe forms, and a table the file made itself.
    for sql in [
        "create index concurrently if not exists orders_at on orders (created_at);",
        "drop index concurrently if exists orders_at;",
        "alter table orders alter column note type text;",
        "alter table orders alter column code type varchar(64);",
        "alter table orders add column note text;",
        "alter table orders add column placed_at timestamptz default now();",
        "alter table orders add constraint orders_user_fk foreign key (user_id) references users (id) not valid;",
        "alter table orders validate constraint orders_user_fk;",
        "alter table orders add constraint orders_ref_check check (ref is not null) not valid;",
        "alter table orders add constraint orders_ref_key unique using index orders_ref_idx;",
        "refresh materialized view concurrently daily_totals;",
        "reindex index concurrently orders_at;",
        "create policy p on orders for select using (true);",
    ] {
        assert_eq!(only(&format!("{t}{sql}\n")), Vec::<&str>::new(), "{sql}");
    }
    assert_eq!(
        only("alter table orders validate constraint orders_ref_check;\nalter table orders alter column ref set not null;\n"),
        vec!["lock_timeout_missing"],
        "a validated CHECK spares SET NOT NULL its scan"
    );
    assert_eq!(
        only("create table if not exists t (id int, ref text);\ncreate index t_ref on t (ref);\nalter table t alter column id type bigint;\nalter table t alter column ref set not null;\n"),
        Vec::<&str>::new(),
        "nobody else uses a table the file just created"
    );
    assert_eq!(only("alter table orders add column note text;\n"), vec!["lock_timeout_missing"]);
    assert_eq!(
        only("alter table orders add column a text;\nalter table orders add column b text;\n"),
        vec!["lock_timeout_missing"],
        "once a file"
    );
    let rollback = |text: &str| -> Vec<&'static str> {
        let rules = Rules::from_config(&[]).unwrap();
        statements("supabase/migrations.backup/1_m_rollback.sql", &Script::lex(text), &rules)
            .into_iter()
            .map(|f| f.class.as_str())
            .collect()
    };
    assert_eq!(
        rollback("drop table if exists public.made;\nalter table orders drop column if exists note;\n"),
        vec!["lock_timeout_missing"]
    );
    let message =
        statements("m.sql", &Script::lex("create index i on orders (x);\n"), &Rules::from_config(&[]).unwrap())
            .into_iter()
            .find(|f| f.class == Class::IndexNotConcurrent)
            .unwrap();
    assert_eq!(
        message.message,
        "CREATE INDEX takes SHARE on public.orders while it builds the index: writes wait (PostgreSQL 15): create index i on orders (x)"
    );
    assert!(message.hint.starts_with("CREATE INDEX CONCURRENTLY, in a migration of its own"), "{}", message.hint);
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
    assert_eq!(lint("drop table t; -- lint:allow unguarded_drop, breaking_change\n"), vec![]);
    let config = Config::parse("[lint]\nunguarded_drop = \"off\"\nbreaking_change = \"off\"\n").unwrap();
    let rules = Rules::from_config(&config.lint).unwrap();
    assert!(statements("m.sql", &Script::lex("drop table t;\n"), &rules).is_empty());
    let config = Config::parse("[lint]\nnonsense = \"off\"\n").unwrap();
    assert!(format!("{:#}", Rules::from_config(&config.lint).unwrap_err()).contains("[lint] nonsense is not a rule"));
    let config = Config::parse("[lint]\npsql_meta_command = \"off\"\n").unwrap();
    assert!(format!("{:#}", Rules::from_config(&config.lint).unwrap_err()).contains("cannot be lowered"));
}

#[test]
fn a_file_that_is_not_utf8_is_a_finding() {
    let rules = Rules::from_config(&[]).unwrap();
    let found = file(&SqlFile { rel: "m.sql", bytes: b"select 1;\nselect '\xff';\n" }, &rules);
    assert_eq!((found[0].class, found[0].line), (Class::NotUtf8, Some(2)));
}
