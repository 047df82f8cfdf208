//! What the tool writes is never written through a symlink a tree (or another user) planted, and
//! the data plan cannot be swapped under it: a plan in a folder anyone can write is refused, its
//! lock is private, says who holds it, gives up at a deadline and yields to Ctrl-C.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::process::Stdio;

use common::{prepare, Run, Sandbox};

/// Whether the test runs as root; else it says which check it skips, and why.
fn as_root(why: &str) -> bool {
    let root = xtask::tools::is_root();
    if !root {
        eprintln!("skipped: {why}");
    }
    root
}

fn small_tree(name: &str) -> Sandbox {
    let sandbox = Sandbox::new(name);
    sandbox.write(
        "supabase/migrations/20250101000000_t.sql",
        "create table if not exists public.t (id int);\nalter table public.t enable row level security;\n",
    );
    sandbox.write("supabase/migrations.backup/20250101000000_t_rollback.sql", "drop table if exists public.t;\n");
    sandbox.write(
        "supabase/rls_tests.sql",
        "begin;\nselect plan(1);\nselect has_table('public', 't', 't exists');\nselect * from finish();\nrollback;\n",
    );
    sandbox
}

fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

#[test]
fn a_symlinked_feedback_file_or_artifacts_folder_is_refused_and_its_target_untouched() {
    prepare();
    let sandbox = small_tree("symlinked-outputs");
    let outside = sandbox.root.join("outside.txt");
    std::fs::write(&outside, "precious\n").unwrap();
    std::fs::create_dir_all(sandbox.path("feedback/data")).unwrap();
    let link = sandbox.path(&format!("feedback/data/{}.md", today()));
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let run = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr.contains(&format!("feedback/data/{}.md is a symlink: the tool appends the hand-off", today())),
        "{run}"
    );
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious\n");
    std::fs::remove_file(&link).unwrap();

    // An artifacts folder that leads elsewhere: nothing is written there.
    let elsewhere = sandbox.root.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let _ = std::fs::remove_dir_all(sandbox.path("artifacts"));
    std::os::unix::fs::symlink(&elsewhere, sandbox.path("artifacts")).unwrap();
    let run = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr.contains("artifacts is a symlink: the tool writes its evidence only into real folders"),
        "{run}"
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing went through the link");
}

#[test]
fn a_symlinked_step_summary_is_refused() {
    prepare();
    let sandbox = small_tree("symlinked-step-summary");
    let outside = sandbox.root.join("outside.txt");
    std::fs::write(&outside, "precious\n").unwrap();
    let link = sandbox.root.join("summary_link.md");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let mut cmd = sandbox.command(&["lint"]);
    cmd.env("GITHUB_ACTIONS", "true").env("GITHUB_STEP_SUMMARY", &link);
    let run = Run::of(cmd);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("is a symlink: the tool never writes through one"), "{run}");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious\n");
}

fn plan_in(dir: &std::path::Path) -> std::path::PathBuf {
    let plan = dir.join("data_plan.json");
    std::fs::write(
        &plan,
        r#"{"molecules": [{"id": "t", "migrations": ["supabase/migrations/*.sql"], "status": "pending", "attempts": 0}]}"#,
    )
    .unwrap();
    plan
}

