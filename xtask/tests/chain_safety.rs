//! The chain never changes what a file means: statement boundaries are psql's own, a marker that
//! did not run where the tool placed it rolls its file back and the file runs again as psql -f
//! runs it, every file starts in a session as fresh as psql -f gives, the history row holds the
//! statements the Supabase CLI itself would store, and what psql or the CLI would read otherwise
//! (a NUL byte, a psql variable, a control character in a name) is refused before anything runs.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{local_target, prepare, Sandbox};
use xtask::evidence::artifacts::Transcript;
use xtask::prepare::tree::Tree;
use xtask::runbook::apply;
use xtask::text::sql::Script;

/// `sql` as the target's superuser, one value per line.
fn query(dsn: &str, sql: &str) -> String {
    let out = Command::new(xtask::tools::find_client("psql").unwrap())
        .args([dsn, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// Apply every migration of the sandbox's tree on `target`; the log and each file's status.
fn apply_tree(sandbox: &Sandbox, target: &mut xtask::database::Target) -> (String, Vec<bool>) {
    let tree = Tree::load(&sandbox.workdir).unwrap();
    let log_path = sandbox.root.join(format!("apply-{}.log", std::process::id()));
    let mut log = Transcript::append(&log_path, "migration_apply.log".into()).unwrap();
    let mut ok = Vec::new();
    apply::apply_all(target, &tree.migrations, (true, None), &mut log, &mut None, &mut |_, applied| {
        ok.push(applied.ok);
        Ok(true)
    })
    .unwrap();
    drop(log);
    (std::fs::read_to_string(&log_path).unwrap(), ok)
}

/// A local target whose working session runs `psql`.
fn target_with_psql(sandbox: &Sandbox, psql: std::path::PathBuf) -> xtask::database::Target {
    let config = xtask::text::config::Config::default();
    xtask::database::Target::open(xtask::database::Opening {
        kind: xtask::database::Kind::Local,
        workdir: &sandbox.workdir,
        config: &config,
        db_url: None,
        superuser_postgres: false,
        timeouts: Default::default(),
        psql,
        server: Some(xtask::tools::server::ensure_server_with_pgtap().unwrap()),
    })
    .unwrap()
}

#[test]
fn a_psql_older_than_15_runs_each_file_statement_by_statement() {
    prepare();
    let sandbox = Sandbox::new("safety-old-psql");
    sandbox.write(
        "supabase/migrations/20250101000000_a.sql",
        "create table public.a (id int);
select 1 as one;
",
    );
    sandbox.write(
        "supabase/migrations/20250101000001_b.sql",
        "create table public.b (id int);
select 1/0;
",
    );
    sandbox.write(
        "supabase/migrations/20250101000002_c.sql",
        "create table public.c (id int);
",
    );
    // psql 14 shows only the last result of a query string: a chain's markers would vanish. Only
    // 15 is packaged here, so this psql says it is 14 and records what the tool sends it.
    let real = xtask::tools::find_client("psql").unwrap();
    let fake = sandbox.root.join("bin/psql");
    let sent = sandbox.root.join("sent.txt");
    std::fs::create_dir_all(fake.parent().unwrap()).unwrap();
    std::fs::write(
        &fake,
        format!(
            "#!/bin/bash
if [ \"$1\" = --version ]; then echo 'psql (PostgreSQL) 14.11'; exit 0; fi
exec {1} \"$@\" < <(tee -a {0} 2>/dev/null)\n",
            sent.display(),
            real.display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut target = target_with_psql(&sandbox, fake);
    assert!(!target.chains());
    let (log, ok) = apply_tree(&sandbox, &mut target);
    assert_eq!(ok, [true, false, true], "{log}");
    let sent = std::fs::read_to_string(&sent).unwrap();
    assert!(!sent.contains("chain-") && sent.contains("\\i 'supabase/migrations/20250101000001_b.sql'"), "{sent}");
    // psql -f's transcript: the failed file's first statement ran, in its transaction.
    assert!(log.contains("==> supabase/migrations/20250101000001_b.sql\nCREATE TABLE\npsql:supabase/migrations/20250101000001_b.sql:2: ERROR:  division by zero"), "{log}");
    let dsn = target.cluster().unwrap().dsn();
    assert_eq!(query(&dsn, "select count(*) from pg_class where relname in ('a', 'b', 'c')"), "2");
    let mut doctor = sandbox.command(&["doctor"]);
    doctor.env("REHEARSAL_PG_BINDIR", sandbox.root.join("bin"));
    let run = common::Run::of(doctor);
    assert!(run.stdout.contains("psql (PostgreSQL) 14.11") && run.stdout.contains("older than 15"), "{run}");
}

#[test]
fn a_dollar_tag_of_any_bytes_keeps_its_literal_whole() {
    prepare();
    let sandbox = Sandbox::new("safety-tags");
    sandbox.write(
        "supabase/migrations/20250101000000_tags.sql",
        "create table public.notes (id int, body text);\n\
         insert into public.notes values (1, $★$a;b$★$), (2, $é1$c;d$é1$), (3, 1$x$;$x$::text);\n\
         comment on table public.notes is $★$kept; whole$★$;\n",
    );
    sandbox.write("supabase/migrations/20250101000001_after.sql", "insert into public.notes values (4, 'e;f');\n");
    let mut target = local_target(&sandbox.workdir);
    let (log, ok) = apply_tree(&sandbox, &mut target);
    // `1$x$;$x$` is 1 followed by a literal for psql and the server: a syntax error in both
    // (the file after it then finds no table).
    assert_eq!(ok, [false, false], "{log}");
    assert!(log.contains("syntax error at or near \"$x$;$x$\""), "{log}");
    let dsn = target.cluster().unwrap().dsn();
    sandbox.write(
        "supabase/migrations/20250101000000_tags.sql",
        "create table public.notes (id int, body text);\n\
         insert into public.notes values (1, $★$a;b$★$), (2, $é1$c;d$é1$);\n\
         comment on table public.notes is $★$kept; whole$★$;\n",
    );
    sandbox.remove("supabase/migrations/20250101000001_after.sql");
    let (log, ok) = apply_tree(&sandbox, &mut target);
    assert_eq!(ok, [true], "{log}");
    assert_eq!(query(&dsn, "select string_agg(body, '|' order by id) from public.notes"), "a;b|c;d");
    assert_eq!(query(&dsn, "select obj_description('public.notes'::regclass)"), "kept; whole");
    assert!(!log.contains("rehearsal_mark"), "{log}");
}

#[test]
fn a_marker_psql_did_not_run_rolls_its_file_back_and_the_file_runs_as_psql_f_runs_it() {
    // The marker before the first statement, the one after the first `;` the tool ends a statement
    // at, and the one after an empty statement's (as if psql were inside a literal there): each
    // is counted before the commit.
    for (name, line) in [
        ("safety-net", "execute rehearsal_step_"),
        ("safety-net-end", "do \\$m[0-9a-f]*\\$ begin raise notice"),
        ("safety-net-empty", "execute rehearsal_term_"),
    ] {
        swallowed_marker(name, line);
    }
}

/// [`a_marker_psql_did_not_run_rolls_its_file_back_and_the_file_runs_as_psql_f_runs_it`], psql
/// reading the first chain line that starts with `line` (a sed pattern) as a comment.
fn swallowed_marker(name: &str, line: &str) {
    prepare();
    let sandbox = Sandbox::new(name);
    sandbox.write(
        "supabase/migrations/20250101000000_first.sql",
        "create table public.first (id int);;\ninsert into public.first values (1);\n",
    );
    sandbox.write(
        "supabase/migrations/20250101000001_second.sql",
        "create table public.second (body text);\ninsert into public.second values ('x;y');\n",
    );
    // A psql whose reading of the chain differs from the tool's: before the `\i` of a chain it
    // turns the chain's first marker line into a comment, as a lexer that saw a comment or a
    // literal there would. The tool's lexer now splits as psql does, so this cannot be produced
    // with the real psql; the fake stands in for the next disagreement nobody has found yet.
    let real = xtask::tools::find_client("psql").unwrap();
    let fake = sandbox.root.join("bin/psql");
    std::fs::create_dir_all(fake.parent().unwrap()).unwrap();
    std::fs::write(
        &fake,
        format!(
            "#!/bin/bash\nwhile IFS= read -r line; do\n  case \"$line\" in\n    '\\i '*chain-*)\n      f=${{line#\\\\i \\'}}; f=${{f%\\'}}\n      \
             sed -i '0,/^{line}/s//-- &/' \"$f\";;\n  esac\n  printf '%s\\n' \"$line\"\ndone | exec {} \"$@\"\n",
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut target = target_with_psql(&sandbox, fake);
    let (log, ok) = apply_tree(&sandbox, &mut target);
    assert_eq!(ok, [true, true], "{name}: {log}");
    assert!(
        log.contains("-- the tool's split of supabase/migrations/20250101000000_first.sql and psql's differ; rolled back, it runs again alone as psql -f runs it"),
        "{log}"
    );
    let dsn = target.cluster().unwrap().dsn();
    // Applied once each, with their history rows: nothing of the first attempt stayed.
    assert_eq!(query(&dsn, "select count(*) from public.first"), "1");
    assert_eq!(query(&dsn, "select body from public.second"), "x;y");
    assert_eq!(
        query(&dsn, "select string_agg(version, ',' order by version) from supabase_migrations.schema_migrations"),
        "20250101000000,20250101000001"
    );
    assert!(!log.contains("rehearsal_mark") && !log.contains("disagree"), "{log}");
}

#[test]
/// (The one thing of the tool's a file can see is the two statements its markers run, prepared
/// for it alone: `rehearsal_step_<secret>` and `rehearsal_term_<secret>`.)
fn every_file_starts_in_a_session_as_fresh_as_psql_f_gives() {
    prepare();
    let sandbox = Sandbox::new("safety-fresh");
    sandbox.write(
        "supabase/migrations/20250101000000_leaves_state.sql",
        "create temp table scratch (id int);\nprepare leftover as select 1;\nselect pg_advisory_lock(42);\n\
         create sequence public.counter;\nselect nextval('public.counter');\nset role authenticated;\n\
         set search_path = nowhere;\n\
         declare kept cursor with hold for select 1;\n",
    );
    let check = "do $$ begin\n\
         if exists (select from pg_prepared_statements where name !~ '^rehearsal_(step|term)_[0-9a-f]+$') then raise exception 'prepared statement leaked'; end if;\n\
         if exists (select from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()) then raise exception 'advisory lock leaked'; end if;\n\
         if exists (select from pg_class where relpersistence = 't') then raise exception 'temp table leaked'; end if;\n\
         if exists (select from pg_cursors) then raise exception 'cursor leaked'; end if;\n\
         if current_user <> session_user then raise exception 'role leaked: %', current_user; end if;\n\
         if current_setting('search_path') like '%nowhere%' then raise exception 'search_path leaked'; end if;\n\
         end $$;\nselect currval('public.counter');\n";
    sandbox.write("supabase/migrations/20250101000001_checks.sql", check);
    let mut target = local_target(&sandbox.workdir);
    let (log, ok) = apply_tree(&sandbox, &mut target);
    // The first file's state is gone: the checks pass, and `currval` has no value in a fresh
    // session (`discard sequences`), as under psql -f.
    assert_eq!(ok, [true, false], "{log}");
    assert!(log.contains("currval of sequence \"counter\" is not yet defined in this session"), "{log}");
    assert!(!log.contains("leaked"), "{log}");
}

#[test]
fn the_history_row_holds_the_statements_the_supabase_cli_stores() {
    prepare();
    let sandbox = Sandbox::new("safety-cli-split");
    // Cases where the CLI's split and psql's differ in what they keep: leading and trailing
    // comments, empty statements, a BEGIN ATOMIC body, CRLF, a dollar quote holding `;`.
    let file = "-- leading comment\r\ncreate table public.split_me (id int, \"odd;name\" text);;\r\n\
                /* block; */ insert into public.split_me values (1, $q$a;b$q$);\r\n\
                create function public.two() returns int language sql\r\nbegin atomic\r\n  select 2;\r\nend;\r\n\
                -- trailing comment\r\n";
    sandbox.write("supabase/migrations/20250101000000_split_me.sql", file);
    let cli = xtask::tools::supabase_cli::SupabaseCli::find_or_install(&common::repo_root()).unwrap();
    let pushed = local_target(&sandbox.workdir);
    let pushed_dsn = pushed.cluster().unwrap().dsn();
    let mut push = Command::new(&cli.path);
    push.args(["db", "push", "--yes"]).args(cli.dsn_args(&pushed_dsn)).arg("--workdir").arg(&sandbox.workdir);
    push.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = push.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"y\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "db push: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ours = local_target(&sandbox.workdir);
    let (log, ok) = apply_tree(&sandbox, &mut ours);
    assert_eq!(ok, [true], "{log}");
    let rows = "select array_to_json(statements) from supabase_migrations.schema_migrations";
    let theirs = query(&pushed_dsn, rows);
    assert_eq!(query(&ours.cluster().unwrap().dsn(), rows), theirs, "the row db push wrote");
    let expected = serde_json::to_string(&Script::lex(file).history_statements()).unwrap();
    assert_eq!(theirs.replace(", ", ","), expected.replace(", ", ","));
}

fn refused(sandbox: &Sandbox, needle: &str) {
    let run = sandbox.xtask(&["rls"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains(needle), "{run}");
    assert!(!Path::new(&sandbox.workdir.join("supabase/.rehearsal")).exists() || !run.stdout.contains("applied"));
}

#[test]
fn what_psql_or_the_cli_would_read_otherwise_is_refused_before_anything_runs() {
    prepare();
    let sandbox = Sandbox::new("safety-refused");
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('runs');\n");
    sandbox.write("supabase/migrations/20250101000000_nul.sql", "create table public.a (id int);\nselect 'a\0b';\n");
    refused(&sandbox, "supabase/migrations/20250101000000_nul.sql:2: holds a NUL byte");
    sandbox.write("supabase/migrations/20250101000000_nul.sql", "select :DBNAME;\n");
    refused(&sandbox, "supabase/migrations/20250101000000_nul.sql:1: `:DBNAME` is a psql variable");
    sandbox.write("supabase/migrations/20250101000000_nul.sql", "select :'ROW_COUNT';\n");
    refused(&sandbox, "`:'ROW_COUNT'` is a psql variable");
    sandbox
        .write("supabase/migrations/20250101000000_nul.sql", "select 1::int, a[1:2] from (select array[1,2] a) s;\n");
    sandbox.write("supabase/migrations/20250101000001_evil\n::error::x.sql", "select 1;\n");
    refused(&sandbox, "supabase/migrations/20250101000001_evil\\n::error::x.sql: a file name with a control character");
    sandbox.remove("supabase/migrations/20250101000001_evil\n::error::x.sql");
    // A test file that is a symlink to a file outside the workdir (a secret elsewhere on the
    // machine would be run, and its text printed in the log).
    std::fs::write(sandbox.root.join("outside.sql"), "select 'secret';\n").unwrap();
    std::fs::create_dir_all(sandbox.path("supabase/tests")).unwrap();
    std::os::unix::fs::symlink(sandbox.root.join("outside.sql"), sandbox.path("supabase/tests/linked.sql")).unwrap();
    refused(&sandbox, "supabase/tests/linked.sql: a symlink that leads outside the workdir");
}

#[test]
fn the_local_cluster_reads_text_as_supabase_does_in_utf_8() {
    prepare();
    let sandbox = Sandbox::new("safety-locale");
    let target = local_target(&sandbox.workdir);
    let dsn = target.cluster().unwrap().dsn();
    // Supabase's databases use a UTF-8 locale: `upper`, `lower` and `~*` know letters past ASCII.
    assert_eq!(query(&dsn, "select upper('é'), lower('ÀB'), 'Été' ~* 'été'"), "É|àb|t");
    assert_eq!(query(&dsn, "select current_setting('lc_ctype')"), "C.UTF-8");
}

/// A server whose default is `standard_conforming_strings = off` (psql then reads `\'` in a plain
/// string as an escaped quote): the working session finds it out when it starts, and files run as
/// psql -f runs them, so a literal holding `\';` stays one statement.
#[test]
fn a_server_with_standard_conforming_strings_off_runs_files_as_psql_f_does() {
    prepare();
    let sandbox = Sandbox::new("safety-scs-off");
    sandbox.write(
        "supabase/migrations/20250101000000_t.sql",
        "create table public.t (v text);\ninsert into public.t values ('back\\'; select 1; -- ');\n",
    );
    let mut target = local_target(&sandbox.workdir);
    let admin = target.cluster().unwrap().admin_dsn();
    query(&admin, "alter database postgres set standard_conforming_strings = off");
    assert!(target.chains(), "psql 15 chains until the server says otherwise");
    let (log, ok) = apply_tree(&sandbox, &mut target);
    assert_eq!(ok, [true], "{log}");
    assert!(!target.chains(), "the session's start read the setting");
    assert_eq!(query(&admin, "select v || '|' from public.t"), "back'; select 1; -- |");
    assert!(!log.contains("rehearsal_mark"), "{log}");
}

/// The tool's own statements in a chain name everything they use from `pg_catalog`: a migration
/// that shadows a catalog view or function in `public` and puts `public` first on its search_path
/// runs as psql -f runs it.
#[test]
fn a_migration_that_shadows_the_catalog_runs_unchanged() {
    prepare();
    let sandbox = Sandbox::new("safety-shadow");
    sandbox.write(
        "supabase/migrations/20250101000000_shadow.sql",
        "create table public.pg_locks (x int);\ncreate table public.pg_class (y int);\n\
         create function public.set_config(text, text, boolean) returns text language sql as $$ select 'hijacked' $$;\n\
         set search_path = public, pg_catalog;\ncreate table public.after_shadow (id int);\n",
    );
    let mut target = local_target(&sandbox.workdir);
    let admin = target.cluster().unwrap().admin_dsn();
    let (log, ok) = apply_tree(&sandbox, &mut target);
    assert_eq!(ok, [true], "{log}");
    assert!(!log.contains("ERROR") && !log.contains("rehearsal_mark"), "{log}");
    assert_eq!(query(&admin, "select count(*) from pg_catalog.pg_class where relname = 'after_shadow'"), "1");
}
