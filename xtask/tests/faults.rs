//! Staging faults, each driven for real through the staging-like stack: two rehearsals at once, a
//! lock held by another session, a statement that runs too long, the database going away mid-apply,
//! the pooler down, and Ctrl-C or SIGTERM. Each ends without a hang, with the children gone, the
//! rehearsal lock released, and a summary and plan that say what happened.

mod common;

use common::{lock_is_free, wait_for_log, Sandbox, Stack};
use serde_json::Value;

fn staging_tree(name: &str, stack: &Stack) -> (Sandbox, String) {
    let sandbox = Sandbox::new(name);
    sandbox.with_vault(&stack.dsn());
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('contract runs');\n");
    sandbox.write(
        "supabase/migrations/20250101000000_hot.sql",
        "create table if not exists public.hot (id int);\nalter table public.hot enable row level security;\n",
    );
    sandbox.write("supabase/migrations.backup/20250101000000_hot_rollback.sql", "drop table if exists public.hot;\n");
    let plan = sandbox.root.join("plan.json");
    std::fs::write(&plan, r#"{"molecules": [{"id": "hot", "migrations": ["supabase/migrations/*.sql"], "status": "pending", "attempts": 0}]}"#).unwrap();
    (sandbox, plan.to_string_lossy().into_owned())
}

fn plan_status(plan: &str) -> (String, u64) {
    let p: Value = serde_json::from_str(&std::fs::read_to_string(plan).unwrap()).unwrap();
    (p["molecules"][0]["status"].as_str().unwrap().to_string(), p["molecules"][0]["attempts"].as_u64().unwrap())
}

fn summary(sandbox: &Sandbox) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(sandbox.rehearsal_dirs().last().unwrap().join("summary.json")).unwrap(),
    )
    .unwrap()
}

#[test]
fn two_rehearsals_started_together_on_one_database_exactly_one_runs() {
    let stack = Stack::start();
    let (a, plan_a) = staging_tree("together-a", &stack);
    let (b, plan_b) = staging_tree("together-b", &stack);
    for s in [&a, &b] {
        // Long enough that the two runs overlap whatever the scheduling.
        s.write("supabase/migrations/20250102000000_slow.sql", "select pg_sleep(2);\n");
        s.write("supabase/migrations.backup/20250102000000_slow_rollback.sql", "select 1;\n");
    }
    let first = a.spawn(&["stage-rehearse", "--plan", &plan_a]);
    let second = b.spawn(&["stage-rehearse", "--plan", &plan_b]);
    let (x, y) = (first.wait_with_output().unwrap(), second.wait_with_output().unwrap());
    let mut codes = [x.status.code(), y.status.code()];
    codes.sort();
    let refused = if x.status.code() == Some(2) { &x } else { &y };
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(codes, [Some(0), Some(2)], "{stderr}");
    assert!(
        stderr.contains("error: another rehearsal is in progress on 127.0.0.1/postgres (it holds advisory lock"),
        "{stderr}"
    );
    assert!(lock_is_free(&stack), "the lock is released when the run ends");
    let refused_plan = if x.status.code() == Some(2) { &plan_a } else { &plan_b };
    assert_eq!(plan_status(refused_plan), ("pending".to_string(), 0), "a refused run writes nothing to the plan");
}

