//! The cgroup file system side: finding the hierarchies, carrying out a
//! [`Placement`](super::layout::Placement), moving processes, reading usage.

use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use super::layout::{Controller, Hierarchy, Op, V1Hierarchy};

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &s[i + 1..(i + 4).min(s.len())];
            if let Ok(v) = u8::from_str_radix(oct, 8) {
                if oct.len() == 3 {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The hierarchies in `mountinfo` text: v1 when any v1 hierarchy serves
/// one of `wanted` (hybrid hosts keep their controllers there), else the
/// unified v2 one; `None` when neither is mounted.
pub fn detect_in(mountinfo: &str, wanted: &[Controller]) -> Option<Hierarchy> {
    let mut v1: Vec<V1Hierarchy> = Vec::new();
    let mut v2 = None;
    for l in mountinfo.lines() {
        let Some((pre, post)) = l.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = pre.split(' ').collect();
        let g: Vec<&str> = post.split(' ').collect();
        if f.len() < 5 || g.len() < 3 || f[3] != "/" {
            continue;
        }
        let mount = PathBuf::from(unescape(f[4]));
        match g[0] {
            "cgroup" => {
                let subsystems: Vec<String> = g[2]
                    .split(',')
                    .filter(|o| !o.contains('=') && *o != "rw" && *o != "ro")
                    .map(str::to_string)
                    .collect();
                if !v1.iter().any(|h| h.mount == mount) && !subsystems.is_empty() {
                    v1.push(V1Hierarchy { subsystems, mount });
                }
            }
            "cgroup2" if v2.is_none() => v2 = Some(mount),
            _ => {}
        }
    }
    v1.retain(|h| !h.serves(wanted).is_empty());
    if !v1.is_empty() {
        Some(Hierarchy::V1(v1))
    } else {
        v2.map(|mount| Hierarchy::V2 { mount })
    }
}

const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const TMPFS_MAGIC: i64 = 0x0102_1994;

// `f_type` is i64 on x86_64 glibc, narrower elsewhere.
#[allow(clippy::unnecessary_cast)]
fn fs_type(p: &Path) -> Option<i64> {
    rustix::fs::statfs(p).ok().map(|s| s.f_type as i64)
}

/// The usual layout, from a few `statfs` calls instead of the whole mount
/// table (an entry must stay fast with thousands of host mounts): v2 at
/// `/sys/fs/cgroup`, or a tmpfs there with one v1 mount per directory
/// named after its subsystems (`cpu,cpuacct`; the `cpu` symlinks skipped).
fn detect_standard(root: &Path, wanted: &[Controller]) -> Option<Option<Hierarchy>> {
    match fs_type(root)? {
        CGROUP2_SUPER_MAGIC => Some(Some(Hierarchy::V2 {
            mount: root.to_path_buf(),
        })),
        TMPFS_MAGIC => {
            let mut v1 = Vec::new();
            let mut v2 = None;
            for e in std::fs::read_dir(root).ok()?.flatten() {
                if !e.file_type().ok()?.is_dir() {
                    continue;
                }
                let mount = e.path();
                match fs_type(&mount) {
                    Some(CGROUP_SUPER_MAGIC) => v1.push(V1Hierarchy {
                        subsystems: e
                            .file_name()
                            .to_string_lossy()
                            .split(',')
                            .map(str::to_string)
                            .collect(),
                        mount,
                    }),
                    Some(CGROUP2_SUPER_MAGIC) => v2 = Some(mount),
                    _ => {}
                }
            }
            v1.retain(|h| !h.serves(wanted).is_empty());
            v1.sort_by(|a, b| a.mount.cmp(&b.mount));
            Some(if !v1.is_empty() {
                Some(Hierarchy::V1(v1))
            } else {
                v2.map(|mount| Hierarchy::V2 { mount })
            })
        }
        _ => None,
    }
}

/// This machine's hierarchies: the usual layout under `/sys/fs/cgroup`,
/// or else whatever `/proc/self/mountinfo` shows.
pub fn detect(wanted: &[Controller]) -> io::Result<Option<Hierarchy>> {
    if let Some(h) = detect_standard(Path::new("/sys/fs/cgroup"), wanted) {
        return Ok(h);
    }
    Ok(detect_in(
        &std::fs::read_to_string("/proc/self/mountinfo")?,
        wanted,
    ))
}

/// The controllers a v2 cgroup directory offers (`cgroup.controllers`).
pub fn v2_available(dir: &Path) -> io::Result<Vec<Controller>> {
    Ok(std::fs::read_to_string(dir.join("cgroup.controllers"))?
        .split_whitespace()
        .filter_map(Controller::from_name)
        .collect())
}

/// Block devices I/O limits apply to (whole disks; no loop, ram or zram).
pub fn block_devices() -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/sys/block") else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if ["loop", "ram", "zram", "sr", "fd"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            continue;
        }
        if let Ok(dev) = std::fs::read_to_string(e.path().join("dev")) {
            if let Some((a, b)) = dev.trim().split_once(':') {
                if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                    out.push((a, b));
                }
            }
        }
    }
    out.sort_unstable();
    out
}

