//! The staging target through a staging-like stack the test starts itself: a throwaway cluster
//! behind a real pgbouncer in session mode with TLS and SCRAM. Vault files are read by the tool
//! (no shell), the DSN is guarded and used as given, and no secret reaches a file or a stream.

mod common;

use common::{prepare, Sandbox, Stack, ACCESS_TOKEN};

#[test]
fn with_vault_files_and_no_flags_the_staging_rehearsal_passes_and_leaks_nothing() {
    let stack = Stack::start();
    let sandbox = Sandbox::with_repo_tree("staging-green");
    common::copy_dir(&common::repo_root().join("docs"), &sandbox.path("docs"));
    sandbox.with_vault(&stack.dsn());
    let plan = sandbox.root.join("plan.json");
    std::fs::write(&plan, r#"{"molecules": [{"id": "all", "migrations": ["supabase/migrations/*.sql"], "status": "pending", "attempts": 0}]}"#).unwrap();
    // The CI's outputs too, inside the workdir so the secret scan below reads them.
    let junit = sandbox.path("reports/junit.xml");
    let mut cmd = sandbox.command(&[
        "stage-rehearse",
        "--plan",
        plan.to_str().unwrap(),
        "--github",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    cmd.env("SUPABASE_ACCESS_TOKEN", ACCESS_TOKEN).env("GITHUB_STEP_SUMMARY", sandbox.path("step_summary.md"));
    let run = common::Run::of(cmd);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout.contains(
            "verdict: Ready for the manager's sign-off: the rehearsal passed on staging (127.0.0.1/postgres)."
        ),
        "{run}"
    );
    assert!(junit.is_file() && sandbox.path("step_summary.md").is_file());
    let page = std::fs::read_to_string(sandbox.rehearsal_dir().join("index.html")).unwrap();
    assert!(
        page.contains("&#9744; approved for the production window"),
        "a passed staging rehearsal is signed off on its page"
    );
    assert!(run.stderr.starts_with("target: staging (staging vault files found: vault/occ/supabase/database_url_staging.env, vault/occ/supabase/service_key_staging.env)"), "{run}");
    assert!(run.stderr.contains("step 2 connectivity: postgres at 127.0.0.1 (IPv4)"), "{run}");
    assert!(
        run.stderr.contains("step 3 inventory: supabase CLI 3."),
        "the real CLI read the history through the pooler:\n{run}"
    );
    assert!(run.stdout.contains("rls: 41 planned, 41 ran, 41 passed"), "{run}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sandbox.rehearsal_dir().join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        summary["target"],
        serde_json::json!({"kind": "staging", "host": "127.0.0.1", "database": "postgres",
            "why": "staging vault files found: vault/occ/supabase/database_url_staging.env, vault/occ/supabase/service_key_staging.env"})
    );
    let feedback = std::fs::read_dir(sandbox.path("feedback/data")).unwrap().next().unwrap().unwrap().path();
    let feedback = std::fs::read_to_string(feedback).unwrap();
    assert!(
        feedback
            .contains("**Ready for the manager's sign-off: the rehearsal passed on staging (127.0.0.1/postgres).**"),
        "{feedback}"
    );
    assert!(
        feedback.contains("psql \"$DATABASE_URL\""),
        "commands are logged with the variable, not the DSN:\n{feedback}"
    );
    sandbox.assert_no_secrets(&run);
    // The contract alone on staging, where the rehearsal left the migrations applied.
    let mut cmd = sandbox.command(&["rls", "--target", "staging", "--json"]);
    cmd.env("SUPABASE_ACCESS_TOKEN", ACCESS_TOKEN);
    let rls = common::Run::of(cmd);
    assert_eq!(rls.code, Some(0), "{rls}");
    assert!(
        rls.stderr.starts_with("target: staging (--target staging; the contract alone, nothing is applied)"),
        "{rls}"
    );
    assert_eq!(rls.json()["rls"]["passed"], 41);
    assert!(rls.json()["migrations"].as_array().unwrap().is_empty());
    sandbox.assert_no_secrets(&rls);
    // The plan outside the workdir too.
    let plan_text = std::fs::read_to_string(&plan).unwrap();
    assert!(!plan_text.contains(common::PASSWORD) && plan_text.contains("\"completed\""), "{plan_text}");
}

fn refused(sandbox: &Sandbox, args: &[&str], messages: &[&str]) {
    let run = sandbox.xtask(args);
    assert_eq!(run.code, Some(2), "{run}");
    for m in messages {
        assert!(run.stderr.contains(m), "{m:?}:\n{run}");
    }
    assert!(
        !run.stderr.contains(common::PASSWORD) && !run.stderr.contains("s3cr%26t"),
        "the password is never printed:\n{run}"
    );
    assert!(
        !sandbox.path("artifacts").exists()
            || std::fs::read_dir(sandbox.path("artifacts/ops")).unwrap().flatten().all(|d| std::fs::read_dir(d.path())
                .unwrap()
                .flatten()
                .all(|r| !r.path().join("summary.json").exists())),
        "no rehearsal ran"
    );
}

/// `stage-rehearse --target url --db-url DSN` is refused with each of `messages`.
fn refused_dsn(sandbox: &Sandbox, dsn: &str, messages: &[&str]) {
    refused(sandbox, &["stage-rehearse", "--target", "url", "--db-url", dsn], messages);
}

#[test]
fn each_guard_refuses_with_exit_2_and_ipv6_is_named_first() {
    prepare();
    let sandbox = Sandbox::with_repo_tree("guards");
    sandbox.with_vault("unused");
    let pw = "s3cr%26t%2Fp%40ss%3Aw0rd%25";
    refused_dsn(
        &sandbox,
        &format!("postgresql://postgres:{pw}@[2600:1f18::1]:6543/postgres?sslmode=disable"),
        &[
            "refusing the DSN (host 2600:1f18::1)",
            "2600:1f18::1 resolves to IPv6 only",
            "IPv6 hosts fail today: source the IPv4 session pooler DSN from the vault",
            "sslmode is `disable`",
        ],
    );
    refused_dsn(
        &sandbox,
        &format!("postgresql://postgres:{pw}@127.0.0.1:5432/postgres?sslmode=disable"),
        &["sslmode is `disable`; it must be require or stricter"],
    );
    refused_dsn(
        &sandbox,
        &format!("postgresql://postgres:{pw}@127.0.0.2:5432/postgres?sslmode=require"),
        &["127.0.0.2 is not a session pooler host"],
    );
    refused_dsn(
        &sandbox,
        &format!("postgresql://postgres.prodref123:{pw}@127.0.0.1:5432/postgres?sslmode=require"),
        &["project ref prodref123 is listed as production"],
    );
}

#[test]
fn a_vault_without_database_url_or_a_missing_vault_file_is_named() {
    prepare();
    let sandbox = Sandbox::with_repo_tree("vault-errors");
    sandbox.with_vault("unused");
    sandbox.write("vault/occ/supabase/database_url_staging.env", "# rotated, not yet refilled\n");
    refused(
        &sandbox,
        &["stage-rehearse"],
        &["error: reading vault/occ/supabase/database_url_staging.env: no DATABASE_URL (source of the pooler DSN)"],
    );
    sandbox.remove("vault/occ/supabase/service_key_staging.env");
    sandbox.write(
        "vault/occ/supabase/database_url_staging.env",
        "DATABASE_URL=postgres://x@127.0.0.1/postgres?sslmode=require\n",
    );
    // The service key is optional: nothing the rehearsal runs needs it, so its file missing refuses
    // nothing; this DSN then fails at the connectivity check, as it should.
    let run = sandbox.xtask(&["stage-rehearse", "--target", "staging"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(!run.stderr.contains("service_key_staging.env"), "{run}");
    assert!(run.stderr.contains("error: step 2 connectivity: the database is unreachable"), "{run}");
}

#[test]
fn a_vault_value_is_never_executed() {
    prepare();
    let sandbox = Sandbox::with_repo_tree("no-exec");
    let marker = sandbox.root.join("pwned");
    sandbox.with_vault(&format!("$(touch {})", marker.display()));
    let run = sandbox.xtask(&["stage-rehearse"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(!marker.exists(), "command substitution ran");
    assert!(run.stderr.contains("is not a valid DSN"), "{run}");
}

/// The service key is not needed by any step of the rehearsal (psql and the CLI use the DSN), so
/// a vault without its file rehearses as usual and nothing fetches a key with the access token.
/// The Supabase Management API cannot be reached from this machine: `projects` commands go to a
/// stand-in script that records being called; every other CLI command goes to the real, pinned CLI.
#[test]
fn without_a_service_key_file_the_rehearsal_runs_and_fetches_no_key() {
    let stack = Stack::start();
    let sandbox = Sandbox::with_repo_tree("no-key");
    sandbox.with_vault(&stack.pooler.dsn_with_ref(&stack.password));
    sandbox.remove("vault/occ/supabase/service_key_staging.env");
    let real = xtask::tools::supabase_cli::SupabaseCli::find_or_install(&common::repo_root()).unwrap();
    let stand_in = sandbox.root.join("supabase");
    let called = sandbox.root.join("projects-called");
    std::fs::write(&stand_in, format!(
        "#!/bin/sh\nif [ \"$1\" = projects ]; then\n  touch {}\n  echo '[{{\"name\":\"service_role\",\"api_key\":\"{}\"}}]'\n  exit 0\nfi\nexec {} \"$@\"\n",
        called.display(), common::FETCHED_KEY, real.path.display()
    )).unwrap();
    std::fs::set_permissions(&stand_in, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let plan = sandbox.root.join("plan.json");
    let mut cmd = sandbox.command(&["stage-rehearse", "--plan", plan.to_str().unwrap()]);
    cmd.env("SUPABASE_ACCESS_TOKEN", ACCESS_TOKEN).env("REHEARSAL_SUPABASE_CLI", &stand_in);
    let run = common::Run::of(cmd);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.contains("step 3 inventory: supabase CLI 3."), "the real CLI listed the history:\n{run}");
    assert!(!called.exists(), "no key was fetched with the access token");
    sandbox.assert_no_secrets(&run);
}

#[test]
fn nothing_pending_means_nothing_rehearsed_and_nothing_to_sign_off() {
    let stack = Stack::start();
    let sandbox = Sandbox::new("staging-nothing-pending");
    sandbox.with_vault(&stack.dsn());
    sandbox.write(
        "supabase/migrations/20250101000000_a.sql",
        "create table public.a (id int);\nalter table public.a enable row level security;\n",
    );
    sandbox.write("supabase/migrations.backup/20250101000000_a_rollback.sql", "drop table public.a;\n");
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('runs');\n");
    let args = ["stage-rehearse", "--plan", "/nonexistent/plan.json", "--json"];
    let first = sandbox.xtask(&args);
    assert_eq!(first.code, Some(0), "{first}");
    assert_eq!(first.json()["schema_restored"], true, "{first}");
    // The re-apply left it applied: the second run has nothing to apply or roll back.
    let second = sandbox.xtask(&args[..3]);
    assert_eq!(second.code, Some(0), "{second}");
    assert!(
        second
            .stdout
            .contains("verdict: Nothing was rehearsed: no migration was pending on staging (127.0.0.1/postgres)"),
        "{second}"
    );
    let dir = sandbox.rehearsal_dirs().pop().unwrap();
    let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    let s: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(s["schema_restored"], serde_json::Value::Null, "no rollback ran: {second}");
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(!page.contains("approved for the production window"), "no sign-off offered");
    assert!(second.stderr.contains("step 5 schema after rollback: no rollback ran, nothing to compare"), "{second}");
}

/// On a database that outlives the run, the contract must leave it as it found it; the advisors
/// then read it as the contract left it.
#[test]
fn a_contract_that_changes_the_staging_schema_fails_the_run_and_the_advisors_read_staging() {
    let stack = Stack::start();
    let sandbox = Sandbox::new("staging-contract-leaves");
    sandbox.with_vault(&stack.dsn());
    sandbox.write(
        "supabase/migrations/20250101000000_t.sql",
        "create table if not exists public.t (id int);\nalter table public.t enable row level security;\n",
    );
    // Staging already holds a table exposed with RLS off, as someone made it by hand.
    stack.admin_sql("set role postgres; create table public.open_on_staging (id int);");
    // A test file that commits what it creates, and one that leaves nothing behind.
    sandbox.write(
        "supabase/tests/a_leaky_test.sql",
        "create table public.leftover (id int);\nselect plan(1);\nselect pass('made a table');\n",
    );
    sandbox.write(
        "supabase/tests/b_clean_test.sql",
        "begin;\nselect plan(1);\ncreate table public.scratch (id int);\nselect pass('rolled back');\nrollback;\n",
    );
    let run = sandbox.xtask(&["rls", "--target", "staging", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let json = run.json();
    let findings = json["findings"].as_array().unwrap();
    let changed = findings.iter().find(|f| f["class"] == "contract_changed_schema").expect("the change is a finding");
    assert_eq!(changed["severity"], "error");
    let message = changed["message"].as_str().unwrap();
    assert!(
        message.starts_with("the RLS contract left the database's schema different from before it ran: "),
        "{message}"
    );
    assert!(message.contains("relation leftover (still there)") && !message.contains("scratch"), "{message}");
    assert!(
        findings
            .iter()
            .any(|f| f["class"] == "rls_disabled" && f["message"].as_str().unwrap().contains("public.open_on_staging")),
        "the advisors ran on staging: {findings:#?}"
    );
    let dir = sandbox.rehearsal_dirs().pop().unwrap();
    let diff = std::fs::read_to_string(dir.join("schema_contract.diff")).unwrap();
    assert!(diff.lines().any(|l| l.starts_with("+relation public.leftover ")), "{diff}");
    sandbox.assert_no_secrets(&run);
}
