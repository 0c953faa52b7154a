//! The only `unsafe` of the program: the process entry point and raw Linux
//! system calls (x86_64). Errors are the kernel's negative errno values,
//! returned as positive `Errno`s.

use core::arch::{asm, global_asm};

#[cfg(not(target_arch = "x86_64"))]
compile_error!("cage-init makes raw x86_64 system calls; port src/sys.rs to this architecture");

/// A positive errno value.
pub type Errno = i32;

pub const ESRCH: Errno = 3;
pub const EINTR: Errno = 4;
pub const EBADF: Errno = 9;

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGUSR1: i32 = 10;
pub const SIGTERM: i32 = 15;
pub const SIGCHLD: i32 = 17;

const SYS_READ: usize = 0;
const SYS_WRITE: usize = 1;
const SYS_CLOSE: usize = 3;
const SYS_POLL: usize = 7;
const SYS_PREAD64: usize = 17;
const SYS_RT_SIGPROCMASK: usize = 14;
const SYS_NANOSLEEP: usize = 35;
const SYS_WAIT4: usize = 61;
const SYS_KILL: usize = 62;
const SYS_CAPSET: usize = 126;
const SYS_RT_SIGTIMEDWAIT: usize = 128;
const SYS_PRCTL: usize = 157;
const SYS_CLOCK_GETTIME: usize = 228;
const SYS_EXIT_GROUP: usize = 231;
const SYS_SIGNALFD4: usize = 289;
const SYS_MOUNT_SETATTR: usize = 442;

const PR_SET_NAME: usize = 15;
const PR_SET_NO_NEW_PRIVS: usize = 38;
const SIG_SETMASK: usize = 2;
const WNOHANG: usize = 1;
const CLOCK_MONOTONIC: usize = 1;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const CAP_SYS_ADMIN_BIT: u32 = 1 << 21;
const SFD_NONBLOCK: usize = 0o4000;
const SFD_CLOEXEC: usize = 0o2000000;
const AT_EMPTY_PATH: usize = 0x1000;
const AT_RECURSIVE: usize = 0x8000;
const POLLIN: i16 = 0x1;
const POLLPRI: i16 = 0x2;
/// The kernel's sigset_t: one bit per signal, 64 signals.
const SIGSET_SIZE: usize = 8;

// The kernel enters `_start` with argc at the stack pointer, then the argv
// pointers. Pass that address to `entry` with the stack aligned as the C ABI
// wants it at a call.
global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {entry}",
    "ud2",
    entry = sym entry,
);

/// # Safety
/// Called once, by `_start`, with the initial stack pointer.
unsafe extern "C" fn entry(sp: *const usize) -> ! {
    // SAFETY: the kernel lays out argc followed by argc argv pointers (each
    // to a NUL-terminated string) and a NULL at the initial stack pointer;
    // that memory lives as long as the process.
    let args = unsafe { Args::from_stack(sp) };
    crate::main(args)
}

/// The command-line arguments, as byte strings without their NUL.
#[derive(Clone, Copy)]
pub struct Args {
    argv: *const *const u8,
    argc: usize,
}

impl Args {
    /// # Safety
    /// `sp` must be the process's initial stack pointer.
    unsafe fn from_stack(sp: *const usize) -> Args {
        // SAFETY: per the contract, `sp` points at argc, then argv[].
        unsafe {
            Args {
                argc: *sp,
                argv: sp.add(1) as *const *const u8,
            }
        }
    }

    pub fn get(&self, i: usize) -> Option<&'static [u8]> {
        if i >= self.argc {
            return None;
        }
        // SAFETY: i < argc, so argv[i] is a valid pointer to a NUL-terminated
        // string that lives as long as the process; we read up to the NUL.
        unsafe {
            let p = *self.argv.add(i);
            if p.is_null() {
                return None;
            }
            // A volatile read keeps the compiler from turning this loop
            // into a call to libc's strlen, which is not linked.
            let mut n = 0;
            while core::ptr::read_volatile(p.add(n)) != 0 {
                n += 1;
            }
            Some(core::slice::from_raw_parts(p, n))
        }
    }
}

/// System call `n` with up to four arguments (the fifth and sixth are 0).
///
/// # Safety
/// The arguments must be valid for system call `n`.
unsafe fn syscall4(n: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
    // SAFETY: the caller vouches for the arguments; the fifth is 0.
    unsafe { syscall5(n, a, b, c, d, 0) }
}