/// How [`apply`] writes: the kernel makes every file of a new cgroup;
/// a fake tree (tests) needs them created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tree {
    Kernel,
    Fake,
}

fn write_file(path: &Path, value: &str, tree: Tree) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(tree == Tree::Fake)
        .truncate(tree == Tree::Fake)
        .open(path)?;
    f.write_all(value.as_bytes())
}

/// Carries out `ops`. Returns warnings (optional writes that failed);
/// any other failure is an error naming the file.
pub fn apply(ops: &[Op], tree: Tree) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    for op in ops {
        match op {
            Op::MkdirAll(p) => {
                std::fs::create_dir_all(p).map_err(|e| format!("creating {}: {e}", p.display()))?
            }
            Op::Mkdir(p) => match std::fs::create_dir(p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && p.is_dir() => {}
                Err(e) => return Err(format!("creating {}: {e}", p.display())),
            },
            Op::Require(dir, cs) => {
                let have = v2_available(dir)
                    .map_err(|e| format!("reading {}/cgroup.controllers: {e}", dir.display()))?;
                let missing: Vec<&str> = cs
                    .iter()
                    .filter(|c| !have.contains(c))
                    .map(|c| c.name())
                    .collect();
                if !missing.is_empty() {
                    return Err(format!(
                        "{} is not delegated the controller(s) {} (systemd: Delegate=yes on the slice, see cage.slice); or leave them out of `controllers`",
                        dir.display(),
                        missing.join(", ")
                    ));
                }
            }
            Op::Write {
                path,
                value,
                optional,
            } => {
                if let Err(e) = write_file(path, value, tree) {
                    let msg = format!("writing `{value}` to {}: {e}", path.display());
                    // EBUSY: a memory limit below what the cgroup uses now
                    // (v1 could not reclaim enough); the limit in force
                    // stays, and the entry must not be refused for it.
                    if *optional || e.raw_os_error() == Some(libc::EBUSY) {
                        warnings.push(msg);
                    } else {
                        return Err(msg);
                    }
                }
            }
        }
    }
    Ok(warnings)
}

/// The `cgroup.procs` files of the leaves, opened for writing. A process
/// that writes `0` to each of them moves itself there (what a forked
/// child does before it becomes a cage init or the seed).
pub struct Joiner {
    fds: Vec<OwnedFd>,
}

impl Joiner {
    pub fn none() -> Joiner {
        Joiner { fds: Vec::new() }
    }

    pub fn open(leaves: &[PathBuf]) -> Result<Joiner, String> {
        let mut fds = Vec::new();
        for l in leaves {
            let p = l.join("cgroup.procs");
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .map_err(|e| format!("opening {}: {e}", p.display()))?;
            fds.push(OwnedFd::from(f));
        }
        Ok(Joiner { fds })
    }

    /// Moves the calling process into every leaf.
    pub fn join(&self) -> Result<(), String> {
        for fd in &self.fds {
            rustix::io::write(fd, b"0").map_err(|e| format!("joining the cgroup: {e}"))?;
        }
        Ok(())
    }
}

