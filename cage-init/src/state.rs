//! What the cage-init program decides, without system calls (unit-tested
//! on the host; the program itself is `src/main.rs`).
#![cfg_attr(not(test), no_std)]

/// What this process is, from `argv[0]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `cage-init USER`: pid 1 of a cage.
    Init,
    /// `cage-seed`: holds the empty mount namespace cages are made from.
    Seed,
}

impl Role {
    pub fn from_argv0(arg0: &[u8]) -> Option<Role> {
        match arg0 {
            b"cage-init" => Some(Role::Init),
            b"cage-seed" => Some(Role::Seed),
            _ => None,
        }
    }

    /// The `comm` it gives itself (the name libcage verifies).
    pub fn name(self) -> &'static [u8] {
        match self {
            Role::Init => b"cage-init",
            Role::Seed => b"cage-seed",
        }
    }
}

/// How long an unpinned init waits before it may leave an empty cage: an
/// entry that just joined may not have forked its first process into the
/// cage yet.
pub const UNPIN_GRACE_MS: u64 = 3000;

/// How often an unpinned init looks whether its cage is empty.
pub const POLL_MS: u64 = 250;

/// The cage init's one piece of state: when it was unpinned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Init {
    unpinned_at: Option<u64>,
}

impl Init {
    /// SIGTERM or SIGUSR1 (unpin); every other signal of the set only wakes
    /// the loop (SIGCHLD: reap).
    pub fn on_signal(&mut self, sig: i32, now_ms: u64, unpin_signals: &[i32]) {
        if unpin_signals.contains(&sig) && self.unpinned_at.is_none() {
            self.unpinned_at = Some(now_ms);
        }
    }

    /// How long to wait for the next signal: forever while pinned.
    pub fn timeout_ms(&self) -> Option<u64> {
        self.unpinned_at.map(|_| POLL_MS)
    }

    /// Unpinned, past the grace period, and nobody left in the cage.
    pub fn may_leave(&self, now_ms: u64, others_exist: bool) -> bool {
        self.unpinned_at
            .is_some_and(|t| now_ms.saturating_sub(t) >= UNPIN_GRACE_MS)
            && !others_exist
    }
}

/// The one byte libcage sends on the commit descriptor once the cage is
/// recorded. Anything else (end of file: the builder failed or died) makes
/// the init leave, taking the unrecorded cage with it.
pub fn committed(read: Result<usize, i32>, byte: u8) -> bool {
    matches!(read, Ok(1)) && byte == b'C'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        assert_eq!(Role::from_argv0(b"cage-init"), Some(Role::Init));
        assert_eq!(Role::from_argv0(b"cage-seed"), Some(Role::Seed));
        assert_eq!(Role::from_argv0(b"/usr/lib/cage/cage-init"), None);
        assert_eq!(Role::from_argv0(b""), None);
        assert_eq!(Role::Init.name(), b"cage-init");
    }

    #[test]
    fn init_leaves_only_unpinned_after_grace_when_empty() {
        let unpin = [15, 10];
        let mut s = Init::default();
        assert_eq!(s.timeout_ms(), None);
        assert!(
            !s.may_leave(1_000_000, false),
            "pinned: stays even when empty"
        );
        s.on_signal(17, 100, &unpin);
        assert_eq!(s.timeout_ms(), None, "SIGCHLD does not unpin");
        s.on_signal(15, 1000, &unpin);
        assert_eq!(s.timeout_ms(), Some(POLL_MS));
        assert!(
            !s.may_leave(1000 + UNPIN_GRACE_MS - 1, false),
            "grace period"
        );
        assert!(!s.may_leave(1000 + UNPIN_GRACE_MS, true), "processes left");
        assert!(s.may_leave(1000 + UNPIN_GRACE_MS, false));
        s.on_signal(10, 5000, &unpin);
        assert!(
            s.may_leave(1000 + UNPIN_GRACE_MS, false),
            "a second unpin does not restart the grace period"
        );
    }

    #[test]
    fn commit_needs_the_byte() {
        assert!(committed(Ok(1), b'C'));
        assert!(!committed(Ok(0), 0), "end of file: the builder is gone");
        assert!(!committed(Ok(1), b'E'));
        assert!(!committed(Err(9), b'C'));
    }
}
