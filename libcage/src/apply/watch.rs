//! The mount watcher: a thread of the cage init that keeps mounts which
//! propagate into the cage later (the admin mounts a backup image or a
//! quota loop device inside a home, or below a shared path) `nosuid,nodev`
//! (and read-only below a read-only path). The clones attached at build
//! time are made so recursively, but a mount that arrives afterwards
//! brings its own flags.
//!
//! It polls the cage's `/proc/self/mountinfo` (`POLLPRI` on every change of
//! the mount namespace) and, whenever a mount id appears that it has not
//! seen, re-applies the attributes recursively (`mount_setattr` with
//! `AT_RECURSIVE`) to every host mount it was given: by descriptor, never
//! by path, so nothing a user does to the paths can redirect it.
//!
//! The thread gives itself a private descriptor table first (the init
//! closes every descriptor once ready) and keeps only `CAP_SYS_ADMIN`, for
//! `mount_setattr`; the init's main thread drops everything. Between a
//! mount's arrival and the sweep lies a short window; a setuid program is
//! powerless in it anyway, since every caged process runs with
//! `no_new_privs`.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{self as rfs, Mode, OFlags};

use crate::sys::mount::{set_attrs, unshare_fd_table};

/// Starts the watcher over `mounts` (each with the attributes to keep);
/// returns once it runs with its own descriptor table.
pub fn start(mounts: Vec<(OwnedFd, u64)>) -> io::Result<()> {
    let mi = rfs::open(
        "/proc/self/mountinfo",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
    std::thread::Builder::new()
        .name("cage-watch".into())
        .spawn(move || {
            let r = isolate(&mi, &mounts);
            let ok = r.is_ok();
            let _ = tx.send(r.map_err(|e| e.to_string()));
            drop(tx);
            if ok {
                run(&mi, &mounts);
            }
        })?;
    match rx.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(io::Error::other(format!("mount watcher: {e}"))),
        Err(_) => Err(io::Error::other("mount watcher: thread died")),
    }
}

/// A private descriptor table holding only what the watcher uses, and
/// only the capability it needs.
fn isolate(mi: &OwnedFd, mounts: &[(OwnedFd, u64)]) -> io::Result<()> {
    unshare_fd_table()?;
    let mut keep: Vec<i32> = mounts.iter().map(|(m, _)| m.as_raw_fd()).collect();
    keep.push(mi.as_raw_fd());
    crate::sys::process::close_fds_except(&keep);
    rustix::thread::set_no_new_privs(true)?;
    let admin = rustix::thread::CapabilitySet::SYS_ADMIN;
    rustix::thread::set_capabilities(
        None,
        rustix::thread::CapabilitySets {
            effective: admin,
            permitted: admin,
            inheritable: rustix::thread::CapabilitySet::empty(),
        },
    )?;
    Ok(())
}

/// The mount ids listed in mountinfo text (its first field).
pub(crate) fn mount_ids(text: &str) -> HashSet<u64> {
    text.lines()
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect()
}

fn read_all(fd: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut off = 0u64;
    loop {
        match rustix::io::pread(fd, &mut buf, off) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                off += n as u64;
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn sweep(mounts: &[(OwnedFd, u64)]) {
    for (m, attrs) in mounts {
        // A mount the host took away answers an error: nothing to keep.
        let _ = set_attrs(m.as_fd(), *attrs, true);
    }
}

fn run(mi: &OwnedFd, mounts: &[(OwnedFd, u64)]) -> ! {
    let mut seen = mount_ids(&read_all(mi));
    // Anything that arrived between the clones and now.
    sweep(mounts);
    loop {
        let mut fds = [PollFd::new(mi, PollFlags::PRI | PollFlags::ERR)];
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(200)),
        }
        let now = mount_ids(&read_all(mi));
        if now.iter().any(|id| !seen.contains(id)) {
            sweep(mounts);
        }
        seen = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mount_ids() {
        let t = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw\n40 36 0:5 / /x rw - tmpfs t rw\n";
        assert_eq!(mount_ids(t), HashSet::from([36, 40]));
    }
}
