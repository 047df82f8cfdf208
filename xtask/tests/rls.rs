//! `cargo xtask rls` end to end on real throwaway clusters, real psql and real pgTAP: the green
//! tree passes, each kind of failure is reported where it happened, and nothing is left behind.

mod common;

use common::{prepare, Sandbox};

#[test]
fn the_repo_tree_passes_and_writes_its_logs_and_summary() {
    prepare();
    let sandbox = Sandbox::with_repo_tree("green");
    let run = sandbox.xtask(&["rls"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.lines().next().unwrap().starts_with("target: local"), "first line names the target:\n{run}");
    assert!(run.stdout.contains("rls: 41 planned, 41 ran, 41 passed, 0 failed, 0 errors"), "{run}");
    assert!(run.stdout.contains("outcome: passed (exit 0)"), "{run}");

    let dir = sandbox.rehearsal_dir();
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("rehearsal_") && name.ends_with('Z') && name.len() == "rehearsal_20251019T004500Z".len(),
        "{name}"
    );
    let day = dir.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
    assert!(name["rehearsal_".len()..].starts_with(&day.replace('-', "")), "{day} / {name}");

    // migration_apply.log: the runbook's format, one block per migration in version order.
    let apply = std::fs::read_to_string(dir.join("migration_apply.log")).unwrap();
    let headers: Vec<&str> = apply.lines().filter(|l| l.starts_with("==> ")).collect();
    assert_eq!(headers.len(), 9, "{apply}");
    assert_eq!(headers[0], "==> supabase/migrations/20251011090000_inventory_bundle.sql");
    assert_eq!(headers[8], "==> supabase/migrations/20251019024000_ab_harness_exposures.sql");
    assert!(!apply.contains("!! failure"), "{apply}");
    assert!(apply.contains("CREATE POLICY"), "psql's own output is kept:\n{apply}");
    assert!(apply.ends_with("\n\n"), "each block ends with a blank line");

    let contract = std::fs::read_to_string(dir.join("rls_contract.log")).unwrap();
    assert!(contract.contains("ok 41 - service_role sees all approvals"), "{contract}");

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["schema_version"], 1);
    assert_eq!(summary["outcome"], "passed");
    assert_eq!(summary["target"]["kind"], "local");
    assert_eq!(summary["rehearsal_dir"], format!("artifacts/ops/{day}/{name}"));
    assert_eq!(summary["migrations"].as_array().unwrap().len(), 9);
    assert_eq!(summary["migrations"][5]["version"], "20251019004500");
    assert_eq!(summary["migrations"][5]["name"], "programmatic_seo_blueprints");
    assert_eq!(summary["migrations"][5]["apply"]["status"], "applied");
    assert_eq!(summary["migrations"][5]["apply"]["atomic"], true);
    assert_eq!(summary["rls"]["planned"], 41);
    assert_eq!(summary["rls"]["passed"], 41);
    assert_eq!(summary["rls"]["files"][0]["path"], "supabase/rls_tests.sql");
    for stamp in ["started_at", "finished_at"] {
        let s = summary[stamp].as_str().unwrap();
        assert!(s.len() == 24 && s.ends_with('Z') && s.as_bytes()[10] == b'T', "{stamp}: {s}");
    }
    sandbox.assert_nothing_left();
}

#[test]
fn json_prints_the_summary_alone_on_stdout() {
    prepare();
    let sandbox = Sandbox::with_repo_tree("json");
    let run = sandbox.xtask(&["rls", "--json"]);
    assert_eq!(run.code, Some(0), "{run}");
    let summary = run.json();
    assert_eq!(summary["outcome"], "passed");
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sandbox.rehearsal_dir().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary, on_disk, "stdout and summary.json agree");
}

