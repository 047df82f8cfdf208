//! Verdicts that cannot lie: a migration holding a psql meta-command never runs, terminal colours
//! change nothing, a byte order mark or a symlink hides nothing, an interrupted or a local
//! molecule run reports what really happened, and evidence that cannot be written is named.

mod common;

use std::os::unix::process::CommandExt;

use common::{prepare, Sandbox, Stack};
use serde_json::Value;

fn plan_arg(sandbox: &Sandbox) -> String {
    sandbox.root.join("data_plan.json").to_string_lossy().into_owned()
}

fn small_tree(name: &str) -> Sandbox {
    let sandbox = Sandbox::new(name);
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('contract runs');\n");
    sandbox.write(
        "supabase/migrations/20250101000000_a.sql",
        "create table if not exists public.a (id int);\nalter table public.a enable row level security;\n",
    );
    sandbox.write("supabase/migrations.backup/20250101000000_a_rollback.sql", "drop table if exists public.a;\n");
    sandbox
}

#[test]
fn a_migration_holding_a_psql_meta_command_is_refused_and_never_runs() {
    prepare();
    let marker = "/tmp/xtask-meta-command-ran";
    let _ = std::fs::remove_file(marker);
    for (body, command) in [
        (format!("create table if not exists public.b (id int);\n\\! touch {marker}\n"), format!("\\! touch {marker}")),
        ("create table if not exists public.b (id int);\n\\q\n".to_string(), "\\q".to_string()),
        ("\\set ON_ERROR_STOP off\nselect 1/0;\n".to_string(), "\\set ON_ERROR_STOP off".to_string()),
    ] {
        let sandbox = small_tree("meta-command");
        sandbox.write("supabase/migrations/20250102000000_b.sql", &body);
        let line = body.lines().position(|l| l.starts_with('\\')).unwrap() + 1;
        for args in [vec!["rls"], vec!["stage-rehearse", "--plan", &plan_arg(&sandbox)]] {
            let run = sandbox.xtask(&args);
            assert_eq!(run.code, Some(2), "{run}");
            assert!(
                run.stderr.contains(&format!(
                    "error: supabase/migrations/20250102000000_b.sql:{line}: holds the psql meta-command `{command}`"
                )),
                "{run}"
            );
            assert!(!sandbox.path("artifacts").exists(), "nothing ran:\n{run}");
        }
        let lint = sandbox.xtask(&["lint", "--json"]);
        assert_eq!(lint.code, Some(1), "{lint}");
        let findings = lint.json()["findings"].as_array().unwrap().clone();
        assert!(
            findings
                .iter()
                .any(|f| f["class"] == "psql_meta_command" && f["severity"] == "error" && f["line"] == line as u64),
            "{findings:#?}"
        );
    }
    assert!(!std::path::Path::new(marker).exists(), "the shell command ran");
}

#[test]
fn terminal_colours_requested_by_the_user_change_no_verdict() {
    prepare();
    let sandbox = small_tree("colour");
    sandbox.write("supabase/tests/database/010-broken.test.sql", "begin;\nselect plan(2);\nselect pass('one');\nselect * from public.no_such_table;\nselect pass('two');\nrollback;\n");
    let mut cmd = sandbox.command(&["rls", "--json"]);
    cmd.env("PG_COLOR", "always").env("PG_COLORS", "error=01;31");
    let run = common::Run::of(cmd);
    assert_eq!(run.code, Some(1), "{run}");
    let files = run.json()["rls"]["files"].clone();
    assert_eq!(files[1]["errors"], 1, "{files:#}");
    let log = std::fs::read_to_string(sandbox.rehearsal_dir().join("rls_contract.log")).unwrap();
    assert!(!log.contains('\x1b'), "no escape codes in the evidence:\n{log}");

    // A log a user made with colours on is read as if it had none.
    let server = xtask::tools::server::ensure_server_with_pgtap().unwrap();
    let cluster = xtask::database::local::LocalCluster::start(&server).unwrap();
    sandbox.write("coloured.sql", "select 1;\nselect nope;\n");
    let out = std::process::Command::new(xtask::tools::find_client("psql").unwrap())
        .args([cluster.dsn().as_str(), "-X", "-f", "coloured.sql"])
        .env("PG_COLOR", "always")
        .current_dir(&sandbox.workdir)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains('\x1b'), "psql coloured its output");
    sandbox.write("coloured.log", &String::from_utf8_lossy(&out.stderr));
    let scan = sandbox.xtask(&["scan", "--json", sandbox.path("coloured.log").to_str().unwrap()]);
    assert_eq!(scan.code, Some(1), "{scan}");
    let f = &scan.json()["findings"][0];
    assert_eq!((f["class"].as_str(), f["line"].as_u64()), (Some("undefined_object"), Some(2)), "{scan}");
    let human = sandbox.xtask(&["scan", sandbox.path("coloured.log").to_str().unwrap()]);
    assert!(!human.stdout.contains('\x1b'), "no escape codes copied to the screen:\n{human}");
}

