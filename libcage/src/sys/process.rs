//! Process-level calls rustix does not wrap safely: fork, signal masks,
//! sigwaitinfo, the session keyring, and descriptor hygiene.

use std::io;
use std::os::fd::RawFd;

use super::cvt;

pub enum Fork {
    Child,
    Parent(i32),
}

/// `fork(2)`.
///
/// # Safety
/// The caller must be single-threaded (checked by [`thread_count`] before
/// any cage work), so the child may allocate and run arbitrary Rust code.
pub unsafe fn fork() -> io::Result<Fork> {
    // SAFETY: the caller guarantees a single-threaded process.
    let pid = cvt(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Fork::Child
    } else {
        Fork::Parent(pid)
    })
}

/// `_exit(2)`: leave without running the host program's atexit handlers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Reads a small procfs file in one go (procfs reports size 0, so the
/// standard library would grow its buffer from 32 bytes).
pub fn read_proc(path: &str) -> io::Result<String> {
    use std::io::Read;
    let mut buf = String::with_capacity(4096);
    std::fs::File::open(path)?.read_to_string(&mut buf)?;
    Ok(buf)
}

/// Number of threads of this process: the entries of `/proc/self/task`
/// (cheaper than formatting `/proc/self/status`).
pub fn thread_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// A signal set.
#[derive(Clone, Copy)]
pub struct SigSet(libc::sigset_t);

impl SigSet {
    pub fn new(signals: &[i32]) -> SigSet {
        // SAFETY: sigemptyset initialises the zeroed set; sigaddset only
        // writes into it.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &s in signals {
                libc::sigaddset(&mut set, s);
            }
            SigSet(set)
        }
    }
}

/// Blocks `set`, returning the previous mask.
pub fn block(set: &SigSet) -> io::Result<SigSet> {
    // SAFETY: zeroed sigset_t is a valid out value.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to initialised sets.
    let rc = unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set.0, &mut old) };
    cvt(rc)?;
    Ok(SigSet(old))
}

/// Replaces the signal mask with `set`.
pub fn set_mask(set: &SigSet) -> io::Result<()> {
    // SAFETY: valid pointer to an initialised set; old mask not requested.
    cvt(unsafe { libc::sigprocmask(libc::SIG_SETMASK, &set.0, std::ptr::null_mut()) }).map(|_| ())
}

pub struct SigInfo {
    pub signo: i32,
    pub code: i32,
}

/// Waits for one of the (blocked) signals in `set`; `None` on timeout.
pub fn wait_signal(set: &SigSet, timeout_ms: Option<u64>) -> io::Result<Option<SigInfo>> {
    // SAFETY: zeroed siginfo_t is a valid out value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = match timeout_ms {
        None => {
            // SAFETY: valid set and out pointer.
            unsafe { libc::sigwaitinfo(&set.0, &mut info) }
        }
        Some(ms) => {
            let ts = libc::timespec {
                tv_sec: (ms / 1000) as libc::time_t,
                tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
            };
            // SAFETY: valid set, out pointer and timespec.
            unsafe { libc::sigtimedwait(&set.0, &mut info, &ts) }
        }
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
            _ => Err(e),
        };
    }
    Ok(Some(SigInfo {
        signo: info.si_signo,
        code: info.si_code,
    }))
}

