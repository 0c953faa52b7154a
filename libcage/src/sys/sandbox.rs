//! Entry-time restrictions (DESIGN.md "Process model"):
//!
//! - a Landlock domain at every entry where the kernel has Landlock scoping
//!   (ABI 6): it scopes abstract unix sockets to the cage, and, being a
//!   domain, makes Landlock refuse ptrace-class access (`ptrace`,
//!   `pidfd_getfd`, `process_vm_*`, `/proc/PID/mem`) from inside to any
//!   process outside it, so a pidfd of an uncaged peer (`SO_PEERPIDFD`)
//!   gives the cage nothing;
//! - a seccomp filter that denies creating user namespaces, and, where no
//!   domain was applied (an older kernel, or `landlock = no`), the
//!   ptrace-class calls themselves; and, always, `ioctl(TIOCSTI)` and
//!   `ioctl(TIOCLINUX)`, so no caged process can push input into a
//!   terminal it shares with a caller (an interactive `su` without
//!   `--pty` leaves the admin's terminal to the user's shell).
//!
//! Below ABI 6 no domain is used: a ruleset must handle something
//! (ENOMSG otherwise), and the only rights there are filesystem rights,
//! whose domains also refuse every cross-directory rename or link
//! (`LANDLOCK_ACCESS_FS_REFER` is denied by default) and every mount, or
//! network rights, which would refuse TCP.

use std::io;

use super::cvt;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!(
    "libcage's seccomp filter knows the system calls of x86_64 (with i386 and x32) and aarch64 \
     (with arm) only; add this architecture's numbers to sys/sandbox.rs"
);

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

/// Whether an entry got a Landlock domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// The kernel has no Landlock scoping (ABI < 6): nothing was applied.
    Unavailable,
    /// A domain scoping abstract unix sockets; ptrace-class access to
    /// processes outside it is refused.
    Scoped,
}

/// Puts this thread (and its future children) in a new Landlock domain
/// that handles no filesystem or network right, only the abstract unix
/// socket scope (ABI 6 and later). One domain per entry, so the domains
/// nest harmlessly when an entry happens inside another.
pub fn landlock_domain() -> io::Result<Domain> {
    if landlock_abi() < 6 {
        return Ok(Domain::Unavailable);
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
    Ok(Domain::Scoped)
}

/// The system call numbers the filter needs, for one ABI.
#[derive(Clone, Copy, Debug)]
pub struct Abi {
    pub name: &'static str,
    /// `AUDIT_ARCH_*` as seen in `seccomp_data.arch`.
    pub audit_arch: u32,
    /// x86_64 only: system calls with the x32 bit are refused outright.
    pub x32_bit: bool,
    pub unshare: u32,
    pub clone: u32,
    pub clone3: u32,
    pub ptrace: u32,
    pub process_vm_readv: u32,
    pub process_vm_writev: u32,
    pub pidfd_getfd: u32,
    pub process_madvise: u32,
    pub ioctl: u32,
}

pub const X86_64: Abi = Abi {
    name: "x86_64",
    audit_arch: 0xc000_003e,
    x32_bit: true,
    unshare: 272,
    clone: 56,
    clone3: 435,
    ptrace: 101,
    process_vm_readv: 310,
    process_vm_writev: 311,
    pidfd_getfd: 438,
    process_madvise: 440,
    ioctl: 16,
};

pub const I386: Abi = Abi {
    name: "i386",
    audit_arch: 0x4000_0003,
    x32_bit: false,
    unshare: 310,
    clone: 120,
    clone3: 435,
    ptrace: 26,
    process_vm_readv: 347,
    process_vm_writev: 348,
    pidfd_getfd: 438,
    process_madvise: 440,
    ioctl: 54,
};

pub const AARCH64: Abi = Abi {
    name: "aarch64",
    audit_arch: 0xc000_00b7,
    x32_bit: false,
    unshare: 97,
    clone: 220,
    clone3: 435,
    ptrace: 117,
    process_vm_readv: 270,
    process_vm_writev: 271,
    pidfd_getfd: 438,
    process_madvise: 440,
    ioctl: 29,
};

/// 32-bit ARM (EABI) processes on an aarch64 kernel.
pub const ARM: Abi = Abi {
    name: "arm",
    audit_arch: 0x4000_0028,
    x32_bit: false,
    unshare: 337,
    clone: 120,
    clone3: 435,
    ptrace: 26,
    process_vm_readv: 376,
    process_vm_writev: 377,
    pidfd_getfd: 438,
    process_madvise: 440,
    ioctl: 54,
};

/// The ABIs a process on this machine's kernel can use.
#[cfg(target_arch = "x86_64")]
pub const NATIVE: &[Abi] = &[X86_64, I386];
#[cfg(target_arch = "aarch64")]
pub const NATIVE: &[Abi] = &[AARCH64, ARM];

/// What the seccomp filter refuses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// `unshare`/`clone` with `CLONE_NEWUSER` fail with EPERM; `clone3`
    /// (whose flags a filter cannot read) with ENOSYS, so libc falls back
    /// to `clone`.
    pub deny_userns: bool,
    /// `pidfd_getfd`, `process_vm_readv`/`writev`, `process_madvise` and
    /// `ptrace(PTRACE_ATTACH|PTRACE_SEIZE)` fail with EPERM.
    pub deny_ptrace: bool,
    /// `ioctl(TIOCSTI)` and `ioctl(TIOCLINUX)` fail with EPERM: no caged
    /// process can push input into a terminal (a caller's terminal that a
    /// PAM application such as an interactive `su` leaves to the user's
    /// processes), nor use a console's selection (paste) or other
    /// `TIOCLINUX` subcommands.
    pub deny_tty_injection: bool,
}

