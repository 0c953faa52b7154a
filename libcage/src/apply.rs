//! Applies a [`Plan`]: the one module that turns a plan into mounts. It runs
//! inside the new cage init (pid 1 of the cage's PID namespace, in its fresh
//! mount namespace), so a failure anywhere leaves nothing behind: the init
//! exits and the namespace with every mount made so far goes with it.
//!
//! Every mount is made from a file descriptor with the new mount API
//! (`open_tree`, `fsopen`/`fsmount`, `move_mount`, `mount_setattr`); the
//! skeleton is cloned read-only and nothing is ever created in it nor in a
//! host directory ([`tree`]); every path under the user's home is opened
//! with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` from a descriptor of the
//! home; mounts that propagate in later are kept `nosuid,nodev` ([`watch`]).

mod tree;
pub mod watch;

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, Mode, OFlags, ResolveFlags, CWD};
use rustix::mount::{
    self as rmount, FsMountFlags, FsOpenFlags, MountAttrFlags, MountPropagationFlags,
    MoveMountFlags, OpenTreeFlags, UnmountFlags,
};

use crate::config::Hidepid;
use crate::plan::{Op, Plan, Source};
use crate::sys::mount::{
    set_attrs, set_propagation, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID,
    MOUNT_ATTR_RDONLY, MS_PRIVATE, MS_SLAVE,
};
use tree::{Kind, Tree};

/// A failed step: which op (as the plan prints it) and why.
#[derive(Debug)]
pub struct ApplyError {
    pub step: String,
    pub err: io::Error,
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step, self.err)
    }
}

impl ApplyError {
    /// The refused path and why, when a user-controlled path was refused.
    pub fn hostile(&self) -> Option<(&Path, &str)> {
        self.err
            .get_ref()
            .and_then(|e| e.downcast_ref::<HostilePath>())
            .map(|h| (h.path.as_path(), h.reason.as_str()))
    }

    pub fn is_hostile(&self) -> bool {
        self.hostile().is_some()
    }
}

impl From<ApplyError> for crate::Error {
    fn from(e: ApplyError) -> crate::Error {
        match e.hostile() {
            Some((path, reason)) => crate::Error::Hostile {
                path: path.display().to_string(),
                reason: reason.to_string(),
            },
            None => crate::Error::Build(e.to_string()),
        }
    }
}

fn step<T>(what: impl FnOnce() -> String, r: io::Result<T>) -> Result<T, ApplyError> {
    r.map_err(|err| ApplyError { step: what(), err })
}

/// A user-controlled path refused (symlink, wrong owner, wrong type),
/// carried inside an `io::Error` so callers can tell it from other failures.
#[derive(Debug)]
struct HostilePath {
    path: PathBuf,
    reason: String,
}

impl fmt::Display for HostilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for HostilePath {}

fn hostile(path: PathBuf, reason: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        HostilePath { path, reason },
    )
}

const BENEATH: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS)
    .union(ResolveFlags::NO_XDEV);