#[test]
fn a_byte_order_mark_and_a_symlink_hide_nothing() {
    prepare();
    let sandbox = small_tree("bom-symlink");
    sandbox.write(
        "supabase/migrations/20250102000000_a_idx.sql",
        "\u{feff}create index concurrently if not exists a_id_idx on public.a (id);\n",
    );
    sandbox.write(
        "supabase/migrations.backup/20250102000000_a_idx_rollback.sql",
        "drop index concurrently if exists public.a_id_idx;\n",
    );
    // A migration kept elsewhere and linked into the tree.
    sandbox.write(
        "shared/20250103000000_c.sql",
        "create table if not exists public.c (id int);\nalter table public.c enable row level security;\n",
    );
    std::os::unix::fs::symlink(
        sandbox.path("shared/20250103000000_c.sql"),
        sandbox.path("supabase/migrations/20250103000000_c.sql"),
    )
    .unwrap();
    sandbox.write("supabase/migrations.backup/20250103000000_c_rollback.sql", "drop table if exists public.c;\n");
    let run = sandbox.xtask(&["stage-rehearse", "--plan", &plan_arg(&sandbox), "--json"]);
    assert_eq!(run.code, Some(0), "{run}");
    let rows = run.json()["migrations"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 3, "the symlinked migration is rehearsed: {rows:#?}");
    assert_eq!(rows[1]["apply"]["atomic"], false, "the BOM does not hide CONCURRENTLY");
    assert_eq!(rows[2]["file"], "supabase/migrations/20250103000000_c.sql");
    assert_eq!(rows[2]["reapply"]["status"], "applied");
    let lint = sandbox.xtask(&["lint", "--json"]);
    let classes: Vec<String> =
        lint.json()["findings"].as_array().unwrap().iter().map(|f| f["class"].to_string()).collect();
    assert!(classes.contains(&"\"non_transactional\"".to_string()), "{lint}");
}

#[test]
fn a_local_molecule_is_checked_against_the_whole_tree() {
    prepare();
    let sandbox = Sandbox::with_repo_tree("older-molecule");
    let plan = plan_arg(&sandbox);
    std::fs::write(&plan, r#"{"molecules": [{"id": "inventory", "migrations": ["supabase/migrations/20251011090000_*.sql"], "status": "pending", "attempts": 0}]}"#).unwrap();
    let run = sandbox.xtask(&["stage-rehearse", "--plan", &plan, "--json"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(
        run.stderr.matches("step 5 tail ").count(),
        8,
        "the later migrations are applied after the rehearsal:\n{run}"
    );
    assert_eq!(run.json()["rls"]["passed"], 41, "{run}");
    let p: Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    assert_eq!(p["molecules"][0]["status"], "completed");
}

#[test]
fn two_local_rehearsals_in_one_workdir_at_once_keep_their_own_transcripts() {
    prepare();
    let sandbox = small_tree("same-second");
    let children: Vec<_> = (0..2)
        .map(|i| {
            sandbox.spawn(&["stage-rehearse", "--plan", &sandbox.root.join(format!("p{i}.json")).to_string_lossy()])
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let dirs = sandbox.rehearsal_dirs();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    for dir in dirs {
        let names: Vec<String> =
            std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names.iter().filter(|n| n.starts_with("ipv4_pooler_check_")).count(), 1, "{names:?}");
        assert_eq!(names.iter().filter(|n| n.starts_with("migration_status_pre_")).count(), 1, "{names:?}");
    }
}

/// A full disk, simulated: the tool runs with a file size limit (RLIMIT_FSIZE, SIGXFSZ ignored), so
/// a log that grows past 64 KiB fails to be written as it would on a full disk.
#[test]
fn evidence_that_cannot_be_written_is_named_and_the_plan_still_records_the_attempt() {
    let stack = Stack::start();
    let sandbox = small_tree("full-disk");
    sandbox.with_vault(&stack.dsn());
    sandbox.write("supabase/migrations/20250102000000_loud.sql", "select repeat('x', 200000) as loud;\n");
    sandbox.write("supabase/migrations.backup/20250102000000_loud_rollback.sql", "select 1;\n");
    let plan = plan_arg(&sandbox);
    std::fs::write(&plan, r#"{"molecules": [{"id": "all", "migrations": ["supabase/migrations/*.sql"], "status": "pending", "attempts": 0}]}"#).unwrap();
    let mut cmd = sandbox.command(&["stage-rehearse", "--plan", &plan]);
    // SAFETY: setrlimit and signal are async-signal-safe; this runs in the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: 64 * 1024, rlim_max: 64 * 1024 };
            libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let run = common::Run::of(cmd);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("/migration_apply.log: File too large"), "the file is named:\n{run}");
    let p: Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    assert_eq!(
        (p["molecules"][0]["status"].as_str(), p["molecules"][0]["attempts"].as_u64()),
        (Some("failed"), Some(1))
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(sandbox.rehearsal_dir().join("summary.json")).unwrap()).unwrap();
    assert_eq!((summary["outcome"].as_str(), summary["exit_code"].as_u64()), (Some("error"), Some(2)));
    assert!(summary["blockers"].to_string().contains("migration_apply.log: File too large"), "{summary:#}");
    assert_eq!(summary["migrations"][0]["apply"]["status"], "applied", "what was applied is recorded");
}
