//! `cage-init USER` and `cage-seed`: the long-lived root processes of cage,
//! exec'd by libcage (never run by hand) once the forked builder child has
//! made the namespaces and mounts, so that nothing of the caller's memory
//! (sshd's, Apache's) lives on in them and each costs a few KiB.
//!
//! Contract with libcage (`libcage/src/cage/daemon.rs`):
//! - started with no capabilities and no_new_privs, stdio on /dev/null, an
//!   empty environment, every signal at its default disposition;
//! - descriptor 3: the report pipe. The program names itself (`comm`),
//!   blocks its signals, writes `R` and closes it;
//! - descriptor 4: the commit pipe. It waits for one byte `C`, sent once
//!   the cage is recorded; end of file (the builder failed or died) makes
//!   it leave, and a cage init that leaves takes its cage with it;
//! - descriptors 5 and up, for an init only: the mount watch (a pipe with
//!   one attribute byte per watched mount, the cage's mountinfo, the
//!   mounts; see `libcage/src/apply/watch.rs`). The init then keeps
//!   `CAP_SYS_ADMIN` and re-applies each mount's attributes recursively
//!   whenever the cage's mount table changes, so mounts that propagate in
//!   later are nosuid,nodev too;
//! - then the init reaps orphans until it is unpinned (SIGTERM or SIGUSR1)
//!   and its cage has been empty past a grace period; the seed waits for
//!   SIGTERM, SIGINT or SIGHUP.
// `cargo test` does not build this binary (test = false); `clippy
// --all-targets` checks it as a test target, which has std.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

mod sys;

use cage_init as state;

/// Exit status of a started-by-hand or broken start.
pub const EXIT_USAGE: i32 = 2;
/// Exit status when the builder never committed the cage.
pub const EXIT_UNCOMMITTED: i32 = 3;
/// Exit status after a panic (there is none to expect).
pub const EXIT_PANIC: i32 = 70;

const REPORT_FD: i32 = 3;
const COMMIT_FD: i32 = 4;

fn main(args: sys::Args) -> ! {
    use state::Role;
    let Some(role) = args.get(0).and_then(Role::from_argv0) else {
        let _ = sys::write(2, b"cage-init: started by libcage only\n");
        sys::exit(EXIT_USAGE)
    };
    sys::set_name(role.name());
    let set = match role {
        Role::Init => sys::SigSet::of(&[
            sys::SIGCHLD,
            sys::SIGTERM,
            sys::SIGUSR1,
            sys::SIGHUP,
            sys::SIGINT,
        ]),
        Role::Seed => sys::SigSet::of(&[sys::SIGTERM, sys::SIGINT, sys::SIGHUP]),
    };
    let mut spec = [0u8; state::MAX_WATCHED];
    let watched = match role {
        Role::Init => read_watch_spec(&mut spec),
        Role::Seed => 0,
    };
    if sys::drop_privileges(watched > 0).is_err() || sys::set_mask(&set).is_err() {
        sys::exit(EXIT_USAGE)
    }
    if sys::write(REPORT_FD, b"R") != Ok(1) {
        sys::exit(EXIT_USAGE)
    }
    sys::close(REPORT_FD);
    let mut byte = [0u8; 1];
    let read = loop {
        match sys::read(COMMIT_FD, &mut byte) {
            Err(sys::EINTR) => continue,
            other => break other,
        }
    };
    sys::close(COMMIT_FD);
    if !state::committed(read, byte[0]) {
        sys::exit(EXIT_UNCOMMITTED)
    }
    match role {
        Role::Init => init(&set, &spec[..watched]),
        Role::Seed => seed(&set),
    }
}

/// Reads the mount watch spec (descriptor 5) into `buf`; returns how many
/// mounts are watched (0 without a hand-over). A broken hand-over (a byte
/// that is no attribute, more mounts than `buf` holds) is fatal: the build
/// fails rather than leave a mount unwatched.
fn read_watch_spec(buf: &mut [u8]) -> usize {
    let mut n = 0;
    loop {
        if n == buf.len() {
            let mut extra = [0u8; 1];
            match sys::read(state::SPEC_FD, &mut extra) {
                Ok(0) => break,
                Err(sys::EINTR) => continue,
                _ => sys::exit(EXIT_USAGE),
            }
        }
        match sys::read(state::SPEC_FD, &mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(sys::EINTR) => {}
            Err(sys::EBADF) if n == 0 => return 0,
            Err(_) => sys::exit(EXIT_USAGE),
        }
    }
    sys::close(state::SPEC_FD);
    if buf[..n].iter().any(|b| state::watch_attrs(*b).is_none()) {
        sys::exit(EXIT_USAGE)
    }
    n
}

/// The mount ids of the cage's mount table, summarized; `None` when it
/// cannot be read (then every change sweeps).
fn mount_summary() -> Option<state::MountSummary> {
    let mut scan = state::MountScan::default();
    let mut buf = [0u8; 4096];
    let mut off = 0u64;
    loop {
        match sys::pread(state::MOUNTINFO_FD, &mut buf, off) {
            Ok(0) => return Some(scan.finish()),
            Ok(n) => {
                scan.feed(&buf[..n]);
                off += n as u64;
            }
            Err(sys::EINTR) => {}
            Err(_) => return None,
        }
    }
}

/// Re-applies every watched mount's attributes (to it and everything that
/// propagated in below it). A mount the host took away answers an error:
/// nothing to keep there.
fn sweep(spec: &[u8]) {
    for (i, b) in spec.iter().enumerate() {
        if let Some(attrs) = state::watch_attrs(*b) {
            let _ = sys::set_mount_attrs(state::FIRST_MOUNT_FD + i as i32, attrs);
        }
    }
}

/// Pid 1 of a cage: reaps, waits for unpin and, when it was handed mounts,
/// keeps them nosuid,nodev as the mount table changes.
fn init(set: &sys::SigSet, spec: &[u8]) -> ! {
    let Ok(sigfd) = sys::signalfd(set) else {
        sys::exit(EXIT_USAGE)
    };
    let mountinfo = (!spec.is_empty()).then_some(state::MOUNTINFO_FD);
    let mut seen = mountinfo.and_then(|_| mount_summary());
    // Anything that arrived between the clones and now.
    sweep(spec);
    let mut s = state::Init::default();
    loop {
        match sys::wait_events(sigfd, mountinfo, s.timeout_ms()) {
            Ok(ev) => {
                // The kernel reports every change of the table, our own
                // sweeps included: sweep only when mounts came or went.
                if ev.mounts {
                    let now = mount_summary();
                    if now.is_none() || now != seen {
                        sweep(spec);
                    }
                    seen = now;
                }
                if ev.signal {
                    while let Some(sig) = sys::read_signal(sigfd) {
                        s.on_signal(sig, sys::now_ms(), &[sys::SIGTERM, sys::SIGUSR1]);
                    }
                }
            }
            Err(sys::EINTR) => {}
            Err(_) => sys::sleep_ms(100),
        }
        while sys::reap_one() {}
        if s.may_leave(sys::now_ms(), sys::others_exist()) {
            sys::exit(0)
        }
    }
}

fn seed(set: &sys::SigSet) -> ! {
    loop {
        match sys::wait_signal(set, None) {
            Ok(_) => sys::exit(0),
            Err(sys::EINTR) => {}
            Err(_) => sys::sleep_ms(100),
        }
    }
}
