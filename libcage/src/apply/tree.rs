//! The cage tree while it is being built, and the mount points its mounts
//! need. The skeleton is cloned read-only from the start, so no build can
//! write into it; a mount point is created only on a tmpfs of this build.
//! Where the skeleton lacks one (a `custom.etc` file, a nested home's base
//! directory, a `virt.mp` or `cage.mp` path), the skeleton directory that
//! would hold it is *shadowed*: a tmpfs of the cage's own is put over it,
//! holding a read-only bind of each of its entries (symlinks copied), and
//! the mount point is made there. Shadows are all made before the first op
//! is applied, so no mount of the plan is ever hidden by one.
//!
//! Targets are resolved one component at a time. A symlink is followed
//! only where the cage's own content lies (the skeleton, a tmpfs of this
//! build); any other symlink on a target's path (in a host directory,
//! where users may write) is refused.

use std::collections::{HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags, StatxFlags};
use rustix::mount::{self as rmount, MountAttrFlags, MoveMountFlags, OpenTreeFlags};

use super::{hostile, new_fs};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Dir,
    File,
}

/// Where a target is, or where its path stops existing.
pub(super) enum Found {
    Yes(OwnedFd),
    Missing {
        /// The deepest existing directory on the way (`O_PATH`).
        parent: OwnedFd,
        /// Its path in the tree, symlinks resolved.
        parent_path: PathBuf,
        /// The names below it still to create.
        rest: Vec<OsString>,
    },
}

pub(super) struct Tree {
    /// The mount that becomes `/` (the skeleton's clone, or a shadow of it).
    pub root: OwnedFd,
    /// Mounts made read-only once everything is in place.
    pub seal: Vec<OwnedFd>,
    /// Mount ids of this build's tmpfs mounts: the only places where mount
    /// points are created.
    own: HashSet<u64>,
    /// Mount ids whose symlinks are the cage's own (the skeleton, this
    /// build's tmpfs mounts, the cage's procfs): followed inside the tree.
    trusted: HashSet<u64>,
    /// A detached tmpfs holding synthesized files (never attached itself).
    files: Option<OwnedFd>,
    nfiles: usize,
    /// Host mounts attached, with the attributes to re-apply to anything
    /// that propagates in below them later (see `watch`).
    pub watch: Vec<(OwnedFd, u64)>,
    /// Paths shadowed, for the tests and the error text.
    pub shadowed: Vec<PathBuf>,
}

const NAME_ONLY: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// The mount id (as in mountinfo) of the mount `fd` lies on.
pub(super) fn mount_id(fd: BorrowedFd<'_>) -> io::Result<u64> {
    Ok(rfs::statx(fd, "", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID)?.stx_mnt_id)
}

