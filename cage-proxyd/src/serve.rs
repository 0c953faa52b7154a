//! One request: who is calling, what may run, running it, the reply.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use libcage::log;
use libcage::proxy::commands;
use libcage::proxy::filter::{Filter, Word};
use libcage::proxy::io::{recv, send};
use libcage::proxy::wire::Message;
use libcage::sys::nss;
use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{openat, Mode, OFlags};
use rustix::net::UCred;

use crate::sys::{self, Creds, PathArg};
use crate::{PATH_FD_BASE, TAG};

/// `filters/<alias>.json`, or no filter when there is no such file.
pub fn load_filter(config: &Path, alias: &str) -> Result<Option<Filter>, String> {
    let f = config.join("filters").join(format!("{alias}.json"));
    match std::fs::read_to_string(&f) {
        Ok(t) => Filter::parse(&f, &t).map(Some).map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", f.display())),
    }
}

/// `rel` joined onto the caller's cwd, as a path inside the cage (the
/// kernel keeps `..` inside the root with `RESOLVE_IN_ROOT`).
fn in_cage(cwd: &str, p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{}/{p}", cwd.trim_end_matches('/'))
    }
}

fn cstring(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| "NUL byte in a path".to_string())
}

struct Caller {
    uid: u32,
    name: String,
    root: OwnedFd,
}

/// The caller's cage root, checked: a process of the peer's uid, in a
/// mount namespace other than the daemon's.
fn caller(cred: &UCred) -> Result<Caller, String> {
    let pid = cred.pid.as_raw_nonzero().get();
    let uid = cred.uid.as_raw();
    let procdir = rustix::fs::open(
        format!("/proc/{pid}"),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("the calling process is gone ({e})"))?;
    let st = rustix::fs::fstat(&procdir).map_err(|e| e.to_string())?;
    if st.st_uid != uid {
        return Err("the calling process changed".into());
    }
    let ns = std::fs::metadata(format!("/proc/{pid}/ns/mnt")).map_err(|e| e.to_string())?;
    let own = std::fs::metadata("/proc/self/ns/mnt").map_err(|e| e.to_string())?;
    if (ns.dev(), ns.ino()) == (own.dev(), own.ino()) {
        return Err("only callers inside a cage are served".into());
    }
    let root = openat(
        &procdir,
        "root",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("the caller's root: {e}"))?;
    // The process is still the peer's (same uid owns /proc/PID after the
    // root was opened).
    let st = rustix::fs::fstat(&procdir).map_err(|e| e.to_string())?;
    if st.st_uid != uid {
        return Err("the calling process changed".into());
    }
    let name = nss::getpwuid(uid)
        .ok()
        .flatten()
        .map(|p| p.name)
        .ok_or_else(|| format!("uid {uid} has no account on the host"))?;
    Ok(Caller { uid, name, root })
}

fn creds_of(user: &str) -> Result<(Creds, nss::Passwd), String> {
    let pw = nss::getpwnam(user)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("user {user}: no such user on the host"))?;
    let groups = nss::getgrouplist(&pw.name, pw.gid).map_err(|e| e.to_string())?;
    Ok((
        Creds {
            uid: pw.uid,
            gid: pw.gid,
            groups,
        },
        pw,
    ))
}

/// Serves one connection to the end; one syslog line per request.
pub fn request(config: &Path, conn: OwnedFd, cred: UCred) {
    let uid = cred.uid.as_raw();
    // A client that connects and sends nothing holds its slot 5 s at most.
    let timeout = Some(std::time::Duration::from_secs(5));
    let _ = rustix::net::sockopt::set_socket_timeout(
        &conn,
        rustix::net::sockopt::Timeout::Recv,
        timeout,
    );
    let first = recv(&conn);
    let _ =
        rustix::net::sockopt::set_socket_timeout(&conn, rustix::net::sockopt::Timeout::Recv, None);
    let (command, args, cwd, fds) = match first {
        Ok(Some((Message::Request { command, args, cwd }, fds))) if fds.len() == 3 => {
            (command, args, cwd, fds)
        }
        Ok(Some(_)) | Ok(None) => {
            let _ = send(conn.as_fd(), &Message::Refused("bad request".into()), &[]);
            log::warn(TAG, &format!("uid={uid} bad request"));
            return;
        }
        Err(e) => {
            log::warn(TAG, &format!("uid={uid} bad request: {e}"));
            return;
        }
    };
    let who = match caller(&cred) {
        Ok(c) => c,
        Err(e) => {
            let _ = send(conn.as_fd(), &Message::Refused(e.clone()), &[]);
            log::warn(TAG, &format!("uid={uid} command={command} refused: {e}"));
            return;
        }
    };
    let shown = format!("{:?}", args);
    let (alias, result) = match run(config, &conn, &who, &command, &args, &cwd, fds) {
        Ok((alias, m)) => {
            let r = match &m {
                Message::Exit(c) => format!("exit {c}"),
                Message::Killed(s) => format!("signal {s}"),
                _ => String::new(),
            };
            let _ = send(conn.as_fd(), &m, &[]);
            (alias, r)
        }
        Err((alias, why)) => {
            let _ = send(conn.as_fd(), &Message::Refused(why.clone()), &[]);
            (alias, format!("refused: {why}"))
        }
    };
    log::info(
        TAG,
        &format!(
            "user={} uid={} alias={} argv={} cwd={:?} result={}",
            who.name,
            who.uid,
            alias.as_deref().unwrap_or("-"),
            shown,
            cwd,
            result
        ),
    );
}

