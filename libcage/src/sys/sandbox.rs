//! Entry-time restrictions (DESIGN.md "Process model"): a Landlock scope that
//! blocks connecting to abstract unix sockets created outside the cage, and
//! a seccomp filter that denies creating user namespaces.

use std::io;

use super::cvt;

const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
const LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

/// The Landlock ABI version, 0 when Landlock is unavailable.
pub fn landlock_abi() -> i64 {
    // SAFETY: with a NULL attr, size 0 and the VERSION flag the call only
    // returns the ABI version (or an error).
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    v.max(0)
}

/// Scopes this thread (and its future children) so that it cannot connect
/// to abstract unix sockets made outside. Returns `Ok(false)` when the
/// kernel has no Landlock scoping (ABI < 6).
pub fn scope_abstract_sockets() -> io::Result<bool> {
    if landlock_abi() < 6 {
        return Ok(false);
    }
    let attr = RulesetAttr {
        handled_access_fs: 0,
        handled_access_net: 0,
        scoped: LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET,
    };
    // SAFETY: attr is a valid landlock_ruleset_attr of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0u32,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = fd as libc::c_int;
    // SAFETY: fd is the ruleset we just created; flags must be 0.
    let rc = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32) };
    let err = io::Error::last_os_error();
    // SAFETY: fd is ours and closed exactly once.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return Err(err);
    }
    Ok(true)
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_BIT: u32 = 0x4000_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
// Offsets in struct seccomp_data.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARG0_LO: u32 = 16;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The filter: `unshare`/`clone` with `CLONE_NEWUSER` fail with EPERM,
/// `clone3` (whose flags a filter cannot read) fails with ENOSYS so libc
/// falls back to `clone`; for x86_64 and i386 system calls; x32 calls of
/// these fail too.
fn userns_filter() -> Vec<libc::sock_filter> {
    use libc::{
        BPF_ABS, BPF_ALU, BPF_AND, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W,
    };
    let ld = (BPF_LD | BPF_W | BPF_ABS) as u16;
    let jeq = (BPF_JMP | BPF_JEQ | BPF_K) as u16;
    let jge = (BPF_JMP | BPF_JGE | BPF_K) as u16;
    let and = (BPF_ALU | BPF_AND | BPF_K) as u16;
    let ret = (BPF_RET | BPF_K) as u16;
    let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let enosys = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let newuser = libc::CLONE_NEWUSER as u32;
    // Per-ABI block: [unshare, clone, clone3] numbers.
    let block = |unshare: u32, clone: u32, clone3: u32| -> Vec<libc::sock_filter> {
        vec![
            stmt(ld, OFF_NR),
            jump(jeq, clone3, 0, 1),
            stmt(ret, enosys),
            jump(jeq, unshare, 1, 0),
            jump(jeq, clone, 0, 3),
            stmt(ld, OFF_ARG0_LO),
            stmt(and, newuser),
            jump(jeq, newuser, 1, 0),
            stmt(ret, SECCOMP_RET_ALLOW),
            stmt(ret, eperm),
        ]
    };
    let x86_64 = {
        let mut b = vec![stmt(ld, OFF_NR), jump(jge, X32_BIT, 0, 1), stmt(ret, eperm)];
        b.extend(block(libc::SYS_unshare as u32, libc::SYS_clone as u32, 435));
        b
    };
    let i386 = block(310, 120, 435);
    let mut prog = vec![
        stmt(ld, OFF_ARCH),
        jump(jeq, AUDIT_ARCH_X86_64, 0, x86_64.len() as u8),
    ];
    prog.extend(x86_64);
    prog.push(jump(jeq, AUDIT_ARCH_I386, 0, i386.len() as u8));
    prog.extend(i386);
    prog.push(stmt(ret, SECCOMP_RET_ALLOW));
    prog
}

/// Installs the user-namespace filter on this thread and its children.
pub fn deny_user_namespaces() -> io::Result<()> {
    let filter = userns_filter();
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prog points to `len` valid instructions that outlive the call;
    // the kernel copies the program. Root may install filters without
    // no_new_privs (CAP_SYS_ADMIN).
    cvt(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0u32,
            &prog as *const libc::sock_fprog,
        )
    } as i32)
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_jumps_stay_in_bounds() {
        let f = userns_filter();
        for (i, ins) in f.iter().enumerate() {
            if ins.code & libc::BPF_JMP as u16 != 0 && ins.code & 0x07 == libc::BPF_JMP as u16 {
                assert!(
                    i + 1 + (ins.jt as usize) < f.len(),
                    "jt out of bounds at {i}"
                );
                assert!(
                    i + 1 + (ins.jf as usize) < f.len(),
                    "jf out of bounds at {i}"
                );
            }
        }
        assert_eq!(f.last().unwrap().k, SECCOMP_RET_ALLOW);
    }
}
