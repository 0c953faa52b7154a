//! Catching panics at the C boundaries (`libcage.so`, `pam_cage.so`). The
//! default panic hook would print to the host program's stderr (sshd's,
//! suexec's); a quiet hook keeps the message for the syslog line instead.
//! Each cdylib carries its own copy of std, so the hook is that library's
//! own, never the host program's.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn install_quiet_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let text = payload_text(info.payload());
            let msg = match info.location() {
                Some(l) => format!("{text} at {}:{}", l.file(), l.line()),
                None => text,
            };
            let _ = MESSAGE.try_with(|m| *m.borrow_mut() = Some(msg));
        }));
    });
}

fn payload_text(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// Runs `body`; a panic becomes `Err(message with location)`.
pub fn catch<T>(body: impl FnOnce() -> T) -> Result<T, String> {
    install_quiet_hook();
    panic::catch_unwind(AssertUnwindSafe(body)).map_err(|payload| {
        let detail = MESSAGE
            .try_with(|m| m.borrow_mut().take())
            .ok()
            .flatten()
            .unwrap_or_else(|| payload_text(payload.as_ref()));
        // Dropping the payload could itself panic; a leak is harmless.
        std::mem::forget(payload);
        detail
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_messages() {
        assert_eq!(catch(|| 7), Ok(7));
        let err = catch(|| -> i32 { panic!("boom {}", 1) }).unwrap_err();
        assert!(err.starts_with("boom 1 at "), "{err}");
        assert!(err.contains("panic_guard.rs"), "{err}");
    }
}
