//! Fixed paths and names (DESIGN.md "Paths").

use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG_DIR: &str = "/etc/cage";
pub const DEFAULT_SKELETON: &str = "/usr/share/cage-skeleton";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/cage";
pub const RUN_DIR: &str = "/run/cage";
/// The cage init program (`cage.ini` `init_program` overrides it).
pub const DEFAULT_INIT_PROGRAM: &str = "/usr/lib/cage/cage-init";

/// The per-user directory prefix: last two digits of the uid, zero padded.
pub fn prefix(uid: u32) -> String {
    format!("{:02}", uid % 100)
}

/// `<state_dir>/<prefix>/<user>`.
pub fn user_state_dir(state_dir: &Path, uid: u32, user: &str) -> PathBuf {
    state_dir.join(prefix(uid)).join(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_last_two_digits() {
        assert_eq!(prefix(1000), "00");
        assert_eq!(prefix(1001), "01");
        assert_eq!(prefix(5), "05");
        assert_eq!(prefix(123456), "56");
    }
}
