//! Every way out of a run stops the throwaway cluster and removes its directory: success and
//! failure (checked in rls.rs), and Ctrl-C or SIGTERM in the middle of an apply (here), which also
//! exit 130 and leave no psql behind.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{prepare, Sandbox};

fn interrupted_mid_apply_cleans_up(signal: i32, name: &str) {
    prepare();
    let sandbox = Sandbox::new(name);
    sandbox.write(
        "supabase/migrations/20250101000000_slow.sql",
        "do $$ begin raise notice 'slow migration started'; end $$;\nselect pg_sleep(300);\n",
    );
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('never reached');\n");
    let mut child = sandbox.spawn(&["rls"]);

    // Wait until psql is inside the migration: its NOTICE reaches the apply log line by line.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !apply_log_contains(&sandbox.workdir, "slow migration started") {
        assert!(Instant::now() < deadline, "the slow migration never started");
        assert!(child.try_wait().unwrap().is_none(), "xtask exited before the migration started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let psqls = processes_in(&sandbox.workdir);
    assert!(!psqls.is_empty(), "psql should be running in the workdir");

    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("error: interrupted: stopped the child processes and cleaned up"), "{stderr}");
    sandbox.assert_nothing_left();
    assert!(processes_in(&sandbox.workdir).is_empty(), "psql left behind");
    let log = std::fs::read_to_string(apply_log(&sandbox.workdir).unwrap()).unwrap();
    assert!(log.starts_with("==> supabase/migrations/20250101000000_slow.sql\n"), "{log}");
}

#[test]
fn ctrl_c_during_apply_stops_everything_and_exits_130() {
    interrupted_mid_apply_cleans_up(libc::SIGINT, "sigint");
}

#[test]
fn sigterm_during_apply_stops_everything_and_exits_130() {
    interrupted_mid_apply_cleans_up(libc::SIGTERM, "sigterm");
}

fn apply_log(workdir: &Path) -> Option<std::path::PathBuf> {
    let day = std::fs::read_dir(workdir.join("artifacts/ops")).ok()?.flatten().next()?;
    let dir = std::fs::read_dir(day.path()).ok()?.flatten().next()?;
    Some(dir.path().join("migration_apply.log"))
}

fn apply_log_contains(workdir: &Path, needle: &str) -> bool {
    apply_log(workdir).and_then(|p| std::fs::read_to_string(p).ok()).is_some_and(|s| s.contains(needle))
}

/// Processes whose working directory is `dir` (the tool runs psql from the workdir).
fn processes_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd == dir))
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .filter(|c| c.contains("psql"))
        .collect()
}
