//! `cage-enter [--] [CMD ARGS...]`: the calling user runs CMD (or their
//! login shell) inside their own cage, from a path that is not caged (a
//! panel's file manager, a support shell). CageFS's `cagefs_enter`.
//!
//! Installed setuid root (mode 4755, `ci/install.sh`); never in the
//! skeleton. The cage is always the one of the *real* uid: no argument,
//! environment variable or descriptor can name another user. See
//! SECURITY.md "cage-enter" for the attack surface and how each part of
//! the caller's process state is handled:
//! - not dumpable (no ptrace, no core) and `RLIMIT_CORE` 0 until the drop;
//! - the environment emptied before anything else runs; the command gets a
//!   fixed one (HOME, USER, LOGNAME, SHELL, PATH) plus TERM, LANG and LC_*
//!   when their values are plain;
//! - every descriptor from 3 up closed; a standard descriptor that is a
//!   file the user could not open themselves is refused; terminals never
//!   reach the cage (a fresh pty of the cage is relayed);
//! - all uids and gids 0 while entering, so the caller cannot signal or
//!   trace the root part;
//! - the command runs with the user's uid, gid and groups, no_new_privs.

mod config;
mod sys;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use libcage::cage::{self, Mode, Outcome, Request, Terminal, Who};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Exit status of cage-enter's own refusals and failures (the command's
/// own status passes through unchanged).
const EXIT_REFUSED: u8 = 125;
const TAG: &str = "cage-enter";
const PATH: &str = "/usr/local/bin:/usr/bin:/bin";
const USAGE: &str = "usage: cage-enter [--] [COMMAND [ARG...]]\n\
    Runs COMMAND (default: your login shell) inside your own cage.";

fn main() -> ExitCode {
    // Before anything reads the process state the caller chose.
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    // The soft limit only: the user's own is restored after the drop,
    // which a lowered hard limit would forbid.
    let core = getrlimit(Resource::Core);
    let _ = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: core.maximum,
        },
    );
    let kept_env = safe_env();
    if sys::clear_env().is_err() {
        return refuse("cannot clear the environment");
    }
    sys::stdio_open();
    libcage::sys::process::close_fds_except(&[]);
    let uid = rustix::process::getuid().as_raw();
    if !rustix::process::geteuid().is_root() {
        return refuse("not installed setuid root (install it with mode 4755, owner root)");
    }
    if uid == 0 {
        return refuse("root has no cage (run `cage-admin enter USER` to enter a user's cage)");
    }
    let cmd: Vec<OsString> = match parse_args(std::env::args_os().skip(1).collect()) {
        Ok(c) => c,
        Err(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(Some(m)) => {
            eprintln!("cage-enter: {m}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Checked with the real uid, before it is given up.
    if let Err(m) = check_stdio() {
        libcage::log::warn(TAG, &format!("uid {uid}: {m}; refused"));
        return refuse(&m);
    }
    let cwd = std::env::current_dir().ok();
    if let Err(e) = sys::become_root() {
        return refuse(&format!("cannot take root credentials: {e}"));
    }
    // Root's own file size limit while records are written (a caller's
    // tiny RLIMIT_FSIZE must not truncate one); the user's comes back
    // before the command runs.
    let fsize = getrlimit(Resource::Fsize);
    let _ = setrlimit(
        Resource::Fsize,
        Rlimit {
            current: None,
            maximum: None,
        },
    );
    let config = match config::config_dir() {
        Ok(c) => c,
        Err(m) => return refuse(&m),
    };
    let user = match libcage::sys::nss::getpwuid(uid) {
        Ok(Some(u)) => u,
        Ok(None) => return refuse(&format!("uid {uid} has no account")),
        Err(e) => return refuse(&format!("looking up uid {uid}: {e}")),
    };
    // Groups are resolved on the host, before entering (no NSS in the cage).
    let groups = match libcage::sys::nss::getgrouplist(&user.name, user.gid) {
        Ok(g) => g,
        Err(e) => return refuse(&format!("groups of {}: {e}", user.name)),
    };
    let req = Request {
        config: &config,
        who: Who::Uid(uid),
        mode: Mode::Supervise,
        service: TAG,
        min_uid: None,
        in_process: false,
        // A terminal of the caller never reaches the cage: a fresh pty of
        // the cage, relayed by the supervisor (pipes stay pipes).
        terminal: Terminal::Relay,
    };
    match cage::enter(&req) {
        Ok(Outcome::Entered(_)) => {}
        Ok(Outcome::NotCaged(_, r)) => {
            libcage::log::warn(
                TAG,
                &format!(
                    "user {} (uid {uid}) is not caged ({}); refused",
                    user.name,
                    r.as_str()
                ),
            );
            return refuse(&format!(
                "{} is not caged ({}): cage-enter runs commands only inside your own cage",
                user.name,
                r.as_str()
            ));
        }
        // The core has logged it.
        Err(e) => return refuse(&e.to_string()),
    }
    // In the cage, in the child; the supervisor stays outside (as root).
    if let Err(e) = libcage::sys::process::become_user(user.uid, user.gid, &groups) {
        eprintln!("cage-enter: {e}");
        libcage::sys::process::exit_now(i32::from(EXIT_REFUSED));
    }
    // Changing credentials cleared PR_SET_PDEATHSIG: arm it again, then
    // make sure the supervisor did not die in between (outside the cage it
    // shows as parent 0).
    if libcage::sys::process::die_with_parent(libc::SIGKILL).is_err()
        || rustix::process::getppid().is_some()
    {
        libcage::sys::process::exit_now(i32::from(EXIT_REFUSED));
    }
    // The caller's own limits again (lowering needs no privilege).
    for (res, lim) in [(Resource::Fsize, fsize), (Resource::Core, core)] {
        if setrlimit(res, lim).is_err() {
            eprintln!("cage-enter: cannot restore resource limits");
            libcage::sys::process::exit_now(i32::from(EXIT_REFUSED));
        }
    }
    run(&user, &cmd, cwd.as_deref(), &kept_env)
}

fn refuse(m: &str) -> ExitCode {
    eprintln!("cage-enter: {m}");
    ExitCode::from(EXIT_REFUSED)
}

/// `[--] CMD ARGS...`; no option but `-h`/`--help` (`Err(None)`).
fn parse_args(mut args: Vec<OsString>) -> Result<Vec<OsString>, Option<String>> {
    match args.first().and_then(|a| a.to_str()) {
        Some("--") => {
            args.remove(0);
        }
        Some("-h" | "--help") => return Err(None),
        Some(a) if a.starts_with('-') => return Err(Some(format!("unknown option {a}"))),
        _ => {}
    }
    if args.first().is_some_and(|a| a.is_empty()) {
        return Err(Some("empty command".into()));
    }
    Ok(args)
}

/// The caller's TERM, LANG and LC_* when their values are plain words
/// (terminfo and locale names): no path, no shell syntax.
fn safe_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, v)| {
            (k == "TERM" || k == "LANG" || k.starts_with("LC_")) && k.len() <= 32 && plain_value(v)
        })
        .collect()
}

