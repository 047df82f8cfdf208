//! Rows a rollback loses, on staging's real data: a rollback that drops and recreates a table
//! that existed before its migration leaves the schema identical and the rows gone; that is a
//! `data_lost` error on exactly that rollback, and a rollback that undoes its change in place
//! gets none.

mod common;

use common::{Sandbox, Stack};

#[test]
fn a_rollback_that_drops_and_recreates_a_populated_table_is_data_lost() {
    let stack = Stack::start();
    // Staging's data, there before the rehearsal, as a team's tables are.
    stack.admin_sql(
        "set role postgres;\n\
         create table public.accounts (id int primary key, email text);\n\
         alter table public.accounts enable row level security;\n\
         insert into public.accounts select i, 'user' || i || '@example.com' from generate_series(1, 1000) i;\n\
         create table public.notes (id int primary key, body text);\n\
         alter table public.notes enable row level security;\n\
         insert into public.notes select i, 'note ' || i from generate_series(1, 50) i;\n\
         create table public.tags (id int primary key, label text);\n\
         alter table public.tags enable row level security;\n\
         insert into public.tags select i, 'tag ' || i from generate_series(1, 20) i;",
    );
    let sandbox = Sandbox::new("data-lost");
    sandbox.with_vault(&stack.dsn());
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('contract runs');\n");
    // Drop and recreate: the schema comes back identical, the 1 000 rows do not.
    sandbox.write(
        "supabase/migrations/20251202000000_accounts_plan.sql",
        "alter table public.accounts add column plan text;\n",
    );
    sandbox.write(
        "supabase/migrations.backup/20251202000000_accounts_plan_rollback.sql",
        "-- start over\ndrop table public.accounts;\ncreate table public.accounts (id int primary key, email text);\n\
         alter table public.accounts enable row level security;\n",
    );
    // Undone in place: the rows stay.
    sandbox.write(
        "supabase/migrations/20251203000000_notes_pinned.sql",
        "alter table public.notes add column pinned boolean;\n",
    );
    sandbox.write(
        "supabase/migrations.backup/20251203000000_notes_pinned_rollback.sql",
        "alter table public.notes drop column pinned;\n",
    );
    // The same count, other rows: a migration that rewrites labels its rollback cannot restore.
    sandbox
        .write("supabase/migrations/20251204000000_tags_upper.sql", "update public.tags set label = upper(label);\n");
    sandbox.write(
        "supabase/migrations.backup/20251204000000_tags_upper_rollback.sql",
        "select 1 from public.tags limit 1;\n",
    );

    let run = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let s = run.json();
    assert_eq!(s["schema_restored"], true, "the schema alone cannot tell: {run}");
    let lost: Vec<&serde_json::Value> =
        s["findings"].as_array().unwrap().iter().filter(|f| f["class"] == "data_lost").collect();
    assert_eq!(lost.len(), 2, "{lost:#?}");
    assert_eq!(lost[0]["severity"], "error");
    assert_eq!(lost[0]["file"], "supabase/migrations.backup/20251202000000_accounts_plan_rollback.sql");
    assert_eq!(lost[0]["line"], 2, "the statement that names the table");
    assert_eq!(
        lost[0]["message"],
        "public.accounts had 1000 rows before 20251202000000 applied and 0 after its rollback"
    );
    assert_eq!(lost[1]["file"], "supabase/migrations.backup/20251204000000_tags_upper_rollback.sql");
    assert_eq!(
        lost[1]["message"],
        "public.tags had 20 rows before 20251204000000 applied and as many after its rollback, but not the same rows"
    );
    assert!(!lost.iter().any(|f| f["message"].as_str().unwrap().contains("public.notes")), "rows kept, nothing said");
    assert!(run.stderr.contains("step 5 rows after rollback: 2 table(s) LOST rows (data_lost)"), "{run}");
    let dir = sandbox.rehearsal_dirs().pop().unwrap();
    let md = std::fs::read_to_string(dir.join("SUMMARY.md")).unwrap();
    assert!(
        md.contains("- error: `data_lost supabase/migrations.backup/20251202000000_accounts_plan_rollback.sql:2: public.accounts had 1000 rows"),
        "{md}"
    );
    sandbox.assert_no_secrets(&run);
}
