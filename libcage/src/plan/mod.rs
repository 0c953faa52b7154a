//! The mount plan: a pure value computed from config + identity. No I/O
//! here; [`crate::apply`] executes a plan, `cage-admin plan USER` prints one.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::virtmp::VirtMp;
use crate::config::{Hidepid, MountKind, MountPoints, Settings};
use crate::identity::Identity;

/// Where a bind mount's source comes from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Source {
    /// An admin-controlled host path.
    Host { path: PathBuf },
    /// The user's home directory itself.
    Home,
    /// A directory under the user's home, created (owned by the user, with
    /// `mode`) when missing, opened without following any symlink.
    UnderHome { rel: PathBuf, mode: u32 },
    /// `<dir>/<name>` of an admin-controlled `dir` (split by user name,
    /// virt.mp subdirectories), the last component opened without
    /// following a symlink; skipped when absent.
    Child { dir: PathBuf, name: String },
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "op")]
pub enum Op {
    /// The skeleton, bound read-only as the cage's `/`.
    Root { skeleton: PathBuf },
    /// A fresh tmpfs (root-owned, read-only once populated unless `writable`).
    Tmpfs {
        target: PathBuf,
        mode: u32,
        writable: bool,
    },
    /// A directory created inside a tmpfs of this plan.
    Dir { target: PathBuf, mode: u32 },
    /// A symlink created inside a tmpfs of this plan.
    Symlink { target: PathBuf, to: PathBuf },
    /// A bind mount, always `nosuid,nodev` (recursively).
    Bind {
        source: Source,
        target: PathBuf,
        readonly: bool,
    },
    /// A host device node bound in (the only mounts without `nodev`).
    Device { target: PathBuf },
    /// The host's syslog socket (`host`, followed through symlinks on the
    /// host, which the cage never sees) bound at `target`; skipped when the
    /// host has none at build time (see SECURITY.md "Syslog").
    Syslog { target: PathBuf, host: PathBuf },
    /// A private devpts instance holding at most `max` ptys.
    Devpts { target: PathBuf, max: u32 },
    /// Procfs of the cage's PID namespace.
    Proc { target: PathBuf, hidepid: Hidepid },
    /// A file with synthesized contents, bound read-only over the skeleton.
    File { target: PathBuf, contents: String },
    /// An admin-provided host file (`custom.etc/<user>/...`), bound read-only.
    HostFile { source: PathBuf, target: PathBuf },
    /// An empty read-only file bound over a global `/proc` file that would
    /// show other users' uids.
    Mask { target: PathBuf },
    /// A path the config names that needs no mount (shown by `plan`).
    Note { target: PathBuf, text: String },
}

impl Op {
    pub fn target(&self) -> &Path {
        match self {
            Op::Root { .. } => Path::new("/"),
            Op::Tmpfs { target, .. }
            | Op::Dir { target, .. }
            | Op::Symlink { target, .. }
            | Op::Bind { target, .. }
            | Op::Device { target }
            | Op::Syslog { target, .. }
            | Op::Devpts { target, .. }
            | Op::Mask { target }
            | Op::Proc { target, .. }
            | Op::File { target, .. }
            | Op::HostFile { target, .. }
            | Op::Note { target, .. } => target,
        }
    }

    /// True when this op puts a new mount (or file) at its target, which
    /// then needs a mountpoint in whatever lies below.
    pub fn mounts(&self) -> bool {
        !matches!(
            self,
            Op::Root { .. } | Op::Dir { .. } | Op::Symlink { .. } | Op::Note { .. }
        )
    }
}

/// Everything a plan is computed from.
pub struct Inputs<'a> {
    pub settings: &'a Settings,
    pub mount_points: &'a MountPoints,
    pub identity: &'a Identity,
    /// Files under `custom.etc/<user>/`, relative (e.g. `php.ini`, `ssl/x.pem`).
    pub custom_etc: &'a [PathBuf],
    /// `custom.etc/<user>` itself.
    pub custom_etc_dir: &'a Path,
    /// The user's `virt.mp` (empty when there is none).
    pub virt_mp: &'a VirtMp,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub ops: Vec<Op>,
}

/// Device nodes every cage gets.
pub const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// The syslog socket, at the same path on the host and in every cage.
pub const SYSLOG_SOCKET: &str = "/dev/log";

