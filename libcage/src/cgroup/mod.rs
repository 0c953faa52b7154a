//! Per-user resource limits (DESIGN.md "Resource limits"): every process
//! that enters a cage is moved, synchronously and before it runs user
//! code, into `BASE/<user>/<service>`; the cage init lives in
//! `BASE/<user>/init` and the seed in `BASE/seed`, out of the cgroup of
//! whatever service started them. The limits (`cage.ini` `[cgroup]`,
//! `limits.conf`) sit on `BASE/<user>`.
//!
//! - [`limits`]: the values and `limits.conf`;
//! - [`cgrules`]: importing libcgroup's `cgrules.conf`;
//! - [`layout`]: the directories and files, a pure value (v1 and v2);
//! - [`fs`]: the file system side.

pub mod cgrules;
pub mod fs;
pub mod layout;
pub mod limits;

use std::path::PathBuf;

use crate::config::{ConfigDir, Settings};
use crate::identity::Passwd;
use crate::Error;

pub use layout::{Controller, Hierarchy};
pub use limits::{Effective, Key, Limits};

/// `[cgroup]` of `cage.ini`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupSettings {
    pub enable: bool,
    /// `None`: every controller the machine offers.
    pub controllers: Option<Vec<Controller>>,
    /// `None`: `/cage` on v1, `/cage.slice` on v2.
    pub base: Option<String>,
    pub defaults: Limits,
    /// The `cage.ini` line of each default that is set.
    pub lines: Vec<(Key, usize)>,
}

/// Where cage's cgroups are on this machine, and which controllers.
#[derive(Clone, Debug)]
pub struct Context {
    pub hierarchy: Hierarchy,
    pub base: String,
    pub controllers: Vec<Controller>,
}

const TAG: &str = "cage-cgroup";

impl Context {
    /// `None` when `[cgroup] enable` is off.
    pub fn new(s: &CgroupSettings) -> Result<Option<Context>, Error> {
        if !s.enable {
            return Ok(None);
        }
        let wanted = s
            .controllers
            .clone()
            .unwrap_or_else(|| layout::CONTROLLERS.to_vec());
        let hierarchy = fs::detect(&wanted)
            .map_err(|e| Error::sys("reading /proc/self/mountinfo", e))?
            .ok_or_else(|| {
                Error::Build("[cgroup] enable = yes, but no cgroup hierarchy is mounted".into())
            })?;
        let controllers = match &hierarchy {
            Hierarchy::V1(hs) => wanted
                .iter()
                .copied()
                .filter(|c| hs.iter().any(|h| h.serves(&[*c]).len() == 1))
                .collect(),
            Hierarchy::V2 { mount } if s.controllers.is_none() => {
                // Default: what the base is offered (its parent's
                // subtree_control), or before it exists what its parent has.
                let base = s.base.as_deref().unwrap_or("/cage.slice");
                let rel = std::path::Path::new(base.trim_start_matches('/'));
                let have = fs::v2_available(&mount.join(rel)).or_else(|_| {
                    fs::v2_available(&rel.parent().map_or(mount.clone(), |p| mount.join(p)))
                });
                let have = have.unwrap_or_default();
                wanted.into_iter().filter(|c| have.contains(c)).collect()
            }
            Hierarchy::V2 { .. } => wanted,
        };
        let base = s.base.clone().unwrap_or_else(|| match hierarchy {
            Hierarchy::V1(_) => "/cage".to_string(),
            Hierarchy::V2 { .. } => "/cage.slice".to_string(),
        });
        Ok(Some(Context {
            hierarchy,
            base,
            controllers,
        }))
    }

    fn devices(&self) -> Vec<layout::Device> {
        if self.controllers.contains(&Controller::Io) {
            fs::block_devices()
        } else {
            Vec::new()
        }
    }

    /// `BASE/<user>` in every hierarchy.
    pub fn user_dirs(&self, user: &str) -> Vec<PathBuf> {
        layout::user_dirs(&self.hierarchy, &self.base, &self.controllers, user)
    }

    /// `BASE` in every hierarchy.
    pub fn base_dirs(&self) -> Vec<PathBuf> {
        layout::user_dirs(&self.hierarchy, &self.base, &self.controllers, "")
            .into_iter()
            .map(|p| p.components().collect())
            .collect()
    }
}

/// `limits.conf` of the configuration directory.
pub fn limits_path(config: &ConfigDir) -> PathBuf {
    config.path().join("limits.conf")
}

