//! Every way `rls` and `doctor` refuse to run: exit 2 (or 3), one message that says what is wrong
//! and the fix, and no rehearsal written.

mod common;

use std::os::unix::fs::{symlink, PermissionsExt};

use common::{prepare, Sandbox};

fn refused(sandbox: &Sandbox, args: &[&str], code: i32, message: &str) {
    let run = sandbox.xtask(args);
    assert_eq!(run.code, Some(code), "{run}");
    assert!(run.stderr.contains(message), "stderr should contain {message:?}:\n{run}");
    assert!(!sandbox.path("artifacts").exists(), "a refused run writes no artifacts:\n{run}");
    sandbox.assert_nothing_left();
}

#[test]
fn a_missing_migrations_dir_is_refused() {
    let sandbox = Sandbox::with_repo_tree("no-migrations");
    sandbox.remove("supabase/migrations");
    refused(&sandbox, &["rls"], 2, "error: supabase/migrations is missing under");
}

#[test]
fn an_empty_migrations_dir_is_refused() {
    let sandbox = Sandbox::with_repo_tree("empty-migrations");
    sandbox.remove("supabase/migrations");
    std::fs::create_dir_all(sandbox.path("supabase/migrations")).unwrap();
    refused(&sandbox, &["rls"], 2, "error: supabase/migrations holds no .sql migration files");
}

#[test]
fn a_migration_without_a_leading_version_is_refused() {
    let sandbox = Sandbox::with_repo_tree("unversioned");
    sandbox.write("supabase/migrations/add_widgets.sql", "select 1;\n");
    refused(&sandbox, &["rls"], 2, "error: supabase/migrations/add_widgets.sql: no leading version");
}

#[test]
fn two_migrations_with_one_version_are_refused() {
    let sandbox = Sandbox::with_repo_tree("same-version");
    sandbox.write("supabase/migrations/20251019004500_other.sql", "select 1;\n");
    refused(&sandbox, &["rls"], 2, "share version 20251019004500; give one a new timestamp");
}

#[test]
fn two_rollbacks_for_one_version_are_refused() {
    let sandbox = Sandbox::with_repo_tree("two-rollbacks");
    sandbox.write("supabase/migrations.backup/20251019004500_again_rollback.sql", "select 1;\n");
    refused(&sandbox, &["rls"], 2, "both roll back version 20251019004500; keep one");
}

#[test]
fn a_workdir_that_does_not_exist_is_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["--workdir", "/nonexistent/tree", "rls"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error: --workdir /nonexistent/tree: No such file or directory"), "{stderr}");
}

#[test]
fn an_unknown_target_is_a_usage_error() {
    let sandbox = Sandbox::with_repo_tree("bad-target");
    let run = sandbox.xtask(&["rls", "--target", "prod"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("invalid value 'prod' for '--target <TARGET>'"), "{run}");
    assert!(run.stderr.contains("[possible values: local, staging, url]"), "{run}");
}

#[test]
fn server_binaries_that_are_not_there_are_named() {
    let sandbox = Sandbox::with_repo_tree("no-server");
    let mut cmd = sandbox.command(&["rls"]);
    cmd.env("REHEARSAL_PG_BINDIR", "/nonexistent/bin").env("REHEARSAL_NO_INSTALL", "1");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("REHEARSAL_PG_BINDIR=/nonexistent/bin holds no initdb and postgres"), "{stderr}");
    assert!(!sandbox.path("artifacts").exists());
}

