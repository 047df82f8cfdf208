//! The security advisors, each tripped for real by a migration, after the forward apply of `rls`.

mod common;

use common::{prepare, Sandbox};

#[test]
fn each_advisor_fires_on_its_mistake_with_its_severity() {
    prepare();
    let sandbox = Sandbox::new("advisors");
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('contract runs');\n");
    sandbox.write(
        "supabase/migrations/20250101000000_mistakes.sql",
        "create table public.open_table (id int);\n\
         create table public.locked (id int);\nalter table public.locked enable row level security;\n\
         create table public.forgotten (id int);\ncreate policy forgotten_read on public.forgotten for select using (true);\n\
         create function public.loose() returns int language sql as $$ select 1 $$;\n\
         create view public.owner_view as select id from public.locked;\n\
         create view public.user_emails with (security_invoker = true) as select id, email from auth.users;\n\
         create table public.notices (id int);\nalter table public.notices enable row level security;\n\
         create policy notices_anon on public.notices for select to anon using (true);\n",
    );
    let run = sandbox.xtask(&["rls", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let findings = run.json()["findings"].as_array().unwrap().clone();
    let has = |class: &str, severity: &str, needle: &str| {
        findings.iter().any(|f| {
            f["class"] == class
                && f["severity"] == severity
                && f["message"].as_str().unwrap().contains(needle)
                && f["log"].is_null()
        })
    };
    assert!(has("rls_disabled", "error", "public.open_table"), "{findings:#?}");
    assert!(has("rls_enabled_no_policy", "warning", "public.locked"), "{findings:#?}");
    assert!(has("policy_exists_rls_disabled", "error", "public.forgotten"), "{findings:#?}");
    assert!(has("function_search_path_mutable", "warning", "public.loose()"), "{findings:#?}");
    assert!(has("security_definer_view", "error", "public.owner_view"), "{findings:#?}");
    assert!(
        !has("security_definer_view", "error", "public.user_emails"),
        "security_invoker views are fine: {findings:#?}"
    );
    assert!(has("auth_users_exposed", "error", "public.user_emails"), "{findings:#?}");
    assert!(has("anon_policy_always_true", "warning", "public.notices"), "{findings:#?}");
    let open = findings
        .iter()
        .find(|f| f["class"] == "rls_disabled" && f["message"].as_str().unwrap().contains("open_table"))
        .unwrap();
    assert_eq!(
        (open["file"].as_str(), open["line"].as_u64()),
        (Some("supabase/migrations/20250101000000_mistakes.sql"), Some(1))
    );
}

/// `[advisors]` in supabase/rehearsal.toml sets an advisor's severity or turns it off;
/// `[advisors.exclude]` names objects one advisor leaves alone. The rest keep their defaults.
#[test]
fn a_project_tunes_severities_and_excludes_objects() {
    prepare();
    let sandbox = Sandbox::new("advisors-tuned");
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('contract runs');\n");
    sandbox.write(
        "supabase/migrations/20250101000000_mistakes.sql",
        "create table public.open_table (id int);\n\
         create table public.audit_feed (id int);\n\
         create table public.locked (id int);\nalter table public.locked enable row level security;\n\
         create view public.owner_view as select id from public.locked;\n",
    );
    sandbox.write(
        "supabase/rehearsal.toml",
        "[advisors]\nrls_enabled_no_policy = \"off\"\nsecurity_definer_view = \"warning\"\n\n\
         [advisors.exclude]\nrls_disabled = [\"public.audit_feed\"]\n",
    );
    let run = sandbox.xtask(&["rls", "--json"]);
    assert_eq!(run.code, Some(1), "open_table is still an error: {run}");
    let found: Vec<(String, String, String)> = run.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["class"].as_str().unwrap().into(),
                f["severity"].as_str().unwrap().into(),
                f["message"].as_str().unwrap().into(),
            )
        })
        .collect();
    let classes: Vec<(&str, &str)> = found.iter().map(|(c, s, _)| (c.as_str(), s.as_str())).collect();
    assert_eq!(classes, [("rls_disabled", "error"), ("security_definer_view", "warning")], "{found:#?}");
    assert!(found[0].2.contains("public.open_table"), "{found:#?}");

    // With the last error excluded too, warnings alone pass.
    sandbox.write(
        "supabase/rehearsal.toml",
        "[advisors]\nrls_enabled_no_policy = \"off\"\nsecurity_definer_view = \"warning\"\n\n\
         [advisors.exclude]\nrls_disabled = [\"public.audit_feed\", \"public.open_table\"]\n",
    );
    let run = sandbox.xtask(&["rls"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("warning security_definer_view"), "{run}");

    // A name that is no advisor is refused with where it is, before anything runs.
    sandbox.write("supabase/rehearsal.toml", "[advisors]\nrls_disabld = \"off\"\n");
    let run = sandbox.xtask(&["rls"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr.contains("rls_disabld") && run.stderr.contains("is not an advisor (advisors: rls_disabled,"),
        "{run}"
    );
    assert!(run.stderr.contains("line 2"), "{run}");
}

/// Every exposed schema is advised, as Supabase's linter does: those `[lint] exposed_schemas`
/// names and those PostgREST serves (`pgrst.db_schemas` on `authenticator`).
#[test]
fn the_advisors_cover_every_exposed_schema() {
    prepare();
    let sandbox = Sandbox::new("advisors-schemas");
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('contract runs');\n");
    sandbox.write("supabase/rehearsal.toml", "[lint]\nexposed_schemas = [\"public\", \"api\"]\n");
    sandbox.write(
        "supabase/migrations/20250101000000_schemas.sql",
        "create schema api;\ncreate table api.open_api (id int);\n\
         create schema reporting;\ncreate table reporting.open_report (id int);\n\
         create schema internal;\ncreate table internal.hidden (id int);\n\
         alter role authenticator set pgrst.db_schemas = 'public, reporting';\n",
    );
    let run = sandbox.xtask(&["rls", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let findings = run.json()["findings"].as_array().unwrap().clone();
    let disabled: Vec<&str> =
        findings.iter().filter(|f| f["class"] == "rls_disabled").map(|f| f["message"].as_str().unwrap()).collect();
    assert!(
        disabled.contains(&"table api.open_api is exposed to the API with row level security off"),
        "{disabled:#?}"
    );
    assert!(
        disabled.contains(&"table reporting.open_report is exposed to the API with row level security off"),
        "{disabled:#?}"
    );
    assert!(!disabled.iter().any(|m| m.contains("internal.hidden")), "a schema nobody serves: {disabled:#?}");
    let report = findings.iter().find(|f| f["message"].as_str().unwrap().contains("reporting.open_report")).unwrap();
    assert_eq!(report["file"], "supabase/migrations/20250101000000_schemas.sql", "{report}");
}
