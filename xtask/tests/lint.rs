//! `cargo xtask lint`: static checks with severities from the config and per-line opt-outs; and
//! lint's findings in a rehearsal's summary (warnings reported, not failing the run).

mod common;

use common::{prepare, Sandbox};

fn lint_tree(name: &str) -> Sandbox {
    let sandbox = Sandbox::new(name);
    sandbox.write(
        "supabase/migrations/20250101000000_ok.sql",
        "create table if not exists public.ok (id int);\nalter table public.ok enable row level security;\n",
    );
    sandbox.write("supabase/migrations.backup/20250101000000_ok_rollback.sql", "drop table if exists public.ok;\n");
    sandbox.write("supabase/migrations/20250102000000_bad.sql", "-- no guard, no RLS\ncreate table public.bad (id int);\n\ncreate function public.admin() returns int language sql security definer as $$ select 1 $$;\n");
    sandbox.write("supabase/migrations/20250102000000_twin.sql", "select 1;\n");
    sandbox.write("supabase/migrations/notes.sql", "select 1;\n");
    sandbox.write("supabase/migrations.backup/20240101000000_old_rollback.sql", "drop table old;\n");
    sandbox
}

#[test]
fn lint_names_each_rule_with_its_file_line_and_severity() {
    let sandbox = lint_tree("lint-red");
    let run = sandbox.xtask(&["lint", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let findings = run.json()["findings"].as_array().unwrap().clone();
    let has = |class: &str, severity: &str, file: &str, line: u64| {
        findings
            .iter()
            .any(|f| f["class"] == class && f["severity"] == severity && f["file"] == file && f["line"] == line)
    };
    let bad = "supabase/migrations/20250102000000_bad.sql";
    assert!(has("unguarded_create", "warning", bad, 2), "{findings:#?}");
    assert!(has("rls_missing", "error", bad, 2), "{findings:#?}");
    assert!(has("security_definer_search_path", "error", bad, 4), "{findings:#?}");
    assert!(has("missing_rollback", "error", bad, 1), "{findings:#?}");
    assert!(has("duplicate_version", "error", "supabase/migrations/20250102000000_twin.sql", 1), "{findings:#?}");
    assert!(has("unversioned_file", "error", "supabase/migrations/notes.sql", 1), "{findings:#?}");
    assert!(
        has("orphan_rollback", "warning", "supabase/migrations.backup/20240101000000_old_rollback.sql", 1),
        "{findings:#?}"
    );
    assert!(
        has("unguarded_drop", "warning", "supabase/migrations.backup/20240101000000_old_rollback.sql", 1),
        "{findings:#?}"
    );
    assert!(!findings.iter().any(|f| f["file"] == "supabase/migrations/20250101000000_ok.sql"), "{findings:#?}");

    let human = sandbox.xtask(&["lint"]);
    assert!(human.stdout.contains("rls_missing supabase/migrations/20250102000000_bad.sql:2: table public.bad is created in an exposed schema"), "{human}");
    assert!(human.stdout.contains("lint: 6 error(s), 3 warning(s)"), "{human}");
}

#[test]
fn severities_come_from_the_config_and_opt_outs_from_comments() {
    let sandbox = lint_tree("lint-config");
    sandbox.remove("supabase/migrations/20250102000000_twin.sql");
    sandbox.remove("supabase/migrations/notes.sql");
    sandbox.write(
        "supabase/migrations.backup/20250102000000_bad_rollback.sql",
        "drop function if exists public.admin();\ndrop table if exists public.bad;\n",
    );
    sandbox.write("supabase/migrations/20250102000000_bad.sql", "create table public.bad (id int); -- lint:allow rls_missing\n\n-- lint:allow security_definer_search_path\ncreate function public.admin() returns int language sql security definer as $$ select 1 $$;\n");
    sandbox.write(
        "supabase/rehearsal.toml",
        "[lint]\nunguarded_create = \"error\"\norphan_rollback = \"off\"\nunguarded_drop = \"off\"\n",
    );
    let run = sandbox.xtask(&["lint", "--json"]);
    let findings = run.json()["findings"].as_array().unwrap().clone();
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(
        (findings[0]["class"].as_str(), findings[0]["severity"].as_str()),
        (Some("unguarded_create"), Some("error"))
    );

    sandbox.write("supabase/rehearsal.toml", "[lint]\nunguarded_create = \"loud\"\n");
    let run = sandbox.xtask(&["lint"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr
            .contains("supabase/rehearsal.toml: [lint] unguarded_create must be \"error\", \"warning\" or \"off\""),
        "{run}"
    );
}

#[test]
fn the_rehearsal_lints_what_it_rehearses_and_warnings_do_not_fail_it() {
    prepare();
    let sandbox = Sandbox::new("lint-rehearse");
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('ok');\n");
    sandbox.write(
        "supabase/migrations/20250101000000_a.sql",
        "create table public.a (id int);\nalter table public.a enable row level security;\n",
    );
    sandbox.write("supabase/migrations.backup/20250101000000_a_rollback.sql", "drop table public.a;\n");
    let plan = sandbox.root.join("plan.json");
    let run = sandbox.xtask(&["stage-rehearse", "--plan", plan.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, Some(0), "{run}");
    let s = run.json();
    let classes: Vec<(&str, &str)> = s["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["class"].as_str().unwrap(), f["severity"].as_str().unwrap()))
        .collect();
    assert_eq!(
        classes,
        vec![("unguarded_create", "warning"), ("unguarded_drop", "warning"), ("rls_enabled_no_policy", "warning")],
        "lint, then the advisors"
    );
    assert!(
        run.stderr.contains("step 3 lint: 2 finding(s) in the 1 migration(s) to rehearse and their rollbacks"),
        "{run}"
    );
}