type Failed = (Option<String>, String);

fn run(
    config: &Path,
    conn: &OwnedFd,
    who: &Caller,
    command: &str,
    args: &[String],
    cwd: &str,
    fds: Vec<OwnedFd>,
) -> Result<(Option<String>, Message), Failed> {
    let cmds = commands::load(config);
    let c = cmds
        .lookup(Path::new(command))
        .map_err(|e| (None, e))?
        .clone();
    let alias = Some(c.alias.clone());
    let fail = |e: String| (alias.clone(), e);
    let filter = load_filter(config, &c.alias)
        .map_err(|e| fail(format!("{e}: refused until the filter is fixed")))?;
    let words = match &filter {
        Some(f) => f.apply(args).map_err(fail)?,
        None => args.iter().cloned().map(Word::Plain).collect(),
    };
    if !cwd.starts_with('/')
        || Path::new(cwd)
            .components()
            .any(|c| c == Component::ParentDir)
    {
        return Err(fail(format!(
            "working directory {cwd:?}: expected an absolute path"
        )));
    }
    let mut argv = Vec::new();
    let mut paths = Vec::new();
    for w in words {
        match w {
            Word::Plain(s) => argv.push(s),
            Word::Path { prefix, path: p } => {
                let target = PATH_FD_BASE + paths.len() as i32;
                if paths.len() >= 16 {
                    return Err(fail("more than 16 path arguments".into()));
                }
                paths.push(PathArg {
                    path: cstring(&in_cage(cwd, &p)).map_err(fail)?,
                    target,
                });
                argv.push(format!("{prefix}/dev/fd/{target}"));
            }
        }
    }
    let run_as = c.user.clone().unwrap_or_else(|| who.name.clone());
    let (creds, pw) = creds_of(&run_as).map_err(fail)?;
    if c.user.is_none() && pw.uid != who.uid {
        return Err(fail(format!(
            "user {run_as}: uid {} is not the caller's",
            pw.uid
        )));
    }
    let caller_pw = nss::getpwuid(who.uid).ok().flatten();
    let root = rustix::io::fcntl_dupfd_cloexec(&who.root, 3).map_err(|e| fail(e.to_string()))?;
    let mut fds = fds.into_iter();
    let (i, o, e) = (fds.next(), fds.next(), fds.next());
    let (Some(i), Some(o), Some(e)) = (i, o, e) else {
        return Err(fail("three descriptors expected".into()));
    };
    let mut cmd = Command::new(&c.path);
    cmd.arg0(&c.path)
        .args(&argv)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("USER", &who.name)
        .env("LOGNAME", &who.name)
        .env(
            "HOME",
            caller_pw
                .as_ref()
                .map_or(PathBuf::from("/"), |p| PathBuf::from(&p.dir)),
        )
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::from(i))
        .stdout(Stdio::from(o))
        .stderr(Stdio::from(e));
    sys::prepare(&mut cmd, creds, root, cstring(cwd).map_err(fail)?, paths);
    let mut child = cmd.spawn().map_err(|e| {
        fail(match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::EACCES) | Some(libc::ENOTDIR) | Some(libc::ELOOP)
            | Some(libc::EXDEV) => {
                format!("a path (working directory or argument) cannot be opened in your cage: {e}")
            }
            _ => format!("{}: {e}", c.path.display()),
        })
    })?;
    let pid = child.id() as i32;
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid).expect("child pid"),
        rustix::process::PidfdFlags::empty(),
    );
    // Relay signals until the command ends; a client that goes away
    // hangs the command up.
    let mut client_open = true;
    while let Ok(pidfd) = &pidfd {
        let mut pfds = vec![PollFd::new(pidfd, PollFlags::IN)];
        if client_open {
            pfds.push(PollFd::new(conn, PollFlags::IN));
        }
        match poll(&mut pfds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
        if !pfds[0].revents().is_empty() {
            break;
        }
        if client_open && !pfds[1].revents().is_empty() {
            match recv(conn) {
                Ok(Some((Message::Signal(s), _)))
                    if [libc::SIGINT, libc::SIGTERM, libc::SIGHUP].contains(&s) =>
                {
                    let _ = libcage::sys::process::kill(-pid, s);
                }
                Ok(Some(_)) => {}
                _ => {
                    client_open = false;
                    let _ = libcage::sys::process::kill(-pid, libc::SIGHUP);
                }
            }
        }
    }
    let st = child.wait().map_err(|e| fail(e.to_string()))?;
    Ok((
        alias.clone(),
        match (st.code(), st.signal()) {
            (Some(c), _) => Message::Exit(c),
            (None, Some(s)) => Message::Killed(s),
            _ => Message::Exit(1),
        },
    ))
}
