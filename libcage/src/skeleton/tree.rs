//! The skeleton on disk: compare a manifest with the live tree, build the
//! new tree beside it, swap the two in one `renameat2(RENAME_EXCHANGE)`,
//! and remove retired trees once no cage uses them.
//!
//! Layout, all in the skeleton's parent directory (`<name>` is the
//! skeleton's file name):
//! - `<name>`            the live tree;
//! - `<name>.new`        a tree being built (a leftover is an interrupted run);
//! - `<name>.old.<id>`   retired trees, kept while a cage's mount uses them;
//! - `<name>.lock`       serializes `cage-admin` runs (flock);
//! - `<name>.pin`        held shared by each cage build from its clone of
//!   the tree until the clone is attached in the cage init's namespace (a
//!   detached clone is in no mountinfo), exclusively by garbage collection;
//! - `<name>.trash.<id>` a retired tree being deleted.
//!
//! No cage build ever writes into a tree: the runtime clones it read-only
//! and makes missing mount points on tmpfs mounts of its own.
//!
//! Why retired trees are kept: a running cage holds a bind mount of the
//! tree it started with. Deleting that tree would empty its directories
//! under the cage (only already-open files stay readable) and unlinking a
//! mount point detaches the cage's mounts on it (its `/proc`, `/tmp`, home).
//! So a retired tree is removed only when no mount namespace has a mount of
//! it (checked through `/proc/*/mountinfo`); until then each update retries.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{self as rfs, RenameFlags, CWD};

use super::collect::{FileMeta, Node, SETID};
use crate::Error;

/// Where the live, new, retired trees and the lock live.
#[derive(Clone, Debug)]
pub struct Layout {
    pub live: PathBuf,
    parent: PathBuf,
    name: OsString,
}

fn sys(what: impl std::fmt::Display, e: impl Into<io::Error>) -> Error {
    Error::sys(what.to_string(), e)
}

impl Layout {
    /// The layout of `skeleton`; a symlinked skeleton is followed (the admin
    /// moved it elsewhere), the parent directory is created if missing.
    pub fn new(skeleton: &Path) -> Result<Layout, Error> {
        let live = match fs::symlink_metadata(skeleton) {
            Ok(m) if m.file_type().is_symlink() => fs::canonicalize(skeleton)
                .map_err(|e| sys(format_args!("skeleton {}", skeleton.display()), e))?,
            _ => skeleton.to_path_buf(),
        };
        let (Some(parent), Some(name)) = (live.parent(), live.file_name()) else {
            return Err(Error::Invalid(format!(
                "skeleton {}: expected a directory path",
                skeleton.display()
            )));
        };
        fs::create_dir_all(parent).map_err(|e| sys(parent.display(), e))?;
        let parent =
            fs::canonicalize(parent).map_err(|e| sys(format_args!("{}", parent.display()), e))?;
        Ok(Layout {
            live: parent.join(name),
            parent,
            name: name.to_os_string(),
        })
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut n = self.name.clone();
        n.push(suffix);
        self.parent.join(n)
    }

    pub fn stage(&self) -> PathBuf {
        self.sibling(".new")
    }

    /// Where file analyses are remembered between runs.
    pub fn cache_file(&self) -> PathBuf {
        self.sibling(".cache")
    }

    pub fn parent(&self) -> &Path {
        &self.parent
    }

    /// Prefix of the names beside the live tree that belong to us.
    pub fn sibling_glob(&self) -> PathBuf {
        self.sibling(".*")
    }

    fn retired_name(&self) -> PathBuf {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.sibling(&format!(
            ".old.{}.{:09}.{}",
            t.as_secs(),
            t.subsec_nanos(),
            std::process::id()
        ))
    }

    /// Takes the lock (waiting for another run to finish).
    pub fn lock(&self) -> Result<File, Error> {
        self.flock_sibling(".lock", rfs::FlockOperation::LockExclusive)
    }

