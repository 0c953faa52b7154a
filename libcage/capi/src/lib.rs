//! libcage.so: the C ABI over the cage core (DESIGN.md "C API").
//!
//! Every exported function runs inside [`boundary::run`]: panics are caught,
//! NULL and malformed arguments are refused with `CAGE_ERR_INVALID`, the
//! detail of a failure is kept per thread for `cage_last_error` and logged to
//! syslog (authpriv) with the user and the reason. Nothing is printed and no
//! environment variable is read. `include/libcage.h` is generated from this
//! file by cbindgen (`tests/header.rs` checks it is current).

mod boundary;

use std::ffi::{c_char, c_int, c_uint, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use libcage::cage::{self, Mode, Outcome, Request, Terminal, Who};
use libcage::config::ConfigDir;
use libcage::error::code;
use libcage::policy::Decision;

use boundary::{c_str, Call, Failure};

/// Version of this ABI; raised on any incompatible change.
pub const CAGE_ABI_VERSION: c_uint = 1;

/// `cage_enter*` flag: PAM style. The calling process itself joins the
/// cage's mount and IPC namespaces and the children it forks afterwards are
/// born in the cage's PID namespace; no supervisor is created.
pub const CAGE_ENTER_CHILDREN_ONLY: c_uint = 1;

/// `cage_enter*` flag: the caller goes on running its own code in the cage
/// without `exec` (a PHP-FPM worker, an mpm-itk child). Close-on-exec does
/// not protect it, so every directory and `O_PATH` descriptor it holds is
/// refused (`CAGE_ERR_LEAKED_FD`), whatever its flags.
pub const CAGE_ENTER_IN_PROCESS: c_uint = 2;

/// `cage_enter*` flag, default mode only: when any of fds 0-2 is a
/// terminal, the child gets a fresh pty of the cage as its controlling
/// terminal on those descriptors, and the supervisor relays it to the
/// caller's terminal (raw mode while the child runs, window size
/// followed), as `su --pty` and sudo's `use_pty` do. The caller's
/// terminal is read only until the child exits, so nothing the user
/// leaves behind can read or inject what is typed afterwards. Without
/// this flag the child still gets a session of its own (`setsid`, no
/// controlling terminal, so no `TIOCSTI` into the caller's terminal), but
/// keeps fds 0-2 as they are: a caller whose descriptors may be a
/// terminal should pass this flag or point them elsewhere.
pub const CAGE_ENTER_PTY: c_uint = 4;

/// Result codes of the `cage_*` functions, which return them as `int`:
/// `CAGE_OK`, `CAGE_NOT_CAGED`, or a negative `CAGE_ERR_*` on failure.
#[repr(C)]
#[allow(non_camel_case_types, clippy::enum_variant_names)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cage_result {
    /// Success: the caller is now in the cage.
    CAGE_OK = 0,
    /// The user is not caged; nothing was changed.
    CAGE_NOT_CAGED = 1,
    /// An argument is NULL, empty or malformed (unknown flags, relative path).
    CAGE_ERR_INVALID = -1,
    /// Configuration that concerns this user is malformed.
    CAGE_ERR_CONFIG = -2,
    /// NSS does not know the user.
    CAGE_ERR_NO_USER = -3,
    /// The process has more than one thread; nothing was changed.
    CAGE_ERR_THREADS = -4,
    /// The cage could not be built.
    CAGE_ERR_BUILD = -5,
    /// The existing cage could not be joined.
    CAGE_ERR_JOIN = -6,
    /// A system call failed.
    CAGE_ERR_SYSTEM = -7,
    /// Not called as root.
    CAGE_ERR_PERM = -8,
    /// The caller holds a descriptor that leads outside the cage: an
    /// inheritable directory or `O_PATH` descriptor (any descriptor of
    /// either kind with `CAGE_ENTER_IN_PROCESS`), or, kept across exec from
    /// fd 3 up, a file open for reading, a block device or a character
    /// device other than a terminal or `/dev/null`-like memory device.
    /// `cage_last_error` names the descriptor and its path.
    CAGE_ERR_LEAKED_FD = -9,
    /// Internal error (a bug in libcage); nothing can be assumed.
    CAGE_ERR_PANIC = -10,
    /// A path controlled by the user (a symlink, a wrong owner) was refused.
    CAGE_ERR_HOSTILE_PATH = -11,
}

