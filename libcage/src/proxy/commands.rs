//! `proxy.commands` and `custom.proxy.commands` (CageFS syntax):
//!
//! ```text
//! # comment
//! ALIAS[:wrapper]=[user:]path
//! ```
//!
//! `wrapper` is empty (the default client `cage-proxy` is put into the
//! skeleton at `path`) or `noproceed` (no client for this line: another
//! alias of the same path installs it). `user` runs the command as that
//! host user instead of the caller. A malformed line refuses only the path
//! it names; every other command keeps working.

use std::path::{Path, PathBuf};

use crate::config::ConfigError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub alias: String,
    /// False for `noproceed`: no client is installed for this line.
    pub install: bool,
    /// Run as this host user instead of the caller.
    pub user: Option<String>,
    pub path: PathBuf,
    /// `file:line` of the definition.
    pub origin: String,
}

/// A line that does not parse, with the path it tried to define (when one
/// could be made out): requests for that path are refused with the error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    pub error: ConfigError,
    pub path: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Commands {
    pub commands: Vec<Command>,
    pub broken: Vec<Broken>,
}

/// The files, in order: the shipped one first, the admin's second.
pub fn files(config_dir: &Path) -> [PathBuf; 2] {
    [
        config_dir.join("proxy.commands"),
        config_dir.join("custom.proxy.commands"),
    ]
}

fn valid_alias(a: &str) -> bool {
    !a.is_empty()
        && a.len() <= 64
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        && !a.starts_with('.')
}

fn valid_user(u: &str) -> bool {
    !u.is_empty()
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

fn parse_line(file: &Path, n: usize, line: &str) -> Result<Command, Broken> {
    let err = |path: Option<PathBuf>, msg: String| Broken {
        error: ConfigError::new(file, n, msg),
        path,
    };
    let Some((left, right)) = line.split_once('=') else {
        return Err(err(
            None,
            format!("`{line}`: expected ALIAS[:wrapper]=[user:]path"),
        ));
    };
    let (user, path) = match right.rsplit_once(':') {
        Some((u, p)) => (Some(u.trim()), p.trim()),
        None => (None, right.trim()),
    };
    let path_buf = PathBuf::from(path);
    let bad = |msg: String| err(Some(path_buf.clone()), msg);
    let (alias, wrapper) = match left.split_once(':') {
        Some((a, w)) => (a.trim(), Some(w.trim())),
        None => (left.trim(), None),
    };
    if !path.starts_with('/') || path.contains("/../") || path.ends_with("/..") {
        return Err(bad(format!(
            "`{path}`: expected the absolute path of the program"
        )));
    }
    if !valid_alias(alias) {
        return Err(bad(format!(
            "alias `{alias}`: expected letters, digits, `_`, `-` or `.`"
        )));
    }
    let install = match wrapper {
        None | Some("") => true,
        Some("noproceed") => false,
        Some(w) => {
            return Err(bad(format!(
                "wrapper `{w}`: expected none (the cage-proxy client) or `noproceed`"
            )))
        }
    };
    if let Some(u) = user {
        if !valid_user(u) {
            return Err(bad(format!("user `{u}`: expected a user name")));
        }
    }
    Ok(Command {
        alias: alias.to_string(),
        install,
        user: user.map(str::to_string),
        path: path_buf,
        origin: format!("{}:{n}", file.display()),
    })
}

/// Parses one file's text, appending to `out` (aliases must be unique
/// across all files: a repeated alias is an error on its later line).
pub fn parse_into(out: &mut Commands, file: &Path, text: &str) {
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(file, i + 1, line) {
            Ok(c) => {
                if let Some(prev) = out.commands.iter().find(|p| p.alias == c.alias) {
                    let msg = format!("alias `{}` is already defined at {}", c.alias, prev.origin);
                    out.broken.push(Broken {
                        error: ConfigError::new(file, i + 1, msg),
                        path: Some(c.path.clone()),
                    });
                } else {
                    out.commands.push(c);
                }
            }
            Err(b) => out.broken.push(b),
        }
    }
}

/// Reads both files (a missing file is empty).
pub fn load(config_dir: &Path) -> Commands {
    let mut out = Commands::default();
    for f in files(config_dir) {
        match std::fs::read_to_string(&f) {
            Ok(t) => parse_into(&mut out, &f, &t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => out.broken.push(Broken {
                error: ConfigError::new(&f, 0, e.to_string()),
                path: None,
            }),
        }
    }
    out
}

impl Commands {
    /// The command served for a client installed at `path`: the first
    /// alias of that path. Refused when a broken line names the path.
    pub fn lookup(&self, path: &Path) -> Result<&Command, String> {
        if let Some(b) = self.broken.iter().find(|b| b.path.as_deref() == Some(path)) {
            return Err(format!("{}: refused until this line is fixed", b.error));
        }
        self.commands
            .iter()
            .find(|c| c.path == path)
            .ok_or_else(|| format!("{}: not a proxied command", path.display()))
    }

    /// The paths that get the client in the skeleton (each once).
    pub fn client_paths(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = Vec::new();
        for c in &self.commands {
            if c.install && !v.contains(&c.path) {
                v.push(c.path.clone());
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Commands {
        let mut c = Commands::default();
        parse_into(&mut c, Path::new("p.commands"), t);
        c
    }

    #[test]
    fn cagefs_syntax() {
        let c = parse(
            "# x\nSENDMAIL=/usr/sbin/sendmail\n\nCRONTAB_LIST=root:/usr/bin/crontab\nCRONTAB_SAVE:noproceed=root:/usr/bin/crontab\n",
        );
        assert!(c.broken.is_empty(), "{:?}", c.broken);
        assert_eq!(c.commands.len(), 3);
        assert_eq!(c.commands[0].alias, "SENDMAIL");
        assert_eq!(c.commands[0].user, None);
        assert_eq!(c.commands[1].user.as_deref(), Some("root"));
        assert!(!c.commands[2].install);
        assert_eq!(c.commands[2].origin, "p.commands:5");
        assert_eq!(
            c.client_paths(),
            vec![
                PathBuf::from("/usr/sbin/sendmail"),
                PathBuf::from("/usr/bin/crontab")
            ]
        );
        assert_eq!(
            c.lookup(Path::new("/usr/bin/crontab")).unwrap().alias,
            "CRONTAB_LIST"
        );
    }

    #[test]
    fn broken_line_refuses_only_its_path() {
        let c = parse("PASSWD:fancy=/usr/bin/passwd\nCRONTAB=/usr/bin/crontab\nX=rel/path\nNOEQ\nCRONTAB=/bin/other\n");
        assert_eq!(c.commands.len(), 1);
        let e = c.lookup(Path::new("/usr/bin/passwd")).unwrap_err();
        assert_eq!(
            e,
            "p.commands:1: wrapper `fancy`: expected none (the cage-proxy client) or `noproceed`: refused until this line is fixed"
        );
        assert!(c.lookup(Path::new("/usr/bin/crontab")).is_ok());
        assert_eq!(
            c.broken[1].error.to_string(),
            "p.commands:3: `rel/path`: expected the absolute path of the program"
        );
        assert_eq!(
            c.broken[2].error.to_string(),
            "p.commands:4: `NOEQ`: expected ALIAS[:wrapper]=[user:]path"
        );
        assert_eq!(
            c.broken[3].error.to_string(),
            "p.commands:5: alias `CRONTAB` is already defined at p.commands:2"
        );
        assert!(c.lookup(Path::new("/bin/other")).is_err());
    }
}
