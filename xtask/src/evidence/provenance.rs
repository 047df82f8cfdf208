//! Who ran a rehearsal, where, on which commit, with which tools: the provenance block of
//! `summary.json`, SUMMARY.md and the sign-off.

use std::path::Path;

use xshell::{cmd, Shell};

use super::summary::Provenance;
use crate::process::{self, Env};

/// What can be known before the run; the server's version is added once a session connected.
pub fn gather(workdir: &Path, psql: Option<&Path>, supabase_cli: Option<String>) -> Provenance {
    let (git_commit, git_dirty) = git(workdir);
    Provenance {
        git_commit,
        git_dirty,
        tool_version: format!("xtask {}", env!("CARGO_PKG_VERSION")),
        psql: psql.map(crate::tools::version_line).filter(|v| !v.is_empty()),
        server: None,
        supabase_cli,
        user: user(),
        host: host(),
    }
}

fn git(workdir: &Path) -> (Option<String>, Option<bool>) {
    let Ok(sh) = Shell::new() else { return (None, None) };
    let Ok(git) = which::which("git") else { return (None, None) };
    let _dir = sh.push_dir(workdir);
    let commit = process::output(cmd!(sh, "{git} rev-parse HEAD"), Env::client())
        .ok()
        .filter(|o| o.success())
        .map(|o| o.stdout.trim().to_string());
    let dirty = commit.as_ref().and_then(|_| {
        let out = process::output(cmd!(sh, "{git} status --porcelain --untracked-files=no"), Env::client()).ok()?;
        out.success().then(|| !out.stdout.trim().is_empty())
    });
    (commit, dirty)
}

fn user() -> String {
    if let Some(user) = std::env::var("USER").ok().filter(|u| !u.is_empty()) {
        return user;
    }
    // SAFETY: getpwuid returns a pointer into static storage or null; read at once.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            return std::ffi::CStr::from_ptr((*pw).pw_name).to_string_lossy().into_owned();
        }
    }
    format!("uid {}", unsafe { libc::geteuid() })
}

fn host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into a buffer we own.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    if ok {
        String::from_utf8_lossy(&buf[..len]).into_owned()
    } else {
        "unknown".into()
    }
}
