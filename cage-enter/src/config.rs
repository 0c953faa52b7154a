//! Which configuration directory cage-enter reads: `/etc/cage`, unless the
//! directory holding the executable also holds `cage-enter.conf` naming
//! another one (`config_dir = /abs/path`). Both that directory and the file
//! must belong to root and be writable by nobody else, so only root can
//! place one: a user cannot put a hard link of the setuid binary next to a
//! file of their own (protected_hardlinks aside, the directory would have
//! to be theirs). Nothing the caller passes (argument, environment) can
//! choose the configuration.

use std::io::Read;
use std::path::{Path, PathBuf};

use libcage::config::ConfigDir;
use rustix::fs::{Mode, OFlags};

pub const SIDECAR: &str = "cage-enter.conf";

pub fn config_dir() -> Result<ConfigDir, String> {
    let exe =
        std::fs::read_link("/proc/self/exe").map_err(|e| format!("reading /proc/self/exe: {e}"))?;
    let dir = exe
        .parent()
        .ok_or_else(|| format!("{}: no directory", exe.display()))?;
    let path = match sidecar(dir)? {
        Some(text) => parse(&dir.join(SIDECAR), &text)?,
        None => PathBuf::from(libcage::paths::DEFAULT_CONFIG_DIR),
    };
    // A directory that is not there would read as "nobody caged".
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => Ok(ConfigDir::new(path)),
        Ok(_) => Err(format!("{} is not a directory", path.display())),
        Err(e) => Err(format!("configuration {}: {e}", path.display())),
    }
}

fn roots_only(st: &rustix::fs::Stat) -> bool {
    st.st_uid == 0 && st.st_mode & 0o022 == 0
}

/// The sidecar's text, when there is one root placed.
fn sidecar(dir: &Path) -> Result<Option<String>, String> {
    let d = rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("{}: {e}", dir.display()))?;
    let f = match rustix::fs::openat(
        &d,
        SIDECAR,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    ) {
        Ok(f) => f,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", dir.join(SIDECAR).display())),
    };
    let shown = dir.join(SIDECAR);
    let dst = rustix::fs::fstat(&d).map_err(|e| format!("{}: {e}", dir.display()))?;
    let fst = rustix::fs::fstat(&f).map_err(|e| format!("{}: {e}", shown.display()))?;
    if !roots_only(&dst) || !roots_only(&fst) || fst.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(format!(
            "{} and its directory must belong to root and be writable by nobody else; not read",
            shown.display()
        ));
    }
    let mut text = String::new();
    std::fs::File::from(f)
        .take(4096)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", shown.display()))?;
    Ok(Some(text))
}

/// `config_dir = /abs/path`; `#` comments and blank lines.
fn parse(file: &Path, text: &str) -> Result<PathBuf, String> {
    let mut found = None;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let at = || format!("{}:{}", file.display(), i + 1);
        match l.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
            Some(("config_dir", v)) if v.starts_with('/') && found.is_none() => {
                found = Some(PathBuf::from(v))
            }
            Some(("config_dir", _)) if found.is_some() => {
                return Err(format!("{}: config_dir given twice", at()))
            }
            Some(("config_dir", v)) => {
                return Err(format!("{}: expected an absolute path, found {v:?}", at()))
            }
            _ => {
                return Err(format!(
                    "{}: expected `config_dir = /path`, found {l:?}",
                    at()
                ))
            }
        }
    }
    found.ok_or_else(|| format!("{}: no config_dir line", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_lines() {
        let f = Path::new("/x/cage-enter.conf");
        assert_eq!(
            parse(f, "# test\nconfig_dir = /var/lib/t/conf\n").unwrap(),
            PathBuf::from("/var/lib/t/conf")
        );
        assert_eq!(
            parse(f, "config_dir = conf\n").unwrap_err(),
            "/x/cage-enter.conf:1: expected an absolute path, found \"conf\""
        );
        assert_eq!(
            parse(f, "\nuser = bob\n").unwrap_err(),
            "/x/cage-enter.conf:2: expected `config_dir = /path`, found \"user = bob\""
        );
        assert_eq!(
            parse(f, "config_dir=/a\nconfig_dir=/b\n").unwrap_err(),
            "/x/cage-enter.conf:2: config_dir given twice"
        );
        assert_eq!(
            parse(f, "# nothing\n").unwrap_err(),
            "/x/cage-enter.conf: no config_dir line"
        );
    }
}
