//! The warm path: joining a current cage without reading any configuration
//! file whose content cannot have changed.
//!
//! Every record written by a caged entry carries a *stamp*: an FNV-1a hash
//! of the identity (device, inode, mtime, ctime, size; or absence) of every
//! input the slow path reads to decide that the user is caged and to
//! compute the cage's fingerprint — `cage.ini`, `/etc/login.defs`,
//! `cage.mp`, `/etc/passwd`, `/etc/group`, the user's `users.enabled` and
//! `users.disabled` markers, `exclude/` and each file in it, the `conf.d/`
//! and `custom.etc/USER` trees, the skeleton directory and the user's
//! `virt.mp` — plus the few settings an entry needs (`min_uid` of
//! cage.ini, `userns`, `landlock`) and the two paths that come from
//! cage.ini (skeleton, `virt.mp`). The slow path takes the stamp *before*
//! it reads those inputs (the skeleton and `virt.mp` right after cage.ini,
//! before the fingerprint), so a change while it runs leaves a stamp that
//! no longer matches, never a matching stamp for an outdated cage.
//!
//! When the stamp computed now equals the record's, the decision and the
//! fingerprint would come out as they did then: no file is parsed, no NSS
//! lookup is made, the record is read once (under the shared lock), and
//! the init is verified ([`super::Live::verify`], every check of
//! SECURITY.md) before joining. Anything else (no record, another stamp, a
//! reload request, an init that fails verification) goes to the slow path,
//! which starts from scratch.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::fingerprint::Fnv;
use super::record::{self, Lock, Record, Share};
use super::{Entered, Live, Outcome, Request, Restrict, Who};
use crate::config::{ConfigDir, Settings};
use crate::sys::process;
use crate::Error;

/// What a record keeps for the warm path (its `warm.*` lines).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Warm {
    pub stamp: String,
    /// cage.ini's own `min_uid` (a caller's override is applied at entry).
    pub min_uid: u32,
    pub userns: bool,
    pub landlock: bool,
    pub skeleton: PathBuf,
    pub virt_mp: PathBuf,
    /// `[cgroup] enable`: placement needs the cgroup settings and
    /// limits.conf, which only the slow path reads.
    pub cgroup: bool,
}

impl Warm {
    pub fn to_text(&self) -> String {
        format!(
            "warm.stamp={}\nwarm.min_uid={}\nwarm.userns={}\nwarm.landlock={}\nwarm.skeleton={}\nwarm.virt_mp={}\nwarm.cgroup={}\n",
            self.stamp,
            self.min_uid,
            u8::from(self.userns),
            u8::from(self.landlock),
            self.skeleton.display(),
            self.virt_mp.display(),
            u8::from(self.cgroup)
        )
    }

    /// `None` when the lines are missing or malformed (a record written
    /// before the warm path existed): such a record just takes the slow path.
    pub fn from_text(text: &str) -> Option<Warm> {
        let get = |k: &str| record::field(text, k);
        let flag = |k: &str| match get(k)? {
            "0" => Some(false),
            "1" => Some(true),
            _ => None,
        };
        let path = |k: &str| Some(PathBuf::from(get(k)?)).filter(|p| p.is_absolute());
        Some(Warm {
            stamp: get("warm.stamp")?.to_string(),
            min_uid: get("warm.min_uid")?.parse().ok()?,
            userns: flag("warm.userns")?,
            landlock: flag("warm.landlock")?,
            skeleton: path("warm.skeleton")?,
            virt_mp: path("warm.virt_mp")?,
            cgroup: flag("warm.cgroup")?,
        })
    }

    /// The warm data of an entry that read `settings` (cage.ini's own,
    /// without a caller's `min_uid` override) after taking `stamp`.
    pub fn new(stamp: Stamp, settings: &Settings, virt_mp: PathBuf) -> Warm {
        Warm {
            stamp: stamp.finish(&settings.skeleton, &virt_mp),
            min_uid: settings.min_uid,
            userns: settings.userns,
            landlock: settings.landlock,
            skeleton: settings.skeleton.clone(),
            virt_mp,
            cgroup: settings.cgroup.enable,
        }
    }
}

/// A stamp being taken: the inputs named by the configuration directory and
/// the user, before any of them is read. [`Stamp::finish`] adds the two
/// that cage.ini names.
pub struct Stamp(Fnv);

