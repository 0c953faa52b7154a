//! Files of installed Debian packages, read from dpkg's database (what
//! `dpkg -L` prints), without running dpkg.

use std::io;
use std::path::{Path, PathBuf};

/// dpkg's database directory.
pub const INFO_DIR: &str = "/var/lib/dpkg/info";

/// The `.list` file of package `name` (`name` or `name:arch`).
fn list_file(info: &Path, name: &str) -> Option<PathBuf> {
    let plain = info.join(format!("{name}.list"));
    if plain.is_file() {
        return Some(plain);
    }
    if name.contains(':') {
        return None;
    }
    // Multi-arch packages are listed as name:arch.list.
    let prefix = format!("{name}:");
    let mut found: Vec<PathBuf> = std::fs::read_dir(info)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".list"))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Whether `name` is installed (has a file list).
pub fn installed(name: &str) -> bool {
    list_file(Path::new(INFO_DIR), name).is_some()
}

/// The paths package `name` installed, as dpkg lists them.
pub fn files(name: &str) -> io::Result<Vec<PathBuf>> {
    files_in(Path::new(INFO_DIR), name)
}

fn files_in(info: &Path, name: &str) -> io::Result<Vec<PathBuf>> {
    let Some(f) = list_file(info, name) else {
        return Err(io::Error::new(io::ErrorKind::NotFound, "not installed"));
    };
    let text = std::fs::read_to_string(f)?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('/') && *l != "/." && *l != "/")
        .map(PathBuf::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_list_files() {
        let dir = std::env::temp_dir().join(format!("cage-dpkg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("foo.list"), "/.\n/usr\n/usr/bin/foo\n").unwrap();
        std::fs::write(dir.join("libbar1:amd64.list"), "/usr/lib/libbar.so.1\n").unwrap();
        assert_eq!(
            files_in(&dir, "foo").unwrap(),
            vec![PathBuf::from("/usr"), PathBuf::from("/usr/bin/foo")]
        );
        assert_eq!(
            files_in(&dir, "libbar1").unwrap(),
            vec![PathBuf::from("/usr/lib/libbar.so.1")]
        );
        assert!(files_in(&dir, "libbar1:amd64").is_ok());
        assert!(files_in(&dir, "nope").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
