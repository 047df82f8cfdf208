//! The data plan in a rehearsal: the active molecule rehearsed over a baseline and recorded, a
//! fourth attempt refused, a malformed plan or a molecule matching nothing refused untouched.

mod common;

use common::{prepare, Sandbox};
use serde_json::Value;

/// The plan path inside the sandbox, so no test touches /tmp/data_plan.json.
fn plan_arg(sandbox: &Sandbox) -> String {
    sandbox.root.join("data_plan.json").to_string_lossy().into_owned()
}

fn molecule_tree(name: &str) -> Sandbox {
    let sandbox = Sandbox::with_repo_tree(name);
    let plan = serde_json::json!({
        "owner": "data team",
        "molecules": [
            {"id": "ab", "migrations": ["supabase/migrations/20251019024000_ab_harness_exposures.sql"], "status": "pending", "attempts": 0, "evidence": [], "ticket": "DATA-42"},
            {"id": "done", "migrations": ["supabase/migrations/2025101109*.sql"], "status": "completed", "attempts": 1, "evidence": ["old.log"]}
        ]
    });
    std::fs::write(plan_arg(&sandbox), serde_json::to_string_pretty(&plan).unwrap()).unwrap();
    sandbox
}

fn read_plan(sandbox: &Sandbox) -> Value {
    serde_json::from_str(&std::fs::read_to_string(plan_arg(sandbox)).unwrap()).unwrap()
}

#[test]
fn the_plans_active_molecule_is_rehearsed_over_a_baseline_and_recorded() {
    prepare();
    let sandbox = molecule_tree("molecule");
    let plan = plan_arg(&sandbox);
    let run = sandbox.xtask(&["stage-rehearse", "--plan", &plan, "--json"]);
    assert_eq!(run.code, Some(0), "{run}");
    let s = run.json();
    let rows = s["migrations"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "only the active molecule's migration is rehearsed: {rows:#?}");
    assert_eq!(rows[0]["molecule"], "ab");
    assert_eq!(rows[0]["version"], "20251019024000");
    assert_eq!(run.stderr.matches("step 4 baseline ").count(), 8, "the earlier migrations form the baseline:\n{run}");
    assert_eq!(rows[0]["rollback"]["status"], "rolled_back", "the baseline is not rolled back; the molecule is");

    let p = read_plan(&sandbox);
    assert_eq!(p["owner"], "data team", "unknown fields are kept");
    let ab = &p["molecules"][0];
    assert_eq!(ab["status"], "completed");
    assert_eq!(ab["attempts"], 1);
    assert_eq!(ab["ticket"], "DATA-42");
    let evidence: Vec<&str> = ab["evidence"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(evidence.iter().any(|e| e.ends_with("/migration_apply.log")), "{evidence:?}");
    assert!(evidence.iter().any(|e| e.ends_with("/mcp_attempt1.jsonl")), "{evidence:?}");
    assert_eq!(
        p["molecules"][1],
        serde_json::json!({"id": "done", "migrations": ["supabase/migrations/2025101109*.sql"], "status": "completed", "attempts": 1, "evidence": ["old.log"]}),
        "other molecules untouched"
    );

    let day = sandbox.rehearsal_dir().parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
    let attempts = sandbox.read(&format!("artifacts/data/{day}/mcp_attempt1.jsonl"));
    assert_eq!(attempts.lines().count(), 1);
    let line: Value = serde_json::from_str(attempts.lines().next().unwrap()).unwrap();
    assert_eq!(
        (line["molecule"].as_str(), line["attempt"].as_u64(), line["outcome"].as_str()),
        (Some("ab"), Some(1), Some("completed"))
    );
    assert_eq!(line["files"][0], "supabase/migrations/20251019024000_ab_harness_exposures.sql");
}

#[test]
fn a_fourth_attempt_is_refused_and_the_molecule_blocked() {
    prepare();
    let sandbox = molecule_tree("attempts");
    let plan = plan_arg(&sandbox);
    let mut p = read_plan(&sandbox);
    p["molecules"][0]["attempts"] = 3.into();
    p["molecules"][0]["status"] = "failed".into();
    std::fs::write(&plan, serde_json::to_string(&p).unwrap()).unwrap();
    let run = sandbox.xtask(&["stage-rehearse", "--plan", &plan]);
    assert_eq!(run.code, Some(3), "{run}");
    assert!(run.stderr.contains("halted: molecule `ab` has used its 3 attempts; marked blocked"), "{run}");
    assert_eq!(read_plan(&sandbox)["molecules"][0]["status"], "blocked");
    assert!(!sandbox.path("artifacts").exists(), "nothing was rehearsed");
}

#[test]
fn bad_plans_are_refused_and_left_untouched() {
    let sandbox = molecule_tree("bad-plan");
    let plan = plan_arg(&sandbox);
    std::fs::write(&plan, "{\n  \"molecules\": [\n    {\"id\": \"ab\",, }\n  ]\n}\n").unwrap();
    let before = std::fs::read(&plan).unwrap();
    let run = sandbox.xtask(&["stage-rehearse", "--plan", &plan]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains(&format!("error: {plan}:3:17: the data plan is not valid JSON")), "{run}");
    assert_eq!(std::fs::read(&plan).unwrap(), before);

    let sandbox = molecule_tree("no-match");
    let plan = plan_arg(&sandbox);
    let mut p = read_plan(&sandbox);
    p["molecules"][0]["migrations"] = serde_json::json!(["supabase/migrations/1999*.sql"]);
    std::fs::write(&plan, serde_json::to_string(&p).unwrap()).unwrap();
    let before = std::fs::read(&plan).unwrap();
    let run = sandbox.xtask(&["stage-rehearse", "--plan", &plan]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr.contains("molecule `ab` in")
            && run.stderr.contains("matches no migration file (globs: supabase/migrations/1999*.sql)"),
        "{run}"
    );
    assert_eq!(std::fs::read(&plan).unwrap(), before, "nothing written to the plan");
    let run = sandbox.xtask(&["stage-rehearse", "--plan", &plan, "--molecule", "nope"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("molecule `nope` is not in the data plan"), "{run}");
    assert!(!sandbox.path("artifacts").exists());
}
