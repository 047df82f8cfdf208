//! `cargo xtask stage-rehearse` end to end on the local target: the green tree passes with every
//! artifact in place; the red tree gets each fault reported with its class; bad input is refused.

mod common;

use std::process::Command;

use common::{prepare, Sandbox};
use serde_json::Value;

fn summary(sandbox: &Sandbox) -> Value {
    serde_json::from_str(&std::fs::read_to_string(sandbox.rehearsal_dir().join("summary.json")).unwrap()).unwrap()
}

/// The plan path inside the sandbox, so no test touches /tmp/data_plan.json.
fn plan_arg(sandbox: &Sandbox) -> String {
    sandbox.root.join("data_plan.json").to_string_lossy().into_owned()
}

#[test]
fn the_green_tree_passes_end_to_end_with_every_artifact() {
    prepare();
    let sandbox = Sandbox::with_repo_tree("rehearse-green");
    common::copy_dir(&common::repo_root().join("docs"), &sandbox.path("docs"));
    let plan = plan_arg(&sandbox);
    let run = sandbox.xtask(&["stage-rehearse", "--plan", &plan]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.starts_with("target: local (no staging vault files"), "{run}");
    for step in [
        "step 0 alignment",
        "step 2 connectivity: postgres at 127.0.0.1 (IPv4)",
        "step 3 inventory: supabase CLI 3.",
        "step 4 apply",
        "step 5 rollback",
        "step 5 re-apply",
        "step 6 rls: 41 of 41",
        "step 7 inventory after: 0 pending, 9 applied",
        "step 8 hand-off",
    ] {
        assert!(run.stderr.contains(step), "progress line {step:?}:\n{run}");
    }
    assert!(run.stdout.contains("20251019004500_programmatic_seo_blueprints  applied   rolled_back  applied"), "{run}");
    assert!(run.stdout.contains("schema after rollback: identical to before the apply"), "{run}");
    assert!(
        run.stdout.contains(&format!(
            "logs in {}/:\n  ipv4_pooler_check_",
            sandbox.rehearsal_dir().strip_prefix(&sandbox.workdir).unwrap().display()
        )),
        "{run}"
    );

    let dir = sandbox.rehearsal_dir();
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    let fixed = [
        "MANIFEST.sha256",
        "SUMMARY.md",
        "index.html",
        "migration_apply.log",
        "migration_rollback.log",
        "migration_status_post.txt",
        "rls_contract.log",
        "schema_after_rollback.sql",
        "schema_before.sql",
        "summary.json",
    ];
    for name in fixed {
        assert!(names.contains(&name.to_string()), "{name} missing from {names:?}");
    }
    assert!(
        names.iter().any(|n| n.starts_with("ipv4_pooler_check_")
            && n.ends_with(".log")
            && n.len() == "ipv4_pooler_check_090000.log".len()),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.starts_with("migration_status_pre_") && n.ends_with(".txt")), "{names:?}");
    assert!(!names.contains(&"schema_rollback.diff".to_string()), "no diff when the schema is restored");
    assert_eq!(names.len(), fixed.len() + 2, "nothing else: {names:?}");
    let day = dir.parent().unwrap();
    assert_eq!(std::fs::read_dir(day).unwrap().count(), 1, "the pre-run transcripts moved into the rehearsal dir");

    let check = Command::new("sha256sum").args(["-c", "MANIFEST.sha256"]).current_dir(&dir).output().unwrap();
    assert!(check.status.success(), "sha256sum -c: {}", String::from_utf8_lossy(&check.stdout));
    // Every file the run wrote, and every input it rehearsed: 9 migrations, 9 rollbacks, the contract.
    let checked = String::from_utf8_lossy(&check.stdout).to_string();
    assert_eq!(checked.lines().count(), names.len() - 1 + 19, "{checked}");
    assert!(checked.contains("../../../../supabase/migrations/20251011090000_inventory_bundle.sql: OK"), "{checked}");
    assert!(checked.contains("../../../../supabase/rls_tests.sql: OK"), "{checked}");

    let rollback_log = std::fs::read_to_string(dir.join("migration_rollback.log")).unwrap();
    let first = rollback_log.lines().next().unwrap();
    assert_eq!(
        first, "==> rollback supabase/migrations.backup/20251019024000_ab_harness_exposures_rollback.sql",
        "newest first"
    );
    let apply_log = std::fs::read_to_string(dir.join("migration_apply.log")).unwrap();
    assert_eq!(
        apply_log.matches("==> supabase/migrations/").count(),
        18,
        "applied, then re-applied under `== re-apply`"
    );
    assert!(apply_log.contains("\n== re-apply\n"), "{apply_log}");

    let s = summary(&sandbox);
    assert_eq!(s["outcome"], "passed");
    assert_eq!(s["schema_restored"], true);
    assert_eq!(s["migrations"][0]["rollback"]["status"], "rolled_back");
    assert_eq!(
        s["migrations"][0]["rollback"]["file"],
        "supabase/migrations.backup/20251011090000_inventory_bundle_rollback.sql"
    );
    assert_eq!(s["migrations"][0]["reapply"]["status"], "applied");
    assert_eq!(s["inventory"]["pre"]["pending"].as_array().unwrap().len(), 9);
    assert_eq!(s["inventory"]["post"]["applied"].as_array().unwrap().len(), 9);
    assert!(s["findings"].as_array().unwrap().is_empty());

    let md = std::fs::read_to_string(dir.join("SUMMARY.md")).unwrap();
    assert!(
        md.starts_with("# Rehearsal summary: rehearsal_") && md.contains("| Outcome | **passed** (exit 0) |"),
        "{md}"
    );
    assert!(
        md.contains("| `20251011090000_inventory_bundle` | applied | rolled back | applied |"),
        "a Markdown table, not a pasted terminal:\n{md}"
    );

    // The feedback file: header once, hand-off appended, a person's words kept.
    let feedback_rel = format!("feedback/data/{}.md", day.file_name().unwrap().to_string_lossy());
    let first_day = sandbox.read(&feedback_rel);
    for part in [
        "## Objective",
        "## Planned commands",
        "## Artifact folder",
        "docs/runbooks/agent_startup_checklist.md",
        "docs/directions/data.md",
        "## Hand-off: rehearsal_",
        "- Outcome: **passed** (exit 0)",
    ] {
        assert!(first_day.contains(part), "{part:?} missing:\n{first_day}");
    }
    let person = format!("{first_day}\nNote from Dana: checked with DevOps, window is Thursday.\n");
    sandbox.write(&feedback_rel, &person);
    std::fs::remove_dir_all(sandbox.path("artifacts")).unwrap();
    let again = sandbox.xtask(&["stage-rehearse", "--plan", &plan]);
    assert_eq!(again.code, Some(0), "{again}");
    let second_day = sandbox.read(&feedback_rel);
    assert!(second_day.starts_with(&person), "what a person wrote is never changed");
    assert_eq!(second_day.matches("## Objective").count(), 1, "the header is created once");
    assert_eq!(second_day.matches("## Hand-off: rehearsal_").count(), 2);
    assert!(!std::path::Path::new(&plan).exists(), "no plan, none written");
    sandbox.assert_nothing_left();
}