/// Adds the identity of `p` (not following a final symlink; when it is one,
/// also its target's), or its absence.
fn ident(h: &mut Fnv, p: &Path) {
    h.str(p.as_os_str().as_bytes());
    let one = |h: &mut Fnv, m: std::io::Result<std::fs::Metadata>| match m {
        Ok(m) => {
            h.bytes(&[1]);
            h.u64(m.dev());
            h.u64(m.ino());
            h.u64(m.mode().into());
            h.i64(m.mtime());
            h.i64(m.mtime_nsec());
            h.i64(m.ctime());
            h.i64(m.ctime_nsec());
            h.u64(m.size());
        }
        // The error itself, not just its presence: "absent" (ENOENT) and
        // "cannot tell" (ENOTDIR, EACCES, EIO: a broken configuration the
        // slow path refuses) must not stamp alike.
        Err(e) => {
            h.bytes(&[0]);
            h.i64(e.raw_os_error().unwrap_or(-1).into());
        }
    };
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_symlink() => {
            one(h, Ok(m));
            one(h, std::fs::metadata(p));
        }
        m => one(h, m),
    }
}

/// `p` and everything below it, in name order; directories are entered by
/// their own type (never through a symlink).
fn tree(h: &mut Fnv, p: &Path) {
    ident(h, p);
    let Ok(rd) = std::fs::read_dir(p) else {
        return;
    };
    let mut names: Vec<_> = rd
        .flatten()
        .map(|e| (e.path(), e.file_type().is_ok_and(|t| t.is_dir())))
        .collect();
    names.sort();
    for (n, is_dir) in names {
        if is_dir {
            tree(h, &n);
        } else {
            ident(h, &n);
        }
    }
}

impl Stamp {
    pub fn begin(config: &ConfigDir, uid: u32, name: &str) -> Stamp {
        let mut h = Fnv::default();
        h.bytes(b"cage-warm-1");
        h.u64(uid.into());
        h.str(name.as_bytes());
        h.path(config.path());
        for p in [
            config.ini(),
            PathBuf::from("/etc/login.defs"),
            config.mount_points(),
            PathBuf::from("/etc/passwd"),
            PathBuf::from("/etc/group"),
            // The host's syslog socket, followed (the cage binds the one
            // it leads to; a restarted daemon's new socket means a new cage).
            PathBuf::from(crate::plan::SYSLOG_SOCKET),
        ] {
            ident(&mut h, &p);
        }
        let pre = crate::paths::prefix(uid);
        ident(&mut h, &config.enabled_dir().join(&pre).join(name));
        ident(&mut h, &config.disabled_dir().join(&pre).join(name));
        // exclude/: the directory (names added or removed) and each file
        // (followed, as the exclude lists are read).
        tree(&mut h, &config.exclude_dir());
        tree(&mut h, &config.templates_dir());
        tree(&mut h, &config.custom_etc(name));
        Stamp(h)
    }

    /// Adds the skeleton and `virt.mp` (named by cage.ini) and returns the
    /// stamp's text.
    pub fn finish(mut self, skeleton: &Path, virt_mp: &Path) -> String {
        ident(&mut self.0, skeleton);
        ident(&mut self.0, virt_mp);
        self.0.hex()
    }
}

/// What the warm path concluded from a record (pure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Join the recorded cage.
    Join,
    /// Below the effective `min_uid`: not caged, nothing else to check.
    BelowMinUid,
    /// Take the slow path.
    Slow,
}

/// The warm decision: `now` is the stamp taken for this entry with the
/// record's paths; `min_uid` a caller's override.
pub fn decide(warm: Option<&Warm>, now: Option<&str>, uid: u32, min_uid: Option<u32>) -> Verdict {
    let Some(w) = warm else {
        return Verdict::Slow;
    };
    if uid == 0 {
        return Verdict::Slow;
    }
    if now != Some(w.stamp.as_str()) || w.cgroup {
        return Verdict::Slow;
    }
    if uid < min_uid.unwrap_or(w.min_uid) {
        return Verdict::BelowMinUid;
    }
    Verdict::Join
}

/// Reads the record of `uid` with one open, fstat and read: `None` when
/// absent, not a root-owned regular file, or garbage.
fn read_record(run: &Path, uid: u32) -> Option<Record> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(run.join(format!("{uid}.rec")))
        .ok()?;
    let md = f.metadata().ok()?;
    if !md.is_file() || md.uid() != 0 || md.len() > 64 * 1024 {
        return None;
    }
    let mut buf = vec![0u8; md.len() as usize];
    f.read_exact(&mut buf).ok()?;
    let text = String::from_utf8(buf).ok()?;
    Record::from_text(&text).filter(|r| r.uid == uid)
}

