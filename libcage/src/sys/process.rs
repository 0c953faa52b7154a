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

/// Number of threads of this process: field 20 of `/proc/self/stat`, in
/// one open and read (listing `/proc/self/task` takes five calls).
pub fn thread_count() -> io::Result<usize> {
    use rustix::fs::{Mode, OFlags};
    let f = rustix::fs::open(
        "/proc/self/stat",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut buf = [0u8; 1024];
    let n = rustix::io::read(&f, &mut buf)?;
    num_threads(&buf[..n]).ok_or_else(|| io::Error::other("malformed /proc/self/stat"))
}

/// Field 20 (`num_threads`) of a `/proc/PID/stat` line; fields are counted
/// after the name's closing parenthesis (the name may hold spaces and `)`).
fn num_threads(stat: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(stat).ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    rest.split_whitespace().nth(17)?.parse().ok()
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

/// Makes sure this process never dumps core: not dumpable (which also
/// stops a piped `core_pattern` handler) and `RLIMIT_CORE` 0. For a root
/// process about to die by a signal its caged child chose.
pub fn no_core_dump() {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads a valid rlimit we own; PR_SET_DUMPABLE takes
    // an integer argument.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        libc::prctl(libc::PR_SET_DUMPABLE, 0);
    }
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

/// What a descriptor refers to, as far as the entry check cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdKind {
    Dir,
    Regular,
    Block,
    /// A character device: `tty` when it is a terminal, `memory` for the
    /// harmless memory devices (`/dev/null`, `zero`, `full`, `random`,
    /// `urandom`).
    Char {
        tty: bool,
        memory: bool,
    },
    Symlink,
    /// Pipes, sockets, anonymous inodes (eventfd, pidfd, epoll, ...).
    Other,
}

/// One open descriptor of this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdInfo {
    pub fd: RawFd,
    pub cloexec: bool,
    pub o_path: bool,
    pub readable: bool,
    pub kind: FdKind,
}

/// Which descriptors an entry must refuse: it depends on who will run the
/// user's code with them (see SECURITY.md "Descriptors").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdPolicy {
    /// The caller execs the user's program (suexec, `cage-admin enter`,
    /// the C API's default mode): what survives exec reaches user code.
    Exec,
    /// The caller becomes the user's code without exec (FPM workers,
    /// mpm-itk children, `CAGE_ENTER_IN_PROCESS`): every descriptor does.
    InProcess,
    /// A PAM-style session (children-only mode): the calling daemon (sshd,
    /// cron, atd) stays trusted code outside the user's control; it forks
    /// the user's program later and hands it the descriptors it means to
    /// (atd gives the job file as stdin, cron a temporary file for the
    /// job's output). Only descriptors that open a way into the host's
    /// tree if they are inherited are refused: directories and `O_PATH`.
    Session,
}

/// Why `fd` must not go into a cage, if it must not (see SECURITY.md
/// "Descriptors"). Every descriptor open at entry was opened on the host,
/// so each one that names a file does so outside the cage's view.
///
/// - kept across exec (no `FD_CLOEXEC`), or any descriptor at all when the
///   caller stays in process (never execs): an `O_PATH` descriptor of
///   anything (reopened through `/proc/self/fd/N`) and a directory
///   (`fchdir`, `openat(fd, "..")`) are refused;
/// - kept across exec, from fd 3 up, except in a session: a regular file
///   open for reading, a block device and a character device other than a
///   terminal or a memory device are refused too. Write-only files (logs),
///   pipes, sockets, terminals, `/dev/null` and anonymous inodes pass, and
///   fds 0 to 2 may be any non-directory file (`cmd < file`, a CGI's error
///   log).
pub fn fd_verdict(i: &FdInfo, policy: FdPolicy) -> Option<&'static str> {
    if i.cloexec && policy != FdPolicy::InProcess {
        return None;
    }
    if i.o_path {
        return Some("O_PATH descriptor");
    }
    if i.kind == FdKind::Dir {
        return Some("directory");
    }
    if i.cloexec || policy == FdPolicy::Session {
        return None;
    }
    match i.kind {
        FdKind::Block => Some("block device"),
        FdKind::Char { tty, memory } if !tty && !memory => Some("device"),
        FdKind::Regular if i.fd > 2 && i.readable => Some("file open for reading"),
        _ => None,
    }
}

