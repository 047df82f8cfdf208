//! Every failure class the classifier knows, produced for real — real psql against a throwaway cluster, a real
//! lock held by another session, a real statement timeout, real closed ports, the real Supabase
//! CLI — at psql's default and verbose verbosity, then read back by `cargo xtask scan`.

mod common;

use std::process::Command;

use common::{prepare, Sandbox};
use serde_json::Value;
use xtask::database::local::LocalCluster;
use xtask::tools::find_client;
use xtask::tools::server::ensure_server_with_pgtap;

struct Case {
    name: &'static str,
    sql: &'static str,
    class: &'static str,
    sqlstate: &'static str,
    line: u64,
}

const CASES: &[Case] = &[
    Case { name: "duplicate", sql: "create table dup (id int);\ncreate table dup (id int);\n", class: "duplicate_object", sqlstate: "42P07", line: 2 },
    Case { name: "missing_table", sql: "select * from public.nowhere;\n", class: "undefined_object", sqlstate: "42P01", line: 1 },
    Case { name: "missing_column", sql: "create table cols (a int);\nselect b from cols;\n", class: "undefined_object", sqlstate: "42703", line: 2 },
    Case { name: "missing_function", sql: "select public.no_such_function(1);\n", class: "undefined_object", sqlstate: "42883", line: 1 },
    Case { name: "missing_type", sql: "create table typed (x public.no_such_type);\n", class: "undefined_object", sqlstate: "42704", line: 1 },
    Case { name: "dependents", sql: "create table parent (id int primary key);\ncreate view child as select * from parent;\ndrop table parent;\n", class: "dependent_objects", sqlstate: "2BP01", line: 3 },
    Case { name: "permission", sql: "select * from pg_authid;\n", class: "permission_denied", sqlstate: "42501", line: 1 },
    Case { name: "statement_timeout", sql: "set statement_timeout = '100ms';\nselect pg_sleep(5);\n", class: "statement_timeout", sqlstate: "57014", line: 2 },
    Case { name: "syntax", sql: "create tabel oops (id int);\n", class: "syntax_error", sqlstate: "42601", line: 1 },
    Case { name: "other", sql: "select 1 / 0;\n", class: "other", sqlstate: "22012", line: 1 },
];