use cage_result::*;

/// Every result code, lowest first.
const CODES: [cage_result; 13] = [
    CAGE_ERR_HOSTILE_PATH,
    CAGE_ERR_PANIC,
    CAGE_ERR_LEAKED_FD,
    CAGE_ERR_PERM,
    CAGE_ERR_SYSTEM,
    CAGE_ERR_JOIN,
    CAGE_ERR_BUILD,
    CAGE_ERR_THREADS,
    CAGE_ERR_NO_USER,
    CAGE_ERR_CONFIG,
    CAGE_ERR_INVALID,
    CAGE_OK,
    CAGE_NOT_CAGED,
];

// The header spells out the core's codes as literals; they must agree.
const _: () = {
    assert!(CAGE_OK as c_int == code::OK);
    assert!(CAGE_NOT_CAGED as c_int == code::NOT_CAGED);
    assert!(CAGE_ERR_INVALID as c_int == code::INVALID);
    assert!(CAGE_ERR_CONFIG as c_int == code::CONFIG);
    assert!(CAGE_ERR_NO_USER as c_int == code::NO_USER);
    assert!(CAGE_ERR_THREADS as c_int == code::THREADS);
    assert!(CAGE_ERR_BUILD as c_int == code::BUILD);
    assert!(CAGE_ERR_JOIN as c_int == code::JOIN);
    assert!(CAGE_ERR_SYSTEM as c_int == code::SYSTEM);
    assert!(CAGE_ERR_PERM as c_int == code::PERM);
    assert!(CAGE_ERR_LEAKED_FD as c_int == code::LEAKED_FD);
    assert!(CAGE_ERR_PANIC as c_int == code::PANIC);
    assert!(CAGE_ERR_HOSTILE_PATH as c_int == code::HOSTILE_PATH);
};

/// How `flags` ask to enter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Flags {
    mode: Mode,
    in_process: bool,
    terminal: Terminal,
}

fn parse_flags(flags: c_uint) -> Result<Flags, Failure> {
    let unknown = flags & !(CAGE_ENTER_CHILDREN_ONLY | CAGE_ENTER_IN_PROCESS | CAGE_ENTER_PTY);
    if unknown != 0 {
        return Err(Failure::invalid(format!("unknown flags {unknown:#x}")));
    }
    let mode = if flags & CAGE_ENTER_CHILDREN_ONLY != 0 {
        Mode::ChildrenOnly
    } else {
        Mode::Supervise
    };
    if mode == Mode::ChildrenOnly && flags & CAGE_ENTER_PTY != 0 {
        return Err(Failure::invalid(
            "CAGE_ENTER_PTY needs the default (supervised) mode, not CAGE_ENTER_CHILDREN_ONLY",
        ));
    }
    Ok(Flags {
        mode,
        in_process: flags & CAGE_ENTER_IN_PROCESS != 0,
        terminal: if flags & CAGE_ENTER_PTY != 0 {
            Terminal::Relay
        } else {
            Terminal::Detach
        },
    })
}

/// The configuration directory argument of the `_at` variants.
///
/// # Safety
/// As [`c_str`].
unsafe fn config_arg(p: *const c_char) -> Result<ConfigDir, Failure> {
    // SAFETY: forwarded from the caller's contract.
    let c = unsafe { c_str(p, "config_dir") }?;
    let path = Path::new(OsStr::from_bytes(c.to_bytes()));
    if !path.is_absolute() {
        return Err(Failure::invalid(format!(
            "config_dir {} is not an absolute path",
            path.display()
        )));
    }
    // A directory that is not there would read as "no configuration",
    // i.e. nobody caged: fail closed instead.
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(ConfigDir::new(path)),
        Ok(_) => Err(Failure::config(format!(
            "config_dir {} is not a directory",
            path.display()
        ))),
        Err(e) => Err(Failure::config(format!(
            "config_dir {}: {e}",
            path.display()
        ))),
    }
}

