//! The history rows our apply and rollback write are the ones the real Supabase CLI reads: after
//! our apply `supabase migration list` shows the version applied remotely, after our rollback it
//! is pending again. Both flavours: 3.x (`--remote=`, pinned in package.json) and 2.x (`--db-url`).

mod common;

use std::path::PathBuf;
use std::process::Command;

use xtask::evidence::artifacts::Transcript;
use xtask::evidence::summary::Status;
use xtask::prepare::tree::Tree;
use xtask::runbook::inventory::parse_cli_table;
use xtask::runbook::{apply, rollback};
use xtask::tools::find_client;
use xtask::tools::supabase_cli::SupabaseCli;

/// `supabase@2`, the flavour teams still run, in the target dir, installed once from the npm
/// registry.
fn cli_2x() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("supabase2");
    let bin = dir.join("node_modules/.bin/supabase");
    if !bin.is_file() {
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
            .arg(&dir)
            .arg("supabase@2.122.1")
            .status()
            .unwrap();
        assert!(ok.success(), "npm install supabase@2.122.1 failed");
    }
    bin
}

#[test]
fn the_supabase_cli_sees_our_apply_and_our_rollback_in_both_flavours() {
    common::prepare();
    let sandbox = common::Sandbox::new("cli-history");
    sandbox.write(
        "supabase/migrations/20250101000000_widgets.sql",
        "create table public.widgets (id int primary key);\nalter table public.widgets enable row level security;\n",
    );
    sandbox.write("supabase/migrations.backup/20250101000000_widgets_rollback.sql", "drop table public.widgets;\n");
    let tree = Tree::load(&sandbox.workdir).unwrap();
    let migration = &tree.migrations[0];

    let pinned = SupabaseCli::find_or_install(&common::repo_root()).expect("the pinned CLI");
    let older = SupabaseCli::at(&cli_2x()).expect("supabase@2");
    assert_eq!(pinned.version.0, 3);
    assert_eq!(older.version.0, 2);

    for cli in [pinned, older] {
        let mut target = common::local_target(&sandbox.workdir);
        let dsn = target.cluster().unwrap().dsn();
        let list = || {
            let out = Command::new(&cli.path)
                .args(["migration", "list"])
                .args(cli.dsn_args(&dsn))
                .arg("--workdir")
                .arg(&sandbox.workdir)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            parse_cli_table(&String::from_utf8_lossy(&out.stdout))
        };
        let flavour = cli.version_string();
        assert!(list().is_empty(), "{flavour}: nothing applied yet");

        let log_path = sandbox.root.join(format!("log-{flavour}"));
        let mut log = Transcript::append(&log_path, "log".into()).unwrap();
        let read_log = || std::fs::read_to_string(&log_path).unwrap();
        let applied = apply::apply(&mut target, migration, true, &mut log).unwrap();
        assert!(applied.ok, "{}", read_log());
        assert!(list().contains("20250101000000"), "{flavour}: applied remotely after our apply");
        let row = Command::new(find_client("psql").unwrap())
            .args([
                &dsn,
                "-X",
                "-A",
                "-t",
                "-c",
                "select name, array_length(statements, 1) from supabase_migrations.schema_migrations",
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&row.stdout).trim(),
            "widgets|2",
            "name and statements as the CLI stores them"
        );

        let (rolled, _) = rollback::rollback(&mut target, migration, &mut log).unwrap();
        assert_eq!(rolled.status, Status::RolledBack, "{}", read_log());
        assert!(list().is_empty(), "{flavour}: pending again after our rollback");
    }
}
