//! The repo's own `supabase/` tree holds its promises: every migration has a rollback pair, and
//! each rollback restores exactly the schema its migration changed, as the rehearsal's catalog
//! snapshot sees it and as `pg_dump --schema-only` sees it.

mod common;

use std::process::Command;

use xtask::evidence::artifacts::Transcript;
use xtask::prepare::tree::Tree;
use xtask::runbook::{apply, rollback, snapshot};
use xtask::tools::find_client;

#[test]
fn each_rollback_restores_the_schema_its_migration_changed() {
    common::prepare();
    let tree = Tree::load(&common::repo_root()).unwrap();
    assert!(tree.orphan_rollbacks.is_empty(), "{:?}", tree.orphan_rollbacks);
    let sandbox = common::Sandbox::new("own-tree");
    let mut target = common::local_target(&tree.workdir);
    let dsn = target.cluster().unwrap().dsn();
    let pg_dump = find_client("pg_dump").unwrap();
    let dump = || {
        let out = Command::new(&pg_dump)
            .args(["--schema-only", "--no-owner", "-n", "public", "--dbname", &dsn])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict") && !l.starts_with("-- Dumped"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let path = sandbox.root.join("log");
    let mut log = Transcript::append(&path, "log".into()).unwrap();
    for migration in &tree.migrations {
        assert!(migration.rollback.is_some(), "{} has no rollback", migration.file());
        let (before, dumped) = (snapshot::take(&mut target).unwrap(), dump());
        let applied = apply::apply(&mut target, migration, true, &mut log).unwrap();
        assert!(applied.ok, "{}", std::fs::read_to_string(&path).unwrap());
        assert_ne!(snapshot::take(&mut target).unwrap(), before, "{} changed nothing", migration.file());
        assert_ne!(dump(), dumped, "{} changed nothing pg_dump sees", migration.file());
        let (rolled, _) = rollback::rollback(&mut target, migration, &mut log).unwrap();
        assert!(rolled.error.is_none(), "{}", std::fs::read_to_string(&path).unwrap());
        assert_eq!(
            snapshot::take(&mut target).unwrap(),
            before,
            "{:?} does not restore the schema",
            migration.rollback_file()
        );
        assert_eq!(dump(), dumped, "{:?} does not restore what pg_dump sees", migration.rollback_file());
        assert!(apply::apply(&mut target, migration, true, &mut log).unwrap().ok);
    }
}
