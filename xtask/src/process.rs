//! The one place that runs child processes (STYLE habit 2).
//!
//! A [`Cmd`] is an argv, never a shell string. Its environment is the tool's own minus the libpq
//! variables that would silently redirect a connection (the DSN is the single source of truth),
//! plus what this child alone needs. stdout and stderr share one pipe, so the transcript keeps
//! psql's own interleaving, as `2>&1` does in the runbook. Secret-carrying variables are not
//! inherited either. Every line is redacted, then appended to
//! the artifact (flushed line by line) and kept for the caller.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::exit;
use crate::redact::Redactor;
use crate::signals::{self, ChildGuard};

/// libpq variables that choose where and as whom to connect. They are removed so that a stray
/// `PGHOST` in a user's shell cannot send a rehearsal somewhere other than the DSN it was given.
const CONNECTION_VARS: &[&str] = &[
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGOPTIONS",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGTARGETSESSIONATTRS",
    "PGREQUIRESSL",
    "PGSSLMODE",
];

/// Variables that carry secrets. No child inherits them from the tool's environment; the one child
/// that needs one gets it through [`Cmd::env`].
pub const SECRET_VARS: &[&str] =
    &["DATABASE_URL", "SUPABASE_SERVICE_KEY", "SUPABASE_ACCESS_TOKEN", "SUPABASE_DB_PASSWORD"];

pub struct Cmd {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, OsString)>,
    stdin: Option<Vec<u8>>,
    cwd: Option<PathBuf>,
}

/// What a child did: its exit code (`None` when a signal ended it) and its redacted transcript.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub text: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl Cmd {
    pub fn new(program: impl Into<PathBuf>) -> Cmd {
        Cmd { program: program.into(), args: Vec::new(), env: Vec::new(), stdin: None, cwd: None }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Cmd {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Set a variable for this child only (a secret goes here, never into the tool's own env).
    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Cmd {
        self.env.push((key.to_string(), value.into()));
        self
    }

    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(input.into());
        self
    }

    pub fn current_dir(mut self, dir: &Path) -> Cmd {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// The command as it may be shown: program name and arguments, redacted.
    pub fn display(&self, redactor: &Redactor) -> String {
        let name = self.program.file_name().unwrap_or(self.program.as_os_str()).to_string_lossy();
        let mut shown = name.into_owned();
        for arg in &self.args {
            let arg = redactor.redact(&arg.to_string_lossy());
            if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || "'\"$;|&<>()*?".contains(c)) {
                shown.push_str(&format!(" \"{}\"", arg.replace('"', "\\\"")));
            } else {
                shown.push(' ');
                shown.push_str(&arg);
            }
        }
        shown
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        for var in CONNECTION_VARS.iter().chain(SECRET_VARS) {
            cmd.env_remove(var);
        }
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// Run to completion, appending each redacted line to `log` as it arrives.
    pub fn run(&self, redactor: &Redactor, mut log: Option<&mut dyn Write>) -> Result<Output> {
        let shown = self.display(redactor);
        let (reader, writer) = std::io::pipe().context("creating a pipe for a child's output")?;
        let mut command = self.command();
        command
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(writer.try_clone().context("duplicating the output pipe")?)
            .stderr(writer);
        let mut child = command.spawn().with_context(|| format!("starting `{shown}`"))?;
        // The Command holds the pipe's write ends; drop it so EOF arrives when the child exits.
        drop(command);
        let _guard = ChildGuard::register(child.id(), None);

        let feeder = match (child.stdin.take(), &self.stdin) {
            (Some(mut pipe), Some(input)) => {
                let input = input.clone();
                Some(std::thread::spawn(move || pipe.write_all(&input)))
            }
            _ => None,
        };

        let mut text = String::new();
        let mut lines = BufReader::new(reader);
        let mut raw = Vec::new();
        loop {
            raw.clear();
            let n = lines.read_until(b'\n', &mut raw).with_context(|| format!("reading the output of `{shown}`"))?;
            if n == 0 {
                break;
            }
            let line = redactor.redact(&String::from_utf8_lossy(&raw));
            if let Some(log) = log.as_deref_mut() {
                log.write_all(line.as_bytes()).context("writing a transcript line")?;
                if !line.ends_with('\n') {
                    log.write_all(b"\n").context("writing a transcript line")?;
                }
                log.flush().context("flushing a transcript line")?;
            }
            text.push_str(&line);
        }
        let status = child.wait().with_context(|| format!("waiting for `{shown}`"))?;
        if let Some(feeder) = feeder {
            // A child that exits without reading its input breaks the pipe; its status says why.
            let _ = feeder.join();
        }
        if signals::interrupted() {
            return Err(exit::interrupted());
        }
        Ok(Output { code: status.code(), text })
    }
}
