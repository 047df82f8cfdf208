//! Ctrl-C and SIGTERM: the tool stops its children and lets every cleanup guard run.
//!
//! A command with nothing to clean up (`lint`, `scan`) asks for [`exit_at_once`]: the first signal
//! ends it at once with exit 130, however long the file it is reading.
//!
//! The handler only raises a flag and writes a byte to a pipe (all it may safely do); a watcher
//! thread reads the pipe. On the first signal it sends SIGINT to the registered children (psql
//! answers SIGINT by cancelling its query on the server, so nothing is left running there, even
//! behind a pooler), and SIGKILL to any still running after a grace period; the code waiting on a
//! child sees it end, returns [`crate::exit::interrupted`], and the `Drop` guards
//! (the local cluster, the advisory lock) run as the error unwinds to `main`, which exits 130. A
//! second signal gives up on grace: it kills the children and the registered servers, removes
//! their directories and exits. Handlers, unlike a blocked signal mask, are reset by exec, so the
//! children start with the default dispositions.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Mutex;

/// How long children get to stop after SIGINT before they are killed.
const GRACE: std::time::Duration = std::time::Duration::from_secs(5);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static AT_ONCE: AtomicBool = AtomicBool::new(false);
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
static CHILDREN: Mutex<BTreeMap<u32, Option<PathBuf>>> = Mutex::new(BTreeMap::new());

/// The first Ctrl-C or SIGTERM exits at once (a command that holds no children or servers).
pub fn exit_at_once() {
    AT_ONCE.store(true, Ordering::SeqCst);
}

/// Whether Ctrl-C or SIGTERM has arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    let fd = WAKE_FD.load(Ordering::SeqCst);
    // SAFETY: write(2) is async-signal-safe; the byte only wakes the watcher.
    unsafe {
        libc::write(fd, [1u8].as_ptr().cast(), 1);
    }
}

/// Install the SIGINT and SIGTERM handlers and start the watcher thread (first thing in `main`).
pub fn install() {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) into an array we own; sigaction with a handler that is async-signal-safe.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return;
        }
        WAKE_FD.store(fds[1], Ordering::SeqCst);
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
    }
    let read_fd = fds[0];
    std::thread::spawn(move || {
        let mut received = 0;
        loop {
            let mut byte = 0u8;
            // SAFETY: read(2) of one byte into a local.
            let n = unsafe { libc::read(read_fd, (&mut byte as *mut u8).cast(), 1) };
            if n <= 0 {
                continue;
            }
            received += 1;
            if AT_ONCE.load(Ordering::SeqCst) {
                eprintln!("interrupted");
                std::process::exit(130);
            }
            if received == 1 {
                terminate_children(libc::SIGINT);
                std::thread::spawn(|| {
                    std::thread::sleep(GRACE);
                    terminate_children(libc::SIGKILL);
                });
            } else {
                give_up();
            }
        }
    });
}

/// A child process the signal thread will stop. Registering a server's `dir` lets a second
/// Ctrl-C remove it even when the graceful path is stuck.
pub struct ChildGuard(u32);

impl ChildGuard {
    pub fn register(pid: u32, dir: Option<PathBuf>) -> ChildGuard {
        CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).insert(pid, dir);
        // A signal that landed between spawn and registration must still reach this child.
        if interrupted() {
            send(pid, libc::SIGINT);
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

/// Stops processes that run past a deadline: SIGINT (psql cancels its statement), then SIGKILL
/// two seconds later. Dropping the watchdog disarms it.
pub struct Watchdog {
    disarm: Option<std::sync::mpsc::Sender<()>>,
    fired: std::sync::Arc<AtomicBool>,
}

impl Watchdog {
    pub fn arm(pids: Vec<u32>, after: std::time::Duration) -> Watchdog {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let fired = std::sync::Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(after) {
                flag.store(true, Ordering::SeqCst);
                for pid in &pids {
                    send(*pid, libc::SIGINT);
                }
                if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    rx.recv_timeout(std::time::Duration::from_secs(2))
                {
                    for pid in &pids {
                        send(*pid, libc::SIGKILL);
                    }
                }
            }
        });
        Watchdog { disarm: Some(tx), fired }
    }

    /// Whether the deadline passed and the processes were stopped.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.disarm.take() {
            let _ = tx.send(());
        }
    }
}
