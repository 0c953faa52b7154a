//! Logging to syslog (authpriv). A library must not `openlog` in its host
//! process, so messages carry their own `tag: ` prefix.

use crate::sys::syslog;

pub use crate::sys::syslog::Priority;

/// Log `msg` at `prio` with a `tag: ` prefix (e.g. `pam_cage(su)`).
pub fn log(prio: Priority, tag: &str, msg: &str) {
    syslog::send(prio, &format!("{tag}: {msg}"));
}

pub fn info(tag: &str, msg: &str) {
    log(Priority::Info, tag, msg);
}

pub fn warn(tag: &str, msg: &str) {
    log(Priority::Warning, tag, msg);
}

pub fn error(tag: &str, msg: &str) {
    log(Priority::Err, tag, msg);
}

/// A syslog connection opened before entering a cage (whose mount namespace
/// may have no `/dev/log`), so the entry line can still be sent from inside.
/// Datagrams carry `<PRI>timestamp ident[pid]: msg` (RFC 3164).
/// The pid shown is the caller's host pid, taken before entering.
pub struct Preconnected {
    sock: Option<std::os::unix::net::UnixDatagram>,
    pid: u32,
    ident: String,
    /// Taken when the entry starts, on the host: inside a cage the time
    /// zone would be read again from the cage's /etc/localtime.
    stamp: String,
}

impl Preconnected {
    pub fn new() -> Preconnected {
        let sock = std::os::unix::net::UnixDatagram::unbound()
            .ok()
            .filter(|s| s.connect("/dev/log").is_ok());
        // Read before entering: the cage's /proc does not show the caller.
        // The thread's name is the process's comm (single-threaded callers).
        let ident = rustix::thread::name()
            .ok()
            .map(|s| s.to_string_lossy().trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "cage".into());
        Preconnected {
            sock,
            pid: std::process::id(),
            ident,
            stamp: crate::sys::syslog::timestamp(),
        }
    }

    pub fn send(&self, prio: Priority, tag: &str, msg: &str) {
        let Some(sock) = &self.sock else {
            return log(prio, tag, msg);
        };
        let pri = libc::LOG_AUTHPRIV | crate::sys::syslog::level(prio);
        let line = format!(
            "<{pri}>{} {}[{}]: {tag}: {msg}",
            self.stamp, self.ident, self.pid
        );
        if sock.send(line.as_bytes()).is_err() {
            log(prio, tag, msg);
        }
    }
}

impl Default for Preconnected {
    fn default() -> Self {
        Preconnected::new()
    }
}
