//! A long-lived psql session, fed over stdin: one connection (one TLS handshake and one SCRAM
//! exchange through a pooler) for many files, instead of one per file.
//!
//! psql stays the executor (`\i FILE`, statements, its transcript is the evidence). Each piece of
//! work is a [`Unit`]: control commands whose output is dropped, the body whose output is the
//! transcript, and control commands after it. Markers the tool echoes (`\echo @@<nonce>:<n>:...`,
//! with a random nonce per session) tell where the body's output starts and ends, and carry
//! psql's `ERROR` variable back. When psql exits during a body (`ON_ERROR_STOP` after an error,
//! a connection lost), the session is over; the caller opens a fresh one.
//!
//! What is written to stdin is small (meta-commands and short queries; files go through `\i`), so
//! writing never waits on psql while psql waits on us.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::signals::{self, ChildGuard};
use super::{die_with_parent, Env, Redactor, Tee};
use crate::exit;

/// How to start a session.
#[derive(Clone, Debug)]
pub struct Spec {
    pub psql: PathBuf,
    /// The DSN for psql's argv: as given, without its password.
    pub conn_arg: String,
    /// Goes in this child's `PGPASSWORD` only, or in a passfile under `passfile_dir`.
    pub password: Option<String>,
    /// Where to put the password as a private passfile (`PGPASSFILE`) instead of `PGPASSWORD`,
    /// for a session that runs a tree's test files: then not even psql's environment holds it.
    pub passfile_dir: Option<PathBuf>,
    /// `PGCONNECT_TIMEOUT`, seconds: a server that accepts TCP and never answers cannot hang us.
    pub connect_timeout: u32,
    /// psql's working directory: it names files as the tree does (`psql:supabase/...:3:`).
    pub cwd: PathBuf,
    pub redactor: Redactor,
}

/// One piece of work for a session.
#[derive(Clone, Debug, Default)]
pub struct Unit {
    /// Sent before the body; its output is not kept.
    pub before: String,
    /// The body: its output is the transcript.
    pub body: String,
    /// Sent after the body; `\echo @@var NAME VALUE` lines here come back in [`Ran::vars`].
    pub after: String,
}

impl Unit {
    pub fn body(body: impl Into<String>) -> Unit {
        Unit { body: body.into(), ..Unit::default() }
    }
}

/// What a unit did.
#[derive(Debug, Default)]
pub struct Ran {
    /// The body's output, redacted, one line each.
    pub text: String,
    /// psql's `ERROR` after the body: its last query failed.
    pub error: bool,
    /// psql exited before the unit ended (an error under `ON_ERROR_STOP`, or the connection lost).
    pub ended: bool,
    /// `@@var NAME VALUE` lines echoed after the body.
    pub vars: BTreeMap<String, String>,
    /// Output outside the body (psql's own messages, e.g. why it could not connect).
    pub stray: String,
}

impl Ran {
    pub fn ok(&self) -> bool {
        !self.error && !self.ended
    }
}

struct Shared(Arc<duct::ReaderHandle>);

impl Read for Shared {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        (&*self.0).read(buf)
    }
}

pub struct Session {
    handle: Arc<duct::ReaderHandle>,
    reader: BufReader<Shared>,
    stdin: Option<std::io::PipeWriter>,
    nonce: String,
    seq: u64,
    alive: bool,
    redactor: Redactor,
    _guards: Vec<ChildGuard>,
}

impl Session {
    /// Start psql; nothing is sent yet (a connection failure shows in the first unit).
    pub fn start(spec: &Spec) -> Result<Session> {
        let (stdin_read, stdin_write) = std::io::pipe().context("creating psql's input pipe")?;
        let mut env = Env::client()
            .with("PGCONNECT_TIMEOUT", spec.connect_timeout.to_string())
            .with("PGAPPNAME", "rehearsal-xtask");
        match (&spec.password, &spec.passfile_dir) {
            (Some(password), Some(dir)) => env = env.with("PGPASSFILE", passfile(dir, password)?),
            (Some(password), None) => env = env.with("PGPASSWORD", password),
            (None, _) => {}
        }
        let args = [spec.conn_arg.as_str(), "-X", "-w", "-P", "pager=off", "-v", "ON_ERROR_STOP=0"];
        let handle = duct::cmd(&spec.psql, args)
            .dir(&spec.cwd)
            .full_env(env.resolve())
            .stdin_file(stdin_read)
            .stderr_to_stdout()
            .unchecked()
            .before_spawn(|cmd| {
                die_with_parent(cmd, libc::SIGINT);
                Ok(())
            })
            .reader()
            .with_context(|| format!("starting {}", spec.psql.display()))?;
        let guards = handle.pids().into_iter().map(|pid| ChildGuard::register(pid, None)).collect();
        let handle = Arc::new(handle);
        Ok(Session {
            reader: BufReader::new(Shared(handle.clone())),
            handle,
            stdin: Some(stdin_write),
            nonce: nonce(),
            seq: 0,
            alive: true,
            redactor: spec.redactor.clone(),
            _guards: guards,
        })
    }

