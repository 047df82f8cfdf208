//! The single-step commands: connectivity, inventory, apply (a replay attempt), rollback (only
//! what an earlier run applied to the same named target), feedback.

mod common;

use common::{prepare, Sandbox, Stack};
use serde_json::Value;

#[test]
fn connectivity_and_inventory_report_without_a_rehearsal_dir() {
    prepare();
    let sandbox = Sandbox::with_repo_tree("step-checks");
    let run = sandbox.xtask(&["connectivity"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.starts_with("postgres at 127.0.0.1 (IPv4): artifacts/ops/"), "{run}");
    let run = sandbox.xtask(&["inventory"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("pending (9): 20251011090000 "), "{run}");
    assert!(run.stdout.contains("pending without a rollback script (0)"), "{run}");
    let day = std::fs::read_dir(sandbox.path("artifacts/ops")).unwrap().next().unwrap().unwrap().path();
    let names: Vec<String> =
        std::fs::read_dir(day).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 2, "the two transcripts, as the runbook leaves them in LOG_ROOT: {names:?}");
    assert!(!sandbox.path("feedback").exists(), "a check starts no feedback header");
    sandbox.assert_nothing_left();
}

#[test]
fn apply_and_rollback_on_a_named_staging_target_undo_exactly_what_was_applied() {
    let stack = Stack::start();
    let sandbox = Sandbox::with_repo_tree("step-rollback");
    sandbox.with_vault(&stack.dsn());
    let plan = sandbox.root.join("plan.json");
    std::fs::write(&plan, r#"{"molecules": [{"id": "ab", "migrations": ["supabase/migrations/20251019024000_*.sql"], "status": "pending", "attempts": 0}]}"#).unwrap();
    let plan = plan.to_str().unwrap().to_string();

    let refused = sandbox.xtask(&["rollback"]);
    assert_eq!(refused.code, Some(2), "{refused}");
    assert!(
        refused
            .stderr
            .contains("rollback needs --target staging or --target url: it never runs on a target chosen by default"),
        "{refused}"
    );
    let refused = sandbox.xtask(&["rollback", "--target", "local"]);
    assert_eq!(refused.code, Some(2), "{refused}");
    let nothing = sandbox.xtask(&["rollback", "--target", "staging", "--plan", &plan]);
    assert_eq!(nothing.code, Some(2), "{nothing}");
    assert!(nothing.stderr.contains("no earlier run applied anything to 127.0.0.1/postgres"), "{nothing}");

    // The molecule needs the earlier migrations on staging: apply them all, then replay the molecule.
    let base = sandbox.xtask(&["apply", "--target", "staging", "--plan", "/nonexistent/plan.json"]);
    assert_eq!(base.code, Some(0), "{base}");
    let inventory = sandbox.xtask(&["inventory", "--target", "staging"]);
    assert!(inventory.stdout.contains("pending (0)"), "{inventory}");

    let undo = sandbox.xtask(&["rollback", "--target", "staging", "--plan", &plan, "--json"]);
    assert_eq!(undo.code, Some(0), "{undo}");
    let rows = undo.json()["migrations"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 9, "{rows:#?}");
    assert!(rows.iter().all(|r| r["rollback"]["status"] == "rolled_back"), "{rows:#?}");
    let log = std::fs::read_to_string(sandbox.rehearsal_dirs().last().unwrap().join("migration_rollback.log")).unwrap();
    assert!(log.starts_with("==> rollback supabase/migrations.backup/20251019024000_"), "newest first:\n{log}");
    let inventory = sandbox.xtask(&["inventory", "--target", "staging"]);
    assert!(inventory.stdout.contains("pending (9)"), "{inventory}");

    // A replay attempt of the molecule: applied, counted, still in progress (not yet verified).
    let replay = sandbox.xtask(&["apply", "--target", "staging", "--plan", &plan, "--molecule", "ab", "--json"]);
    assert_eq!(replay.code, Some(0), "{replay}");
    assert_eq!(replay.json()["migrations"].as_array().unwrap().len(), 1);
    let p: Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    assert_eq!(
        (p["molecules"][0]["status"].as_str(), p["molecules"][0]["attempts"].as_u64()),
        (Some("in_progress"), Some(1))
    );
    sandbox.assert_no_secrets(&replay);
}

#[test]
fn feedback_starts_the_header_then_appends_the_latest_hand_off_once() {
    prepare();
    let sandbox = Sandbox::with_repo_tree("step-feedback");
    let run = sandbox.xtask(&["feedback"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.starts_with("started today's header: feedback/data/"), "{run}");
    let again = sandbox.xtask(&["feedback"]);
    assert!(again.stdout.contains("has its header and there is no rehearsal today to hand off"), "{again}");
    // `rls` is a check before a PR: it hands nothing off.
    let rls = sandbox.xtask(&["rls"]);
    assert_eq!(rls.code, Some(0), "{rls}");
    let none = sandbox.xtask(&["feedback"]);
    assert!(none.stdout.contains("there is no rehearsal today to hand off"), "{none}");
    let rehearsal = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json"]);
    assert_eq!(rehearsal.code, Some(0), "{rehearsal}");
    // The rehearsal appended its own hand-off; `feedback` says so rather than adding it twice.
    let run = sandbox.xtask(&["feedback"]);
    assert!(run.stdout.contains("already holds the hand-off of rehearsal_"), "{run}");
    let text = std::fs::read_to_string(
        std::fs::read_dir(sandbox.path("feedback/data")).unwrap().next().unwrap().unwrap().path(),
    )
    .unwrap();
    let cut = text.rfind("\n## Hand-off: ").unwrap();
    sandbox.write(
        &format!(
            "feedback/data/{}",
            std::fs::read_dir(sandbox.path("feedback/data"))
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .file_name()
                .to_string_lossy()
        ),
        &text[..cut + 1],
    );
    let run = sandbox.xtask(&["feedback"]);
    assert!(run.stdout.starts_with("appended the hand-off of rehearsal_"), "{run}");
    let run = sandbox.xtask(&["feedback"]);
    assert!(run.stdout.contains("already holds the hand-off of rehearsal_"), "{run}");
    let rel = std::fs::read_dir(sandbox.path("feedback/data")).unwrap().next().unwrap().unwrap().path();
    let text = std::fs::read_to_string(rel).unwrap();
    assert_eq!(text.matches("## Objective").count(), 1);
    assert_eq!(text.matches("## Hand-off: rehearsal_").count(), 1);
}
