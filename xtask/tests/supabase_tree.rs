//! The repo's own `supabase/` tree holds its promises: every migration has a rollback pair, and
//! each rollback restores exactly the schema its migration changed (pg_dump before and after).

mod common;

use xtask::local::{binaries, LocalCluster};
use xtask::process::Cmd;
use xtask::redact::Redactor;
use xtask::schema;
use xtask::tree::Tree;

#[test]
fn each_rollback_restores_the_schema_its_migration_changed() {
    common::prepare();
    let tree = Tree::load(&common::repo_root()).unwrap();
    assert!(tree.orphan_rollbacks.is_empty(), "{:?}", tree.orphan_rollbacks);
    let server = binaries::ensure_server_with_pgtap().unwrap();
    let cluster = LocalCluster::start(&server).unwrap();
    let (psql, pg_dump) = (binaries::find_client("psql").unwrap(), binaries::find_client("pg_dump").unwrap());
    let redactor = Redactor::new();
    let run = |file: &str| {
        let out = Cmd::new(&psql)
            .arg(cluster.dsn())
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", file])
            .current_dir(&tree.workdir)
            .run(&redactor, None)
            .unwrap();
        assert!(out.success(), "{file}:\n{}", out.text);
    };
    let dump = || schema::snapshot(&pg_dump, &cluster.dsn(), &["public"], &redactor, None).unwrap();

    for migration in &tree.migrations {
        let rollback = migration.rollback.as_deref().unwrap_or_else(|| panic!("{} has no rollback", migration.file));
        let before = dump();
        run(&migration.file);
        assert_ne!(dump(), before, "{} changed nothing", migration.file);
        run(rollback);
        assert_eq!(dump(), before, "{rollback} does not restore the schema before {}", migration.file);
        run(&migration.file);
    }
}
