//! The skeleton: the read-only tree every cage's `/` is made of.

use std::path::Path;

use crate::config::ConfigError;
use crate::identity::Extra;

/// Accounts the templates under `conf.d/` add to every cage (`users=`, `groups=`).
pub fn template_accounts(_dir: &Path) -> Result<Extra, Vec<ConfigError>> {
    Ok(Extra::default())
}