/// Global (not per-process) `/proc` files that list other users' uids,
/// masked in every cage. `key-users` has a line per uid holding keys; the
/// others are readable by root only on a stock kernel and masked in case a
/// distribution relaxes them. `/proc/net/*` cannot be masked this way
/// (see SECURITY.md).
pub const PROC_MASKS: &[&str] = &["/proc/key-users", "/proc/timer_list", "/proc/sched_debug"];

#[derive(Debug, PartialEq, Eq)]
pub enum PlanError {
    /// The home directory cannot be mounted at its real path.
    Home(String),
    /// A configured path lies where users can write (`file:line: ...`).
    UserWritable(String),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::Home(m) | PlanError::UserWritable(m) => write!(f, "{m}"),
        }
    }
}

/// Where a cage's mounts hold user content: `(path, what)`. A configured
/// mount below one of them would have root resolve, create and mount
/// through directories the user controls.
fn user_content(home: &Path, mps: &MountPoints, virt: &VirtMp) -> Vec<(PathBuf, String)> {
    let mut v = vec![
        (home.to_path_buf(), "the home".to_string()),
        (PathBuf::from("/tmp"), "the private /tmp".to_string()),
        (PathBuf::from("/dev/shm"), "/dev/shm".to_string()),
    ];
    for e in &mps.entries {
        match e.kind {
            MountKind::PerUser { .. } => v.push((
                e.path.clone(),
                format!("a per-user directory (cage.mp:{})", e.line),
            )),
            MountKind::SplitByUser => v.push((
                e.path.clone(),
                format!("a split-by-user directory (cage.mp:{})", e.line),
            )),
            MountKind::Shared { .. } => {}
        }
    }
    for d in &virt.dirs {
        for (name, _) in &d.subdirs {
            v.push((
                d.path.join(name),
                format!("a virtual subdirectory (virt.mp:{})", d.line),
            ));
        }
    }
    v
}

