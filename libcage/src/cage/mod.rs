//! Cages as processes (DESIGN.md "Process model"): one small cage init per
//! caged user holds the mount, PID and IPC namespaces; the first entry builds
//! it and records it under `/run/cage/`, later entries verify the record and
//! join through the init.

mod build;
mod daemon;
mod fingerprint;
mod join;
pub mod record;
pub mod seed;
mod supervise;

use std::path::PathBuf;
use std::time::Instant;

use crate::config::ConfigDir;
use crate::identity::{self, Directory, Nss, Passwd};
use crate::policy::{self, Decision, Reason};
use crate::sys::process;
use crate::Error;
pub use join::{Live, Restrict, Terminal};
pub use record::Record;

/// How the caller wants to be in the cage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Return in a new child inside the cage; the calling process stays
    /// outside as a transparent supervisor and never returns.
    Supervise,
    /// PAM style: this process joins the mount and IPC namespaces; the
    /// children it forks are born in the cage's PID namespace.
    ChildrenOnly,
}

/// Who to cage.
#[derive(Clone, Copy, Debug)]
pub enum Who<'a> {
    Name(&'a str),
    Uid(u32),
}

pub struct Request<'a> {
    pub config: &'a ConfigDir,
    pub who: Who<'a>,
    pub mode: Mode,
    /// The syslog tag of the entry line and of failures, e.g.
    /// `pam_cage(su)`, `libcage`, `cage-admin`.
    pub service: &'a str,
    /// Overrides `min_uid` of cage.ini (PAM `min_uid=N`).
    pub min_uid: Option<u32>,
    /// The caller goes on running its own code in the cage without exec
    /// (an FPM worker, an mpm-itk child): every directory and `O_PATH`
    /// descriptor is refused, close-on-exec or not.
    pub in_process: bool,
    /// What the child of a [`Mode::Supervise`] entry gets as its terminal.
    pub terminal: Terminal,
}

#[derive(Clone, Debug)]
pub struct Entered {
    pub user: Passwd,
    pub generation: u64,
    /// True when this entry built the cage, false when it joined one.
    pub built: bool,
    pub micros: u128,
}

#[derive(Clone, Debug)]
pub enum Outcome {
    Entered(Entered),
    NotCaged(Passwd, Reason),
}

fn lookup(who: Who<'_>) -> Result<Passwd, Error> {
    let r = match who {
        Who::Name(n) => Nss.user_by_name(n),
        Who::Uid(u) => Nss.user_by_uid(u),
    };
    let shown = || match who {
        Who::Name(n) => n.to_string(),
        Who::Uid(u) => format!("uid {u}"),
    };
    r.map_err(|e| Error::sys(format!("looking up {}", shown()), e))?
        .ok_or_else(|| Error::NoUser(shown()))
}

/// Resolves the user and decides whether they are caged (no side effects).
pub fn decide(
    config: &ConfigDir,
    who: Who<'_>,
    min_uid: Option<u32>,
) -> Result<(Passwd, Decision), Error> {
    let user = lookup(who)?;
    if let Some(r) = never_caged(user.uid, min_uid) {
        return Ok((user, Decision::NotCaged(r)));
    }
    let mut settings = config.settings().map_err(Error::Config)?;
    if let Some(m) = min_uid {
        settings.min_uid = m;
    }
    let d = policy::evaluate(config, &settings, user.uid, &user.name)?;
    Ok((user, d))
}

/// Decided before any configuration is read, so that a broken cage.ini
/// never locks out root (or users below a `min_uid` given by the caller).
fn never_caged(uid: u32, min_uid: Option<u32>) -> Option<Reason> {
    if uid == 0 {
        Some(Reason::Root)
    } else if min_uid.is_some_and(|m| uid < m) {
        Some(Reason::BelowMinUid)
    } else {
        None
    }
}