/// The user name argument.
///
/// # Safety
/// As [`c_str`].
unsafe fn user_arg<'a>(p: *const c_char) -> Result<&'a str, Failure> {
    // SAFETY: forwarded from the caller's contract.
    let c: &'a CStr = unsafe { c_str(p, "name") }?;
    let name = c
        .to_str()
        .map_err(|_| Failure::invalid("name is not valid UTF-8"))?;
    if name.is_empty() {
        return Err(Failure::invalid("name is empty"));
    }
    Ok(name)
}

fn check_ids(uid: libc::uid_t, gid: libc::gid_t) -> Result<(), Failure> {
    if uid == libc::uid_t::MAX {
        return Err(Failure::invalid("uid is (uid_t)-1"));
    }
    if gid == libc::gid_t::MAX {
        return Err(Failure::invalid("gid is (gid_t)-1"));
    }
    Ok(())
}

/// The common body of the `cage_enter*` functions.
fn enter(config: &ConfigDir, who: Who<'_>, flags: c_uint) -> Result<c_int, Failure> {
    let f = parse_flags(flags)?;
    let tag = boundary::tag();
    let req = Request {
        config,
        who,
        mode: f.mode,
        service: &tag,
        min_uid: None,
        in_process: f.in_process,
        terminal: f.terminal,
    };
    // The core logs the entry line and any failure under `tag`.
    match cage::enter(&req).map_err(Failure::logged)? {
        Outcome::NotCaged(..) => Ok(CAGE_NOT_CAGED as c_int),
        Outcome::Entered(_) => Ok(CAGE_OK as c_int),
    }
}

fn user_enabled(config: &ConfigDir, uid: libc::uid_t) -> Result<c_int, Failure> {
    if uid == libc::uid_t::MAX {
        return Err(Failure::invalid("uid is (uid_t)-1"));
    }
    match cage::decide(config, Who::Uid(uid), None)? {
        (_, Decision::Caged) => Ok(1),
        (_, Decision::NotCaged(_)) => Ok(0),
    }
}

/// Puts the calling process into the cage of the user `uid`, using the
/// configuration in `/etc/cage`. Call as root, single-threaded, before
/// `setgid`/`setuid`; `gid` is the group the caller will switch to.
///
/// By default this returns `CAGE_OK` in a new child inside the cage's PID
/// namespace, while the original process stays outside as a transparent
/// supervisor: it forwards signals and exits with the child's status (or
/// dies by the same signal). The child is the leader of a new session
/// (`setsid`): it has no controlling terminal, and the caller's terminal
/// never becomes one of the user's (see `CAGE_ENTER_PTY`). The child gets `PR_SET_PDEATHSIG(SIGKILL)`;
/// the kernel clears that setting when the child changes its uid or gid,
/// so after `setuid` re-arm it and check that the supervisor still lives:
/// `prctl(PR_SET_PDEATHSIG, SIGKILL); if (getppid() != 0) _exit(1);`
/// (the supervisor is outside the cage, so `getppid()` is 0 while it
/// lives). With `CAGE_ENTER_CHILDREN_ONLY` the calling process joins the
/// cage itself and only its future children are born in the cage's PID
/// namespace; the caller must then start the user's processes in a new
/// session (`setsid`) or on a pty of their own, never on its terminal.
///
/// Descriptors: see `CAGE_ERR_LEAKED_FD` and `CAGE_ENTER_IN_PROCESS`.
///
/// Returns `CAGE_OK`, `CAGE_NOT_CAGED` (nothing changed) or a negative
/// `CAGE_ERR_*` code; on failure do not run the user's code.
#[no_mangle]
pub extern "C" fn cage_enter(uid: libc::uid_t, gid: libc::gid_t, flags: c_uint) -> c_int {
    boundary::run("cage_enter", |call: &mut Call| {
        call.about(format!("uid {uid}"));
        check_ids(uid, gid)?;
        enter(&ConfigDir::default(), Who::Uid(uid), flags)
    })
}

