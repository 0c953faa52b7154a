//! Skeleton templates (`conf.d/*.cfg`, CageFS syntax) and black lists.
//!
//! A template file holds one or more sections:
//!
//! ```ini
//! [openssh-clients]
//! comment=OpenSSH Clients
//! paths=/etc/ssh/ssh_config, /usr/bin/ssh, /usr/bin/scp,
//!       /usr/lib/openssh/sftp-server
//! devices=/dev/ptmx
//! users=smmsp
//! groups=smmsp
//! packages=git
//! ```
//!
//! List values (`paths`, `devices`, `users`, `groups`, `packages`) are comma
//! separated, may continue on indented lines (as Python's ConfigParser,
//! which CageFS uses, allows) and may be repeated: repeated keys add to the
//! list. `packages=` is our extension: the files of installed Debian packages
//! (what `cage-admin pkg add` writes). `;`/`#` start a comment at the start of
//! a line or after whitespace.

use std::path::{Component, Path, PathBuf};

use crate::config::{read_optional, ConfigError};

/// One list item and the line it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub value: String,
    pub line: usize,
}

/// One `[section]` of a template file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Template {
    pub name: String,
    pub file: PathBuf,
    pub line: usize,
    pub comment: String,
    pub paths: Vec<Item>,
    pub devices: Vec<Item>,
    pub users: Vec<Item>,
    pub groups: Vec<Item>,
    pub packages: Vec<Item>,
}

const KEYS: &str = "comment, paths, devices, users, groups or packages";

fn strip_comment(s: &str) -> &str {
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if (c == b';' || c == b'#') && (i == 0 || b[i - 1].is_ascii_whitespace()) {
            return &s[..i];
        }
    }
    s
}

/// A valid account name (the portable set, as `useradd` accepts).
pub fn valid_account(name: &str) -> bool {
    let mut it = name.chars();
    matches!(it.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && name.len() <= 32
        && name.trim_end_matches('$').chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' || c == '.'
        })
}

/// A valid Debian package name (optionally `:arch`).
pub fn valid_package(name: &str) -> bool {
    let (pkg, arch) = match name.split_once(':') {
        Some((p, a)) => (p, Some(a)),
        None => (name, None),
    };
    let ok_pkg = pkg.len() >= 2
        && pkg.as_bytes()[0].is_ascii_alphanumeric()
        && pkg
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    let ok_arch = arch
        .is_none_or(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    ok_pkg && ok_arch
}

/// An absolute path without `..`; `Err` says what was expected.
fn check_path(v: &str) -> Result<(), String> {
    let p = Path::new(v);
    if !p.is_absolute() {
        return Err(format!("expected an absolute path, found `{v}`"));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("expected a path without `..`, found `{v}`"));
    }
    Ok(())
}

