//! Children whose output streams into an artifact, under duct: stdout and stderr in one pipe,
//! each line redacted, then handed to a [`Tee`] as it arrives and kept; one of them may be started
//! held at a [`gate`](super::gate) until the run lets it connect.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, Result};

use super::signals::{self, ChildGuard};
use super::{gate, shown, Env, Redactor};
use crate::exit;

/// Where a streamed child's lines go, as they arrive.
pub trait Tee {
    fn tee(&mut self, line: &str) -> Result<()>;
}

impl Tee for Vec<String> {
    fn tee(&mut self, line: &str) -> Result<()> {
        self.push(line.to_string());
        Ok(())
    }
}

/// What a streamed child did: its exit code and its redacted transcript.
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

/// Run `program args` under duct with stdout and stderr in one pipe (psql's own interleaving, as
/// `2>&1` keeps it), each line redacted, then given to `tee` (flushed line by line) and kept.
pub fn stream(
    program: &Path,
    args: &[OsString],
    env: &Env,
    cwd: Option<&Path>,
    redactor: &Redactor,
    tee: Option<&mut dyn Tee>,
) -> Result<Output> {
    stream_at(program, args, env, cwd, redactor, tee, None)
}

/// [`stream`], the child started now and held at its first network connection until `gate`
/// opens ([`gate`]); where it cannot be held, started once the gate opens. A refused gate: the
/// child does not run (`None`).
pub fn stream_held<'t>(
    program: &Path,
    args: &[OsString],
    env: &Env,
    cwd: Option<&Path>,
    redactor: &Redactor,
    gate: &gate::Gate,
    mut tee: Option<&mut (dyn Tee + 't)>,
) -> Result<Option<Output>> {
    match stream_at(program, args, env, cwd, redactor, tee.as_deref_mut(), Some(gate)) {
        Err(e) if e.is::<NotHeld>() => {
            if !gate.wait() {
                return Ok(None);
            }
            stream_at(program, args, env, cwd, redactor, tee, None).map(Some)
        }
        other => other.map(Some),
    }
}

/// The child could not be started held at its gate.
#[derive(Debug)]
struct NotHeld;

impl std::fmt::Display for NotHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the child could not be held at its gate")
    }
}

impl std::error::Error for NotHeld {}

fn stream_at<'t>(
    program: &Path,
    args: &[OsString],
    env: &Env,
    cwd: Option<&Path>,
    redactor: &Redactor,
    mut tee: Option<&mut (dyn Tee + 't)>,
    gate: Option<&gate::Gate>,
) -> Result<Output> {
    let shown = shown(program, args, redactor);
    let policy = env.clone();
    let held: std::sync::Arc<std::sync::Mutex<Option<gate::Held>>> = Default::default();
    let (holder, at) = (held.clone(), gate.cloned());
    let mut expr =
        duct::cmd(program, args).full_env(env.resolve()).stdin_null().stderr_to_stdout().unchecked().before_spawn(
            move |cmd| {
                policy.apply_process(cmd);
                if let Some(gate) = &at {
                    *holder.lock().unwrap_or_else(|e| e.into_inner()) = Some(gate.hold(cmd)?);
                }
                Ok(())
            },
        );
    if let Some(dir) = cwd {
        expr = expr.dir(dir);
    }
    let handle = match expr.reader() {
        Ok(handle) => handle,
        Err(_) if gate.is_some() => return Err(NotHeld.into()),
        Err(e) => return Err(e).with_context(|| format!("starting `{shown}`")),
    };
    if let Some(held) = held.lock().unwrap_or_else(|e| e.into_inner()).take() {
        if held.spawned().is_err() {
            let _ = handle.kill();
            return Err(NotHeld.into());
        }
    }
    let _guards: Vec<ChildGuard> = handle.pids().into_iter().map(|pid| ChildGuard::register(pid, None)).collect();
    let mut reader = BufReader::new(&handle);
    let mut text = String::new();
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let n = reader.read_until(b'\n', &mut raw).with_context(|| format!("reading the output of `{shown}`"))?;
        if n == 0 {
            break;
        }
        let line = redactor.redact(String::from_utf8_lossy(&raw).trim_end_matches(['\n', '\r']));
        if let Some(tee) = tee.as_deref_mut() {
            tee.tee(&line)?;
        }
        text.push_str(&line);
        text.push('\n');
    }
    let status = handle.try_wait().with_context(|| format!("waiting for `{shown}`"))?.map(|o| o.status);
    if signals::interrupted() {
        return Err(exit::interrupted());
    }
    Ok(Output { code: status.and_then(|s| s.code()), text })
}
