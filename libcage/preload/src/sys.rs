//! The calls into libc this library needs: the real set*uid functions
//! behind ours (`dlsym(RTLD_NEXT)`), the ids, errno, the parent-death signal.

use std::ffi::{c_int, CStr};
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::ids::Uids;

type SetuidFn = unsafe extern "C" fn(libc::uid_t) -> c_int;
type SetreuidFn = unsafe extern "C" fn(libc::uid_t, libc::uid_t) -> c_int;
type SetresuidFn = unsafe extern "C" fn(libc::uid_t, libc::uid_t, libc::uid_t) -> c_int;

/// The next definition of `name` after this library (libc's).
fn next_symbol(name: &CStr) -> usize {
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name only reads
    // the loaded objects' symbol tables; it returns NULL when not found.
    unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) as usize }
}

fn cached(slot: &'static OnceLock<usize>, name: &CStr) -> Option<usize> {
    let a = *slot.get_or_init(|| next_symbol(name));
    (a != 0).then_some(a)
}

/// Which set*uid call the program made, with its arguments.
#[derive(Clone, Copy, Debug)]
pub enum Call {
    Setuid(u32),
    Setreuid(u32, u32),
    Setresuid(u32, u32, u32),
}

/// Performs `call` with libc's own function. When libc's function cannot
/// be found, fails with EPERM (never pretends to have changed ids).
pub fn real(call: Call) -> c_int {
    static SETUID: OnceLock<usize> = OnceLock::new();
    static SETREUID: OnceLock<usize> = OnceLock::new();
    static SETRESUID: OnceLock<usize> = OnceLock::new();
    match call {
        Call::Setuid(u) => match cached(&SETUID, c"setuid") {
            // SAFETY: the address is libc's `setuid`, whose type is SetuidFn.
            Some(a) => unsafe { std::mem::transmute::<usize, SetuidFn>(a)(u) },
            None => fail_eperm(),
        },
        Call::Setreuid(r, e) => match cached(&SETREUID, c"setreuid") {
            // SAFETY: the address is libc's `setreuid`, of type SetreuidFn.
            Some(a) => unsafe { std::mem::transmute::<usize, SetreuidFn>(a)(r, e) },
            None => fail_eperm(),
        },
        Call::Setresuid(r, e, s) => match cached(&SETRESUID, c"setresuid") {
            // SAFETY: the address is libc's `setresuid`, of type SetresuidFn.
            Some(a) => unsafe { std::mem::transmute::<usize, SetresuidFn>(a)(r, e, s) },
            None => fail_eperm(),
        },
    }
}

/// Sets errno to EPERM and returns -1, as a refused set*uid call does.
pub fn fail_eperm() -> c_int {
    // SAFETY: __errno_location returns this thread's errno, always valid.
    unsafe { *libc::__errno_location() = libc::EPERM };
    -1
}

pub fn uids() -> Uids {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: getresuid writes three uid_t through the valid pointers.
    let rc = unsafe { libc::getresuid(&mut r, &mut e, &mut s) };
    if rc != 0 {
        // Cannot happen with valid pointers; read as "not root": no entry
        // is attempted and the call goes to libc, which decides.
        return Uids {
            real: u32::MAX,
            effective: u32::MAX,
            saved: u32::MAX,
        };
    }
    Uids {
        real: r,
        effective: e,
        saved: s,
    }
}

/// After the uid switch in the cage: re-arms the parent-death signal (the
/// kernel clears it on an id change) and reports whether the supervisor,
/// outside the cage (so parent pid 0), still lives.
pub fn rearm_parent_death() -> bool {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number; getppid has no
    // preconditions.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 && libc::getppid() == 0 }
}

/// Ends this process at once (no atexit handlers, no stdio flushing).
pub fn exit_now(code: c_int) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}

extern "C" {
    // glibc 2.17+; not in the libc crate.
    fn secure_getenv(name: *const std::ffi::c_char) -> *mut std::ffi::c_char;
}

/// `secure_getenv(name)`: NULL (None) in set-id programs.
pub fn secure_env(name: &CStr) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: name is NUL-terminated; the result is NULL or a pointer into
    // the environment, copied at once (before anything can change it).
    let p = unsafe { secure_getenv(name.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: p is a NUL-terminated string of the environment.
    let s = unsafe { CStr::from_ptr(p) };
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(s.to_bytes())))
}

/// This process's `comm` (PR_GET_NAME).
pub fn comm() -> String {
    let mut buf = [0u8; 17];
    // SAFETY: PR_GET_NAME writes at most 16 bytes, NUL included, into buf.
    if unsafe { libc::prctl(libc::PR_GET_NAME, buf.as_mut_ptr()) } != 0 {
        return "?".into();
    }
    CStr::from_bytes_until_nul(&buf)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "?".into())
}

/// Runs `f` once when the library is loaded, while the environment is
/// still the one the service was started with (PHP-FPM clears its
/// workers' environment).
#[used]
#[link_section = ".init_array"]
static AT_LOAD: extern "C" fn() = at_load;

extern "C" fn at_load() {
    // A panic must not unwind out of a constructor.
    let _ = libcage::panic_guard::catch(crate::at_load);
}
