//! `cage.mp`, CageFS `cagefs.mp` syntax:
//!
//! ```text
//! /var/lib/mysql          shared read-write bind into every cage
//! !/opt/software          shared read-only bind
//! @/var/spool/cron,700    per-user private directory, stored in ~/.cage/
//! %/home/httpd/fcgi-bin   split by username: only <path>/<user> is visible
//! ```

use std::path::{Component, Path, PathBuf};

use super::{load_or_default, ConfigError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountKind {
    Shared { readonly: bool },
    PerUser { mode: u32 },
    SplitByUser,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    pub kind: MountKind,
    pub path: PathBuf,
    pub line: usize,
}

/// Paths the cage itself provides; a `cage.mp` line for them (CageFS's
/// default file lists `/proc` and `/dev/pts`) is accepted and has no effect.
pub const PROVIDED_BY_CAGE: &[&str] = &["/proc", "/dev/pts", "/dev/shm", "/dev"];

/// Paths that must never be replaced by a shared mount.
const RESERVED: &[&str] = &["/", "/etc", "/tmp", "/home"];

/// Host directories every user can write: nothing is mounted below them
/// (a user's symlink there would choose where root creates a directory and
/// attaches a mount). Any other user-writable directory is found on the
/// host by [`check_host_ancestors`].
pub const USER_WRITABLE: &[&str] = &[
    "/tmp",
    "/var/tmp",
    "/dev/shm",
    "/run/lock",
    "/var/lock",
    "/run/user",
];

/// `file:line` text for a path strictly below a directory of
/// [`USER_WRITABLE`].
pub fn below_user_writable(path: &Path) -> Option<String> {
    USER_WRITABLE
        .iter()
        .find(|d| path.starts_with(d) && path != Path::new(d))
        .map(|d| {
            format!(
                "`{}` lies below {d}, which every user can write; refused",
                path.display()
            )
        })
}

/// Why the host directories above `path` (not `path` itself) are not the
/// administrator's alone, if one is not: owned by another uid than root, or
/// writable by a group other than root's or by others (the directory a
/// symlink leads to is what counts). Components absent on the host end the
/// walk: nothing below them exists.
pub fn check_host_ancestors(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let mut p = PathBuf::from("/");
    let comps: Vec<_> = path.components().skip(1).collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        p.push(c);
        let Ok(md) = std::fs::metadata(&p) else {
            return None;
        };
        if !md.is_dir() {
            return None;
        }
        let why = if md.uid() != 0 {
            format!("is owned by uid {}", md.uid())
        } else if md.mode() & 0o002 != 0 {
            "is writable by every user".to_string()
        } else if md.mode() & 0o020 != 0 && md.gid() != 0 {
            format!("is writable by group {}", md.gid())
        } else {
            continue;
        };
        return Some(format!(
            "`{}` lies below {}, which {why}; refused (users could redirect the mount with a symlink)",
            path.display(),
            p.display()
        ));
    }
    None
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountPoints {
    pub entries: Vec<MountEntry>,
    /// Lines accepted without effect, for `plan` to show.
    pub ignored: Vec<(usize, PathBuf)>,
}

/// Checks that `p` is absolute and normal: no `.`/`..`, no empty components.
pub fn normal_absolute(p: &str) -> Result<PathBuf, String> {
    if !p.starts_with('/') {
        return Err(format!("expected an absolute path, found `{p}`"));
    }
    if p.len() > 1 && (p.ends_with('/') || p.contains("//")) {
        return Err(format!("path `{p}` has empty components"));
    }
    let path = Path::new(p);
    if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        || p.contains("/./")
        || p.ends_with("/.")
    {
        return Err(format!("path `{p}` contains `.` or `..`"));
    }
    if p.chars().any(|c| c.is_control()) {
        return Err(format!("path `{p}` contains control characters"));
    }
    Ok(path.to_path_buf())
}

/// An octal mode of one to four digits (`700`, `0755`).
pub(crate) fn parse_mode(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || s.len() > 4 || !s.chars().all(|c| ('0'..='7').contains(&c)) {
        return None;
    }
    u32::from_str_radix(s, 8).ok()
}

impl MountPoints {
    /// Parses the file and checks every path against the host: none may
    /// lie below a directory users can write.
    pub fn load(path: &Path) -> Result<MountPoints, Vec<ConfigError>> {
        load_or_default(path, |file, text| {
            let mp = MountPoints::parse(file, text)?;
            let errors: Vec<ConfigError> = mp
                .entries
                .iter()
                .filter_map(|e| {
                    check_host_ancestors(&e.path).map(|m| ConfigError::new(file, e.line, m))
                })
                .collect();
            if errors.is_empty() {
                Ok(mp)
            } else {
                Err(errors)
            }
        })
    }

    pub fn parse(file: &Path, text: &str) -> Result<MountPoints, Vec<ConfigError>> {
        let mut mp = MountPoints::default();
        let mut errors = Vec::new();
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let s = raw.trim();
            if s.is_empty() || s.starts_with('#') {
                continue;
            }
            let err = |m: String| ConfigError::new(file, line, m);
            let (kind, rest) = match s.as_bytes()[0] {
                b'!' => (MountKind::Shared { readonly: true }, &s[1..]),
                b'@' => (MountKind::PerUser { mode: 0o755 }, &s[1..]),
                b'%' => (MountKind::SplitByUser, &s[1..]),
                b'/' => (MountKind::Shared { readonly: false }, s),
                _ => {
                    errors.push(err(format!(
                        "expected `/path`, `!/path`, `@/path[,mode]` or `%/path`, found `{s}`"
                    )));
                    continue;
                }
            };
            let (path_str, mode_str) = match rest.split_once(',') {
                Some((p, m)) => (p.trim(), Some(m.trim())),
                None => (rest.trim(), None),
            };
            let kind = match (kind, mode_str) {
                (MountKind::PerUser { .. }, Some(m)) => match parse_mode(m) {
                    Some(mode) => MountKind::PerUser { mode },
                    None => {
                        errors.push(err(format!(
                            "expected an octal mode such as 700 after `,`, found `{m}`"
                        )));
                        continue;
                    }
                },
                (MountKind::PerUser { mode }, None) => MountKind::PerUser { mode },
                (_, Some(m)) => {
                    errors.push(err(format!(
                        "unexpected `,{m}`: only `@` lines take a mode"
                    )));
                    continue;
                }
                (k, None) => k,
            };
            let path = match normal_absolute(path_str) {
                Ok(p) => p,
                Err(m) => {
                    errors.push(err(m));
                    continue;
                }
            };
            if PROVIDED_BY_CAGE.iter().any(|r| Path::new(r) == path) {
                mp.ignored.push((line, path));
                continue;
            }
            if RESERVED.iter().any(|r| Path::new(r) == path)
                || path.starts_with("/etc")
                || path.starts_with("/proc")
                || path.starts_with("/dev")
            {
                errors.push(err(format!(
                    "`{}` is managed by the cage and cannot be mounted over",
                    path.display()
                )));
                continue;
            }
            if let Some(m) = below_user_writable(&path) {
                errors.push(err(m));
                continue;
            }
            if let Some(prev) = mp.entries.iter().find(|e| e.path == path) {
                errors.push(err(format!(
                    "duplicate mount point `{}`, first at line {}",
                    path.display(),
                    prev.line
                )));
                continue;
            }
            mp.entries.push(MountEntry { kind, path, line });
        }
        if errors.is_empty() {
            Ok(mp)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cagefs_example() {
        let text = "/var/lib/mysql\n/var/lib/dav\n/var/www/cgi-bin\n/var/spool\n/dev/pts\n/usr/local/apache/domlogs\n/proc\n/opt\n@/var/spool/cron,700\n@/var/run/screen,777\n# comment\n\n!/usr/share/zoneinfo\n%/home/httpd/fcgi-bin\n@/var/cache/x\n";
        let mp = MountPoints::parse(Path::new("cage.mp"), text).unwrap();
        let kinds: Vec<(MountKind, &str, usize)> = mp
            .entries
            .iter()
            .map(|e| (e.kind.clone(), e.path.to_str().unwrap(), e.line))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (MountKind::Shared { readonly: false }, "/var/lib/mysql", 1),
                (MountKind::Shared { readonly: false }, "/var/lib/dav", 2),
                (MountKind::Shared { readonly: false }, "/var/www/cgi-bin", 3),
                (MountKind::Shared { readonly: false }, "/var/spool", 4),
                (
                    MountKind::Shared { readonly: false },
                    "/usr/local/apache/domlogs",
                    6
                ),
                (MountKind::Shared { readonly: false }, "/opt", 8),
                (MountKind::PerUser { mode: 0o700 }, "/var/spool/cron", 9),
                (MountKind::PerUser { mode: 0o777 }, "/var/run/screen", 10),
                (
                    MountKind::Shared { readonly: true },
                    "/usr/share/zoneinfo",
                    13
                ),
                (MountKind::SplitByUser, "/home/httpd/fcgi-bin", 14),
                (MountKind::PerUser { mode: 0o755 }, "/var/cache/x", 15),
            ]
        );
        assert_eq!(
            mp.ignored,
            vec![(5, PathBuf::from("/dev/pts")), (7, PathBuf::from("/proc"))]
        );
    }

    #[test]
    fn reports_every_bad_line() {
        let text = "var/lib\n@/x,9z\n/a/../b\n/ok\n/ok\n/etc\n!/y,700\n/tmp\n~/home\n/a//b\n/tmp/x\n@/var/tmp/y\n";
        let errs: Vec<String> = MountPoints::parse(Path::new("/etc/cage/cage.mp"), text)
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errs,
            vec![
                "/etc/cage/cage.mp:1: expected `/path`, `!/path`, `@/path[,mode]` or `%/path`, found `var/lib`",
                "/etc/cage/cage.mp:2: expected an octal mode such as 700 after `,`, found `9z`",
                "/etc/cage/cage.mp:3: path `/a/../b` contains `.` or `..`",
                "/etc/cage/cage.mp:5: duplicate mount point `/ok`, first at line 4",
                "/etc/cage/cage.mp:6: `/etc` is managed by the cage and cannot be mounted over",
                "/etc/cage/cage.mp:7: unexpected `,700`: only `@` lines take a mode",
                "/etc/cage/cage.mp:8: `/tmp` is managed by the cage and cannot be mounted over",
                "/etc/cage/cage.mp:9: expected `/path`, `!/path`, `@/path[,mode]` or `%/path`, found `~/home`",
                "/etc/cage/cage.mp:10: path `/a//b` has empty components",
                "/etc/cage/cage.mp:11: `/tmp/x` lies below /tmp, which every user can write; refused",
                "/etc/cage/cage.mp:12: `/var/tmp/y` lies below /var/tmp, which every user can write; refused",
            ]
        );
    }

    #[test]
    fn refuses_paths_below_user_writable_host_directories() {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("cage-mp-host-{}", std::process::id()));
        let open = base.join("open");
        std::fs::create_dir_all(open.join("sub")).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        // The first directory users can write names the refusal: `open`,
        // or an ancestor of it such as /tmp.
        let why = check_host_ancestors(&open.join("sub/target")).unwrap();
        let named = why
            .split("lies below ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .unwrap();
        assert!(open.starts_with(named), "{why}");
        // The path itself may be writable; only what lies above counts.
        assert_eq!(check_host_ancestors(Path::new("/usr/lib")), None);
        let absent = format!("/cage-absent-{}/a/b", std::process::id());
        assert_eq!(check_host_ancestors(Path::new(&absent)), None);
        let f = base.join("cage.mp");
        std::fs::write(&f, format!("/usr/lib\n{}/sub/x\n", open.display())).unwrap();
        let errs = MountPoints::load(&f).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0]
            .to_string()
            .starts_with(&format!("{}:2: ", f.display())));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
