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

/// The mount watch handed over by libcage (`libcage/src/apply/watch.rs`):
/// descriptor 5 is a pipe with one byte per watched mount, descriptor 6 the
/// cage's mountinfo, the mounts follow from descriptor 7.
pub const SPEC_FD: i32 = 5;
pub const MOUNTINFO_FD: i32 = 6;
pub const FIRST_MOUNT_FD: i32 = 7;
/// At most this many watched mounts (far more than any plan makes).
pub const MAX_WATCHED: usize = 4096;

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

/// The attributes a spec byte asks to keep: `r` read-only, nosuid, nodev;
/// `w` nosuid, nodev. Anything else is a broken hand-over.
pub fn watch_attrs(byte: u8) -> Option<u64> {
    match byte {
        b'r' => Some(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV),
        b'w' => Some(MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV),
        _ => None,
    }
}

/// What the watch compares between two looks at the mount table: how many
/// mounts, and two mixes of their ids. A sweep changes attributes only,
/// which the kernel also reports as a change of the table; comparing the
/// ids keeps the watch from sweeping again and again on its own changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MountSummary {
    count: u64,
    sum: u64,
    mix: u64,
}

/// Reads mountinfo text in chunks of any size: the first field of every
/// line is a mount id.
#[derive(Clone, Copy, Debug)]
pub struct MountScan {
    summary: MountSummary,
    at_line_start: bool,
    in_id: bool,
    id: u64,
}

impl Default for MountScan {
    fn default() -> Self {
        MountScan {
            summary: MountSummary::default(),
            at_line_start: true,
            in_id: false,
            id: 0,
        }
    }
}

impl MountScan {
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.in_id {
                if b.is_ascii_digit() {
                    self.id = self.id.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
                } else {
                    self.record();
                }
            } else if self.at_line_start && b.is_ascii_digit() {
                self.in_id = true;
                self.id = u64::from(b - b'0');
            }
            self.at_line_start = b == b'\n';
        }
    }

    fn record(&mut self) {
        let s = &mut self.summary;
        s.count += 1;
        s.sum = s.sum.wrapping_add(self.id);
        s.mix ^= self
            .id
            .wrapping_add(1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
        self.in_id = false;
    }

    pub fn finish(mut self) -> MountSummary {
        if self.in_id {
            self.record();
        }
        self.summary
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
    fn watch_spec_bytes() {
        assert_eq!(watch_attrs(b'r'), Some(0x7));
        assert_eq!(watch_attrs(b'w'), Some(0x6));
        assert_eq!(watch_attrs(b'x'), None);
        assert_eq!(watch_attrs(b'\n'), None);
    }

    fn summary(chunks: &[&[u8]]) -> MountSummary {
        let mut scan = MountScan::default();
        for c in chunks {
            scan.feed(c);
        }
        scan.finish()
    }

    #[test]
    fn mount_ids_whatever_the_chunks() {
        let t: &[u8] = b"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw\n40 36 0:5 / /x rw - tmpfs t rw\n";
        let whole = summary(&[t]);
        assert_eq!(summary(&[&t[..1], &t[1..70], &t[70..]]), whole);
        assert_eq!(whole.count, 2);
        assert_eq!(whole.sum, 76);
        // Other numbers on a line (parent id, device) are not ids.
        assert_eq!(summary(&[b"36 40 0:5 / /x rw\n40 36 0:5 / /y rw\n"]), whole);
        // Attribute changes alone keep the summary.
        let t2: &[u8] = b"36 35 98:0 /mnt1 /mnt2 ro,nosuid master:1 - ext3 /dev/root rw\n40 36 0:5 / /x rw - tmpfs t rw\n";
        assert_eq!(summary(&[t2]), whole);
        // A new mount changes it; so does one that replaced another.
        let t3: &[u8] = b"36 35 98:0 /mnt1 /mnt2 rw\n40 36 0:5 / /x rw\n41 40 0:6 / /x/y rw\n";
        assert_ne!(summary(&[t3]), whole);
        assert_ne!(
            summary(&[b"36 35 98:0 / /a rw\n41 36 0:5 / /x rw\n"]),
            whole
        );
        // The last line needs no newline.
        assert_eq!(summary(&[&t[..t.len() - 1]]), whole);
    }

    #[test]
    fn commit_needs_the_byte() {
        assert!(committed(Ok(1), b'C'));
        assert!(!committed(Ok(0), 0), "end of file: the builder is gone");
        assert!(!committed(Ok(1), b'E'));
        assert!(!committed(Err(9), b'C'));
    }
}