/// pgTAP and pgextwlist cannot be uninstalled under a running test suite, so this one failure is
/// simulated: a bin dir of symlinks to the real server whose `pg_config` (a stand-in script)
/// reports share and lib dirs without them. The extension `rum` a migration creates is not
/// installed either (no test installs it).
#[test]
fn missing_packages_are_named_with_the_one_command_before_any_cluster_starts() {
    let sandbox = Sandbox::with_repo_tree("no-pgtap");
    sandbox.write(
        "supabase/migrations/20990101000000_search.sql",
        "create extension if not exists rum with schema extensions;\n",
    );
    let real = std::process::Command::new("pg_config").arg("--bindir").output().unwrap();
    let real = String::from_utf8_lossy(&real.stdout).trim().to_string();
    let bin = sandbox.root.join("bin");
    let share = sandbox.root.join("share");
    std::fs::create_dir_all(share.join("extension")).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    for name in ["initdb", "postgres", "psql"] {
        symlink(format!("{real}/{name}"), bin.join(name)).unwrap();
    }
    let fake = bin.join("pg_config");
    std::fs::write(&fake, format!("#!/bin/sh\necho {}\n", share.display())).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut cmd = sandbox.command(&["rls"]);
    cmd.env("REHEARSAL_PG_BINDIR", &bin).env("REHEARSAL_NO_INSTALL", "1");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let major = real.rsplit('/').nth(1).unwrap();
    let wanted = format!(
        "error: the local target needs what is not installed: postgresql-{major}-pgtap (pgTAP, which runs the RLS \
         contract), postgresql-{major}-pgextwlist (pgextwlist, which lets postgres create extensions as on Supabase), \
         postgresql-{major}-rum (the extension rum, which supabase/migrations/20990101000000_search.sql creates); \
         install them: apt-get install -y postgresql-{major}-pgtap postgresql-{major}-pgextwlist postgresql-{major}-rum\n"
    );
    assert!(stderr.ends_with(&wanted), "{stderr}");
    assert!(!sandbox.path("artifacts").exists());
    sandbox.assert_nothing_left();
}

#[test]
fn doctor_passes_on_the_repo_tree_and_names_each_fix_on_an_empty_one() {
    prepare();
    let good = Sandbox::with_repo_tree("doctor-good");
    let run = good.xtask(&["doctor"]);
    assert_eq!(run.code, Some(0), "{run}");
    for line in [
        "ok    psql",
        "ok    pg_dump",
        "ok    postgres server",
        "ok    pgTAP",
        "ok    migrations",
        "ok    RLS contract",
    ] {
        assert!(run.stdout.contains(line), "{line:?} missing:\n{run}");
    }
    assert!(run.stdout.contains("staging vault") && run.stdout.contains("needed for --target staging only"), "{run}");

    let empty = Sandbox::new("doctor-empty");
    let run = empty.xtask(&["doctor"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stdout.contains("MISS  migrations       supabase/migrations missing; fix:"), "{run}");
    assert!(
        run.stdout.contains("MISS  RLS contract     supabase/rls_tests.sql or supabase/tests missing; fix:"),
        "{run}"
    );
    assert!(run.stderr.contains("doctor: 2 required prerequisite(s) missing"), "{run}");
}

#[test]
fn a_refused_url_target_leaves_no_rehearsal_dir() {
    let sandbox = Sandbox::with_repo_tree("refused-url");
    let mut cmd = sandbox.command(&["stage-rehearse", "--target", "url"]);
    cmd.env_remove("DATABASE_URL");
    let run = common::Run::of(cmd);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("error: --target url needs --db-url URL or $DATABASE_URL"), "{run}");
    assert!(!sandbox.path("artifacts").exists(), "nothing written:\n{run}");
}

#[test]
fn a_function_with_a_begin_atomic_body_applies_in_one_transaction() {
    prepare();
    let sandbox = Sandbox::new("begin-atomic");
    sandbox
        .write("supabase/rls_tests.sql", "select plan(1);\nselect is(public.add_one(1), 2, 'the function works');\n");
    sandbox.write(
        "supabase/migrations/20250101000000_add_one.sql",
        "create or replace function public.add_one(x int) returns int\n  language sql\n  set search_path = ''\nbegin atomic\n  select x + 1;\nend;\n",
    );
    let run = sandbox.xtask(&["rls", "--json"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(run.json()["migrations"][0]["apply"]["atomic"], true, "not taken for transaction control:\n{run}");
}
