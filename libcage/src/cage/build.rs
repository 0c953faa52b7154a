//! Building a cage: a double fork whose grandchild is the cage init, pid 1
//! of a new PID namespace, in new mount and IPC namespaces. The init applies
//! the plan and reports on a pipe; on any failure it exits, and the
//! namespaces with every mount made so far vanish with it.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::apply;
use crate::config::{ConfigDir, Settings};
use crate::identity::{Nss, Passwd};
use crate::plan::Plan;
use crate::sys::process::{self, Fork, SigSet};
use crate::Error;

use super::join::{ns_inode, start_time};
use super::record::Record;

pub fn build(
    config: &ConfigDir,
    settings: &Settings,
    user: &Passwd,
    generation: u64,
    fingerprint: String,
) -> Result<Record, Error> {
    // Identity and plan are resolved here, on the host, before any
    // namespace exists (NSS must not run inside the cage).
    let plan = super::make_plan(config, settings, user, &Nss)?;
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::sys("pipe", e))?;
    // SAFETY: enter() checked that this process is single-threaded.
    match unsafe { process::fork() }.map_err(|e| Error::sys("fork", e))? {
        Fork::Child => {
            drop(r);
            intermediate(&plan, w)
        }
        Fork::Parent(pid) => {
            drop(w);
            let mut report = String::new();
            let read = std::fs::File::from(r).read_to_string(&mut report);
            // The intermediate exits right after forking the init. Our host
            // may reap it first (sshd's SIGCHLD handler); ECHILD is fine.
            let _ = rustix::process::waitpid(
                rustix::process::Pid::from_raw(pid),
                rustix::process::WaitOptions::empty(),
            );
            read.map_err(|e| Error::sys("reading the cage init's report", e))?;
            parse_report(&report, user, generation, fingerprint)
        }
    }
}

fn parse_report(
    report: &str,
    user: &Passwd,
    generation: u64,
    fingerprint: String,
) -> Result<Record, Error> {
    let mut pid = None;
    for line in report.lines() {
        if let Some(p) = line.strip_prefix('P') {
            pid = p.parse::<i32>().ok();
        } else if let Some(e) = line.strip_prefix('E') {
            return Err(Error::Build(e.to_string()));
        } else if line == "R" {
            let pid = pid.ok_or_else(|| Error::Build("cage init reported no pid".into()))?;
            let start =
                start_time(pid).map_err(|e| Error::sys("reading the cage init's start time", e))?;
            let ns = |n: &str| {
                ns_inode(pid, n)
                    .map_err(|e| Error::sys(format!("reading the cage init's {n} namespace"), e))
            };
            return Ok(Record {
                uid: user.uid,
                user: user.name.clone(),
                gid: user.gid,
                home: user.dir.clone(),
                shell: user.shell.clone(),
                pid,
                start,
                generation,
                fingerprint,
                mntns: ns("mnt")?,
                pidns: ns("pid")?,
                ipcns: ns("ipc")?,
                created: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            });
        }
    }
    Err(Error::Build("cage init exited before it was ready".into()))
}

/// The intermediate child: new namespaces, fork the init, report its pid.
fn intermediate(plan: &Plan, w: OwnedFd) -> ! {
    let mut w = std::fs::File::from(w);
    let flags = libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWPID;
    // SAFETY: single-threaded (forked from a single-threaded process); no CLONE_FILES.
    let unshared = unsafe { process::unshare(flags) };
    if let Err(e) = unshared {
        let _ = writeln!(w, "Eunshare: {e}");
        process::exit_now(1);
    }
    // SAFETY: still single-threaded.
    match unsafe { process::fork() } {
        Ok(Fork::Child) => init(plan, w),
        Ok(Fork::Parent(pid)) => {
            let _ = writeln!(w, "P{pid}");
            process::exit_now(0)
        }
        Err(e) => {
            let _ = writeln!(w, "Efork: {e}");
            process::exit_now(1)
        }
    }
}

const INIT_SIGNALS: &[i32] = &[
    libc::SIGCHLD,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGHUP,
    libc::SIGINT,
];

/// The cage init: pid 1 of the cage. Applies the plan, then reaps orphans
/// until it is unpinned (SIGTERM) and the cage is empty.
fn init(plan: &Plan, mut w: std::fs::File) -> ! {
    let _ = rustix::process::setsid();
    process::set_name("cage-init");
    for sig in 1..32 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            process::default_disposition(sig);
        }
    }
    let set = SigSet::new(INIT_SIGNALS);
    let _ = process::set_mask(&set);

    let ctx = match apply::Context::open(plan) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(w, "E{e}");
            process::exit_now(1)
        }
    };
    if let Err(e) = apply::apply(plan, &ctx) {
        let _ = writeln!(w, "E{e}");
        process::exit_now(1);
    }
    drop(ctx);
    process::close_fds_except(&[w.as_raw_fd()]);
    process::stdio_to_null();
    drop_privileges();
    let _ = writeln!(w, "R");
    drop(w);

    // Once unpinned (SIGTERM), the init leaves when its cage is empty, but
    // not before a grace period: an entry that just joined may not have
    // forked its first process into the cage yet.
    let mut unpinned_at: Option<std::time::Instant> = None;
    loop {
        let timeout = if unpinned_at.is_some() {
            Some(1000)
        } else {
            None
        };
        match process::wait_signal(&set, timeout) {
            Ok(Some(info)) if info.signo == libc::SIGTERM || info.signo == libc::SIGUSR1 => {
                unpinned_at.get_or_insert_with(std::time::Instant::now);
            }
            Ok(_) => {}
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
        reap();
        // kill(-1, 0) from a PID namespace's init fails with ESRCH exactly
        // when no other process is left in the namespace.
        if unpinned_at.is_some_and(|t| t.elapsed() >= UNPIN_GRACE)
            && matches!(process::kill(-1, 0), Ok(false))
        {
            process::exit_now(0);
        }
    }
}

/// How long an unpinned init waits before it may leave an empty cage.
const UNPIN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

fn reap() {
    while let Ok(Some(_)) = rustix::process::wait(rustix::process::WaitOptions::NOHANG) {}
}

/// The init needs no privilege once the cage is built.
fn drop_privileges() {
    let _ = rustix::thread::set_no_new_privs(true);
    let empty = rustix::thread::CapabilitySets {
        effective: rustix::thread::CapabilitySet::empty(),
        permitted: rustix::thread::CapabilitySet::empty(),
        inheritable: rustix::thread::CapabilitySet::empty(),
    };
    let _ = rustix::thread::set_capabilities(None, empty);
}