fn components(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

fn path_err(path: &Path, e: impl Into<io::Error>) -> io::Error {
    let e = e.into();
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl Tree {
    pub fn new(root: OwnedFd) -> io::Result<Tree> {
        let id = mount_id(root.as_fd())?;
        Ok(Tree {
            root,
            seal: Vec::new(),
            own: HashSet::new(),
            trusted: HashSet::from([id]),
            files: None,
            nfiles: 0,
            watch: Vec::new(),
            shadowed: Vec::new(),
        })
    }

    /// Records a tmpfs of this build: mount points may be made on it.
    pub fn own(&mut self, m: BorrowedFd<'_>) -> io::Result<()> {
        let id = mount_id(m)?;
        self.own.insert(id);
        self.trusted.insert(id);
        Ok(())
    }

    /// Records a mount whose symlinks are the cage's own (procfs).
    pub fn trust(&mut self, m: BorrowedFd<'_>) -> io::Result<()> {
        self.trusted.insert(mount_id(m)?);
        Ok(())
    }

    fn open_root(&self) -> io::Result<OwnedFd> {
        Ok(rfs::openat(
            &self.root,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    }

    /// Resolves `target` inside the tree, following only the cage's own
    /// symlinks.
    pub fn resolve(&self, target: &Path) -> io::Result<Found> {
        let mut todo = components(target);
        let mut stack: Vec<(OwnedFd, PathBuf)> = vec![(self.open_root()?, PathBuf::from("/"))];
        let mut hops = 0;
        while let Some(name) = todo.pop_front() {
            if name == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let (cur, cur_path) = stack.last().expect("the root stays");
            let path = cur_path.join(&name);
            let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            match rfs::openat2(cur, name.as_os_str(), flags, Mode::empty(), NAME_ONLY) {
                Ok(fd) => {
                    let st = rfs::fstat(&fd).map_err(|e| path_err(&path, e))?;
                    if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
                        stack.push((fd, path));
                        continue;
                    }
                    if !self.trusted.contains(&mount_id(fd.as_fd())?) {
                        return Err(hostile(
                            path,
                            "is a symlink in a directory the cage does not own; not followed"
                                .into(),
                        ));
                    }
                    hops += 1;
                    if hops > 40 {
                        return Err(path_err(&path, rustix::io::Errno::LOOP));
                    }
                    let link =
                        rfs::readlinkat(&fd, "", Vec::new()).map_err(|e| path_err(&path, e))?;
                    let link = PathBuf::from(OsStr::from_bytes(link.as_bytes()));
                    if link.is_absolute() {
                        stack.truncate(1);
                    }
                    let mut next = components(&link);
                    next.extend(todo);
                    todo = next;
                }
                Err(rustix::io::Errno::NOENT) => {
                    let (parent, parent_path) = stack.pop().expect("the root stays");
                    todo.push_front(name);
                    return Ok(Found::Missing {
                        parent,
                        parent_path,
                        rest: todo.into(),
                    });
                }
                Err(e) => return Err(path_err(&path, e)),
            }
        }
        Ok(Found::Yes(stack.pop().expect("the root stays").0))
    }

    /// Opens `target` as an `O_PATH` fd, creating it (a directory of
    /// `mode`, or an empty file) and its missing parents when they would
    /// lie on a tmpfs of this build. Anywhere else a missing target is an
    /// error: the skeleton and host directories are never written.
    pub fn ensure(&self, target: &Path, kind: Kind, mode: u32) -> io::Result<OwnedFd> {
        let (parent, parent_path, rest) = match self.resolve(target)? {
            Found::Yes(fd) => return Ok(fd),
            Found::Missing {
                parent,
                parent_path,
                rest,
            } => (parent, parent_path, rest),
        };
        if !self.own.contains(&mount_id(parent.as_fd())?) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "mount point {} is missing and {} is not the cage's own (create it on the host)",
                    target.display(),
                    parent_path.display()
                ),
            ));
        }
        let mut dir = parent;
        let mut shown = parent_path;
        for (i, name) in rest.iter().enumerate() {
            shown.push(name);
            if name == ".." {
                return Err(path_err(&shown, rustix::io::Errno::NOENT));
            }
            let last = i + 1 == rest.len();
            let rd = rfs::openat(
                &dir,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| path_err(&shown, e))?;
            if last && kind == Kind::File {
                match rfs::openat(
                    &rd,
                    name.as_os_str(),
                    OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::WRONLY
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o644),
                ) {
                    Ok(_) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(path_err(&shown, e)),
                }
            } else {
                let m = if last { mode } else { 0o755 };
                match rfs::mkdirat(&rd, name.as_os_str(), Mode::from_raw_mode(m)) {
                    Ok(()) => rfs::chmodat(
                        &rd,
                        name.as_os_str(),
                        Mode::from_raw_mode(m),
                        AtFlags::empty(),
                    )
                    .map_err(|e| path_err(&shown, e))?,
                    Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(path_err(&shown, e)),
                }
            }
            dir = rfs::openat2(
                &rd,
                name.as_os_str(),
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                NAME_ONLY,
            )
            .map_err(|e| path_err(&shown, e))?;
        }
        Ok(dir)
    }

    /// The directory that would hold `target` (made if missing, on a tmpfs
    /// of this build), opened for creating entries, and `target`'s name.
    pub fn parent_dir(&self, target: &Path) -> io::Result<(OwnedFd, OsString)> {
        let name = target
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let parent = target.parent().unwrap_or(Path::new("/"));
        let p = self.ensure(parent, Kind::Dir, 0o755)?;
        if !self.own.contains(&mount_id(p.as_fd())?) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{}: not on a tmpfs of the cage", parent.display()),
            ));
        }
        let fd = rfs::openat(
            &p,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| path_err(parent, e))?;
        Ok((fd, name.to_os_string()))
    }

    /// Attaches the detached mount `mnt` at `target`.
    pub fn attach(&self, mnt: &OwnedFd, target: &Path, kind: Kind) -> io::Result<()> {
        let t = self.ensure(target, kind, 0o755)?;
        rmount::move_mount(
            mnt,
            "",
            &t,
            "",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )
        .map_err(|e| path_err(target, e))
    }

    /// Where `target` needs a skeleton directory shadowed: the deepest
    /// existing directory above it when that lies on the skeleton.
    pub fn shadow_needed(&self, target: &Path) -> io::Result<Option<PathBuf>> {
        match self.resolve(target)? {
            Found::Yes(_) => Ok(None),
            Found::Missing {
                parent,
                parent_path,
                ..
            } => {
                let id = mount_id(parent.as_fd())?;
                Ok((self.trusted.contains(&id) && !self.own.contains(&id)).then_some(parent_path))
            }
        }
    }

    /// Puts a tmpfs of the cage's own over the skeleton directory `dir`,
    /// holding a read-only bind of each of its entries.
    pub fn shadow(&mut self, dir: &Path) -> io::Result<()> {
        let at = match self.resolve(dir)? {
            Found::Yes(fd) => fd,
            Found::Missing { .. } => return Err(path_err(dir, rustix::io::Errno::NOENT)),
        };
        let st = rfs::fstat(&at).map_err(|e| path_err(dir, e))?;
        let rd = rfs::openat(
            &at,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| path_err(dir, e))?;
        let tmp = new_fs(
            "tmpfs",
            &[
                ("mode", &format!("{:o}", st.st_mode & 0o7777)),
                ("uid", &st.st_uid.to_string()),
                ("gid", &st.st_gid.to_string()),
                ("size", "1m"),
            ],
            MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
        )
        .map_err(|e| path_err(dir, e))?;
        let mut names = Vec::new();
        for e in rfs::Dir::read_from(&rd).map_err(|e| path_err(dir, e))? {
            let e = e.map_err(|e| path_err(dir, e))?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        for name in names {
            let shown = dir.join(&name);
            let err = |e: rustix::io::Errno| path_err(&shown, e);
            let est = rfs::statat(&rd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW).map_err(err)?;
            match est.st_mode & libc::S_IFMT {
                libc::S_IFLNK => {
                    let to = rfs::readlinkat(&rd, name.as_os_str(), Vec::new()).map_err(err)?;
                    rfs::symlinkat(to.as_c_str(), &tmp, name.as_os_str()).map_err(err)?;
                    continue;
                }
                libc::S_IFDIR => {
                    rfs::mkdirat(&tmp, name.as_os_str(), Mode::from_raw_mode(0o755)).map_err(err)?
                }
                _ => {
                    rfs::openat(
                        &tmp,
                        name.as_os_str(),
                        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o644),
                    )
                    .map_err(err)?;
                }
            }
            let bind = rmount::open_tree(
                &rd,
                name.as_os_str(),
                OpenTreeFlags::OPEN_TREE_CLONE
                    | OpenTreeFlags::OPEN_TREE_CLOEXEC
                    | OpenTreeFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(err)?;
            self.trusted.insert(mount_id(bind.as_fd())?);
            let t = rfs::openat(
                &tmp,
                name.as_os_str(),
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(err)?;
            rmount::move_mount(
                &bind,
                "",
                &t,
                "",
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
            )
            .map_err(err)?;
        }
        rmount::move_mount(
            &tmp,
            "",
            &at,
            "",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )
        .map_err(|e| path_err(dir, e))?;
        self.own(tmp.as_fd())?;
        self.shadowed.push(dir.to_path_buf());
        if dir == Path::new("/") {
            // The shadow is the new `/`. The clone below (read-only) goes
            // away with the seed's root at `pivot_root`.
            self.root = tmp;
        } else {
            self.seal.push(tmp);
        }
        Ok(())
    }

    pub fn file_store(&mut self) -> io::Result<BorrowedFd<'_>> {
        if self.files.is_none() {
            self.files = Some(new_fs(
                "tmpfs",
                &[("mode", "0755"), ("size", "4m")],
                MountAttrFlags::MOUNT_ATTR_NOSUID
                    | MountAttrFlags::MOUNT_ATTR_NODEV
                    | MountAttrFlags::MOUNT_ATTR_NOEXEC,
            )?);
        }
        Ok(self.files.as_ref().expect("just set").as_fd())
    }

    /// A fresh name in the file store.
    pub fn next_file(&mut self) -> String {
        self.nfiles += 1;
        format!("f{}", self.nfiles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a shadow costs: run as root in a private mount namespace,
    /// `unshare -m --propagation private cargo test --release -p libcage
    /// shadow_cost -- --ignored --nocapture`. The host's `/` (cloned
    /// read-only, not recursively) stands in for a skeleton.
    #[test]
    #[ignore]
    fn shadow_cost() {
        let stage = std::env::temp_dir().join(format!("cage-shadow-{}", std::process::id()));
        std::fs::create_dir_all(&stage).unwrap();
        for (dir, runs) in [("/etc", 20), ("/", 20)] {
            let mut total = std::time::Duration::ZERO;
            let mut entries = 0;
            for _ in 0..runs {
                let root = rmount::open_tree(
                    rustix::fs::CWD,
                    "/",
                    OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
                )
                .unwrap();
                crate::sys::mount::set_attrs(
                    root.as_fd(),
                    crate::sys::mount::MOUNT_ATTR_RDONLY,
                    false,
                )
                .unwrap();
                rmount::move_mount(
                    &root,
                    "",
                    rustix::fs::CWD,
                    &stage,
                    MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
                )
                .unwrap();
                let mut t = Tree::new(root).unwrap();
                let start = std::time::Instant::now();
                t.shadow(Path::new(dir)).unwrap();
                total += start.elapsed();
                entries = std::fs::read_dir(dir).unwrap().count();
                drop(t);
                rmount::unmount(&stage, rmount::UnmountFlags::DETACH).unwrap();
            }
            println!(
                "shadow {dir}: {entries} entries, {:.2} ms per shadow",
                total.as_secs_f64() * 1000.0 / runs as f64
            );
        }
        let _ = std::fs::remove_dir(&stage);
    }
}
