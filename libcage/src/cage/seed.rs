//! The seed: a tiny mount namespace (one read-only tmpfs as `/`, with an
//! empty `/stage`) held by a `cage-seed` process. A cage's mount namespace
//! is unshared from the seed rather than from the host, so building a cage
//! neither copies nor drops the host's mount table: a cold build costs the
//! same with 25 or 2000 host mounts. Host paths reach the cage only as
//! detached clones opened beforehand ([`crate::apply::collect`]).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::mount::{
    self as rmount, MountAttrFlags, MountPropagationFlags, MoveMountFlags, UnmountFlags,
};
use rustix::thread::{move_into_thread_name_spaces, ThreadNameSpaceType};

use crate::sys::process;
use crate::Error;

use super::daemon::{self, Program, Spec};
use super::join::{ns_inode, ns_inode_self, pin_daemon};
use super::record::{field, Lock, Share};
use crate::apply::watch::Watch;

const NAME: &str = "cage-seed";

/// Where a cage's root is attached in a namespace unshared from the seed.
pub const STAGE: &str = "/stage";

/// A verified live seed. It holds the seed lock shared, so the seed is not
/// stopped while a build is about to join it.
pub struct Seed {
    pidfd: OwnedFd,
    _lock: Option<Lock>,
}

fn rec_path(run: &Path) -> PathBuf {
    run.join("seed.rec")
}

impl Seed {
    /// The live seed, started when there is none (or its record is stale).
    /// `cgroup` gives the seed's cgroup (`BASE/seed`), asked only when a
    /// seed is started.
    pub fn get(
        run: &Path,
        program: &Program,
        cgroup: impl FnOnce() -> Result<crate::cgroup::fs::Joiner, Error>,
    ) -> Result<Seed, Error> {
        let lock = Lock::acquire_file(&run.join("seed.lock"), Share::Exclusive)
            .map_err(|e| Error::sys("locking the seed", e))?;
        let held = |mut seed: Seed| -> Result<Seed, Error> {
            lock.downgrade()
                .map_err(|e| Error::sys("locking the seed", e))?;
            seed._lock = Some(lock);
            Ok(seed)
        };
        if let Some(seed) = Seed::verify(run) {
            return held(seed);
        }
        let spec = Spec {
            what: "cage seed",
            comm: NAME,
            program,
            argv: &[NAME],
        };
        let cgroup = cgroup()?;
        let started = daemon::spawn(
            &spec,
            || cgroup.join(),
            || {
                shrink()
                    .map(|()| Watch::default())
                    .map_err(|e| format!("cage seed: {e}"))
            },
        )?;
        // Verified before it is recorded; any error drops `started`, which
        // kills it.
        let theirs = ns_inode(started.pid, "mnt")
            .map_err(|e| Error::sys("reading the seed's mount namespace", e))?;
        if theirs == ns_inode_self("mnt").map_err(|e| Error::sys("own mount namespace", e))? {
            return Err(Error::Build(
                "the cage seed kept our mount namespace".into(),
            ));
        }
        write_record(run, started.pid, started.start)
            .map_err(|e| Error::sys("writing the seed record", e))?;
        match started.commit() {
            Ok(pidfd) => held(Seed { pidfd, _lock: None }),
            Err(e) => {
                let _ = std::fs::remove_file(rec_path(run));
                Err(e)
            }
        }
    }

    /// The recorded seed if it is alive: same pid and start time (pinned
    /// by a pidfd), our name, and a mount namespace other than ours.
    fn verify(run: &Path) -> Option<Seed> {
        let text = std::fs::read_to_string(rec_path(run)).ok()?;
        let pid: i32 = field(&text, "pid")?.parse().ok()?;
        let start: u64 = field(&text, "start")?.parse().ok()?;
        let pidfd = pin_daemon(pid, start, NAME, "cage seed").ok()?;
        let theirs = rustix::fs::stat(format!("/proc/{pid}/ns/mnt")).ok()?.st_ino;
        (theirs != ns_inode_self("mnt").ok()?).then_some(Seed { pidfd, _lock: None })
    }

    /// Moves the calling process into the seed's mount namespace.
    pub fn enter(&self) -> io::Result<()> {
        Ok(move_into_thread_name_spaces(
            self.pidfd.as_fd(),
            ThreadNameSpaceType::MOUNT,
        )?)
    }

    /// Stops the seed (the next build starts a new one).
    pub fn stop(run: &Path) {
        if let Ok(_lock) = Lock::acquire_file(&run.join("seed.lock"), Share::Exclusive) {
            if let Some(seed) = Seed::verify(run) {
                let _ =
                    rustix::process::pidfd_send_signal(&seed.pidfd, rustix::process::Signal::TERM);
            }
            let _ = std::fs::remove_file(rec_path(run));
        }
    }
}

/// `seed.rec`, atomically (a temporary file renamed over it).
fn write_record(run: &Path, pid: i32, start: u64) -> io::Result<()> {
    let tmp = run.join(format!(".seed.rec.{}", std::process::id()));
    let r = std::fs::write(&tmp, format!("pid={pid}\nstart={start}\n"))
        .and_then(|_| std::fs::rename(&tmp, rec_path(run)));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// The seed child, before it becomes `cage-seed`: a private mount
/// namespace reduced to one read-only tmpfs.
fn shrink() -> io::Result<()> {
    // SAFETY: the seed is single-threaded (just forked) and does not pass
    // CLONE_FILES.
    unsafe { process::unshare(libc::CLONE_NEWNS) }?;
    rmount::mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )?;
    let tmpfs = crate::apply::new_fs(
        "tmpfs",
        &[("mode", "0755"), ("size", "64k")],
        MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )?;
    rustix::fs::mkdirat(
        &tmpfs,
        STAGE.trim_start_matches('/'),
        Mode::from_raw_mode(0o755),
    )?;
    // Attach it anywhere (this namespace is private), then make it `/`.
    let dir = rustix::fs::open(
        crate::paths::RUN_DIR,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rmount::move_mount(
        &tmpfs,
        "",
        &dir,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )?;
    rustix::process::fchdir(&tmpfs)?;
    rustix::process::pivot_root(".", ".")?;
    rmount::unmount(".", UnmountFlags::DETACH)?;
    rustix::process::chdir("/")?;
    crate::sys::mount::set_attrs(
        tmpfs.as_fd(),
        crate::sys::mount::MOUNT_ATTR_RDONLY
            | crate::sys::mount::MOUNT_ATTR_NOSUID
            | crate::sys::mount::MOUNT_ATTR_NODEV,
        false,
    )?;
    Ok(())
}