    /// Opens (creating) the root-only file `<skeleton><suffix>` beside the
    /// tree and takes `op` on it, waiting as long as it takes.
    fn flock_sibling(&self, suffix: &str, op: rfs::FlockOperation) -> Result<File, Error> {
        let p = self.sibling(suffix);
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&p)
            .map_err(|e| sys(p.display(), e))?;
        rfs::flock(&f, op).map_err(|e| sys(p.display(), e))?;
        Ok(f)
    }

    /// A `.new` left by an interrupted run is retired (after an exchange it
    /// may be the previous live tree, still used by cages).
    pub fn recover(&self) -> Result<(), Error> {
        let stage = self.stage();
        if fs::symlink_metadata(&stage).is_ok() {
            let to = self.retired_name();
            fs::rename(&stage, &to).map_err(|e| sys(stage.display(), e))?;
        }
        Ok(())
    }

    /// Retired trees, oldest first.
    pub fn retired(&self) -> Vec<PathBuf> {
        let mut prefix = self.name.clone();
        prefix.push(".old.");
        let prefix = prefix.as_encoded_bytes().to_vec();
        let mut v: Vec<PathBuf> = fs::read_dir(&self.parent)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name().as_encoded_bytes().starts_with(&prefix))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The pin: shared for a build (from its clone of the live tree until
    /// the clone is attached), exclusive for garbage collection.
    pub fn pin(&self, exclusive: bool) -> Result<File, Error> {
        let op = if exclusive {
            rfs::FlockOperation::LockExclusive
        } else {
            rfs::FlockOperation::LockShared
        };
        self.flock_sibling(".pin", op)
    }

    /// Removes retired trees no cage uses; returns those still in use.
    /// Under the exclusive pin no build holds a clone that is not attached
    /// yet, so every tree in use shows in some mountinfo; unused ones are
    /// renamed away under it and deleted after.
    pub fn collect_garbage(&self) -> Vec<PathBuf> {
        let mut busy = Vec::new();
        let mut trash = Vec::new();
        match self.pin(true) {
            Ok(_pin) => {
                for old in self.retired() {
                    let to = self.trash_name(&old);
                    if in_use(&old) || fs::rename(&old, &to).is_err() {
                        busy.push(old);
                    } else {
                        trash.push(to);
                    }
                }
            }
            Err(_) => return self.retired(),
        }
        trash.extend(self.trash());
        for t in trash {
            let _ = fs::remove_dir_all(&t);
        }
        busy
    }

    fn trash_name(&self, old: &Path) -> PathBuf {
        let mut n = self.name.clone();
        n.push(".trash.");
        if let Some(f) = old.file_name() {
            n.push(f);
        }
        self.parent.join(n)
    }

    /// Trees left in the trash by an interrupted deletion.
    fn trash(&self) -> Vec<PathBuf> {
        let mut prefix = self.name.clone();
        prefix.push(".trash.");
        let prefix = prefix.as_encoded_bytes().to_vec();
        fs::read_dir(&self.parent)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name().as_encoded_bytes().starts_with(&prefix))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Moves `stage` into place atomically; the previous live tree is
    /// retired. Returns whether the swap was atomic.
    pub fn swap(&self) -> Result<bool, Error> {
        let stage = self.stage();
        let exists = fs::symlink_metadata(&self.live).is_ok();
        if !exists {
            rfs::renameat_with(CWD, &stage, CWD, &self.live, RenameFlags::NOREPLACE)
                .map_err(|e| sys(self.live.display(), e))?;
            return Ok(true);
        }
        let atomic = match rfs::renameat_with(CWD, &stage, CWD, &self.live, RenameFlags::EXCHANGE) {
            Ok(()) => true,
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
                // No RENAME_EXCHANGE on this file system: two renames,
                // with a moment where no skeleton exists.
                let to = self.retired_name();
                fs::rename(&self.live, &to).map_err(|e| sys(self.live.display(), e))?;
                fs::rename(&stage, &self.live).map_err(|e| sys(self.live.display(), e))?;
                return Ok(false);
            }
            Err(e) => return Err(sys(self.live.display(), e)),
        };
        let to = self.retired_name();
        fs::rename(&stage, &to).map_err(|e| sys(stage.display(), e))?;
        Ok(atomic)
    }
}