const X32_BIT: u32 = 0x4000_0000;
pub const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
pub const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const PTRACE_ATTACH: u32 = 16;
const PTRACE_SEIZE: u32 = 0x4206;
/// The same numbers on every supported ABI (asm-generic and x86 agree).
const TIOCSTI: u32 = 0x5412;
const TIOCLINUX: u32 = 0x541c;
// Offsets in struct seccomp_data.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARG0_LO: u32 = 16;
/// The low 32 bits of the second argument (little-endian ABIs only); the
/// kernel reads an ioctl's request as an `unsigned int`, so the high half,
/// whatever it holds, does not matter.
const OFF_ARG1_LO: u32 = 24;

/// A jump target in the program being assembled.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Label {
    Next,
    Allow,
    Eperm,
    Enosys,
    Kill,
    CheckNewUser,
    CheckPtrace,
    CheckIoctl,
    /// The start of the block of ABI `i`, or the instruction after all blocks.
    Block(usize),
}

enum Ins {
    Ld(u32),
    And(u32),
    /// `if A == k goto t else goto f`.
    Jeq(u32, Label, Label),
    /// `if A >= k goto t else goto f`.
    Jge(u32, Label, Label),
    Ret(u32),
    Mark(Label),
}

/// Assembles `ins`: labels become forward offsets (classic BPF only jumps
/// forward, at most 255 instructions).
fn assemble(ins: &[Ins]) -> Result<Vec<libc::sock_filter>, String> {
    use libc::{
        BPF_ABS, BPF_ALU, BPF_AND, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W,
    };
    let mut at = Vec::new();
    let mut n = 0usize;
    for i in ins {
        match i {
            Ins::Mark(l) => at.push((*l, n)),
            _ => n += 1,
        }
    }
    let pos = |l: Label, here: usize| -> Result<u8, String> {
        let target = match l {
            Label::Next => here + 1,
            _ => at
                .iter()
                .find(|(m, _)| *m == l)
                .map(|(_, p)| *p)
                .ok_or_else(|| format!("label {l:?} is not placed"))?,
        };
        let off = target
            .checked_sub(here + 1)
            .ok_or_else(|| format!("backward jump to {l:?}"))?;
        u8::try_from(off).map_err(|_| format!("jump to {l:?} is too long"))
    };
    let mut out = Vec::with_capacity(n);
    for i in ins {
        let here = out.len();
        let (code, jt, jf, k) = match *i {
            Ins::Mark(_) => continue,
            Ins::Ld(off) => (BPF_LD | BPF_W | BPF_ABS, 0, 0, off),
            Ins::And(k) => (BPF_ALU | BPF_AND | BPF_K, 0, 0, k),
            Ins::Jeq(k, t, f) => (BPF_JMP | BPF_JEQ | BPF_K, pos(t, here)?, pos(f, here)?, k),
            Ins::Jge(k, t, f) => (BPF_JMP | BPF_JGE | BPF_K, pos(t, here)?, pos(f, here)?, k),
            Ins::Ret(k) => (BPF_RET | BPF_K, 0, 0, k),
        };
        out.push(libc::sock_filter {
            code: code as u16,
            jt,
            jf,
            k,
        });
    }
    Ok(out)
}