#[test]
fn a_failed_migration_is_named_with_file_line_class_and_leaves_nothing_half_applied() {
    prepare();
    let sandbox = Sandbox::new("red-migration");
    sandbox.write("supabase/migrations/20250101000000_items.sql", "create table public.items (id int primary key, name text);\nalter table public.items enable row level security;\n");
    // Line 2 fails; line 1 must not survive it (one transaction with the history row).
    sandbox.write(
        "supabase/migrations/20250102000000_broken.sql",
        "create table public.half (id int);\ncreate index items_missing_idx on public.items (missing_column);\n",
    );
    sandbox.write(
        "supabase/rls_tests.sql",
        "select plan(2);\nselect hasnt_table('public', 'half', 'the failed file left nothing behind');\n\
         select results_eq('select version from supabase_migrations.schema_migrations order by 1', \
         array['20250101000000'], 'only the applied file is recorded');\n",
    );
    let run = sandbox.xtask(&["rls"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("20250102000000_broken  FAILED"), "{run}");
    assert!(
        run.stdout.contains("undefined_object 42703 supabase/migrations/20250102000000_broken.sql:2: column \"missing_column\" does not exist"),
        "{run}"
    );
    assert!(run.stdout.contains("what to do:"), "{run}");
    assert!(run.stdout.contains("rls: 2 planned, 2 ran, 2 passed"), "atomic apply proven by the contract:\n{run}");

    let apply = std::fs::read_to_string(sandbox.rehearsal_dir().join("migration_apply.log")).unwrap();
    assert!(apply.contains("!! failure: supabase/migrations/20250102000000_broken.sql\n\n"), "{apply}");
    let summary = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(sandbox.rehearsal_dir().join("summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["outcome"], "failed");
    let error = &summary["migrations"][1]["apply"]["error"];
    assert_eq!(summary["migrations"][1]["apply"]["status"], "failed");
    assert_eq!(error["class"], "undefined_object");
    assert_eq!(error["sqlstate"], "42703");
    assert_eq!(error["file"], "supabase/migrations/20250102000000_broken.sql");
    assert_eq!(error["line"], 2);
    sandbox.assert_nothing_left();
}

#[test]
fn a_failing_rls_test_is_named_by_number_and_description() {
    prepare();
    let sandbox = Sandbox::with_repo_tree("red-policy");
    // Widen one policy: alice now sees bob's inventory.
    let path = "supabase/migrations/20251011090000_inventory_bundle.sql";
    let leaky = sandbox.read(path).replace(
        "create policy inventory_items_owner_select on public.inventory_items\n    for select to authenticated using (owner_id = (select auth.uid()));",
        "create policy inventory_items_owner_select on public.inventory_items\n    for select to authenticated using (true);",
    );
    sandbox.write(path, &leaky);
    let run = sandbox.xtask(&["rls", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let rls = &run.json()["rls"];
    assert_eq!(rls["failed"], 3, "{rls:#}");
    let failures: Vec<String> =
        rls["failures"].as_array().unwrap().iter().map(|f| f["description"].as_str().unwrap().to_string()).collect();
    assert!(failures.contains(&"alice sees only her inventory".to_string()), "{failures:?}");
    assert!(failures.contains(&"bob sees only his inventory, unchanged by alice".to_string()), "{failures:?}");

    let human = sandbox.xtask(&["rls"]);
    assert!(human.stdout.contains("not ok 28 - alice sees only her inventory"), "{human}");
    sandbox.assert_nothing_left();
}

#[test]
fn a_contract_that_dies_part_way_ran_short_even_though_psql_exits_zero() {
    prepare();
    let sandbox = Sandbox::new("short");
    sandbox.write("supabase/migrations/20250101000000_a.sql", "create table public.a (id int);\n");
    // No ON_ERROR_STOP in the runbook's command: psql exits 0 after the error. The log is read.
    sandbox.write(
        "supabase/rls_tests.sql",
        "begin;\nselect plan(3);\nselect pass('one');\nselect * from public.no_such_table;\nrollback;\n",
    );
    let run = sandbox.xtask(&["rls"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("rls: 3 planned, 1 ran, 1 passed, 0 failed, 1 errors"), "{run}");
    assert!(run.stdout.contains("supabase/rls_tests.sql .. FAILED: ran short, 1 of 3 planned tests ran"), "{run}");
    assert!(run.stdout.contains("supabase/rls_tests.sql:4: relation \"public.no_such_table\" does not exist"), "{run}");
}

#[test]
fn unaligned_tap_from_the_test_layout_is_read_per_file() {
    prepare();
    let sandbox = Sandbox::new("layout");
    sandbox.write(
        "supabase/migrations/20250101000000_a.sql",
        "create table public.a (id int);\nalter table public.a enable row level security;\n",
    );
    sandbox.write(
        "supabase/tests/database/01_rls.test.sql",
        "begin;\nselect plan(1);\nselect ok(true, 'fine');\nselect * from finish();\nrollback;\n",
    );
    sandbox.write("supabase/tests/database/02_more.test.sql", "begin;\nselect plan(2);\nselect ok(true, 'fine');\nselect ok(false, 'broken on purpose');\nselect * from finish();\nrollback;\n");
    let run = sandbox.xtask(&["rls", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let rls = &run.json()["rls"];
    assert_eq!(
        (rls["planned"].as_u64(), rls["passed"].as_u64(), rls["failed"].as_u64()),
        (Some(3), Some(2), Some(1)),
        "{rls:#}"
    );
    assert_eq!(rls["files"][0]["path"], "supabase/tests/database/01_rls.test.sql");
    assert_eq!(rls["files"][1]["failed"], 1);
    assert_eq!(rls["failures"][0]["file"], "supabase/tests/database/02_more.test.sql");
    assert_eq!(rls["failures"][0]["number"], 2);
}

#[test]
fn without_a_contract_the_run_halts_for_escalation() {
    let sandbox = Sandbox::with_repo_tree("no-contract");
    sandbox.remove("supabase/rls_tests.sql");
    let run = sandbox.xtask(&["rls"]);
    assert_eq!(run.code, Some(3), "{run}");
    assert!(run.stderr.contains("halted: no RLS contract (supabase/rls_tests.sql)"), "{run}");
    assert!(run.stderr.contains("escalate to the manager"), "{run}");
    assert!(!sandbox.path("artifacts").exists(), "a halted run writes no rehearsal dir");
    let json = sandbox.xtask(&["rls", "--json"]);
    assert_eq!(json.code, Some(3));
    assert_eq!(json.json()["outcome"], "halted");
}

#[test]
fn two_runs_at_once_do_not_collide() {
    prepare();
    let a = Sandbox::with_repo_tree("parallel-a");
    let b = Sandbox::with_repo_tree("parallel-b");
    let mut first = a.command(&["rls", "--json"]);
    let mut second = b.command(&["rls", "--json"]);
    // Same TMPDIR for both: the clusters must still get their own directory, port and socket.
    second.env("TMPDIR", &a.tmp);
    // Both running at once.
    let spawn = |cmd: &mut std::process::Command| {
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
    };
    let (x, y) = (spawn(&mut first), spawn(&mut second));
    let (x, y) = (x.wait_with_output().unwrap(), y.wait_with_output().unwrap());
    let (x, y) = (first_ok(x), first_ok(y));
    assert_eq!(x, "passed");
    assert_eq!(y, "passed");
    a.assert_nothing_left();
}

fn first_ok(out: std::process::Output) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    v["outcome"].as_str().unwrap().to_string()
}

/// An ordinary user, with a template cache of its own, initdb and the server run as itself. As root
/// (CI) the run is as `nobody`; as an ordinary user, as that user.
#[test]
fn an_ordinary_user_runs_it_too() {
    use std::os::unix::process::CommandExt;
    prepare();
    let sandbox = Sandbox::with_repo_tree("ordinary-user");
    // A copy of the binary: the checkout may sit where `nobody` cannot reach (root's home).
    let exe = sandbox.root.join("xtask");
    std::fs::copy(env!("CARGO_BIN_EXE_xtask"), &exe).unwrap();
    let mut cmd = sandbox.command_of(&exe, &["rls", "--json"]);
    cmd.env("REHEARSAL_PG_CACHE", sandbox.root.join("cache")).env("HOME", &sandbox.root);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let (uid, gid) = (65534, 65534);
        chown_tree(&sandbox.root, uid, gid);
        cmd.uid(uid).gid(gid);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["rls"]["passed"], 41, "{stderr}");
    sandbox.assert_nothing_left();
}

fn chown_tree(path: &std::path::Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap().flatten() {
            chown_tree(&entry.path(), uid, gid);
        }
    }
}
