//! Starting a long-lived helper process (a cage init, the seed) by double
//! fork: the intermediate child runs `prepare` (e.g. `unshare`) and forks
//! the daemon, which reports on a pipe: `P<pid>` from the intermediate,
//! then `R` (ready) or `E<reason>` from the daemon.

use std::fs::File;
use std::io::{Read, Write};

use crate::sys::process::{self, Fork};
use crate::Error;

/// Spawns the daemon and waits until it is ready; returns its host pid.
/// Must be called from a single-threaded process.
pub fn spawn(
    what: &str,
    prepare: impl FnOnce() -> Result<(), String>,
    run: impl FnOnce(File),
) -> Result<i32, Error> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::sys("pipe", e))?;
    // SAFETY: the callers (enter, remount) checked that this process is
    // single-threaded.
    match unsafe { process::fork() }.map_err(|e| Error::sys("fork", e))? {
        Fork::Child => {
            drop(r);
            let mut w = File::from(w);
            // Detach from the caller's stdio now, while the host's
            // /dev/null is reachable (the seed's tree has none): a daemon
            // must not hold the caller's pipes open.
            process::stdio_to_null();
            if let Err(e) = prepare() {
                let _ = writeln!(w, "E{e}");
                process::exit_now(1);
            }
            // SAFETY: still single-threaded.
            match unsafe { process::fork() } {
                Ok(Fork::Child) => {
                    run(w);
                    process::exit_now(0)
                }
                Ok(Fork::Parent(pid)) => {
                    let _ = writeln!(w, "P{pid}");
                    process::exit_now(0)
                }
                Err(e) => {
                    let _ = writeln!(w, "Efork: {e}");
                    process::exit_now(1)
                }
            }
        }
        Fork::Parent(pid) => {
            drop(w);
            let mut report = String::new();
            let read = File::from(r).read_to_string(&mut report);
            // The intermediate exits right after forking. Our host may reap
            // it first (sshd's SIGCHLD handler); ECHILD is fine.
            let _ = rustix::process::waitpid(
                rustix::process::Pid::from_raw(pid),
                rustix::process::WaitOptions::empty(),
            );
            read.map_err(|e| Error::sys(format!("reading the {what}'s report"), e))?;
            parse_report(what, &report)
        }
    }
}

fn parse_report(what: &str, report: &str) -> Result<i32, Error> {
    let mut pid = None;
    let mut ready = false;
    // The intermediate's `P` and the daemon's `R` may arrive in any order.
    for line in report.lines() {
        if let Some(p) = line.strip_prefix('P') {
            pid = p.parse::<i32>().ok();
        } else if let Some(e) = line.strip_prefix('E') {
            return Err(Error::Build(e.to_string()));
        } else if line == "R" {
            ready = true;
        }
    }
    match (ready, pid) {
        (true, Some(pid)) => Ok(pid),
        (true, None) => Err(Error::Build(format!("{what} reported no pid"))),
        (false, _) => Err(Error::Build(format!("{what} exited before it was ready"))),
    }
}

/// In the daemon: report `E<reason>` and leave.
pub fn fail(mut w: File, reason: impl std::fmt::Display) -> ! {
    let _ = writeln!(w, "E{reason}");
    process::exit_now(1)
}

/// In the daemon, once set up: become a quiet process (no descriptors but
/// stdio on /dev/null and the report pipe, no privileges), then report ready.
pub fn ready(mut w: File) {
    use std::os::fd::AsRawFd;
    process::close_fds_except(&[w.as_raw_fd()]);
    drop_privileges();
    let _ = writeln!(w, "R");
}

/// A daemon needs no privilege once set up.
fn drop_privileges() {
    let _ = rustix::thread::set_no_new_privs(true);
    let empty = rustix::thread::CapabilitySets {
        effective: rustix::thread::CapabilitySet::empty(),
        permitted: rustix::thread::CapabilitySet::empty(),
        inheritable: rustix::thread::CapabilitySet::empty(),
    };
    let _ = rustix::thread::set_capabilities(None, empty);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports() {
        assert_eq!(parse_report("x", "P42\nR\n").unwrap(), 42);
        assert_eq!(parse_report("x", "R\nP42\n").unwrap(), 42);
        assert_eq!(
            parse_report("x", "P42\nEno skeleton\n")
                .unwrap_err()
                .to_string(),
            "cannot build cage: no skeleton"
        );
        assert_eq!(
            parse_report("x", "P42\n").unwrap_err().to_string(),
            "cannot build cage: x exited before it was ready"
        );
    }
}