/// Decodes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
            out.push(v as u8);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    PathBuf::from(OsString::from(String::from_utf8_lossy(&out).into_owned()))
}

/// (device, root, mount point) of each line of a mountinfo file.
fn mountinfo(text: &str) -> Vec<(String, PathBuf, PathBuf)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() > 4).then(|| (f[2].to_string(), unescape(f[3]), unescape(f[4])))
        })
        .collect()
}

/// Whether any mount namespace has a mount of (something under) `path`.
/// When in doubt (no /proc), the tree counts as used.
pub fn in_use(path: &Path) -> bool {
    let Ok(own) = fs::read_to_string("/proc/self/mountinfo") else {
        return true;
    };
    // The file system holding `path`, and `path` relative to its root.
    let Some((dev, root, mp)) = mountinfo(&own)
        .into_iter()
        .filter(|(_, _, mp)| path.starts_with(mp))
        .max_by_key(|(_, _, mp)| mp.components().count())
    else {
        return true;
    };
    let Ok(rest) = path.strip_prefix(&mp) else {
        return true;
    };
    let rel = root.join(rest);
    let Ok(procs) = fs::read_dir("/proc") else {
        return true;
    };
    let mut seen: HashSet<u64> = HashSet::new();
    for p in procs.flatten() {
        let name = p.file_name();
        if !name.as_encoded_bytes().iter().all(u8::is_ascii_digit) {
            continue;
        }
        let Ok(ns) = fs::metadata(p.path().join("ns/mnt")) else {
            continue;
        };
        if !seen.insert(ns.ino()) {
            continue;
        }
        let Ok(text) = fs::read_to_string(p.path().join("mountinfo")) else {
            continue;
        };
        if mountinfo(&text)
            .iter()
            .any(|(d, r, _)| *d == dev && r.starts_with(&rel))
        {
            return true;
        }
    }
    false
}

/// The live tree: every path (absolute, as in the cage) and its metadata.
pub fn scan(live: &Path) -> io::Result<HashMap<PathBuf, Metadata>> {
    let mut out = HashMap::new();
    let md = fs::symlink_metadata(live)?;
    out.insert(PathBuf::from("/"), md);
    let mut stack = vec![PathBuf::from("/")];
    while let Some(rel) = stack.pop() {
        let dir = live.join(rel.strip_prefix("/").unwrap_or(&rel));
        for e in fs::read_dir(&dir)? {
            let e = e?;
            // An entry may vanish meanwhile (an interrupted run's leftovers).
            let md = match e.metadata() {
                Ok(m) => m,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            };
            let p = rel.join(e.file_name());
            if md.is_dir() {
                stack.push(p.clone());
            }
            out.insert(p, md);
        }
    }
    Ok(out)
}

/// The node reproducing a live entry as it is (for `--dont-clean` and
/// `update-list`).
pub fn node_of_live(live: &Path, rel: &Path, md: &Metadata) -> Option<Node> {
    let ft = md.file_type();
    let path = live.join(rel.strip_prefix("/").unwrap_or(rel));
    Some(if ft.is_dir() {
        Node::Dir {
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
        }
    } else if ft.is_symlink() {
        Node::Symlink {
            target: fs::read_link(&path).ok()?,
            uid: md.uid(),
            gid: md.gid(),
        }
    } else if ft.is_file() {
        Node::File {
            src: path,
            meta: FileMeta::of(md),
            link: true,
        }
    } else if ft.is_char_device() || ft.is_block_device() {
        Node::Device {
            mode: md.mode(),
            rdev: md.rdev(),
            uid: md.uid(),
            gid: md.gid(),
        }
    } else {
        return None;
    })
}

/// The permission bits a copied file gets.
fn copy_mode(meta: &FileMeta) -> u32 {
    meta.mode & 0o1777 & !SETID
}

