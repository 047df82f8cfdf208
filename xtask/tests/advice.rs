//! What a new user met, made tests: the advice points at the file at fault, and the tool works on
//! the tree the user stands in.

mod common;

use std::process::Command;

use common::{prepare, Sandbox};

/// The advice must point at the file at fault. A rollback that leaves a table
/// is named (not the migration, whose re-apply would only fail on the leftover); a missing rollback
/// stops the older rollbacks (they would fail on the newer migration's foreign keys, for no fault of
/// their own); a failure that follows from an earlier one says so; the server's DETAIL and HINT stay
/// with the finding.
#[test]
fn the_advice_names_the_file_at_fault() {
    prepare();
    let sandbox = common::red_tree("advice");
    let run = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json", "--json"]);
    let s = run.json();
    let notes = s["migrations"].as_array().unwrap().iter().find(|r| r["version"] == "20250103000000").unwrap().clone();
    assert_eq!(
        (notes["rollback"]["status"].as_str(), notes["reapply"]["status"].as_str()),
        (Some("incomplete"), Some("skipped")),
        "{run}"
    );
    let finding = s["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["class"] == "rollback_incomplete")
        .expect("a rollback_incomplete finding")
        .clone();
    assert_eq!(finding["file"], "supabase/migrations.backup/20250103000000_notes_rollback.sql", "{finding}");
    assert!(finding["message"].as_str().unwrap().contains("relation notes (still there)"), "{finding}");
    assert!(!s["findings"].to_string().contains("duplicate_object"), "no advice to amend the forward migration: {run}");
    assert!(
        s["next_actions"]
            .to_string()
            .contains("make supabase/migrations.backup/20250103000000_notes_rollback.sql undo all"),
        "{run}"
    );

    // A missing rollback: the older one is not run against the newer migration's objects.
    let sandbox = Sandbox::new("advice-missing");
    sandbox.write(
        "supabase/migrations/20250101000000_items.sql",
        "create table public.items (id int primary key);\nalter table public.items enable row level security;\n",
    );
    sandbox.write("supabase/migrations.backup/20250101000000_items_rollback.sql", "drop table public.items;\n");
    sandbox.write(
        "supabase/migrations/20250102000000_nodes.sql",
        "create table public.nodes (id int primary key, item_id int references public.items);\nalter table public.nodes enable row level security;\n",
    );
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('runs');\n");
    let run = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json", "--json"]);
    let s = run.json();
    let status: Vec<&str> =
        s["migrations"].as_array().unwrap().iter().map(|r| r["rollback"]["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["skipped", "missing"], "{run}");
    assert!(!s["findings"].to_string().contains("dependent_objects"), "{run}");
    assert!(
        s["blockers"].to_string().contains("not rolled back, because supabase/migrations/20250102000000_nodes.sql could not be rolled back first (rollbacks go newest first): supabase/migrations/20250101000000_items.sql"),
        "{run}"
    );
    let run = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json"]);
    assert!(run.stderr.contains("; 1 without a rollback script (a blocker)"), "{run}");

    // A typo: psql's own hint is kept, and a later failure is said to follow from it.
    let sandbox = Sandbox::new("advice-typo");
    sandbox.write(
        "supabase/migrations/20250101000000_a.sql",
        "create table public.a (requester_id int);\nalter table public.a enable row level security;\n\
         create view public.a_view with (security_invoker = true) as select requestor_id from public.a;\n",
    );
    sandbox.write(
        "supabase/migrations/20250102000000_b.sql",
        "create view public.b with (security_invoker = true) as select * from public.a_view;\n",
    );
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('runs');\n");
    let run = sandbox.xtask(&["rls", "--json"]);
    let s = run.json();
    assert!(s["findings"].to_string().contains("(psql's hint: Perhaps you meant to reference the column"), "{run}");
    assert!(
        s["next_actions"].to_string().contains("then replay: supabase/migrations/20250102000000_b.sql failed too"),
        "{run}"
    );
}

/// Run without `--workdir` from inside a tree: the tool works on that tree, not on its own.
#[test]
fn without_workdir_the_tree_you_stand_in_is_the_one() {
    let sandbox = Sandbox::new("cwd-tree");
    sandbox.write(
        "supabase/migrations/20250101000000_a.sql",
        "create table if not exists public.a (id int);\nalter table public.a enable row level security;\n",
    );
    std::fs::create_dir_all(sandbox.path("supabase/tests/deeper")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("lint")
        .current_dir(sandbox.path("supabase/tests/deeper"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("missing_rollback supabase/migrations/20250101000000_a.sql"), "{stdout}");
}

/// A call into an extension the local target only stands in for (pgsodium: its schema, none of
/// its functions) is not the migration's fault: the advice says so and sends it to staging.
#[test]
fn a_call_into_a_stand_in_extension_is_sent_to_staging() {
    prepare();
    let sandbox = Sandbox::new("advice-stand-in");
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('contract runs');\n");
    sandbox.write(
        "supabase/migrations/20250101000000_keys.sql",
        "create extension if not exists pgsodium;\nselect pgsodium.crypto_aead_det_keygen();\n",
    );
    let run = sandbox.xtask(&["rls", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let s = run.json();
    let finding = s["findings"].as_array().unwrap().iter().find(|f| f["line"] == 2).expect("the call fails").clone();
    let hint = finding["hint"].as_str().unwrap();
    assert!(
        hint.starts_with("supabase/migrations/20250101000000_keys.sql:2 calls into pgsodium, which the local target only stands in for (the extension and its schema only"),
        "{hint}"
    );
    assert!(hint.contains("rehearse it on staging (`cargo xtask stage-rehearse --target staging`)"), "{hint}");
    assert!(!hint.contains("must come earlier in version order"), "{hint}");
}