/// Opens the user's home, one component at a time from `/`. The last
/// component must not be a symlink. A symlink on the way (`/home` a link
/// to `/srv/home`) is followed only when it is root's and lies in a
/// directory that only root can change (owned by root, not writable by
/// group or others): below a directory a user owns or may write (a home
/// under a reseller's tree, `/srv/zed/www/public` with `/srv/zed` zed's),
/// that user could point the path anywhere, and root would bind a
/// directory the user cannot even reach as their home and create
/// `~/.cage` in it. Such a symlink is refused as hostile.
pub fn open_home(home: &Path) -> io::Result<OwnedFd> {
    if !home.is_absolute() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("home {} is not an absolute path", home.display()),
        ));
    }
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let root = || rfs::open("/", dir_flags, Mode::empty());
    let mut cur = root()?;
    // Components still to walk, the next one last.
    let mut todo: Vec<std::ffi::OsString> = components_rev(home);
    let mut links = 0;
    while let Some(name) = todo.pop() {
        let last = todo.is_empty();
        let at = rfs::openat2(
            &cur,
            name.as_os_str(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )?;
        let st = rfs::fstat(&at)?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => cur = at,
            libc::S_IFLNK => {
                let parent = rfs::fstat(&cur)?;
                let trusted = st.st_uid == 0 && parent.st_uid == 0 && parent.st_mode & 0o022 == 0;
                if last || !trusted {
                    return Err(hostile(
                        home.to_path_buf(),
                        format!(
                            "has a symlink at {:?}{}; not followed",
                            name,
                            if last {
                                " (the home itself)"
                            } else {
                                " in a directory that is not only root's"
                            }
                        ),
                    ));
                }
                links += 1;
                if links > 40 {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = rfs::readlinkat(&at, "", Vec::new())?;
                let target = Path::new(std::ffi::OsStr::from_bytes(target.as_bytes()));
                if target.is_absolute() {
                    cur = root()?;
                }
                todo.extend(components_rev(target));
            }
            _ => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
        }
    }
    Ok(rfs::openat(
        &cur,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// The normal and `..` components of `p`, last first (`.` and `/` dropped).
fn components_rev(p: &Path) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    v.reverse();
    v
}

/// Opens (creating when missing) the directory `rel` below `home` (whose
/// path is `home_path`, for messages), one component at a time, never
/// following a symlink, never leaving the home. Directories it creates get
/// `uid:gid` and (the last one) `mode`; an existing directory must belong
/// to `uid`.
pub fn open_under_home(
    home: BorrowedFd<'_>,
    home_path: &Path,
    rel: &Path,
    uid: u32,
    gid: u32,
    mode: u32,
) -> io::Result<OwnedFd> {
    let comps: Vec<&std::ffi::OsStr> = rel
        .components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad path ~/{}", rel.display()),
            )),
        })
        .collect::<io::Result<_>>()?;
    let mut dir: Option<OwnedFd> = None;
    let mut shown = home_path.to_path_buf();
    for (i, name) in comps.iter().enumerate() {
        shown.push(name);
        let last = i + 1 == comps.len();
        let parent = dir.as_ref().map_or(home, |d| d.as_fd());
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut created = false;
        let fd = match rfs::openat2(parent, *name, flags, Mode::empty(), BENEATH) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => {
                let m = if last { mode } else { 0o711 };
                match rfs::mkdirat(parent, *name, Mode::from_raw_mode(m)) {
                    Ok(()) => created = true,
                    Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => {
                        return Err(io::Error::new(
                            io::Error::from(e).kind(),
                            format!("cannot create {}: {e}", shown.display()),
                        ))
                    }
                }
                rfs::openat2(parent, *name, flags, Mode::empty(), BENEATH)
                    .map_err(|e| refuse(&shown, e))?
            }
            Err(e) => return Err(refuse(&shown, e)),
        };
        let st = rfs::fstat(&fd)?;
        if created {
            rfs::fchown(
                &fd,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            )?;
            rfs::fchmod(&fd, Mode::from_raw_mode(if last { mode } else { 0o711 }))?;
        } else if st.st_uid != uid {
            return Err(hostile(
                shown,
                format!("is owned by uid {}, not by the user", st.st_uid),
            ));
        }
        dir = Some(fd);
    }
    dir.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty path"))
}

fn refuse(shown: &Path, e: rustix::io::Errno) -> io::Error {
    match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::XDEV | rustix::io::Errno::NOTDIR => hostile(
            shown.to_path_buf(),
            "is a symlink, not a directory, or leaves the home; not followed".into(),
        ),
        e => io::Error::new(
            io::Error::from(e).kind(),
            format!("{}: {e}", shown.display()),
        ),
    }
}

/// `fsopen` + `fsconfig` + `fsmount`: a new detached filesystem mount.
pub(crate) fn new_fs(
    fstype: &str,
    options: &[(&str, &str)],
    attrs: MountAttrFlags,
) -> io::Result<OwnedFd> {
    let fs = rmount::fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)?;
    for (k, v) in options {
        if v.is_empty() {
            rmount::fsconfig_set_flag(&fs, *k)?;
        } else {
            rmount::fsconfig_set_string(&fs, *k, *v)?;
        }
    }
    rmount::fsconfig_create(&fs)?;
    Ok(rmount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)?)
}