fn psql(dsn: &str, verbose: bool, file: &std::path::Path, cwd: &std::path::Path, extra: &[&str]) -> String {
    let mut cmd = Command::new(find_client("psql").unwrap());
    cmd.arg(dsn).args(["-X", "-v", "ON_ERROR_STOP=1"]).args(extra).current_dir(cwd);
    if verbose {
        cmd.args(["-v", "VERBOSITY=verbose"]);
    }
    let out = cmd.arg("-f").arg(file.file_name().unwrap()).output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn scan(sandbox: &Sandbox, log: &str) -> (Option<i32>, Vec<Value>) {
    let run = sandbox.xtask(&["scan", "--json", log]);
    let findings = run.json()["findings"].as_array().unwrap().clone();
    (run.code, findings)
}

#[test]
fn each_class_from_a_real_failure_at_default_and_verbose_verbosity() {
    prepare();
    let sandbox = Sandbox::new("classifier");
    let server = ensure_server_with_pgtap().unwrap();
    let cluster = LocalCluster::start(&server).unwrap();
    for verbose in [false, true] {
        for case in CASES {
            let file = sandbox.workdir.join(format!("{}.sql", case.name));
            std::fs::write(&file, case.sql).unwrap();
            // One transaction each, rolled back by the error: the verbose round starts clean.
            let output = psql(&cluster.dsn(), verbose, &file, &sandbox.workdir, &["--single-transaction"]);
            let log = sandbox.workdir.join(format!("{}-{verbose}.log", case.name));
            std::fs::write(&log, &output).unwrap();
            let (code, findings) = scan(&sandbox, log.to_str().unwrap());
            assert_eq!(code, Some(1), "{}: {output}", case.name);
            assert_eq!(findings.len(), 1, "{} (verbose {verbose}): {findings:#?}\n{output}", case.name);
            let f = &findings[0];
            assert_eq!(f["class"], case.class, "{} (verbose {verbose}): {output}", case.name);
            assert_eq!(f["sqlstate"], case.sqlstate, "{} (verbose {verbose}): {output}", case.name);
            assert_eq!(f["file"], format!("{}.sql", case.name));
            assert_eq!(f["line"], case.line, "{}: {output}", case.name);
            assert!(!f["hint"].as_str().unwrap().is_empty());
            assert_eq!(f["log"], log.to_str().unwrap());
        }
    }
}

#[test]
fn a_real_lock_held_by_another_session_and_concurrently_in_a_transaction() {
    prepare();
    let sandbox = Sandbox::new("classifier-lock");
    let server = ensure_server_with_pgtap().unwrap();
    let cluster = LocalCluster::start(&server).unwrap();
    let setup = sandbox.workdir.join("setup.sql");
    std::fs::write(&setup, "create table busy (id int);\n").unwrap();
    psql(&cluster.dsn(), false, &setup, &sandbox.workdir, &[]);
    // Another session holds the table for as long as it lives.
    use std::io::{BufRead, Write};
    let mut holder = Command::new(find_client("psql").unwrap())
        .args([cluster.dsn().as_str(), "-X", "-q", "-A", "-t"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(holder.stdin.as_mut().unwrap(), "begin; lock table busy in access exclusive mode; select 'held';")
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "held");

    for verbose in [false, true] {
        let file = sandbox.workdir.join("waits.sql");
        std::fs::write(&file, "set lock_timeout = '200ms';\nalter table busy add column note text;\n").unwrap();
        let log = sandbox.workdir.join(format!("lock-{verbose}.log"));
        std::fs::write(&log, psql(&cluster.dsn(), verbose, &file, &sandbox.workdir, &[])).unwrap();
        let (_, findings) = scan(&sandbox, log.to_str().unwrap());
        assert_eq!(
            (findings[0]["class"].as_str(), findings[0]["sqlstate"].as_str(), findings[0]["line"].as_u64()),
            (Some("lock_timeout"), Some("55P03"), Some(2)),
            "{findings:#?}"
        );

        let file = sandbox.workdir.join("concurrently.sql");
        std::fs::write(
            &file,
            "create table if not exists idx (id int);\ncreate index concurrently idx_id on idx (id);\n",
        )
        .unwrap();
        let log = sandbox.workdir.join(format!("concurrently-{verbose}.log"));
        std::fs::write(&log, psql(&cluster.dsn(), verbose, &file, &sandbox.workdir, &["--single-transaction"]))
            .unwrap();
        let (_, findings) = scan(&sandbox, log.to_str().unwrap());
        assert_eq!(findings.len(), 1, "the NOTICE of IF NOT EXISTS is not a finding: {findings:#?}");
        assert_eq!(
            (findings[0]["class"].as_str(), findings[0]["sqlstate"].as_str(), findings[0]["line"].as_u64()),
            (Some("not_in_transaction"), Some("25001"), Some(2)),
            "{findings:#?}"
        );
    }
    drop(holder.stdin.take());
    holder.wait().unwrap();
}

#[test]
fn notices_and_the_aborted_transaction_aftermath_are_not_findings() {
    prepare();
    let sandbox = Sandbox::new("classifier-quiet");
    let server = ensure_server_with_pgtap().unwrap();
    let cluster = LocalCluster::start(&server).unwrap();
    let file = sandbox.workdir.join("replay.sql");
    std::fs::write(
        &file,
        "create table if not exists t (id int);\ncreate table if not exists t (id int);\ndrop table if exists gone;\n",
    )
    .unwrap();
    let log = sandbox.workdir.join("notices.log");
    let output = psql(&cluster.dsn(), true, &file, &sandbox.workdir, &[]);
    assert!(output.contains("NOTICE:  42P07"), "{output}");
    std::fs::write(&log, output).unwrap();
    let run = sandbox.xtask(&["scan", log.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.starts_with("no failures found in 1 file(s)"), "{run}");

    // Without ON_ERROR_STOP, later statements of the transaction fail with 25P02: one finding only.
    let file = sandbox.workdir.join("aborted.sql");
    std::fs::write(&file, "begin;\nselect * from nowhere;\nselect 1;\ncommit;\n").unwrap();
    let out = Command::new(find_client("psql").unwrap())
        .args([cluster.dsn().as_str(), "-X", "-v", "VERBOSITY=verbose", "-f", "aborted.sql"])
        .current_dir(&sandbox.workdir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(text.contains("25P02"), "{text}");
    let log = sandbox.workdir.join("aborted.log");
    std::fs::write(&log, text).unwrap();
    let (_, findings) = scan(&sandbox, log.to_str().unwrap());
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["sqlstate"], "42P01");
}

#[test]
fn connection_failures_from_psql_and_both_supabase_cli_flavours() {
    prepare();
    let sandbox = Sandbox::new("classifier-connect");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let psql = find_client("psql").unwrap();
    let cases = [
        (format!("postgresql://postgres@127.0.0.1:{closed}/postgres"), "connection"),
        (format!("postgresql://postgres@[::1]:{closed}/postgres"), "ipv6_unreachable"),
    ];
    for (dsn, class) in cases {
        let out = Command::new(&psql).args([dsn.as_str(), "-X", "-c", "select 1"]).output().unwrap();
        let log = sandbox.workdir.join(format!("{class}.log"));
        std::fs::write(&log, &out.stderr).unwrap();
        let (code, findings) = scan(&sandbox, log.to_str().unwrap());
        assert_eq!(code, Some(1));
        assert_eq!(findings[0]["class"], class, "{}", String::from_utf8_lossy(&out.stderr));
    }
    if xtask::tools::is_root() || std::env::var_os("HOME").is_some() {
        let cli =
            xtask::tools::supabase_cli::SupabaseCli::find_or_install(&common::repo_root()).expect("the pinned CLI");
        let dsn = format!("postgresql://postgres:pw@127.0.0.1:{closed}/postgres?sslmode=disable");
        let out = Command::new(&cli.path)
            .args(["migration", "list"])
            .args(cli.dsn_args(&dsn))
            .arg("--workdir")
            .arg(common::repo_root())
            .output()
            .unwrap();
        let log = sandbox.workdir.join("cli.log");
        std::fs::write(&log, [out.stdout, out.stderr].concat()).unwrap();
        let (_, findings) = scan(&sandbox, log.to_str().unwrap());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0]["class"], "connection");
        assert!(!findings[0]["message"].as_str().unwrap().contains(":pw@"), "no password in a finding");
    }
}
