//! Files go to the target several to a round trip, each in a transaction of its own with its
//! history row: a failure in the middle of such a batch leaves exactly that file unapplied (the
//! ones before it and after it applied, its error on its own file and line), a connection lost in
//! the middle of one leaves the history matching the schema, and step 7's `supabase migration
//! list`, started early and held at its first connection, reads the history only once the run has
//! left it as it stays. All through the staging-like stack (pgbouncer, TLS, SCRAM) or on local.

mod common;

use common::{prepare, wait_for_log, Sandbox, Stack};
use serde_json::Value;

/// Five migrations, each a table with RLS and its rollback; `third` is the third file's text.
fn five(name: &str, third: &str) -> Sandbox {
    let sandbox = Sandbox::new(name);
    sandbox.with_vault("unused: these tests pass --db-url");
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('contract runs');\n");
    for i in 1..=5 {
        let sql = if i == 3 {
            third.to_string()
        } else {
            format!("create table if not exists public.t{i} (id int);\nalter table public.t{i} enable row level security;\n")
        };
        sandbox.write(&format!("supabase/migrations/2025010100000{i}_t{i}.sql"), &sql);
        sandbox.write(
            &format!("supabase/migrations.backup/2025010100000{i}_t{i}_rollback.sql"),
            &format!("drop table if exists public.t{i};\n"),
        );
    }
    sandbox
}

/// The versions in the history and the tables `t1`..`t5` that exist, each as `1,2,...`.
fn history_and_tables(stack: &Stack) -> (String, String) {
    let history = stack.admin_sql(
        "select coalesce(string_agg(right(version, 1), ',' order by version), '') from supabase_migrations.schema_migrations",
    );
    let tables = stack.admin_sql(
        "select coalesce(string_agg(right(relname, 1), ',' order by relname), '') from pg_class \
         where relnamespace = 'public'::regnamespace and relname ~ '^t[1-5]$'",
    );
    (history, tables)
}