/// A detached recursive clone of the mount tree at `fd`, made nosuid,nodev
/// (and read-only) on every submount.
fn clone_tree(fd: BorrowedFd<'_>, readonly: bool) -> io::Result<OwnedFd> {
    let m = rmount::open_tree(
        fd,
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_EMPTY_PATH
            | OpenTreeFlags::AT_RECURSIVE,
    )?;
    set_propagation(m.as_fd(), MS_SLAVE, true)?;
    let mut attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    if readonly {
        attrs |= MOUNT_ATTR_RDONLY;
    }
    set_attrs(m.as_fd(), attrs, true)?;
    Ok(m)
}

/// The host-side sources of a plan, opened in the host's mount namespace
/// before the cage's namespace exists: every one a detached clone
/// (`open_tree`) of a host mount. Host directories are made slaves, so that
/// host mount events reach the cage and nothing propagates back; the
/// skeleton and device nodes are private (nothing is to propagate there).
pub struct Sources {
    root: OwnedFd,
    /// One entry per op of the plan: the detached mount it attaches, if
    /// any (`None` also for a shared path absent on this host).
    mounts: Vec<Option<OwnedFd>>,
    /// The skeleton's pin, held (shared) from the clone until the clone is
    /// attached in the cage init's namespace, where the skeleton's garbage
    /// collection sees it (see `skeleton::tree::Layout::pin`).
    _pin: Option<std::fs::File>,
}

/// Opens every host-side source of `plan` (the skeleton, the home and the
/// directories below it, host binds, device nodes, custom /etc files).
pub fn collect(plan: &Plan) -> Result<Sources, ApplyError> {
    let home = step(
        || format!("home {}", plan.home.display()),
        open_home(&plan.home),
    )?;
    let mut root = None;
    let mut pin = None;
    let mut mounts = Vec::with_capacity(plan.ops.len());
    for op in &plan.ops {
        let what = || op_text(op);
        let m = match op {
            Op::Root { skeleton } => {
                pin = Some(step(what, pin_skeleton(skeleton))?);
                root = Some(step(what, clone_root(skeleton))?);
                None
            }
            Op::Device { target } => Some(step(what, clone_device(target))?),
            Op::Syslog { host, .. } => step(what, clone_syslog(host))?,
            Op::HostFile { source, .. } => Some(step(what, clone_host_file(source))?),
            Op::Bind {
                source, readonly, ..
            } => step(what, clone_source(source, home.as_fd(), plan, *readonly))?,
            _ => None,
        };
        mounts.push(m);
    }
    let (Some(root), Some(pin)) = (root, pin) else {
        return Err(ApplyError {
            step: "root".into(),
            err: io::Error::other("plan has no root"),
        });
    };
    Ok(Sources {
        root,
        mounts,
        _pin: pin,
    })
}

/// The skeleton's pin, shared. A skeleton on a read-only file system has
/// none (nothing can delete its retired trees there either).
fn pin_skeleton(skeleton: &Path) -> io::Result<Option<std::fs::File>> {
    match crate::skeleton::tree::Layout::new(skeleton).and_then(|l| l.pin(false)) {
        Ok(f) => Ok(Some(f)),
        Err(crate::Error::Sys { err, .. }) if err.raw_os_error() == Some(libc::EROFS) => Ok(None),
        Err(e) => Err(io::Error::other(format!("pinning the skeleton: {e}"))),
    }
}

