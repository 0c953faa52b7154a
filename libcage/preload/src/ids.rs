//! Pure: which uid a set*uid call switches a root process to for good.

/// `(uid_t)-1`: "leave this id unchanged".
pub const KEEP: u32 = u32::MAX;

/// Real, effective and saved uid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uids {
    pub real: u32,
    pub effective: u32,
    pub saved: u32,
}

/// The ids after `setresuid(r, e, s)`.
pub fn after_setresuid(cur: Uids, r: u32, e: u32, s: u32) -> Uids {
    let pick = |new: u32, old: u32| if new == KEEP { old } else { new };
    Uids {
        real: pick(r, cur.real),
        effective: pick(e, cur.effective),
        saved: pick(s, cur.saved),
    }
}

/// The ids after `setreuid(r, e)` (setreuid(2): the saved uid becomes the
/// new effective uid when the real uid is set, or the effective uid is set
/// to a value other than the previous real uid).
pub fn after_setreuid(cur: Uids, r: u32, e: u32) -> Uids {
    let mut n = after_setresuid(cur, r, e, KEEP);
    if r != KEEP || (e != KEEP && e != cur.real) {
        n.saved = n.effective;
    }
    n
}

/// The ids after `setuid(u)` by a process whose effective uid is root
/// (all three are set).
pub fn after_setuid_as_root(u: u32) -> Uids {
    Uids {
        real: u,
        effective: u,
        saved: u,
    }
}

/// The user a root process becomes for good with this change: all three
/// ids equal and not root. A temporary switch (root kept in the real or
/// saved uid, as `seteuid` does) is not one: such a process can become
/// root again, so it is not running as the user.
pub fn switch_target(cur: Uids, new: Uids) -> Option<u32> {
    if cur.effective != 0 {
        return None;
    }
    (new.real == new.effective && new.effective == new.saved && new.real != 0 && new.real != KEEP)
        .then_some(new.real)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: Uids = Uids {
        real: 0,
        effective: 0,
        saved: 0,
    };

    #[test]
    fn setuid_as_root_is_a_switch() {
        assert_eq!(switch_target(ROOT, after_setuid_as_root(1001)), Some(1001));
        assert_eq!(switch_target(ROOT, after_setuid_as_root(0)), None);
    }

    #[test]
    fn setresuid_all_three_is_a_switch() {
        assert_eq!(
            switch_target(ROOT, after_setresuid(ROOT, 1001, 1001, 1001)),
            Some(1001)
        );
    }

    #[test]
    fn temporary_drops_are_not() {
        // seteuid(1001) keeps root as real and saved uid.
        assert_eq!(
            switch_target(ROOT, after_setresuid(ROOT, KEEP, 1001, KEEP)),
            None
        );
        assert_eq!(
            switch_target(ROOT, after_setresuid(ROOT, 1001, 1001, 0)),
            None
        );
        // setreuid(-1, 1001) with real uid 0: e == old real? no, so saved = 1001, real stays 0.
        assert_eq!(switch_target(ROOT, after_setreuid(ROOT, KEEP, 1001)), None);
    }

    #[test]
    fn setreuid_both_is_a_switch() {
        assert_eq!(
            switch_target(ROOT, after_setreuid(ROOT, 1001, 1001)),
            Some(1001)
        );
    }

    #[test]
    fn suexec_style_real_uid_of_caller() {
        // A set-uid root program run by www-data (33): setuid(1001) sets all.
        let cur = Uids {
            real: 33,
            effective: 0,
            saved: 0,
        };
        assert_eq!(switch_target(cur, after_setuid_as_root(1001)), Some(1001));
    }

    #[test]
    fn not_root_is_never_a_switch() {
        let cur = Uids {
            real: 1001,
            effective: 1001,
            saved: 1001,
        };
        assert_eq!(
            switch_target(cur, after_setresuid(cur, 1001, 1001, 1001)),
            None
        );
    }
}
