//! Secrets and guards on a real staging-like stack: a DSN read as libpq reads it, the password
//! kept out of every argv and every inherited variable kept out of every child, a server that never
//! answers, timeouts that reach every session, and messages that say what really happened.

mod common;

use std::io::BufRead;
use std::process::Command;

use common::{wait_for_log, Run, Sandbox, Stack, PASSWORD};

fn tree(name: &str) -> Sandbox {
    let sandbox = Sandbox::new(name);
    sandbox.with_vault("unused: these tests pass --db-url");
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('contract runs');\n");
    sandbox.write(
        "supabase/migrations/20250101000000_hot.sql",
        "create table if not exists public.hot (id int);\nalter table public.hot enable row level security;\n",
    );
    sandbox.write("supabase/migrations.backup/20250101000000_hot_rollback.sql", "drop table if exists public.hot;\n");
    sandbox
}

#[test]
fn a_keyword_dsn_with_a_quoted_password_connects_and_its_password_is_never_shown() {
    let stack = Stack::start();
    let password = "pw with 'quotes' and \\ spaces";
    let pooler = xtask::database::local::pooler::Pooler::start(stack.cluster.as_ref().unwrap(), password).unwrap();
    let dsn = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=require password='{}'",
        pooler.port,
        password.replace('\\', "\\\\").replace('\'', "\\'")
    );
    let sandbox = tree("keyword-dsn");
    let run = sandbox.xtask(&["connectivity", "--db-url", &dsn]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.starts_with("postgres at 127.0.0.1 (IPv4)"), "{run}");
    for shown in [password, "with 'quotes'", "quotes\\' and"] {
        assert!(
            !run.stdout.contains(shown) && !run.stderr.contains(shown),
            "the password reached the terminal:\n{run}"
        );
    }
    // A quoted value cannot carry a second sslmode or host past the guards.
    let smuggled = format!(
        "host=127.0.0.1 port={} sslmode=disable application_name='x sslmode=require host=localhost'",
        pooler.port
    );
    let refused = sandbox.xtask(&["connectivity", "--db-url", &smuggled]);
    assert_eq!(refused.code, Some(2), "{refused}");
    assert!(refused.stderr.contains("sslmode is `disable`; it must be require or stricter"), "{refused}");
}

#[test]
fn no_password_in_an_argv_and_no_inherited_libpq_variable_in_a_child() {
    let stack = Stack::start();
    let sandbox = tree("argv-env");
    sandbox.write(
        "supabase/migrations/20250102000000_slow.sql",
        "do $$ begin raise notice 'slow migration started'; end $$;\nselect pg_sleep(60);\n",
    );
    let mut cmd = sandbox.command(&["stage-rehearse", "--db-url", &stack.dsn(), "--plan", "/nonexistent/plan.json"]);
    cmd.env("PGPASSWORD", "not-the-password").env("PGSSLMODE", "disable").env("PGHOST", "/nonexistent");
    let mut child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    wait_for_log(&sandbox, "migration_apply.log", "slow migration started", &mut child);
    let children = common::psql_children(child.id());
    assert_eq!(children.len(), 1, "the run's one connection, its working session: {children:?}");
    let encoded = xtask::database::local::pooler::url_encode(PASSWORD);
    for (cmdline, environ) in &children {
        assert!(!cmdline.contains(&encoded) && !cmdline.contains(PASSWORD), "a password in an argv: {cmdline}");
        let vars: Vec<&str> = environ.split('\0').collect();
        // Its password is in a private passfile, and no inherited PGPASSWORD is passed on.
        assert!(!vars.iter().any(|v| v.starts_with("PGPASSWORD=")), "{vars:?}");
        let passfile = vars.iter().find_map(|v| v.strip_prefix("PGPASSFILE=")).expect("a passfile");
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(passfile).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "{passfile}");
        let line = std::fs::read_to_string(passfile).unwrap();
        let escaped = PASSWORD.replace('\\', "\\\\").replace(':', "\\:");
        assert_eq!(line, format!("*:*:*:*:{escaped}\n"), "libpq's passfile format, `:` and `\\` escaped");
        assert!(!vars.iter().any(|v| v.starts_with("PGSSLMODE=") || v.starts_with("PGHOST=")), "{vars:?}");
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(130));
}

