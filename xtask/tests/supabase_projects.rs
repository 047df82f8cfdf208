//! Two more projects written the way Supabase teams write them, not for this tool: `roomchat` (a
//! `supabase db dump` baseline with its extension header, Realtime, moddatetime, storage policies
//! with quoted names, pg_cron, Vault, pg_net, a dblink loopback test that must take its skip
//! branch, nested test folders, a helper file that persists functions, a `no_plan` test) and
//! `fieldops` (PostGIS, citext, pgjwt, plpgsql_check, security definer membership helpers, tests
//! that build their own fixtures). Each passes unchanged on the local target, as `postgres`, who
//! is not a superuser; taking away one part of the Supabase surface makes its suite fail.

mod common;

use common::{prepare, Sandbox};
use serde_json::Value;

fn rls(sandbox: &Sandbox, extra: &[&str]) -> (Option<i32>, Value, String) {
    let mut args = vec!["rls", "--json"];
    args.extend(extra);
    let run = sandbox.xtask(&args);
    (run.code, run.json(), run.to_string())
}

#[test]
fn roomchat_passes_unchanged_and_says_which_extensions_are_stand_ins() {
    prepare();
    let sandbox = Sandbox::with_fixture("roomchat", "roomchat");
    // One more file, the tool's own: privileged extensions belong to the bootstrap superuser, as
    // on Supabase, though `postgres` created them.
    sandbox.write(
        "supabase/tests/zz_owner_test.sql",
        "select plan(3);\n\
         select is((select extowner::regrole::text from pg_extension where extname = 'moddatetime'), 'supabase_admin', 'moddatetime belongs to supabase_admin');\n\
         select is((select rolsuper from pg_roles where rolname = 'postgres'), false, 'postgres is not a superuser');\n\
         select is((select pubowner::regrole::text from pg_publication where pubname = 'supabase_realtime'), 'postgres', 'postgres owns the realtime publication');\n\
         select * from finish();\n",
    );
    let (code, summary, run) = rls(&sandbox, &[]);
    assert_eq!(code, Some(0), "{run}");
    let files: Vec<&str> =
        summary["rls"]["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(
        files,
        [
            "supabase/tests/0_setup/test_helpers.sql",
            "supabase/tests/platform/loopback_test.sql",
            "supabase/tests/platform/realtime_test.sql",
            "supabase/tests/platform/scheduled_and_secrets_test.sql",
            "supabase/tests/rls/messages_test.sql",
            "supabase/tests/rls/rooms_test.sql",
            "supabase/tests/storage/avatars_test.sql",
            "supabase/tests/zz_owner_test.sql",
        ]
    );
    assert_eq!((summary["rls"]["passed"].as_u64(), summary["rls"]["planned"].as_u64()), (Some(31), Some(31)), "{run}");
    let warnings: Vec<&str> = summary["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    for (name, lacks) in [
        ("supabase_vault", "secrets are stored encoded, not encrypted"),
        ("pg_net", "requests are queued in net.http_request_queue and never sent"),
        ("pg_graphql", "graphql.resolve() answers every query with an error"),
        ("pgsodium", "none of its functions exists"),
    ] {
        assert!(
            warnings.iter().any(|w| w.starts_with(&format!("{name} (supabase/migrations/"))
                && w.contains("is a stand-in on the local target")
                && w.contains(lacks)),
            "{name}: {warnings:#?}"
        );
    }
    // The screen says so too, before the run and in the summary.
    let human = sandbox.xtask(&["rls"]);
    assert_eq!(human.code, Some(0), "{human}");
    assert!(
        human.stderr.contains(
            "note: supabase_vault (supabase/migrations/20240611120000_remote_schema.sql uses it) is a stand-in"
        ),
        "{human}"
    );
    assert!(
        human.stdout.contains(
            "warning: pg_net (supabase/migrations/20240622150000_moderation_webhook.sql uses it) is a stand-in"
        ),
        "{human}"
    );
    // The stand-ins live in the cluster's own installation, never in the system's.
    let system = std::process::Command::new("pg_config").arg("--sharedir").output().unwrap();
    let system = std::path::PathBuf::from(String::from_utf8_lossy(&system.stdout).trim()).join("extension");
    for standin in ["pg_graphql", "supabase_vault", "pg_net", "pgjwt", "pgsodium"] {
        assert!(!system.join(format!("{standin}.control")).exists(), "{standin} in {}", system.display());
    }
    sandbox.assert_nothing_left();
}

