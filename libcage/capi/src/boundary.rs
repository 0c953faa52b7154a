//! The one boundary every exported function runs inside: panics are caught,
//! failures become a negative code, the thread's last error message and an
//! authpriv syslog line. Nothing is ever printed.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};

use libcage::error::code;
use libcage::panic_guard::catch;

/// A failed call: the code returned to C and the detail behind it.
#[derive(Debug)]
pub struct Failure {
    pub code: c_int,
    pub msg: String,
    /// Already sent to syslog (by `libcage::cage::enter`).
    pub logged: bool,
}

impl Failure {
    pub fn invalid(msg: impl Into<String>) -> Failure {
        Failure {
            code: code::INVALID,
            msg: format!("invalid argument: {}", msg.into()),
            logged: false,
        }
    }

    /// Configuration given by the caller is unusable.
    pub fn config(msg: impl Into<String>) -> Failure {
        Failure {
            code: code::CONFIG,
            msg: format!("configuration error: {}", msg.into()),
            logged: false,
        }
    }

    /// A core error that the core has logged itself.
    pub fn logged(e: libcage::Error) -> Failure {
        Failure {
            logged: true,
            ..Failure::from(e)
        }
    }
}

impl From<libcage::Error> for Failure {
    fn from(e: libcage::Error) -> Failure {
        Failure {
            code: e.code(),
            msg: e.to_string(),
            logged: false,
        }
    }
}

/// What a call is about, for the failure message (`user NAME`, `uid N`).
#[derive(Default)]
pub struct Call {
    subject: Option<String>,
}

impl Call {
    pub fn about(&mut self, subject: impl Into<String>) {
        self.subject = Some(subject.into());
    }
}

thread_local! {
    /// The message of the last failure on this thread (`cage_last_error`).
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Runs the body of the exported function `api`. A failure (an `Err` or a
/// panic) is recorded as the thread's last error and logged to syslog.
pub fn run(api: &'static str, body: impl FnOnce(&mut Call) -> Result<c_int, Failure>) -> c_int {
    let mut call = Call::default();
    let failure = match catch(|| body(&mut call)) {
        Ok(Ok(rc)) => return rc,
        Ok(Err(f)) => f,
        Err(detail) => Failure {
            code: code::PANIC,
            msg: format!("internal error: {detail}"),
            logged: false,
        },
    };
    let msg = match &call.subject {
        Some(s) => format!("{api}: {s}: {}", failure.msg),
        None => format!("{api}: {}", failure.msg),
    };
    // Logging and recording must not unwind into C either.
    let _ = catch(|| {
        if !failure.logged {
            libcage::log::error(&tag(), &msg);
        }
        set_last_error(&msg);
    });
    failure.code
}

/// Runs a body that cannot fail but must not unwind into C: `fallback` is
/// returned on a panic, which is logged but leaves the last error alone.
pub fn run_infallible<T>(api: &'static str, fallback: T, body: impl FnOnce() -> T) -> T {
    match catch(body) {
        Ok(v) => v,
        Err(detail) => {
            let _ =
                catch(|| libcage::log::error(&tag(), &format!("{api}: internal error: {detail}")));
            fallback
        }
    }
}

fn set_last_error(msg: &str) {
    let c = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|l| *l.borrow_mut() = Some(c));
}

/// This thread's last error message, without NUL (empty when none).
pub fn last_error() -> Vec<u8> {
    LAST_ERROR
        .try_with(|l| l.borrow().as_ref().map(|c| c.as_bytes().to_vec()))
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The syslog tag: `libcage(COMM)`, COMM being the host program's name.
pub fn tag() -> String {
    format!("libcage({})", program_name())
}

/// This process's name (`comm`), read with `PR_GET_NAME` so that it works
/// whatever `/proc` the process sees.
pub fn program_name() -> String {
    let mut buf = [0u8; 17];
    // SAFETY: PR_GET_NAME writes at most 16 bytes, NUL included, into the
    // 17-byte buffer we own.
    let rc = unsafe { libc::prctl(libc::PR_GET_NAME, buf.as_mut_ptr()) };
    if rc != 0 {
        return "?".to_string();
    }
    CStr::from_bytes_until_nul(&buf)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "?".to_string())
}

/// Borrows a C string argument; NULL is an invalid-argument failure naming
/// the parameter.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays valid and
/// unchanged for `'a`.
pub unsafe fn c_str<'a>(p: *const c_char, param: &str) -> Result<&'a CStr, Failure> {
    if p.is_null() {
        return Err(Failure::invalid(format!("{param} is NULL")));
    }
    // SAFETY: non-NULL, and per this function's contract NUL-terminated and
    // valid for 'a.
    Ok(unsafe { CStr::from_ptr(p) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last() -> String {
        String::from_utf8_lossy(&last_error()).into_owned()
    }

    #[test]
    fn ok_leaves_last_error() {
        assert_eq!(run("t_ok", |_| Ok(5)), 5);
        assert_eq!(last(), "");
    }

    #[test]
    fn failure_is_recorded_with_subject() {
        let rc = run("t_fail", |c| {
            c.about("user x");
            Err(Failure::invalid("name is empty"))
        });
        assert_eq!(rc, code::INVALID);
        assert_eq!(last(), "t_fail: user x: invalid argument: name is empty");
    }

    #[test]
    fn panic_is_caught() {
        let rc = run("t_panic", |_| -> Result<c_int, Failure> {
            panic!("boom {}", 7)
        });
        assert_eq!(rc, code::PANIC);
        let m = last();
        assert!(m.starts_with("t_panic: internal error: boom 7 at "), "{m}");
        assert_eq!(run_infallible("t_panic2", 9, || -> i32 { panic!("x") }), 9);
    }

    #[test]
    fn nul_in_message_is_escaped() {
        run("t_nul", |_| Err(Failure::invalid("a\0b")));
        assert_eq!(last(), "t_nul: invalid argument: a\\0b");
    }
}
