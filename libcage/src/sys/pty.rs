//! Terminals: a fresh pty for the user (DESIGN.md "No process of the user
//! ever holds a caller's terminal"), raw mode for the caller's terminal
//! while the supervisor relays, and the standard descriptors.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

use rustix::pty::OpenptFlags;
use rustix::termios::{OptionalActions, Termios};

/// A pty pair from the devpts instance of the current root's `/dev/ptmx`.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Opens a new pty: master from `/dev/ptmx`, slave through `TIOCGPTPEER`
/// (from the master's own devpts instance, never by path). Neither becomes
/// a controlling terminal here; both are close-on-exec.
pub fn open_pty() -> io::Result<Pty> {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let master = rustix::pty::openpt(flags)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let slave = rustix::pty::ioctl_tiocgptpeer(&master, flags)?;
    Ok(Pty { master, slave })
}

/// Which of fds 0, 1, 2 are terminals.
pub fn std_ttys() -> [bool; 3] {
    // SAFETY: the standard descriptors are only borrowed for the query; a
    // closed one makes isatty answer false.
    let fd = |n: RawFd| unsafe { BorrowedFd::borrow_raw(n) };
    [0, 1, 2].map(|n| rustix::termios::isatty(fd(n)))
}

/// True when this process is in the foreground process group of the
/// terminal on `fd` (a background job must neither read it nor change its
/// mode).
pub fn in_foreground(fd: BorrowedFd<'_>) -> bool {
    rustix::termios::tcgetpgrp(fd).is_ok_and(|p| p == rustix::process::getpgrp())
}

/// Borrows standard descriptor `n` (0, 1 or 2).
pub fn std_fd(n: RawFd) -> BorrowedFd<'static> {
    debug_assert!((0..3).contains(&n));
    // SAFETY: the standard descriptors live as long as the process; a
    // closed one only makes calls on it fail with EBADF.
    unsafe { BorrowedFd::borrow_raw(n) }
}

/// Gives `tty` the settings and window size of `from` (the caller's
/// terminal), as `script` and sudo do, so the user's programs see the
/// same terminal.
pub fn copy_settings(from: BorrowedFd<'_>, tty: BorrowedFd<'_>) -> io::Result<()> {
    let t = rustix::termios::tcgetattr(from)?;
    rustix::termios::tcsetattr(tty, OptionalActions::Now, &t)?;
    copy_winsize(from, tty)
}

/// Copies the window size of `from` to `to`.
pub fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let w = rustix::termios::tcgetwinsize(from)?;
    rustix::termios::tcsetwinsize(to, w)?;
    Ok(())
}

/// In the new child: a session of its own (no controlling terminal).
pub fn new_session() -> io::Result<()> {
    rustix::process::setsid()?;
    Ok(())
}

/// In a new session: makes `slave` the controlling terminal, puts it on
/// the standard descriptors named in `on`, and closes every other
/// descriptor that is a terminal, so that no caller's terminal is left.
pub fn attach(slave: &OwnedFd, on: [bool; 3], keep: RawFd) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    rustix::process::ioctl_tiocsctty(slave)?;
    for (n, put) in on.into_iter().enumerate() {
        if put {
            match n {
                0 => rustix::stdio::dup2_stdin(slave)?,
                1 => rustix::stdio::dup2_stdout(slave)?,
                _ => rustix::stdio::dup2_stderr(slave)?,
            }
        }
    }
    for fd in super::process::open_fds()? {
        if fd < 3 || fd == slave.as_raw_fd() || fd == keep {
            continue;
        }
        // SAFETY: only queried; a descriptor closed meanwhile answers false.
        let b = unsafe { BorrowedFd::borrow_raw(fd) };
        if rustix::termios::isatty(b) {
            // SAFETY: a terminal descriptor inherited from the caller, which
            // the user's process must not keep; nothing in this freshly
            // forked child uses it afterwards.
            unsafe { libc::close(fd) };
        }
    }
    Ok(())
}

/// The caller's terminal in raw mode for as long as this lives (restored
/// by [`RawMode::restore`] or on drop).
pub struct RawMode {
    fd: BorrowedFd<'static>,
    saved: Option<Termios>,
}

impl RawMode {
    pub fn enter(fd: BorrowedFd<'static>) -> io::Result<RawMode> {
        let saved = rustix::termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(fd, OptionalActions::Drain, &raw)?;
        Ok(RawMode {
            fd,
            saved: Some(saved),
        })
    }

    pub fn restore(&mut self) {
        if let Some(t) = self.saved.take() {
            let _ = rustix::termios::tcsetattr(self.fd, OptionalActions::Drain, &t);
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Makes `fd` non-blocking.
pub fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    let fl = rustix::fs::fcntl_getfl(&fd)?;
    rustix::fs::fcntl_setfl(&fd, fl | rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}