fn fd_info(fd: RawFd) -> Option<FdInfo> {
    // SAFETY: fcntl on any integer is memory-safe; a closed fd gives EBADF.
    let fdflags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    // SAFETY: as above.
    let flflags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if fdflags < 0 || flflags < 0 {
        return None;
    }
    // SAFETY: zeroed stat is a valid out value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid out pointer; fstat works on O_PATH descriptors too.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    let o_path = flflags & libc::O_PATH != 0;
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => FdKind::Dir,
        libc::S_IFREG => FdKind::Regular,
        libc::S_IFBLK => FdKind::Block,
        libc::S_IFLNK => FdKind::Symlink,
        libc::S_IFCHR => FdKind::Char {
            // SAFETY: isatty only queries the descriptor.
            tty: !o_path && unsafe { libc::isatty(fd) } == 1,
            memory: libc::major(st.st_rdev) == 1
                && matches!(libc::minor(st.st_rdev), 3 | 5 | 7 | 8 | 9),
        },
        _ => FdKind::Other,
    };
    let acc = flflags & libc::O_ACCMODE;
    Some(FdInfo {
        fd,
        cloexec: fdflags & libc::FD_CLOEXEC != 0,
        o_path,
        readable: acc == libc::O_RDONLY || acc == libc::O_RDWR,
        kind,
    })
}

/// The open descriptors of this process, lowest first.
pub fn open_fds() -> io::Result<Vec<RawFd>> {
    // The directory's own descriptor is in the list but closed by the time
    // anyone looks at it (fcntl then fails and it is skipped).
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        if let Ok(fd) = entry?.file_name().to_string_lossy().parse::<RawFd>() {
            fds.push(fd);
        }
    }
    fds.sort_unstable();
    Ok(fds)
}