/// System call `n` with up to five arguments (the sixth is 0).
///
/// # Safety
/// The arguments must be valid for system call `n`.
unsafe fn syscall5(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize) -> isize {
    let ret: isize;
    // SAFETY: the `syscall` instruction clobbers only rax (result), rcx and
    // r11; the caller vouches for the arguments.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            in("r10") d,
            // Calls such as prctl check that their unused arguments are 0.
            in("r8") e,
            in("r9") 0usize,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

fn result(ret: isize) -> Result<usize, Errno> {
    if ret < 0 {
        Err(-ret as Errno)
    } else {
        Ok(ret as usize)
    }
}

pub fn write(fd: i32, buf: &[u8]) -> Result<usize, Errno> {
    // SAFETY: buf is a valid readable buffer of buf.len() bytes.
    result(unsafe { syscall4(SYS_WRITE, fd as usize, buf.as_ptr() as usize, buf.len(), 0) })
}

pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: buf is a valid writable buffer of buf.len() bytes.
    result(unsafe {
        syscall4(
            SYS_READ,
            fd as usize,
            buf.as_mut_ptr() as usize,
            buf.len(),
            0,
        )
    })
}

pub fn pread(fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
    // SAFETY: buf is a valid writable buffer of buf.len() bytes.
    result(unsafe {
        syscall4(
            SYS_PREAD64,
            fd as usize,
            buf.as_mut_ptr() as usize,
            buf.len(),
            offset as usize,
        )
    })
}

pub fn close(fd: i32) {
    // SAFETY: closing a descriptor number has no memory effects.
    let _ = unsafe { syscall4(SYS_CLOSE, fd as usize, 0, 0, 0) };
}

/// A set of signals (bit `sig - 1`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SigSet(u64);

impl SigSet {
    pub const fn of(signals: &[i32]) -> SigSet {
        let mut bits = 0u64;
        let mut i = 0;
        while i < signals.len() {
            bits |= 1 << (signals[i] - 1);
            i += 1;
        }
        SigSet(bits)
    }
}

/// Replaces the signal mask with `set`.
pub fn set_mask(set: &SigSet) -> Result<(), Errno> {
    // SAFETY: valid pointer to an 8-byte kernel sigset; no old set wanted.
    result(unsafe {
        syscall4(
            SYS_RT_SIGPROCMASK,
            SIG_SETMASK,
            &set.0 as *const u64 as usize,
            0,
            SIGSET_SIZE,
        )
    })
    .map(|_| ())
}

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

/// Waits for a signal of the (blocked) `set`, at most `timeout_ms` when
/// given. Returns the signal number; `EAGAIN` on timeout.
pub fn wait_signal(set: &SigSet, timeout_ms: Option<u64>) -> Result<i32, Errno> {
    // siginfo_t is 128 bytes; si_signo is its first int.
    let mut info = [0i32; 32];
    let ts = timeout_ms.map(|ms| Timespec {
        sec: (ms / 1000) as i64,
        nsec: ((ms % 1000) * 1_000_000) as i64,
    });
    let ts_ptr = ts.as_ref().map_or(0, |t| t as *const Timespec as usize);
    // SAFETY: valid set, a 128-byte writable siginfo buffer, and a valid
    // timespec or NULL (wait forever).
    let r = unsafe {
        syscall4(
            SYS_RT_SIGTIMEDWAIT,
            &set.0 as *const u64 as usize,
            info.as_mut_ptr() as usize,
            ts_ptr,
            SIGSET_SIZE,
        )
    };
    result(r).map(|sig| sig as i32)
}

/// Reaps one exited child; false when there is none to reap now.
pub fn reap_one() -> bool {
    // SAFETY: NULL status and rusage pointers are allowed.
    let r = unsafe { syscall4(SYS_WAIT4, -1isize as usize, 0, WNOHANG, 0) };
    r > 0
}

/// True while any process other than this one exists in our PID namespace
/// (from a namespace's init, `kill(-1, 0)` fails with ESRCH exactly when
/// it is alone; EPERM counts as "someone is there").
pub fn others_exist() -> bool {
    // SAFETY: signal 0 only checks; no memory is passed.
    let r = unsafe { syscall4(SYS_KILL, -1isize as usize, 0, 0, 0) };
    result(r) != Err(ESRCH)
}

/// Milliseconds of CLOCK_MONOTONIC.
pub fn now_ms() -> u64 {
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: valid writable timespec.
    let _ = unsafe {
        syscall4(
            SYS_CLOCK_GETTIME,
            CLOCK_MONOTONIC,
            &mut ts as *mut Timespec as usize,
            0,
            0,
        )
    };
    ts.sec as u64 * 1000 + ts.nsec as u64 / 1_000_000
}

pub fn sleep_ms(ms: u64) {
    let ts = Timespec {
        sec: (ms / 1000) as i64,
        nsec: ((ms % 1000) * 1_000_000) as i64,
    };
    // SAFETY: valid timespec; NULL remainder.
    let _ = unsafe { syscall4(SYS_NANOSLEEP, &ts as *const Timespec as usize, 0, 0, 0) };
}