/// Resets `sig` to its default disposition.
pub fn default_disposition(sig: i32) {
    // SAFETY: SIG_DFL is always a valid handler for a valid signal number.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

/// `kill(pid, sig)`; `Ok(false)` when no such process (ESRCH).
pub fn kill(pid: i32, sig: i32) -> io::Result<bool> {
    // SAFETY: kill has no memory-safety preconditions.
    match cvt(unsafe { libc::kill(pid, sig) }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Joins a fresh anonymous session keyring (`KEYCTL_JOIN_SESSION_KEYRING`).
pub fn join_new_session_keyring() -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: a NULL name asks the kernel for a new anonymous keyring.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Sets this process's name (`comm`, first 15 bytes).
pub fn set_name(name: &str) {
    let mut bytes = [0u8; 16];
    for (d, s) in bytes.iter_mut().zip(name.bytes().take(15)) {
        *d = s;
    }
    // SAFETY: PR_SET_NAME reads a 16-byte NUL-terminated buffer we own.
    unsafe { libc::prctl(libc::PR_SET_NAME, bytes.as_ptr()) };
}

/// The first descriptor that is an inheritable (no `FD_CLOEXEC`) directory,
/// which would let code in the cage `fchdir` back to the host.
pub fn inheritable_dir_fd() -> io::Result<Option<RawFd>> {
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Ok(fd) = entry?.file_name().to_string_lossy().parse::<RawFd>() else {
            continue;
        };
        // SAFETY: fcntl on any integer is memory-safe; a closed fd gives EBADF.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 || flags & libc::FD_CLOEXEC != 0 {
            continue;
        }
        // SAFETY: zeroed stat is a valid out value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid out pointer; fd may be closed by now (then -1).
        if unsafe { libc::fstat(fd, &mut st) } == 0 && st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            return Ok(Some(fd));
        }
    }
    Ok(None)
}

/// Closes every descriptor from 3 up, except `keep`.
pub fn close_fds_except(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.to_vec();
    keep.sort_unstable();
    let mut next: u32 = 3;
    for &k in &keep {
        if k < 3 {
            continue;
        }
        if (k as u32) > next {
            // SAFETY: close_range on a range of our own fds, nothing else
            // in this single-threaded process refers to them afterwards.
            unsafe { libc::syscall(libc::SYS_close_range, next, k as u32 - 1, 0) };
        }
        next = k as u32 + 1;
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, next, u32::MAX, 0) };
}

/// Points fds 0, 1 and 2 at `/dev/null` (of the current root).
pub fn stdio_to_null() {
    // SAFETY: open of a static path; dup2 onto the standard descriptors.
    unsafe {
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if fd >= 0 {
            for t in 0..3 {
                libc::dup2(fd, t);
            }
            if fd > 2 {
                libc::close(fd);
            }
        }
    }
}

/// Sets `PR_SET_PDEATHSIG` for this process.
pub fn die_with_parent(sig: i32) -> io::Result<()> {
    // SAFETY: prctl with an integer argument.
    cvt(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong) }).map(|_| ())
}

/// `ioctl(fd, NS_GET_NSTYPE)`: the `CLONE_NEW*` type of a namespace fd.
pub fn ns_type(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<i32> {
    use std::os::fd::AsRawFd;
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: NS_GET_NSTYPE takes no argument and only returns an int.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) })
}

/// `unshare(flags)`.
///
/// # Safety
/// The caller must be single-threaded and must not pass `CLONE_FILES`.
pub unsafe fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: per this function's contract.
    cvt(unsafe { libc::unshare(flags) }).map(|_| ())
}