/// Guards the descriptors before an entry: the first one that would lead
/// out of the cage ([`fd_verdict`]), with a description naming what it is
/// and its path, refuses the entry. In a session, a descriptor the exec
/// rule would refuse but a session allows (a daemon's readable file from
/// fd 3 up, a device) is made close-on-exec instead: the daemon itself
/// still uses it, copies it makes onto fds 0-2 (`dup2`) are inheritable as
/// before, and one it forgot to close never reaches the user's program.
pub fn guard_fds(policy: FdPolicy) -> io::Result<Option<(RawFd, String)>> {
    for fd in open_fds()? {
        let Some(info) = fd_info(fd) else { continue };
        if let Some(what) = fd_verdict(&info, policy) {
            let path = std::fs::read_link(format!("/proc/self/fd/{fd}"))
                .map_or_else(|_| "?".to_string(), |p| p.display().to_string());
            let flags = if info.cloexec {
                "close-on-exec"
            } else {
                "inheritable"
            };
            return Ok(Some((fd, format!("{flags} {what} {path}"))));
        }
        if policy == FdPolicy::Session && fd_verdict(&info, FdPolicy::Exec).is_some() {
            // SAFETY: fcntl on an open descriptor of this process; setting
            // FD_CLOEXEC changes nothing but its fate at exec.
            if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(None)
}

/// A descriptor that receives the (blocked) signals of `set`
/// (`signalfd`, close-on-exec, non-blocking).
pub fn signal_fd(set: &SigSet) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: a valid set; -1 asks for a new descriptor.
    let fd = cvt(unsafe { libc::signalfd(-1, &set.0, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) })?;
    // SAFETY: signalfd returned a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Reads one signal from a [`signal_fd`]; `None` when none is pending.
pub fn read_signal(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<Option<SigInfo>> {
    use std::os::fd::AsRawFd;
    // SAFETY: zeroed signalfd_siginfo is a valid out value.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: reads at most `size` bytes into `info`, which we own.
    let n = unsafe {
        libc::read(
            fd.as_raw_fd(),
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            size,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
            _ => Err(e),
        };
    }
    if n as usize != size {
        return Ok(None);
    }
    Ok(Some(SigInfo {
        signo: info.ssi_signo as i32,
        code: info.ssi_code,
    }))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_from_stat() {
        let line = b"4242 (a) b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 12345 1000 10 18446744073709551615";
        assert_eq!(num_threads(line), Some(3));
        assert_eq!(num_threads(b"4242 (x"), None);
        // This test process: the harness runs tests on threads.
        assert!(thread_count().unwrap() >= 1);
    }

    fn info(fd: RawFd, cloexec: bool, o_path: bool, readable: bool, kind: FdKind) -> FdInfo {
        FdInfo {
            fd,
            cloexec,
            o_path,
            readable,
            kind,
        }
    }

    const TTY: FdKind = FdKind::Char {
        tty: true,
        memory: false,
    };
    const NULL: FdKind = FdKind::Char {
        tty: false,
        memory: true,
    };
    const DEV: FdKind = FdKind::Char {
        tty: false,
        memory: false,
    };

    #[test]
    fn inheritable_descriptors() {
        let v = |i: FdInfo| fd_verdict(&i, FdPolicy::Exec);
        // Refused: O_PATH of anything, directories, readable files from 3 up.
        assert_eq!(
            v(info(5, false, true, true, FdKind::Regular)),
            Some("O_PATH descriptor")
        );
        assert_eq!(
            v(info(0, false, true, true, FdKind::Other)),
            Some("O_PATH descriptor")
        );
        assert_eq!(
            v(info(4, false, false, true, FdKind::Dir)),
            Some("directory")
        );
        assert_eq!(
            v(info(1, false, false, false, FdKind::Dir)),
            Some("directory")
        );
        assert_eq!(
            v(info(3, false, false, true, FdKind::Regular)),
            Some("file open for reading")
        );
        assert_eq!(
            v(info(7, false, false, false, FdKind::Block)),
            Some("block device")
        );
        assert_eq!(v(info(2, false, false, true, DEV)), Some("device"));
        // Allowed: write-only files, files on 0-2, ttys, /dev/null, pipes.
        assert_eq!(v(info(3, false, false, false, FdKind::Regular)), None);
        assert_eq!(v(info(0, false, false, true, FdKind::Regular)), None);
        assert_eq!(v(info(0, false, false, true, TTY)), None);
        assert_eq!(v(info(9, false, false, true, TTY)), None);
        assert_eq!(v(info(1, false, false, true, NULL)), None);
        assert_eq!(v(info(6, false, false, true, FdKind::Other)), None);
        // Close-on-exec descriptors are gone at exec.
        for kind in [FdKind::Dir, FdKind::Regular, FdKind::Block, DEV] {
            assert_eq!(v(info(5, true, false, true, kind)), None);
            assert_eq!(v(info(5, true, true, true, kind)), None);
        }
    }

    #[test]
    fn in_process_callers() {
        let v = |i: FdInfo| fd_verdict(&i, FdPolicy::InProcess);
        // Close-on-exec does not help a caller that never execs.
        assert_eq!(
            v(info(5, true, false, true, FdKind::Dir)),
            Some("directory")
        );
        assert_eq!(
            v(info(5, true, true, false, FdKind::Regular)),
            Some("O_PATH descriptor")
        );
        // Its other close-on-exec descriptors are its own business.
        assert_eq!(v(info(5, true, false, true, FdKind::Regular)), None);
        assert_eq!(v(info(5, true, false, true, FdKind::Other)), None);
        // Inheritable ones are checked as for everyone.
        assert_eq!(
            v(info(5, false, false, true, FdKind::Regular)),
            Some("file open for reading")
        );
    }

    #[test]
    fn session_callers() {
        let v = |i: FdInfo| fd_verdict(&i, FdPolicy::Session);
        // A way into the host's tree is refused when it is inherited.
        assert_eq!(
            v(info(5, false, false, true, FdKind::Dir)),
            Some("directory")
        );
        assert_eq!(
            v(info(4, false, true, true, FdKind::Regular)),
            Some("O_PATH descriptor")
        );
        // The daemon's own files (atd's job file, cron's output file) are
        // the daemon's to hand over (guard_fds makes them close-on-exec;
        // its dup2 copies on fds 0-2 stay); close-on-exec ones go at exec.
        assert_eq!(v(info(5, false, false, true, FdKind::Regular)), None);
        assert_eq!(v(info(6, false, false, true, FdKind::Regular)), None);
        assert_eq!(v(info(7, false, false, true, DEV)), None);
        assert_eq!(v(info(5, true, false, true, FdKind::Dir)), None);
        assert_eq!(v(info(5, true, true, true, FdKind::Regular)), None);
    }

    #[test]
    fn sessions_seal_what_exec_would_refuse() {
        use std::os::fd::AsRawFd;
        // Inheritable, readable, from fd 3 up: refused for exec callers,
        // made close-on-exec for a session.
        let f = rustix::fs::open(
            "/etc/passwd",
            rustix::fs::OFlags::RDONLY,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        let fd = f.as_raw_fd();
        assert!(!fd_info(fd).unwrap().cloexec);
        // Another test of this process may hold an inheritable directory
        // for a moment (the guard stops there): try again until it is gone.
        for _ in 0..1000 {
            if guard_fds(FdPolicy::Session).unwrap().is_none() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(fd_info(fd).unwrap().cloexec);
    }

    #[test]
    fn real_descriptors_are_classified() {
        use std::os::fd::AsRawFd;
        let dir =
            rustix::fs::open("/", rustix::fs::OFlags::RDONLY, rustix::fs::Mode::empty()).unwrap();
        let i = fd_info(dir.as_raw_fd()).unwrap();
        assert_eq!((i.kind, i.cloexec, i.o_path), (FdKind::Dir, false, false));
        let p = rustix::fs::open(
            "/etc/passwd",
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        let i = fd_info(p.as_raw_fd()).unwrap();
        assert_eq!((i.kind, i.cloexec, i.o_path), (FdKind::Regular, true, true));
        let n = rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::WRONLY,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        let i = fd_info(n.as_raw_fd()).unwrap();
        assert_eq!(i.kind, NULL);
        assert!(!i.readable);
    }
}
