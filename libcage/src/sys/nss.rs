//! NSS lookups through glibc (`getpwnam_r`, `getpwuid_r`, `getgrouplist`,
//! enumeration with `getpwent_r`/`getgrent_r`). C strings become Rust
//! strings here and nowhere else.

use std::ffi::CStr;
use std::io;

use super::cstring;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passwd {
    pub name: String,
    pub passwd: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub dir: String,
    pub shell: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub passwd: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// # Safety
/// `p` must be NULL or point to a NUL-terminated string.
unsafe fn owned(p: *const libc::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: non-null and NUL-terminated per this function's contract.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// # Safety
/// `pw` must be a `passwd` filled by glibc whose string buffer is still alive.
unsafe fn passwd_from(pw: &libc::passwd) -> Passwd {
    // SAFETY: glibc filled every string field with a valid C string (or NULL)
    // pointing into a buffer that outlives this call.
    unsafe {
        Passwd {
            name: owned(pw.pw_name),
            passwd: owned(pw.pw_passwd),
            uid: pw.pw_uid,
            gid: pw.pw_gid,
            gecos: owned(pw.pw_gecos),
            dir: owned(pw.pw_dir),
            shell: owned(pw.pw_shell),
        }
    }
}

/// # Safety
/// `gr` must be a `group` filled by glibc whose buffer is still alive.
unsafe fn group_from(gr: &libc::group) -> Group {
    let mut members = Vec::new();
    if !gr.gr_mem.is_null() {
        let mut i = 0;
        loop {
            // SAFETY: gr_mem is a NULL-terminated array of C strings; we stop
            // at the terminating NULL.
            let m = unsafe { *gr.gr_mem.add(i) };
            if m.is_null() {
                break;
            }
            // SAFETY: m is a non-null C string from glibc.
            members.push(unsafe { owned(m) });
            i += 1;
        }
    }
    Group {
        // SAFETY: string fields filled by glibc, buffer alive.
        name: unsafe { owned(gr.gr_name) },
        // SAFETY: as above.
        passwd: unsafe { owned(gr.gr_passwd) },
        gid: gr.gr_gid,
        members,
    }
}

/// Runs a `get*_r` style call with a growing buffer until it is big enough.
fn with_buffer<T>(
    mut call: impl FnMut(&mut [libc::c_char]) -> io::Result<Option<T>>,
) -> io::Result<Option<T>> {
    let mut size = 4096usize;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        match call(&mut buf) {
            Err(e) if e.raw_os_error() == Some(libc::ERANGE) && size < (1 << 24) => size *= 4,
            other => return other,
        }
    }
}

fn pw_result(rc: libc::c_int, found: bool) -> io::Result<bool> {
    match rc {
        0 => Ok(found),
        // Not-found is reported through these on some NSS modules.
        libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => Ok(false),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

pub fn getpwnam(name: &str) -> io::Result<Option<Passwd>> {
    let cname = cstring(name)?;
    with_buffer(|buf| {
        // SAFETY: zeroed passwd is a valid "empty" value; glibc overwrites it.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the call; buf.len() is its size.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pw,
                buf.as_mut_ptr(),
                buf.len(),
                &mut res,
            )
        };
        if pw_result(rc, !res.is_null())? {
            // SAFETY: res points to pw, filled by glibc; buf is alive.
            Ok(Some(unsafe { passwd_from(&pw) }))
        } else {
            Ok(None)
        }
    })
}

pub fn getpwuid(uid: u32) -> io::Result<Option<Passwd>> {
    with_buffer(|buf| {
        // SAFETY: zeroed passwd is a valid "empty" value; glibc overwrites it.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the call; buf.len() is its size.
        let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut res) };
        if pw_result(rc, !res.is_null())? {
            // SAFETY: res points to pw, filled by glibc; buf is alive.
            Ok(Some(unsafe { passwd_from(&pw) }))
        } else {
            Ok(None)
        }
    })
}

pub fn getgrgid(gid: u32) -> io::Result<Option<Group>> {
    with_buffer(|buf| {
        // SAFETY: zeroed group is a valid "empty" value; glibc overwrites it.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::group = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the call; buf.len() is its size.
        let rc = unsafe { libc::getgrgid_r(gid, &mut gr, buf.as_mut_ptr(), buf.len(), &mut res) };
        if pw_result(rc, !res.is_null())? {
            // SAFETY: res points to gr, filled by glibc; buf is alive.
            Ok(Some(unsafe { group_from(&gr) }))
        } else {
            Ok(None)
        }
    })
}

pub fn getgrnam(name: &str) -> io::Result<Option<Group>> {
    let cname = cstring(name)?;
    with_buffer(|buf| {
        // SAFETY: zeroed group is a valid "empty" value; glibc overwrites it.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::group = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the call; buf.len() is its size.
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut gr,
                buf.as_mut_ptr(),
                buf.len(),
                &mut res,
            )
        };
        if pw_result(rc, !res.is_null())? {
            // SAFETY: res points to gr, filled by glibc; buf is alive.
            Ok(Some(unsafe { group_from(&gr) }))
        } else {
            Ok(None)
        }
    })
}

/// All groups `name` belongs to, primary `gid` included.
pub fn getgrouplist(name: &str, gid: u32) -> io::Result<Vec<u32>> {
    let cname = cstring(name)?;
    let mut n: libc::c_int = 64;
    loop {
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let mut count = n;
        // SAFETY: groups has room for `count` entries; cname is a C string.
        let rc =
            unsafe { libc::getgrouplist(cname.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            groups.truncate(count as usize);
            return Ok(groups);
        }
        if count <= n {
            n *= 2;
        } else {
            n = count;
        }
        if n > 65536 {
            return Err(io::Error::other("getgrouplist: too many groups"));
        }
    }
}
