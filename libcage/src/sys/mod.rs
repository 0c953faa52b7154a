//! The only place with `unsafe` FFI in the core. Every block says why it is
//! sound. Everything above this module sees safe functions returning
//! `io::Result`.

pub mod mount;
pub mod nss;
pub mod process;
pub mod pty;
pub mod sandbox;
pub mod syslog;

use std::ffi::CString;
use std::io;

/// `-1` + errno into `io::Result` (sudo-rs's `cerr`).
pub(crate) fn cvt<T: Copy + PartialEq + From<i8>>(ret: T) -> io::Result<T> {
    if ret == T::from(-1) {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A Rust string as a C string; an interior NUL is an `InvalidInput` error.
pub(crate) fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "string contains NUL"))
}