#[test]
fn the_red_tree_reports_each_fault_with_its_class_and_never_rolls_back_a_failed_apply() {
    prepare();
    let sandbox = Sandbox::new("rehearse-red");
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('contract runs');\n");
    sandbox.write("supabase/migrations/20250101000000_accounts.sql", "create table public.accounts (id int primary key, email text);\nalter table public.accounts enable row level security;\ncreate index accounts_email_idx on public.accounts (email);\n");
    sandbox.write("supabase/migrations.backup/20250101000000_accounts_rollback.sql", "drop table public.accounts;\n");
    // References a column that does not exist.
    sandbox.write(
        "supabase/migrations/20250102000000_plan_index.sql",
        "create index accounts_plan_idx on public.accounts (plan);\n",
    );
    sandbox.write(
        "supabase/migrations.backup/20250102000000_plan_index_rollback.sql",
        "drop index public.accounts_plan_idx;\n",
    );
    // Re-creates an existing index.
    sandbox.write(
        "supabase/migrations/20250103000000_email_index_again.sql",
        "create index accounts_email_idx on public.accounts (email);\n",
    );
    sandbox.write(
        "supabase/migrations.backup/20250103000000_email_index_again_rollback.sql",
        "drop index if exists public.accounts_email_idx;\n",
    );
    // A table without RLS and without a rollback.
    sandbox.write("supabase/migrations/20250104000000_audit_log.sql", "-- audit trail\ncreate table public.audit_log (id bigint generated always as identity primary key, note text);\n");
    // A rollback that fails on a dependent object.
    sandbox.write("supabase/migrations/20250105000000_account_plans.sql", "alter table public.accounts add column tier text;\ncreate view public.account_tiers as select id, tier from public.accounts;\n");
    sandbox.write(
        "supabase/migrations.backup/20250105000000_account_plans_rollback.sql",
        "alter table public.accounts drop column tier;\ndrop view public.account_tiers;\n",
    );

    let plan = plan_arg(&sandbox);
    let run = sandbox.xtask(&["stage-rehearse", "--plan", &plan]);
    assert_eq!(run.code, Some(1), "{run}");
    let s = summary(&sandbox);
    assert_eq!(s["outcome"], "failed");
    let findings = s["findings"].as_array().unwrap();
    let has = |class: &str, code: Option<&str>, file: &str, line: u64| {
        findings
            .iter()
            .any(|f| f["class"] == class && f["sqlstate"].as_str() == code && f["file"] == file && f["line"] == line)
    };
    assert!(
        has("undefined_object", Some("42703"), "supabase/migrations/20250102000000_plan_index.sql", 1),
        "{findings:#?}"
    );
    assert!(
        has("duplicate_object", Some("42P07"), "supabase/migrations/20250103000000_email_index_again.sql", 1),
        "{findings:#?}"
    );
    assert!(has("rls_disabled", None, "supabase/migrations/20250104000000_audit_log.sql", 2), "{findings:#?}");
    assert!(
        has(
            "dependent_objects",
            Some("2BP01"),
            "supabase/migrations.backup/20250105000000_account_plans_rollback.sql",
            1
        ),
        "{findings:#?}"
    );

    let rows = s["migrations"].as_array().unwrap();
    let row = |v: &str| rows.iter().find(|r| r["version"] == v).unwrap().clone();
    assert_eq!(row("20250102000000")["apply"]["status"], "failed");
    assert_eq!(row("20250102000000")["rollback"]["status"], "skipped");
    assert_eq!(row("20250104000000")["rollback"]["status"], "missing");
    assert_eq!(row("20250105000000")["rollback"]["status"], "failed");
    assert_eq!(row("20250105000000")["rollback"]["error"]["class"], "dependent_objects");
    assert_eq!(s["schema_restored"], false);
    assert!(s["blockers"].as_array().unwrap().iter().any(|b| b
        .as_str()
        .unwrap()
        .contains("no rollback script for supabase/migrations/20250104000000_audit_log.sql")));

    let dir = sandbox.rehearsal_dir();
    let rollback_log = std::fs::read_to_string(dir.join("migration_rollback.log")).unwrap();
    assert!(
        !rollback_log.contains("plan_index_rollback"),
        "the rollback of a failed apply never runs:\n{rollback_log}"
    );
    assert!(!rollback_log.contains("email_index_again_rollback"), "{rollback_log}");
    assert!(
        rollback_log
            .contains("!! rollback failure: supabase/migrations.backup/20250105000000_account_plans_rollback.sql"),
        "{rollback_log}"
    );
    let diff = std::fs::read_to_string(dir.join("schema_rollback.diff")).unwrap();
    assert!(diff.contains("audit_log"), "{diff}");

    // The summary and `scan` of the rehearsal's logs agree finding for finding.
    let logs: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log" || x == "txt"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["scan", "--json"];
    args.extend(logs.iter().map(String::as_str));
    let scanned = sandbox.xtask(&args).json()["findings"].as_array().unwrap().clone();
    let key = |f: &Value| format!("{} {} {} {} {}", f["class"], f["sqlstate"], f["file"], f["line"], f["message"]);
    let mut from_logs: Vec<String> = findings.iter().filter(|f| !f["log"].is_null()).map(key).collect();
    let mut from_scan: Vec<String> = scanned.iter().map(key).collect();
    from_logs.sort();
    from_scan.sort();
    assert_eq!(from_logs, from_scan, "summary and scan disagree");
    assert!(
        findings.iter().any(|f| f["log"].is_null() && f["class"] == "rls_disabled"),
        "advisor findings come from the catalog, not a log"
    );

    for line in [
        "undefined_object 42703 supabase/migrations/20250102000000_plan_index.sql:1",
        "duplicate_object 42P07 supabase/migrations/20250103000000_email_index_again.sql:1",
        "rls_disabled supabase/migrations/20250104000000_audit_log.sql:2",
        "dependent_objects 2BP01 supabase/migrations.backup/20250105000000_account_plans_rollback.sql:1",
        "what to do:",
        "schema after rollback: DIFFERS",
    ] {
        assert!(run.stdout.contains(line), "{line:?}:\n{run}");
    }
    sandbox.assert_nothing_left();
}

