//! Records of live cages under `/run/cage/` (root-only): which init holds a
//! user's cage, and how to verify it before joining.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::paths::RUN_DIR;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Record {
    pub uid: u32,
    pub user: String,
    /// The account as it was when the cage was built (primary group, home,
    /// shell), so a warm entry by uid needs no NSS lookup.
    pub gid: u32,
    pub home: String,
    pub shell: String,
    /// Host pid of the cage init.
    pub pid: i32,
    /// Start time of the init (clock ticks since boot, /proc/PID/stat field 22).
    pub start: u64,
    pub generation: u64,
    pub fingerprint: String,
    pub mntns: u64,
    pub pidns: u64,
    pub ipcns: u64,
    /// Unix time the cage was built.
    pub created: u64,
    /// What the warm path needs (`warm.*` lines; absent in records of
    /// entries that did not take a stamp).
    #[serde(skip)]
    pub warm: Option<super::warm::Warm>,
}

/// The value of `key=value` in a record's text.
pub fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// The root-only run directory, created when missing and checked otherwise.
pub fn run_dir() -> io::Result<PathBuf> {
    let p = PathBuf::from(RUN_DIR);
    match std::fs::DirBuilder::new().mode(0o700).create(&p) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let md = std::fs::symlink_metadata(&p)?;
    if !md.is_dir() || md.uid() != 0 || md.permissions().mode() & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{RUN_DIR} must be a root-owned directory not writable by others"),
        ));
    }
    Ok(p)
}

fn rec_path(dir: &Path, uid: u32) -> PathBuf {
    dir.join(format!("{uid}.rec"))
}

/// Where old generations are recorded, under the run directory.
const OLD_DIR: &str = "old";

fn old_dir(dir: &Path) -> io::Result<PathBuf> {
    let p = dir.join(OLD_DIR);
    match std::fs::DirBuilder::new().mode(0o700).create(&p) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(p),
    }
}

/// A record file: `Ok(None)` when absent, not a root-owned regular file,
/// or garbage.
fn read_file(p: &Path) -> io::Result<Option<Record>> {
    let md = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !md.is_file() || md.uid() != 0 {
        return Ok(None);
    }
    let text = std::fs::read_to_string(p)?;
    Ok(Record::from_text(&text))
}

impl Record {
    fn to_text(&self) -> String {
        let mut t = format!(
            "uid={}\nuser={}\ngid={}\nhome={}\nshell={}\npid={}\nstart={}\ngeneration={}\nfingerprint={}\nmntns={}\npidns={}\nipcns={}\ncreated={}\n",
            self.uid, self.user, self.gid, self.home, self.shell, self.pid, self.start, self.generation, self.fingerprint, self.mntns, self.pidns, self.ipcns, self.created
        );
        if let Some(w) = &self.warm {
            t.push_str(&w.to_text());
        }
        t
    }

    pub(crate) fn from_text(text: &str) -> Option<Record> {
        let get = |k: &str| field(text, k);
        Some(Record {
            uid: get("uid")?.parse().ok()?,
            user: get("user")?.to_string(),
            gid: get("gid")?.parse().ok()?,
            home: get("home")?.to_string(),
            shell: get("shell")?.to_string(),
            pid: get("pid")?.parse().ok()?,
            start: get("start")?.parse().ok()?,
            generation: get("generation")?.parse().ok()?,
            fingerprint: get("fingerprint")?.to_string(),
            mntns: get("mntns")?.parse().ok()?,
            pidns: get("pidns")?.parse().ok()?,
            ipcns: get("ipcns")?.parse().ok()?,
            created: get("created")?.parse().ok()?,
            warm: super::warm::Warm::from_text(text),
        })
    }

    /// The account this record was built for.
    pub fn passwd(&self) -> crate::identity::Passwd {
        crate::identity::Passwd {
            name: self.user.clone(),
            passwd: "x".into(),
            uid: self.uid,
            gid: self.gid,
            gecos: String::new(),
            dir: self.home.clone(),
            shell: self.shell.clone(),
        }
    }