/// Whether the live entry already is what `node` asks for.
pub fn same(node: &Node, live_path: &Path, md: &Metadata) -> bool {
    let ft = md.file_type();
    match node {
        Node::Dir { mode, uid, gid } => {
            ft.is_dir() && md.mode() & 0o7777 == *mode && md.uid() == *uid && md.gid() == *gid
        }
        Node::Symlink { target, uid, gid } => {
            ft.is_symlink()
                && md.uid() == *uid
                && md.gid() == *gid
                && fs::read_link(live_path).ok().as_ref() == Some(target)
        }
        Node::File { meta, link, .. } => {
            ft.is_file()
                && if *link {
                    md.dev() == meta.dev && md.ino() == meta.ino
                } else {
                    !(md.dev() == meta.dev && md.ino() == meta.ino)
                        && md.size() == meta.size
                        && md.mtime() == meta.mtime
                        && md.mtime_nsec() == meta.mtime_nsec
                        && md.mode() & 0o7777 == copy_mode(meta)
                        && md.uid() == meta.uid
                        && md.gid() == meta.gid
                }
        }
        Node::Device {
            mode,
            rdev,
            uid,
            gid,
        } => {
            (ft.is_char_device() || ft.is_block_device())
                && md.mode() == *mode
                && md.rdev() == *rdev
                && md.uid() == *uid
                && md.gid() == *gid
        }
        Node::Generated { contents, mode } => {
            ft.is_file()
                && md.mode() & 0o7777 == *mode
                && md.uid() == 0
                && md.gid() == 0
                && md.size() == contents.len() as u64
                && fs::read(live_path).ok().as_deref() == Some(contents.as_slice())
        }
    }
}

/// What the build did, for the summary.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Counts {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub devices: u64,
    /// Bytes of the files the skeleton holds.
    pub bytes_named: u64,
    /// Bytes shared with the host through hardlinks (no disk used).
    pub bytes_hardlinked: u64,
    /// Bytes written by this run.
    pub bytes_copied: u64,
    /// Bytes of files only the skeleton has (copies, generated): its own disk use.
    pub bytes_own: u64,
}

/// What happened to one path (for `--verbose`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Keep,
    Link,
    Copy,
    Create,
    Remove,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::Link => "link",
            Action::Copy => "copy",
            Action::Create => "create",
            Action::Remove => "remove",
        }
    }
}

fn copy_file(src: &Path, dst: &Path, meta: &FileMeta) -> io::Result<u64> {
    let mut from = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(src)?;
    let mut to = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(dst)?;
    let n = io::copy(&mut from, &mut to)?;
    // Hardlinks are metadata, ordered by the journal; copied data is synced
    // so a crash after the swap cannot show an empty file.
    to.sync_data()?;
    std::os::unix::fs::fchown(&to, Some(meta.uid), Some(meta.gid))?;
    to.set_permissions(fs::Permissions::from_mode(copy_mode(meta)))?;
    let t = UNIX_EPOCH
        + Duration::new(
            meta.mtime.max(0) as u64,
            meta.mtime_nsec.clamp(0, 999_999_999) as u32,
        );
    to.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))?;
    Ok(n)
}

/// Builds `stage` from `nodes`, reusing unchanged files of the live tree
/// (`live_md`) when `reuse`. `each(i)` reports progress; `log` each action.
pub fn build(
    stage: &Path,
    live: &Path,
    nodes: &BTreeMap<PathBuf, Node>,
    live_md: &HashMap<PathBuf, Metadata>,
    reuse: bool,
    each: &mut dyn FnMut(usize, Action, &Path),
) -> Result<Counts, Error> {
    let r = build_inner(stage, live, nodes, live_md, reuse, each);
    if r.is_err() {
        let _ = fs::remove_dir_all(stage);
    }
    r
}

