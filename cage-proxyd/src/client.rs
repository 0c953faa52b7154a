//! `cage-proxy`: the client in the skeleton at the path of each proxied
//! command. It sends its argv, its working directory and its stdin,
//! stdout and stderr to `cage-proxyd`, forwards SIGINT, SIGTERM and SIGHUP,
//! and ends like the command did (same status, or the same signal).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::exit;

use libcage::proxy::io::{recv, send};
use libcage::proxy::wire::Message;
use libcage::proxy::SOCKET;
use libcage::sys::process::{self as sp, SigSet};
use rustix::event::{poll, PollFd, PollFlags};
use rustix::net::{connect, socket_with, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

const FORWARDED: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

fn fail(msg: &str) -> ! {
    eprintln!("cage-proxy: {msg}");
    exit(126)
}

fn main() {
    let command = std::fs::read_link("/proc/self/exe")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|e| fail(&format!("/proc/self/exe: {e}")));
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string()
                .unwrap_or_else(|_| fail("an argument is not UTF-8"))
        })
        .collect();
    let cwd = std::env::current_dir()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "/".into());

    let set = SigSet::new(&FORWARDED);
    if let Err(e) = sp::block(&set) {
        fail(&format!("blocking signals: {e}"));
    }
    let sigfd = sp::signal_fd(&set).unwrap_or_else(|e| fail(&format!("signalfd: {e}")));

    let sock = socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap_or_else(|e| fail(&format!("socket: {e}")));
    let addr = SocketAddrUnix::new(SOCKET).unwrap_or_else(|e| fail(&format!("{SOCKET}: {e}")));
    if let Err(e) = connect(&sock, &addr) {
        fail(&format!(
            "the proxy daemon cage-proxyd is not running ({SOCKET}: {e}); {command} runs outside the cage through it and cannot run now"
        ));
    }

    // Missing standard descriptors are sent as /dev/null.
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let std_fds = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()];
    let null: Vec<Option<OwnedFd>> = std_fds
        .iter()
        .map(|fd| match rustix::io::fcntl_getfd(fd) {
            Ok(_) => None,
            Err(_) => std::fs::File::open("/dev/null").ok().map(OwnedFd::from),
        })
        .collect();
    let fds: Vec<BorrowedFd<'_>> = std_fds
        .iter()
        .zip(&null)
        .map(|(fd, n)| n.as_ref().map_or(*fd, |n| n.as_fd()))
        .collect();
    let req = Message::Request {
        command: command.clone(),
        args,
        cwd,
    };
    if let Err(e) = send(sock.as_fd(), &req, &fds) {
        fail(&format!("sending the request to cage-proxyd: {e}"));
    }
    drop(null);

    loop {
        let mut pfds = [
            PollFd::new(&sock, PollFlags::IN),
            PollFd::new(&sigfd, PollFlags::IN),
        ];
        match poll(&mut pfds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => fail(&format!("poll: {e}")),
        }
        let sock_ready = !pfds[0].revents().is_empty();
        let sig_ready = !pfds[1].revents().is_empty();
        if sig_ready {
            while let Ok(Some(si)) = sp::read_signal(sigfd.as_fd()) {
                // Best effort: the daemon may be gone; the reply says.
                let _ = send(sock.as_fd(), &Message::Signal(si.signo), &[]);
            }
        }
        if sock_ready {
            match recv(&sock) {
                Ok(Some((Message::Exit(code), _))) => exit(code),
                Ok(Some((Message::Killed(sig), _))) => {
                    sp::default_disposition(sig);
                    let _ = sp::set_mask(&SigSet::new(&[]));
                    let _ = sp::kill(std::process::id() as i32, sig);
                    exit(128 + sig)
                }
                Ok(Some((Message::Refused(why), _))) => fail(&format!("{command}: {why}")),
                Ok(Some((m, _))) => fail(&format!("unexpected reply from cage-proxyd: {m:?}")),
                Ok(None) => fail(&format!(
                    "the connection to cage-proxyd was lost before {command} ended (the daemon stopped?)"
                )),
                Err(e) => fail(&format!("reading from cage-proxyd: {e}")),
            }
        }
    }
}