/// Computes the plan (pure).
pub fn plan(inp: &Inputs<'_>) -> Result<Plan, PlanError> {
    let user = &inp.identity.user;
    let home = PathBuf::from(&user.dir);
    let home_str = crate::config::mountpoints::normal_absolute(&user.dir)
        .map_err(|m| PlanError::Home(format!("home directory of {}: {m}", user.name)))?;
    let home_parent = home_str
        .parent()
        .filter(|p| *p != Path::new("/"))
        .ok_or_else(|| {
            PlanError::Home(format!(
                "home directory of {} ({}) must be below a base directory such as /home",
                user.name, user.dir
            ))
        })?
        .to_path_buf();
    for reserved in [
        "/etc", "/proc", "/dev", "/tmp", "/usr", "/bin", "/sbin", "/lib", "/lib64",
    ] {
        if home_str.starts_with(reserved) {
            return Err(PlanError::Home(format!(
                "home directory of {} ({}) is inside {reserved}",
                user.name, user.dir
            )));
        }
    }

    let mut ops = vec![Op::Root {
        skeleton: inp.settings.skeleton.clone(),
    }];

    // /dev: a small tmpfs with the safe nodes, a private devpts and /dev/shm.
    ops.push(Op::Tmpfs {
        target: "/dev".into(),
        mode: 0o755,
        writable: false,
    });
    for d in DEVICES {
        ops.push(Op::Device {
            target: Path::new("/dev").join(d),
        });
    }
    ops.push(Op::Syslog {
        target: SYSLOG_SOCKET.into(),
        host: SYSLOG_SOCKET.into(),
    });
    ops.push(Op::Dir {
        target: "/dev/pts".into(),
        mode: 0o755,
    });
    ops.push(Op::Devpts {
        target: "/dev/pts".into(),
        max: inp.settings.max_ptys,
    });
    ops.push(Op::Symlink {
        target: "/dev/ptmx".into(),
        to: "pts/ptmx".into(),
    });
    ops.push(Op::Dir {
        target: "/dev/shm".into(),
        mode: 0o755,
    });
    ops.push(Op::Tmpfs {
        target: "/dev/shm".into(),
        mode: 0o1777,
        writable: true,
    });
    for (name, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ops.push(Op::Symlink {
            target: Path::new("/dev").join(name),
            to: to.into(),
        });
    }

    ops.push(Op::Proc {
        target: "/proc".into(),
        hidepid: inp.settings.proc,
    });
    for m in PROC_MASKS {
        ops.push(Op::Mask { target: m.into() });
    }

    // /etc: the skeleton's, with synthesized accounts and custom files.
    ops.push(Op::File {
        target: "/etc/passwd".into(),
        contents: inp.identity.passwd.clone(),
    });
    ops.push(Op::File {
        target: "/etc/group".into(),
        contents: inp.identity.group.clone(),
    });
    for rel in inp.custom_etc {
        ops.push(Op::HostFile {
            source: inp.custom_etc_dir.join(rel),
            target: Path::new("/etc").join(rel),
        });
    }

    // The home, alone in its base directory.
    ops.push(Op::Tmpfs {
        target: home_parent.clone(),
        mode: 0o755,
        writable: false,
    });
    let mut p = home_parent.clone();
    for c in home_str
        .strip_prefix(&home_parent)
        .expect("parent is a prefix")
        .components()
    {
        p.push(c);
        ops.push(Op::Dir {
            target: p.clone(),
            mode: 0o755,
        });
    }
    ops.push(Op::Bind {
        source: Source::Home,
        target: home.clone(),
        readonly: false,
    });

    // proxyexec: the daemon's socket directory, read-only (a socket
    // needs no write access to connect); skipped while the daemon has
    // never run on this boot (no directory).
    ops.push(Op::Bind {
        source: Source::Host {
            path: crate::proxy::SOCKET_DIR.into(),
        },
        target: crate::proxy::SOCKET_DIR.into(),
        readonly: true,
    });

    ops.push(Op::Bind {
        source: Source::UnderHome {
            rel: ".cage/tmp".into(),
            mode: 0o700,
        },
        target: "/tmp".into(),
        readonly: false,
    });

    // Below the home every path is the user's to redirect (a symlink there
    // would move the mount elsewhere in the cage): nothing configured is
    // mounted there, or over the home; the plan shows it as a note.
    let overlaps_home = |path: &Path, origin: &str, line: usize| {
        (path.starts_with(&home_str) || home_str.starts_with(path)).then(|| Op::Note {
            target: path.to_path_buf(),
            text: format!(
                "{origin}:{line}: overlaps the home of {}; not mounted",
                user.name
            ),
        })
    };
    let content = user_content(&home_str, inp.mount_points, inp.virt_mp);
    let below_content = |path: &Path, origin: &str, line: usize| -> Result<(), PlanError> {
        if path.starts_with(&home_str) || home_str.starts_with(path) {
            return Ok(()); // a note below
        }
        match content
            .iter()
            .find(|(c, _)| path.starts_with(c) && path != c)
        {
            Some((c, what)) => Err(PlanError::UserWritable(format!(
                "{origin}:{line}: {} lies below {} ({what}), where users can write; refused",
                path.display(),
                c.display()
            ))),
            None => Ok(()),
        }
    };
    for e in &inp.mount_points.entries {
        below_content(&e.path, "cage.mp", e.line)?;
    }
    for d in &inp.virt_mp.dirs {
        below_content(&d.path, "virt.mp", d.line)?;
    }
    for e in &inp.mount_points.entries {
        if let Some(note) = overlaps_home(&e.path, "cage.mp", e.line) {
            ops.push(note);
            continue;
        }
        match &e.kind {
            MountKind::Shared { readonly } => ops.push(Op::Bind {
                source: Source::Host {
                    path: e.path.clone(),
                },
                target: e.path.clone(),
                readonly: *readonly,
            }),
            MountKind::PerUser { mode } => {
                let rel = Path::new(".cage").join(e.path.strip_prefix("/").expect("absolute"));
                ops.push(Op::Bind {
                    source: Source::UnderHome { rel, mode: *mode },
                    target: e.path.clone(),
                    readonly: false,
                })
            }
            MountKind::SplitByUser => {
                ops.push(Op::Tmpfs {
                    target: e.path.clone(),
                    mode: 0o755,
                    writable: false,
                });
                let target = e.path.join(&user.name);
                ops.push(Op::Dir {
                    target: target.clone(),
                    mode: 0o755,
                });
                ops.push(Op::Bind {
                    source: Source::Child {
                        dir: e.path.clone(),
                        name: user.name.clone(),
                    },
                    target,
                    readonly: false,
                });
            }
        }
    }
    for d in &inp.virt_mp.dirs {
        if let Some(note) = overlaps_home(&d.path, "virt.mp", d.line) {
            ops.push(note);
            continue;
        }
        // `>`: the directory lies in one the cage already makes virtual (a
        // tmpfs of this plan); otherwise it gets a tmpfs of its own, never
        // a directory in the shared skeleton.
        let in_tmpfs = ops
            .iter()
            .any(|op| matches!(op, Op::Tmpfs { target, .. } if d.path.starts_with(target)));
        if d.mounted || !in_tmpfs {
            ops.push(Op::Tmpfs {
                target: d.path.clone(),
                mode: d.mode,
                writable: false,
            });
        } else {
            ops.push(Op::Dir {
                target: d.path.clone(),
                mode: d.mode,
            });
        }
        for (name, mode) in &d.subdirs {
            let target = d.path.join(name);
            ops.push(Op::Dir {
                target: target.clone(),
                mode: *mode,
            });
            ops.push(Op::Bind {
                source: Source::Child {
                    dir: d.path.clone(),
                    name: name.clone(),
                },
                target,
                readonly: false,
            });
        }
    }
    for (line, path) in &inp.mount_points.ignored {
        ops.push(Op::Note {
            target: path.clone(),
            text: format!("cage.mp:{line}: provided by the cage itself"),
        });
    }

    // Parent first; equal depth keeps the order above (stable sort).
    ops.sort_by_key(|op| {
        if matches!(op, Op::Root { .. }) {
            0
        } else {
            op.target().components().count()
        }
    });
    Ok(Plan {
        user: user.name.clone(),
        uid: user.uid,
        gid: user.gid,
        home,
        ops,
    })
}