/// As `cage_enter`, with the user given by name.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn cage_enter_user(name: *const c_char, flags: c_uint) -> c_int {
    boundary::run("cage_enter_user", |call: &mut Call| {
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let name = unsafe { user_arg(name) }?;
        call.about(format!("user {name}"));
        enter(&ConfigDir::default(), Who::Name(name), flags)
    })
}

/// Whether the user `uid` is caged under `/etc/cage`: 1 caged, 0 not, a
/// negative `CAGE_ERR_*` code on failure. Changes nothing.
#[no_mangle]
pub extern "C" fn cage_user_enabled(uid: libc::uid_t) -> c_int {
    boundary::run("cage_user_enabled", |call: &mut Call| {
        call.about(format!("uid {uid}"));
        user_enabled(&ConfigDir::default(), uid)
    })
}

/// As `cage_enter`, with the configuration read from `config_dir` (an
/// absolute path) instead of `/etc/cage`. A `config_dir` that does not
/// exist or is not a directory is `CAGE_ERR_CONFIG` (never "not caged").
///
/// # Safety
/// `config_dir` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn cage_enter_at(
    config_dir: *const c_char,
    uid: libc::uid_t,
    gid: libc::gid_t,
    flags: c_uint,
) -> c_int {
    boundary::run("cage_enter_at", |call: &mut Call| {
        call.about(format!("uid {uid}"));
        check_ids(uid, gid)?;
        parse_flags(flags)?;
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let config = unsafe { config_arg(config_dir) }?;
        enter(&config, Who::Uid(uid), flags)
    })
}

/// As `cage_enter_user`, with the configuration read from `config_dir`.
///
/// # Safety
/// `config_dir` and `name` are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn cage_enter_user_at(
    config_dir: *const c_char,
    name: *const c_char,
    flags: c_uint,
) -> c_int {
    boundary::run("cage_enter_user_at", |call: &mut Call| {
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let name = unsafe { user_arg(name) }?;
        call.about(format!("user {name}"));
        parse_flags(flags)?;
        // SAFETY: as above.
        let config = unsafe { config_arg(config_dir) }?;
        enter(&config, Who::Name(name), flags)
    })
}

/// As `cage_user_enabled`, with the configuration read from `config_dir`
/// (`CAGE_ERR_CONFIG` when it does not exist).
///
/// # Safety
/// `config_dir` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn cage_user_enabled_at(
    config_dir: *const c_char,
    uid: libc::uid_t,
) -> c_int {
    boundary::run("cage_user_enabled_at", |call: &mut Call| {
        call.about(format!("uid {uid}"));
        if uid == libc::uid_t::MAX {
            return Err(Failure::invalid("uid is (uid_t)-1"));
        }
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let config = unsafe { config_arg(config_dir) }?;
        user_enabled(&config, uid)
    })
}

/// A static, NUL-terminated description of a result code ("unknown error"
/// for codes this library does not know). Never NULL.
#[no_mangle]
pub extern "C" fn cage_strerror(rc: c_int) -> *const c_char {
    boundary::run_infallible("cage_strerror", c"internal error".as_ptr(), || {
        strerror(rc).as_ptr()
    })
}

fn strerror(rc: c_int) -> &'static CStr {
    use std::sync::OnceLock;
    static TEXTS: OnceLock<Vec<(cage_result, std::ffi::CString)>> = OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        CODES
            .iter()
            .map(|&c| {
                let text = libcage::error::describe(c as c_int);
                (c, std::ffi::CString::new(text).unwrap_or_default())
            })
            .collect()
    });
    texts
        .iter()
        .find(|(c, _)| *c as c_int == rc)
        .map_or(c"unknown error", |(_, t)| t.as_c_str())
}

