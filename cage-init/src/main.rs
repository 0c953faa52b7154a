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
    if sys::drop_privileges().is_err() || sys::set_mask(&set).is_err() {
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
        Role::Init => init(&set),
        Role::Seed => seed(&set),
    }
}

/// Pid 1 of a cage.
fn init(set: &sys::SigSet) -> ! {
    let mut s = state::Init::default();
    loop {
        match sys::wait_signal(set, s.timeout_ms()) {
            Ok(sig) => s.on_signal(sig, sys::now_ms(), &[sys::SIGTERM, sys::SIGUSR1]),
            Err(sys::EAGAIN) | Err(sys::EINTR) => {}
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
