//! Building a cage. The plan is computed and every host-side source is
//! opened here, in the caller's (host) mount namespace; then a daemon is
//! spawned whose intermediate joins the seed's tiny mount namespace and
//! unshares new mount, IPC and PID namespaces from it, so that the daemon,
//! the cage init, is pid 1 of the cage. The init attaches the sources,
//! `pivot_root`s and reports; on any failure it exits, and the namespaces
//! with every mount made so far vanish with it.

use std::fs::File;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::apply;
use crate::config::{ConfigDir, Settings};
use crate::identity::{Nss, Passwd};
use crate::plan::Plan;
use crate::sys::process::{self, SigSet};
use crate::Error;

use super::daemon;
use super::join::{ns_inode, start_time};
use super::record::{self, Record};
use super::seed::{Seed, STAGE};

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
    let run = record::run_dir().map_err(|e| Error::sys("run directory", e))?;
    let seed = Seed::get(&run)?;
    let sources = apply::collect(&plan).map_err(Error::from)?;
    let prepare = || {
        seed.enter()
            .map_err(|e| format!("joining the cage seed: {e}"))?;
        let flags = libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWPID;
        // SAFETY: single-threaded (forked from a single-threaded process);
        // no CLONE_FILES.
        unsafe { process::unshare(flags) }.map_err(|e| format!("unshare: {e}"))
    };
    let pid = daemon::spawn("cage init", prepare, |w| init(&plan, sources, w))?;
    let start = start_time(pid).map_err(|e| Error::sys("reading the cage init's start time", e))?;
    let ns = |n: &str| {
        ns_inode(pid, n)
            .map_err(|e| Error::sys(format!("reading the cage init's {n} namespace"), e))
    };
    Ok(Record {
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
    })
}

const INIT_SIGNALS: &[i32] = &[
    libc::SIGCHLD,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGHUP,
    libc::SIGINT,
];

/// The cage init: pid 1 of the cage. Builds the tree, then reaps orphans
/// until it is unpinned (SIGTERM) and the cage is empty.
fn init(plan: &Plan, sources: apply::Sources, w: File) -> ! {
    let _ = rustix::process::setsid();
    process::set_name("cage-init");
    for sig in 1..32 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            process::default_disposition(sig);
        }
    }
    let set = SigSet::new(INIT_SIGNALS);
    let _ = process::set_mask(&set);
    if let Err(e) = apply::apply(plan, sources, Path::new(STAGE)) {
        daemon::fail(w, e);
    }
    daemon::ready(w);

    // Once unpinned (SIGTERM), the init leaves when its cage is empty, but
    // not before a grace period: an entry that just joined may not have
    // forked its first process into the cage yet.
    let mut unpinned_at: Option<std::time::Instant> = None;
    loop {
        let timeout = unpinned_at.map(|_| 250);
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
