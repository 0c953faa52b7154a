//! Where an entry's time goes: named steps, measured on the calling
//! thread (entries are single-threaded), reported with the entry
//! ([`crate::cage::Entered::steps`]) and printed by `cage-admin enter
//! --timings` for `bench/entry.sh`. Marks are a few `clock_gettime` calls
//! (vDSO, no system call); nothing is recorded outside an entry.

use std::cell::RefCell;
use std::time::Instant;

thread_local! {
    static MARKS: RefCell<Vec<(&'static str, Instant)>> = const { RefCell::new(Vec::new()) };
}

/// Starts a new measurement at `t0` (forgets any earlier one).
pub fn start(t0: Instant) {
    MARKS.with(|m| {
        let mut m = m.borrow_mut();
        m.clear();
        m.push(("", t0));
    });
}

/// Ends the step `name` now (it began at the previous mark).
pub fn mark(name: &'static str) {
    let now = Instant::now();
    MARKS.with(|m| {
        let mut m = m.borrow_mut();
        if !m.is_empty() && m.len() < 64 {
            m.push((name, now));
        }
    });
}

/// The steps since [`start`], in order, as (name, µs); steps of the same
/// name (an entry that starts over) are added up in place of the first.
pub fn take() -> Vec<(&'static str, u64)> {
    MARKS.with(|m| {
        let m = std::mem::take(&mut *m.borrow_mut());
        steps(&m)
    })
}

fn steps(m: &[(&'static str, Instant)]) -> Vec<(&'static str, u64)> {
    let mut out: Vec<(&'static str, u64)> = Vec::new();
    for w in m.windows(2) {
        let us = w[1].1.saturating_duration_since(w[0].1).as_micros() as u64;
        match out.iter_mut().find(|(n, _)| *n == w[1].0) {
            Some((_, t)) => *t += us,
            None => out.push((w[1].0, us)),
        }
    }
    out
}

/// `name=µs` pairs separated by spaces.
pub fn format(steps: &[(&'static str, u64)]) -> String {
    steps
        .iter()
        .map(|(n, us)| format!("{n}={us}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn steps_are_differences_and_repeats_add_up() {
        let t = Instant::now();
        let ms = |n| t + Duration::from_micros(n);
        let m = [("", t), ("a", ms(10)), ("b", ms(25)), ("a", ms(30))];
        assert_eq!(steps(&m), vec![("a", 15), ("b", 15)]);
        assert_eq!(format(&steps(&m)), "a=15 b=15");
        assert!(steps(&m[..1]).is_empty());
    }
}