#[test]
fn a_server_that_takes_the_connection_and_never_answers_cannot_hang_the_run() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Every connection is taken and never answered (the working session's, the lock session's,
    // the Supabase CLI's); they are held until the test ends.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let sandbox = tree("silent-server");
    let mut cmd = sandbox.command(&[
        "stage-rehearse",
        "--db-url",
        &format!("postgresql://postgres:pw@127.0.0.1:{port}/postgres?sslmode=require"),
        "--plan",
        "/nonexistent/plan.json",
    ]);
    cmd.env("REHEARSAL_CONNECT_TIMEOUT", "2");
    let run = Run::of(cmd);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("error: step 2 connectivity: the database is unreachable"), "{run}");
    assert!(run.stderr.contains("timeout expired"), "{run}");
}

#[test]
fn the_lock_timeout_reaches_the_contract_and_bad_timeouts_are_refused() {
    let stack = Stack::start();
    let sandbox = tree("timeouts-everywhere");
    stack.admin_sql(
        "set role postgres; create table public.busy (id int); alter table public.busy enable row level security;",
    );
    sandbox.write(
        "supabase/rls_tests.sql",
        "select plan(1);\nselect is((select count(*) from public.busy)::int, 0, 'busy is empty');\n",
    );
    let _held = stack.hold("begin; lock table public.busy in access exclusive mode;");
    let run = sandbox.xtask(&["rls", "--db-url", &stack.dsn(), "--lock-timeout", "1s", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let error = &run.json()["findings"][0];
    assert_eq!((error["class"].as_str(), error["sqlstate"].as_str()), (Some("lock_timeout"), Some("55P03")), "{run}");
    for (value, why) in
        [("0", "0 would disable the timeout"), ("25d", "over Postgres's limit"), ("5 s", "expected a number")]
    {
        let bad = sandbox.xtask(&["stage-rehearse", "--lock-timeout", value]);
        assert_eq!(bad.code, Some(2), "{bad}");
        assert!(bad.stderr.contains(why), "{value}: {bad}");
    }
}

#[test]
fn messages_say_what_really_happened() {
    let stack = Stack::start();
    let sandbox = tree("messages");
    let wrong = stack.pooler.dsn("not-the-password");
    let run = sandbox.xtask(&["stage-rehearse", "--db-url", &wrong, "--plan", "/nonexistent/plan.json", "--json"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("error: step 2 connectivity: the database refused the login"), "{run}");
    assert!(run.stderr.contains("authentication failed: the password was refused"), "{run}");
    assert!(!run.stderr.contains("check the pooler is up"), "{run}");
    assert_eq!(run.json()["outcome"], "error", "--json prints JSON for exit 2 too:\n{run}");

    sandbox.remove("supabase/rls_tests.sql");
    let halted = sandbox.xtask(&["rls"]);
    assert_eq!(halted.code, Some(3), "{halted}");
    assert!(halted.stderr.contains("halted: no RLS contract") && !halted.stderr.contains("halted: halted"), "{halted}");

    // The feedback file's planned commands paste safely into a shell, whatever the workdir's name.
    let odd = sandbox.root.join("it's $(touch pwned) here");
    common::copy_dir(&sandbox.path("supabase/migrations"), &odd.join("supabase/migrations"));
    common::copy_dir(&sandbox.path("supabase/migrations.backup"), &odd.join("supabase/migrations.backup"));
    std::fs::write(odd.join("supabase/rls_tests.sql"), "select plan(1);\nselect pass('ok');\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("--workdir")
        .arg(&odd)
        .args(["stage-rehearse", "--plan", "/nonexistent/plan.json"])
        .env("TMPDIR", &sandbox.tmp)
        .env("REHEARSAL_PG_CACHE", common::cache_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let feedback = std::fs::read_dir(odd.join("feedback/data")).unwrap().next().unwrap().unwrap().path();
    let planned = std::io::BufReader::new(std::fs::File::open(feedback).unwrap())
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("cargo xtask "))
        .unwrap();
    assert!(
        planned.contains(&format!("--workdir '{}'", odd.display().to_string().replace('\'', "'\\''"))),
        "{planned}"
    );
    assert!(!sandbox.root.join("pwned").exists());
}
