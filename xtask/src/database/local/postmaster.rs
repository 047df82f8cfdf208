//! Running `initdb` and the `postgres` server of a throwaway cluster.
//!
//! The server is our direct child (not daemonised by pg_ctl): in its own process group, so a
//! terminal's Ctrl-C reaches the tool and not the server, and with a parent-death signal, so even
//! a tool killed outright takes its server with it. Readiness is read from the server's log (the
//! "ready to accept connections" line), not polled.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use super::install::Install;
use super::rundir::{RunAs, RunDir};
use super::ADMIN_ROLE;
use crate::exit;
use crate::process::signals::{self, ChildGuard};
use crate::process::{self, Env};
use crate::tools::server::Server;

/// Part of the template's cache key: a change here builds a new template.
pub const INITDB_ARGS: [&str; 5] =
    ["--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync", "--wal-segsize=1"];
const READY: &str = "database system is ready to accept connections";
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Postmaster {
    pub port: u16,
    child: Option<Child>,
    _guard: ChildGuard,
}

/// The policy for a server binary: a clean environment (no PGHOST/PGPORT/... from the user's
/// shell, so a test opening a second connection behaves as on Supabase), C locale, the server's user.
fn server_env(run_as: &RunAs) -> Env {
    Env::server().as_user(run_as.ids())
}

/// `initdb` a fresh data dir: bootstrap superuser `supabase_admin`, trust auth, UTF-8 with the
/// C.UTF-8 locale (Supabase's are UTF-8: `upper('é')` is `É`, as there), no fsync,
/// 1 MB WAL segments (the default 16 MB segment would be most of every copy of the template).
pub fn initdb(server: &Server, rundir: &RunDir, run_as: &RunAs) -> Result<()> {
    let sh = Shell::new()?;
    let (initdb, data, args) = (server.bin("initdb"), rundir.data(), INITDB_ARGS);
    let out = process::output(cmd!(sh, "{initdb} -D {data} -U {ADMIN_ROLE} {args...}"), server_env(run_as))?;
    if !out.success() {
        return Err(exit::cannot_run(format!(
            "initdb failed for the throwaway cluster in {}:\n{}",
            rundir.path().display(),
            out.stderr.trim_end()
        )));
    }
    Ok(())
}

impl Postmaster {
    /// Start the server on a free port, retrying if another process takes the port first.
    pub fn start(server: &Server, rundir: &RunDir, run_as: &RunAs) -> Result<Postmaster> {
        let install = super::install::create(server, &rundir.path().join("install"))
            .with_context(|| format!("laying out the server's installation in {}", rundir.path().display()))?;
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            match Postmaster::start_on(&install, rundir, run_as, port)? {
                Ok(postmaster) => return Ok(postmaster),
                Err(log) if log.contains("could not bind") || log.contains("in use") => last_log = log,
                Err(log) => {
                    return Err(exit::cannot_run(format!(
                        "the throwaway PostgreSQL server in {} did not start:\n{}",
                        rundir.path().display(),
                        log.trim_end()
                    )))
                }
            }
        }
        Err(exit::cannot_run(format!("no free port on 127.0.0.1 for the throwaway cluster:\n{last_log}")))
    }

    /// `Ok(Err(log))` when the server exited before it was ready.
    fn start_on(install: &Install, rundir: &RunDir, run_as: &RunAs, port: u16) -> Result<Result<Postmaster, String>> {
        let sh = Shell::new()?;
        let (postgres, data, socket, port_arg) = (&install.postgres, rundir.data(), rundir.socket(), port.to_string());
        let mut settings = Vec::new();
        for setting in [
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "jit=off",
            "lc_messages=C",
            "TimeZone=UTC",
            "max_connections=50",
            "shared_buffers=32MB",
            // Segments in the data dir (pg_dynshmem), not /dev/shm: they go with the directory even
            // when the server is killed.
            "dynamic_shared_memory_type=mmap",
        ] {
            settings.extend(["-c".to_string(), setting.to_string()]);
        }
        settings.extend(install.settings.iter().flat_map(|s| ["-c".to_string(), s.clone()]));
        let cmd = cmd!(sh, "{postgres} -D {data} -k {socket} -p {port_arg} -h 127.0.0.1 {settings...}");
        // Immediate shutdown (SIGQUIT) when the tool dies: the directory goes with it.
        let mut child = process::spawn_server(cmd, server_env(run_as).dies_with(libc::SIGQUIT))?;
        let guard = ChildGuard::register(child.id(), Some(rundir.path().to_path_buf()));
        let stderr = child.stderr.take().expect("stderr is piped");

        // The reader thread forwards lines until the server is ready, then drains the rest so the
        // server never blocks on a full pipe.
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut ready = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !ready {
                    ready = line.contains(READY);
                    let _ = tx.send(line);
                }
            }
        });

        let mut postmaster = Postmaster { port, child: Some(child), _guard: guard };
        let mut log = String::new();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if signals::interrupted() {
                return Err(exit::interrupted());
            }
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    let ready = line.contains(READY);
                    log.push_str(&line);
                    log.push('\n');
                    if ready {
                        return Ok(Ok(postmaster));
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    log.push_str("(no \"ready to accept connections\" within 60 s)\n");
                    return Ok(Err(log));
                }
                // The server exited: its log says why. Drop reaps it.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    postmaster.stop(libc::SIGQUIT);
                    return Ok(Err(log));
                }
            }
        }
    }

    /// Fast shutdown (SIGINT): a clean checkpoint, for a data dir that will be copied.
    pub fn stop_clean(mut self) -> Result<()> {
        if !self.stop(libc::SIGINT) {
            anyhow::bail!("the throwaway server did not shut down cleanly");
        }
        Ok(())
    }

    /// Signal the server and reap it; true when it exited with status 0.
    fn stop(&mut self, signal: i32) -> bool {
        let Some(mut child) = self.child.take() else { return true };
        signals::send(child.id(), signal);
        child.wait().map(|s| s.success()).unwrap_or(false)
    }
}

impl Drop for Postmaster {
    /// Immediate shutdown (SIGQUIT): the directory is deleted next, so nothing needs saving.
    fn drop(&mut self) {
        self.stop(libc::SIGQUIT);
    }
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}