/// The user's groups by name (only asked of NSS when `limits.conf` has
/// group lines).
fn group_names(user: &Passwd) -> Vec<String> {
    let gids = crate::sys::nss::getgrouplist(&user.name, user.gid).unwrap_or_default();
    gids.into_iter()
        .filter_map(|g| crate::sys::nss::getgrgid(g).ok().flatten())
        .map(|g| g.name)
        .collect()
}

/// The effective limits of `user`. A malformed `limits.conf` line is
/// logged (file:line and why) and left out; the user is caged all the
/// same, with the lines that are good and the `cage.ini` defaults.
pub fn effective(
    config: &ConfigDir,
    settings: &Settings,
    user: &Passwd,
    log: bool,
) -> (Effective, Vec<crate::config::ConfigError>) {
    let (file, errors) = limits::LimitsFile::load(&limits_path(config));
    if log {
        for e in &errors {
            crate::log::warn(
                TAG,
                &format!(
                    "user {}: {e}; line ignored, limits from cage.ini and the other lines",
                    user.name
                ),
            );
        }
    }
    let groups = if file
        .rules
        .iter()
        .any(|r| matches!(r.target, limits::Target::Group(_)))
    {
        group_names(user)
    } else {
        Vec::new()
    };
    let c = &settings.cgroup;
    (
        limits::effective(
            &c.defaults,
            &c.lines,
            &config.ini(),
            &file,
            &user.name,
            &groups,
        ),
        errors,
    )
}

fn lock() -> Result<crate::cage::record::Lock, Error> {
    let run = crate::cage::record::run_dir().map_err(|e| Error::sys("run directory", e))?;
    crate::cage::record::Lock::acquire_file(
        &run.join("cgroup.lock"),
        crate::cage::record::Share::Exclusive,
    )
    .map_err(|e| Error::sys("locking the cgroup layout", e))
}

/// Makes `BASE/<user>` with its limits and the leaf `leaf`, under the
/// machine-wide cgroup lock, so concurrent first entries agree: the
/// limits are written before any leaf exists, and processes only go to
/// leaves.
fn ensure_user(
    ctx: &Context,
    config: &ConfigDir,
    settings: &Settings,
    user: &Passwd,
    leaf: &str,
) -> Result<Vec<PathBuf>, Error> {
    layout::check_name("user", &user.name).map_err(Error::Build)?;
    let (eff, _) = effective(config, settings, user, true);
    let p = layout::user(
        &ctx.hierarchy,
        &ctx.base,
        &ctx.controllers,
        &user.name,
        leaf,
        &eff.limits,
        &ctx.devices(),
    );
    let _lock = lock()?;
    let warnings = fs::apply(&p.setup, fs::Tree::Kernel)
        .map_err(|e| Error::Build(format!("cgroup of {}: {e}", user.name)))?;
    for w in warnings {
        crate::log::warn(TAG, &format!("user {}: {w}", user.name));
    }
    Ok(p.leaves)
}

/// Entry: moves the calling process into `BASE/<user>/<service>` (made
/// and limited on first use). Nothing when `[cgroup]` is off. A failure
/// refuses the entry (fail closed: an entry never runs unlimited).
pub fn place_entry(
    config: &ConfigDir,
    settings: &Settings,
    user: &Passwd,
    service: &str,
) -> Result<(), Error> {
    let Some(ctx) = Context::new(&settings.cgroup)? else {
        return Ok(());
    };
    let leaf = layout::service_leaf(service);
    let leaves: Vec<PathBuf> = ctx
        .user_dirs(&user.name)
        .into_iter()
        .map(|d| d.join(&leaf))
        .collect();
    // Warm path: the leaf exists, so its user's limits were written first.
    let leaves = if leaves.iter().all(|l| l.is_dir()) {
        leaves
    } else {
        ensure_user(&ctx, config, settings, user, &leaf)?
    };
    fs::Joiner::open(&leaves)
        .and_then(|j| j.join())
        .map_err(|e| Error::Build(format!("cgroup of {}: {e}", user.name)))
}

/// Before a cage init is spawned: (re)writes the user's limits and opens
/// `BASE/<user>/init`; the forked child joins it.
pub fn prepare_init(
    config: &ConfigDir,
    settings: &Settings,
    user: &Passwd,
) -> Result<fs::Joiner, Error> {
    let Some(ctx) = Context::new(&settings.cgroup)? else {
        return Ok(fs::Joiner::none());
    };
    let leaves = ensure_user(&ctx, config, settings, user, "init")?;
    fs::Joiner::open(&leaves).map_err(|e| Error::Build(format!("cgroup of {}: {e}", user.name)))
}