fn source_text(s: &Source) -> String {
    match s {
        Source::Host { path } => path.display().to_string(),
        Source::Home => "~ (home)".to_string(),
        Source::UnderHome { rel, mode } => {
            format!("~/{} (mode {mode:04o}, created if missing)", rel.display())
        }
        Source::Child { dir, name } => format!("{}/{name} (if present)", dir.display()),
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "# cage plan for {} (uid {}, gid {}, home {})",
            self.user,
            self.uid,
            self.gid,
            self.home.display()
        )?;
        for op in &self.ops {
            let t = op.target().display();
            match op {
                Op::Root { skeleton } => {
                    writeln!(f, "root     /  <- {}  ro,nosuid,nodev", skeleton.display())?
                }
                Op::Tmpfs { mode, writable, .. } => writeln!(
                    f,
                    "tmpfs    {t}  mode={mode:04o},{},nosuid,nodev",
                    if *writable { "rw" } else { "ro" }
                )?,
                Op::Dir { mode, .. } => writeln!(f, "dir      {t}  mode={mode:04o}")?,
                Op::Symlink { to, .. } => writeln!(f, "symlink  {t} -> {}", to.display())?,
                Op::Bind {
                    source, readonly, ..
                } => writeln!(
                    f,
                    "bind     {t}  <- {}  {},nosuid,nodev",
                    source_text(source),
                    if *readonly { "ro" } else { "rw" }
                )?,
                Op::Device { .. } => writeln!(f, "device   {t}  <- {t}  rw,nosuid")?,
                Op::Syslog { host, .. } => writeln!(
                    f,
                    "syslog   {t}  <- the socket host {} leads to (if present)  ro,nosuid,nodev,noexec",
                    host.display()
                )?,
                Op::Devpts { max, .. } => writeln!(
                    f,
                    "devpts   {t}  newinstance,ptmxmode=0666,max={max},nosuid,noexec"
                )?,
                Op::Mask { .. } => writeln!(f, "mask     {t}  empty file, ro")?,
                Op::Proc { hidepid, .. } => writeln!(
                    f,
                    "proc     {t}  hidepid={},nosuid,nodev,noexec",
                    hidepid.as_str()
                )?,
                Op::File { contents, .. } => {
                    writeln!(
                        f,
                        "file     {t}  synthesized, {} lines, ro",
                        contents.lines().count()
                    )?;
                    for l in contents.lines() {
                        writeln!(f, "         | {l}")?;
                    }
                }
                Op::HostFile { source, .. } => {
                    writeln!(f, "file     {t}  <- {}  ro", source.display())?
                }
                Op::Note { text, .. } => writeln!(f, "note     {t}  {text}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
