//! The one home for child processes: psql (one-shot and the long-lived [`psql::Session`]), the
//! Supabase CLI, initdb and postgres, pgbouncer, openssl, git, npm and apt-get all start here, with
//! one environment policy, one redaction and one signal policy.
//!
//! - **Environment** ([`Env`]): a client (psql, the CLI, git) gets the tool's environment minus
//!   every libpq and psql variable (`PGHOST`, `PGPASSWORD`, `PGSSLMODE`, `PG_COLOR`, `PSQLRC`, ...:
//!   the DSN alone decides where and how a command connects, and nothing changes what psql prints)
//!   and minus the variables that carry secrets; then what this child alone needs (its
//!   `PGPASSWORD`, `PGCONNECT_TIMEOUT`). Messages are in English (`LC_MESSAGES=C`), which the
//!   classifier reads. A server (postgres, pgbouncer) starts from an empty environment.
//! - **Signals**: every client and server gets a parent-death signal, so a tool killed outright
//!   takes its children with it (psql gets SIGINT, on which it cancels its statement on the server
//!   first). Installers (apt-get, npm) are left to finish: a half-done dpkg run needs repair by hand.
//!   Running children are registered with [`signals`], which stops them on Ctrl-C or SIGTERM.
//! - **Redaction**: every line a child prints passes through a [`Redactor`] before it is kept.
//!
//! One-shot commands are built with xshell's `cmd!` (argv, never a shell string) and run by
//! [`output`]; children whose output streams into an artifact run under duct ([`stream`]).

pub mod gate;
pub mod psql;
mod redact;
pub mod signals;
mod stream;

pub use stream::{stream, stream_held, Output, Tee};

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

pub use redact::Redactor;

use crate::exit;
use signals::ChildGuard;

/// Variables that carry secrets. No child inherits them from the tool's environment; the one child
/// that needs one gets it through [`Env::with`].
pub const SECRET_VARS: &[&str] =
    &["DATABASE_URL", "SUPABASE_SERVICE_KEY", "SUPABASE_ACCESS_TOKEN", "SUPABASE_DB_PASSWORD", "PGPASSWORD"];

/// libpq variables a client keeps: where to find TLS certificates, which choose how to verify a
/// server, not which server.
const KEPT_LIBPQ_VARS: &[&str] = &["PGSSLCERT", "PGSSLKEY", "PGSSLROOTCERT", "PGSSLCRL", "PGSSLCRLDIR"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Client,
    Server,
    Installer,
}

/// A child's environment: the policy for its kind, then its own variables.
#[derive(Clone, Debug)]
pub struct Env {
    kind: Kind,
    own: Vec<(OsString, OsString)>,
    death: Option<libc::c_int>,
    user: Option<(u32, u32)>,
}

impl Env {
    pub fn client() -> Env {
        Env { kind: Kind::Client, own: Vec::new(), death: Some(libc::SIGINT), user: None }
    }

    pub fn server() -> Env {
        Env { kind: Kind::Server, own: Vec::new(), death: Some(libc::SIGTERM), user: None }
    }

    pub fn installer() -> Env {
        Env { kind: Kind::Installer, own: Vec::new(), death: None, user: None }
    }

    /// The signal this child gets when the tool dies (postgres: SIGQUIT, an immediate shutdown).
    pub fn dies_with(mut self, signal: libc::c_int) -> Env {
        self.death = Some(signal);
        self
    }

    /// Run the child as this user and group (a server started by root).
    pub fn as_user(mut self, ids: Option<(u32, u32)>) -> Env {
        self.user = ids;
        self
    }