#[test]
fn an_orphan_rollback_is_a_warning_not_an_error() {
    prepare();
    let sandbox = Sandbox::with_repo_tree("orphan");
    sandbox.write("supabase/migrations.backup/19990101000000_gone_rollback.sql", "select 1;\n");
    let run = sandbox.xtask(&["stage-rehearse", "--plan", &plan_arg(&sandbox), "--json"]);
    assert_eq!(run.code, Some(0), "{run}");
    let warnings = run.json()["warnings"].clone();
    assert!(
        warnings
            .to_string()
            .contains("supabase/migrations.backup/19990101000000_gone_rollback.sql rolls back no migration"),
        "{warnings}"
    );
}

#[test]
fn fail_fast_stops_the_loop_and_no_atomic_runs_the_runbooks_command() {
    prepare();
    let sandbox = Sandbox::new("fail-fast");
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('ok');\n");
    sandbox.write("supabase/migrations/20250101000000_a.sql", "create table public.a (id int);\nalter table public.a enable row level security;\nselect * from public.missing;\n");
    sandbox.write(
        "supabase/migrations/20250102000000_b.sql",
        "create table public.b (id int);\nalter table public.b enable row level security;\n",
    );
    let plan = plan_arg(&sandbox);
    let run = sandbox.xtask(&["stage-rehearse", "--plan", &plan, "--fail-fast", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let s = run.json();
    assert_eq!(s["migrations"][0]["apply"]["status"], "failed");
    assert_eq!(s["migrations"][1]["apply"]["status"], "skipped");

    // --no-atomic: no transaction, so the failed file's first statement stays (the runbook's behaviour).
    let sandbox = Sandbox::new("no-atomic");
    sandbox.write(
        "supabase/rls_tests.sql",
        "select plan(1);\nselect hasnt_table('public', 'a', 'the half-applied table is gone');\n",
    );
    sandbox.write("supabase/migrations/20250101000000_a.sql", "create table public.a (id int);\nalter table public.a enable row level security;\nselect * from public.missing;\n");
    let run = sandbox.xtask(&["stage-rehearse", "--plan", &plan_arg(&sandbox), "--no-atomic", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let apply = std::fs::read_to_string(sandbox.rehearsal_dir().join("migration_apply.log")).unwrap();
    assert!(apply.contains("-- not atomic: --no-atomic"), "{apply}");
    assert_eq!(run.json()["rls"]["failed"], 1, "without a transaction the table survived the failure");
}

#[test]
fn a_concurrent_index_runs_outside_a_transaction_and_the_log_says_so() {
    prepare();
    let sandbox = Sandbox::new("concurrently");
    sandbox.write(
        "supabase/rls_tests.sql",
        "select plan(1);\nselect has_index('public', 'a', 'a_id_idx', 'index built');\n",
    );
    sandbox.write(
        "supabase/migrations/20250101000000_a.sql",
        "create table public.a (id int);\nalter table public.a enable row level security;\n",
    );
    sandbox.write("supabase/migrations.backup/20250101000000_a_rollback.sql", "drop table public.a;\n");
    sandbox.write(
        "supabase/migrations/20250102000000_a_idx.sql",
        "create index concurrently if not exists a_id_idx on public.a (id);\n",
    );
    sandbox.write(
        "supabase/migrations.backup/20250102000000_a_idx_rollback.sql",
        "drop index concurrently if exists public.a_id_idx;\n",
    );
    let run = sandbox.xtask(&["stage-rehearse", "--plan", &plan_arg(&sandbox), "--json"]);
    assert_eq!(run.code, Some(0), "{run}");
    let s = run.json();
    assert_eq!(s["migrations"][1]["apply"]["atomic"], false);
    assert_eq!(s["migrations"][0]["apply"]["atomic"], true);
    let dir = sandbox.rehearsal_dir();
    let apply = std::fs::read_to_string(dir.join("migration_apply.log")).unwrap();
    assert!(apply.contains("==> supabase/migrations/20250102000000_a_idx.sql\n-- not atomic: CREATE INDEX CONCURRENTLY cannot run inside a transaction block"), "{apply}");
    let rollback = std::fs::read_to_string(dir.join("migration_rollback.log")).unwrap();
    assert!(rollback.contains("-- not atomic: DROP INDEX CONCURRENTLY"), "{rollback}");
}
