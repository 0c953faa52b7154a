//! `libcage_preload.so`: puts a root service's user processes into their
//! cages without rebuilding the service. Loaded with `LD_PRELOAD` into a
//! daemon that runs as root and switches to a user (PHP-FPM workers, APR
//! children of Apache), it wraps `setuid`, `setreuid` and `setresuid`: when
//! a root process switches to a caged user for good (all three uids that
//! user), the cage is entered first, exactly as `cage_enter` does it
//! (libcage's default mode: this process stays outside as a transparent
//! supervisor, the call returns in a new child inside the cage), and the
//! working directory is entered again by path, as the user, inside.
//!
//! - Users that are not caged (www-data, root, below `min_uid`), processes
//!   that are not root and temporary switches (`seteuid`, root kept as the
//!   real or saved uid) go straight to libc.
//! - When entry fails (a multi-threaded caller, a cage that cannot be
//!   built or joined, a leaked directory descriptor) the call fails with
//!   EPERM and changes nothing; libcage logs the reason to syslog
//!   (authpriv) under `cage_preload(SERVICE)` (the process name, e.g.
//!   `php-fpm8.2`; the line names the user, and so the pool). The caller must treat a failed set*uid as fatal, as PHP-FPM
//!   and APR do.
//!
//! What it cannot catch: set-uid programs (the loader drops `LD_PRELOAD`
//! for them: suexec needs its patch), static binaries, programs that make
//! the raw system call, and ids changed through `setfsuid` or capabilities
//! alone. The configuration is `/etc/cage`; for tests and debugging only,
//! `CAGE_PRELOAD_CONFIG_DIR` in the service's environment at load time
//! names another one (read with `secure_getenv`, so never in set-id
//! programs).

pub mod ids;
mod sys;

use std::cell::Cell;
use std::ffi::c_int;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use libcage::cage::{self, Mode, Outcome, Request, Terminal, Who};
use libcage::config::ConfigDir;

use ids::{after_setresuid, after_setreuid, after_setuid_as_root, switch_target};
use sys::Call;

/// This process entered a cage (it is the child inside): later calls go
/// straight to libc.
static ENTERED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Set while libcage runs: its own calls go straight to libc.
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

static CONFIG: OnceLock<PathBuf> = OnceLock::new();

fn at_load() {
    config_dir();
}

fn config_dir() -> &'static Path {
    CONFIG.get_or_init(|| {
        sys::secure_env(c"CAGE_PRELOAD_CONFIG_DIR").unwrap_or_else(|| PathBuf::from("/etc/cage"))
    })
}

/// `cage_preload(COMM)`: the service (`php-fpm8.2`, `apache2`).
fn service_tag() -> String {
    format!("cage_preload({})", sys::comm())
}

enum Entry {
    NotCaged,
    /// In the cage; the directory to enter again once the uid is switched.
    Entered(Option<PathBuf>),
}

/// Enters the cage of `uid` if they are caged. Failures are logged (by
/// libcage, or here).
fn enter(uid: u32) -> Result<Entry, ()> {
    let cwd = std::env::current_dir().ok().filter(|d| d != Path::new("/"));
    let tag = service_tag();
    let dir = config_dir();
    if !dir.is_dir() {
        // Fail closed: a missing configuration must not read as "nobody
        // is caged".
        libcage::log::error(
            &tag,
            &format!(
                "uid {uid}: configuration directory {} is missing",
                dir.display()
            ),
        );
        return Err(());
    }
    let config = ConfigDir::new(dir);
    let req = Request {
        config: &config,
        who: Who::Uid(uid),
        mode: Mode::Supervise,
        service: &tag,
        min_uid: None,
        // The service goes on running its own code (no exec): every
        // directory descriptor is refused, close-on-exec or not.
        in_process: true,
        terminal: Terminal::Detach,
    };
    match cage::enter(&req) {
        Ok(Outcome::NotCaged(..)) => Ok(Entry::NotCaged),
        Ok(Outcome::Entered(_)) => Ok(Entry::Entered(cwd)),
        Err(_) => Err(()),
    }
}

/// After the switch, inside the cage, as the user.
fn settle(tag_uid: u32, cwd: Option<PathBuf>) {
    if !sys::rearm_parent_death() {
        // The supervisor is gone: nobody would forward signals or report
        // the exit; never run on as an orphan.
        sys::exit_now(1);
    }
    if let Some(d) = cwd {
        if std::env::set_current_dir(&d).is_err() {
            libcage::log::warn(
                &service_tag(),
                &format!(
                    "uid {tag_uid}: {} is not reachable in the cage; working directory is /",
                    d.display()
                ),
            );
            let _ = std::env::set_current_dir("/");
        }
    }
}

fn hooked(call: Call) -> c_int {
    if ENTERED.load(Ordering::Relaxed) || IN_HOOK.with(Cell::get) {
        return sys::real(call);
    }
    let cur = sys::uids();
    let new = match call {
        Call::Setuid(u) if cur.effective == 0 => after_setuid_as_root(u),
        Call::Setuid(_) => return sys::real(call),
        Call::Setreuid(r, e) => after_setreuid(cur, r, e),
        Call::Setresuid(r, e, s) => after_setresuid(cur, r, e, s),
    };
    let Some(uid) = switch_target(cur, new) else {
        return sys::real(call);
    };
    IN_HOOK.with(|h| h.set(true));
    let outcome = libcage::panic_guard::catch(|| enter(uid));
    IN_HOOK.with(|h| h.set(false));
    match outcome {
        Ok(Ok(Entry::NotCaged)) => sys::real(call),
        Ok(Ok(Entry::Entered(cwd))) => {
            ENTERED.store(true, Ordering::Relaxed);
            let rc = sys::real(call);
            if rc == 0 {
                let _ = libcage::panic_guard::catch(|| settle(uid, cwd));
            }
            rc
        }
        Ok(Err(())) => sys::fail_eperm(),
        Err(panic) => {
            libcage::log::error(
                &service_tag(),
                &format!("uid {uid}: internal error: {panic}"),
            );
            sys::fail_eperm()
        }
    }
}

/// `setuid(2)`, entering the cage first when root becomes a caged user.
#[no_mangle]
pub extern "C" fn setuid(uid: libc::uid_t) -> c_int {
    hooked(Call::Setuid(uid))
}

/// `setreuid(2)`, entering the cage first when root becomes a caged user.
#[no_mangle]
pub extern "C" fn setreuid(ruid: libc::uid_t, euid: libc::uid_t) -> c_int {
    hooked(Call::Setreuid(ruid, euid))
}

/// `setresuid(2)`, entering the cage first when root becomes a caged user.
#[no_mangle]
pub extern "C" fn setresuid(ruid: libc::uid_t, euid: libc::uid_t, suid: libc::uid_t) -> c_int {
    hooked(Call::Setresuid(ruid, euid, suid))
}