/// Puts the caller into the user's cage (see [`Mode`]). Logs one line per
/// entry (user, generation, built or joined, latency) or the failure.
pub fn enter(req: &Request<'_>) -> Result<Outcome, Error> {
    let logger = crate::log::Preconnected::new();
    let shown = match req.who {
        Who::Name(n) => n.to_string(),
        Who::Uid(u) => format!("uid {u}"),
    };
    let r = enter_unlogged(req);
    match &r {
        Ok(Outcome::Entered(e)) => logger.send(
            crate::log::Priority::Info,
            req.service,
            &format!(
                "user {} entered cage generation {} ({}) in {} us",
                e.user.name,
                e.generation,
                if e.built { "built" } else { "joined" },
                e.micros
            ),
        ),
        Ok(Outcome::NotCaged(..)) => {}
        Err(e) => logger.send(
            crate::log::Priority::Err,
            req.service,
            &format!("user {shown}: {e}"),
        ),
    }
    r
}

fn enter_unlogged(req: &Request<'_>) -> Result<Outcome, Error> {
    enter_with(req, Instant::now(), true, false)
}

/// With `cached`, an entry takes the account from the cage record
/// (no NSS on the warm path); whenever that does not lead straight to a
/// current cage, the entry starts over with a fresh NSS lookup.
/// `reloading` carries a `~/.cage/reload` request (already consumed) into
/// the restart.
fn enter_with(
    req: &Request<'_>,
    t0: Instant,
    cached: bool,
    reloading: bool,
) -> Result<Outcome, Error> {
    let from_record = if cached {
        record::run_dir().ok().and_then(|d| {
            let rec = match req.who {
                Who::Uid(uid) => Record::read(&d, uid).ok().flatten(),
                Who::Name(n) => Record::uid_by_name(&d, n)
                    .and_then(|uid| Record::read(&d, uid).ok().flatten())
                    .filter(|r| r.user == n),
            };
            rec.map(|r| r.passwd())
        })
    } else {
        None
    };
    let cached = from_record.is_some();
    let user = match from_record {
        Some(u) => u,
        None => lookup(req.who)?,
    };
    if let Some(r) = never_caged(user.uid, req.min_uid) {
        return Ok(Outcome::NotCaged(user, r));
    }
    // A PAM line's `min_uid=` only decides who this line cages; the cage
    // itself (its accounts, its fingerprint) is built from cage.ini alone,
    // so lines with and without `min_uid=` lead one user to one cage.
    let settings = req.config.settings().map_err(Error::Config)?;
    let mut gate = settings.clone();
    if let Some(m) = req.min_uid {
        gate.min_uid = m;
    }
    match policy::evaluate(req.config, &gate, user.uid, &user.name)? {
        Decision::NotCaged(r) => return Ok(Outcome::NotCaged(user, r)),
        Decision::Caged => {}
    }
    if !rustix::process::geteuid().is_root() {
        return Err(Error::Perm("entering a cage needs root".into()));
    }
    let threads = process::thread_count().map_err(|e| Error::sys("reading /proc/self/task", e))?;
    if threads != 1 {
        return Err(Error::Threads(threads));
    }
    if let Some((fd, what)) =
        process::escaping_fd(req.in_process).map_err(|e| Error::sys("scanning /proc/self/fd", e))?
    {
        return Err(Error::LeakedFd { fd, what });
    }
    let run = record::run_dir().map_err(|e| Error::sys("run directory", e))?;
    let fp = fingerprint::compute(req.config, &settings, &user);
    let reload = reloading || reload_requested(&user);
    let lock_err = |e| Error::sys("locking the cage record", e);
    let read_err = |e| Error::sys("reading the cage record", e);
    let mut built = false;
    let (live, lock) = if !settings.persist {
        // Private (not pinned): every entry builds its own cage, never
        // joins one and records none; it is gone once empty. Exclusive, so
        // a cage pinned while persist was on is retired exactly once.
        let lock =
            record::Lock::acquire(&run, user.uid, record::Share::Exclusive).map_err(lock_err)?;
        if let Some(old) = Record::retire(&run, user.uid).map_err(read_err)? {
            Live::unpin(&old);
        }
        let generation = Record::next_generation(&run, user.uid).map_err(read_err)?;
        let new = build::build(req.config, &settings, &user, generation, fp)?;
        let live = Live::verify(&new.record).map_err(Error::Build)?;
        new.commit()?;
        live.signal_unpin();
        built = true;
        (live, lock)
    } else {
        // Joining a current cage needs only a shared lock (entries of one
        // user run in parallel); building, like unpinning, takes it
        // exclusively.
        let mut lock =
            record::Lock::acquire(&run, user.uid, record::Share::Shared).map_err(lock_err)?;
        let existing = Record::read(&run, user.uid).map_err(read_err)?;
        let fast = match &existing {
            Some(r) if r.fingerprint == fp && !reload => Live::verify(r).ok(),
            _ => None,
        };
        let live = match fast {
            Some(live) => live,
            None if cached => {
                drop(lock);
                return enter_with(req, t0, false, reload);
            }
            None => {
                drop(lock);
                lock = record::Lock::acquire(&run, user.uid, record::Share::Exclusive)
                    .map_err(lock_err)?;
                // Another entry may have built it while we waited.
                let existing = Record::read(&run, user.uid).map_err(read_err)?;
                // Every record is verified, current or not: a record that
                // does not lead to a live cage init of ours is refused (and
                // logged).
                match existing.as_ref().map(|r| (r, Live::verify(r))) {
                    Some((r, Ok(live))) if r.fingerprint == fp && !reload => live,
                    other => {
                        let old = match other {
                            Some((_, Ok(old))) => Some(old),
                            Some((_, Err(why))) => {
                                crate::log::warn(
                                    req.service,
                                    &format!(
                                        "user {}: refusing stale cage record ({why}); building a new cage",
                                        user.name
                                    ),
                                );
                                None
                            }
                            None => None,
                        };
                        let generation =
                            Record::next_generation(&run, user.uid).map_err(read_err)?;
                        let new = build::build(req.config, &settings, &user, generation, fp)?;
                        let live = install(&run, new, old.as_ref())?;
                        end_excess_generations(&run, &user, &settings, req.service);
                        built = true;
                        live
                    }
                }
            }
        };
        (live, lock)
    };
    let generation = live.record.generation;
    let restrict = Restrict {
        deny_userns: !settings.userns,
        landlock: settings.landlock,
    };
    live.join(req.mode, lock, restrict, req.terminal)?;
    Ok(Outcome::Entered(Entered {
        user,
        generation,
        built,
        micros: t0.elapsed().as_micros(),
    }))
}