/// Copies the detail of this thread's last failure into `buf` (at most
/// `len` bytes, always NUL-terminated when `len > 0`, truncated at a
/// character boundary). Returns the length of the whole message without
/// its NUL, as `snprintf` does: a result `>= len` means it was truncated;
/// 0 when no call on this thread has failed. `buf` may be NULL only when
/// `len` is 0 (to ask for the length). Returns `CAGE_ERR_INVALID` for a
/// NULL `buf` with a non-zero `len`; the stored message is not changed.
///
/// # Safety
/// `buf` is NULL or points to `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn cage_last_error(buf: *mut c_char, len: libc::size_t) -> c_int {
    boundary::run_infallible("cage_last_error", CAGE_ERR_PANIC as c_int, || {
        let msg = boundary::last_error();
        {
            if buf.is_null() && len != 0 {
                return CAGE_ERR_INVALID as c_int;
            }
            if len > 0 {
                let mut n = msg.len().min(len - 1);
                // Cut on a UTF-8 character boundary.
                while n > 0 && n < msg.len() && (msg[n] & 0xC0) == 0x80 {
                    n -= 1;
                }
                // SAFETY: buf is non-NULL (checked above) and points to len
                // writable bytes per the contract; n < len, so n bytes of
                // message plus the NUL fit, and the message is our own
                // buffer, which cannot overlap the caller's.
                unsafe {
                    std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
                    *buf.add(n) = 0;
                }
            }
            c_int::try_from(msg.len()).unwrap_or(c_int::MAX)
        }
    })
}