/// Before the seed is spawned: opens `BASE/seed`.
pub fn prepare_seed(settings: &Settings) -> Result<fs::Joiner, Error> {
    let Some(ctx) = Context::new(&settings.cgroup)? else {
        return Ok(fs::Joiner::none());
    };
    let p = layout::seed(&ctx.hierarchy, &ctx.base, &ctx.controllers);
    let _lock = lock()?;
    fs::apply(&p.setup, fs::Tree::Kernel).map_err(|e| Error::Build(format!("seed cgroup: {e}")))?;
    fs::Joiner::open(&p.leaves).map_err(|e| Error::Build(format!("seed cgroup: {e}")))
}

/// Usage of one user's cgroup (what `cage-admin top` shows).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Usage {
    pub user: String,
    /// CPU time, microseconds.
    pub cpu_usec: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub pids: Option<u64>,
    pub io_read_bytes: Option<u64>,
    pub io_write_bytes: Option<u64>,
    /// Processes per leaf (`init`, `sshd`, `su`, ...).
    pub services: Vec<(String, usize)>,
    /// The limits as set in the cgroup files.
    pub limits: Limits,
}

/// Reads the usage of every user directory under `BASE`.
pub fn usage(ctx: &Context) -> Vec<Usage> {
    let mut users: Vec<String> = Vec::new();
    for b in ctx.base_dirs() {
        if let Ok(rd) = std::fs::read_dir(&b) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if e.file_type().is_ok_and(|t| t.is_dir()) && n != "seed" && !users.contains(&n) {
                    users.push(n);
                }
            }
        }
    }
    users.sort();
    users.iter().map(|u| usage_of(ctx, u)).collect()
}

fn usage_of(ctx: &Context, user: &str) -> Usage {
    let mut u = Usage {
        user: user.to_string(),
        ..Usage::default()
    };
    let dirs = ctx.user_dirs(user);
    match &ctx.hierarchy {
        Hierarchy::V1(hs) => {
            for (h, d) in hs
                .iter()
                .filter(|h| !h.serves(&ctx.controllers).is_empty())
                .zip(&dirs)
            {
                let has = |s: &str| h.subsystems.iter().any(|x| x == s);
                if has("cpuacct") {
                    u.cpu_usec = fs::read_u64(&d.join("cpuacct.usage")).map(|n| n / 1000);
                }
                if has("cpu") {
                    let q = std::fs::read_to_string(d.join("cpu.cfs_quota_us")).ok();
                    u.limits.cpu = q
                        .and_then(|q| q.trim().parse::<i64>().ok())
                        .filter(|&q| q > 0)
                        .map(|q| q as u64 / 1000);
                }
                if has("memory") {
                    u.memory_bytes = fs::read_u64(&d.join("memory.usage_in_bytes"));
                    u.limits.memory =
                        fs::read_u64(&d.join("memory.limit_in_bytes")).filter(|&m| m < (1 << 62));
                }
                if has("pids") {
                    u.pids = fs::read_u64(&d.join("pids.current"));
                    u.limits.pids = fs::read_u64(&d.join("pids.max"));
                    u.services = services(d);
                }
                if has("blkio") {
                    let f = d.join("blkio.throttle.io_service_bytes_recursive");
                    let f = if f.exists() {
                        f
                    } else {
                        d.join("blkio.throttle.io_service_bytes")
                    };
                    u.io_read_bytes = fs::read_blkio(&f, "Read");
                    u.io_write_bytes = fs::read_blkio(&f, "Write");
                }
            }
            if u.services.is_empty() {
                if let Some(d) = dirs.first() {
                    u.services = services(d);
                }
            }
        }
        Hierarchy::V2 { .. } => {
            if let Some(d) = dirs.first() {
                u.cpu_usec = fs::read_keyed(&d.join("cpu.stat"), "usage_usec");
                u.memory_bytes = fs::read_u64(&d.join("memory.current"));
                u.pids = fs::read_u64(&d.join("pids.current"));
                u.io_read_bytes = fs::read_io_stat(&d.join("io.stat"), "rbytes");
                u.io_write_bytes = fs::read_io_stat(&d.join("io.stat"), "wbytes");
                u.limits.memory = fs::read_u64(&d.join("memory.max"));
                u.limits.pids = fs::read_u64(&d.join("pids.max"));
                u.limits.cpu = std::fs::read_to_string(d.join("cpu.max"))
                    .ok()
                    .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                    .map(|q| q / 1000);
                u.services = services(d);
            }
        }
    }
    u
}

fn services(user_dir: &std::path::Path) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(user_dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.push((
                    e.file_name().to_string_lossy().into_owned(),
                    fs::procs_below(&e.path()).len(),
                ));
            }
        }
    }
    out.sort();
    out
}