/// True when `~/.cage/reload` may exist (then the slow path handles and
/// removes it). One `openat2` below the home, no symlink followed.
fn reload_pending(home: &str) -> bool {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let Ok(h) = crate::apply::open_home(Path::new(home)) else {
        // The slow path decides what an unreadable home means.
        return true;
    };
    !matches!(
        rustix::fs::openat2(
            &h,
            ".cage/reload",
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH
                | ResolveFlags::NO_SYMLINKS
                | ResolveFlags::NO_MAGICLINKS
                | ResolveFlags::NO_XDEV,
        ),
        Err(rustix::io::Errno::NOENT)
    )
}

/// Tries the warm path. `None`: take the slow path (nothing was changed).
pub(super) fn enter(req: &Request<'_>, t0: Instant) -> Option<Result<Outcome, Error>> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    // The run directory as run_dir() checks it (root-owned, not writable
    // by others), without creating it: absent means no cage to join.
    let run = Path::new(crate::paths::RUN_DIR);
    let md = std::fs::symlink_metadata(run).ok()?;
    if !md.is_dir() || md.uid() != 0 || md.mode() & 0o022 != 0 {
        return None;
    }
    let uid = match req.who {
        Who::Uid(u) => u,
        Who::Name(n) => Record::uid_by_name(run, n)?,
    };
    let lock = Lock::acquire(run, uid, Share::Shared).ok()?;
    let rec = read_record(run, uid)?;
    if let Who::Name(n) = req.who {
        if rec.user != n {
            return None;
        }
    }
    crate::timing::mark("record");
    let now = rec
        .warm
        .as_ref()
        .map(|w| Stamp::begin(req.config, uid, &rec.user).finish(&w.skeleton, &w.virt_mp));
    crate::timing::mark("stamp");
    match decide(rec.warm.as_ref(), now.as_deref(), uid, req.min_uid) {
        Verdict::Slow => return None,
        Verdict::BelowMinUid => {
            return Some(Ok(Outcome::NotCaged(
                rec.passwd(),
                crate::policy::Reason::BelowMinUid,
            )))
        }
        Verdict::Join => {}
    }
    let restrict = rec.warm.as_ref().map(|w| Restrict {
        deny_userns: !w.userns,
        landlock: w.landlock,
    })?;
    if reload_pending(&rec.home) {
        return None;
    }
    let live = Live::verify(&rec).ok()?;
    crate::timing::mark("verify");
    // From here on the user is caged in this cage: the checks of the slow
    // path, with its errors.
    let r = (|| {
        let threads =
            process::thread_count().map_err(|e| Error::sys("reading /proc/self/task", e))?;
        if threads != 1 {
            return Err(Error::Threads(threads));
        }
        if let Some((fd, what)) = process::guard_fds(super::fd_policy(req))
            .map_err(|e| Error::sys("scanning /proc/self/fd", e))?
        {
            return Err(Error::LeakedFd { fd, what });
        }
        crate::timing::mark("checks");
        let generation = live.record.generation;
        live.join(req.mode, lock, restrict, req.terminal)?;
        crate::timing::mark("join");
        Ok(Outcome::Entered(Entered {
            user: rec.passwd(),
            generation,
            built: false,
            micros: t0.elapsed().as_micros(),
            steps: crate::timing::take(),
        }))
    })();
    Some(r)
}

