//! Verifying a recorded cage and joining it through its init.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{Mode, OFlags};
use rustix::thread::{
    move_into_link_name_space, move_into_thread_name_spaces, LinkNameSpaceType, ThreadNameSpaceType,
};

use crate::sys::process::{self, Fork, SigSet};
use crate::Error;

use super::record::{Lock, Record};
use super::Mode as EnterMode;

const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Start time of `pid` (field 22 of /proc/PID/stat).
pub fn start_time(pid: i32) -> io::Result<u64> {
    let stat = process::read_proc(&format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces and parentheses.
    let after = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("malformed stat"))?;
    after
        .split_whitespace()
        .nth(19)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("malformed stat"))
}

fn open_ns(pid: i32, name: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        format!("/proc/{pid}/ns/{name}"),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Pins the recorded daemon `pid` with a pidfd and checks that it is the
/// process recorded: same start time (with the pidfd open the pid cannot
/// be reused) and the `comm` we give it. `what` names it in errors
/// (`cage init`).
pub fn pin_daemon(pid: i32, start: u64, comm: &str, what: &str) -> Result<OwnedFd, String> {
    let p = rustix::process::Pid::from_raw(pid).ok_or("invalid pid")?;
    let pidfd = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())
        .map_err(|e| format!("{what} {pid} is gone ({e})"))?;
    if start_time(pid).map_err(|e| format!("{what} {pid}: {e}"))? != start {
        return Err(format!("pid {pid} is not the recorded {what}"));
    }
    let name = process::read_proc(&format!("/proc/{pid}/comm"))
        .map_err(|e| format!("{what} {pid}: {e}"))?;
    if name.trim_end() != comm {
        return Err(format!("pid {pid} is not a {what}"));
    }
    Ok(pidfd)
}

pub fn ns_inode_self(name: &str) -> io::Result<u64> {
    // stat() follows the magic link to the namespace's nsfs inode.
    Ok(rustix::fs::stat(format!("/proc/self/ns/{name}"))?.st_ino)
}

pub fn ns_inode(pid: i32, name: &str) -> io::Result<u64> {
    Ok(rustix::fs::fstat(open_ns(pid, name)?)?.st_ino)
}

/// Checks that `fd` is a namespace of type `kind` with inode `ino`.
fn check_ns(fd: &OwnedFd, kind: i32, ino: u64, name: &str) -> Result<(), String> {
    let sfs = rustix::fs::fstatfs(fd).map_err(|e| format!("{name}: {e}"))?;
    if sfs.f_type as i64 != NSFS_MAGIC {
        return Err(format!("{name} is not a namespace file"));
    }
    let t = process::ns_type(fd.as_fd()).map_err(|e| format!("{name}: NS_GET_NSTYPE: {e}"))?;
    if t != kind {
        return Err(format!("{name} is a namespace of the wrong type"));
    }
    let st = rustix::fs::fstat(fd).map_err(|e| format!("{name}: {e}"))?;
    if st.st_ino != ino {
        return Err(format!(
            "{name} namespace {} is not the recorded {}",
            st.st_ino, ino
        ));
    }
    Ok(())
}

/// True when `pid` is a cage init: named so, running as root (real and
/// effective uid 0, from its status), in a PID namespace other than ours.
pub fn is_cage_init(pid: i32) -> bool {
    let Ok(status) = process::read_proc(&format!("/proc/{pid}/status")) else {
        return false;
    };
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(str::trim)
    };
    let root = field("Uid:").is_some_and(|u| u.split_whitespace().all(|x| x == "0"));
    let ours = ns_inode_self("pid").ok();
    let theirs = rustix::fs::stat(format!("/proc/{pid}/ns/pid"))
        .map(|s| s.st_ino)
        .ok();
    field("Name:") == Some("cage-init") && root && theirs.is_some() && theirs != ours
}

/// The user a cage init was started for (`cage-init USER`, its command line).
pub fn init_user(pid: i32) -> Option<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut args = cmdline.split(|&b| b == 0);
    if args.next()? != b"cage-init" {
        return None;
    }
    String::from_utf8(args.next()?.to_vec()).ok()
}

/// Processes in the PID namespace `pidns` besides `init`.
pub fn processes_in(pidns: u64, init: i32) -> usize {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return 0;
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != init && ns_inode(pid, "pid").ok() == Some(pidns))
        .count()
}

/// Cage init processes whose pid is not in `recorded`.
pub fn orphan_inits(recorded: &[i32]) -> Vec<rustix::process::Pid> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| !recorded.contains(pid) && is_cage_init(*pid))
        .filter_map(rustix::process::Pid::from_raw)
        .collect()
}

/// A verified live cage.
pub struct Live {
    pub record: Record,
    pidfd: OwnedFd,
}

