//! `rls` as a drop-in for `supabase test db`: a project written without this tool in mind
//! (`fixtures/teamdocs`: a trigger on auth.users, security definer helpers, alter default
//! privileges, a seed of fully populated auth.users rows, a multi-file supabase/tests suite with
//! tests.authenticate_as-style helpers and both claim styles) passes unchanged, and weakening the
//! local database breaks it: the Supabase surface is what makes it pass.

mod common;

use common::{prepare, Sandbox};
use serde_json::Value;

fn teamdocs(name: &str) -> Sandbox {
    Sandbox::with_fixture("teamdocs", name)
}

fn rls(sandbox: &Sandbox, extra: &[&str]) -> (Option<i32>, Value, String) {
    let mut args = vec!["rls", "--json"];
    args.extend(extra);
    let run = sandbox.xtask(&args);
    (run.code, run.json()["rls"].clone(), run.to_string())
}

#[test]
fn a_foreign_project_passes_unchanged_with_a_line_per_file() {
    prepare();
    let sandbox = teamdocs("teamdocs");
    let (code, rls_json, run) = rls(&sandbox, &[]);
    assert_eq!(code, Some(0), "{run}");
    let files = rls_json["files"].as_array().unwrap();
    assert_eq!(files.len(), 6, "{rls_json:#}");
    assert_eq!(files[0]["path"], "supabase/tests/database/000-setup-tests-hooks.sql");
    assert_eq!(files[5]["path"], "supabase/tests/database/050-storage.test.pg");
    for key in ["planned", "passed"] {
        let sum: u64 = files.iter().map(|f| f[key].as_u64().unwrap()).sum();
        assert_eq!(rls_json[key].as_u64().unwrap(), sum, "{key} totals add up over the files");
    }
    assert_eq!(rls_json["planned"], 29);
    let human = sandbox.xtask(&["rls"]);
    assert!(human.stdout.contains("  supabase/tests/database/040-legacy-claims.test.sql .. ok\n"), "{human}");
}

fn weakened(name: &str, sql: &str) -> (Option<i32>, Value, String) {
    let sandbox = teamdocs(name);
    sandbox.write("supabase/migrations/20240309000000_weaken.sql", sql);
    rls(&sandbox, &[])
}

#[test]
fn with_rls_off_on_one_table_the_suite_fails() {
    prepare();
    let (code, rls_json, run) = weakened("weak-rls", "alter table public.documents disable row level security;\n");
    assert_eq!(code, Some(1), "{run}");
    assert!(
        common::failing_files(&rls_json).contains(&"supabase/tests/database/020-documents.test.sql".to_string()),
        "{rls_json:#}"
    );
}

#[test]
fn with_auth_uid_reading_one_claim_style_the_suite_fails() {
    prepare();
    let only_claims = "create or replace function auth.uid() returns uuid language sql stable as $$\n  select (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')::uuid\n$$;\n";
    let (code, rls_json, run) = weakened("weak-uid-claims", only_claims);
    assert_eq!(code, Some(1), "{run}");
    assert_eq!(
        common::failing_files(&rls_json),
        vec!["supabase/tests/database/040-legacy-claims.test.sql"],
        "{rls_json:#}"
    );

    let only_legacy = "create or replace function auth.uid() returns uuid language sql stable as $$\n  select nullif(current_setting('request.jwt.claim.sub', true), '')::uuid\n$$;\n";
    let (code, rls_json, run) = weakened("weak-uid-legacy", only_legacy);
    assert_eq!(code, Some(1), "{run}");
    let failing = common::failing_files(&rls_json);
    assert!(failing.contains(&"supabase/tests/database/020-documents.test.sql".to_string()), "{failing:?}");
    assert!(!failing.contains(&"supabase/tests/database/040-legacy-claims.test.sql".to_string()), "{failing:?}");
}