/// The filter for processes that may use any of `abis`: calls of an ABI
/// not listed kill the process (none exists on a matching kernel).
pub fn filter(abis: &[Abi], rules: Rules) -> Result<Vec<libc::sock_filter>, String> {
    use Ins::*;
    use Label::*;
    let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let enosys = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let newuser = libc::CLONE_NEWUSER as u32;
    let mut p = vec![Ld(OFF_ARCH)];
    for (i, abi) in abis.iter().enumerate() {
        p.push(Mark(Block(i)));
        p.push(Jeq(abi.audit_arch, Next, Block(i + 1)));
        p.push(Ld(OFF_NR));
        if abi.x32_bit {
            p.push(Jge(X32_BIT, Eperm, Next));
        }
        if rules.deny_userns {
            p.push(Jeq(abi.clone3, Enosys, Next));
            p.push(Jeq(abi.unshare, CheckNewUser, Next));
            p.push(Jeq(abi.clone, CheckNewUser, Next));
        }
        if rules.deny_ptrace {
            for nr in [
                abi.pidfd_getfd,
                abi.process_vm_readv,
                abi.process_vm_writev,
                abi.process_madvise,
            ] {
                p.push(Jeq(nr, Eperm, Next));
            }
            p.push(Jeq(abi.ptrace, CheckPtrace, Next));
        }
        if rules.deny_tty_injection {
            p.push(Jeq(abi.ioctl, CheckIoctl, Next));
        }
        p.push(Ret(SECCOMP_RET_ALLOW));
    }
    p.extend([
        Mark(Block(abis.len())),
        Mark(Kill),
        Ret(SECCOMP_RET_KILL_PROCESS),
        Mark(CheckNewUser),
        Ld(OFF_ARG0_LO),
        And(newuser),
        Jeq(newuser, Eperm, Allow),
        Mark(CheckPtrace),
        Ld(OFF_ARG0_LO),
        Jeq(PTRACE_ATTACH, Eperm, Next),
        Jeq(PTRACE_SEIZE, Eperm, Allow),
        Mark(CheckIoctl),
        Ld(OFF_ARG1_LO),
        Jeq(TIOCSTI, Eperm, Next),
        Jeq(TIOCLINUX, Eperm, Allow),
        Mark(Allow),
        Ret(SECCOMP_RET_ALLOW),
        Mark(Eperm),
        Ret(eperm),
        Mark(Enosys),
        Ret(enosys),
    ]);
    assemble(&p)
}

