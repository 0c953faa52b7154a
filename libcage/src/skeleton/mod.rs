//! The skeleton: the read-only tree every cage's `/` is made of.

pub mod elf;
pub mod template;

use std::path::Path;

use crate::config::ConfigError;
use crate::identity::Extra;

/// Accounts the templates under `conf.d/` add to every cage (`users=`, `groups=`).
pub fn template_accounts(dir: &Path) -> Result<Extra, Vec<ConfigError>> {
    let mut extra = Extra::default();
    for t in template::load_dir(dir)? {
        for u in t.users {
            if !extra.users.contains(&u.value) {
                extra.users.push(u.value);
            }
        }
        for g in t.groups {
            if !extra.groups.contains(&g.value) {
                extra.groups.push(g.value);
            }
        }
    }
    Ok(extra)
}