#[test]
fn a_lock_held_by_another_session_times_out_on_the_server_instead_of_hanging() {
    let stack = Stack::start();
    let (sandbox, plan) = staging_tree("held-lock", &stack);
    stack.admin_sql(
        "set role postgres; create table public.busy (id int); alter table public.busy enable row level security;",
    );
    sandbox.write("supabase/migrations/20250102000000_busy.sql", "alter table public.busy add column note text;\n");
    sandbox.write(
        "supabase/migrations.backup/20250102000000_busy_rollback.sql",
        "alter table public.busy drop column note;\n",
    );
    let _held = stack.hold("begin; lock table public.busy in access exclusive mode;");
    let run = sandbox.xtask(&["stage-rehearse", "--plan", &plan, "--lock-timeout", "1s", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let s = run.json();
    let error = &s["migrations"][1]["apply"]["error"];
    assert_eq!(error["class"], "lock_timeout", "{s:#}");
    assert_eq!(error["sqlstate"], "55P03");
    assert_eq!(error["file"], "supabase/migrations/20250102000000_busy.sql");
    assert!(error["hint"].as_str().unwrap().contains("--lock-timeout"), "{error}");
    let log = std::fs::read_to_string(sandbox.rehearsal_dirs()[0].join("migration_apply.log")).unwrap();
    assert!(
        log.contains(
            "==> supabase/migrations/20250102000000_busy.sql\n\
             psql:supabase/migrations/20250102000000_busy.sql:1: ERROR:  canceling statement due to lock timeout\n"
        ),
        "the server timed the lock out, and the log shows none of the tool's own statements:\n{log}"
    );
    assert_eq!(plan_status(&plan), ("failed".to_string(), 1));
    assert!(lock_is_free(&stack));
}

#[test]
fn a_statement_past_the_statement_timeout_is_cancelled_by_the_server() {
    let stack = Stack::start();
    let (sandbox, plan) = staging_tree("statement-timeout", &stack);
    sandbox.write("supabase/migrations/20250102000000_slow.sql", "select pg_sleep(30);\n");
    let run = sandbox.xtask(&["stage-rehearse", "--plan", &plan, "--statement-timeout", "500ms", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let error = &run.json()["migrations"][1]["apply"]["error"];
    assert_eq!(
        (error["class"].as_str(), error["sqlstate"].as_str()),
        (Some("statement_timeout"), Some("57014")),
        "{error}"
    );
}

#[test]
fn the_pooler_down_at_the_connectivity_check_is_exit_2_with_the_fix() {
    let mut stack = Stack::start();
    let (sandbox, plan) = staging_tree("pooler-down", &stack);
    stack.pooler.stop();
    let run = sandbox.xtask(&["stage-rehearse", "--plan", &plan]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("error: step 2 connectivity: the database is unreachable (artifacts/ops/"), "{run}");
    assert!(run.stderr.contains("connection: connection to server at \"127.0.0.1\""), "{run}");
    assert!(run.stderr.contains("what to do: the database could not be reached"), "{run}");
    assert_eq!(plan_status(&plan), ("pending".to_string(), 0), "nothing written to the plan");
    assert!(sandbox.rehearsal_dirs().is_empty(), "no empty rehearsal dir is left");
    sandbox.assert_no_secrets(&run);
}

#[test]
fn the_database_going_away_mid_apply_ends_the_run_with_a_summary_that_says_so() {
    let mut stack = Stack::start();
    let (sandbox, plan) = staging_tree("db-gone", &stack);
    sandbox.write(
        "supabase/migrations/20250102000000_slow.sql",
        "do $$ begin raise notice 'slow migration started'; end $$;\nselect pg_sleep(60);\n",
    );
    // One after it, never reached: it stays in the table, skipped.
    sandbox.write("supabase/migrations/20250103000000_after.sql", "select 1;\n");
    let mut child = sandbox.spawn(&["stage-rehearse", "--plan", &plan]);
    wait_for_log(&sandbox, "migration_apply.log", "slow migration started", &mut child);
    drop(stack.cluster.take()); // the server stops under the running migration
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let s = summary(&sandbox);
    assert_eq!(s["outcome"], "failed");
    assert_eq!(s["migrations"][1]["apply"]["status"], "failed");
    assert!(s["findings"].as_array().unwrap().iter().any(|f| f["class"] == "connection"), "{s:#}");
    assert!(s["blockers"].to_string().contains("the database went away during the run: the remaining steps (rollback, re-apply, RLS contract, inventory) were not run"), "{s:#}");
    assert_eq!(s["migrations"][0]["rollback"]["status"], "skipped", "no command is sent to a database that is gone");
    assert!(!s["next_actions"].to_string().contains("amend"), "a migration that was fine is not blamed:\n{s:#}");
    assert!(s["next_actions"].to_string().contains("the database went away"), "{s:#}");
    assert_eq!(plan_status(&plan), ("failed".to_string(), 1));
    sandbox.assert_nothing_left();
}

fn interrupted_on_staging(signal: i32, name: &str) {
    let stack = Stack::start();
    let (sandbox, plan) = staging_tree(name, &stack);
    sandbox.write(
        "supabase/migrations/20250102000000_slow.sql",
        "do $$ begin raise notice 'slow migration started'; end $$;\nselect pg_sleep(60);\n",
    );
    // One after it, never reached: it stays in the table, skipped.
    sandbox.write("supabase/migrations/20250103000000_after.sql", "select 1;\n");
    let mut child = sandbox.spawn(&["stage-rehearse", "--plan", &plan]);
    wait_for_log(&sandbox, "migration_apply.log", "slow migration started", &mut child);
    assert!(!lock_is_free(&stack), "the rehearsal holds the lock while it runs");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted: the child processes were stopped; writing a halted summary"), "{stderr}");
    let s = summary(&sandbox);
    assert_eq!(s["outcome"], "halted", "{s:#}");
    assert_eq!(s["exit_code"], 130, "the summary says the exit code the process had:\n{s:#}");
    assert_eq!(s["migrations"][0]["apply"]["status"], "applied");
    assert_eq!(s["migrations"][1]["apply"]["status"], "interrupted", "the cancelled migration is in the table");
    assert_eq!(s["migrations"][2]["version"], "20250103000000", "the one never reached too: {s:#}");
    assert_eq!(s["migrations"][2]["apply"]["status"], "skipped");
    assert!(
        s["blockers"]
            .to_string()
            .contains("not applied, the run stopped before them: supabase/migrations/20250103000000_after.sql"),
        "{s:#}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("outcome: halted (exit 130)"), "{stderr}");
    assert!(s["blockers"].to_string().contains("interrupted (Ctrl-C or SIGTERM) part way"), "{s:#}");
    assert_eq!(
        plan_status(&plan),
        ("failed".to_string(), 1),
        "the plan shows the attempt and that it did not complete"
    );
    assert!(lock_is_free(&stack), "the lock is released");
    let still_running = stack.admin_sql(
        "select count(*) from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()",
    );
    assert_eq!(still_running, "0", "the interrupted statement is not left running on the server");
    sandbox.assert_nothing_left();
}

#[test]
fn ctrl_c_during_a_staging_apply_halts_with_a_summary_and_releases_the_lock() {
    interrupted_on_staging(libc::SIGINT, "staging-sigint");
}

#[test]
fn sigterm_during_a_staging_apply_halts_with_a_summary_and_releases_the_lock() {
    interrupted_on_staging(libc::SIGTERM, "staging-sigterm");
}

/// The working session holds the sessions key for as long as it lives, so that a statement of a
/// killed run still running on the server keeps the next run out. Between files the session is
/// reset as `psql -f` finds it (its advisory locks go), but that hold is taken again: every file
/// after the first checks, on the server, that its own session holds it.
#[test]
fn every_file_runs_in_a_session_that_holds_the_sessions_key() {
    let stack = Stack::start();
    let (sandbox, plan) = staging_tree("sessions-key", &stack);
    let check = "do $$ begin if not exists (select 1 from pg_locks where locktype = 'advisory' \
                 and pid = pg_backend_pid() and classid = 1919248485 and objid = 1634890546 and granted) \
                 then raise exception 'this session does not hold the sessions key'; end if; end $$;\n";
    for (version, name) in [("20250102000000", "second"), ("20250103000000", "third")] {
        sandbox.write(
            &format!("supabase/migrations/{version}_{name}.sql"),
            &format!("{check}create table if not exists public.{name} (id int);\nalter table public.{name} enable row level security;\n"),
        );
        sandbox.write(
            &format!("supabase/migrations.backup/{version}_{name}_rollback.sql"),
            &format!("{check}drop table if exists public.{name};\n"),
        );
    }
    let run = sandbox.xtask(&["stage-rehearse", "--plan", &plan]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(!run.stdout.contains("does not hold the sessions key"), "{run}");
    assert!(lock_is_free(&stack), "the lock and the key are gone with the run");
}
