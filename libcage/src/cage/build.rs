//! Building a cage. The plan is computed and every host-side source is
//! opened here, in the caller's (host) mount namespace; then a daemon is
//! spawned whose intermediate joins the seed's tiny mount namespace and
//! unshares new mount, IPC and PID namespaces from it, so that the daemon,
//! the cage init, is pid 1 of the cage. The init child attaches the
//! sources, `pivot_root`s and execs the `cage-init` program; the caller
//! verifies it, records it and only then commits it.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::apply;
use crate::config::{ConfigDir, Settings};
use crate::identity::{Nss, Passwd};
use crate::Error;

use super::daemon::{self, Program, Spec, Started};
use super::join::ns_inode;
use super::record::{self, Record};
use super::seed::{Seed, STAGE};

/// The `comm` of a cage init (what verification checks).
pub const INIT_NAME: &str = "cage-init";

/// A cage built and ready, not recorded yet. Dropping it (any failure
/// before [`Built::commit`]) kills the init, and the cage with it.
pub struct Built {
    pub record: Record,
    started: Started,
}

impl Built {
    /// Once the record is written (or, for a private cage, not needed):
    /// the init outlives this process from now on.
    pub fn commit(self) -> Result<(), Error> {
        self.started.commit().map(drop)
    }
}

pub fn build(
    config: &ConfigDir,
    settings: &Settings,
    user: &Passwd,
    generation: u64,
    fingerprint: String,
) -> Result<Built, Error> {
    // Identity and plan are resolved here, on the host, before any
    // namespace exists (NSS must not run inside the cage).
    let plan = super::make_plan(config, settings, user, &Nss)?;
    crate::timing::mark("plan");
    let run = record::run_dir().map_err(|e| Error::sys("run directory", e))?;
    let program = Program::open(&settings.init_program)?;
    let seed = Seed::get(&run, &program, || crate::cgroup::prepare_seed(settings))?;
    // The init's own cgroup (BASE/<user>/init), out of the builder's.
    let cgroup = crate::cgroup::prepare_init(config, settings, user)?;
    crate::timing::mark("seed");
    let sources = apply::collect(&plan).map_err(Error::from)?;
    crate::timing::mark("sources");
    let prepare = || {
        cgroup.join()?;
        seed.enter()
            .map_err(|e| format!("joining the cage seed: {e}"))?;
        let flags = libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWPID;
        // SAFETY: single-threaded (forked from a single-threaded process);
        // no CLONE_FILES.
        unsafe { crate::sys::process::unshare(flags) }.map_err(|e| format!("unshare: {e}"))
    };
    // The init child attaches the sources and pivot_roots, then becomes
    // `cage-init USER`; on any failure it exits, and the namespaces with
    // every mount made so far vanish with it.
    let setup = move || apply::apply(&plan, sources, Path::new(STAGE)).map_err(|e| e.to_string());
    let spec = Spec {
        what: "cage init",
        comm: INIT_NAME,
        program: &program,
        argv: &[INIT_NAME, &user.name],
    };
    let started = daemon::spawn(&spec, prepare, setup)?;
    crate::timing::mark("spawn");
    // From here on, an early return drops `started`: the init is killed.
    let ns = |n: &str| {
        ns_inode(started.pid, n)
            .map_err(|e| Error::sys(format!("reading the cage init's {n} namespace"), e))
    };
    let record = Record {
        uid: user.uid,
        user: user.name.clone(),
        gid: user.gid,
        home: user.dir.clone(),
        shell: user.shell.clone(),
        pid: started.pid,
        start: started.start,
        generation,
        fingerprint,
        mntns: ns("mnt")?,
        pidns: ns("pid")?,
        ipcns: ns("ipc")?,
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        warm: None,
    };
    crate::timing::mark("init-ns");
    Ok(Built { record, started })
}
