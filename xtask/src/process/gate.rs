//! A child started early and held at its first network connection until the tool opens the gate:
//! step 7's `supabase migration list` must read the history the run leaves, yet its start-up (a
//! third of a second of its own before it connects) need not wait for the run.
//!
//! The child is started under a seccomp filter (the kernel's own mechanism, as container
//! runtimes use it) that hands each of its `connect(2)` calls to the tool, which lets the call go
//! on only once [`Gate::open`] is called; `io_uring_setup(2)` fails with ENOSYS, so no connection
//! can go around it. The child is held, not changed: nothing it sends or reads differs. Where the
//! kernel refuses the filter (before Linux 5.5, or a container that forbids seccomp), the child
//! starts once the gate opens, as if there were none. Either way it touches no network before.
//!
//! A gate that is refused ([`Gate::refuse`], when the run stops before its point) fails the
//! held calls with ECONNREFUSED, so the child ends at once; and if the tool dies, the kernel fails
//! them too (the filter's listener goes with the tool).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Where a gate stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed,
    Open,
    Refused,
}

/// A gate a child waits at, and how many of its calls have come to it; clones share it.
#[derive(Clone)]
pub struct Gate(Arc<(Mutex<(State, usize)>, Condvar)>);

impl Default for Gate {
    fn default() -> Gate {
        Gate(Arc::new((Mutex::new((State::Closed, 0)), Condvar::new())))
    }
}

impl Gate {
    /// Let the held child connect.
    pub fn open(&self) {
        self.set(State::Open);
    }

    /// The point will not be reached: the held child's connections fail.
    pub fn refuse(&self) {
        self.set(State::Refused);
    }

    fn set(&self, to: State) {
        let (state, changed) = &*self.0;
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        if s.0 == State::Closed {
            s.0 = to;
        }
        changed.notify_all();
    }

    /// Wait until the gate is opened (true) or refused (false).
    pub fn wait(&self) -> bool {
        let (state, changed) = &*self.0;
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        while s.0 == State::Closed {
            s = changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.0 == State::Open
    }

    /// A held call came to the gate.
    fn arrived(&self) {
        let (state, changed) = &*self.0;
        state.lock().unwrap_or_else(|e| e.into_inner()).1 += 1;
        changed.notify_all();
    }

    /// Wait until a held call has come to the gate (or it is no longer closed); how many have.
    pub fn wait_arrival(&self) -> usize {
        let (state, changed) = &*self.0;
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        while s.0 == State::Closed && s.1 == 0 {
            s = changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.1
    }

    /// Make `cmd`'s child start held at this gate: after a successful spawn, call
    /// [`Held::spawned`]. An error (no socket pair) means: start it once the gate opens instead.
    pub fn hold(&self, cmd: &mut Command) -> std::io::Result<Held> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: socketpair writes two descriptors into `fds`, which we own from here on.
        if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) }
            != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both were just created and are owned by nothing else.
        let (parent, child) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let to_parent = child.as_raw_fd();
        // SAFETY: the closure runs between fork and exec and makes only async-signal-safe system
        // calls on memory of its own stack.
        unsafe {
            cmd.pre_exec(move || install(to_parent));
        }
        Ok(Held { gate: self.clone(), parent, child })
    }
}

/// A child being started held at a gate.
pub struct Held {
    gate: Gate,
    parent: OwnedFd,
    child: OwnedFd,
}

impl Held {
    /// The child has started: take the filter's listener it sent and answer its connections from
    /// a thread of ours, as the gate says. An error: the child is not held (the caller stops it).
    pub fn spawned(self) -> std::io::Result<()> {
        drop(self.child);
        let listener = receive_fd(self.parent.as_raw_fd())?;
        let gate = self.gate;
        std::thread::spawn(move || supervise(listener, gate));
        Ok(())
    }
}

/// In the child, before exec: no new privileges (what an unprivileged seccomp filter needs), the
/// filter with a listener, the listener sent to the parent. Any failure fails the spawn.
fn install(to_parent: RawFd) -> std::io::Result<()> {
    let program = filter();
    let prog = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr() as *mut libc::sock_filter };
    // SAFETY: prctl and seccomp with valid arguments; `prog` outlives the call.
    let listener = unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let flags = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
        let mut fd = libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, flags, &prog);
        if fd < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
            // Before Linux 5.19: without the killable wait (a signal restarts the held call).
            fd = libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                &prog,
            );
        }
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        fd as RawFd
    };
    let sent = send_fd(to_parent, listener);
    // SAFETY: the listener is ours; the parent has its own copy now.
    unsafe { libc::close(listener) };
    sent
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;
/// x86_64's x32 calls carry this bit in their number.
const X32_BIT: u32 = 0x4000_0000;