/// Each weakening takes away one thing a Supabase database has; the suite notices.
#[test]
fn roomchat_fails_without_each_part_of_the_surface_it_uses() {
    prepare();
    let weakenings: [(&str, &str, &str, &[&str]); 4] = [
        (
            "no-publication",
            "supabase/migrations/20240101000000_weaken.sql",
            "drop publication supabase_realtime;\n",
            &["supabase/tests/platform/realtime_test.sql"],
        ),
        (
            "no-cron",
            "supabase/migrations/20991231000000_weaken.sql",
            "drop extension pg_cron;\n",
            &["supabase/tests/platform/scheduled_and_secrets_test.sql"],
        ),
        (
            "no-vault",
            "supabase/migrations/20991231000000_weaken.sql",
            "drop extension supabase_vault cascade;\n",
            &["supabase/tests/platform/scheduled_and_secrets_test.sql"],
        ),
        (
            "no-moddatetime",
            "supabase/migrations/20991231000000_weaken.sql",
            "drop trigger handle_updated_at on public.messages;\n",
            &["supabase/tests/rls/messages_test.sql"],
        ),
    ];
    for (name, file, sql, failing) in weakenings {
        let sandbox = Sandbox::with_fixture("roomchat", name);
        sandbox.write(file, sql);
        let (code, summary, run) = rls(&sandbox, &[]);
        assert_eq!(code, Some(1), "{name}: {run}");
        let failed = common::failing_files(&summary["rls"]);
        assert!(failing.iter().all(|f| failed.iter().any(|g| g == f)), "{name}: {failed:?}\n{run}");
    }
    // Without the publication, the first statement that names it fails, where it does.
    let sandbox = Sandbox::with_fixture("roomchat", "no-publication-finding");
    sandbox.write("supabase/migrations/20240101000000_weaken.sql", "drop publication supabase_realtime;\n");
    let run = sandbox.xtask(&["rls"]);
    assert!(run.stdout.contains("  supabase/tests/rls/rooms_test.sql .. FAILED: no plan line after 0 test(s) (it stopped early, or never calls plan() or finish(); pg_prove fails it too)\n"), "{run}");
    // The progress line says the same, not "0 of 0 passed".
    assert!(
        run.stderr.contains("rls supabase/tests/rls/rooms_test.sql .. 0 of 0 passed, no plan line: FAILED\n"),
        "{run}"
    );
    assert!(
        run.stdout.contains("undefined_object 42704 supabase/migrations/20240611120000_remote_schema.sql:116: publication \"supabase_realtime\" does not exist"),
        "{run}"
    );
}

/// On Supabase `postgres` cannot open a dblink without a password; as a superuser it could, and
/// the loopback test, written for Supabase, fails.
#[test]
fn roomchat_dblink_test_takes_its_skip_branch_only_as_on_supabase() {
    prepare();
    let sandbox = Sandbox::with_fixture("roomchat", "dblink");
    let (code, summary, run) = rls(&sandbox, &[]);
    assert_eq!(code, Some(0), "{run}");
    let loopback = &summary["rls"]["files"][1];
    assert_eq!(
        (loopback["path"].as_str(), loopback["passed"].as_u64()),
        (Some("supabase/tests/platform/loopback_test.sql"), Some(3))
    );
    let log = std::fs::read_to_string(sandbox.rehearsal_dir().join("rls_contract.log")).unwrap();
    assert!(log.contains("ok 2 # SKIP no passwordless dblink loopback on Supabase\nok 3 # SKIP"), "{log}");

    let sandbox = Sandbox::with_fixture("roomchat", "dblink-superuser");
    let (code, summary, run) = rls(&sandbox, &["--superuser-postgres"]);
    assert_eq!(code, Some(1), "{run}");
    assert!(
        common::failing_files(&summary["rls"]).contains(&"supabase/tests/platform/loopback_test.sql".to_string()),
        "{run}"
    );
}

#[test]
fn fieldops_passes_unchanged_with_postgis_pgjwt_and_plpgsql_check() {
    prepare();
    let sandbox = Sandbox::with_fixture("fieldops", "fieldops");
    let (code, summary, run) = rls(&sandbox, &[]);
    assert_eq!(code, Some(0), "{run}");
    assert_eq!((summary["rls"]["passed"].as_u64(), summary["rls"]["planned"].as_u64()), (Some(18), Some(18)), "{run}");
    assert_eq!(summary["rls"]["files"].as_array().unwrap().len(), 5, "{run}");
    let warnings = summary["warnings"].to_string();
    assert!(
        warnings.contains("pgjwt (supabase/migrations/20231020093000_kiosk_tokens.sql uses it) is a stand-in"),
        "{warnings}"
    );
    assert!(
        !warnings.contains("postgis") && !warnings.contains("plpgsql_check"),
        "real extensions are not stand-ins: {warnings}"
    );
    sandbox.assert_nothing_left();
}

#[test]
fn fieldops_fails_without_postgis_or_pgjwt() {
    prepare();
    for (name, sql, failing) in [
        ("no-postgis", "drop extension postgis cascade;\n", "supabase/tests/database/dispatch/nearby.test.sql"),
        ("no-pgjwt", "drop extension pgjwt;\n", "supabase/tests/database/dispatch/kiosk.test.sql"),
    ] {
        let sandbox = Sandbox::with_fixture("fieldops", name);
        sandbox.write("supabase/migrations/20991231000000_weaken.sql", sql);
        let (code, summary, run) = rls(&sandbox, &[]);
        assert_eq!(code, Some(1), "{name}: {run}");
        assert!(common::failing_files(&summary["rls"]).contains(&failing.to_string()), "{name}: {run}");
    }
}
