//! A tree's contract and test files run as psql scripts, so they are held to what a test needs:
//! pgTAP's usual headers (`\set`, `\pset`) pass, a meta-command that reaches outside the session
//! (`\!`, `\o`, `\copy`, `\i`, `\getenv`, a backtick) is refused before anything runs, and the
//! password is not in the environment of the psql that runs them.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use common::{prepare, Sandbox, Stack};

fn tree(name: &str, test: &str) -> Sandbox {
    let sandbox = Sandbox::new(name);
    sandbox.write(
        "supabase/migrations/20250101000000_t.sql",
        "create table if not exists public.t (id int);\nalter table public.t enable row level security;\n",
    );
    sandbox.write("supabase/tests/t_test.sql", test);
    sandbox
}

#[test]
fn pgtap_headers_pass_and_meta_commands_that_reach_outside_are_refused() {
    prepare();
    // pgTAP's documented header, variables and a conditional: as `supabase test db` runs them.
    let sandbox = tree(
        "test-meta-ok",
        "\\set ECHO none\n\\set QUIET 1\n\\pset format unaligned\n\\pset tuples_only true\n\\pset pager off\n\
         \\set table_name 't'\nbegin;\nselect plan(1);\nselect has_table('public', :'table_name', 't exists');\n\
         select * from finish();\nrollback;\n",
    );
    let run = sandbox.xtask(&["rls"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("supabase/tests/t_test.sql .. ok"), "{run}");

    let marker = std::env::temp_dir().join(format!("test-meta-{}", std::process::id()));
    for (line, why) in [
        (format!("\\! touch {}", marker.display()), "the psql meta-command `\\!`"),
        (format!("\\o {}", marker.display()), "the psql meta-command `\\o`"),
        (format!("\\copy (select 1) to '{}'", marker.display()), "the psql meta-command `\\copy`"),
        ("\\i /etc/passwd".to_string(), "the psql meta-command `\\i`"),
        ("\\getenv pw PGPASSWORD".to_string(), "the psql meta-command `\\getenv`"),
        ("\\set QUIET 1 \\setenv X y".to_string(), "the psql meta-command `\\setenv`"),
        (format!("\\set x `touch {}`", marker.display()), "a backtick (psql runs the command inside it)"),
    ] {
        let sandbox = tree("test-meta-refused", &format!("select plan(1);\n{line}\nselect pass('x');\n"));
        let run = sandbox.xtask(&["rls"]);
        assert_eq!(run.code, Some(2), "{line}: {run}");
        assert!(
            run.stderr.contains(&format!("supabase/tests/t_test.sql:2: holds {why}: a test file may only set")),
            "{line}: {run}"
        );
        assert!(!marker.exists(), "{line}: it ran");
        assert!(sandbox.rehearsal_dirs().is_empty(), "{line}: nothing ran, nothing written: {run}");
    }
}

#[test]
fn the_password_is_not_in_the_environment_of_the_psql_that_runs_test_files() {
    let stack = Stack::start();
    let sandbox = tree(
        "test-env",
        "select plan(1);\nselect pg_advisory_lock(4711);\nselect pg_advisory_unlock(4711);\nselect pass('waited');\n",
    );
    sandbox.with_vault(&stack.dsn());
    // Hold the advisory lock the test file waits on, from a session of the test's own.
    let admin = stack.cluster.as_ref().unwrap().admin_dsn();
    let mut holder = std::process::Command::new("psql")
        .args([admin.as_str(), "-X", "-q", "-A", "-t"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut holder_in = holder.stdin.take().unwrap();
    let mut holder_out = BufReader::new(holder.stdout.take().unwrap());
    writeln!(holder_in, "select pg_advisory_lock(4711); select 'held';").unwrap();
    let mut line = String::new();
    while line.trim() != "held" {
        line.clear();
        assert!(holder_out.read_line(&mut line).unwrap() > 0, "the holder session ended");
    }

    let mut child =
        sandbox.command(&["rls", "--target", "staging"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // The test file is running once its session waits on the lock (polled: a condition on the
    // server, not a sleep).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while stack.admin_sql("select count(*) from pg_locks where locktype = 'advisory' and objid = 4711 and not granted")
        != "1"
    {
        assert!(std::time::Instant::now() < deadline, "the test file never reached the lock");
        assert!(child.try_wait().unwrap().is_none(), "xtask ended before the test file ran");
        std::thread::yield_now();
    }
    let sessions = common::psql_children(child.id());
    assert!(!sessions.is_empty(), "the run's psql sessions are its children");
    for (cmdline, environ) in &sessions {
        assert!(!environ.contains(&stack.password), "{cmdline} has the password in its environment");
        assert!(!environ.split('\0').any(|v| v.starts_with("PGPASSWORD=")), "{cmdline}: {environ}");
        assert!(environ.split('\0').any(|v| v.starts_with("PGPASSFILE=")), "{cmdline} logs in with a passfile");
    }
    writeln!(holder_in, "select pg_advisory_unlock(4711);").unwrap();
    drop(holder_in);
    let out = child.wait_with_output().unwrap();
    let _ = holder.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("supabase/tests/t_test.sql .. ok"), "{stdout}");
    // The passfile went with the run's temp dir.
    let left: Vec<_> = walkdir::WalkDir::new(&sandbox.tmp)
        .into_iter()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("pgpass-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
