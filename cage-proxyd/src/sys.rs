//! The `unsafe` of cage-proxyd: the child's last steps before exec.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};

/// Who the command runs as.
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// A path argument: opened in the caller's cage view (`root`, with
/// `RESOLVE_IN_ROOT`) after the credentials are dropped, at fd `target`.
pub struct PathArg {
    pub path: CString,
    pub target: RawFd,
}

/// Arranges the child: new session (controlling terminal taken from stdin
/// when it is one), the caller's credentials, the working directory and
/// path arguments opened in the cage view as the caller.
pub fn prepare(cmd: &mut Command, creds: Creds, root: OwnedFd, cwd: CString, paths: Vec<PathArg>) {
    let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let closure = move || -> std::io::Result<()> {
        // SAFETY: setsid and ioctl(TIOCSCTTY) take no pointers; only async-
        // signal-safe syscalls run between fork and exec.
        unsafe {
            libc::setsid();
            if libc::isatty(0) == 1 {
                libc::ioctl(0, libc::TIOCSCTTY, 0);
            }
        }
        // SAFETY: groups points to creds.groups.len() valid gids.
        if unsafe { libc::setgroups(creds.groups.len(), creds.groups.as_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: plain syscall; the gid was resolved through NSS.
        if unsafe { libc::setresgid(creds.gid, creds.gid, creds.gid) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: plain syscall; the uid was resolved through NSS.
        if unsafe { libc::setresuid(creds.uid, creds.uid, creds.uid) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // The cwd must exist in the cage view (as the caller). Programs
        // need a cwd reachable from the host's root (getcwd): the same path
        // on the host when it is the same directory (the home is mounted
        // at its real path), else the host's `/`.
        let dirflags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir = openat2(&root, cwd.as_c_str(), dirflags, Mode::empty(), how)?;
        let st = rustix::fs::fstat(&dir)?;
        let host = openat2(
            rustix::fs::CWD,
            cwd.as_c_str(),
            dirflags,
            Mode::empty(),
            ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .ok()
        .filter(|h| {
            rustix::fs::fstat(h).is_ok_and(|h| (h.st_dev, h.st_ino) == (st.st_dev, st.st_ino))
        });
        match host {
            Some(h) => rustix::process::fchdir(&h)?,
            None => rustix::process::chdir(c"/")?,
        }
        for p in &paths {
            let fd = openat2(
                &root,
                p.path.as_c_str(),
                OFlags::RDONLY | OFlags::NOCTTY,
                Mode::empty(),
                how,
            )?;
            // SAFETY: dup2 onto a number checked free by the parent; the
            // original is closed right after.
            if unsafe { libc::dup2(fd.as_raw_fd(), p.target) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the closure runs only syscalls (no allocation, no locks).
    unsafe {
        cmd.pre_exec(closure);
    }
}

/// Raises the descriptor limit so the fixed numbers for path arguments
/// (from [`crate::PATH_FD_BASE`]) are valid.
pub fn raise_nofile(n: u64) {
    let lim = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: lim is a valid rlimit.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
}
