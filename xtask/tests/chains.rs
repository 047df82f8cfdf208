//! Migrations sent as chains, several files per round trip, leave the log `psql -f` would have
//! written, file by file: the same output, errors on the same `FILE:LINE:`, `LINE n` counted as psql
//! counts it (empty lines left out), notices with their statement's line, no trace of the tool's own
//! statements, and no setting of one file leaking into the next. Each file of the tree below is
//! also run with the runbook's own command, `psql -v ON_ERROR_STOP=1 -f FILE`, one fresh session
//! each, on a database of the same template, and the two transcripts are compared byte for byte.
//! The cases an adversarial review of the chains found are here too.

mod common;

use std::process::{Command, Stdio};

use common::{prepare, Sandbox, Stack};

/// Files whose output `psql -f` and the chain must print alike (no notices: psql -f prints those
/// between a statement's results, a chain a result earlier).
const TREE: &[(&str, &str)] = &[
    (
        "20250101000001_items.sql",
        "-- Items.\n\ncreate table if not exists public.items (id int primary key, label text);;\n\n\n\
         alter table public.items enable row level security;\nselect 'a;b' as text, $$c;d$$ as dollar;\n",
    ),
    (
        "20250101000002_broken.sql",
        "create table if not exists public.broken_first (id int);\n\nselect\n\n  1 +\n  'abc'::int;\n",
    ),
    (
        "20250101000003_session.sql",
        "create schema if not exists other;\nset search_path = other;\nset statement_timeout = '1h';\nset check_function_bodies = off;\n",
    ),
    (
        "20250101000004_fresh.sql",
        "select current_schema() as schema, current_setting('statement_timeout') as timeout, current_setting('check_function_bodies') as checks;\n\
         select pg_sleep(0.02);\ninsert into public.missing_table values (1);\n",
    ),
    ("20250101000005_last.sql", "create table if not exists public.last (id int);\nalter table public.last enable row level security;\n"),
];

/// `psql -f` of each file, one fresh session each, stdout and stderr in one stream as the tool
/// reads them.
fn psql_f(dsn: &str, workdir: &std::path::Path, file: &str) -> String {
    let path = std::env::temp_dir().join(format!("psql-f-{}-{}.out", std::process::id(), file));
    let out = std::fs::File::create(&path).unwrap();
    let status = Command::new("psql")
        .args([dsn, "-X", "-v", "ON_ERROR_STOP=1", "-f", &format!("supabase/migrations/{file}")])
        .current_dir(workdir)
        .env_remove("PGOPTIONS")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .status()
        .unwrap();
    let _ = status;
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    text
}

/// The log's section of each file: what lies between `==> FILE` and the blank line that ends it,
/// the failure line left out.
fn sections(log: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in log.split("==> ").skip(1) {
        let (header, body) = part.split_once('\n').unwrap();
        let body: String = body.lines().filter(|l| !l.starts_with("!! failure")).map(|l| format!("{l}\n")).collect();
        out.push((header.to_string(), body.trim_end_matches('\n').to_string() + "\n"));
    }
    out
}

