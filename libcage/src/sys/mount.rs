//! The one mount-API call rustix lacks, `mount_setattr(2)`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// `MS_SLAVE`: receive mount events from the peer group, send none back.
pub const MS_SLAVE: u64 = 1 << 19;
/// `MS_PRIVATE`: neither receive nor send mount events.
pub const MS_PRIVATE: u64 = 1 << 18;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn mount_setattr(fd: BorrowedFd<'_>, attr: &MountAttr, recursive: bool) -> io::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: fd is a live descriptor; the path is a static empty C string;
    // `attr` is a correctly laid out `struct mount_attr` and its size is passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Sets `attrs` on the mount `fd` refers to (`AT_EMPTY_PATH`), and on every
/// mount below it when `recursive` (unlike a recursive bind, which keeps
/// each submount's own flags).
pub fn set_attrs(fd: BorrowedFd<'_>, attrs: u64, recursive: bool) -> io::Result<()> {
    mount_setattr(
        fd,
        &MountAttr {
            attr_set: attrs,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        },
        recursive,
    )
}

/// Changes the propagation of the mount `fd` refers to (and of every mount
/// below it when `recursive`); used on detached clones of host mounts.
pub fn set_propagation(fd: BorrowedFd<'_>, propagation: u64, recursive: bool) -> io::Result<()> {
    mount_setattr(
        fd,
        &MountAttr {
            attr_set: 0,
            attr_clr: 0,
            propagation,
            userns_fd: 0,
        },
        recursive,
    )
}