/// Drops to `uid`/`gid` with supplementary `groups` (for all threads: glibc's
/// setgroups/setgid/setuid). Verifies the change stuck.
pub fn become_user(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    // SAFETY: groups points to groups.len() valid gid_t values.
    cvt(unsafe { libc::setgroups(groups.len(), groups.as_ptr()) })?;
    // SAFETY: plain integer argument.
    cvt(unsafe { libc::setgid(gid) })?;
    // SAFETY: plain integer argument.
    cvt(unsafe { libc::setuid(uid) })?;
    // SAFETY: plain calls without arguments.
    let (ruid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    // SAFETY: plain integer argument; must fail once privileges are gone.
    let regained = uid != 0 && cvt(unsafe { libc::setuid(0) }).is_ok();
    if ruid != uid || euid != uid || regained {
        return Err(io::Error::other("failed to drop privileges"));
    }
    Ok(())
}

/// Exit status of a forked child whose body panicked.
pub const CHILD_PANICKED: i32 = 70;

/// Runs the body of a forked child and leaves with the status it returns:
/// the child never returns into the caller's code (sshd's, suexec's). A
/// panic is caught, logged to syslog with `what`, and ends the child with
/// [`CHILD_PANICKED`].
pub fn run_child(what: &str, body: impl FnOnce() -> i32) -> ! {
    let code = guard_child(what, body);
    exit_now(code)
}

/// For a forked child that goes on into the caller's code once `body`
/// succeeded (the join child): a panic in `body` is caught, logged, and
/// ends the child with [`CHILD_PANICKED`] instead of unwinding into the
/// caller's stack.
pub fn guard_child<T>(what: &str, body: impl FnOnce() -> T) -> T {
    match crate::panic_guard::catch(body) {
        Ok(v) => v,
        Err(msg) => {
            super::syslog::send(
                super::syslog::Priority::Err,
                &format!(
                    "libcage: panic in the {what} child (pid {}): {msg}",
                    std::process::id()
                ),
            );
            exit_now(CHILD_PANICKED)
        }
    }
}

/// Writes `data` to descriptor `fd` (best effort), for a child reporting on
/// a pipe it placed at a fixed number.
pub fn write_fd(fd: RawFd, data: &[u8]) {
    // SAFETY: write(2) reads `data.len()` bytes from a valid slice; an
    // unusable descriptor only makes it fail.
    let _ = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
}

/// Replaces this process with the program open at `exe` (`execveat` with
/// `AT_EMPTY_PATH`, so it works after `pivot_root` and from a root without
/// the file), with `argv`, an empty environment, `fds[i]` as descriptor
/// `3 + i` and every other descriptor above 2 closed. Returns only on
/// failure; the descriptors are then already in place (`fds[0]` is 3).
pub fn exec_program(
    exe: std::os::fd::BorrowedFd<'_>,
    argv: &[&str],
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> io::Error {
    use std::os::fd::AsRawFd;
    let args: Vec<std::ffi::CString> = match argv.iter().map(|a| super::cstring(a)).collect() {
        Ok(a) => a,
        Err(e) => return e,
    };
    let mut arg_ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    arg_ptrs.push(std::ptr::null());
    let env: [*const libc::c_char; 1] = [std::ptr::null()];
    // Copy everything above the target numbers first, so placing one
    // descriptor never closes another we still need.
    let base = 3 + fds.len() as libc::c_int;
    let dup_high = |fd: RawFd| -> io::Result<RawFd> {
        // SAFETY: F_DUPFD_CLOEXEC on a descriptor we were lent; the copy is
        // ours and is closed by close_fds_except or the exec.
        cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, base) })
    };
    let exe_fd = match dup_high(exe.as_raw_fd()) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    let mut high = Vec::with_capacity(fds.len());
    for fd in fds {
        match dup_high(fd.as_raw_fd()) {
            Ok(h) => high.push(h),
            Err(e) => return e,
        }
    }
    for (i, &h) in high.iter().enumerate() {
        // SAFETY: dup2 onto a fixed number; the new descriptor has no
        // FD_CLOEXEC, so the program inherits it.
        if let Err(e) = cvt(unsafe { libc::dup2(h, 3 + i as libc::c_int) }) {
            return e;
        }
    }
    let mut keep: Vec<RawFd> = (3..base).collect();
    keep.push(exe_fd);
    close_fds_except(&keep);
    // SAFETY: argv and envp are NULL-terminated arrays of valid C strings
    // that outlive the call; an empty path with AT_EMPTY_PATH runs `exe_fd`.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            exe_fd,
            c"".as_ptr(),
            arg_ptrs.as_ptr(),
            env.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// Waits until the process behind `pidfd` has exited, at most `timeout_ms`.
/// True when it has.
pub fn wait_pidfd_exit(pidfd: std::os::fd::BorrowedFd<'_>, timeout_ms: i32) -> bool {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let rc = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    rc == 1 && p.revents & libc::POLLIN != 0
}