impl Live {
    /// Verifies that the recorded init is alive (same pid and start time,
    /// pinned by a pidfd) and holds namespaces of the recorded types and
    /// inodes.
    pub fn verify(rec: &Record) -> Result<Live, String> {
        let pidfd = pin_daemon(rec.pid, rec.start, "cage-init", "cage init")?;
        // The owner of /proc/PID is the process's effective uid.
        let owner = rustix::fs::stat(format!("/proc/{}", rec.pid))
            .map_err(|e| format!("init {}: {e}", rec.pid))?
            .st_uid;
        if owner != 0 {
            return Err(format!("pid {} does not run as root", rec.pid));
        }
        // Made by us: same user namespace as ours, and none of the joined
        // namespaces is the one we are already in (the host's).
        let mine = |n: &str| ns_inode_self(n).map_err(|e| format!("own {n} namespace: {e}"));
        let theirs = rustix::fs::stat(format!("/proc/{}/ns/user", rec.pid))
            .map_err(|e| format!("user: {e}"))?
            .st_ino;
        if theirs != mine("user")? {
            return Err(format!("pid {} lives in another user namespace", rec.pid));
        }
        for (name, ino) in [("mnt", rec.mntns), ("pid", rec.pidns), ("ipc", rec.ipcns)] {
            if ino == mine(name)? {
                return Err(format!("recorded {name} namespace is the host's own"));
            }
        }
        for (name, kind, ino) in [
            ("mnt", libc::CLONE_NEWNS, rec.mntns),
            ("pid", libc::CLONE_NEWPID, rec.pidns),
            ("ipc", libc::CLONE_NEWIPC, rec.ipcns),
        ] {
            let fd = open_ns(rec.pid, name).map_err(|e| format!("{name}: {e}"))?;
            check_ns(&fd, kind, ino, name)?;
        }
        Ok(Live {
            record: rec.clone(),
            pidfd,
        })
    }

    /// Tells an init to leave once its cage is empty.
    pub fn unpin(rec: &Record) {
        if let Ok(live) = Live::verify(rec) {
            live.signal_unpin();
        }
    }

    /// Tells this cage's init to leave once its cage is empty.
    pub fn signal_unpin(&self) {
        let _ = rustix::process::pidfd_send_signal(&self.pidfd, rustix::process::Signal::TERM);
    }

    /// Processes in the cage besides its init.
    pub fn process_count(&self) -> usize {
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return 0;
        };
        let mut n = 0;
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if pid != self.record.pid && ns_inode(pid, "pid").ok() == Some(self.record.pidns) {
                n += 1;
            }
        }
        n
    }

    /// Joins per `mode`. The lock is released once the join is done.
    pub fn join(self, mode: EnterMode, lock: Lock, r: Restrict) -> Result<(), Error> {
        match mode {
            EnterMode::ChildrenOnly => {
                let res = self.join_children_only(r);
                drop(lock);
                res
            }
            EnterMode::Supervise => self.join_supervised(lock, r),
        }
    }

    fn join_children_only(&self, r: Restrict) -> Result<(), Error> {
        let saved = SavedNs::open().map_err(|e| Error::sys("saving own namespaces", e))?;
        let flags = ThreadNameSpaceType::MOUNT
            | ThreadNameSpaceType::INTER_PROCESS_COMMUNICATION
            | ThreadNameSpaceType::PROCESS_ID;
        move_into_thread_name_spaces(self.pidfd.as_fd(), flags)
            .map_err(|e| Error::Join(format!("setns: {e}")))?;
        if let Err(e) = process::join_new_session_keyring() {
            saved.restore();
            return Err(Error::Join(format!("new session keyring: {e}")));
        }
        // Restrictions cannot be undone: they come last, and a failure
        // fails the session (which then runs nothing as the user).
        r.apply().map_err(Error::Join)
    }

    /// Forks a child inside the cage; the parent becomes its supervisor and
    /// never returns. Returns `Ok` in the child.
    fn join_supervised(self, lock: Lock, restrict: Restrict) -> Result<(), Error> {
        let saved = SavedNs::open().map_err(|e| Error::sys("saving own namespaces", e))?;
        let set = SigSet::new(FORWARDED);
        let old_mask = process::block(&set).map_err(|e| Error::sys("sigprocmask", e))?;
        let undo = |saved: &SavedNs| {
            saved.restore();
            let _ = process::set_mask(&old_mask);
        };
        if let Err(e) =
            move_into_thread_name_spaces(self.pidfd.as_fd(), ThreadNameSpaceType::PROCESS_ID)
        {
            undo(&saved);
            return Err(Error::Join(format!("setns pid: {e}")));
        }
        let (r, w) = match rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
            Ok(p) => p,
            Err(e) => {
                undo(&saved);
                return Err(Error::sys("pipe", e));
            }
        };
        // SAFETY: enter() checked that this process is single-threaded.
        match unsafe { process::fork() } {
            Err(e) => {
                undo(&saved);
                Err(Error::sys("fork", e))
            }
            Ok(Fork::Child) => {
                drop(r);
                drop(lock);
                let mut w = std::fs::File::from(w);
                let res = (|| -> Result<(), String> {
                    process::die_with_parent(libc::SIGKILL)
                        .map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
                    let flags = ThreadNameSpaceType::MOUNT
                        | ThreadNameSpaceType::INTER_PROCESS_COMMUNICATION;
                    move_into_thread_name_spaces(self.pidfd.as_fd(), flags)
                        .map_err(|e| format!("setns: {e}"))?;
                    process::join_new_session_keyring()
                        .map_err(|e| format!("new session keyring: {e}"))?;
                    restrict.apply()
                })();
                match res {
                    Ok(()) => {
                        let _ = process::set_mask(&old_mask);
                        let _ = w.write_all(b"R");
                        Ok(())
                    }
                    Err(m) => {
                        let _ = w.write_all(format!("E{m}").as_bytes());
                        process::exit_now(127)
                    }
                }
            }
            Ok(Fork::Parent(child)) => {
                drop(w);
                saved.restore_pid();
                let mut msg = String::new();
                let _ = std::fs::File::from(r).read_to_string(&mut msg);
                drop(lock);
                if msg == "R" {
                    drop(saved);
                    drop(self);
                    supervise(child, &set)
                }
                let _ = rustix::process::waitpid(
                    rustix::process::Pid::from_raw(child),
                    rustix::process::WaitOptions::empty(),
                );
                undo(&saved);
                Err(Error::Join(
                    msg.strip_prefix('E')
                        .unwrap_or("child died before joining")
                        .to_string(),
                ))
            }
        }
    }
}

