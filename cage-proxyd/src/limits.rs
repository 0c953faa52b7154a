//! Per-user rate limit and concurrency caps: one user's flood is refused
//! quickly at accept time and never holds a thread, so others are served.

use std::collections::HashMap;
use std::time::Instant;

/// Requests one user may start per second, sustained.
pub const RATE_PER_SEC: f64 = 20.0;
/// Burst a user may use at once.
pub const BURST: f64 = 40.0;
/// Requests of one user running at once.
pub const PER_USER: usize = 8;
/// Requests running at once in total.
pub const TOTAL: usize = 64;

#[derive(Default)]
pub struct Limits {
    users: HashMap<u32, (f64, Instant, usize)>,
    running: usize,
}

impl Limits {
    /// Admits one request of `uid` now, or says why not.
    pub fn admit(&mut self, uid: u32, now: Instant) -> Result<(), &'static str> {
        if self.running >= TOTAL {
            return Err("the proxy is busy (too many requests running); try again");
        }
        let e = self.users.entry(uid).or_insert((BURST, now, 0));
        let dt = now.saturating_duration_since(e.1).as_secs_f64();
        e.0 = (e.0 + dt * RATE_PER_SEC).min(BURST);
        e.1 = now;
        if e.2 >= PER_USER {
            return Err("too many of your proxied commands are running at once");
        }
        if e.0 < 1.0 {
            return Err("too many proxied commands in a short time (rate limit); try again");
        }
        e.0 -= 1.0;
        e.2 += 1;
        self.running += 1;
        Ok(())
    }

    pub fn done(&mut self, uid: u32) {
        self.running = self.running.saturating_sub(1);
        if let Some(e) = self.users.get_mut(&uid) {
            e.2 = e.2.saturating_sub(1);
            // Forget idle users with a full bucket: the map stays small.
            if e.2 == 0 && e.0 >= BURST - 1.0 {
                self.users.remove(&uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_user_cannot_starve_another() {
        let mut l = Limits::default();
        let t = Instant::now();
        for _ in 0..PER_USER {
            l.admit(1, t).unwrap();
        }
        assert!(l.admit(1, t).is_err());
        l.admit(2, t).unwrap();
        for _ in 0..PER_USER {
            l.done(1);
        }
        let mut ok = 0;
        for _ in 0..1000 {
            if l.admit(1, t).is_ok() {
                ok += 1;
                l.done(1);
            }
        }
        assert_eq!(ok, BURST as usize - PER_USER);
        l.admit(2, t).unwrap();
    }
}