    /// Whether psql is still there to take work.
    pub fn alive(&self) -> bool {
        self.alive
    }

    /// Run one unit, its body's lines going to `tee` as they arrive.
    pub fn run(&mut self, unit: &Unit, mut tee: Option<&mut dyn Tee>) -> Result<Ran> {
        anyhow::ensure!(self.alive, "the psql session has ended");
        self.seq += 1;
        let mark = format!("@@{}:{}:", self.nonce, self.seq);
        let script = format!(
            "{}\n\\echo {mark}begin\n{}\n\\echo {mark}end :ERROR\n{}\n\\echo {mark}done\n",
            unit.before.trim_end(),
            unit.body.trim_end(),
            unit.after.trim_end()
        );
        let sent = self.stdin.as_mut().map(|s| s.write_all(script.as_bytes()).and_then(|_| s.flush()));
        let mut ran = Ran::default();
        if !matches!(sent, Some(Ok(()))) {
            // psql is gone: what it printed says why.
            self.alive = false;
            ran.ended = true;
        }
        #[derive(PartialEq)]
        enum State {
            Before,
            Body,
            After,
        }
        let mut state = State::Before;
        let mut raw = Vec::new();
        loop {
            raw.clear();
            let n = self.reader.read_until(b'\n', &mut raw).context("reading psql's output")?;
            if n == 0 {
                self.alive = false;
                ran.ended = true;
                break;
            }
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\n', '\r']);
            if let Some(rest) = line.strip_prefix(mark.as_str()) {
                match rest {
                    "begin" => state = State::Body,
                    "done" => break,
                    end => {
                        ran.error = end.strip_prefix("end ").is_some_and(|e| e.trim() == "true");
                        state = State::After;
                    }
                }
                continue;
            }
            let line = self.redactor.redact(line);
            match state {
                State::Body => {
                    if let Some(tee) = tee.as_deref_mut() {
                        tee.tee(&line)?;
                    }
                    ran.text.push_str(&line);
                    ran.text.push('\n');
                }
                State::Before | State::After if line.starts_with("@@var ") => {
                    let mut parts = line["@@var ".len()..].splitn(2, ' ');
                    if let (Some(k), v) = (parts.next(), parts.next()) {
                        ran.vars.insert(k.to_string(), v.unwrap_or_default().to_string());
                    }
                }
                _ => {
                    ran.stray.push_str(&line);
                    ran.stray.push('\n');
                }
            }
        }
        if state == State::Before && ran.ended {
            // psql never reached the body (it could not connect): its messages are the transcript.
            if let Some(tee) = tee {
                for line in ran.stray.lines() {
                    tee.tee(line)?;
                }
            }
            ran.text = std::mem::take(&mut ran.stray);
        }
        if signals::interrupted() {
            return Err(exit::interrupted());
        }
        Ok(ran)
    }

    /// Send `last` (psql input), then end psql's input: psql runs it and exits, while the caller
    /// goes on; dropping the session waits for that.
    pub fn close_with(&mut self, last: &str) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(last.as_bytes()).and_then(|_| stdin.flush());
        }
    }

    /// The process ids of psql (for a watchdog that must stop it).
    pub fn pids(&self) -> Vec<u32> {
        self.handle.pids()
    }

    /// psql's exit code once it has ended.
    pub fn exit_code(&self) -> Option<i32> {
        self.handle.try_wait().ok().flatten().and_then(|o| o.status.code())
    }
}

impl Drop for Session {
    /// End of input ends psql; one that does not stop (a statement still running) is killed.
    fn drop(&mut self) {
        drop(self.stdin.take());
        for _ in 0..200 {
            if !matches!(self.handle.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for pid in self.handle.pids() {
            signals::send(pid, libc::SIGINT);
        }
        for _ in 0..200 {
            if !matches!(self.handle.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.handle.kill();
    }
}

/// A random marker per session: a migration cannot print it by accident.
/// A new passfile (mode 0600, a random name) in `dir` that gives `password` to any server:
/// `*:*:*:*:` and the password, its `:` and `\` escaped as libpq reads them.
fn passfile(dir: &Path, password: &str) -> Result<PathBuf> {
    let path = dir.join(format!("pgpass-{}", nonce()));
    let line = format!("*:*:*:*:{}\n", password.replace('\\', "\\\\").replace(':', "\\:"));
    // Created new, never through a symlink, readable by its owner alone.
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        std::os::unix::fs::OpenOptionsExt::mode(std::fs::OpenOptions::new().write(true).create_new(true), 0o600),
        libc::O_NOFOLLOW,
    )
    .open(&path)
    .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()))
    .with_context(|| format!("writing the session's passfile in {}", dir.display()))?;
    Ok(path)
}

pub fn nonce() -> String {
    let mut bytes = [0u8; 12];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        bytes[..8].copy_from_slice(&(t.as_nanos() as u64 ^ u64::from(std::process::id())).to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A psql meta-command argument (`\i`, `\cd`): single-quoted, quotes doubled, backslashes escaped.
pub fn quote_arg(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\\', "\\\\").replace('\'', "''"))
}