fn plain_value(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && !v.starts_with('.')
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+@".contains(&b))
}

/// A standard descriptor that is a file (or a device that is not a
/// terminal) must be one the caller could have opened themselves, with the
/// access it was opened for: a descriptor root opened and handed over
/// (`cage-enter cmd </etc/shadow` from a root script) does not go in.
/// Terminals are relayed, pipes and sockets carry no path.
fn check_stdio() -> Result<(), String> {
    use rustix::fs::{Access, FileType};
    for fd in 0..3 {
        let bfd = match fd {
            0 => rustix::stdio::stdin(),
            1 => rustix::stdio::stdout(),
            _ => rustix::stdio::stderr(),
        };
        let st = rustix::fs::fstat(bfd).map_err(|e| format!("descriptor {fd}: {e}"))?;
        let check = match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile | FileType::Directory | FileType::BlockDevice => true,
            FileType::CharacterDevice => !rustix::termios::isatty(bfd),
            _ => false,
        };
        if !check {
            continue;
        }
        let want = match sys::open_mode(fd).map_err(|e| format!("descriptor {fd}: {e}"))? {
            libc::O_RDONLY => Access::READ_OK,
            libc::O_WRONLY => Access::WRITE_OK,
            _ => Access::READ_OK | Access::WRITE_OK,
        };
        // access(2) checks with the real uid and gids: the caller's.
        if rustix::fs::access(format!("/proc/self/fd/{fd}"), want).is_err() {
            return Err(format!(
                "descriptor {fd} is a file you cannot open yourself; not passed into the cage"
            ));
        }
    }
    Ok(())
}

/// Runs the command (or the login shell) as the user, in the cage.
fn run(
    user: &libcage::sys::nss::Passwd,
    cmd: &[OsString],
    cwd: Option<&Path>,
    kept_env: &[(String, String)],
) -> ExitCode {
    let shell = if user.shell.is_empty() {
        "/bin/sh".to_string()
    } else {
        user.shell.clone()
    };
    let mut c = match cmd.split_first() {
        None => {
            let mut c = std::process::Command::new(&shell);
            c.arg0(format!("-{}", shell.rsplit('/').next().unwrap_or("sh")));
            c
        }
        Some((prog, args)) => {
            let mut c = std::process::Command::new(prog);
            c.args(args);
            c
        }
    };
    c.env_clear()
        .env("HOME", &user.dir)
        .env("USER", &user.name)
        .env("LOGNAME", &user.name)
        .env("SHELL", &shell)
        .env("PATH", PATH);
    for (k, v) in kept_env {
        c.env(k, v);
    }
    // The caller's directory as the cage sees it, else the home.
    let home = PathBuf::from(&user.dir);
    let dir = [cwd.map(Path::to_path_buf), Some(home)]
        .into_iter()
        .flatten()
        .find(|d| d.is_dir())
        .unwrap_or_else(|| PathBuf::from("/"));
    c.current_dir(dir);
    let err = c.exec();
    let shown = cmd
        .first()
        .map_or(shell.clone(), |c| c.to_string_lossy().into_owned());
    eprintln!("cage-enter: cannot run {shown}: {err}");
    let code = if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    libcage::sys::process::exit_now(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn no_argument_names_a_user() {
        assert_eq!(parse_args(args(&["--", "id"])).unwrap(), args(&["id"]));
        assert_eq!(
            parse_args(args(&["ls", "-l"])).unwrap(),
            args(&["ls", "-l"])
        );
        assert_eq!(
            parse_args(args(&["--", "-x"])).unwrap(),
            args(&["-x"]),
            "after -- everything is the command"
        );
        assert!(parse_args(args(&[])).unwrap().is_empty());
        assert_eq!(
            parse_args(args(&["-u", "bob", "id"])).unwrap_err(),
            Some("unknown option -u".into())
        );
        assert_eq!(parse_args(args(&["--help"])).unwrap_err(), None);
        assert!(parse_args(args(&[""])).is_err());
    }

    #[test]
    fn only_plain_values_are_kept() {
        assert!(plain_value("xterm-256color"));
        assert!(plain_value("en_US.UTF-8"));
        assert!(plain_value("de_DE@euro"));
        assert!(!plain_value("/tmp/evil"));
        assert!(!plain_value("../../x"));
        assert!(!plain_value("a b"));
        assert!(!plain_value("$(id)"));
        assert!(!plain_value(""));
    }
}