/// True when the user asked for a fresh cage with `~/.cage/reload`. The
/// file is removed with `unlinkat` relative to a descriptor of `~/.cage`
/// opened without following symlinks: a symlink there is removed itself,
/// its target never touched.
fn reload_requested(user: &Passwd) -> bool {
    use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
    let Ok(home) = crate::apply::open_home(std::path::Path::new(&user.dir)) else {
        return false;
    };
    let flags = ResolveFlags::BENEATH
        | ResolveFlags::NO_SYMLINKS
        | ResolveFlags::NO_MAGICLINKS
        | ResolveFlags::NO_XDEV;
    let Ok(dot) = rustix::fs::openat2(
        &home,
        ".cage",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        flags,
    ) else {
        return false;
    };
    let Ok(dir) = rustix::fs::openat(
        &dot,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    match rustix::fs::statat(&dir, "reload", AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => {
            let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
            let _ = rustix::fs::unlinkat(
                &dir,
                "reload",
                if is_dir {
                    AtFlags::REMOVEDIR
                } else {
                    AtFlags::empty()
                },
            );
            true
        }
        Err(_) => false,
    }
}

/// Makes a freshly built cage the current generation: verifies it first,
/// then writes its record, then commits its init (until then any failure
/// kills it, so no init outlives a failed build and no record names one
/// that failed). The generation it replaces, `old`, is recorded as an old
/// generation and unpinned (it leaves once empty) only after that.
fn install(run: &std::path::Path, new: build::Built, old: Option<&Live>) -> Result<Live, Error> {
    let live = Live::verify(&new.record).map_err(Error::Build)?;
    if let Some(o) = old {
        o.record
            .write_old(run)
            .map_err(|e| Error::sys("recording the old cage generation", e))?;
    }
    new.record
        .write(run)
        .map_err(|e| Error::sys("writing the cage record", e))?;
    if let Err(e) = new.commit() {
        let _ = Record::remove(run, live.record.uid);
        if let Some(o) = old {
            o.signal_unpin();
        }
        return Err(e);
    }
    if let Some(o) = old {
        o.signal_unpin();
    }
    Ok(live)
}

/// Keeps at most `max_generations` live generations of `user` (the
/// current one and old ones still holding processes): the oldest beyond
/// that are ended, their init killed through its pidfd, which kills every
/// process still in that cage (SIGKILL, by the kernel, with the PID
/// namespace). Each is logged. Old records whose init is gone are dropped.
fn end_excess_generations(
    run: &std::path::Path,
    user: &Passwd,
    settings: &crate::config::Settings,
    service: &str,
) {
    let current = Record::read(run, user.uid).ok().flatten();
    let Ok(old) = Record::list_old(run, Some(user.uid)) else {
        return;
    };
    let mut live = Vec::new();
    for r in old {
        if current.as_ref().is_some_and(|c| c.pid == r.pid) {
            continue;
        }
        match Live::verify(&r) {
            Ok(l) => live.push(l),
            Err(_) => {
                let _ = r.remove_old(run);
            }
        }
    }
    let max = settings.max_generations as usize;
    let keep = max.saturating_sub(usize::from(current.is_some()));
    let excess = live.len().saturating_sub(keep);
    // Oldest first (list_old sorts by generation).
    for l in live.into_iter().take(excess) {
        let r = &l.record;
        let n = l.process_count();
        let ended = end_init(r);
        let _ = r.remove_old(run);
        crate::log::warn(
            service,
            &format!(
                "user {}: {} old cage generation {} (init {}, {n} process(es) killed): more than max_generations = {max} live generations",
                user.name,
                if ended { "ended" } else { "could not end" },
                r.generation,
                r.pid
            ),
        );
    }
}

/// Kills a recorded cage init (verified again by pidfd, start time and
/// name) and waits briefly until it is gone.
fn end_init(r: &Record) -> bool {
    let Ok(pidfd) = join::pin_daemon(r.pid, r.start, build::INIT_NAME, "cage init") else {
        return false;
    };
    let sent = rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL).is_ok();
    use std::os::fd::AsFd;
    sent && process::wait_pidfd_exit(pidfd.as_fd(), 2000)
}