fn build_inner(
    stage: &Path,
    live: &Path,
    nodes: &BTreeMap<PathBuf, Node>,
    live_md: &HashMap<PathBuf, Metadata>,
    reuse: bool,
    each: &mut dyn FnMut(usize, Action, &Path),
) -> Result<Counts, Error> {
    let mut c = Counts::default();
    fs::create_dir(stage).map_err(|e| sys(stage.display(), e))?;
    for (i, (path, node)) in nodes.iter().enumerate() {
        let rel = path.strip_prefix("/").unwrap_or(path);
        let dst = stage.join(rel);
        let live_path = live.join(rel);
        let err = |e: io::Error| sys(dst.display(), e);
        let unchanged = reuse
            && live_md
                .get(path)
                .is_some_and(|md| same(node, &live_path, md));
        let mut action = if unchanged {
            Action::Keep
        } else {
            Action::Create
        };
        match node {
            Node::Dir { mode, uid, gid } => {
                if !rel.as_os_str().is_empty() {
                    fs::create_dir(&dst).map_err(err)?;
                }
                std::os::unix::fs::lchown(&dst, Some(*uid), Some(*gid)).map_err(err)?;
                fs::set_permissions(&dst, fs::Permissions::from_mode(*mode & !SETID))
                    .map_err(err)?;
                c.dirs += 1;
            }
            Node::Symlink { target, uid, gid } => {
                std::os::unix::fs::symlink(target, &dst).map_err(err)?;
                std::os::unix::fs::lchown(&dst, Some(*uid), Some(*gid)).map_err(err)?;
                c.symlinks += 1;
            }
            Node::File { src, meta, link } => {
                c.files += 1;
                c.bytes_named += meta.size;
                let linked = if unchanged {
                    fs::hard_link(&live_path, &dst).is_ok()
                } else {
                    false
                };
                if linked {
                    if *link {
                        c.bytes_hardlinked += meta.size;
                    } else {
                        c.bytes_own += meta.size;
                    }
                } else if *link && fs::hard_link(src, &dst).is_ok() {
                    action = Action::Link;
                    c.bytes_hardlinked += meta.size;
                } else {
                    // Not linkable (set-id, not root's, writable by others,
                    // another file system, link limit): a copy.
                    action = Action::Copy;
                    let n = copy_file(src, &dst, meta).map_err(err)?;
                    c.bytes_copied += n;
                    c.bytes_own += n;
                }
            }
            Node::Device {
                mode,
                rdev,
                uid,
                gid,
            } => {
                let ft = rfs::FileType::from_raw_mode(*mode);
                rfs::mknodat(
                    CWD,
                    &dst,
                    ft,
                    rfs::Mode::from_raw_mode(*mode & 0o777),
                    *rdev,
                )
                .map_err(|e| err(e.into()))?;
                std::os::unix::fs::lchown(&dst, Some(*uid), Some(*gid)).map_err(err)?;
                fs::set_permissions(&dst, fs::Permissions::from_mode(*mode & 0o777))
                    .map_err(err)?;
                c.devices += 1;
            }
            Node::Generated { contents, mode } => {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
                    .open(&dst)
                    .map_err(err)?;
                io::Write::write_all(&mut f, contents).map_err(err)?;
                f.sync_data().map_err(err)?;
                f.set_permissions(fs::Permissions::from_mode(*mode))
                    .map_err(err)?;
                c.files += 1;
                c.bytes_named += contents.len() as u64;
                c.bytes_own += contents.len() as u64;
            }
        }
        each(i, action, path);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(unescape("/a\\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape("/plain"), PathBuf::from("/plain"));
        let mi = mountinfo("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw\n");
        assert_eq!(
            mi,
            vec![(
                "98:0".to_string(),
                PathBuf::from("/mnt1"),
                PathBuf::from("/mnt2")
            )]
        );
    }

    #[test]
    fn layout_names() {
        let l = Layout::new(&std::env::temp_dir().join("cage-skel-layout")).unwrap();
        assert!(l
            .stage()
            .to_string_lossy()
            .ends_with("cage-skel-layout.new"));
        assert!(l
            .retired_name()
            .to_string_lossy()
            .contains("cage-skel-layout.old."));
        // Nothing mounts a fresh directory.
        let d = std::env::temp_dir().join(format!("cage-unused-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        assert!(!in_use(&d));
        fs::remove_dir_all(&d).unwrap();
    }
}