/// `CAGE_ABI_VERSION` of the loaded library.
#[no_mangle]
pub extern "C" fn cage_abi_version() -> c_uint {
    CAGE_ABI_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_cover_the_core() {
        for c in -64..=64 {
            let known = libcage::error::describe(c) != "unknown error";
            assert_eq!(known, CODES.iter().any(|&k| k as c_int == c), "code {c}");
        }
        for c in CODES.map(|k| k as c_int) {
            assert_eq!(
                strerror(c).to_str().unwrap(),
                libcage::error::describe(c),
                "code {c}"
            );
        }
        assert_eq!(strerror(-99).to_str().unwrap(), "unknown error");
    }

    #[test]
    fn flags() {
        let f = |fl| parse_flags(fl).unwrap();
        assert_eq!(f(0).mode, Mode::Supervise);
        assert_eq!(f(0).terminal, Terminal::Detach);
        assert!(!f(0).in_process);
        assert_eq!(f(CAGE_ENTER_CHILDREN_ONLY).mode, Mode::ChildrenOnly);
        assert!(f(CAGE_ENTER_IN_PROCESS | CAGE_ENTER_CHILDREN_ONLY).in_process);
        assert_eq!(f(CAGE_ENTER_PTY).terminal, Terminal::Relay);
        let bad = |fl| parse_flags(fl).unwrap_err().code;
        assert_eq!(bad(8), CAGE_ERR_INVALID as c_int);
        assert_eq!(
            bad(CAGE_ENTER_PTY | CAGE_ENTER_CHILDREN_ONLY),
            CAGE_ERR_INVALID as c_int
        );
    }

    fn last_error(len: usize) -> (c_int, Vec<u8>) {
        let mut buf = vec![0x55u8; len];
        // SAFETY: buf has len writable bytes.
        let rc = unsafe { cage_last_error(buf.as_mut_ptr().cast(), len) };
        (rc, buf)
    }

    #[test]
    fn null_arguments() {
        // SAFETY: NULL is allowed by the contracts.
        unsafe {
            assert_eq!(
                cage_enter_user(std::ptr::null(), 0),
                CAGE_ERR_INVALID as c_int
            );
            assert_eq!(
                cage_enter_user_at(std::ptr::null(), c"x".as_ptr(), 0),
                CAGE_ERR_INVALID as c_int
            );
            assert_eq!(
                cage_user_enabled_at(std::ptr::null(), 0),
                CAGE_ERR_INVALID as c_int
            );
            assert_eq!(
                cage_last_error(std::ptr::null_mut(), 4),
                CAGE_ERR_INVALID as c_int
            );
        }
        let (rc, buf) = last_error(64);
        let want = b"cage_user_enabled_at: uid 0: invalid argument: config_dir is NULL";
        assert_eq!(rc as usize, want.len());
        assert_eq!(&buf[..63], &want[..63]);
        assert_eq!(buf[63], 0);
    }

    #[test]
    fn last_error_truncates_and_measures() {
        // SAFETY: a NUL-terminated relative path.
        let rc = unsafe { cage_user_enabled_at(c"etc/cage".as_ptr(), 1000) };
        assert_eq!(rc, CAGE_ERR_INVALID as c_int);
        let full = "cage_user_enabled_at: uid 1000: invalid argument: config_dir etc/cage is not an absolute path";
        // SAFETY: NULL with len 0 asks for the length.
        let n = unsafe { cage_last_error(std::ptr::null_mut(), 0) };
        assert_eq!(n as usize, full.len());
        let (rc, buf) = last_error(5);
        assert_eq!(rc as usize, full.len());
        assert_eq!(&buf, b"cage\0");
        let (_, buf) = last_error(full.len() + 2);
        assert_eq!(&buf[..full.len()], full.as_bytes());
        assert_eq!(&buf[full.len()..], b"\0\x55");
    }

    #[test]
    fn fresh_thread_has_no_error() {
        std::thread::spawn(|| {
            let (rc, buf) = last_error(3);
            assert_eq!(rc, 0);
            assert_eq!(buf[0], 0);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn bad_ids_and_flags() {
        // SAFETY: a NUL-terminated absolute path.
        unsafe {
            assert_eq!(
                cage_enter_at(c"/nonexistent".as_ptr(), u32::MAX, 0, 0),
                CAGE_ERR_INVALID as c_int
            );
            assert_eq!(
                cage_enter_at(c"/nonexistent".as_ptr(), 1000, u32::MAX, 0),
                CAGE_ERR_INVALID as c_int
            );
            assert_eq!(
                cage_enter_user_at(c"/nonexistent".as_ptr(), c"".as_ptr(), 0),
                CAGE_ERR_INVALID as c_int
            );
            assert_eq!(
                cage_enter_at(c"/nonexistent".as_ptr(), 0, 0, 0x80),
                CAGE_ERR_INVALID as c_int
            );
            // A configuration directory that is not there fails closed,
            // whoever asks.
            let missing = c"/nonexistent-libcage-test-config";
            assert_eq!(
                cage_enter_at(missing.as_ptr(), 1000, 1000, 0),
                CAGE_ERR_CONFIG as c_int
            );
            assert_eq!(
                cage_enter_at(missing.as_ptr(), 0, 0, 0),
                CAGE_ERR_CONFIG as c_int
            );
            assert_eq!(
                cage_user_enabled_at(missing.as_ptr(), 0),
                CAGE_ERR_CONFIG as c_int
            );
            assert_eq!(
                cage_enter_user_at(c"/etc/passwd".as_ptr(), c"x".as_ptr(), 0),
                CAGE_ERR_CONFIG as c_int
            );
        }
        let (_, buf) = last_error(128);
        let msg =
            String::from_utf8_lossy(&buf[..buf.iter().position(|&b| b == 0).unwrap()]).into_owned();
        assert_eq!(msg, "cage_enter_user_at: user x: configuration error: config_dir /etc/passwd is not a directory");
        // Root still passes with an existing directory (nothing to read).
        // SAFETY: a NUL-terminated absolute path.
        let rc = unsafe { cage_enter_at(c"/".as_ptr(), 0, 0, 0) };
        assert_eq!(rc, CAGE_NOT_CAGED as c_int);
        assert_eq!(cage_abi_version(), CAGE_ABI_VERSION);
    }
}
