//! The supervisor of a supervised entry: the original process stays
//! outside the cage, passes signals on to its child inside, relays the
//! child's pty to the caller's terminal when there is one, and exits the
//! way the child did. It never returns into the caller.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{Pid, WaitOptions};

use crate::sys::process::{self, SigSet};
use crate::sys::pty::{self, RawMode};

/// The child's pty, relayed to the caller's terminal.
pub struct Relay {
    /// The master side (the child holds the slave as its controlling tty).
    pub master: OwnedFd,
    /// Fd 0 is a terminal: it is put in raw mode and its input relayed.
    pub input: bool,
    /// The caller's terminal the pty's output is written to (1, 2 or 0).
    pub output: RawFd,
}

enum Exit {
    Code(i32),
    Signal(i32),
}

/// Input waiting for the pty is capped: the caller's terminal is read
/// only as fast as the child takes it.
const INPUT_CAP: usize = 4096;
/// After the child has exited, at most this much output still queued in
/// the pty is passed on (a background process of the user may keep
/// writing; it is not waited for).
const DRAIN_CAP: usize = 1 << 20;

/// Supervises `child` until it exits, then exits the same way (status, or
/// death by the same signal). `sigfd` receives the forwarded signals
/// (blocked in this process). A panic kills the child and exits 125: the
/// supervisor never unwinds into the caller.
pub fn run(child: i32, sigfd: OwnedFd, relay: Option<Relay>) -> ! {
    let exit = crate::panic_guard::catch(|| supervise(child, &sigfd, relay));
    match exit {
        Ok(Exit::Code(c)) => process::exit_now(c),
        Ok(Exit::Signal(sig)) => {
            // Die the same way so the caller's parent sees the signal,
            // but never dump core: the user picked the signal (SIGSEGV,
            // SIGQUIT), and this root process holds the caller's memory.
            process::no_core_dump();
            process::default_disposition(sig);
            let _ = process::set_mask(&SigSet::new(&[]));
            let _ = process::kill(rustix::process::getpid().as_raw_nonzero().get(), sig);
            process::exit_now(128 + sig)
        }
        Err(_) => {
            let _ = process::kill(child, libc::SIGKILL);
            process::exit_now(125)
        }
    }
}

fn reap(pid: Pid) -> Option<Exit> {
    match rustix::process::waitpid(Some(pid), WaitOptions::NOHANG) {
        Ok(Some((_, status))) => {
            if let Some(code) = status.exit_status() {
                Some(Exit::Code(code))
            } else {
                status.terminating_signal().map(Exit::Signal)
            }
        }
        Ok(None) => None,
        Err(Errno::INTR) => None,
        // Not our child any more: nothing left to supervise.
        Err(_) => Some(Exit::Code(125)),
    }
}

fn write_out(fd: RawFd, data: &[u8]) {
    // The caller's terminal going away only loses output.
    let _ = FdWriter(pty::std_fd(fd)).write_all(data);
}

struct FdWriter(BorrowedFd<'static>);

impl Write for FdWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        loop {
            match rustix::io::write(self.0, buf) {
                Err(Errno::INTR) => continue,
                r => return r.map_err(Into::into),
            }
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn supervise(child: i32, sigfd: &OwnedFd, relay: Option<Relay>) -> Exit {
    let pid = Pid::from_raw(child).expect("fork returned a positive pid");
    let stdin = pty::std_fd(0);
    let mut raw = None;
    if let Some(r) = &relay {
        let _ = pty::set_nonblocking(&r.master);
        if r.input {
            // Keys go to the pty as typed; its own line discipline echoes
            // and turns ^C into SIGINT for the child's foreground group.
            raw = RawMode::enter(stdin).ok();
        }
    }
    // The terminal whose size the pty follows.
    let tty = relay.as_ref().map(|r| {
        if r.input {
            stdin
        } else {
            pty::std_fd(r.output)
        }
    });
    let mut input_open = relay.as_ref().is_some_and(|r| r.input);
    let mut master_open = relay.is_some();
    let mut inbuf: Vec<u8> = Vec::with_capacity(INPUT_CAP);
    let mut buf = vec![0u8; 16384];
    let second = Timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    loop {
        if let Some(exit) = reap(pid) {
            if let Some(r) = &relay {
                drain(r, &mut buf);
            }
            if let Some(mut m) = raw.take() {
                m.restore();
            }
            return exit;
        }
        let want_in = input_open && inbuf.len() < INPUT_CAP;
        let (stdin_rev, master_rev, sig_rev) = {
            let mut fds = vec![PollFd::new(sigfd, PollFlags::IN)];
            if want_in {
                fds.push(PollFd::new(&stdin, PollFlags::IN));
            }
            if let (true, Some(r)) = (master_open, &relay) {
                let mut f = PollFlags::IN;
                if !inbuf.is_empty() {
                    f |= PollFlags::OUT;
                }
                fds.push(PollFd::new(&r.master, f));
            }
            match rustix::event::poll(&mut fds, Some(&second)) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(_) => {
                    // Cannot wait on descriptors: wait on signals alone.
                    let _ = process::wait_signal(&SigSet::new(&[libc::SIGCHLD]), Some(1000));
                }
            }
            let sig = fds[0].revents();
            let s = if want_in {
                fds[1].revents()
            } else {
                PollFlags::empty()
            };
            let m = if master_open && relay.is_some() {
                fds[fds.len() - 1].revents()
            } else {
                PollFlags::empty()
            };
            (s, m, sig)
        };
        if !sig_rev.is_empty() {
            while let Ok(Some(info)) = process::read_signal(sigfd.as_fd()) {
                match info.signo {
                    libc::SIGCHLD | libc::SIGPIPE => {}
                    libc::SIGWINCH if relay.is_some() => {
                        if let (Some(t), Some(r)) = (tty, &relay) {
                            let _ = pty::copy_winsize(t, r.master.as_fd());
                        }
                    }
                    // The child has a session of its own: nothing the
                    // caller's terminal sends reaches it but through here.
                    sig => {
                        let _ = process::kill(child, sig);
                    }
                }
            }
        }
        if !stdin_rev.is_empty() {
            let room = INPUT_CAP - inbuf.len();
            match rustix::io::read(stdin, &mut buf[..room]) {
                Ok(0) => input_open = false,
                Ok(n) => inbuf.extend_from_slice(&buf[..n]),
                Err(Errno::AGAIN) | Err(Errno::INTR) => {}
                Err(_) => input_open = false,
            }
        }
        let Some(r) = &relay else { continue };
        if master_rev.contains(PollFlags::OUT) && !inbuf.is_empty() {
            match rustix::io::write(&r.master, &inbuf) {
                Ok(n) => {
                    inbuf.drain(..n);
                }
                Err(Errno::AGAIN) | Err(Errno::INTR) => {}
                Err(_) => inbuf.clear(),
            }
        }
        if master_rev.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
            match rustix::io::read(&r.master, &mut buf) {
                Ok(0) => master_open = false,
                Ok(n) => write_out(r.output, &buf[..n]),
                Err(Errno::AGAIN) | Err(Errno::INTR) => {}
                // EIO: no process holds the slave any more.
                Err(_) => master_open = false,
            }
        }
    }
}

/// Passes on what the pty still holds, without waiting for more.
fn drain(r: &Relay, buf: &mut [u8]) {
    let mut total = 0;
    while total < DRAIN_CAP {
        match rustix::io::read(&r.master, &mut *buf) {
            Ok(n) if n > 0 => {
                write_out(r.output, &buf[..n]);
                total += n;
            }
            Err(Errno::INTR) => {}
            _ => break,
        }
    }
}
