//! `syslog(LOG_AUTHPRIV | prio, "%s", msg)`; no `openlog` from a library.

use std::ffi::CString;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    Err,
    Warning,
    Notice,
    Info,
    Debug,
}

/// The syslog level of `p`.
pub fn level(p: Priority) -> libc::c_int {
    p.level()
}

impl Priority {
    fn level(self) -> libc::c_int {
        match self {
            Priority::Err => libc::LOG_ERR,
            Priority::Warning => libc::LOG_WARNING,
            Priority::Notice => libc::LOG_NOTICE,
            Priority::Info => libc::LOG_INFO,
            Priority::Debug => libc::LOG_DEBUG,
        }
    }
}

/// Longest message sent as one line; longer ones are split.
const MAX_LINE: usize = 900;

pub fn send(prio: Priority, msg: &str) {
    let mut rest = msg;
    while !rest.is_empty() {
        let mut cut = rest.len().min(MAX_LINE);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (line, tail) = rest.split_at(cut);
        rest = tail;
        let Ok(c) = CString::new(line.replace('\0', "\\0")) else {
            continue;
        };
        // SAFETY: the format is a static NUL-terminated "%s" and the one
        // argument is a valid NUL-terminated C string that outlives the call.
        unsafe {
            libc::syslog(
                libc::LOG_AUTHPRIV | prio.level(),
                c"%s".as_ptr(),
                c.as_ptr(),
            );
        }
    }
}

/// The RFC 3164 timestamp of now in local time (`Nov  3 17:04:05`).
pub fn timestamp() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // SAFETY: time(NULL) has no preconditions.
    let now = unsafe { libc::time(std::ptr::null_mut()) };
    // SAFETY: zeroed tm is a valid out value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to a time_t and a tm we own.
    if unsafe { libc::localtime_r(&now, &mut tm) }.is_null() {
        return String::new();
    }
    let mon = MONTHS.get(tm.tm_mon as usize).copied().unwrap_or("Jan");
    format!(
        "{mon} {:>2} {:02}:{:02}:{:02}",
        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec
    )
}