/// Sets `comm` (at most 15 bytes are kept).
pub fn set_name(name: &[u8]) {
    let mut buf = [0u8; 16];
    for (d, s) in buf.iter_mut().zip(name.iter().take(15)) {
        *d = *s;
    }
    // SAFETY: PR_SET_NAME reads a 16-byte NUL-terminated buffer we own.
    let _ = unsafe { syscall4(SYS_PRCTL, PR_SET_NAME, buf.as_ptr() as usize, 0, 0) };
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// no_new_privs, then no capability at all (effective, permitted,
/// inheritable) but, with `keep_admin`, `CAP_SYS_ADMIN` for the mount
/// watch. libcage already did both before the exec; doing it again here
/// makes the program safe however it is started.
pub fn drop_privileges(keep_admin: bool) -> Result<(), Errno> {
    let kept = if keep_admin { CAP_SYS_ADMIN_BIT } else { 0 };
    // SAFETY: integer arguments only.
    result(unsafe { syscall4(SYS_PRCTL, PR_SET_NO_NEW_PRIVS, 1, 0, 0) })?;
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: kept,
            permitted: kept,
            inheritable: 0,
        },
        CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        },
    ];
    // SAFETY: a valid v3 header and the two data words it asks for.
    result(unsafe {
        syscall4(
            SYS_CAPSET,
            &header as *const CapHeader as usize,
            data.as_ptr() as usize,
            0,
            0,
        )
    })
    .map(|_| ())
}

/// A non-blocking signalfd for the (blocked) `set`.
pub fn signalfd(set: &SigSet) -> Result<i32, Errno> {
    // SAFETY: a valid 8-byte kernel sigset; -1 asks for a new descriptor.
    result(unsafe {
        syscall4(
            SYS_SIGNALFD4,
            -1isize as usize,
            &set.0 as *const u64 as usize,
            SIGSET_SIZE,
            SFD_NONBLOCK | SFD_CLOEXEC,
        )
    })
    .map(|fd| fd as i32)
}

/// The next pending signal of a signalfd, if any.
pub fn read_signal(fd: i32) -> Option<i32> {
    // struct signalfd_siginfo is 128 bytes; ssi_signo is its first u32.
    let mut info = [0u8; 128];
    match read(fd, &mut info) {
        Ok(128) => Some(u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as i32),
        _ => None,
    }
}

#[repr(C)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}

/// What [`wait_events`] saw.
pub struct Events {
    pub signal: bool,
    pub mounts: bool,
}

/// Waits until `sigfd` is readable or the mount table behind `mountinfo`
/// (when given) changed, at most `timeout_ms` when given.
pub fn wait_events(
    sigfd: i32,
    mountinfo: Option<i32>,
    timeout_ms: Option<u64>,
) -> Result<Events, Errno> {
    let mut fds = [
        PollFd {
            fd: sigfd,
            events: POLLIN,
            revents: 0,
        },
        PollFd {
            // A negative descriptor is ignored by poll.
            fd: mountinfo.unwrap_or(-1),
            events: POLLPRI,
            revents: 0,
        },
    ];
    let timeout = timeout_ms.map_or(-1isize, |ms| ms.min(i32::MAX as u64) as isize);
    // SAFETY: a valid array of two pollfd structures we own.
    result(unsafe { syscall4(SYS_POLL, fds.as_mut_ptr() as usize, 2, timeout as usize, 0) })?;
    Ok(Events {
        signal: fds[0].revents != 0,
        mounts: fds[1].revents != 0,
    })
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Sets `attrs` on the mount behind `fd` and every mount below it.
pub fn set_mount_attrs(fd: i32, attrs: u64) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: attrs,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: an empty NUL-terminated path with AT_EMPTY_PATH names `fd`;
    // a valid mount_attr of the size passed.
    result(unsafe {
        syscall5(
            SYS_MOUNT_SETATTR,
            fd as usize,
            c"".as_ptr() as usize,
            AT_EMPTY_PATH | AT_RECURSIVE,
            &attr as *const MountAttr as usize,
            core::mem::size_of::<MountAttr>(),
        )
    })
    .map(|_| ())
}

/// `memset`, which the compiler calls to zero buffers; there is no libc.
/// Volatile writes keep the compiler from turning this loop back into a
/// call to itself.
///
/// # Safety
/// `dest` must be valid for `n` bytes of writes.
#[cfg(not(test))]
#[no_mangle]
pub unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: i < n and the caller vouches for n bytes at dest.
        unsafe { core::ptr::write_volatile(dest.add(i), c as u8) };
    }
    dest
}

pub fn exit(code: i32) -> ! {
    loop {
        // SAFETY: exit_group never returns.
        unsafe { syscall4(SYS_EXIT_GROUP, code as usize, 0, 0, 0) };
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(crate::EXIT_PANIC)
}
