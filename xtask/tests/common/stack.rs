//! The staging-like stack the staging and fault tests run against: a throwaway cluster behind a
//! real pgbouncer (TLS, SCRAM; session mode unless asked), and the checks that go with it.

use std::io::BufReader;
use std::process::{Child, Stdio};

use super::{prepare, Run, Sandbox};

/// A staging-like stack: a throwaway cluster behind pgbouncer (session mode, TLS, SCRAM).
pub struct Stack {
    pub pooler: xtask::database::local::pooler::Pooler,
    /// `None` once a test has stopped the database under a running rehearsal.
    pub cluster: Option<xtask::database::local::LocalCluster>,
    pub password: String,
}

/// A password that needs URL-escaping, as real ones often do.
pub const PASSWORD: &str = "s3cr&t/p@ss:w0rd%";
pub const SERVICE_KEY: &str = "eyJhbGciOiJIUzI1NiJ9.service-role-key-planted-for-tests.c2lnbmF0dXJl";
pub const ACCESS_TOKEN: &str = "sbp_0123456789abcdef0123456789abcdef01234567";
/// The key the stand-in Management API hands out for the access token.
pub const FETCHED_KEY: &str = "eyJhbGciOiJIUzI1NiJ9.service-role-fetched-just-in-time.ZmV0Y2hlZA";

impl Stack {
    pub fn start() -> Stack {
        Stack::start_in(xtask::database::local::pooler::Mode::Session)
    }

    /// A stack whose server has its own system identifier (not a copy of the shared template).
    pub fn start_distinct() -> Stack {
        prepare();
        let server = xtask::tools::server::ensure_server_with_pgtap().unwrap();
        let cluster = xtask::database::local::LocalCluster::start_uncached(&server).unwrap();
        let pooler = xtask::database::local::pooler::Pooler::start(&cluster, PASSWORD).unwrap();
        Stack { pooler, cluster: Some(cluster), password: PASSWORD.to_string() }
    }

    /// The stack with pgbouncer in `mode` (Supavisor's port 6543 is transaction mode).
    pub fn start_in(mode: xtask::database::local::pooler::Mode) -> Stack {
        prepare();
        let server = xtask::tools::server::ensure_server_with_pgtap().unwrap();
        let cluster = xtask::database::local::LocalCluster::start(&server).unwrap();
        let pooler = xtask::database::local::pooler::Pooler::start_in(&cluster, PASSWORD, mode).unwrap();
        Stack { pooler, cluster: Some(cluster), password: PASSWORD.to_string() }
    }

    pub fn dsn(&self) -> String {
        self.pooler.dsn(&self.password)
    }

    /// Run SQL as the superuser, straight to the server.
    pub fn admin_sql(&self, sql: &str) -> String {
        let admin = self.cluster.as_ref().expect("the database is up").admin_dsn();
        let out = std::process::Command::new("psql")
            .args([admin.as_str(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A session that stays open (holding what `sql` took) until the returned child is dropped.
    pub fn hold(&self, sql: &str) -> HeldSession {
        hold_on(&self.cluster.as_ref().expect("the database is up").admin_dsn(), sql)
    }

    /// `n` server connections in the pooler's pool: `n` clients each in a transaction at once (so
    /// each has a server connection of its own), which then commit and go, leaving them idle.
    pub fn warm_pool(&self, n: usize) {
        use std::io::Write;
        let mut held: Vec<HeldSession> = (0..n).map(|_| hold_on(&self.dsn(), "begin;")).collect();
        for h in &mut held {
            writeln!(h.stdin.as_mut().unwrap(), "commit;").unwrap();
        }
    }
}

/// A psql session on `dsn` that ran `sql` and stays open until dropped.
fn hold_on(dsn: &str, sql: &str) -> HeldSession {
    use std::io::{BufRead, Write};
    let mut child = std::process::Command::new("psql")
        .args([dsn, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{sql}\nselect 'held';").unwrap();
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    while !line.contains("held") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the holding session ended");
    }
    HeldSession { child, stdin: Some(stdin) }
}

pub struct HeldSession {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
}

impl Drop for HeldSession {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Whether the rehearsal lock is free now (taken and released at once by this check).
pub fn lock_is_free(stack: &Stack) -> bool {
    stack
        .admin_sql(&format!("select pg_try_advisory_lock({0}) and pg_advisory_unlock({0})", xtask::database::lock::KEY))
        == "t"
}

/// Wait (bounded) until `file` under the sandbox contains `needle`: psql's output reaches the log
/// line by line, so this is the moment a migration is running.
pub fn wait_for_log(sandbox: &Sandbox, name: &str, needle: &str, child: &mut Child) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let found = sandbox
            .rehearsal_dirs()
            .iter()
            .any(|d| std::fs::read_to_string(d.join(name)).is_ok_and(|t| t.contains(needle)));
        if found {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{needle:?} never reached {name}");
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("xtask exited ({status}) before {needle:?} reached {name}:\n{err}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

impl Sandbox {
    /// Vault files holding `dsn` and the service key, and a config that accepts the local pooler.
    pub fn with_vault(&self, dsn: &str) {
        self.write(
            "vault/occ/supabase/database_url_staging.env",
            &format!("# staging pooler (IPv4)\nexport DATABASE_URL=\"{dsn}\"\n"),
        );
        self.write("vault/occ/supabase/service_key_staging.env", &format!("SUPABASE_SERVICE_KEY='{SERVICE_KEY}'\n"));
        self.write("supabase/rehearsal.toml", "[staging]\npooler_hosts = [\".pooler.supabase.com\", \"127.0.0.1\"]\nproduction_project_refs = [\"prodref123\"]\n");
    }

    /// Every planted secret, in every file under the sandbox and in the run's output, is absent.
    pub fn assert_no_secrets(&self, run: &Run) {
        let needles = [
            PASSWORD.to_string(),
            xtask::database::local::pooler::url_encode(PASSWORD),
            SERVICE_KEY.to_string(),
            ACCESS_TOKEN.to_string(),
            FETCHED_KEY.to_string(),
        ];
        for needle in &needles {
            assert!(
                !run.stdout.contains(needle.as_str()) && !run.stderr.contains(needle.as_str()),
                "a secret reached the terminal:\n{run}"
            );
        }
        let mut stack = vec![self.workdir.clone()];
        let mut checked = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    if !path.ends_with("vault") {
                        stack.push(path);
                    }
                    continue;
                }
                let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                checked += 1;
                for needle in &needles {
                    assert!(!text.contains(needle.as_str()), "a secret reached {}", path.display());
                }
            }
        }
        assert!(checked >= 5, "the search must have looked at the artifacts ({checked} files)");
    }
}