    /// The record of `uid`; `Ok(None)` when absent or unreadable garbage.
    pub fn read(dir: &Path, uid: u32) -> io::Result<Option<Record>> {
        Ok(read_file(&rec_path(dir, uid))?.filter(|r| r.uid == uid))
    }

    /// Writes atomically (temp file + rename), mode 0600. On failure
    /// nothing is left behind (the temporary file is removed).
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        self.write_to(dir, &rec_path(dir, self.uid))?;
        self.write_name_link(dir);
        Ok(())
    }

    fn write_to(&self, dir: &Path, dest: &Path) -> io::Result<()> {
        let tmp = dir.join(format!(".{}.rec.{}", self.uid, std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let r = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)?;
            io::Write::write_all(&mut f, self.to_text().as_bytes())?;
            // No fsync: a record names a live process and means nothing
            // after a crash (whatever is left is refused by verification:
            // garbage does not parse, a dead init fails its start time);
            // rename alone makes it atomic for every live reader.
            std::fs::rename(&tmp, dest)
        })();
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r
    }

    /// Moves the current record of `uid` (if any) to the old generations
    /// (`old/<uid>.<generation>.rec`): its init is unpinned but may still
    /// hold processes. Returns it.
    pub fn retire(dir: &Path, uid: u32) -> io::Result<Option<Record>> {
        let Some(rec) = Record::read(dir, uid)? else {
            return Ok(None);
        };
        let old = old_dir(dir)?;
        std::fs::rename(
            rec_path(dir, uid),
            old.join(format!("{uid}.{}.rec", rec.generation)),
        )?;
        Ok(Some(rec))
    }

    /// Records `self` as an old generation (a copy, before the record that
    /// replaces it is written).
    pub fn write_old(&self, dir: &Path) -> io::Result<()> {
        let old = old_dir(dir)?;
        self.write_to(
            dir,
            &old.join(format!("{}.{}.rec", self.uid, self.generation)),
        )
    }

    /// Old generations of `uid` (every user with `None`), sorted by uid,
    /// then generation (oldest first). Dead ones are included: callers
    /// verify each and [`Record::remove_old`] the dead.
    pub fn list_old(dir: &Path, uid: Option<u32>) -> io::Result<Vec<Record>> {
        let old = dir.join(OLD_DIR);
        let rd = match std::fs::read_dir(&old) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for e in rd {
            let name = e?.file_name().to_string_lossy().into_owned();
            let Some((u, g)) = name
                .strip_suffix(".rec")
                .and_then(|n| n.split_once('.'))
                .and_then(|(u, g)| Some((u.parse::<u32>().ok()?, g.parse::<u64>().ok()?)))
            else {
                continue;
            };
            if uid.is_some_and(|x| x != u) {
                continue;
            }
            if let Some(r) = read_file(&old.join(&name))? {
                if r.uid == u && r.generation == g {
                    out.push(r);
                }
            }
        }
        out.sort_by_key(|r| (r.uid, r.generation));
        Ok(out)
    }

    /// Forgets an old generation (its init is gone).
    pub fn remove_old(&self, dir: &Path) -> io::Result<()> {
        let p = dir
            .join(OLD_DIR)
            .join(format!("{}.{}.rec", self.uid, self.generation));
        match std::fs::remove_file(p) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// `names/<user>` -> `<uid>`: finds the record of a user by name without
    /// NSS. Best effort: without it an entry by name just looks the user up.
    fn write_name_link(&self, dir: &Path) {
        let names = dir.join("names");
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&names);
        let tmp = names.join(format!(".{}.{}", self.uid, std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        if std::os::unix::fs::symlink(self.uid.to_string(), &tmp).is_ok()
            && std::fs::rename(&tmp, names.join(&self.user)).is_err()
        {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// The uid whose record was last written for `user`, if any.
    pub fn uid_by_name(dir: &Path, user: &str) -> Option<u32> {
        if !crate::config::users::valid_user_name(user) {
            return None;
        }
        std::fs::read_link(dir.join("names").join(user))
            .ok()?
            .to_str()?
            .parse()
            .ok()
    }

    pub fn remove(dir: &Path, uid: u32) -> io::Result<()> {
        if let Ok(Some(r)) = Record::read(dir, uid) {
            if Record::uid_by_name(dir, &r.user) == Some(uid) {
                let _ = std::fs::remove_file(dir.join("names").join(&r.user));
            }
        }
        match std::fs::remove_file(rec_path(dir, uid)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// The generation a new cage of `uid` gets: one past every recorded
    /// one, current or old (old generations stay recorded while alive).
    pub fn next_generation(dir: &Path, uid: u32) -> io::Result<u64> {
        let current = Record::read(dir, uid)?.map_or(0, |r| r.generation);
        // Only old generations whose init still runs count: a record left
        // by an init that is gone (its user deleted, the machine's earlier
        // life) must not push generation numbers up for a new user of
        // the same uid.
        let old = Record::list_old(dir, Some(uid))?
            .iter()
            .filter(|r| super::join::start_time(r.pid).ok() == Some(r.start))
            .map(|r| r.generation)
            .max()
            .unwrap_or(0);
        Ok(current.max(old) + 1)
    }

    /// Every record, sorted by uid.
    pub fn list(dir: &Path) -> io::Result<Vec<Record>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if let Some(uid) = name
                .strip_suffix(".rec")
                .and_then(|u| u.parse::<u32>().ok())
            {
                if let Some(r) = Record::read(dir, uid)? {
                    out.push(r);
                }
            }
        }
        out.sort_by_key(|r| r.uid);
        Ok(out)
    }
}

/// The per-user lock: shared to join a current cage, exclusive to build,
/// replace or unpin one (single flight).
pub struct Lock(#[allow(dead_code)] std::fs::File);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Share {
    Shared,
    Exclusive,
}

impl Lock {
    pub fn acquire(dir: &Path, uid: u32, share: Share) -> io::Result<Lock> {
        Lock::acquire_file(&dir.join(format!("{uid}.lock")), share)
    }

    /// Turns an exclusive lock into a shared one (without unlocking).
    pub fn downgrade(&self) -> io::Result<()> {
        Ok(rustix::fs::flock(
            &self.0,
            rustix::fs::FlockOperation::LockShared,
        )?)
    }

    pub fn acquire_file(path: &Path, share: Share) -> io::Result<Lock> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        let op = match share {
            Share::Shared => rustix::fs::FlockOperation::LockShared,
            Share::Exclusive => rustix::fs::FlockOperation::LockExclusive,
        };
        rustix::fs::flock(&f, op)?;
        Ok(Lock(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let r = Record {
            uid: 1001,
            user: "alice".into(),
            gid: 1001,
            home: "/home/alice".into(),
            shell: "/bin/bash".into(),
            pid: 42,
            start: 99,
            generation: 3,
            fingerprint: "abc".into(),
            mntns: 1,
            pidns: 2,
            ipcns: 3,
            created: 7,
            warm: None,
        };
        assert_eq!(Record::from_text(&r.to_text()), Some(r.clone()));
        let w = Record {
            warm: Some(super::super::warm::Warm {
                stamp: "0123456789abcdef".into(),
                min_uid: 1000,
                userns: false,
                landlock: true,
                skeleton: "/var/lib/cage/skel".into(),
                virt_mp: "/var/lib/cage/01/alice/virt.mp".into(),
                cgroup: true,
            }),
            ..r
        };
        assert_eq!(Record::from_text(&w.to_text()), Some(w));
        assert_eq!(Record::from_text("uid=1\n"), None);
    }
}
