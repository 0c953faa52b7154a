//! Per-user markers (`users.enabled/<prefix>/<user>`,
//! `users.disabled/<prefix>/<user>`) and exclude lists (`exclude/*`).

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use super::{read_optional, ConfigError};
use crate::paths::prefix;

/// A user name that is safe to use as a path component.
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name != "."
        && name != ".."
        && !name.starts_with('-')
        && !name
            .chars()
            .any(|c| c == '/' || c.is_whitespace() || c.is_control() || c == ':')
}

fn marker(dir: &Path, uid: u32, name: &str) -> PathBuf {
    dir.join(prefix(uid)).join(name)
}

/// Whether `name` has a marker under `dir`. Only a missing file (or a
/// missing `dir`) means no marker; any other failure (EACCES, EIO, a
/// `users.enabled` that is not a directory) is an error naming the file and
/// the errno, so that the caller can refuse rather than guess.
pub fn has_marker(dir: &Path, uid: u32, name: &str) -> Result<bool, ConfigError> {
    if !valid_user_name(name) {
        return Ok(false);
    }
    let m = marker(dir, uid, name);
    match std::fs::symlink_metadata(&m) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(ConfigError::new(&m, 0, format!("cannot stat: {e}"))),
    }
}

/// Creates or removes the marker file of `name`.
pub fn set_marker(dir: &Path, uid: u32, name: &str, present: bool) -> io::Result<()> {
    if !valid_user_name(name) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid user name `{name}`"),
        ));
    }
    let m = marker(dir, uid, name);
    if present {
        std::fs::create_dir_all(m.parent().expect("marker has a parent"))?;
        std::fs::write(&m, b"")
    } else {
        match std::fs::remove_file(&m) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

/// Every user name with a marker under `dir`, sorted.
pub fn list_markers(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = BTreeSet::new();
    let top = match std::fs::read_dir(dir) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    for pre in top {
        let pre = pre?;
        if !pre.file_type()?.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(pre.path())? {
            let name = f?.file_name().to_string_lossy().into_owned();
            if valid_user_name(&name) {
                names.insert(name);
            }
        }
    }
    Ok(names.into_iter().collect())
}

/// Users never caged: every name in every file of `exclude/`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Excludes(pub BTreeSet<String>);

impl Excludes {
    pub fn load(dir: &Path) -> Result<Excludes, Vec<ConfigError>> {
        let mut set = BTreeSet::new();
        let mut errors = Vec::new();
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(vec![ConfigError::new(dir, 0, format!("cannot read: {e}"))]),
        };
        files.sort();
        for f in files {
            if f.is_dir() {
                continue;
            }
            match read_optional(&f) {
                Ok(Some(text)) => Self::parse_into(&f, &text, &mut set, &mut errors),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(Excludes(set))
        } else {
            Err(errors)
        }
    }

    fn parse_into(
        file: &Path,
        text: &str,
        set: &mut BTreeSet<String>,
        errors: &mut Vec<ConfigError>,
    ) {
        for (idx, raw) in text.lines().enumerate() {
            let s = raw.split('#').next().unwrap_or("").trim();
            if s.is_empty() {
                continue;
            }
            if valid_user_name(s) {
                set.insert(s.to_string());
            } else {
                errors.push(ConfigError::new(
                    file,
                    idx + 1,
                    format!("expected one user name per line, found `{s}`"),
                ));
            }
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_user_name("alice"));
        assert!(valid_user_name("web_1.x-y$"));
        for bad in ["", ".", "..", "-x", "a/b", "a b", "a:b", "a\nb"] {
            assert!(!valid_user_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn exclude_lines() {
        let mut set = BTreeSet::new();
        let mut errs = Vec::new();
        Excludes::parse_into(
            Path::new("/etc/cage/exclude/panel"),
            "# admins\nadmin\n\nbad name\nops # on call\n",
            &mut set,
            &mut errs,
        );
        assert_eq!(set.into_iter().collect::<Vec<_>>(), vec!["admin", "ops"]);
        assert_eq!(
            errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            vec!["/etc/cage/exclude/panel:4: expected one user name per line, found `bad name`"]
        );
    }

    #[test]
    fn markers_round_trip() {
        let dir = std::env::temp_dir().join(format!("cage-markers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        set_marker(&dir, 1001, "alice", true).unwrap();
        set_marker(&dir, 1102, "bob", true).unwrap();
        assert_eq!(has_marker(&dir, 1001, "alice"), Ok(true));
        assert!(dir.join("01/alice").exists());
        assert_eq!(has_marker(&dir, 1002, "alice"), Ok(false));
        assert_eq!(has_marker(&dir.join("none"), 1002, "alice"), Ok(false));
        assert_eq!(list_markers(&dir).unwrap(), vec!["alice", "bob"]);
        set_marker(&dir, 1001, "alice", false).unwrap();
        set_marker(&dir, 1001, "alice", false).unwrap();
        assert_eq!(list_markers(&dir).unwrap(), vec!["bob"]);
        assert!(set_marker(&dir, 1, "../x", true).is_err());
        // A `users.enabled` that is not a directory is an error (ENOTDIR).
        let file = dir.join("file");
        std::fs::write(&file, b"").unwrap();
        let err = has_marker(&file, 1001, "alice").unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}/01/alice: cannot stat: ", file.display())),
            "{err}"
        );
        assert!(err.contains("os error 20"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
