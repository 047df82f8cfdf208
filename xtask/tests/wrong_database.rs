//! Never the wrong database: a rollback only where the run applied, a lock that holds behind any
//! pooler (or a refusal), nothing left running when the tool is killed, and no input refused half
//! way through. Each against the staging-like stack (pgbouncer, TLS, SCRAM).

mod common;

use std::time::{Duration, Instant};

use common::{lock_is_free, wait_for_log, Sandbox, Stack};
use xtask::database::local::pooler::Mode;

fn url_tree(name: &str) -> Sandbox {
    let sandbox = Sandbox::new(name);
    sandbox.with_vault("unused: these tests pass --db-url");
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('contract runs');\n");
    for (v, table) in [("20250101000000", "hot"), ("20250102000000", "cold")] {
        sandbox.write(
            &format!("supabase/migrations/{v}_{table}.sql"),
            &format!("create table if not exists public.{table} (id int);\nalter table public.{table} enable row level security;\n"),
        );
        sandbox.write(
            &format!("supabase/migrations.backup/{v}_{table}_rollback.sql"),
            &format!("drop table if exists public.{table};\n"),
        );
    }
    sandbox
}

fn history(stack: &Stack) -> String {
    stack.admin_sql(
        "select coalesce(string_agg(version, ',' order by version), '') from supabase_migrations.schema_migrations",
    )
}

#[test]
fn a_rollback_refuses_a_database_the_run_did_not_apply_to() {
    let (a, b) = (Stack::start(), Stack::start_distinct());
    // Another checkout applied the same migrations to B; this one applied them to A.
    let elsewhere = url_tree("wrong-db-elsewhere");
    let run = elsewhere.xtask(&["apply", "--db-url", &b.dsn(), "--plan", "/nonexistent/plan.json"]);
    assert_eq!(run.code, Some(0), "{run}");
    let here = url_tree("wrong-db-here");
    let run = here.xtask(&["apply", "--db-url", &a.dsn(), "--plan", "/nonexistent/plan.json"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.starts_with("target: url (--db-url given)"), "a given --db-url means url:\n{run}");

    // Same host, same database name, same user: only the server can tell them apart.
    let refused = here.xtask(&["rollback", "--db-url", &b.dsn(), "--json"]);
    assert_eq!(refused.code, Some(2), "{refused}");
    assert!(refused.stderr.contains("refusing to roll back 127.0.0.1/postgres"), "{refused}");
    assert!(refused.stderr.contains("applied them to another database"), "{refused}");
    assert!(refused.stderr.contains("the server's system identifier was"), "{refused}");
    assert_eq!(refused.json()["outcome"], "error", "--json prints a summary with the error:\n{refused}");
    assert_eq!(history(&b), "20250101000000,20250102000000", "B is untouched");

    let undo = here.xtask(&["rollback", "--db-url", &a.dsn(), "--json"]);
    assert_eq!(undo.code, Some(0), "{undo}");
    assert_eq!(history(&a), "", "A is rolled back");
    assert!(undo.json()["identity"]["system_identifier"].is_string(), "{undo}");
    here.assert_no_secrets(&undo);
}

#[test]
fn a_history_row_applied_again_since_is_not_rolled_back() {
    let stack = Stack::start();
    let sandbox = url_tree("rewritten-row");
    let run = sandbox.xtask(&["apply", "--db-url", &stack.dsn(), "--plan", "/nonexistent/plan.json"]);
    assert_eq!(run.code, Some(0), "{run}");
    stack.admin_sql("update supabase_migrations.schema_migrations set statements = array['select 1'] where version = '20250102000000'");
    let refused = sandbox.xtask(&["rollback", "--db-url", &stack.dsn()]);
    assert_eq!(refused.code, Some(2), "{refused}");
    assert!(refused.stderr.contains("the history rows of supabase/migrations/20250102000000_cold.sql"), "{refused}");
    assert_eq!(history(&stack), "20250101000000,20250102000000", "nothing was rolled back");
}

/// Behind a transaction-mode pooler a client's transactions land on whichever server connection is
/// free: the first file's transaction runs where the run lock is not held, finds so on the server,
/// and nothing of it runs. (The pool is warmed with three server connections, used in turn.)
#[test]
fn behind_a_transaction_mode_pooler_the_rehearsal_is_refused_with_the_runbooks_advice() {
    let stack = Stack::start_in(Mode::Transaction);
    stack.warm_pool(3);
    let sandbox = url_tree("transaction-mode");
    let run = sandbox.xtask(&["stage-rehearse", "--db-url", &stack.dsn(), "--plan", "/nonexistent/plan.json"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("is a transaction-mode pooler"), "{run}");
    assert!(run.stderr.contains("use the session pooler (Supavisor port 5432)"), "{run}");
    assert!(run.stderr.contains("supabase/migrations/20250101000000_hot.sql was not run"), "{run}");
    assert_eq!(
        stack.admin_sql("select count(*) from pg_class where relname in ('hot', 'cold')"),
        "0",
        "nothing applied"
    );
}

#[test]
fn the_tool_killed_outright_leaves_no_statement_running_and_the_next_run_proceeds() {
    let stack = Stack::start();
    let sandbox = url_tree("kill-9");
    sandbox.write(
        "supabase/migrations/20250103000000_slow.sql",
        "do $$ begin raise notice 'slow migration started'; end $$;\nselect pg_sleep(60);\n",
    );
    let mut child = sandbox.spawn(&["stage-rehearse", "--db-url", &stack.dsn(), "--plan", "/nonexistent/plan.json"]);
    wait_for_log(&sandbox, "migration_apply.log", "slow migration started", &mut child);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    // psql got its parent-death signal and cancels the statement; the lock sessions close.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let running = stack.admin_sql(
            "select count(*) from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()",
        );
        if running == "0" && lock_is_free(&stack) {
            break;
        }
        assert!(Instant::now() < deadline, "the killed run's statement or lock is still there ({running} running)");
        std::thread::sleep(Duration::from_millis(50));
    }
    sandbox.remove("supabase/migrations/20250103000000_slow.sql");
    let again = sandbox.xtask(&["stage-rehearse", "--db-url", &stack.dsn(), "--plan", "/nonexistent/plan.json"]);
    assert_eq!(again.code, Some(0), "{again}");
}

#[test]
fn a_file_that_cannot_run_is_refused_before_the_first_statement_is_sent() {
    let stack = Stack::start();
    let sandbox = url_tree("bad-input-first");
    std::fs::write(
        sandbox.path("supabase/migrations/20250103000000_latin1.sql"),
        b"comment on table public.hot is 'caf\xe9';\n",
    )
    .unwrap();
    let run = sandbox.xtask(&["stage-rehearse", "--db-url", &stack.dsn(), "--plan", "/nonexistent/plan.json"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr
            .contains("error: supabase/migrations/20250103000000_latin1.sql:1: not UTF-8 (byte 35 is not valid UTF-8)"),
        "{run}"
    );
    assert!(run.stderr.contains("nothing was run"), "{run}");
    assert_eq!(stack.admin_sql("select count(*) from pg_class where relname in ('hot', 'cold')"), "0");
    assert!(!sandbox.path("artifacts").exists(), "a refused run writes nothing:\n{run}");
}