/// Parses one template file; returns its sections and every error found.
pub fn parse(file: &Path, text: &str) -> (Vec<Template>, Vec<ConfigError>) {
    let mut out: Vec<Template> = Vec::new();
    let mut errors = Vec::new();
    // The list key an indented line continues, if any.
    let mut last_key: Option<String> = None;
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let continued = raw.starts_with([' ', '\t']);
        let s = strip_comment(raw).trim();
        if s.is_empty() {
            // A blank line ends a continuation, as in ConfigParser.
            if raw.trim().is_empty() {
                last_key = None;
            }
            continue;
        }
        if let Some(rest) = s.strip_prefix('[') {
            last_key = None;
            let Some(name) = rest.strip_suffix(']') else {
                errors.push(ConfigError::new(
                    file,
                    line,
                    format!("expected `[name]`, found `{s}`"),
                ));
                continue;
            };
            let name = name.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.+".contains(c))
            {
                errors.push(ConfigError::new(
                    file,
                    line,
                    format!(
                        "expected a template name of letters, digits, `_-.+`, found `[{name}]`"
                    ),
                ));
                continue;
            }
            if let Some(prev) = out.iter().find(|t| t.name == name) {
                errors.push(ConfigError::new(
                    file,
                    line,
                    format!("duplicate section [{name}], first at line {}", prev.line),
                ));
                continue;
            }
            out.push(Template {
                name: name.to_string(),
                file: file.to_path_buf(),
                line,
                ..Template::default()
            });
            continue;
        }
        let (key, value) = match (continued, &last_key, s.split_once('=')) {
            (true, Some(k), _) => (k.clone(), s),
            (_, _, Some((k, v))) => (k.trim().to_string(), v.trim()),
            (_, _, None) => {
                errors.push(ConfigError::new(
                    file,
                    line,
                    format!("expected `key=value`, found `{s}`"),
                ));
                continue;
            }
        };
        let Some(t) = out.last_mut() else {
            errors.push(ConfigError::new(
                file,
                line,
                format!("expected a `[name]` line before `{key}=`"),
            ));
            continue;
        };
        last_key = None;
        let list = match key.as_str() {
            "comment" => {
                if !t.comment.is_empty() {
                    t.comment.push(' ');
                }
                t.comment.push_str(value);
                continue;
            }
            "paths" => &mut t.paths,
            "devices" => &mut t.devices,
            "users" => &mut t.users,
            "groups" => &mut t.groups,
            "packages" => &mut t.packages,
            "" => {
                errors.push(ConfigError::new(file, line, "expected a key before `=`"));
                continue;
            }
            other => {
                errors.push(ConfigError::new(
                    file,
                    line,
                    format!("unknown key `{other}`; expected {KEYS}"),
                ));
                continue;
            }
        };
        last_key = Some(key.clone());
        for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
            let bad = match key.as_str() {
                "paths" => check_path(v).err(),
                "devices" => check_path(v).err().or_else(|| {
                    (!v.starts_with("/dev/"))
                        .then(|| format!("expected a device under /dev/, found `{v}`"))
                }),
                "users" | "groups" => {
                    (!valid_account(v)).then(|| format!("expected an account name, found `{v}`"))
                }
                _ => (!valid_package(v))
                    .then(|| format!("expected a Debian package name, found `{v}`")),
            };
            match bad {
                Some(msg) => errors.push(ConfigError::new(file, line, msg)),
                None => list.push(Item {
                    value: v.to_string(),
                    line,
                }),
            }
        }
    }
    (out, errors)
}

/// Every `*.cfg` under `dir` (sorted by file name); a missing directory is
/// no templates. Section names must be unique across files.
pub fn load_dir(dir: &Path) -> Result<Vec<Template>, Vec<ConfigError>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "cfg"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(vec![ConfigError::new(dir, 0, format!("cannot read: {e}"))]),
    };
    files.sort();
    let mut all: Vec<Template> = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        let text = match read_optional(&f) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let (ts, errs) = parse(&f, &text);
        errors.extend(errs);
        for t in ts {
            if let Some(prev) = all.iter().find(|p| p.name == t.name) {
                errors.push(ConfigError::new(
                    &t.file,
                    t.line,
                    format!(
                        "duplicate template [{}], first in {}:{}",
                        t.name,
                        prev.file.display(),
                        prev.line
                    ),
                ));
                continue;
            }
            all.push(t);
        }
    }
    if errors.is_empty() {
        Ok(all)
    } else {
        Err(errors)
    }
}

/// Paths never put in the skeleton: absolute paths or globs, one a line; a
/// directory excludes everything below it.
#[derive(Clone, Debug, Default)]
pub struct BlackList {
    patterns: Vec<Vec<String>>,
}

impl BlackList {
    pub fn parse(file: &Path, text: &str) -> (BlackList, Vec<ConfigError>) {
        let mut bl = BlackList::default();
        let mut errors = Vec::new();
        for (idx, raw) in text.lines().enumerate() {
            let s = raw.trim();
            if s.is_empty() || s.starts_with('#') || s.starts_with(';') {
                continue;
            }
            match check_path(s) {
                Ok(()) => bl.add(s),
                Err(msg) => errors.push(ConfigError::new(file, idx + 1, msg)),
            }
        }
        (bl, errors)
    }

