//! The cgroup layout as a pure value: which directories to make and which
//! files to write, for cgroup v1 (one hierarchy per controller) and v2
//! (the unified hierarchy). Nothing here touches the file system; see
//! `fs.rs` for that.
//!
//! ```text
//! BASE/                 v2: cgroup.subtree_control = +cpu +memory +pids +io
//!   seed/               the cage seed
//!   <user>/             the user's limits (v2: and subtree_control)
//!     init/             the cage init
//!     <service>/        entries (ssh, su, capi, admin, ...)
//! ```
//! Processes only ever live in leaves, which v2 requires
//! ("no internal processes") and v1 does not mind.

use std::path::{Path, PathBuf};

use super::limits::Limits;

/// A controller cage manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Controller {
    Cpu,
    Memory,
    Pids,
    Io,
}

pub const CONTROLLERS: [Controller; 4] = [
    Controller::Cpu,
    Controller::Memory,
    Controller::Pids,
    Controller::Io,
];

impl Controller {
    pub fn name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Io => "io",
        }
    }

    pub fn from_name(s: &str) -> Option<Controller> {
        CONTROLLERS.iter().copied().find(|c| c.name() == s)
    }

    /// The v1 controllers (subsystems) that serve it.
    pub fn v1_names(self) -> &'static [&'static str] {
        match self {
            Controller::Cpu => &["cpu", "cpuacct"],
            Controller::Memory => &["memory"],
            Controller::Pids => &["pids"],
            Controller::Io => &["blkio"],
        }
    }
}

/// One mounted v1 hierarchy (possibly several subsystems, `cpu,cpuacct`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V1Hierarchy {
    pub subsystems: Vec<String>,
    pub mount: PathBuf,
}

impl V1Hierarchy {
    /// The managed controllers this hierarchy serves, among `wanted`.
    pub fn serves(&self, wanted: &[Controller]) -> Vec<Controller> {
        wanted
            .iter()
            .copied()
            .filter(|c| {
                c.v1_names()
                    .iter()
                    .any(|n| self.subsystems.iter().any(|s| s == n))
            })
            .collect()
    }
}

/// What the machine mounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hierarchy {
    V1(Vec<V1Hierarchy>),
    V2 { mount: PathBuf },
}

impl Hierarchy {
    pub fn version(&self) -> u8 {
        match self {
            Hierarchy::V1(_) => 1,
            Hierarchy::V2 { .. } => 2,
        }
    }
}

/// One file system step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `mkdir -p` (the base and the directories above it).
    MkdirAll(PathBuf),
    /// `mkdir`, fine when it exists.
    Mkdir(PathBuf),
    /// v2: the parent's `cgroup.controllers` must list these (delegation).
    Require(PathBuf, Vec<Controller>),
    /// Write `value` to a file. `optional`: a missing file is skipped with
    /// a warning (v1 `memory.memsw.*` without swap accounting).
    Write {
        path: PathBuf,
        value: String,
        optional: bool,
    },
}

/// Where a set of processes goes: one directory per hierarchy (whose
/// `cgroup.procs` takes them), made by `setup` (run under a lock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub setup: Vec<Op>,
    pub leaves: Vec<PathBuf>,
}

/// A block device (`major:minor`) I/O limits apply to.
pub type Device = (u32, u32);

/// Why a name cannot be a cgroup directory.
pub fn check_name(what: &str, n: &str) -> Result<(), String> {
    let reserved = [
        "init",
        "seed",
        "tasks",
        "notify_on_release",
        "release_agent",
    ];
    if n.is_empty()
        || n == "."
        || n == ".."
        || n.contains('/')
        || n.starts_with("cgroup.")
        || reserved.contains(&n)
        || n.len() > 200
    {
        return Err(format!("{what} `{n}` cannot name a cgroup directory"));
    }
    Ok(())
}

