//! One error type for the core, with a stable numeric code for the C ABI.

use std::fmt;
use std::io;

use crate::config::ConfigError;

/// Stable result codes of the C ABI (`libcage.h` repeats them).
pub mod code {
    pub const OK: i32 = 0;
    pub const NOT_CAGED: i32 = 1;
    pub const INVALID: i32 = -1;
    pub const CONFIG: i32 = -2;
    pub const NO_USER: i32 = -3;
    pub const THREADS: i32 = -4;
    pub const BUILD: i32 = -5;
    pub const JOIN: i32 = -6;
    pub const SYSTEM: i32 = -7;
    pub const PERM: i32 = -8;
    pub const LEAKED_FD: i32 = -9;
    pub const PANIC: i32 = -10;
    pub const HOSTILE_PATH: i32 = -11;
}

#[derive(Debug)]
pub enum Error {
    /// A caller-supplied argument is unusable.
    Invalid(String),
    /// Configuration that concerns this request is malformed.
    Config(Vec<ConfigError>),
    /// NSS does not know the user.
    NoUser(String),
    /// The process has more than one thread; namespaces would move only one.
    Threads(usize),
    /// Building a new cage failed (the reason from the cage init).
    Build(String),
    /// Joining an existing cage failed.
    Join(String),
    /// A system call failed.
    Sys { what: String, err: io::Error },
    /// Not running with root privileges.
    Perm(String),
    /// The caller holds a descriptor that leads outside the cage (an
    /// inheritable directory, an `O_PATH` descriptor, a readable host file;
    /// see `sys::process::fd_verdict`). `what` names it and its path.
    LeakedFd { fd: i32, what: String },
    /// A user-controlled path was refused (symlink, wrong owner, wrong type).
    Hostile { path: String, reason: String },
}

impl Error {
    pub fn sys(what: impl Into<String>, err: impl Into<io::Error>) -> Self {
        Error::Sys {
            what: what.into(),
            err: err.into(),
        }
    }

    /// The negative C ABI code of this error.
    pub fn code(&self) -> i32 {
        match self {
            Error::Invalid(_) => code::INVALID,
            Error::Config(_) => code::CONFIG,
            Error::NoUser(_) => code::NO_USER,
            Error::Threads(_) => code::THREADS,
            Error::Build(_) => code::BUILD,
            Error::Join(_) => code::JOIN,
            Error::Sys { .. } => code::SYSTEM,
            Error::Perm(_) => code::PERM,
            Error::LeakedFd { .. } => code::LEAKED_FD,
            Error::Hostile { .. } => code::HOSTILE_PATH,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(m) => write!(f, "invalid argument: {m}"),
            Error::Config(errs) => {
                for (i, e) in errs.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Error::NoUser(u) => write!(f, "no such user: {u}"),
            Error::Threads(n) => {
                write!(
                    f,
                    "process has {n} threads; entering a cage needs a single-threaded process"
                )
            }
            Error::Build(m) => write!(f, "cannot build cage: {m}"),
            Error::Join(m) => write!(f, "cannot join cage: {m}"),
            Error::Sys { what, err } => write!(f, "{what}: {err}"),
            Error::Perm(m) => write!(f, "permission denied: {m}"),
            Error::LeakedFd { fd, what } => write!(
                f,
                "file descriptor {fd} ({what}) leads outside the cage; refusing to enter"
            ),
            Error::Hostile { path, reason } => write!(f, "refusing {path}: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// Human text for a C ABI code.
pub fn describe(code: i32) -> &'static str {
    match code {
        code::OK => "success",
        code::NOT_CAGED => "user is not caged",
        code::INVALID => "invalid argument",
        code::CONFIG => "configuration error",
        code::NO_USER => "no such user",
        code::THREADS => "process is multi-threaded",
        code::BUILD => "cannot build cage",
        code::JOIN => "cannot join cage",
        code::SYSTEM => "system call failed",
        code::PERM => "permission denied",
        code::LEAKED_FD => "descriptor open that leads outside the cage",
        code::PANIC => "internal error",
        code::HOSTILE_PATH => "unsafe user path refused",
        _ => "unknown error",
    }
}
