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