/// Builds and pins a new generation of `uid`'s cage now; new entries get
/// it, processes inside the old one keep running there. A user who is no
/// longer caged is unpinned instead. Returns the new generation.
pub fn remount(config: &ConfigDir, uid: u32) -> Result<Option<u64>, Error> {
    let settings = config.settings().map_err(Error::Config)?;
    let user = lookup(Who::Uid(uid))?;
    if policy::evaluate(config, &settings, user.uid, &user.name)? != Decision::Caged {
        unpin(uid)?;
        return Ok(None);
    }
    let threads = process::thread_count().map_err(|e| Error::sys("reading /proc/self/task", e))?;
    if threads != 1 {
        return Err(Error::Threads(threads));
    }
    let run = record::run_dir().map_err(|e| Error::sys("run directory", e))?;
    let _lock = record::Lock::acquire(&run, uid, record::Share::Exclusive)
        .map_err(|e| Error::sys("locking the cage record", e))?;
    let read_err = |e| Error::sys("reading the cage record", e);
    let old = Record::read(&run, uid).map_err(read_err)?;
    let old_live = old.as_ref().and_then(|o| Live::verify(o).ok());
    let generation = Record::next_generation(&run, uid).map_err(read_err)?;
    let fp = fingerprint::compute(config, &settings, &user);
    let new = build::build(config, &settings, &user, generation, fp)?;
    install(&run, new, old_live.as_ref())?;
    end_excess_generations(&run, &user, &settings, "cage-admin");
    crate::log::info(
        "cage-admin",
        &format!(
            "user {} remounted: cage generation {generation} pinned",
            user.name
        ),
    );
    Ok(Some(generation))
}