/// Installs the filter for `rules` on this thread and its children; with
/// nothing to refuse, installs nothing.
pub fn install_filter(rules: Rules) -> io::Result<()> {
    if rules == Rules::default() {
        return Ok(());
    }
    let filter = filter(NATIVE, rules).map_err(io::Error::other)?;
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

    /// A classic-BPF interpreter for the instructions the filter uses;
    /// panics on anything else or on a jump out of the program.
    fn run(prog: &[libc::sock_filter], arch: u32, nr: u32, arg0: u64) -> u32 {
        run2(prog, arch, nr, arg0, 0)
    }

    /// As `run`, with the second argument too.
    fn run2(prog: &[libc::sock_filter], arch: u32, nr: u32, arg0: u64, arg1: u64) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        data[16..24].copy_from_slice(&arg0.to_ne_bytes());
        data[24..32].copy_from_slice(&arg1.to_ne_bytes());
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let ins = prog.get(pc).expect("program counter out of bounds");
            let code = ins.code as u32;
            pc += 1;
            match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    let k = ins.k as usize;
                    a = u32::from_ne_bytes(data[k..k + 4].try_into().unwrap());
                }
                c if c == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => a &= ins.k,
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    pc += if a == ins.k { ins.jt } else { ins.jf } as usize;
                }
                c if c == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K => {
                    pc += if a >= ins.k { ins.jt } else { ins.jf } as usize;
                }
                c if c == libc::BPF_RET | libc::BPF_K => return ins.k,
                c => panic!("unexpected instruction {c:#x} at {}", pc - 1),
            }
        }
    }

    const ALL: Rules = Rules {
        deny_userns: true,
        deny_ptrace: true,
        deny_tty_injection: true,
    };
    const EPERM: u32 = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    const NEWUSER: u64 = libc::CLONE_NEWUSER as u64;
    const NEWNS: u64 = libc::CLONE_NEWNS as u64;
    const GETPID: [(&str, u32); 4] = [("x86_64", 39), ("i386", 20), ("aarch64", 172), ("arm", 20)];

    fn getpid_nr(abi: &Abi) -> u32 {
        GETPID.iter().find(|(n, _)| *n == abi.name).unwrap().1
    }

    fn check_abi(prog: &[libc::sock_filter], abi: &Abi, rules: Rules) {
        let r = |nr, arg0| run(prog, abi.audit_arch, nr, arg0);
        let deny = |on: bool, want: u32| if on { want } else { SECCOMP_RET_ALLOW };
        let (u, p, t) = (
            rules.deny_userns,
            rules.deny_ptrace,
            rules.deny_tty_injection,
        );
        let io = |req: u64| run2(prog, abi.audit_arch, abi.ioctl, 0, req);
        let n = abi.name;
        assert_eq!(
            r(abi.unshare, NEWUSER),
            deny(u, EPERM),
            "{n} unshare(NEWUSER)"
        );
        assert_eq!(
            r(abi.unshare, NEWUSER | NEWNS),
            deny(u, EPERM),
            "{n} unshare(NEWUSER|NEWNS)"
        );
        assert_eq!(
            r(abi.unshare, NEWNS),
            SECCOMP_RET_ALLOW,
            "{n} unshare(NEWNS)"
        );
        assert_eq!(
            r(abi.clone, NEWUSER | 17),
            deny(u, EPERM),
            "{n} clone(NEWUSER)"
        );
        assert_eq!(r(abi.clone, 17), SECCOMP_RET_ALLOW, "{n} clone(SIGCHLD)");
        assert_eq!(r(abi.clone3, 0), deny(u, ENOSYS), "{n} clone3");
        assert_eq!(r(abi.pidfd_getfd, 0), deny(p, EPERM), "{n} pidfd_getfd");
        assert_eq!(
            r(abi.process_vm_readv, 0),
            deny(p, EPERM),
            "{n} process_vm_readv"
        );
        assert_eq!(
            r(abi.process_vm_writev, 0),
            deny(p, EPERM),
            "{n} process_vm_writev"
        );
        assert_eq!(
            r(abi.process_madvise, 0),
            deny(p, EPERM),
            "{n} process_madvise"
        );
        assert_eq!(r(abi.ptrace, 16), deny(p, EPERM), "{n} PTRACE_ATTACH");
        assert_eq!(r(abi.ptrace, 0x4206), deny(p, EPERM), "{n} PTRACE_SEIZE");
        assert_eq!(r(abi.ptrace, 0), SECCOMP_RET_ALLOW, "{n} PTRACE_TRACEME");
        assert_eq!(r(getpid_nr(abi), 0), SECCOMP_RET_ALLOW, "{n} getpid");
        assert_eq!(io(0x5412), deny(t, EPERM), "{n} ioctl(TIOCSTI)");
        assert_eq!(io(0x541c), deny(t, EPERM), "{n} ioctl(TIOCLINUX)");
        // The kernel ignores the high half of the request.
        assert_eq!(
            io(0xffff_ffff_0000_5412),
            deny(t, EPERM),
            "{n} ioctl(TIOCSTI | high bits)"
        );
        assert_eq!(io(0x5401), SECCOMP_RET_ALLOW, "{n} ioctl(TCGETS)");
        assert_eq!(io(0x540f), SECCOMP_RET_ALLOW, "{n} ioctl(TIOCGPGRP)");
        if abi.x32_bit {
            assert_eq!(r(X32_BIT | abi.unshare, NEWUSER), EPERM, "x32 unshare");
            assert_eq!(r(X32_BIT | 39, 0), EPERM, "x32 getpid");
        }
    }

    fn check_set(abis: &[Abi], foreign: &Abi) {
        for bits in 0..8u8 {
            let rules = Rules {
                deny_userns: bits & 1 != 0,
                deny_ptrace: bits & 2 != 0,
                deny_tty_injection: bits & 4 != 0,
            };
            let prog = filter(abis, rules).expect("assembles");
            assert!(prog.len() < 256, "program of {} instructions", prog.len());
            for abi in abis {
                check_abi(&prog, abi, rules);
            }
            // The arch check: another ABI's calls never pass.
            assert_eq!(
                run(&prog, foreign.audit_arch, getpid_nr(foreign), 0),
                SECCOMP_RET_KILL_PROCESS
            );
            assert_eq!(run(&prog, 0, 0, 0), SECCOMP_RET_KILL_PROCESS);
        }
    }

    #[test]
    fn x86_filter() {
        check_set(&[X86_64, I386], &AARCH64);
    }

    #[test]
    fn aarch64_filter() {
        check_set(&[AARCH64, ARM], &X86_64);
    }

    #[test]
    fn native_abis_include_the_build_target() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(NATIVE[0].audit_arch, X86_64.audit_arch);
        #[cfg(target_arch = "aarch64")]
        assert_eq!(NATIVE[0].audit_arch, AARCH64.audit_arch);
        assert_eq!(NATIVE[0].unshare, libc::SYS_unshare as u32);
        assert_eq!(NATIVE[0].clone, libc::SYS_clone as u32);
        assert_eq!(NATIVE[0].ptrace, libc::SYS_ptrace as u32);
        assert_eq!(NATIVE[0].pidfd_getfd, libc::SYS_pidfd_getfd as u32);
        assert_eq!(
            NATIVE[0].process_vm_readv,
            libc::SYS_process_vm_readv as u32
        );
    }

    #[test]
    fn jumps_stay_in_bounds() {
        for abis in [&[X86_64, I386][..], &[AARCH64, ARM][..]] {
            let f = filter(abis, ALL).unwrap();
            for (i, ins) in f.iter().enumerate() {
                if ins.code as u32 & 0x07 == libc::BPF_JMP {
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
            assert_eq!(f.last().unwrap().code as u32, libc::BPF_RET | libc::BPF_K);
        }
    }

    #[test]
    fn assembler_refuses_bad_jumps() {
        assert!(assemble(&[
            Ins::Mark(Label::Allow),
            Ins::Jeq(1, Label::Allow, Label::Next)
        ])
        .is_err());
        assert!(assemble(&[Ins::Jeq(1, Label::Eperm, Label::Next)]).is_err());
        let mut long = vec![Ins::Jeq(1, Label::Allow, Label::Next)];
        long.extend((0..300).map(|_| Ins::Ret(0)));
        long.push(Ins::Mark(Label::Allow));
        long.push(Ins::Ret(SECCOMP_RET_ALLOW));
        assert!(assemble(&long).is_err());
    }
}