    /// `black.list` and `custom.black.list` of a config directory.
    pub fn load(files: &[PathBuf]) -> Result<BlackList, Vec<ConfigError>> {
        let mut bl = BlackList::default();
        let mut errors = Vec::new();
        for f in files {
            match read_optional(f) {
                Ok(Some(text)) => {
                    let (b, errs) = BlackList::parse(f, &text);
                    bl.patterns.extend(b.patterns);
                    errors.extend(errs);
                }
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(bl)
        } else {
            Err(errors)
        }
    }

    pub fn add(&mut self, pattern: &str) {
        self.patterns.push(components(Path::new(pattern)));
    }

    /// Whether `path` (absolute) is, or is below, a listed path.
    pub fn contains(&self, path: &Path) -> bool {
        let comps = components(path);
        self.patterns.iter().any(|p| {
            p.len() <= comps.len()
                && p.iter()
                    .zip(&comps)
                    .all(|(pat, c)| glob_match(pat.as_bytes(), c.as_bytes()))
        })
    }
}

fn components(p: &Path) -> Vec<String> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

/// Whether a path component has glob characters.
pub fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Shell-style matching of one path component: `*`, `?`, `[abc]`, `[a-z]`,
/// `[!x]`. A leading `.` is matched only by a literal `.`.
pub fn glob_match(pat: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pat.first() != Some(&b'.') {
        return false;
    }
    glob_inner(pat, name)
}

fn glob_inner(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // Backtracking point for the last `*`.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pat.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class_match(&pat[p..], name[n]).map(|len| p + len),
            Some(&c) => (c == name[n]).then_some(p + 1),
            None => None,
        };
        match step {
            Some(np) => {
                p = np;
                n += 1;
            }
            None => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class at the start of `pat` (`[...]`); returns the
/// class length when it matches. An unterminated `[` matches itself.
fn class_match(pat: &[u8], c: u8) -> Option<usize> {
    let mut i = 1;
    let negate = matches!(pat.get(1), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    while i < pat.len() && (pat[i] != b']' || first) {
        first = false;
        if i + 2 < pat.len() && pat[i + 1] == b'-' && pat[i + 2] != b']' {
            found |= pat[i] <= c && c <= pat[i + 2];
            i += 3;
        } else {
            found |= pat[i] == c;
            i += 1;
        }
    }
    if i >= pat.len() {
        return (c == b'[').then_some(1);
    }
    (found != negate).then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(items: &[Item]) -> Vec<&str> {
        items.iter().map(|i| i.value.as_str()).collect()
    }

    #[test]
    fn parses_the_cagefs_examples() {
        let text = "[openssh-clients]\n\ncomment=OpenSSH Clients\n\npaths=/etc/ssh/ssh_config, /bin/hostname, /usr/bin/scp,\n  /usr/bin/sftp\n   /usr/bin/ssh\n\ndevices=/dev/ptmx\n\n[mail]\ncomment=Mail tools\npaths=/bin/mail\npaths=/etc/mail ; more\nusers=smmsp\ngroups=smmsp, mail\npackages=git, libc6:amd64\n";
        let (ts, errs) = parse(Path::new("a.cfg"), text);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(ts.len(), 2);
        assert_eq!(ts[0].comment, "OpenSSH Clients");
        assert_eq!(
            values(&ts[0].paths),
            [
                "/etc/ssh/ssh_config",
                "/bin/hostname",
                "/usr/bin/scp",
                "/usr/bin/sftp",
                "/usr/bin/ssh"
            ]
        );
        assert_eq!(ts[0].paths[3].line, 6);
        assert_eq!(values(&ts[0].devices), ["/dev/ptmx"]);
        assert_eq!(values(&ts[1].paths), ["/bin/mail", "/etc/mail"]);
        assert_eq!(values(&ts[1].users), ["smmsp"]);
        assert_eq!(values(&ts[1].groups), ["smmsp", "mail"]);
        assert_eq!(values(&ts[1].packages), ["git", "libc6:amd64"]);
    }

    #[test]
    fn reports_every_bad_line() {
        let text = "paths=/x\n[a b]\n[ok]\nnovalue\n=x\nfiles=/y\npaths=relative, /fine, /a/../b\ndevices=/etc/x\nusers=Bad User\n[ok]\n[broken\npackages=-x\n";
        let (ts, errs) = parse(Path::new("/etc/cage/conf.d/x.cfg"), text);
        let shown: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            [
                "/etc/cage/conf.d/x.cfg:1: expected a `[name]` line before `paths=`",
                "/etc/cage/conf.d/x.cfg:2: expected a template name of letters, digits, `_-.+`, found `[a b]`",
                "/etc/cage/conf.d/x.cfg:4: expected `key=value`, found `novalue`",
                "/etc/cage/conf.d/x.cfg:5: expected a key before `=`",
                "/etc/cage/conf.d/x.cfg:6: unknown key `files`; expected comment, paths, devices, users, groups or packages",
                "/etc/cage/conf.d/x.cfg:7: expected an absolute path, found `relative`",
                "/etc/cage/conf.d/x.cfg:7: expected a path without `..`, found `/a/../b`",
                "/etc/cage/conf.d/x.cfg:8: expected a device under /dev/, found `/etc/x`",
                "/etc/cage/conf.d/x.cfg:9: expected an account name, found `Bad User`",
                "/etc/cage/conf.d/x.cfg:10: duplicate section [ok], first at line 3",
                "/etc/cage/conf.d/x.cfg:11: expected `[name]`, found `[broken`",
                "/etc/cage/conf.d/x.cfg:12: expected a Debian package name, found `-x`",
            ]
        );
        assert_eq!(values(&ts[0].paths), ["/fine"]);
    }

    #[test]
    fn load_dir_checks_names_across_files() {
        let dir = std::env::temp_dir().join(format!("cage-tpl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.cfg"), "[one]\nusers=u1\n").unwrap();
        std::fs::write(dir.join("b.cfg"), "[two]\nusers=u2\n[one]\n").unwrap();
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
        let errs = load_dir(&dir).unwrap_err();
        assert_eq!(errs.len(), 1);
        let want = format!(
            "b.cfg:3: duplicate template [one], first in {}:1",
            dir.join("a.cfg").display()
        );
        assert!(errs[0].to_string().ends_with(&want), "{}", errs[0]);
        std::fs::remove_file(dir.join("b.cfg")).unwrap();
        let ts = load_dir(&dir).unwrap();
        assert_eq!(ts.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(load_dir(&dir).unwrap().is_empty());
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"*", b"abc"));
        assert!(!glob_match(b"*", b".hidden"));
        assert!(glob_match(b".*", b".hidden"));
        assert!(glob_match(b"ssh_host_*_key", b"ssh_host_rsa_key"));
        assert!(!glob_match(b"ssh_host_*_key", b"ssh_host_rsa_key.pub"));
        assert!(glob_match(b"php[0-9]*", b"php8.2"));
        assert!(!glob_match(b"php[!0-9]", b"php8"));
        assert!(glob_match(b"a?c", b"abc"));
        assert!(glob_match(b"a*b*c", b"aXXbYYc"));
        assert!(!glob_match(b"a*b*c", b"aXXbYY"));
        assert!(glob_match(b"[", b"["));
    }

    #[test]
    fn black_list() {
        let (bl, errs) = BlackList::parse(
            Path::new("black.list"),
            "# c\n/etc/shadow\n/etc/ssh/ssh_host_*_key\n/etc/apache2\nrelative\n",
        );
        assert_eq!(
            errs[0].to_string(),
            "black.list:5: expected an absolute path, found `relative`"
        );
        assert!(bl.contains(Path::new("/etc/shadow")));
        assert!(!bl.contains(Path::new("/etc/shadow-")));
        assert!(bl.contains(Path::new("/etc/apache2/sites-enabled/x.conf")));
        assert!(bl.contains(Path::new("/etc/ssh/ssh_host_ed25519_key")));
        assert!(!bl.contains(Path::new("/etc/ssh/ssh_host_ed25519_key.pub")));
        assert!(!bl.contains(Path::new("/etc")));
    }

    #[test]
    fn names() {
        assert!(valid_account("www-data"));
        assert!(valid_account("_apt"));
        assert!(!valid_account("Root"));
        assert!(!valid_account("a b"));
        assert!(valid_package("libc6:amd64"));
        assert!(valid_package("g++"));
        assert!(!valid_package("x"));
        assert!(!valid_package("../etc"));
    }
}
