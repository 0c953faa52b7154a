//! What a cage generation was built from, cheap enough for every entry: the
//! identity (dev, inode, mtime, size) of every input file, never contents.
//!
//! The hash is FNV-1a 64 (offset basis 0xcbf29ce484222325, prime
//! 0x100000001b3) over an explicit byte encoding: integers little-endian,
//! strings and paths length-prefixed. It is fixed by this file, not by the
//! Rust release (`DefaultHasher` may change between releases, which would
//! rebuild every cage after an upgrade); the unit test pins known values.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::config::{ConfigDir, Settings};
use crate::identity::Passwd;

/// FNV-1a, 64 bits.
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.bytes(&v.to_le_bytes());
    }
    /// Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
    pub fn str(&mut self, s: &[u8]) {
        self.u64(s.len() as u64);
        self.bytes(s);
    }
    pub fn path(&mut self, p: &Path) {
        self.str(p.as_os_str().as_bytes());
    }
    #[cfg(test)]
    pub fn finish(&self) -> u64 {
        self.0
    }
    /// 16 lower-case hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

fn stat_into(h: &mut Fnv, p: &Path) {
    h.path(p);
    match std::fs::symlink_metadata(p) {
        Ok(m) => {
            h.bytes(&[1]);
            h.u64(m.dev());
            h.u64(m.ino());
            h.i64(m.mtime());
            h.i64(m.mtime_nsec());
            h.u64(m.size());
        }
        Err(_) => h.bytes(&[0]),
    }
}

fn dir_into(h: &mut Fnv, p: &Path) {
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
    let mut h = Fnv::default();
    h.str(user.name.as_bytes());
    h.u64(user.uid.into());
    h.u64(user.gid.into());
    h.str(user.dir.as_bytes());
    h.u64(settings.min_uid.into());
    h.path(&settings.skeleton);
    h.str(settings.proc.as_str().as_bytes());
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
        Ok(m) => {
            h.bytes(&[1]);
            h.u64(m.dev());
            h.u64(m.ino());
        }
        Err(_) => h.bytes(&[0]),
    }
    // The host's syslog socket by identity, through its symlinks: a syslog
    // daemon that started, or restarted and bound a new socket, since the
    // cage was built makes the next entry build one bound to the live one.
    match std::fs::metadata(crate::plan::SYSLOG_SOCKET) {
        Ok(m) => {
            h.bytes(&[1]);
            h.u64(m.dev());
            h.u64(m.ino());
            h.i64(m.ctime());
            h.i64(m.ctime_nsec());
        }
        Err(_) => h.bytes(&[0]),
    }
    dir_into(&mut h, &config.templates_dir());
    dir_into(&mut h, &config.custom_etc(&user.name));
    stat_into(&mut h, &super::virt_mp_path(settings, user));
    h.hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_64_known_values() {
        // The published FNV-1a 64 test vectors.
        let of = |s: &[u8]| {
            let mut h = Fnv::default();
            h.bytes(s);
            h.finish()
        };
        assert_eq!(of(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(of(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(of(b"foobar"), 0x8594_4171_f739_67e8);
        // The encoding of a fingerprint's fields is part of the format.
        let mut h = Fnv::default();
        h.str(b"alice");
        h.u64(1001);
        h.path(Path::new("/home/alice"));
        // (Value computed independently: FNV-1a 64 of
        // le64(5) "alice" le64(1001) le64(11) "/home/alice".)
        assert_eq!(h.hex(), "d680ccda4071f78c");
    }

    #[test]
    fn a_symlink_loop_is_not_followed() {
        let d = std::env::temp_dir().join(format!("cage-fp-loop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("a")).unwrap();
        std::os::unix::fs::symlink("..", d.join("a/up")).unwrap();
        std::os::unix::fs::symlink("loop", d.join("loop")).unwrap();
        let mut h = Fnv::default();
        dir_into(&mut h, &d);
        let first = h.finish();
        let mut h = Fnv::default();
        dir_into(&mut h, &d);
        assert_eq!(first, h.finish());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