#[test]
fn a_plan_in_a_folder_anyone_can_write_is_refused_with_the_reason() {
    prepare();
    if !as_root("making a folder that belongs to another user needs root") {
        return;
    }
    let sandbox = small_tree("shared-plan-folder");
    let shared = sandbox.root.join("shared");
    std::fs::create_dir(&shared).unwrap();
    let plan = plan_in(&shared);
    std::os::unix::fs::chown(&shared, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let before = std::fs::read(&plan).unwrap();
    let run = sandbox.xtask(&["stage-rehearse", "--plan", plan.to_str().unwrap()]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr.contains("a folder anyone can write that belongs to uid 65534: another user could swap the plan"),
        "{run}"
    );
    assert_eq!(std::fs::read(&plan).unwrap(), before, "the plan is untouched");
    assert!(sandbox.rehearsal_dirs().is_empty() || !run.stdout.contains("applied"), "nothing ran: {run}");
}

#[test]
fn as_root_a_plan_another_user_owns_is_refused() {
    prepare();
    if !as_root("only root could be made to write another user's plan") {
        return;
    }
    let sandbox = small_tree("root-foreign-plan");
    let plan = plan_in(&sandbox.root);
    std::os::unix::fs::chown(&plan, Some(65534), Some(65534)).unwrap();
    let before = std::fs::read(&plan).unwrap();
    let run = sandbox.xtask(&["stage-rehearse", "--plan", plan.to_str().unwrap()]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr.contains("belongs to uid 65534: as root the tool writes no file another user owns or can move"),
        "{run}"
    );
    assert_eq!(std::fs::read(&plan).unwrap(), before);
    assert_eq!(std::fs::metadata(&plan).unwrap().uid(), 65534, "nothing was chowned");
}

/// Hold the plan's lock as another run would, with its holder line.
fn hold_lock(plan: &std::path::Path) -> std::fs::File {
    let lock = plan.with_file_name(".data_plan.json.lock");
    let mut file = std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(&lock).unwrap();
    file.write_all(b"pid 4242, since 2026-12-04T00:00:00.000Z\n").unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
    file
}

#[test]
fn a_held_plan_lock_names_its_holder_and_the_wait_ends_at_the_deadline_or_on_sigterm() {
    prepare();
    let sandbox = small_tree("plan-lock");
    let plan = plan_in(&sandbox.root);
    let held = hold_lock(&plan);
    let mut cmd = sandbox.command(&["stage-rehearse", "--plan", plan.to_str().unwrap()]);
    cmd.env("REHEARSAL_PLAN_LOCK_WAIT", "1");
    let run = Run::of(cmd);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr.contains("waiting for the data plan's lock")
            && run.stderr.contains("(held by pid 4242, since 2026-12-04T00:00:00.000Z)"),
        "{run}"
    );
    assert!(run.stderr.contains("is still held after 1 s (by pid 4242"), "{run}");

    // A long wait ends on SIGTERM, at once.
    let mut cmd = sandbox.command(&["stage-rehearse", "--plan", plan.to_str().unwrap()]);
    cmd.env("REHEARSAL_PLAN_LOCK_WAIT", "3600").stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("waiting for the data plan's lock") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the run ended without waiting");
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(130));
    drop(held);
    std::fs::remove_file(plan.with_file_name(".data_plan.json.lock")).unwrap();

    // Once free, the lock is taken; its file is private and names this run.
    let run = sandbox.xtask(&["stage-rehearse", "--plan", plan.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{run}");
    let lock = plan.with_file_name(".data_plan.json.lock");
    let holder = std::fs::read_to_string(&lock).unwrap();
    assert!(holder.starts_with("pid ") && holder.contains(", since 20"), "{holder}");
    assert!(!holder.contains("4242"), "{holder}");
    let leftovers: Vec<String> = std::fs::read_dir(&sandbox.root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(std::fs::metadata(&lock).unwrap().mode() & 0o777, 0o600, "the lock is private");
}

#[test]
fn a_tree_under_a_private_folder_rehearses_when_the_server_runs_as_another_user() {
    prepare();
    if !as_root("the server runs as another user only when the tool runs as root") {
        return;
    }
    let sandbox = small_tree("private-workdir");
    // `mktemp -d` makes 0700: the server's user cannot enter it, nor the folder a run starts in.
    std::fs::set_permissions(&sandbox.workdir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut cmd = sandbox.command(&["rls"]);
    cmd.current_dir(&sandbox.workdir);
    let run = Run::of(cmd);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("supabase/rls_tests.sql .. ok"), "{run}");
}

/// As root the server runs as another user, who gets its data dir and socket dir and nothing
/// else: the run dir and the installation laid out in it stay root's, so that user can never
/// plant a symlink where root writes, copies or chowns.
#[test]
fn the_server_user_owns_only_its_data_and_socket_dirs() {
    prepare();
    if !as_root("the server runs as another user only when the tool runs as root") {
        return;
    }
    let server = xtask::tools::server::ensure_server_with_pgtap().unwrap();
    let cluster = xtask::database::local::LocalCluster::start(&server).unwrap();
    let owner = |rel: &str| std::fs::symlink_metadata(cluster.dir().join(rel)).unwrap().uid();
    let run_as = owner("data");
    assert_ne!(run_as, 0, "the server's user");
    assert_eq!(owner(""), 0, "the run dir stays root's");
    assert_eq!(std::fs::metadata(cluster.dir()).unwrap().mode() & 0o777, 0o711);
    assert_eq!(owner("s"), run_as, "the socket dir is the server's");
    assert_eq!(owner("install"), 0, "the installation stays root's");
    // (The running server makes and removes files as it goes: one gone meanwhile is skipped.)
    for entry in walkdir::WalkDir::new(cluster.dir().join("data")).into_iter().flatten() {
        if let Ok(meta) = entry.metadata() {
            assert_eq!(meta.uid(), run_as, "{}", entry.path().display());
        }
    }
}
