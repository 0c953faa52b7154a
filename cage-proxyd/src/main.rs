//! `cage-proxyd`: runs the commands of `proxy.commands` outside the cages
//! for caged callers (CageFS proxyexec). Root, on the host, listening on
//! `/run/cage-proxy/socket`, which every cage sees read-only at that path.
//!
//! The caller is who `SO_PEERCRED` says (never what it sends); it must be
//! in a mount namespace other than the daemon's (a cage). The command runs
//! as the caller (uid, primary gid and NSS groups of the host, no
//! capabilities), or as the user an `ALIAS=user:path` line names; its
//! working directory and path arguments are resolved in the caller's cage
//! view through `/proc/PID/root` with `RESOLVE_IN_ROOT | NO_MAGICLINKS`.

mod limits;
mod serve;
mod sys;

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use libcage::log;
use libcage::proxy::io::send;
use libcage::proxy::wire::Message;
use libcage::proxy::{SOCKET, SOCKET_DIR};
use rustix::net::{
    accept_with, bind, listen, socket_with, sockopt, AddressFamily, SocketAddrUnix, SocketFlags,
    SocketType,
};

/// Path arguments are passed at fds from here up.
pub const PATH_FD_BASE: i32 = 1000;
pub const TAG: &str = "cage-proxyd";

fn usage() -> ! {
    eprintln!("usage: cage-proxyd [--config DIR]");
    std::process::exit(2)
}

fn main() {
    let mut config = PathBuf::from(libcage::paths::DEFAULT_CONFIG_DIR);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => config = args.next().map(PathBuf::from).unwrap_or_else(|| usage()),
            _ => usage(),
        }
    }
    if !rustix::process::geteuid().is_root() {
        eprintln!("cage-proxyd: must run as root");
        std::process::exit(2);
    }
    sys::raise_nofile(4096);
    // Report config errors at start (requests report them again).
    let cmds = libcage::proxy::commands::load(&config);
    for b in &cmds.broken {
        eprintln!("cage-proxyd: {}", b.error);
        log::error(TAG, &b.error.to_string());
    }
    for c in &cmds.commands {
        if let Err(e) = serve::load_filter(&config, &c.alias) {
            eprintln!("cage-proxyd: {e} ({} refused)", c.alias);
            log::error(TAG, &format!("{e} ({} refused)", c.alias));
        }
    }

    if let Err(e) = std::fs::create_dir_all(SOCKET_DIR) {
        eprintln!("cage-proxyd: {SOCKET_DIR}: {e}");
        std::process::exit(1);
    }
    let _ = std::fs::remove_file(SOCKET);
    let sock = socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .and_then(|s| {
        bind(&s, &SocketAddrUnix::new(SOCKET)?)?;
        listen(&s, 128)?;
        Ok(s)
    })
    .unwrap_or_else(|e| {
        eprintln!("cage-proxyd: {SOCKET}: {e}");
        std::process::exit(1)
    });
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(SOCKET_DIR, std::fs::Permissions::from_mode(0o755));
    let _ = std::fs::set_permissions(SOCKET, std::fs::Permissions::from_mode(0o666));
    log::info(
        TAG,
        &format!("listening on {SOCKET} (config {})", config.display()),
    );

    let limits = Arc::new(Mutex::new(limits::Limits::default()));
    let config = Arc::new(config);
    loop {
        let conn = match accept_with(&sock, SocketFlags::CLOEXEC) {
            Ok(c) => c,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                log::error(TAG, &format!("accept: {e}"));
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
        };
        let Ok(cred) = sockopt::socket_peercred(&conn) else {
            continue;
        };
        let uid = cred.uid.as_raw();
        let admitted = limits.lock().map(|mut l| l.admit(uid, Instant::now()));
        match admitted {
            Ok(Ok(())) => {}
            Ok(Err(why)) => {
                let _ = send(conn.as_fd(), &Message::Refused(why.into()), &[]);
                log::warn(
                    TAG,
                    &format!("uid={uid} pid={} refused: {why}", cred.pid.as_raw_nonzero()),
                );
                continue;
            }
            Err(_) => std::process::exit(1),
        }
        let (lim, config) = (Arc::clone(&limits), Arc::clone(&config));
        let spawned = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                serve::request(&config, conn, cred);
                if let Ok(mut l) = lim.lock() {
                    l.done(uid);
                }
            });
        if spawned.is_err() {
            if let Ok(mut l) = limits.lock() {
                l.done(uid);
            }
        }
    }
}