/// Executes `plan`, then `pivot_root`s into it. On return the calling
/// process's root and cwd are the cage's `/`; the returned [`watch::Watch`]
/// holds the host mounts whose attributes the cage init keeps on mounts
/// that propagate in later.
/// `stage` is an empty directory of the (fresh) mount namespace to build in.
pub fn apply(plan: &Plan, sources: Sources, stage: &Path) -> Result<watch::Watch, ApplyError> {
    step(
        || "make / a recursive slave".into(),
        rmount::mount_change(
            "/",
            MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
        )
        .map_err(io::Error::from),
    )?;
    let Sources {
        root,
        mut mounts,
        _pin: pin,
    } = sources;
    step(
        || format!("attach the skeleton at {}", stage.display()),
        rmount::move_mount(
            &root,
            "",
            CWD,
            stage,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .map_err(io::Error::from),
    )?;
    // Attached: from here on the skeleton's garbage collection sees it.
    drop(pin);
    let mut tree = step(|| "root".into(), Tree::new(root))?;
    for dir in shadows_needed(plan, &tree)? {
        step(
            || {
                format!(
                    "shadow {} (a tmpfs of the cage over the skeleton)",
                    dir.display()
                )
            },
            tree.shadow(&dir),
        )?;
    }
    for (op, mount) in plan.ops.iter().zip(mounts.iter_mut()) {
        step(|| op_text(op), apply_op(&mut tree, op, mount.take()))?;
    }
    step(|| "pivot_root".into(), pivot(&tree))?;
    step(
        || "seal / read-only".into(),
        set_attrs(
            tree.root.as_fd(),
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            false,
        ),
    )?;
    for m in &tree.seal {
        step(
            || "seal read-only".into(),
            set_attrs(
                m.as_fd(),
                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                false,
            ),
        )?;
    }
    Ok(watch::Watch {
        mounts: std::mem::take(&mut tree.watch),
    })
}

/// The skeleton directories to shadow so that every op finds its mount
/// point (parents first). Ops below a tmpfs, bind or procfs of the plan
/// find theirs there, not in the skeleton.
fn shadows_needed(plan: &Plan, tree: &Tree) -> Result<Vec<PathBuf>, ApplyError> {
    let mut below: Vec<&Path> = Vec::new();
    let mut out: Vec<PathBuf> = Vec::new();
    for op in &plan.ops {
        if matches!(op, Op::Root { .. } | Op::Note { .. }) {
            continue;
        }
        let t = op.target();
        if !below.iter().any(|b| t.starts_with(b) && t != *b) {
            if let Some(d) = step(|| op_text(op), tree.shadow_needed(t))? {
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
        if matches!(
            op,
            Op::Tmpfs { .. } | Op::Bind { .. } | Op::Proc { .. } | Op::Devpts { .. }
        ) {
            below.push(t);
        }
    }
    out.sort_by_key(|p| p.components().count());
    Ok(out)
}

/// The skeleton, cloned (not recursively), private, and read-only,
/// nosuid, nodev from the start: no build can write into it.
fn clone_root(skeleton: &Path) -> io::Result<OwnedFd> {
    let dir = rfs::open(
        skeleton,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!(
                "skeleton {}: {e} (run `cage-admin init`)",
                skeleton.display()
            ),
        )
    })?;
    let root = rmount::open_tree(
        &dir,
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_EMPTY_PATH,
    )?;
    set_propagation(root.as_fd(), MS_PRIVATE, false)?;
    set_attrs(
        root.as_fd(),
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        false,
    )?;
    Ok(root)
}

/// A host device node, bound in nosuid (the only mounts without nodev).
fn clone_device(target: &Path) -> io::Result<OwnedFd> {
    let src = rmount::open_tree(
        CWD,
        target,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    if rfs::fstat(&src)?.st_mode & libc::S_IFMT != libc::S_IFCHR {
        return Err(io::Error::other(format!(
            "host {} is not a character device",
            target.display()
        )));
    }
    set_propagation(src.as_fd(), MS_PRIVATE, false)?;
    set_attrs(src.as_fd(), MOUNT_ATTR_NOSUID, false)?;
    Ok(src)
}

/// The host's syslog socket: `host` is followed through symlinks here, on
/// the host (`/dev/log -> /run/systemd/journal/dev-log`), so the cage gets
/// the socket inode itself at its own `/dev/log` and never the path it
/// lives at. It must be a socket owned by root (a syslog daemon's, never
/// one a user bound where a dangling root-owned symlink leads): anything
/// else is logged and left out.
/// `None` when the host has none now: the cage is built without, and its
/// fingerprint (which covers the socket's identity) makes the next entry
/// build a cage that has it once a syslog daemon runs.
fn clone_syslog(host: &Path) -> io::Result<Option<OwnedFd>> {
    let fd = match rfs::open(host, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => {
            return Err(io::Error::new(
                io::Error::from(e).kind(),
                format!("host {}: {e}", host.display()),
            ))
        }
    };
    let st = rfs::fstat(&fd)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK || st.st_uid != 0 {
        // The cage is complete without it: only its syslog is missing.
        crate::log::warn(
            "libcage",
            &format!(
                "host {} does not lead to a socket owned by root; cages get no {}",
                host.display(),
                host.display()
            ),
        );
        return Ok(None);
    }
    let m = rmount::open_tree(
        &fd,
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_EMPTY_PATH,
    )?;
    set_propagation(m.as_fd(), MS_PRIVATE, false)?;
    set_attrs(m.as_fd(), READONLY_ATTRS | MOUNT_ATTR_NOEXEC, false)?;
    Ok(Some(m))
}

/// An admin-provided regular file, read-only.
fn clone_host_file(source: &Path) -> io::Result<OwnedFd> {
    let src = rfs::open(
        source,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if rfs::fstat(&src)?.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            source.display()
        )));
    }
    let m = rmount::open_tree(
        &src,
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_EMPTY_PATH,
    )?;
    set_propagation(m.as_fd(), MS_SLAVE, false)?;
    set_attrs(m.as_fd(), READONLY_ATTRS, false)?;
    Ok(m)
}