/// Unpins the cage of `uid`: new entries build a new one; processes inside
/// keep running and the init leaves when the last one exits. Until then it
/// is listed as an old generation.
pub fn unpin(uid: u32) -> Result<bool, Error> {
    let run = record::run_dir().map_err(|e| Error::sys("run directory", e))?;
    let _lock = record::Lock::acquire(&run, uid, record::Share::Exclusive)
        .map_err(|e| Error::sys("locking the cage record", e))?;
    let rec = Record::retire(&run, uid).map_err(|e| Error::sys("unpinning the cage record", e))?;
    if let Some(r) = &rec {
        Live::unpin(r);
    }
    Ok(rec.is_some())
}

/// After `unmount --all`: stops the seed namespace's process (the next
/// build starts a new one), forgets old generations whose init is gone,
/// and unpins cage inits that no record names (a record lost with its
/// user, a private cage, a crash). Returns how many such inits were told
/// to leave.
pub fn unpin_rest() -> Result<usize, Error> {
    let run = record::run_dir().map_err(|e| Error::sys("run directory", e))?;
    seed::Seed::stop(&run);
    let list_err = |e| Error::sys("listing cage records", e);
    let mut recorded: Vec<i32> = Record::list(&run)
        .map_err(list_err)?
        .iter()
        .map(|r| r.pid)
        .collect();
    for r in Record::list_old(&run, None).map_err(list_err)? {
        if Live::verify(&r).is_ok() {
            recorded.push(r.pid);
        } else {
            let _ = r.remove_old(&run);
        }
    }
    let mut n = 0;
    for pid in join::orphan_inits(&recorded) {
        if let Ok(fd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
            if join::is_cage_init(pid.as_raw_nonzero().get())
                && rustix::process::pidfd_send_signal(&fd, rustix::process::Signal::TERM).is_ok()
            {
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Current cages (one record per user) with their process counts (`None`:
/// the recorded init is gone).
pub fn list() -> Result<Vec<(Record, Option<usize>)>, Error> {
    let run = record::run_dir().map_err(|e| Error::sys("run directory", e))?;
    let recs = Record::list(&run).map_err(|e| Error::sys("listing cage records", e))?;
    Ok(recs
        .into_iter()
        .map(|r| {
            let n = Live::verify(&r).ok().map(|l| l.process_count());
            (r, n)
        })
        .collect())
}

/// What a listed cage init is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InitState {
    /// The user's current generation: new entries join it.
    Current,
    /// A replaced or unpinned generation that still holds processes.
    Old,
    /// A cage init no record names (a private cage, `persist = no`, or one
    /// left by a crash).
    Unrecorded,
}

/// One live cage init (or a current record whose init is gone).
#[derive(Clone, Debug, serde::Serialize)]
pub struct ListedInit {
    pub user: String,
    pub uid: Option<u32>,
    pub generation: Option<u64>,
    pub init_pid: i32,
    pub state: InitState,
    /// Processes in the cage besides its init; `None` when the init is gone.
    pub processes: Option<usize>,
    /// Unix time the cage was built (for an unrecorded init: started).
    pub created: Option<u64>,
}

/// Every cage init on the machine: current generations, old ones still
/// alive, and unrecorded ones; sorted by user, then current first, then
/// newest first.
pub fn list_inits() -> Result<Vec<ListedInit>, Error> {
    let run = record::run_dir().map_err(|e| Error::sys("run directory", e))?;
    let list_err = |e| Error::sys("listing cage records", e);
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let row = |r: &Record, state, processes| ListedInit {
        user: r.user.clone(),
        uid: Some(r.uid),
        generation: Some(r.generation),
        init_pid: r.pid,
        state,
        processes,
        created: Some(r.created),
    };
    for r in Record::list(&run).map_err(list_err)? {
        let n = Live::verify(&r).ok().map(|l| l.process_count());
        if n.is_some() {
            seen.push(r.pid);
        }
        out.push(row(&r, InitState::Current, n));
    }
    for r in Record::list_old(&run, None).map_err(list_err)? {
        if seen.contains(&r.pid) {
            continue;
        }
        if let Ok(l) = Live::verify(&r) {
            seen.push(r.pid);
            out.push(row(&r, InitState::Old, Some(l.process_count())));
        }
    }
    let btime = boot_time();
    for pid in join::orphan_inits(&seen) {
        let pid = pid.as_raw_nonzero().get();
        let Some(user) = join::init_user(pid) else {
            continue;
        };
        let processes = join::ns_inode(pid, "pid")
            .ok()
            .map(|ns| join::processes_in(ns, pid));
        let created = join::start_time(pid)
            .ok()
            .zip(btime)
            .map(|(ticks, b)| b + ticks / rustix::param::clock_ticks_per_second());
        out.push(ListedInit {
            uid: Record::uid_by_name(&run, &user),
            user,
            generation: None,
            init_pid: pid,
            state: InitState::Unrecorded,
            processes,
            created,
        });
    }
    out.sort_by(|a, b| {
        (
            &a.user,
            a.state,
            std::cmp::Reverse(a.generation),
            a.init_pid,
        )
            .cmp(&(
                &b.user,
                b.state,
                std::cmp::Reverse(b.generation),
                b.init_pid,
            ))
    });
    Ok(out)
}

/// Boot time (unix seconds), from `btime` in /proc/stat.
fn boot_time() -> Option<u64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// Builds the identity and plan for `user` (what `cage-admin plan` prints
/// and what a cage build applies).
pub fn make_plan(
    config: &ConfigDir,
    settings: &crate::config::Settings,
    user: &Passwd,
    dir: &dyn Directory,
) -> Result<crate::plan::Plan, Error> {
    let mp = config.mount_points_config().map_err(Error::Config)?;
    let extra =
        crate::skeleton::template_accounts(&config.templates_dir()).map_err(Error::Config)?;
    let id = identity::resolve(dir, user, settings.min_uid, &extra)
        .map_err(|e| Error::sys("resolving accounts", e))?;
    let virt_mp = crate::config::virtmp::VirtMp::load(&virt_mp_path(settings, user))
        .map_err(Error::Config)?;
    let custom_dir = config.custom_etc(&user.name);
    let custom = custom_etc_files(&custom_dir);
    crate::plan::plan(&crate::plan::Inputs {
        settings,
        mount_points: &mp,
        identity: &id,
        custom_etc: &custom,
        custom_etc_dir: &custom_dir,
        virt_mp: &virt_mp,
    })
    .map_err(|e| Error::Build(e.to_string()))
}

/// `<state_dir>/<prefix>/<user>/virt.mp`.
pub fn virt_mp_path(settings: &crate::config::Settings, user: &Passwd) -> PathBuf {
    crate::paths::user_state_dir(&settings.state_dir, user.uid, &user.name).join("virt.mp")
}

/// Regular files under `custom.etc/<user>/`, relative, sorted.
fn custom_etc_files(dir: &std::path::Path) -> Vec<PathBuf> {
    fn walk(base: &std::path::Path, rel: &std::path::Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(base.join(rel)) else {
            return;
        };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            let r = rel.join(e.file_name());
            if ft.is_dir() {
                walk(base, &r, out);
            } else if ft.is_file() {
                out.push(r);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, std::path::Path::new(""), &mut out);
    out.sort();
    out
}