/// The leaf for entries of a service: `pam_cage(sshd)` -> `sshd`,
/// `libcage` -> `capi`, `cage-admin` -> `admin`; anything odd -> `_`.
pub fn service_leaf(service: &str) -> String {
    let inner = match (service.find('('), service.rfind(')')) {
        (Some(a), Some(b)) if a < b => &service[a + 1..b],
        _ => service,
    };
    let s = match inner {
        "libcage" => "capi",
        "cage-admin" => "admin",
        x => x,
    };
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    out.truncate(64);
    if out.is_empty() || check_name("service", &out).is_err() {
        out = format!("svc-{out}");
    }
    out
}

/// Validates `base`: an absolute cgroup path without `.` or `..`.
pub fn check_base(base: &str) -> Result<(), String> {
    if !base.starts_with('/')
        || base
            .split('/')
            .any(|c| c == "." || c == ".." || c.starts_with("cgroup."))
    {
        return Err(format!(
            "base `{base}`: expected an absolute cgroup path without `.` or `..`"
        ));
    }
    Ok(())
}

fn under(mount: &Path, base: &str) -> PathBuf {
    let rel = base.trim_start_matches('/');
    if rel.is_empty() {
        mount.to_path_buf()
    } else {
        mount.join(rel)
    }
}

fn write(path: PathBuf, value: String) -> Op {
    Op::Write {
        path,
        value,
        optional: false,
    }
}

/// v1 limit files of `dir` for the controllers `cs` of one hierarchy.
fn v1_limits(dir: &Path, subsystems: &[String], l: &Limits, devices: &[Device]) -> Vec<Op> {
    let has = |s: &str| subsystems.iter().any(|x| x == s);
    let mut ops = Vec::new();
    if has("cpu") {
        ops.push(write(dir.join("cpu.cfs_period_us"), "100000".into()));
        ops.push(write(
            dir.join("cpu.cfs_quota_us"),
            l.cpu.map_or("-1".into(), |p| (p * 1000).to_string()),
        ));
    }
    if has("memory") {
        // memsw >= limit at every step: lift memsw, set the limit, then
        // set memsw (memory + swap).
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        ops.push(Op::Write {
            path: memsw.clone(),
            value: "-1".into(),
            optional: true,
        });
        ops.push(write(
            dir.join("memory.limit_in_bytes"),
            l.memory.map_or("-1".into(), |m| m.to_string()),
        ));
        if let (Some(m), Some(s)) = (l.memory, l.swap) {
            ops.push(Op::Write {
                path: memsw,
                value: m.saturating_add(s).to_string(),
                optional: true,
            });
        }
    }
    if has("pids") {
        ops.push(write(
            dir.join("pids.max"),
            l.pids.map_or("max".into(), |p| p.to_string()),
        ));
    }
    if has("blkio") {
        for &(maj, min) in devices {
            for (file, x) in [
                ("blkio.throttle.read_bps_device", l.io_read),
                ("blkio.throttle.write_bps_device", l.io_write),
                ("blkio.throttle.read_iops_device", l.iops),
                ("blkio.throttle.write_iops_device", l.iops),
            ] {
                // Lifting a limit a device does not take is a warning.
                ops.push(Op::Write {
                    path: dir.join(file),
                    value: format!("{maj}:{min} {}", x.unwrap_or(0)),
                    optional: x.is_none(),
                });
            }
        }
    }
    ops
}

/// v2 limit files of `dir`.
fn v2_limits(dir: &Path, cs: &[Controller], l: &Limits, devices: &[Device]) -> Vec<Op> {
    let max = |x: Option<u64>| x.map_or("max".to_string(), |v| v.to_string());
    let mut ops = Vec::new();
    for c in cs {
        match c {
            Controller::Cpu => ops.push(write(
                dir.join("cpu.max"),
                format!(
                    "{} 100000",
                    l.cpu.map_or("max".to_string(), |p| (p * 1000).to_string())
                ),
            )),
            Controller::Memory => {
                ops.push(write(dir.join("memory.max"), max(l.memory)));
                ops.push(Op::Write {
                    path: dir.join("memory.swap.max"),
                    value: max(l.swap),
                    optional: true,
                });
            }
            Controller::Pids => ops.push(write(dir.join("pids.max"), max(l.pids))),
            Controller::Io => {
                let none = l.io_read.is_none() && l.io_write.is_none() && l.iops.is_none();
                for &(maj, min) in devices {
                    ops.push(Op::Write {
                        path: dir.join("io.max"),
                        value: format!(
                            "{maj}:{min} rbps={} wbps={} riops={} wiops={}",
                            max(l.io_read),
                            max(l.io_write),
                            max(l.iops),
                            max(l.iops)
                        ),
                        // Lifting limits a device does not take is a warning.
                        optional: none,
                    });
                }
            }
        }
    }
    ops
}

