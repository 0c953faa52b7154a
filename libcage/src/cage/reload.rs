//! `~/.cage/reload`: a user's request for a fresh cage. One request file
//! gives at most one rebuild, and only once the current generation is
//! `reload_interval` seconds old; the file is consumed (unlinked) only when
//! it is a regular file of the user, through descriptors opened without
//! following symlinks. Anything else there is refused and logged, and never
//! causes a rebuild.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};

use crate::identity::Passwd;

/// What the request file looks like (pure facts for [`judge`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// No `~/.cage/reload` (or no `~/.cage`).
    Absent,
    /// A regular file owned by the user.
    UserFile,
    /// Anything else: a directory, symlink, fifo, another owner's file.
    Other(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing asked.
    None,
    /// Consume the file; rebuild if that succeeds.
    Consume,
    /// Leave the file for a later entry: the current generation is younger
    /// than the interval.
    Defer,
    /// Refuse (and log): not a request root may act on.
    Refuse(&'static str),
}

/// The decision (pure). `age` is the current generation's age in seconds
/// (`None`: no current cage, the entry builds anyway).
pub fn judge(found: Found, age: Option<u64>, interval: u64) -> Action {
    match found {
        Found::Absent => Action::None,
        Found::Other(what) => Action::Refuse(what),
        Found::UserFile => match age {
            Some(a) if a < interval => Action::Defer,
            _ => Action::Consume,
        },
    }
}

/// True when the user asked for a fresh cage and the request was consumed
/// now. `created` is the current record's `created=` (unix seconds).
pub fn take(user: &Passwd, created: Option<u64>, interval: u64, service: &str) -> bool {
    let Some((dot, owner)) = open_dot_cage(user) else {
        return false;
    };
    let found = match rustix::fs::statat(&dot, "reload", AtFlags::SYMLINK_NOFOLLOW) {
        Err(rustix::io::Errno::NOENT) => Found::Absent,
        Err(e) => {
            refused(user, service, &format!("cannot stat it: {e}"));
            return false;
        }
        Ok(_) if owner != user.uid => Found::Other("~/.cage is not owned by the user"),
        Ok(st) => classify(st.st_mode, st.st_uid, user.uid),
    };
    let age = created.map(|c| now().saturating_sub(c));
    match judge(found, age, interval) {
        Action::None | Action::Defer => false,
        Action::Refuse(what) => {
            refused(user, service, what);
            false
        }
        // A flags-free unlinkat never follows a symlink and fails on a
        // directory: whatever was swapped in since the stat, at most that
        // name goes, and only a removed name counts as a request (two
        // entries racing: one of them wins).
        Action::Consume => match rustix::fs::unlinkat(&dot, "reload", AtFlags::empty()) {
            Ok(()) => true,
            Err(rustix::io::Errno::NOENT) => false,
            Err(e) => {
                refused(user, service, &format!("cannot remove it: {e}"));
                false
            }
        },
    }
}

fn classify(mode: u32, uid: u32, user_uid: u32) -> Found {
    match mode & libc::S_IFMT {
        libc::S_IFREG if uid == user_uid => Found::UserFile,
        libc::S_IFREG => Found::Other("a file not owned by the user"),
        libc::S_IFDIR => Found::Other("a directory"),
        libc::S_IFLNK => Found::Other("a symlink"),
        libc::S_IFIFO => Found::Other("a fifo"),
        _ => Found::Other("not a regular file"),
    }
}

/// `~/.cage` as an `O_PATH` descriptor, reached without following any
/// symlink below the home, and its owner.
fn open_dot_cage(user: &Passwd) -> Option<(OwnedFd, u32)> {
    let home = crate::apply::open_home(Path::new(&user.dir)).ok()?;
    let dot = rustix::fs::openat2(
        &home,
        ".cage",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH
            | ResolveFlags::NO_SYMLINKS
            | ResolveFlags::NO_MAGICLINKS
            | ResolveFlags::NO_XDEV,
    )
    .ok()?;
    let st = rustix::fs::fstat(dot.as_fd()).ok()?;
    Some((dot, st.st_uid))
}

fn refused(user: &Passwd, service: &str, what: &str) {
    crate::log::warn(
        service,
        &format!(
            "user {}: ignoring {}/.cage/reload ({what}): no reload",
            user.name, user.dir
        ),
    );
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_table() {
        use Action::*;
        let dir = Found::Other("a directory");
        let table = [
            // found, age of the current generation, interval => action
            (Found::Absent, Some(100), 30, None),
            (Found::Absent, Option::None, 30, None),
            (Found::UserFile, Some(100), 30, Consume),
            (Found::UserFile, Some(30), 30, Consume),
            (Found::UserFile, Some(29), 30, Defer),
            (Found::UserFile, Some(0), 0, Consume),
            (Found::UserFile, Option::None, 30, Consume),
            (dir, Some(100), 30, Refuse("a directory")),
            (dir, Option::None, 30, Refuse("a directory")),
        ];
        for (found, age, interval, want) in table {
            assert_eq!(
                judge(found, age, interval),
                want,
                "{found:?} {age:?} {interval}"
            );
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(classify(libc::S_IFREG | 0o644, 1001, 1001), Found::UserFile);
        assert_eq!(
            classify(libc::S_IFREG | 0o644, 0, 1001),
            Found::Other("a file not owned by the user")
        );
        assert_eq!(
            classify(libc::S_IFLNK | 0o777, 1001, 1001),
            Found::Other("a symlink")
        );
        assert_eq!(
            classify(libc::S_IFIFO | 0o644, 1001, 1001),
            Found::Other("a fifo")
        );
        assert_eq!(
            classify(libc::S_IFDIR | 0o755, 1001, 1001),
            Found::Other("a directory")
        );
    }
}
