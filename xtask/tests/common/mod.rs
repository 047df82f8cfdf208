//! Shared by the integration tests: sandboxes (own workdir, own TMPDIR for the throwaway
//! clusters), a runner for the real `xtask` binary that dumps everything when a test fails, and
//! the checks that nothing is left behind.

#![allow(dead_code)]

use std::fmt;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The template cache the tests share (the key covers versions and bootstrap SQL).
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pg-template-cache")
}

/// Install pgTAP if needed and build the cluster template once per test binary, so parallel tests
/// neither race apt-get nor each build their own template.
pub fn prepare() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // In-process clusters (the staging stack) share the tests' template cache. Set once, before
        // any test of this binary starts a cluster; std serialises its env reads with this write.
        std::env::set_var("REHEARSAL_PG_CACHE", cache_dir());
        let sandbox = Sandbox::new("prepare");
        sandbox.write(
            "supabase/migrations/1_init.sql",
            "create table if not exists public.t (id int);\nalter table public.t enable row level security;\n",
        );
        sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('ready');\n");
        let run = sandbox.xtask(&["rls"]);
        assert_eq!(run.code, Some(0), "preparing the local target failed:\n{run}");
        // Installs the pinned Supabase CLI (npm install --no-save) once, before tests run rehearsals in parallel.
        let run = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json"]);
        assert!(run.code == Some(0) || run.code == Some(1), "preparing the rehearsal failed:\n{run}");
    });
}

/// A temp dir in /dev/shm (else /tmp; the cluster's server user must be able to reach it) holding
/// a workdir and the TMPDIR the tool's throwaway clusters go in. Removed on drop.
pub struct Sandbox {
    pub root: PathBuf,
    pub workdir: PathBuf,
    pub tmp: PathBuf,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Sandbox {
    pub fn new(name: &str) -> Sandbox {
        let base = if Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
        let root = Path::new(base).join(format!(
            "xtask-test-{name}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&root);
        let workdir = root.join("work");
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&workdir).unwrap();
        std::fs::create_dir_all(&tmp).unwrap();
        for dir in [&root, &tmp] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Sandbox { root, workdir, tmp }
    }

    /// A sandbox holding a copy of this repo's `supabase/` tree and docs.
    pub fn with_repo_tree(name: &str) -> Sandbox {
        let sandbox = Sandbox::new(name);
        copy_dir(&repo_root().join("supabase"), &sandbox.workdir.join("supabase"));
        sandbox
    }

    /// A sandbox holding a copy of the fixture project `tests/fixtures/<fixture>/supabase`.
    pub fn with_fixture(fixture: &str, name: &str) -> Sandbox {
        let sandbox = Sandbox::new(name);
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(fixture).join("supabase"),
            &sandbox.workdir.join("supabase"),
        );
        sandbox
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.workdir.join(rel)
    }

    pub fn write(&self, rel: &str, contents: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }

    pub fn remove(&self, rel: &str) {
        let path = self.path(rel);
        if path.is_dir() {
            std::fs::remove_dir_all(path).unwrap();
        } else {
            std::fs::remove_file(path).unwrap();
        }
    }

    /// The `xtask` binary with `--workdir` set, its clusters in this sandbox's TMPDIR.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_of(Path::new(env!("CARGO_BIN_EXE_xtask")), args)
    }

    /// Like [`Sandbox::command`] with another copy of the binary.
    pub fn command_of(&self, exe: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(exe);
        cmd.arg("--workdir").arg(&self.workdir).args(args);
        cmd.env("TMPDIR", &self.tmp).env("REHEARSAL_PG_CACHE", cache_dir()).stdin(Stdio::null());
        cmd
    }

    pub fn xtask(&self, args: &[&str]) -> Run {
        Run::of(self.command(args))
    }

    /// Start xtask with stderr piped, for tests that act while it runs.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("starting xtask")
    }

    /// The single rehearsal dir the run created.
    pub fn rehearsal_dir(&self) -> PathBuf {
        let ops = self.path("artifacts/ops");
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&ops)
            .unwrap_or_else(|e| panic!("{}: {e}", ops.display()))
            .flatten()
            .flat_map(|day| std::fs::read_dir(day.path()).unwrap().flatten().map(|e| e.path()))
            .collect();
        dirs.sort();
        assert_eq!(dirs.len(), 1, "expected one rehearsal dir, found {dirs:?}");
        dirs.pop().unwrap()
    }

    /// Every rehearsal dir, oldest first.
    pub fn rehearsal_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(self.path("artifacts/ops"))
            .map(|days| {
                days.flatten()
                    .flat_map(|day| std::fs::read_dir(day.path()).unwrap().flatten().map(|e| e.path()))
                    .collect()
            })
            .unwrap_or_default();
        dirs.retain(|d| d.is_dir());
        dirs.sort();
        dirs
    }

    /// No cluster directory and no postgres process of this sandbox is left.
    pub fn assert_nothing_left(&self) {
        let left: Vec<_> = std::fs::read_dir(&self.tmp).unwrap().flatten().map(|e| e.path()).collect();
        assert!(left.is_empty(), "temp dirs left behind: {left:?}");
        let procs = postgres_processes_under(&self.tmp);
        assert!(procs.is_empty(), "postgres processes left behind: {procs:?}");
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Command lines of running processes that mention `dir` (a postgres started with `-D dir/...`).
pub fn postgres_processes_under(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .filter(|cmdline| cmdline.contains("postgres") && cmdline.contains(&needle))
        .collect()
}

/// Read `child`'s stderr until a line containing `needle`; returns the lines read so far. The
/// rest of stderr keeps draining in a thread so the child never blocks on it.
pub fn wait_for_stderr_line(child: &mut Child, needle: &str) -> (String, std::thread::JoinHandle<String>) {
    let stderr = child.stderr.take().unwrap();
    let mut reader = BufReader::new(stderr);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("xtask's stderr ended before a line with {needle:?}:\n{seen}");
        }
        seen.push_str(&line);
        if line.contains(needle) {
            break;
        }
    }
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        for line in reader.lines().map_while(Result::ok) {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    });
    (seen, rest)
}