/// The filter: `connect` to the listener, `io_uring_setup` fails with ENOSYS, the rest as usual
/// (and every call of another architecture's ABI, which a 64-bit CLI does not make). Built on the
/// stack: it runs between fork and exec.
fn filter() -> [libc::sock_filter; 10] {
    const fn stmt(code: u32, k: u32) -> libc::sock_filter {
        libc::sock_filter { code: code as u16, jt: 0, jf: 0, k }
    }
    const fn jump(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
        libc::sock_filter { code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16, jt, jf, k }
    }
    const RET: u32 = libc::BPF_RET | libc::BPF_K;
    [
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 4), // seccomp_data.arch
        jump(AUDIT_ARCH, 1, 0),
        stmt(RET, libc::SECCOMP_RET_ALLOW),
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0), // seccomp_data.nr
        stmt(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, !X32_BIT),
        jump(libc::SYS_connect as u32, 0, 1),
        stmt(RET, libc::SECCOMP_RET_USER_NOTIF),
        jump(libc::SYS_io_uring_setup as u32, 0, 1),
        stmt(RET, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        stmt(RET, libc::SECCOMP_RET_ALLOW),
    ]
}

/// The buffers of a message of one byte and one descriptor.
struct Message {
    byte: [u8; 1],
    space: [u64; 8],
    iov: libc::iovec,
}

impl Message {
    fn new() -> Message {
        Message { byte: [0], space: [0; 8], iov: libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 1 } }
    }

    /// The header pointing at this message's buffers (which must stay put while it is used).
    fn header(&mut self, control: usize) -> libc::msghdr {
        self.iov.iov_base = self.byte.as_mut_ptr().cast();
        // SAFETY: an all-zero msghdr is valid; the fields set point at our buffers.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut self.iov;
        msg.msg_iovlen = 1;
        msg.msg_control = self.space.as_mut_ptr().cast();
        msg.msg_controllen = control.min(std::mem::size_of_val(&self.space)) as _;
        msg
    }
}

/// Send `fd` over the socket `to` (one byte and the descriptor).
fn send_fd(to: RawFd, fd: RawFd) -> std::io::Result<()> {
    let mut m = Message::new();
    // SAFETY: CMSG_SPACE is a constant computation.
    let msg = m.header(unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize);
    // SAFETY: the header points at `m`, which outlives sendmsg; CMSG_* stay within its space.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        if libc::sendmsg(to, &msg, 0) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The descriptor sent over `from` by [`send_fd`].
fn receive_fd(from: RawFd) -> std::io::Result<OwnedFd> {
    let mut m = Message::new();
    let mut msg = m.header(usize::MAX);
    let none = || std::io::Error::other("the child sent no seccomp listener");
    // SAFETY: as in send_fd; a descriptor received is owned by us alone.
    unsafe {
        if libc::recvmsg(from, &mut msg, libc::MSG_CMSG_CLOEXEC) <= 0 {
            return Err(none());
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            return Err(none());
        }
        Ok(OwnedFd::from_raw_fd(std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>())))
    }
}

/// Answer the held child's `connect` calls: each waits for the gate, then goes on (or fails with
/// ECONNREFUSED when the gate is refused). Ends when the child does.
fn supervise(listener: OwnedFd, gate: Gate) {
    let fd = listener.as_raw_fd();
    loop {
        let mut poll = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut poll, 1, Duration::from_secs(1).as_millis() as i32) };
        if ready < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if ready < 0 || poll.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            return;
        }
        if ready == 0 {
            continue;
        }
        // SAFETY: the kernel fills the zeroed notification.
        let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut notif) } != 0 {
            match std::io::Error::last_os_error().raw_os_error() {
                // The call went away (a signal, or the thread ended) before we took it.
                Some(libc::ENOENT) | Some(libc::EINTR) => continue,
                _ => return,
            }
        }
        gate.arrived();
        let go = gate.wait();
        let mut resp = libc::seccomp_notif_resp {
            id: notif.id,
            val: 0,
            error: if go { 0 } else { -libc::ECONNREFUSED },
            flags: if go { libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32 } else { 0 },
        };
        // SAFETY: a valid response; ENOENT (the call went away meanwhile) needs nothing more.
        unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpListener;

    use super::*;

    /// A child (bash's /dev/tcp, a plain `connect(2)`) held at the gate: no connection reaches the
    /// listener while it is closed, one does once it opens; a refused gate fails the call.
    #[test]
    fn a_held_child_connects_only_once_the_gate_opens() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected >&3");
        let gate = Gate::default();
        let mut cmd = Command::new("bash");
        cmd.args(["-c", &script]);
        let held = gate.hold(&mut cmd).unwrap();
        let mut child = cmd.spawn().expect("the kernel takes the filter (Linux 5.5 or later)");
        held.spawned().unwrap();
        assert_eq!(gate.wait_arrival(), 1, "its connect came to the gate");
        assert!(listener.accept().is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock), "nothing connected yet");
        gate.open();
        listener.set_nonblocking(false).unwrap();
        let (mut stream, _) = listener.accept().unwrap();
        let mut said = String::new();
        stream.read_to_string(&mut said).unwrap();
        assert_eq!(said, "connected\n");
        assert!(child.wait().unwrap().success());

        let refused = Gate::default();
        let mut cmd = Command::new("bash");
        cmd.args(["-c", &script]);
        let held = refused.hold(&mut cmd).unwrap();
        let mut child = cmd.spawn().unwrap();
        held.spawned().unwrap();
        refused.wait_arrival();
        refused.refuse();
        assert!(!child.wait().unwrap().success(), "a refused gate fails the connection");
        assert!(listener.set_nonblocking(true).is_ok() && listener.accept().is_err(), "and nothing connected");
    }
}