#[test]
fn the_chained_log_is_the_log_of_psql_f_file_by_file() {
    prepare();
    let sandbox = Sandbox::new("chains-psql-f");
    for (file, sql) in TREE {
        sandbox.write(&format!("supabase/migrations/{file}"), sql);
    }
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('the contract runs');\n");
    let run = sandbox.xtask(&["rls", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let s = run.json();
    let status: Vec<&str> =
        s["migrations"].as_array().unwrap().iter().map(|r| r["apply"]["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["applied", "failed", "applied", "failed", "applied"], "{run}");
    // A file's settings end with it, as they end with its psql -f session.
    assert!(!s["migrations"][3]["apply"]["error"]["message"].as_str().unwrap().contains("timeout"), "{run}");
    let log = std::fs::read_to_string(sandbox.rehearsal_dir().join("migration_apply.log")).unwrap();
    assert!(
        !log.contains("rehearsal_") && !log.contains("BEGIN") && !log.contains("COMMIT") && !log.contains("PREPARE"),
        "{log}"
    );

    let stack = Stack::start();
    let dsn = stack.cluster.as_ref().unwrap().dsn();
    let chained = sections(&log);
    assert_eq!(chained.len(), TREE.len(), "{log}");
    for ((file, _), (header, body)) in TREE.iter().zip(&chained) {
        assert_eq!(header, &format!("supabase/migrations/{file}"));
        let expected = psql_f(&dsn, &sandbox.workdir, file);
        assert_eq!(body.trim_end(), expected.trim_end(), "{file}: the chain's log against psql -f's");
    }
    // What psql -f ran of the broken file stays applied; the chain rolled it back, as the run says.
    let tables = stack.admin_sql("select count(*) from pg_class where relname = 'broken_first'");
    assert_eq!(tables, "1", "psql -f autocommits each statement");
}

#[test]
fn notices_carry_their_statements_line_and_a_failed_file_its_time() {
    prepare();
    let sandbox = Sandbox::new("chains-notices");
    for i in 1..=3 {
        sandbox.write(
            &format!("supabase/migrations/2025010100000{i}_n{i}.sql"),
            &format!("\n-- {i}\ndrop table if exists public.nope_{i};\n\ncreate table if not exists public.t{i} (id int);\ncreate table if not exists public.t{i} (id int);\nalter table public.t{i} enable row level security;\n"),
        );
    }
    sandbox.write("supabase/migrations/20250101000004_slow_then_fails.sql", "select pg_sleep(0.3);\nselect 1/0;\n");
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('the contract runs');\n");
    let run = sandbox.xtask(&["rls", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let log = std::fs::read_to_string(sandbox.rehearsal_dir().join("migration_apply.log")).unwrap();
    for i in 1..=3 {
        assert!(log.contains(&format!("psql:supabase/migrations/2025010100000{i}_n{i}.sql:3: NOTICE:  table \"nope_{i}\" does not exist, skipping\n")), "{log}");
        assert!(log.contains(&format!("psql:supabase/migrations/2025010100000{i}_n{i}.sql:6: NOTICE:  relation \"t{i}\" already exists, skipping\n")), "{log}");
    }
    let slow = &run.json()["migrations"][3]["apply"];
    assert_eq!(slow["status"], "failed");
    assert!(slow["duration_ms"].as_u64().unwrap() >= 300, "the failed file's time: {slow}");
    assert_eq!(slow["error"]["line"], 2);
}

#[test]
fn a_syntax_error_in_a_chain_runs_the_files_before_it_once_and_names_its_own_line() {
    prepare();
    let sandbox = Sandbox::new("chains-syntax");
    for i in 1..=30 {
        let sql = if i == 20 {
            "create table if not exists public.t20 (id int);\n\nselect\n  1 +\n  from nothing;\n".to_string()
        } else {
            format!("create table if not exists public.t{i} (id int);\nalter table public.t{i} enable row level security;\n")
        };
        sandbox.write(&format!("supabase/migrations/202501010000{i:02}_t{i}.sql"), &sql);
    }
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('the contract runs');\n");
    let run = sandbox.xtask(&["rls", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let s = run.json();
    let failed: Vec<u64> = s["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, r)| r["apply"]["status"] != "applied")
        .map(|(i, _)| i as u64 + 1)
        .collect();
    assert_eq!(failed, [20], "{run}");
    let log = std::fs::read_to_string(sandbox.rehearsal_dir().join("migration_apply.log")).unwrap();
    assert_eq!(log.matches("==> ").count(), 30, "each file once:\n{log}");
    assert!(
        // Refused in one round trip, it ran again as psql -f runs it (in its transaction, which
        // the error rolled back): psql -f's transcript, line for line.
        log.contains("==> supabase/migrations/20250101000020_t20.sql\nCREATE TABLE\npsql:supabase/migrations/20250101000020_t20.sql:5: ERROR:  syntax error at or near \"from\"\nLINE 3:   from nothing;\n"),
        "{log}"
    );
    assert!(!log.contains("chain-") && !log.contains("rehearsal-work"), "no scratch file is named:\n{log}");
}

#[test]
fn an_empty_statement_or_abort_cannot_half_apply_a_file() {
    prepare();
    let sandbox = Sandbox::new("chains-half");
    sandbox.write(
        "supabase/migrations/20250101000001_a.sql",
        "create table if not exists public.a1 (id int);;\nselect 1/0;\n",
    );
    sandbox.write(
        "supabase/migrations/20250101000002_b.sql",
        "create table if not exists public.b1 (id int);\nabort;\ncreate table if not exists public.b2 (id int);\n",
    );
    sandbox.write(
        "supabase/rls_tests.sql",
        "select plan(3);\nselect hasnt_table('public', 'a1', 'the failed file left nothing');\n\
         select has_table('public', 'b1', 'abort ran as psql -f runs it');\nselect has_table('public', 'b2', 'and so did the rest');\n",
    );
    let run = sandbox.xtask(&["rls", "--json"]);
    let s = run.json();
    assert_eq!(s["migrations"][0]["apply"]["status"], "failed", "{run}");
    assert_eq!(s["migrations"][1]["apply"]["atomic"], false, "{run}");
    assert_eq!(s["rls"]["passed"], 3, "{run}");
}

#[test]
fn a_quote_or_comment_left_open_is_refused_before_anything_runs() {
    let sandbox = Sandbox::new("chains-open-comment");
    sandbox.write(
        "supabase/migrations/20250101000001_a.sql",
        "create table if not exists public.a1 (id int);\n/* forgot to close\n",
    );
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('never');\n");
    let run = sandbox.xtask(&["rls"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr.contains(
            "error: supabase/migrations/20250101000001_a.sql:2: a quote or /* comment opened here is never closed"
        ),
        "{run}"
    );
    assert!(!sandbox.path("artifacts").exists());
}

#[test]
fn test_files_run_as_pg_prove_and_the_contract_as_psql_f_would() {
    prepare();
    let sandbox = Sandbox::new("chains-tests");
    sandbox.write(
        "supabase/migrations/20250101000001_t.sql",
        "create table if not exists public.t (id int);\nalter table public.t enable row level security;\n",
    );
    // The contract recovers from an error with a savepoint, as psql -f (errors do not stop it) lets it.
    sandbox.write(
        "supabase/rls_tests.sql",
        "begin;\nselect plan(3);\nsavepoint s;\nselect ok(1/0 = 1, 'dies');\nrollback to savepoint s;\n\
         select ok(true, 'two');\nselect ok(true, 'three');\nselect * from finish();\nrollback;\n",
    );
    // A syntax error: pg_prove runs what comes before it.
    sandbox.write(
        "supabase/tests/a_test.sql",
        "begin;\nselect plan(2);\nselect ok(true, 'one');\nselect ok(true, 'two') from nowhere where;\nselect * from finish();\nrollback;\n",
    );
    let run = sandbox.xtask(&["rls", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let files = run.json()["rls"]["files"].clone();
    assert_eq!((files[0]["ran"].as_u64(), files[0]["passed"].as_u64()), (Some(2), Some(2)), "{files:#}");
    assert_eq!((files[1]["ran"].as_u64(), files[1]["planned"].as_u64()), (Some(1), Some(2)), "{files:#}");
    let log = std::fs::read_to_string(sandbox.rehearsal_dir().join("rls_contract.log")).unwrap();
    assert!(
        log.contains("==> supabase/tests/a_test.sql\n1..2\nok 1 - one\npsql:supabase/tests/a_test.sql:4: ERROR:  syntax error at or near \";\"\n"),
        "{log}"
    );
}
