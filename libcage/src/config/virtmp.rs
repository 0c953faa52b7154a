//! Per-user virtual mount points, CageFS `virt.mp` syntax, read from
//! `<state_dir>/<prefix>/<user>/virt.mp` (hosting panels write these):
//!
//! ```text
//! /var/www/vhosts/system,0755    a virtual directory: an empty tmpfs in the cage
//! @example.com,0755              ... holding only these subdirectories, each
//! @shop.example.com              ... bound from the host's same path
//! >/var/www/vhosts/system        `>`: no tmpfs of its own (it lies in a
//!                                directory the cage already makes virtual,
//!                                such as the home's base directory)
//! # comment
//! ```
//! The mask is optional (0755).

use std::path::{Path, PathBuf};

use super::mountpoints::{below_user_writable, check_host_ancestors, normal_absolute, parse_mode};
use super::{load_or_default, ConfigError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtDir {
    pub path: PathBuf,
    pub mode: u32,
    /// False for `>` lines: no tmpfs is mounted at `path` itself.
    pub mounted: bool,
    /// Subdirectory names with their modes.
    pub subdirs: Vec<(String, u32)>,
    pub line: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VirtMp {
    pub dirs: Vec<VirtDir>,
}

fn split_mode(s: &str) -> Result<(&str, u32), String> {
    match s.split_once(',') {
        None => Ok((s.trim(), 0o755)),
        Some((p, m)) => {
            let m = m.trim();
            match parse_mode(m) {
                Some(mode) => Ok((p.trim(), mode)),
                None => Err(format!(
                    "expected an octal mask such as 0755 after `,`, found `{m}`"
                )),
            }
        }
    }
}

impl VirtMp {
    /// Parses the file and checks every virtual directory against the
    /// host: none may lie below a directory users can write.
    pub fn load(path: &Path) -> Result<VirtMp, Vec<ConfigError>> {
        load_or_default(path, |file, text| {
            let v = VirtMp::parse(file, text)?;
            let errors: Vec<ConfigError> = v
                .dirs
                .iter()
                .filter_map(|d| {
                    check_host_ancestors(&d.path).map(|m| ConfigError::new(file, d.line, m))
                })
                .collect();
            if errors.is_empty() {
                Ok(v)
            } else {
                Err(errors)
            }
        })
    }

    pub fn parse(file: &Path, text: &str) -> Result<VirtMp, Vec<ConfigError>> {
        let mut v = VirtMp::default();
        let mut errors = Vec::new();
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let s = raw.trim();
            if s.is_empty() || s.starts_with('#') {
                continue;
            }
            let err = |m: String| ConfigError::new(file, line, m);
            if let Some(rest) = s.strip_prefix('@') {
                let (name, mode) = match split_mode(rest) {
                    Ok(x) => x,
                    Err(m) => {
                        errors.push(err(m));
                        continue;
                    }
                };
                if name.is_empty()
                    || name == "."
                    || name == ".."
                    || name.contains('/')
                    || name.chars().any(char::is_control)
                {
                    errors.push(err(format!(
                        "expected a subdirectory name after `@`, found `{name}`"
                    )));
                    continue;
                }
                match v.dirs.last_mut() {
                    Some(d) if d.subdirs.iter().any(|(n, _)| n == name) => errors.push(err(
                        format!("duplicate subdirectory `{name}` of {}", d.path.display()),
                    )),
                    Some(d) => d.subdirs.push((name.to_string(), mode)),
                    None => {
                        errors.push(err(format!("`@{name}` before any virtual directory line")))
                    }
                }
                continue;
            }
            let (mounted, rest) = match s.strip_prefix('>') {
                Some(r) => (false, r),
                None => (true, s),
            };
            let (p, mode) = match split_mode(rest) {
                Ok(x) => x,
                Err(m) => {
                    errors.push(err(m));
                    continue;
                }
            };
            let path = match normal_absolute(p) {
                Ok(p) if p != Path::new("/") => p,
                Ok(_) => {
                    errors.push(err("`/` cannot be a virtual directory".into()));
                    continue;
                }
                Err(m) => {
                    errors.push(err(format!(
                        "{m} (expected `/path[,mask]`, `>/path[,mask]` or `@name[,mask]`)"
                    )));
                    continue;
                }
            };
            if let Some(m) = below_user_writable(&path) {
                errors.push(err(m));
                continue;
            }
            if let Some(prev) = v.dirs.iter().find(|d| d.path == path) {
                errors.push(err(format!(
                    "duplicate virtual directory `{}`, first at line {}",
                    path.display(),
                    prev.line
                )));
                continue;
            }
            v.dirs.push(VirtDir {
                path,
                mode,
                mounted,
                subdirs: Vec::new(),
                line,
            });
        }
        if errors.is_empty() {
            Ok(v)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_plesk_example() {
        let text = ">/var/www/vhosts/system,0755\n@cltest1-addon.com,0755\n@cltest1.com,0755\n@sub1.cltest1.com,0755\n# comment\n/srv/virt\n@a,700\n";
        let v = VirtMp::parse(Path::new("virt.mp"), text).unwrap();
        assert_eq!(
            v.dirs,
            vec![
                VirtDir {
                    path: "/var/www/vhosts/system".into(),
                    mode: 0o755,
                    mounted: false,
                    subdirs: vec![
                        ("cltest1-addon.com".into(), 0o755),
                        ("cltest1.com".into(), 0o755),
                        ("sub1.cltest1.com".into(), 0o755)
                    ],
                    line: 1
                },
                VirtDir {
                    path: "/srv/virt".into(),
                    mode: 0o755,
                    mounted: true,
                    subdirs: vec![("a".into(), 0o700)],
                    line: 6
                },
            ]
        );
    }

    #[test]
    fn reports_every_bad_line() {
        let text = "@early\n/x,99\nrel/path\n/v\n@a/b\n@ok\n@ok\n/v\n/\n/tmp/v\n";
        let errs: Vec<String> = VirtMp::parse(Path::new("/var/lib/cage/01/alice/virt.mp"), text)
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errs,
            vec![
                "/var/lib/cage/01/alice/virt.mp:1: `@early` before any virtual directory line",
                "/var/lib/cage/01/alice/virt.mp:2: expected an octal mask such as 0755 after `,`, found `99`",
                "/var/lib/cage/01/alice/virt.mp:3: expected an absolute path, found `rel/path` (expected `/path[,mask]`, `>/path[,mask]` or `@name[,mask]`)",
                "/var/lib/cage/01/alice/virt.mp:5: expected a subdirectory name after `@`, found `a/b`",
                "/var/lib/cage/01/alice/virt.mp:7: duplicate subdirectory `ok` of /v",
                "/var/lib/cage/01/alice/virt.mp:8: duplicate virtual directory `/v`, first at line 4",
                "/var/lib/cage/01/alice/virt.mp:9: `/` cannot be a virtual directory",
                "/var/lib/cage/01/alice/virt.mp:10: `/tmp/v` lies below /tmp, which every user can write; refused",
            ]
        );
    }
}
