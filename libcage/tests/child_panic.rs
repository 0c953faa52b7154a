//! A forked child whose body panics leaves with an exit status and never
//! returns into the caller's code; the parent goes on. Its own test binary
//! with one test, so the fork happens with no other test running.

use libcage::sys::process::{self, Fork, CHILD_PANICKED};

#[test]
fn a_panicking_child_exits_and_the_parent_continues() {
    // SAFETY: this test binary runs this one test; the harness thread waits.
    let child = match unsafe { process::fork() }.unwrap() {
        Fork::Child => process::run_child("test", || -> i32 { panic!("child body broke") }),
        Fork::Parent(pid) => pid,
    };
    let (_, status) = rustix::process::waitpid(
        rustix::process::Pid::from_raw(child),
        rustix::process::WaitOptions::empty(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(status.exit_status(), Some(CHILD_PANICKED));

    // A body that returns: its status.
    // SAFETY: as above.
    let child = match unsafe { process::fork() }.unwrap() {
        Fork::Child => process::run_child("test", || 7),
        Fork::Parent(pid) => pid,
    };
    let (_, status) = rustix::process::waitpid(
        rustix::process::Pid::from_raw(child),
        rustix::process::WaitOptions::empty(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(status.exit_status(), Some(7));

    // guard_child: the value on success, exit on a panic.
    // SAFETY: as above.
    let child = match unsafe { process::fork() }.unwrap() {
        Fork::Child => {
            let v: i32 = process::guard_child("test", || panic!("setup broke"));
            // Never reached: the child left inside guard_child.
            process::exit_now(v)
        }
        Fork::Parent(pid) => pid,
    };
    let (_, status) = rustix::process::waitpid(
        rustix::process::Pid::from_raw(child),
        rustix::process::WaitOptions::empty(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(status.exit_status(), Some(CHILD_PANICKED));
    assert_eq!(process::guard_child("test", || 5), 5);
}
