//! Staging as it really is: a migration file edited after it was applied no longer says what the
//! target ran. Step 3 compares each applied file, split as the Supabase CLI splits it, with the
//! statements its history row holds, and names the first statement that differs.

mod common;

use common::{Sandbox, Stack};

#[test]
fn a_migration_edited_after_it_applied_is_named_with_its_statement() {
    let stack = Stack::start();
    let sandbox = Sandbox::new("edited-after-apply");
    sandbox.with_vault(&stack.dsn());
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('contract runs');\n");
    sandbox.write(
        "supabase/migrations/20250101000000_notes.sql",
        "create table if not exists public.notes (id int primary key, body text);\n\
         alter table public.notes enable row level security;\n",
    );
    sandbox
        .write("supabase/migrations.backup/20250101000000_notes_rollback.sql", "drop table if exists public.notes;\n");
    let first = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json", "--json"]);
    assert_eq!(first.code, Some(0), "{first}");
    assert!(!first.json()["findings"].to_string().contains("edited_after_apply"), "{first}");

    // Someone changes the applied file instead of writing a new migration.
    sandbox.write(
        "supabase/migrations/20250101000000_notes.sql",
        "create table if not exists public.notes (id int primary key, body text, pinned boolean);\n\
         alter table public.notes enable row level security;\n",
    );
    let second = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json", "--json"]);
    let s = second.json();
    let edited: Vec<&serde_json::Value> =
        s["findings"].as_array().unwrap().iter().filter(|f| f["class"] == "edited_after_apply").collect();
    assert_eq!(edited.len(), 1, "{second}");
    assert_eq!(edited[0]["severity"], "warning");
    assert_eq!(edited[0]["file"], "supabase/migrations/20250101000000_notes.sql");
    assert_eq!(edited[0]["line"], 1);
    assert_eq!(
        edited[0]["message"],
        "supabase/migrations/20250101000000_notes.sql was edited after it was applied here: statement 1 is \
         `create table if not exists public.notes (id int primary key, body text, pinned boolean)` in the file and \
         `create table if not exists public.notes (id int primary key, body text)` in the history"
    );
    assert!(edited[0]["hint"].as_str().unwrap().contains("supabase migration fetch"), "{}", edited[0]);
    sandbox.assert_no_secrets(&second);
}
