//! The mount watch: the host mounts of a cage (homes, shared paths, host
//! files) are slaves of the host's, so a filesystem the admin mounts later
//! inside a home or below a shared path (a backup image, a quota loop
//! device) propagates in with its own flags. The cage init program
//! (`cage-init`, which holds `CAP_SYS_ADMIN` for nothing else) polls the
//! cage's `/proc/self/mountinfo` (`POLLPRI` on every change of the mount
//! namespace) and re-applies each mount's attributes recursively
//! (`mount_setattr` with `AT_RECURSIVE`): by descriptor, never by path, so
//! nothing a user does to the paths can redirect it.
//!
//! This module is the libcage half: which mounts, with which attributes,
//! and how they are handed to the program across `exec` (the descriptors
//! from number [`FIRST_MOUNT_FD`] on, their attributes as one byte each on
//! a pipe at [`SPEC_FD`], the cage's mountinfo at [`MOUNTINFO_FD`]). Between
//! a mount's arrival and the sweep lies a short window; a setuid program is
//! powerless in it anyway, since every caged process runs with
//! `no_new_privs`.

use std::os::fd::OwnedFd;

use crate::sys::mount::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};

/// The pipe that carries one attribute byte per watched mount.
pub const SPEC_FD: i32 = 5;
/// The cage's `/proc/self/mountinfo`, opened by the init child.
pub const MOUNTINFO_FD: i32 = 6;
/// The first watched mount; the others follow in order.
pub const FIRST_MOUNT_FD: i32 = 7;

/// Spec byte: keep the mount read-only, nosuid and nodev.
pub const SPEC_READONLY: u8 = b'r';
/// Spec byte: keep the mount nosuid and nodev.
pub const SPEC_WRITABLE: u8 = b'w';

/// Host mounts to keep, each with the attributes to re-apply.
#[derive(Default)]
pub struct Watch {
    pub mounts: Vec<(OwnedFd, u64)>,
}

impl Watch {
    /// One byte per mount, in order: [`SPEC_READONLY`] or [`SPEC_WRITABLE`].
    pub fn spec(&self) -> Vec<u8> {
        self.mounts
            .iter()
            .map(|(_, attrs)| spec_byte(*attrs))
            .collect()
    }
}

/// The spec byte of a mount's attributes: read-only ones stay read-only;
/// every watched mount stays nosuid,nodev.
pub fn spec_byte(attrs: u64) -> u8 {
    debug_assert_eq!(
        attrs & (MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV),
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
    );
    if attrs & MOUNT_ATTR_RDONLY != 0 {
        SPEC_READONLY
    } else {
        SPEC_WRITABLE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_bytes() {
        assert_eq!(
            spec_byte(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV),
            b'r'
        );
        assert_eq!(spec_byte(MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV), b'w');
    }
}
