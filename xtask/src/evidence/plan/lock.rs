//! The data plan's lock and its whole-file write: `.<name>.lock` beside the plan (mode 0600,
//! never a symlink, one line naming its holder), a wait with a deadline that Ctrl-C ends, a plan
//! refused in a folder another user could swap it in; and the write (a new temp file under a
//! random name, then a rename) that keeps the plan's mode; as root, a plan another user owns or
//! can move is refused, so nothing is ever chowned.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use anyhow::{Context, Result};

use crate::exit;

/// How long a run waits for another run to release the plan's lock before it gives up:
/// `REHEARSAL_PLAN_LOCK_WAIT` seconds, 120 by default.
fn lock_wait() -> std::time::Duration {
    let secs = std::env::var("REHEARSAL_PLAN_LOCK_WAIT").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(120);
    std::time::Duration::from_secs(secs)
}

/// Refuse a plan another user could swap: one in a folder anyone can write that belongs to
/// someone else, unless the folder is sticky (`/tmp`) and the plan is the caller's own.
fn check_folder(real: &Path) -> Result<()> {
    let dir = real.parent().unwrap_or(Path::new("/"));
    let me = unsafe { libc::geteuid() };
    let d = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    let plan_owner = std::fs::metadata(real).map(|m| m.uid()).unwrap_or(me);
    let shared = d.mode() & 0o002 != 0 && d.uid() != me;
    let sticky_and_mine = d.mode() & 0o1000 != 0 && plan_owner == me;
    if shared && !sticky_and_mine {
        return Err(exit::cannot_run(format!(
            "the data plan {} is in {}, a folder anyone can write that belongs to uid {}{}: another user could \
             swap the plan or its lock; move the plan to a folder of yours and pass --plan",
            real.display(),
            dir.display(),
            d.uid(),
            if d.mode() & 0o1000 != 0 {
                format!(", and the plan belongs to uid {plan_owner}, not to you")
            } else {
                String::new()
            }
        )));
    }
    // As root, only root's: a plan (or its folder) another user owns could be swapped for a link to
    // a file of root's between the read and the write, and its replacement would have to be
    // chowned to that user.
    if me == 0 && (plan_owner != 0 || d.uid() != 0) {
        let whose = if plan_owner != 0 {
            format!("belongs to uid {plan_owner}")
        } else {
            format!("is in a folder of uid {}", d.uid())
        };
        return Err(exit::cannot_run(format!(
            "the data plan {} {whose}: as root the tool writes no file another user owns or can move; run as \
             that user, or keep the plan in a folder of root's",
            real.display()
        )));
    }
    Ok(())
}

/// An exclusive flock on `.<name>.lock` beside the plan (mode 0600, never a symlink), released on
/// drop. It holds one line naming its holder, which a run that waits prints; the wait ends at
/// [`lock_wait`] or at Ctrl-C/SIGTERM.
pub(super) struct PlanLock(#[allow(dead_code)] std::fs::File);

impl PlanLock {
    pub(super) fn take(real: &Path) -> Result<PlanLock> {
        use std::os::unix::fs::OpenOptionsExt;
        check_folder(real)?;
        let name = real.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let path = real.with_file_name(format!(".{name}.lock"));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    exit::cannot_run(format!("the plan's lock {} is a symlink; remove it", path.display()))
                } else {
                    anyhow::Error::new(e).context(format!("opening the plan's lock {}", path.display()))
                }
            })?;
        let started = std::time::Instant::now();
        let wait = lock_wait();
        let mut said = false;
        // SAFETY: flock on a descriptor we own, without blocking, so the wait can end.
        while unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.lines().next().filter(|l| !l.is_empty()).unwrap_or("another run");
            let holder = crate::text::escape::one_line(holder).into_owned();
            if !said {
                crate::out::err_line(&format!(
                    "waiting for the data plan's lock {} (held by {holder})",
                    path.display()
                ));
                said = true;
            }
            if crate::process::signals::interrupted() {
                return Err(exit::interrupted());
            }
            if started.elapsed() >= wait {
                return Err(exit::cannot_run(format!(
                    "the data plan's lock {} is still held after {} s (by {holder}); wait for that run to end, \
                     or end it, then run again",
                    path.display(),
                    wait.as_secs()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let holder =
            format!("pid {}, since {}\n", std::process::id(), crate::evidence::artifacts::rfc3339(&chrono::Utc::now()));
        let _ = file.set_len(0).and_then(|_| file.write_all(holder.as_bytes()));
        Ok(PlanLock(file))
    }
}

/// Write `real` whole (a new temp file beside it under a random name, then a rename), with its
/// current mode. Its owner is the caller ([`check_folder`] refuses, as root, a plan of another
/// user's), so nothing is chowned.
pub(super) fn write_keeping_owner(real: &Path, contents: &[u8]) -> Result<()> {
    let meta = std::fs::metadata(real)?;
    let tmp = crate::evidence::artifacts::temp_beside(real);
    let result = (|| -> std::io::Result<()> {
        let mut file = crate::evidence::artifacts::create_new(&tmp)?;
        file.write_all(contents)?;
        file.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o777))?;
        file.sync_all()?;
        std::fs::rename(&tmp, real)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(result?)
}