#[test]
fn postgres_is_not_a_superuser_unless_asked() {
    prepare();
    let sandbox = teamdocs("superuser");
    sandbox.write("supabase/tests/database/060-roles.test.sql", "select plan(2);\nselect is((select rolsuper from pg_roles where rolname = 'postgres'), false, 'postgres is not a superuser');\nselect is((select rolbypassrls and rolcreaterole from pg_roles where rolname = 'postgres'), true, 'postgres has BYPASSRLS and CREATEROLE');\n");
    let (code, _, run) = rls(&sandbox, &[]);
    assert_eq!(code, Some(0), "{run}");
    let (code, rls_json, run) = rls(&sandbox, &["--superuser-postgres"]);
    assert_eq!(code, Some(1), "{run}");
    assert_eq!(common::failing_files(&rls_json), vec!["supabase/tests/database/060-roles.test.sql"]);
}

#[test]
fn an_extension_the_local_target_lacks_is_named_with_what_to_do() {
    prepare();
    let sandbox = teamdocs("extension");
    sandbox.write(
        "supabase/migrations/20240309000000_hashids.sql",
        "create extension if not exists pg_trgm with schema extensions;\ncreate extension \"pg_hashids\";\n",
    );
    let run = sandbox.xtask(&["rls"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stdout.contains("extension_unavailable 0A000 supabase/migrations/20240309000000_hashids.sql:2: "),
        "{run}"
    );
    assert!(
        run.stdout.contains(
            "pg_hashids is on Supabase but not available on the local target (no package provides it for this \
             machine): rehearse the migration at supabase/migrations/20240309000000_hashids.sql:2 on staging"
        ),
        "{run}"
    );
}

#[test]
fn an_extension_from_postgresqls_own_repository_gets_the_exact_commands_for_this_major() {
    prepare();
    let major = xtask::tools::server::ensure_server_with_pgtap().unwrap().major;
    let sandbox = teamdocs("extension-pgdg");
    sandbox.write(
        "supabase/migrations/20240309000000_embeddings.sql",
        "create extension if not exists vector with schema extensions;\n\
         create table public.chunks (id bigint primary key, embedding extensions.vector(3));\n",
    );
    // Not installed from anywhere during the test (a fake of nothing: apt-get is simply not used).
    let mut cmd = sandbox.command(&["rls"]);
    cmd.env("REHEARSAL_NO_INSTALL", "1");
    let run = common::Run::of(cmd);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stdout.contains("extension_unavailable 0A000 supabase/migrations/20240309000000_embeddings.sql:1: "),
        "{run}"
    );
    let commands = format!(
        "sudo apt-get install -y postgresql-common && sudo /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
         && sudo apt-get install -y postgresql-{major}-pgvector"
    );
    assert!(
        run.stdout.contains(&format!(
            "vector is on Supabase; here it comes from PostgreSQL's own apt repository as postgresql-{major}-pgvector"
        )) && run.stdout.contains(&commands),
        "{run}"
    );
}

#[test]
fn the_server_does_not_inherit_the_clients_connection_variables() {
    prepare();
    let sandbox = teamdocs("server-env");
    sandbox.write(
        "supabase/migrations/20240309000000_slow.sql",
        "do $$ begin raise notice 'slow migration started'; end $$;\nselect pg_sleep(60);\n",
    );
    let mut cmd = sandbox.command(&["rls"]);
    cmd.env("PGHOST", "/nonexistent").env("PGPORT", "1").env("PGUSER", "nobody").env("PGPASSWORD", "client-secret");
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    common::wait_for_log(&sandbox, "migration_apply.log", "slow migration started", &mut child);
    let servers: Vec<std::path::PathBuf> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            std::fs::read(p.join("cmdline")).is_ok_and(|c| {
                String::from_utf8_lossy(&c).contains(&*sandbox.tmp.to_string_lossy())
                    && String::from_utf8_lossy(&c).contains("postgres")
            })
        })
        .collect();
    assert!(!servers.is_empty());
    for server in servers {
        let environ = String::from_utf8_lossy(&std::fs::read(server.join("environ")).unwrap()).into_owned();
        for var in ["PGHOST=", "PGPORT=", "PGUSER=", "PGPASSWORD="] {
            assert!(!environ.split('\0').any(|e| e.starts_with(var)), "the server inherited {var}");
        }
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(130));
    sandbox.assert_nothing_left();
}
