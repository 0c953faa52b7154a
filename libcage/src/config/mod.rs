//! Configuration: text into typed values that remember `file:line`.
//!
//! Parsers never stop at the first error: they return every malformed line.
//! Loading is split by concern so a broken `cage.mp` refuses only caged
//! users, while the policy (who is caged) still works for everyone else.

pub mod ini;
pub mod mountpoints;
pub mod settings;
pub mod users;
pub mod virtmp;

use std::fmt;
use std::path::{Path, PathBuf};

pub use mountpoints::{MountEntry, MountKind, MountPoints};
pub use settings::{Hidepid, Mode, Settings};

/// One malformed line (or a whole unreadable file when `line == 0`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub msg: String,
}

impl ConfigError {
    pub fn new(file: &Path, line: usize, msg: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line,
            msg: msg.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.msg)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.msg)
        }
    }
}

/// Where the configuration lives (`/etc/cage` unless a test says otherwise).
#[derive(Clone, Debug)]
pub struct ConfigDir(PathBuf);

impl Default for ConfigDir {
    fn default() -> Self {
        ConfigDir(PathBuf::from(crate::paths::DEFAULT_CONFIG_DIR))
    }
}

impl ConfigDir {
    pub fn new(p: impl Into<PathBuf>) -> Self {
        ConfigDir(p.into())
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn ini(&self) -> PathBuf {
        self.0.join("cage.ini")
    }
    pub fn mount_points(&self) -> PathBuf {
        self.0.join("cage.mp")
    }
    pub fn enabled_dir(&self) -> PathBuf {
        self.0.join("users.enabled")
    }
    pub fn disabled_dir(&self) -> PathBuf {
        self.0.join("users.disabled")
    }
    pub fn exclude_dir(&self) -> PathBuf {
        self.0.join("exclude")
    }
    pub fn custom_etc(&self, user: &str) -> PathBuf {
        self.0.join("custom.etc").join(user)
    }
    pub fn templates_dir(&self) -> PathBuf {
        self.0.join("conf.d")
    }

    /// `cage.ini` (defaults when absent).
    pub fn settings(&self) -> Result<Settings, Vec<ConfigError>> {
        Settings::load(&self.ini())
    }

    /// `cage.mp` (empty when absent).
    pub fn mount_points_config(&self) -> Result<MountPoints, Vec<ConfigError>> {
        MountPoints::load(&self.mount_points())
    }
}

/// Loads `path` with `parse`; a missing file gives the default value.
pub(crate) fn load_or_default<T: Default>(
    path: &Path,
    parse: fn(&Path, &str) -> Result<T, Vec<ConfigError>>,
) -> Result<T, Vec<ConfigError>> {
    match read_optional(path) {
        Ok(Some(text)) => parse(path, &text),
        Ok(None) => Ok(T::default()),
        Err(e) => Err(vec![e]),
    }
}

/// Reads a config file; a missing file is `Ok(None)`.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ConfigError::new(path, 0, "file is not valid UTF-8")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::new(path, 0, format!("cannot read: {e}"))),
    }
}
