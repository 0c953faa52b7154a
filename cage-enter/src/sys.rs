//! The few raw calls cage-enter makes before it trusts anything of its
//! caller's process state, each with its SAFETY comment.

use std::io;

fn cvt(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Empties the environment (the caller's, inherited through exec).
pub fn clear_env() -> io::Result<()> {
    // SAFETY: called first thing in main, single-threaded: nothing else
    // reads or holds pointers into the environment.
    cvt(unsafe { libc::clearenv() })
}

/// All uids and gids root, no supplementary groups: from here on nothing
/// of the caller's credentials remains (it cannot signal or trace us).
pub fn become_root() -> io::Result<()> {
    // SAFETY: integer arguments; an empty group list.
    unsafe {
        cvt(libc::setgroups(0, std::ptr::null()))?;
        cvt(libc::setresgid(0, 0, 0))?;
        cvt(libc::setresuid(0, 0, 0))?;
    }
    Ok(())
}

/// Fds 0-2 open (on /dev/null when closed): nothing opened later (a cage
/// record, a config file) can land on a standard descriptor and be
/// written to by the command's output.
pub fn stdio_open() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries the descriptor.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            // SAFETY: open of a static path; the lowest free descriptor is
            // `fd`, since 0..fd are open.
            let got = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if got != fd {
                libcage::sys::process::exit_now(125);
            }
        }
    }
}

/// The access mode a descriptor was opened with.
pub fn open_mode(fd: i32) -> io::Result<libc::c_int> {
    // SAFETY: F_GETFL only queries the descriptor.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if fl < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fl & libc::O_ACCMODE)
}
