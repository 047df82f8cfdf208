//! Ctrl-C and SIGTERM: the tool stops its children and lets every cleanup guard run.
//!
//! The main thread blocks SIGINT and SIGTERM before any other thread exists, so every thread
//! inherits the mask and one dedicated thread receives them with `sigwait`. On the first signal it
//! raises [`interrupted`] and sends SIGTERM to the registered children; the code waiting on a child
//! sees it end, returns [`crate::exit::interrupted`], and the `Drop` guards (the local cluster, the
//! advisory lock) run as the error unwinds to `main`, which exits 130. A second signal gives up on
//! grace: it kills the children and the registered servers, removes their directories and exits.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static CHILDREN: Mutex<BTreeMap<u32, Option<PathBuf>>> = Mutex::new(BTreeMap::new());

/// Whether Ctrl-C or SIGTERM has arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Block SIGINT and SIGTERM in this thread (call first thing in `main`) and start the thread
/// that handles them.
pub fn install() {
    // SAFETY: plain libc calls on a sigset we own; done before any other thread is spawned.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        std::thread::spawn(move || loop {
            let mut sig = 0;
            if libc::sigwait(&set, &mut sig) != 0 {
                continue;
            }
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                give_up();
            }
            terminate_children(libc::SIGTERM);
        });
    }
}

/// A child process the signal thread will stop. Registering a server's `dir` lets a second
/// Ctrl-C remove it even when the graceful path is stuck.
pub struct ChildGuard(u32);

impl ChildGuard {
    pub fn register(pid: u32, dir: Option<PathBuf>) -> ChildGuard {
        CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).insert(pid, dir);
        // A signal that landed between spawn and registration must still reach this child.
        if interrupted() {
            send(pid, libc::SIGTERM);
        }
        ChildGuard(pid)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.0);
    }
}

/// Send `signal` to `pid`; a process that is already gone is not an error.
pub fn send(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a pid we spawned.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

fn terminate_children(signal: i32) {
    let children = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
    for (&pid, dir) in children.iter() {
        // Servers are stopped by their own guard (immediate shutdown, then the directory goes).
        if dir.is_none() {
            send(pid, signal);
        }
    }
}

fn give_up() -> ! {
    let children = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
    for (&pid, dir) in children.iter() {
        send(pid, libc::SIGKILL);
        if let Some(dir) = dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    eprintln!("interrupted twice: killed the child processes and removed the throwaway cluster");
    std::process::exit(130);
}