/// After the slow path joined a current cage whose record carries another
/// stamp (an input changed without changing the cage, e.g. a file added to
/// `exclude/` for someone else): records the stamp taken by this entry, so
/// the next one is warm again. Best effort, under the shared lock (every
/// writer writes a stamp taken before its own checks).
pub(super) fn restamp(run: &Path, rec: &Record, warm: &Warm) {
    if rec.warm.as_ref() == Some(warm) {
        return;
    }
    let mut r = rec.clone();
    r.warm = Some(warm.clone());
    let _ = r.write(run);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warm(stamp: &str, min_uid: u32) -> Warm {
        Warm {
            stamp: stamp.into(),
            min_uid,
            userns: false,
            landlock: true,
            skeleton: "/var/lib/cage/skel".into(),
            virt_mp: "/var/lib/cage/01/alice/virt.mp".into(),
            cgroup: false,
        }
    }

    #[test]
    fn decision_table() {
        let w = warm("s1", 1000);
        use Verdict::*;
        // warm data, stamp now, uid, override => verdict
        type Row<'a> = (Option<&'a Warm>, Option<&'a str>, u32, Option<u32>, Verdict);
        // With cgroups on, entries are placed on the slow path.
        let wc = Warm {
            cgroup: true,
            ..w.clone()
        };
        let table: [Row; 9] = [
            (None, Some("s1"), 1001, None, Slow),
            (Some(&w), None, 1001, None, Slow),
            (Some(&w), Some("s2"), 1001, None, Slow),
            (Some(&w), Some("s1"), 1001, None, Join),
            (Some(&w), Some("s1"), 999, None, BelowMinUid),
            (Some(&w), Some("s1"), 1001, Some(2000), BelowMinUid),
            (Some(&w), Some("s1"), 600, Some(500), Join),
            (Some(&w), Some("s1"), 0, Some(0), Slow),
            (Some(&wc), Some("s1"), 1001, None, Slow),
        ];
        for (i, (wm, now, uid, m, want)) in table.into_iter().enumerate() {
            assert_eq!(decide(wm, now, uid, m), want, "row {i}");
        }
    }

    #[test]
    fn text_round_trip() {
        let w = warm("0123456789abcdef", 1000);
        assert_eq!(Warm::from_text(&w.to_text()), Some(w.clone()));
        let bad = w.to_text().replace("warm.userns=0", "warm.userns=2");
        assert_eq!(Warm::from_text(&bad), None);
        assert_eq!(Warm::from_text("uid=1\n"), None);
    }

    #[test]
    fn stamp_follows_each_input() {
        let d = std::env::temp_dir().join(format!("cage-warm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("conf/conf.d")).unwrap();
        std::fs::write(d.join("conf/cage.ini"), "[cage]\n").unwrap();
        std::fs::write(d.join("conf/conf.d/base.cfg"), "a\n").unwrap();
        let cfg = ConfigDir::new(d.join("conf"));
        let skel = d.join("skel");
        let vmp = d.join("virt.mp");
        std::fs::create_dir_all(&skel).unwrap();
        let take = || Stamp::begin(&cfg, 1001, "alice").finish(&skel, &vmp);
        let mut last = take();
        assert_eq!(last, take(), "stable while nothing changes");
        type Change<'a> = (&'a str, Box<dyn Fn() + 'a>);
        let changes: Vec<Change> = vec![
            (
                "cage.ini edited",
                Box::new(|| std::fs::write(d.join("conf/cage.ini"), "[cage]\nmode = x\n").unwrap()),
            ),
            (
                "cage.mp created",
                Box::new(|| std::fs::write(d.join("conf/cage.mp"), "").unwrap()),
            ),
            (
                "template edited in place",
                Box::new(|| std::fs::write(d.join("conf/conf.d/base.cfg"), "b\n").unwrap()),
            ),
            (
                "marker added",
                Box::new(|| {
                    std::fs::create_dir_all(d.join("conf/users.enabled/01")).unwrap();
                    std::fs::write(d.join("conf/users.enabled/01/alice"), "").unwrap()
                }),
            ),
            (
                "exclude file added",
                Box::new(|| {
                    std::fs::create_dir_all(d.join("conf/exclude")).unwrap();
                    std::fs::write(d.join("conf/exclude/x"), "bob\n").unwrap()
                }),
            ),
            (
                "custom.etc file added",
                Box::new(|| {
                    std::fs::create_dir_all(d.join("conf/custom.etc/alice")).unwrap();
                    std::fs::write(d.join("conf/custom.etc/alice/motd"), "hi\n").unwrap()
                }),
            ),
            (
                "virt.mp created",
                Box::new(|| std::fs::write(&vmp, "").unwrap()),
            ),
            (
                "users.disabled/01 replaced by a file (ENOTDIR, not ENOENT)",
                Box::new(|| std::fs::write(d.join("conf/users.disabled"), "").unwrap()),
            ),
            (
                "skeleton swapped",
                Box::new(|| {
                    std::fs::rename(&skel, d.join("skel.old")).unwrap();
                    std::fs::create_dir_all(&skel).unwrap();
                }),
            ),
        ];
        for (what, change) in changes {
            change();
            let now = take();
            assert_ne!(now, last, "{what}: the stamp must change");
            last = now;
        }
        std::fs::remove_dir_all(&d).unwrap();
    }
}