/// Reads a number from a cgroup file (`max` and absent are `None`).
pub fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a `key value` file (`cpu.stat`, `memory.stat`).
pub fn read_keyed(path: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Sums `field=N` over the lines of v2 `io.stat`.
pub fn read_io_stat(path: &Path, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let prefix = format!("{field}=");
    Some(
        text.split_whitespace()
            .filter_map(|w| w.strip_prefix(&prefix)?.parse::<u64>().ok())
            .sum(),
    )
}

/// Sums the `Read`/`Write` lines of v1 `blkio.throttle.io_service_bytes`.
pub fn read_blkio(path: &Path, op: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 3 && f[1] == op)
                    .then(|| f[2].parse::<u64>().ok())
                    .flatten()
            })
            .sum(),
    )
}

/// The pids in a cgroup directory and every directory below it.
pub fn procs_below(dir: &Path) -> Vec<i32> {
    let mut out: Vec<i32> = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(procs_below(&e.path()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::layout::{self, CONTROLLERS};
    use super::super::limits::Limits;
    use super::*;

    #[test]
    fn detects_v1_and_v2() {
        let mi = "30 1 0:26 / /sys/fs/cgroup/cpu rw,nosuid - cgroup cgroup rw,cpu\n\
                  31 1 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                  32 1 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
                  33 1 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                  34 1 0:30 /sub /mnt/bind rw - cgroup cgroup rw,pids\n";
        let h = detect_in(mi, &CONTROLLERS).unwrap();
        assert_eq!(
            h,
            Hierarchy::V1(vec![
                V1Hierarchy {
                    subsystems: vec!["cpu".into()],
                    mount: "/sys/fs/cgroup/cpu".into()
                },
                V1Hierarchy {
                    subsystems: vec!["memory".into()],
                    mount: "/sys/fs/cgroup/memory".into()
                },
            ])
        );
        let v2 = "25 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            detect_in(v2, &CONTROLLERS),
            Some(Hierarchy::V2 {
                mount: "/sys/fs/cgroup".into()
            })
        );
        assert_eq!(detect_in("", &CONTROLLERS), None);
    }

    fn fake_root(controllers: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "cage-cgroup-test-{}-{}",
            std::process::id(),
            controllers.len()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("cage.slice")).unwrap();
        std::fs::write(d.join("cage.slice/cgroup.controllers"), controllers).unwrap();
        d
    }

    #[test]
    fn v2_fake_tree() {
        let root = fake_root("cpuset cpu io memory hugetlb pids rdma misc");
        let h = Hierarchy::V2 {
            mount: root.clone(),
        };
        let l = Limits {
            cpu: Some(50),
            memory: Some(64 << 20),
            pids: Some(40),
            ..Limits::default()
        };
        let p = layout::user(
            &h,
            "/cage.slice",
            &CONTROLLERS,
            "alice",
            "su",
            &l,
            &[(8, 0)],
        );
        assert_eq!(apply(&p.setup, Tree::Fake), Ok(vec![]));
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
        assert_eq!(
            read("cage.slice/cgroup.subtree_control"),
            "+cpu +memory +pids +io"
        );
        assert_eq!(
            read("cage.slice/alice/cgroup.subtree_control"),
            "+cpu +memory +pids +io"
        );
        assert_eq!(read("cage.slice/alice/cpu.max"), "50000 100000");
        assert_eq!(read("cage.slice/alice/memory.max"), "67108864");
        assert_eq!(read("cage.slice/alice/memory.swap.max"), "max");
        assert_eq!(read("cage.slice/alice/pids.max"), "40");
        assert_eq!(
            read("cage.slice/alice/io.max"),
            "8:0 rbps=max wbps=max riops=max wiops=max"
        );
        assert!(root.join("cage.slice/alice/su").is_dir());
        // Again (a second first entry): same result, no error.
        assert_eq!(apply(&p.setup, Tree::Fake), Ok(vec![]));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn v2_without_delegation_is_refused() {
        let root = fake_root("cpu pids");
        let h = Hierarchy::V2 {
            mount: root.clone(),
        };
        let p = layout::user(
            &h,
            "/cage.slice",
            &CONTROLLERS,
            "alice",
            "su",
            &Limits::default(),
            &[],
        );
        let e = apply(&p.setup, Tree::Fake).unwrap_err();
        assert!(
            e.contains("is not delegated the controller(s) memory, io"),
            "{e}"
        );
        assert!(!root.join("cage.slice/alice").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