const READONLY_ATTRS: u64 = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;

/// The source of a bind; `None` when a shared path is absent on this host.
fn clone_source(
    source: &Source,
    home: BorrowedFd<'_>,
    plan: &Plan,
    readonly: bool,
) -> io::Result<Option<OwnedFd>> {
    let src: OwnedFd = match source {
        Source::Home => rustix::io::dup(home)?,
        Source::UnderHome { rel, mode } => {
            open_under_home(home, &plan.home, rel, plan.uid, plan.gid, *mode)?
        }
        Source::Host { path: p } => match rfs::open(
            p,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => {
                return Err(io::Error::new(
                    io::Error::from(e).kind(),
                    format!("{}: {e}", p.display()),
                ))
            }
        },
        Source::Child { dir, name: user } => {
            let d = rfs::open(
                dir,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            match rfs::openat2(
                &d,
                user.as_str(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                BENEATH,
            ) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => return Ok(None),
                Err(e) => return Err(refuse(&dir.join(user), e)),
            }
        }
    };
    clone_tree(src.as_fd(), readonly).map(Some)
}

/// An empty or synthesized read-only file from the tree's file store,
/// bound at `target`.
fn attach_file(t: &mut Tree, target: &Path, contents: &[u8]) -> io::Result<()> {
    let name = t.next_file();
    let store = t.file_store()?;
    let f = rfs::openat(
        store,
        name.as_str(),
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    let mut file = std::fs::File::from(f);
    io::Write::write_all(&mut file, contents)?;
    drop(file);
    let m = rmount::open_tree(
        store,
        name.as_str(),
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )?;
    set_attrs(m.as_fd(), READONLY_ATTRS, false)?;
    t.attach(&m, target, Kind::File)
}

/// Applies one op inside the tree; `mount` is the op's host-side source
/// from [`collect`], if it has one.
fn apply_op(t: &mut Tree, op: &Op, mount: Option<OwnedFd>) -> io::Result<()> {
    let nosuid_nodev = MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV;
    match op {
        Op::Root { .. } | Op::Note { .. } => Ok(()),
        Op::Tmpfs {
            target,
            mode,
            writable,
        } => {
            let m = new_fs("tmpfs", &[("mode", &format!("{mode:o}"))], nosuid_nodev)?;
            t.attach(&m, target, Kind::Dir)?;
            t.own(m.as_fd())?;
            if !writable {
                t.seal.push(m);
            }
            Ok(())
        }
        Op::Dir { target, mode } => t.ensure(target, Kind::Dir, *mode).map(drop),
        Op::Symlink { target, to } => {
            let (parent, name) = t.parent_dir(target)?;
            match rfs::symlinkat(to, &parent, &name) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Op::Device { target } | Op::Syslog { target, .. } => match mount {
            Some(m) => t.attach(&m, target, Kind::File),
            None => Ok(()),
        },
        Op::HostFile { target, .. } => match mount {
            Some(m) => {
                t.attach(&m, target, Kind::File)?;
                t.watch.push((m, READONLY_ATTRS));
                Ok(())
            }
            None => Ok(()),
        },
        Op::Bind {
            target, readonly, ..
        } => match mount {
            Some(m) => {
                t.attach(&m, target, Kind::Dir)?;
                let attrs = if *readonly {
                    READONLY_ATTRS
                } else {
                    MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
                };
                t.watch.push((m, attrs));
                Ok(())
            }
            None => Ok(()),
        },
        Op::Devpts { target, max } => {
            let m = new_fs(
                "devpts",
                &[
                    ("newinstance", ""),
                    ("ptmxmode", "0666"),
                    ("mode", "0620"),
                    ("gid", "5"),
                    ("max", &max.to_string()),
                ],
                MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NOEXEC,
            )?;
            t.attach(&m, target, Kind::Dir)
        }
        Op::Proc { target, hidepid } => {
            let mut opts: Vec<(&str, &str)> = Vec::new();
            if *hidepid != Hidepid::Off {
                opts.push(("hidepid", hidepid.as_str()));
            }
            let m = new_fs(
                "proc",
                &opts,
                nosuid_nodev | MountAttrFlags::MOUNT_ATTR_NOEXEC,
            )?;
            t.attach(&m, target, Kind::Dir)?;
            t.trust(m.as_fd())
        }
        Op::File { target, contents } => attach_file(t, target, contents.as_bytes()),
        // A file the running kernel lacks needs no mask.
        Op::Mask { target } => match t.resolve(target)? {
            tree::Found::Yes(_) => attach_file(t, target, b""),
            tree::Found::Missing { .. } => Ok(()),
        },
    }
}

/// `pivot_root(".", ".")` into the tree, then detach the old root beneath.
fn pivot(t: &Tree) -> io::Result<()> {
    rustix::process::fchdir(&t.root)?;
    rustix::process::pivot_root(".", ".")?;
    rmount::unmount(".", UnmountFlags::DETACH)?;
    rustix::process::chdir("/")?;
    Ok(())
}

fn op_text(op: &Op) -> String {
    let p = Plan {
        user: String::new(),
        uid: 0,
        gid: 0,
        home: PathBuf::new(),
        ops: vec![op.clone()],
    };
    let s = p.to_string();
    s.lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cage-open-home-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn same_dir(fd: &OwnedFd, p: &Path) -> bool {
        let a = rfs::fstat(fd).unwrap();
        let b = std::fs::metadata(p).unwrap();
        use std::os::unix::fs::MetadataExt;
        a.st_ino == b.ino() && a.st_dev == b.dev()
    }

    #[test]
    fn open_home_walks_plain_directories() {
        let d = scratch("plain");
        let home = d.join("a/b/home");
        std::fs::create_dir_all(&home).unwrap();
        let fd = open_home(&home).unwrap();
        assert!(same_dir(&fd, &home));
        assert!(open_home(Path::new("relative/home")).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn open_home_refuses_a_symlink_in_a_writable_directory_and_as_the_home() {
        let d = scratch("links");
        let real = d.join("real/home");
        std::fs::create_dir_all(&real).unwrap();
        let open = d.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::os::unix::fs::symlink(d.join("real"), open.join("link")).unwrap();
        let e = open_home(&open.join("link/home")).unwrap_err();
        assert!(
            e.get_ref().is_some_and(|i| i.is::<HostilePath>()),
            "not refused as hostile: {e}"
        );
        std::os::unix::fs::symlink(&real, d.join("homelink")).unwrap();
        let e = open_home(&d.join("homelink")).unwrap_err();
        assert!(e.to_string().contains("the home itself"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