#[test]
fn a_failure_in_the_middle_of_a_batch_leaves_exactly_that_file_unapplied() {
    let stack = Stack::start();
    // It creates its table, then fails on line 4: the table must not stay.
    let third = "create table if not exists public.t3 (id int);\n\nalter table public.t3 enable row level security;\n\
                 insert into public.missing_table values (1);\n";
    let sandbox = five("pipelined-failure", third);
    let run = sandbox.xtask(&["apply", "--db-url", &stack.dsn(), "--plan", "/nonexistent/plan.json", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let s = run.json();
    let status: Vec<&str> =
        s["migrations"].as_array().unwrap().iter().map(|r| r["apply"]["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["applied", "applied", "failed", "applied", "applied"], "the files after it ran: {run}");
    let error = &s["migrations"][2]["apply"]["error"];
    assert_eq!(error["file"], "supabase/migrations/20250101000003_t3.sql", "{error}");
    assert_eq!(error["line"], 4, "{error}");
    assert!(error["message"].as_str().unwrap().contains("missing_table"), "{error}");
    let log = std::fs::read_to_string(sandbox.rehearsal_dir().join("migration_apply.log")).unwrap();
    assert!(
        log.contains(
            "psql:supabase/migrations/20250101000003_t3.sql:4: ERROR:  relation \"public.missing_table\" does not exist"
        ),
        "{log}"
    );
    assert!(log.contains("!! failure: supabase/migrations/20250101000003_t3.sql"), "{log}");
    assert_eq!(
        history_and_tables(&stack),
        ("1,2,4,5".to_string(), "1,2,4,5".to_string()),
        "the history and the schema hold the same files, the failed one in neither"
    );
}

#[test]
fn a_connection_lost_in_the_middle_of_a_batch_leaves_the_history_matching_the_schema() {
    let stack = Stack::start();
    let third = "create table if not exists public.t3 (id int);\n\
                 do $$ begin raise notice 'third file running'; end $$;\nselect pg_sleep(60);\n";
    let sandbox = five("pipelined-lost", third);
    let mut child = sandbox.spawn(&["apply", "--db-url", &stack.dsn(), "--plan", "/nonexistent/plan.json"]);
    wait_for_log(&sandbox, "migration_apply.log", "third file running", &mut child);
    // The connection goes, as a pooler restart or a network cut would take it.
    let killed = stack.admin_sql(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity where state = 'active' \
         and query like '%rehearsal_mark_%' and pid <> pg_backend_pid()",
    );
    assert_eq!(killed, "1", "the chain's statement was running");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(sandbox.rehearsal_dirs().last().unwrap().join("summary.json")).unwrap(),
    )
    .unwrap();
    let status: Vec<&str> =
        summary["migrations"].as_array().unwrap().iter().map(|r| r["apply"]["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["applied", "applied", "failed", "skipped", "skipped"], "{summary:#}");
    assert!(summary["findings"].as_array().unwrap().iter().any(|f| f["class"] == "connection"), "{summary:#}");
    assert_eq!(
        history_and_tables(&stack),
        ("1,2".to_string(), "1,2".to_string()),
        "what committed is in the history, and nothing else is"
    );
}

/// The second file applies once, and cannot be applied again: its rollback leaves a marker its
/// forward file refuses, so the run does not re-apply it. The history the run leaves lacks it,
/// while the history after step 4 has it: the CLI's post-run table shows which one it read.
#[test]
fn the_post_run_migration_list_reads_the_history_the_run_leaves() {
    prepare();
    let sandbox = Sandbox::new("pipelined-post-list");
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('contract runs');\n");
    sandbox.write(
        "supabase/migrations/20250101000001_first.sql",
        "create table if not exists public.first (id int);\nalter table public.first enable row level security;\n",
    );
    sandbox
        .write("supabase/migrations.backup/20250101000001_first_rollback.sql", "drop table if exists public.first;\n");
    sandbox.write(
        "supabase/migrations/20250101000002_once.sql",
        "do $$ begin if to_regclass('public.once_marker') is not null then raise exception 'applied a second time'; end if; end $$;\n\
         create table if not exists public.once (id int);\nalter table public.once enable row level security;\n",
    );
    sandbox.write(
        "supabase/migrations.backup/20250101000002_once_rollback.sql",
        // A slow rollback: a CLI that did not wait would read the history well before it ends.
        "select pg_sleep(1.5);\ndrop table if exists public.once;\ncreate table public.once_marker (id int);\n\
         alter table public.once_marker enable row level security;\n",
    );
    let run = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let s = run.json();
    assert_eq!(s["migrations"][1]["reapply"]["status"], "skipped", "{run}");
    let post = std::fs::read_to_string(sandbox.rehearsal_dir().join("migration_status_post.txt")).unwrap();
    let row = |version: &str| post.lines().find(|l| l.contains(version)).unwrap_or_default().matches(version).count();
    assert_eq!(row("20250101000001"), 2, "applied, local and remote:\n{post}");
    assert_eq!(row("20250101000002"), 1, "local only: the CLI read the history after the re-apply:\n{post}");
    assert_eq!(s["inventory"]["post"]["pending"], serde_json::json!(["20250101000002"]), "{run}");
}

/// The security advisors ride in the round trip of the apply's last chain; when that chain stops
/// at its last file, they are read on their own: either way the run has them.
#[test]
fn the_advisors_are_read_whether_or_not_the_last_file_applies() {
    for (name, last) in [
        ("advisors-ride", "create table public.t5 (id int);\nalter table public.t5 enable row level security;\n"),
        ("advisors-alone", "insert into public.missing_table values (1);\n"),
    ] {
        let stack = Stack::start();
        let sandbox = five(name, "create table if not exists public.t3 (id int);\n");
        sandbox.write("supabase/migrations/20250101000005_t5.sql", last);
        let run = sandbox.xtask(&["apply", "--db-url", &stack.dsn(), "--plan", "/nonexistent/plan.json", "--json"]);
        let s = run.json();
        let open: Vec<&Value> =
            s["findings"].as_array().unwrap().iter().filter(|f| f["class"] == "rls_disabled").collect();
        assert_eq!(open.len(), 1, "{name}: {run}");
        assert_eq!(open[0]["file"], "supabase/migrations/20250101000003_t3.sql", "{name}: {run}");
        let last_status = s["migrations"][4]["apply"]["status"].as_str().unwrap().to_string();
        assert_eq!(last_status, if name == "advisors-ride" { "applied" } else { "failed" }, "{run}");
    }
}