fn subtree(cs: &[Controller]) -> String {
    cs.iter()
        .map(|c| format!("+{}", c.name()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The base directories (and, on v2, delegation) every placement needs.
fn base_ops(h: &Hierarchy, base: &str, wanted: &[Controller]) -> (Vec<Op>, Vec<PathBuf>) {
    let mut ops = Vec::new();
    let mut bases = Vec::new();
    match h {
        Hierarchy::V1(hs) => {
            for x in hs.iter().filter(|x| !x.serves(wanted).is_empty()) {
                let b = under(&x.mount, base);
                ops.push(Op::MkdirAll(b.clone()));
                bases.push(b);
            }
        }
        Hierarchy::V2 { mount } => {
            let b = under(mount, base);
            ops.push(Op::MkdirAll(b.clone()));
            ops.push(Op::Require(b.clone(), wanted.to_vec()));
            ops.push(write(b.join("cgroup.subtree_control"), subtree(wanted)));
            bases.push(b);
        }
    }
    (ops, bases)
}

/// The user's cgroup with its limits, and the leaf `leaf` below it.
pub fn user(
    h: &Hierarchy,
    base: &str,
    wanted: &[Controller],
    user: &str,
    leaf: &str,
    limits: &Limits,
    devices: &[Device],
) -> Placement {
    let (mut setup, bases) = base_ops(h, base, wanted);
    let mut leaves = Vec::new();
    match h {
        Hierarchy::V1(hs) => {
            let served = hs.iter().filter(|x| !x.serves(wanted).is_empty());
            for (x, b) in served.zip(&bases) {
                let u = b.join(user);
                setup.push(Op::Mkdir(u.clone()));
                setup.extend(v1_limits(&u, &x.subsystems, limits, devices));
                let l = u.join(leaf);
                setup.push(Op::Mkdir(l.clone()));
                leaves.push(l);
            }
        }
        Hierarchy::V2 { .. } => {
            let u = bases[0].join(user);
            setup.push(Op::Mkdir(u.clone()));
            setup.push(write(u.join("cgroup.subtree_control"), subtree(wanted)));
            setup.extend(v2_limits(&u, wanted, limits, devices));
            let l = u.join(leaf);
            setup.push(Op::Mkdir(l.clone()));
            leaves.push(l);
        }
    }
    Placement { setup, leaves }
}

/// `BASE/seed`.
pub fn seed(h: &Hierarchy, base: &str, wanted: &[Controller]) -> Placement {
    let (mut setup, bases) = base_ops(h, base, wanted);
    let mut leaves = Vec::new();
    for b in bases {
        let l = b.join("seed");
        setup.push(Op::Mkdir(l.clone()));
        leaves.push(l);
    }
    Placement { setup, leaves }
}

/// The user directories of every hierarchy (for `cage-admin top`).
pub fn user_dirs(h: &Hierarchy, base: &str, wanted: &[Controller], user: &str) -> Vec<PathBuf> {
    base_ops(h, base, wanted)
        .1
        .into_iter()
        .map(|b| b.join(user))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(p: &str, v: &str) -> Op {
        write(PathBuf::from(p), v.into())
    }

    #[test]
    fn v2_layout_delegates_and_limits() {
        let h = Hierarchy::V2 {
            mount: "/sys/fs/cgroup".into(),
        };
        let l = Limits {
            cpu: Some(150),
            memory: Some(64 << 20),
            pids: Some(40),
            io_read: Some(1 << 20),
            ..Limits::default()
        };
        let p = user(
            &h,
            "/cage.slice",
            &CONTROLLERS,
            "alice",
            "sshd",
            &l,
            &[(8, 0)],
        );
        assert_eq!(
            p.setup,
            vec![
                Op::MkdirAll("/sys/fs/cgroup/cage.slice".into()),
                Op::Require("/sys/fs/cgroup/cage.slice".into(), CONTROLLERS.to_vec()),
                w(
                    "/sys/fs/cgroup/cage.slice/cgroup.subtree_control",
                    "+cpu +memory +pids +io"
                ),
                Op::Mkdir("/sys/fs/cgroup/cage.slice/alice".into()),
                w(
                    "/sys/fs/cgroup/cage.slice/alice/cgroup.subtree_control",
                    "+cpu +memory +pids +io"
                ),
                w("/sys/fs/cgroup/cage.slice/alice/cpu.max", "150000 100000"),
                w("/sys/fs/cgroup/cage.slice/alice/memory.max", "67108864"),
                Op::Write {
                    path: "/sys/fs/cgroup/cage.slice/alice/memory.swap.max".into(),
                    value: "max".into(),
                    optional: true
                },
                w("/sys/fs/cgroup/cage.slice/alice/pids.max", "40"),
                Op::Write {
                    path: "/sys/fs/cgroup/cage.slice/alice/io.max".into(),
                    value: "8:0 rbps=1048576 wbps=max riops=max wiops=max".into(),
                    optional: false
                },
                Op::Mkdir("/sys/fs/cgroup/cage.slice/alice/sshd".into()),
            ]
        );
        assert_eq!(
            p.leaves,
            vec![PathBuf::from("/sys/fs/cgroup/cage.slice/alice/sshd")]
        );
        let s = seed(&h, "/cage.slice", &[Controller::Pids]);
        assert_eq!(
            s.leaves,
            vec![PathBuf::from("/sys/fs/cgroup/cage.slice/seed")]
        );
        assert_eq!(
            s.setup[2],
            w("/sys/fs/cgroup/cage.slice/cgroup.subtree_control", "+pids")
        );
    }

    #[test]
    fn v1_layout_one_dir_per_hierarchy() {
        let h = Hierarchy::V1(vec![
            V1Hierarchy {
                subsystems: vec!["cpu".into(), "cpuacct".into()],
                mount: "/sys/fs/cgroup/cpu,cpuacct".into(),
            },
            V1Hierarchy {
                subsystems: vec!["pids".into()],
                mount: "/sys/fs/cgroup/pids".into(),
            },
            V1Hierarchy {
                subsystems: vec!["freezer".into()],
                mount: "/sys/fs/cgroup/freezer".into(),
            },
        ]);
        let l = Limits {
            cpu: Some(50),
            ..Limits::default()
        };
        let p = user(&h, "/cage", &CONTROLLERS, "bob", "init", &l, &[]);
        assert_eq!(
            p.leaves,
            vec![
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/cage/bob/init"),
                PathBuf::from("/sys/fs/cgroup/pids/cage/bob/init"),
            ]
        );
        assert!(p.setup.contains(&w(
            "/sys/fs/cgroup/cpu,cpuacct/cage/bob/cpu.cfs_quota_us",
            "50000"
        )));
        assert!(p
            .setup
            .contains(&w("/sys/fs/cgroup/pids/cage/bob/pids.max", "max")));
        assert!(!p.setup.iter().any(|o| matches!(o, Op::Require(..))));
    }

    #[test]
    fn names() {
        assert_eq!(service_leaf("pam_cage(sshd)"), "sshd");
        assert_eq!(service_leaf("libcage"), "capi");
        assert_eq!(service_leaf("cage-admin"), "admin");
        assert_eq!(service_leaf("pam_cage(init)"), "svc-init");
        assert_eq!(service_leaf("a/b c"), "a_b_c");
        assert!(check_name("user", "..").is_err());
        assert!(check_name("user", "seed").is_err());
        assert!(check_name("user", "john.doe").is_ok());
        assert!(check_base("/cage").is_ok());
        assert!(check_base("cage").is_err());
        assert!(check_base("/a/../b").is_err());
    }
}
