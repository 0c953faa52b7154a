//! What a cage generation was built from, cheap enough for every entry: the
//! identity (dev, inode, mtime, size) of every input file, never contents.

use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::config::{ConfigDir, Settings};
use crate::identity::Passwd;

fn stat_into(h: &mut impl Hasher, p: &Path) {
    p.hash(h);
    match std::fs::symlink_metadata(p) {
        Ok(m) => (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size()).hash(h),
        Err(_) => 0u8.hash(h),
    }
}

fn dir_into(h: &mut impl Hasher, p: &Path) {
    stat_into(h, p);
    if let Ok(rd) = std::fs::read_dir(p) {
        // The entry's own type (never following a symlink): a symlink is
        // taken by its identity, so a link loop cannot recurse forever.
        let mut names: Vec<_> = rd
            .flatten()
            .map(|e| (e.path(), e.file_type().is_ok_and(|t| t.is_dir())))
            .collect();
        names.sort();
        for (n, is_dir) in names {
            if is_dir {
                dir_into(h, &n);
            } else {
                stat_into(h, &n);
            }
        }
    }
}

pub fn compute(config: &ConfigDir, settings: &Settings, user: &Passwd) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&user.name, user.uid, user.gid, &user.dir).hash(&mut h);
    (settings.min_uid, &settings.skeleton, settings.proc.as_str()).hash(&mut h);
    for p in [
        config.ini(),
        config.mount_points(),
        "/etc/passwd".into(),
        "/etc/group".into(),
    ] {
        stat_into(&mut h, &p);
    }
    // The skeleton by identity only: an update swaps in a new directory
    // (new inode), while building a cage may add mountpoints to it (mtime).
    match std::fs::metadata(&settings.skeleton) {
        Ok(m) => (m.dev(), m.ino()).hash(&mut h),
        Err(_) => 0u8.hash(&mut h),
    }
    // The host's syslog socket by identity, through its symlinks: a syslog
    // daemon that started, or restarted and bound a new socket, since the
    // cage was built makes the next entry build one bound to the live one.
    match std::fs::metadata(crate::plan::SYSLOG_SOCKET) {
        Ok(m) => (m.dev(), m.ino(), m.ctime(), m.ctime_nsec()).hash(&mut h),
        Err(_) => 0u8.hash(&mut h),
    }
    dir_into(&mut h, &config.templates_dir());
    dir_into(&mut h, &config.custom_etc(&user.name));
    stat_into(&mut h, &super::virt_mp_path(settings, user));
    format!("{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_loop_is_not_followed() {
        let d = std::env::temp_dir().join(format!("cage-fp-loop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("a")).unwrap();
        std::os::unix::fs::symlink("..", d.join("a/up")).unwrap();
        std::os::unix::fs::symlink("loop", d.join("loop")).unwrap();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        dir_into(&mut h, &d);
        let first = h.finish();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        dir_into(&mut h, &d);
        assert_eq!(first, h.finish());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