/// What is restricted at entry, from cage.ini.
#[derive(Clone, Copy, Debug)]
pub struct Restrict {
    pub deny_userns: bool,
    pub landlock: bool,
}

impl Restrict {
    fn apply(self) -> Result<(), String> {
        // No exec inside a cage can gain privileges, whatever the flags of
        // a mount that propagated in (see apply::watch).
        rustix::thread::set_no_new_privs(true).map_err(|e| format!("no_new_privs: {e}"))?;
        if self.landlock {
            crate::sys::sandbox::scope_abstract_sockets().map_err(|e| format!("landlock: {e}"))?;
        }
        if self.deny_userns {
            crate::sys::sandbox::deny_user_namespaces().map_err(|e| format!("seccomp: {e}"))?;
        }
        Ok(())
    }
}

/// This process's own namespaces, to undo a partial join.
struct SavedNs {
    mnt: OwnedFd,
    ipc: OwnedFd,
    pid: OwnedFd,
}

impl SavedNs {
    fn open() -> io::Result<SavedNs> {
        let o = |n: &str| -> io::Result<OwnedFd> {
            Ok(rustix::fs::open(
                format!("/proc/self/ns/{n}"),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )?)
        };
        Ok(SavedNs {
            mnt: o("mnt")?,
            ipc: o("ipc")?,
            pid: o("pid")?,
        })
    }

    fn restore_pid(&self) {
        let _ = move_into_link_name_space(self.pid.as_fd(), Some(LinkNameSpaceType::ProcessID));
    }

    fn restore(&self) {
        let _ = move_into_link_name_space(self.mnt.as_fd(), Some(LinkNameSpaceType::Mount));
        let _ = move_into_link_name_space(
            self.ipc.as_fd(),
            Some(LinkNameSpaceType::InterProcessCommunication),
        );
        self.restore_pid();
    }
}

/// Signals the supervisor passes on to the child.
const FORWARDED: &[i32] = &[
    libc::SIGCHLD,
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGPIPE,
];

/// The transparent supervisor: forwards signals, exits like the child.
fn supervise(child: i32, set: &SigSet) -> ! {
    let pid = rustix::process::Pid::from_raw(child).expect("fork returned a positive pid");
    loop {
        if let Ok(Some((_, status))) =
            rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG)
        {
            if let Some(code) = status.exit_status() {
                process::exit_now(code);
            }
            if let Some(sig) = status.terminating_signal() {
                // Die the same way so the caller's parent sees the signal.
                process::default_disposition(sig);
                let _ = process::set_mask(&SigSet::new(&[]));
                let _ = process::kill(rustix::process::getpid().as_raw_nonzero().get(), sig);
                process::exit_now(128 + sig);
            }
        }
        match process::wait_signal(set, Some(1000)) {
            Ok(Some(info)) if info.signo != libc::SIGCHLD && info.signo != libc::SIGPIPE => {
                // A terminal sends job-control and interrupt signals to the
                // whole foreground group, the child included: don't double them.
                let from_tty = info.code == libc::SI_KERNEL
                    && matches!(
                        info.signo,
                        libc::SIGINT
                            | libc::SIGQUIT
                            | libc::SIGTSTP
                            | libc::SIGWINCH
                            | libc::SIGTTIN
                            | libc::SIGTTOU
                    );
                if !from_tty {
                    let _ = process::kill(child, info.signo);
                }
            }
            _ => {}
        }
    }
}