pub struct Run {
    pub cmdline: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Run `cmd` to the end, keeping what a failing test should show.
    pub fn of(mut cmd: Command) -> Run {
        let cmdline = format!("{cmd:?}");
        let out = cmd.output().expect("running xtask");
        Run {
            cmdline,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "command: {}\nexit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline, self.code, self.stdout, self.stderr
        )
    }
}

/// A throwaway local target (cluster, working session) on `workdir`'s tree, for tests that drive
/// the runbook's steps directly.
pub fn local_target(workdir: &Path) -> xtask::database::Target {
    let config = xtask::text::config::Config::default();
    xtask::database::Target::open(xtask::database::Opening {
        kind: xtask::database::Kind::Local,
        workdir,
        config: &config,
        db_url: None,
        superuser_postgres: false,
        timeouts: Default::default(),
        psql: xtask::tools::find_client("psql").unwrap(),
        server: Some(xtask::tools::server::ensure_server_with_pgtap().unwrap()),
    })
    .unwrap()
}

/// The test files of an `rls` record that did not pass cleanly.
pub fn failing_files(rls: &serde_json::Value) -> Vec<String> {
    rls["files"]
        .as_array()
        .unwrap_or_else(|| panic!("no rls files: {rls:#}"))
        .iter()
        .filter(|f| f["failed"].as_u64() != Some(0) || f["errors"].as_u64() != Some(0) || f["ran_short"] == true)
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

/// A tree with one of each failure: a migration that fails, a rollback that forgets a table, a
/// failing RLS test with pgTAP's diagnostics.
pub fn red_tree(name: &str) -> Sandbox {
    let sandbox = Sandbox::new(name);
    sandbox.write(
        "supabase/migrations/20250101000000_accounts.sql",
        "create table public.accounts (id int primary key, email text);\nalter table public.accounts enable row level security;\n\
         create policy accounts_self on public.accounts for select to authenticated using (true);\n\
         create table public.audit (id int);\nalter table public.audit enable row level security;\n",
    );
    sandbox.write(
        "supabase/migrations.backup/20250101000000_accounts_rollback.sql",
        "drop table public.audit;\ndrop table public.accounts;\n",
    );
    sandbox.write(
        "supabase/migrations/20250102000000_bad_index.sql",
        "create index accounts_plan_idx on public.accounts (plan);\n",
    );
    sandbox.write(
        "supabase/migrations.backup/20250102000000_bad_index_rollback.sql",
        "drop index if exists public.accounts_plan_idx;\n",
    );
    sandbox.write(
        "supabase/migrations/20250103000000_notes.sql",
        "create table public.notes (id int primary key, body text);\nalter table public.notes enable row level security;\n\
         create policy notes_read on public.notes for select to authenticated using (true);\n",
    );
    sandbox.write("supabase/migrations.backup/20250103000000_notes_rollback.sql", "-- forgets the table\nselect 1;\n");
    sandbox.write(
        "supabase/rls_tests.sql",
        "begin;\nselect plan(2);\nselect ok(true, 'accounts exist');\nselect is(1, 2, 'one is two');\nselect * from finish();\nrollback;\n",
    );
    sandbox
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

mod stack;
#[allow(unused_imports)]
pub use stack::*;

/// The psql processes the tool started: command lines and environments.
pub fn psql_children(tool: u32) -> Vec<(String, String)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid: u32 = stat.rsplit(')').next()?.split_whitespace().nth(1)?.parse().ok()?;
            let cmdline = String::from_utf8_lossy(&std::fs::read(e.path().join("cmdline")).ok()?).replace('\0', " ");
            (ppid == tool && cmdline.contains("psql")).then(|| {
                let environ =
                    String::from_utf8_lossy(&std::fs::read(e.path().join("environ")).unwrap_or_default()).into_owned();
                (cmdline, environ)
            })
        })
        .collect()
}

/// Chromium from Debian, headless with a fresh profile and no network of its own.
pub fn chromium(args: &[&str], profile: &Path) -> std::process::Output {
    let bin = xtask::tools::ensure_program("chromium", "chromium", "the sign-off page test").unwrap();
    std::process::Command::new("timeout")
        .arg("120")
        .arg(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .unwrap()
}
