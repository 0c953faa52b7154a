//! Verifying a recorded cage and joining it through its init.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};

use rustix::fs::{Mode, OFlags};
use rustix::thread::{
    move_into_link_name_space, move_into_thread_name_spaces, LinkNameSpaceType, ThreadNameSpaceType,
};

use crate::sys::process::{self, Fork, SigSet};
use crate::sys::pty;
use crate::Error;

use super::record::{Lock, Record};
use super::supervise;
use super::Mode as EnterMode;

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

/// The inode of `pid`'s namespace `name`: one `stat`, which follows the
/// magic link to the nsfs inode (no descriptor opened), so scans of
/// `/proc` cost one call a process.
pub fn ns_inode(pid: i32, name: &str) -> io::Result<u64> {
    Ok(rustix::fs::stat(format!("/proc/{pid}/ns/{name}"))?.st_ino)
}

/// Checks that `fd` is a namespace of type `kind` with inode `ino`.
/// `NS_GET_NSTYPE` is answered by nsfs only (any other file fails it), so
/// it checks the file system and the type at once.
fn check_ns(fd: &OwnedFd, kind: i32, ino: u64, name: &str) -> Result<(), String> {
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

/// The command name and start time (fields 2 and 22) of `stat` under the
/// `/proc/PID` directory `dir`, in one read.
fn read_stat(dir: &OwnedFd) -> io::Result<(String, u64)> {
    let f = rustix::fs::openat(dir, "stat", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut buf = [0u8; 1024];
    let n = rustix::io::read(&f, &mut buf)?;
    parse_stat(&buf[..n]).ok_or_else(|| io::Error::other("malformed stat"))
}

/// `(comm, starttime)` of a `/proc/PID/stat` line. The name (field 2) is
/// between the first `(` and the last `)`: it may itself hold both.
fn parse_stat(b: &[u8]) -> Option<(String, u64)> {
    let s = std::str::from_utf8(b).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s.get(open + 1..close)?.to_string();
    let start = s[close + 1..].split_whitespace().nth(19)?.parse().ok()?;
    Some((comm, start))
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
    /// pinned by a pidfd), is named `cage-init`, runs as root in our user
    /// namespace, and holds namespaces of the recorded types and inodes,
    /// none of them the caller's own.
    ///
    /// With as few system calls as these checks allow: `/proc/PID` is
    /// opened once (`O_PATH`) and everything else is read relative to it;
    /// the name comes from the same read of `stat` as the start time; each
    /// namespace is one open, `NS_GET_NSTYPE` and `fstat`.
    pub fn verify(rec: &Record) -> Result<Live, String> {
        let pid = rec.pid;
        let p = rustix::process::Pid::from_raw(pid).ok_or("invalid pid")?;
        let pidfd = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())
            .map_err(|e| format!("cage init {pid} is gone ({e})"))?;
        let dir = rustix::fs::open(
            format!("/proc/{pid}"),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("cage init {pid} is gone ({e})"))?;
        // Checked after the pidfd was opened: with the start time equal,
        // the pidfd is this very process (a pid is reused only by a later
        // process, with a later start time).
        let (comm, start) = read_stat(&dir).map_err(|e| format!("cage init {pid}: {e}"))?;
        if start != rec.start {
            return Err(format!("pid {pid} is not the recorded cage init"));
        }
        if comm != "cage-init" {
            return Err(format!("pid {pid} is not a cage init"));
        }
        // The owner of /proc/PID is the process's effective uid.
        let owner = rustix::fs::fstat(&dir)
            .map_err(|e| format!("init {pid}: {e}"))?
            .st_uid;
        if owner != 0 {
            return Err(format!("pid {pid} does not run as root"));
        }
        // Made by us: same user namespace as ours, and none of the joined
        // namespaces is the one we are already in (the host's).
        let mine = |n: &str| ns_inode_self(n).map_err(|e| format!("own {n} namespace: {e}"));
        let theirs = rustix::fs::statat(&dir, "ns/user", rustix::fs::AtFlags::empty())
            .map_err(|e| format!("user: {e}"))?
            .st_ino;
        if theirs != mine("user")? {
            return Err(format!("pid {pid} lives in another user namespace"));
        }
        for (name, kind, ino) in [
            ("mnt", libc::CLONE_NEWNS, rec.mntns),
            ("pid", libc::CLONE_NEWPID, rec.pidns),
            ("ipc", libc::CLONE_NEWIPC, rec.ipcns),
        ] {
            if ino == mine(name)? {
                return Err(format!("recorded {name} namespace is the host's own"));
            }
            let fd = rustix::fs::openat(
                &dir,
                format!("ns/{name}"),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| format!("{name}: {e}"))?;
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
    pub fn join(
        self,
        mode: EnterMode,
        lock: Lock,
        r: Restrict,
        terminal: Terminal,
    ) -> Result<(), Error> {
        match mode {
            EnterMode::ChildrenOnly => {
                let res = self.join_children_only(r);
                drop(lock);
                res
            }
            EnterMode::Supervise => self.join_supervised(lock, r, terminal),
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
    /// never returns. Returns `Ok` in the child, once it is completely set
    /// up; a failure or a panic while setting it up ends the child with
    /// `_exit` (its body never unwinds or returns into the caller), and the
    /// parent returns the error.
    fn join_supervised(
        self,
        lock: Lock,
        restrict: Restrict,
        terminal: Terminal,
    ) -> Result<(), Error> {
        let saved = SavedNs::open().map_err(|e| Error::sys("saving own namespaces", e))?;
        // Which standard descriptors get the pty (those that are terminals).
        let ttys = match terminal {
            Terminal::Relay => pty::std_ttys(),
            Terminal::Detach => [false; 3],
        };
        let set = SigSet::new(FORWARDED);
        let old_mask = process::block(&set).map_err(|e| Error::sys("sigprocmask", e))?;
        let undo = |saved: &SavedNs| {
            saved.restore();
            let _ = process::set_mask(&old_mask);
        };
        let sigfd = match process::signal_fd(&set) {
            Ok(fd) => fd,
            Err(e) => {
                undo(&saved);
                return Err(Error::sys("signalfd", e));
            }
        };
        let (ours, theirs) = match socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        ) {
            Ok(p) => p,
            Err(e) => {
                undo(&saved);
                return Err(Error::sys("socketpair", e));
            }
        };
        if let Err(e) =
            move_into_thread_name_spaces(self.pidfd.as_fd(), ThreadNameSpaceType::PROCESS_ID)
        {
            undo(&saved);
            return Err(Error::Join(format!("setns pid: {e}")));
        }
        // SAFETY: enter() checked that this process is single-threaded.
        match unsafe { process::fork() } {
            Err(e) => {
                undo(&saved);
                Err(Error::sys("fork", e))
            }
            Ok(Fork::Child) => {
                drop(ours);
                drop(sigfd);
                drop(lock);
                let res = crate::panic_guard::catch(|| self.set_up_child(restrict, ttys))
                    .unwrap_or_else(|p| Err(format!("internal error: {p}")));
                match res {
                    Ok(master) => {
                        let _ = process::set_mask(&old_mask);
                        if send_status(&theirs, b"R", master.as_ref()).is_err() {
                            process::exit_now(127)
                        }
                        drop(master);
                        drop(theirs);
                        drop(saved);
                        drop(self);
                        Ok(())
                    }
                    Err(m) => {
                        let _ = send_status(&theirs, format!("E{m}").as_bytes(), None);
                        process::exit_now(127)
                    }
                }
            }
            Ok(Fork::Parent(child)) => {
                drop(theirs);
                saved.restore_pid();
                let (msg, master) = recv_status(&ours);
                drop(ours);
                drop(lock);
                if msg == "R" {
                    drop(saved);
                    drop(self);
                    let relay = master.map(|master| supervise::Relay {
                        master,
                        // A background job leaves the terminal alone.
                        input: ttys[0] && pty::in_foreground(pty::std_fd(0)),
                        output: [1, 2, 0]
                            .into_iter()
                            .find(|&n| ttys[n as usize])
                            .unwrap_or(1),
                    });
                    supervise::run(child, sigfd, relay)
                }
                let _ = process::kill(child, libc::SIGKILL);
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

    /// In the new child: the cage's namespaces, a session of its own (no
    /// caller's terminal as controlling terminal), the pty when `ttys`
    /// names a standard descriptor, the restrictions. Returns the pty's
    /// master for the supervisor.
    fn set_up_child(&self, restrict: Restrict, ttys: [bool; 3]) -> Result<Option<OwnedFd>, String> {
        process::die_with_parent(libc::SIGKILL).map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
        let flags = ThreadNameSpaceType::MOUNT | ThreadNameSpaceType::INTER_PROCESS_COMMUNICATION;
        move_into_thread_name_spaces(self.pidfd.as_fd(), flags)
            .map_err(|e| format!("setns: {e}"))?;
        process::join_new_session_keyring().map_err(|e| format!("new session keyring: {e}"))?;
        pty::new_session().map_err(|e| format!("setsid: {e}"))?;
        let master = if ttys.iter().any(|&t| t) {
            // From the cage's own devpts instance (its /dev/ptmx).
            let p = pty::open_pty().map_err(|e| format!("opening a pty in the cage: {e}"))?;
            let from = [0, 1, 2]
                .into_iter()
                .find(|&n| ttys[n as usize])
                .map(pty::std_fd)
                .expect("a terminal among fds 0-2");
            pty::copy_settings(from, p.slave.as_fd())
                .map_err(|e| format!("copying terminal settings: {e}"))?;
            // The user's own terminal, as login programs leave it.
            rustix::fs::fchown(
                &p.slave,
                Some(rustix::fs::Uid::from_raw(self.record.uid)),
                None,
            )
            .map_err(|e| format!("chown of the pty: {e}"))?;
            rustix::fs::fchmod(&p.slave, Mode::from_raw_mode(0o620))
                .map_err(|e| format!("chmod of the pty: {e}"))?;
            use std::os::fd::AsRawFd;
            pty::attach(&p.slave, ttys, p.master.as_raw_fd())
                .map_err(|e| format!("attaching the pty: {e}"))?;
            Some(p.master)
        } else {
            None
        };
        restrict.apply()?;
        Ok(master)
    }
}

/// The child's report to its parent: `R` (ready, with the pty master when
/// there is one) or `E` and the reason.
fn send_status(sock: &OwnedFd, msg: &[u8], fd: Option<&OwnedFd>) -> io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    let fds;
    if let Some(f) = fd {
        fds = [f.as_fd()];
        anc.push(SendAncillaryMessage::ScmRights(&fds));
    }
    rustix::net::sendmsg(
        sock,
        &[io::IoSlice::new(msg)],
        &mut anc,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

/// Receives the child's report (empty when the child died first).
fn recv_status(sock: &OwnedFd) -> (String, Option<OwnedFd>) {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let mut buf = vec![0u8; 8192];
    let n = loop {
        match rustix::net::recvmsg(
            sock,
            &mut [io::IoSliceMut::new(&mut buf)],
            &mut anc,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(r) => break r.bytes,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break 0,
        }
    };
    let mut fd = None;
    for m in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = m {
            for f in fds {
                fd.get_or_insert(f);
            }
        }
    }
    (String::from_utf8_lossy(&buf[..n]).into_owned(), fd)
}

/// What the child of a supervised entry gets as its terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Terminal {
    /// A session of its own (`setsid`): no controlling terminal; fds 0-2
    /// are passed on as they are.
    Detach,
    /// As `Detach`, and when any of fds 0-2 is a terminal, a fresh pty of
    /// the cage is put on those descriptors as the controlling terminal;
    /// the supervisor relays it to the caller's terminal (raw mode while
    /// it runs, window size followed) and stops reading the caller's
    /// terminal the moment the child exits.
    Relay,
}

/// What is restricted at entry, from cage.ini.
#[derive(Clone, Copy, Debug)]
pub struct Restrict {
    pub deny_userns: bool,
    pub landlock: bool,
}

impl Restrict {
    /// A Landlock domain when enabled and available (it refuses
    /// ptrace-class access to processes outside it); the seccomp filter
    /// for user namespaces, for ptrace-class calls where no domain
    /// could be applied, and always for `TIOCSTI`/`TIOCLINUX` (an
    /// interactive `su` leaves the caller's terminal to the user's
    /// processes: none may push input into it).
    fn apply(self) -> Result<(), String> {
        // No exec inside a cage can gain privileges, whatever the flags of
        // a mount that propagated in (see apply::watch).
        rustix::thread::set_no_new_privs(true).map_err(|e| format!("no_new_privs: {e}"))?;
        use crate::sys::sandbox::{self, Domain, Rules};
        let domain = if self.landlock {
            sandbox::landlock_domain().map_err(|e| format!("landlock: {e}"))?
        } else {
            Domain::Unavailable
        };
        sandbox::install_filter(Rules {
            deny_userns: self.deny_userns,
            deny_ptrace: domain == Domain::Unavailable,
            deny_tty_injection: true,
        })
        .map_err(|e| format!("seccomp: {e}"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_name_and_start_time() {
        let line =
            b"4242 (cage-init) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 10";
        assert_eq!(parse_stat(line), Some(("cage-init".into(), 12345)));
        // A name holding ") " cannot shift the fields.
        let tricky = b"7 (x) S 1 (y) S 1 7 7 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 99 1000 10";
        assert_eq!(parse_stat(tricky), Some(("x) S 1 (y".into(), 99)));
        assert_eq!(parse_stat(b"7 (x"), None);
    }
}