    /// A variable for this child only (a secret goes here, never into the tool's own environment).
    pub fn with(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Env {
        self.own.push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// The child's whole environment.
    pub fn resolve(&self) -> Vec<(OsString, OsString)> {
        self.resolve_from(std::env::vars_os())
    }

    /// The child's whole environment, were the tool's own `base`.
    fn resolve_from(&self, base: impl Iterator<Item = (OsString, OsString)>) -> Vec<(OsString, OsString)> {
        let mut vars: Vec<(OsString, OsString)> = match self.kind {
            Kind::Server => {
                base.filter(|(k, _)| k == "PATH").chain([(OsString::from("LC_ALL"), OsString::from("C"))]).collect()
            }
            Kind::Client => base
                .filter(|(k, _)| {
                    let k = k.to_string_lossy();
                    let libpq = k.starts_with("PG") && !KEPT_LIBPQ_VARS.contains(&k.as_ref());
                    !(libpq
                        || k.starts_with("PSQL")
                        || SECRET_VARS.contains(&k.as_ref())
                        || k == "LANGUAGE"
                        || k == "LC_ALL"
                        || k == "LC_MESSAGES")
                })
                .chain([(OsString::from("LC_MESSAGES"), OsString::from("C"))])
                .collect(),
            Kind::Installer => base.filter(|(k, _)| !SECRET_VARS.contains(&k.to_string_lossy().as_ref())).collect(),
        };
        for (key, value) in &self.own {
            vars.retain(|(k, _)| k != key);
            vars.push((key.clone(), value.clone()));
        }
        vars
    }

    /// Apply the policy to a command about to be spawned.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env_clear().envs(self.resolve());
        self.apply_process(cmd);
    }

    /// The parts of the policy a spawner that sets the environment itself (duct) still needs.
    fn apply_process(&self, cmd: &mut Command) {
        if let Some((uid, gid)) = self.user {
            // It may not be able to enter ours (a tree under a private `mktemp -d`); it needs none.
            cmd.uid(uid).gid(gid).current_dir("/");
        }
        if let Some(signal) = self.death {
            die_with_parent(cmd, signal);
        }
    }
}

/// Give the child `signal` when this process dies (PR_SET_PDEATHSIG), and end it at once if this
/// process is already gone by the time the child runs.
pub fn die_with_parent(cmd: &mut Command, signal: libc::c_int) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl, getppid and _exit are async-signal-safe; this runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, signal);
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// What a one-shot child did.
#[derive(Debug)]
pub struct Captured {
    /// Its exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Captured {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Run a one-shot command (built with xshell's `cmd!`) to the end under `env`'s policy.
pub fn output(cmd: xshell::Cmd<'_>, env: Env) -> Result<Captured> {
    output_with_input(cmd, env, None)
}

/// [`output`], writing `input` to the child's stdin (from a thread: a child that prints a lot
/// before it reads cannot deadlock us).
pub fn output_with_input(cmd: xshell::Cmd<'_>, env: Env, input: Option<Vec<u8>>) -> Result<Captured> {
    let shown = format!("{cmd}");
    let mut command: Command = cmd.into();
    env.apply(&mut command);
    command
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().with_context(|| format!("starting `{shown}`"))?;
    let _guard = ChildGuard::register(child.id(), None);
    let feeder = match (child.stdin.take(), input) {
        (Some(mut pipe), Some(input)) => Some(std::thread::spawn(move || pipe.write_all(&input))),
        _ => None,
    };
    let out = child.wait_with_output().with_context(|| format!("waiting for `{shown}`"))?;
    if let Some(feeder) = feeder {
        // A child that exits without reading its input breaks the pipe; its status says why.
        let _ = feeder.join();
    }
    if signals::interrupted() {
        return Err(exit::interrupted());
    }
    Ok(Captured {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Start a long-running server (postgres, pgbouncer) under `env`'s policy: no stdin, no stdout,
/// stderr piped to the caller (which reads its readiness from it), in its own process group so a
/// terminal's Ctrl-C reaches the tool and not the server. The caller registers it with
/// [`signals::ChildGuard`] with the directory a second Ctrl-C must remove.
pub fn spawn_server(cmd: xshell::Cmd<'_>, env: Env) -> Result<std::process::Child> {
    let shown = format!("{cmd}");
    let mut command: Command = cmd.into();
    env.apply(&mut command);
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).process_group(0);
    // A server binary copied just now (the throwaway cluster's postgres) is "busy" while another
    // thread's child, forked before the copy's file was closed, has not yet reached its exec:
    // that lasts a moment, so the start is tried again.
    let mut tries = 0;
    loop {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            spawned => return spawned.with_context(|| format!("starting `{shown}`")),
        }
    }
}

/// A command as it may be shown and pasted into a shell: program name and arguments, redacted,
/// each quoted when it needs to be.
pub fn shown(program: &Path, args: &[impl AsRef<OsStr>], redactor: &Redactor) -> String {
    let name = program.file_name().unwrap_or(program.as_os_str()).to_string_lossy();
    let mut out = name.into_owned();
    for arg in args {
        out.push(' ');
        out.push_str(&shell_quote(&redactor.redact(&arg.as_ref().to_string_lossy())));
    }
    out
}

/// One word for a POSIX shell: as is when it is plainly safe, else in single quotes. A redacted
/// `$DATABASE_URL` stays a double-quoted variable, as the runbook writes it.
pub fn shell_quote(word: &str) -> String {
    if word == "$DATABASE_URL" {
        return "\"$DATABASE_URL\"".to_string();
    }
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_commands_paste_safely_into_a_shell() {
        let r = Redactor::new().with_secret("hunter22");
        let args = ["--workdir", "/tmp/$(touch pwned)", "-c", "select 'a'", "hunter22"];
        assert_eq!(
            shown(Path::new("/usr/bin/psql"), &args, &r),
            "psql --workdir '/tmp/$(touch pwned)' -c 'select '\\''a'\\''' '***'"
        );
    }

    #[test]
    fn a_client_gets_no_libpq_colour_psql_or_secret_variables() {
        let base = [
            "PGHOST",
            "PGSSLMODE",
            "PGPASSWORD",
            "PG_COLOR",
            "PSQLRC",
            "DATABASE_URL",
            "SUPABASE_SERVICE_KEY",
            "LC_ALL",
            "PGSSLROOTCERT",
            "HOME",
        ]
        .map(|k| (OsString::from(k), OsString::from("x")));
        let vars = Env::client().with("PGPASSWORD", "mine").resolve_from(base.into_iter());
        let keys: Vec<String> = vars.iter().map(|(k, _)| k.to_string_lossy().into_owned()).collect();
        assert_eq!(keys, ["PGSSLROOTCERT", "HOME", "LC_MESSAGES", "PGPASSWORD"]);
        assert!(vars.iter().any(|(k, v)| k == "PGPASSWORD" && v == "mine"), "the child's own password");
        let server = Env::server().resolve_from([(OsString::from("PGHOST"), OsString::from("x"))].into_iter());
        assert_eq!(server, vec![(OsString::from("LC_ALL"), OsString::from("C"))]);
    }
}
