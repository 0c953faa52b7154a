//! Resource limits: the values (`150%`, `64M`), the `[cgroup]` defaults of
//! `cage.ini` and the per-user and per-group overrides of `limits.conf`
//! (`alice memory=2G pids=400`, `@resellers cpu=200%`).

use std::path::{Path, PathBuf};

use crate::config::ConfigError;

/// One limit key. The order is the order of output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Key {
    Cpu,
    Memory,
    Swap,
    Pids,
    IoRead,
    IoWrite,
    Iops,
}

pub const KEYS: [Key; 7] = [
    Key::Cpu,
    Key::Memory,
    Key::Swap,
    Key::Pids,
    Key::IoRead,
    Key::IoWrite,
    Key::Iops,
];

impl Key {
    pub fn name(self) -> &'static str {
        match self {
            Key::Cpu => "cpu",
            Key::Memory => "memory",
            Key::Swap => "swap",
            Key::Pids => "pids",
            Key::IoRead => "io_read",
            Key::IoWrite => "io_write",
            Key::Iops => "iops",
        }
    }

    pub fn from_name(s: &str) -> Option<Key> {
        KEYS.iter().copied().find(|k| k.name() == s)
    }

    /// What a value of this key looks like (for error messages).
    pub fn expected(self) -> &'static str {
        match self {
            Key::Cpu => "a percentage of one CPU from 1% to 100000%, e.g. `150%`",
            Key::Memory | Key::Swap => {
                "a size in bytes with an optional K, M or G suffix, e.g. `512M`"
            }
            Key::Pids => "a number of processes from 1 to 4194304",
            Key::IoRead | Key::IoWrite => "bytes per second with an optional K, M or G suffix",
            Key::Iops => "a number of I/O operations per second",
        }
    }

    /// Parses a value; `None` when malformed.
    pub fn parse(self, v: &str) -> Option<u64> {
        match self {
            Key::Cpu => {
                let n: u64 = v.strip_suffix('%').unwrap_or(v).parse().ok()?;
                (1..=100_000).contains(&n).then_some(n)
            }
            Key::Memory | Key::Swap | Key::IoRead | Key::IoWrite => {
                let n = parse_size(v)?;
                (n > 0 || self == Key::Swap).then_some(n)
            }
            Key::Pids => {
                let n: u64 = v.parse().ok()?;
                (1..=4_194_304).contains(&n).then_some(n)
            }
            Key::Iops => {
                let n: u64 = v.parse().ok()?;
                (n > 0).then_some(n)
            }
        }
    }

    /// The value as written in the configuration.
    pub fn show(self, n: u64) -> String {
        match self {
            Key::Cpu => format!("{n}%"),
            Key::Memory | Key::Swap | Key::IoRead | Key::IoWrite => show_size(n),
            Key::Pids | Key::Iops => n.to_string(),
        }
    }
}

/// `4096`, `64K`, `64M`, `2G`, `1T` (powers of 1024).
pub fn parse_size(v: &str) -> Option<u64> {
    let (num, mult) = match v.as_bytes().last()? {
        b'k' | b'K' => (&v[..v.len() - 1], 1u64 << 10),
        b'm' | b'M' => (&v[..v.len() - 1], 1 << 20),
        b'g' | b'G' => (&v[..v.len() - 1], 1 << 30),
        b't' | b'T' => (&v[..v.len() - 1], 1 << 40),
        _ => (v, 1),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn show_size(n: u64) -> String {
    for (s, m) in [
        ("T", 1u64 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ] {
        if n >= m && n.is_multiple_of(m) {
            return format!("{}{s}", n / m);
        }
    }
    n.to_string()
}

/// A set of limits; `None` means not limited.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    pub cpu: Option<u64>,
    pub memory: Option<u64>,
    pub swap: Option<u64>,
    pub pids: Option<u64>,
    pub io_read: Option<u64>,
    pub io_write: Option<u64>,
    pub iops: Option<u64>,
}

impl Limits {
    pub fn get(&self, k: Key) -> Option<u64> {
        match k {
            Key::Cpu => self.cpu,
            Key::Memory => self.memory,
            Key::Swap => self.swap,
            Key::Pids => self.pids,
            Key::IoRead => self.io_read,
            Key::IoWrite => self.io_write,
            Key::Iops => self.iops,
        }
    }

    pub fn set(&mut self, k: Key, v: Option<u64>) {
        let slot = match k {
            Key::Cpu => &mut self.cpu,
            Key::Memory => &mut self.memory,
            Key::Swap => &mut self.swap,
            Key::Pids => &mut self.pids,
            Key::IoRead => &mut self.io_read,
            Key::IoWrite => &mut self.io_write,
            Key::Iops => &mut self.iops,
        };
        *slot = v;
    }

    /// `memory=2G pids=400` (only the limits that are set).
    pub fn show(&self) -> String {
        KEYS.iter()
            .filter_map(|&k| self.get(k).map(|v| format!("{}={}", k.name(), k.show(v))))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Who a `limits.conf` line is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    User(String),
    Group(String),
}

/// One line of `limits.conf`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub line: usize,
    pub target: Target,
    pub set: Vec<(Key, u64)>,
}

/// `limits.conf`: every well-formed line, and one error per malformed one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LimitsFile {
    pub path: PathBuf,
    pub rules: Vec<Rule>,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$'))
}

impl LimitsFile {
    /// Parses the whole file. Malformed lines are left out of the result
    /// and reported, so the caller can go on with the lines that are good
    /// (or the defaults) and say why.
    pub fn parse(path: &Path, text: &str) -> (LimitsFile, Vec<ConfigError>) {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let s = raw.split('#').next().unwrap_or("").trim();
            if s.is_empty() {
                continue;
            }
            let mut words = s.split_whitespace();
            let who = words.next().unwrap_or_default();
            let target = match who.strip_prefix('@') {
                Some(g) if valid_name(g) => Target::Group(g.to_string()),
                None if valid_name(who) => Target::User(who.to_string()),
                _ => {
                    errors.push(ConfigError::new(
                        path,
                        line,
                        format!("`{who}`: expected a user name or @group"),
                    ));
                    continue;
                }
            };
            let mut set = Vec::new();
            let mut bad = None;
            for w in words {
                let Some((k, v)) = w.split_once('=') else {
                    bad = Some(format!("`{w}`: expected KEY=VALUE"));
                    break;
                };
                let Some(key) = Key::from_name(k) else {
                    bad = Some(format!(
                        "unknown limit `{k}`; expected cpu, memory, swap, pids, io_read, io_write or iops"
                    ));
                    break;
                };
                match key.parse(v) {
                    Some(n) => set.push((key, n)),
                    None => {
                        bad = Some(format!("{k}={v}: expected {}", key.expected()));
                        break;
                    }
                }
            }
            if bad.is_none() && set.is_empty() {
                bad = Some(format!(
                    "`{who}` sets no limit; expected KEY=VALUE after it"
                ));
            }
            match bad {
                Some(msg) => errors.push(ConfigError::new(path, line, msg)),
                None => rules.push(Rule { line, target, set }),
            }
        }
        (
            LimitsFile {
                path: path.to_path_buf(),
                rules,
            },
            errors,
        )
    }

    /// Reads `path` (absent: no rules). An unreadable file is one error
    /// and no rules.
    pub fn load(path: &Path) -> (LimitsFile, Vec<ConfigError>) {
        match crate::config::read_optional(path) {
            Ok(Some(text)) => LimitsFile::parse(path, &text),
            Ok(None) => (
                LimitsFile {
                    path: path.to_path_buf(),
                    rules: Vec::new(),
                },
                Vec::new(),
            ),
            Err(e) => (
                LimitsFile {
                    path: path.to_path_buf(),
                    rules: Vec::new(),
                },
                vec![e],
            ),
        }
    }
}

/// Where an effective limit came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Source {
    /// `cage.ini:12`, `limits.conf:3 (@resellers)`, or `unlimited`.
    pub from: String,
}

/// A user's effective limits and, per key, where each came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Effective {
    pub limits: Limits,
    pub sources: Vec<(Key, String)>,
}

/// Resolves the limits of `user` (member of `groups`): the `cage.ini`
/// defaults, then group lines, then user lines, each in file order (a
/// later line wins over an earlier one of the same kind; a user line
/// always wins over a group line).
pub fn effective(
    defaults: &Limits,
    default_lines: &[(Key, usize)],
    ini: &Path,
    file: &LimitsFile,
    user: &str,
    groups: &[String],
) -> Effective {
    let mut limits = defaults.clone();
    let mut src: Vec<(Key, String)> = KEYS
        .iter()
        .map(|&k| {
            let from = match default_lines.iter().find(|(dk, _)| *dk == k) {
                Some((_, l)) if defaults.get(k).is_some() => format!("{}:{l}", ini.display()),
                _ => "unlimited".to_string(),
            };
            (k, from)
        })
        .collect();
    let name = file.path.display();
    for pass_user in [false, true] {
        for r in &file.rules {
            let (matches, shown) = match &r.target {
                Target::Group(g) if !pass_user => {
                    (groups.iter().any(|x| x == g), format!(" (@{g})"))
                }
                Target::User(u) if pass_user => (u == user, String::new()),
                _ => (false, String::new()),
            };
            if !matches {
                continue;
            }
            for &(k, v) in &r.set {
                limits.set(k, Some(v));
                if let Some(s) = src.iter_mut().find(|(sk, _)| *sk == k) {
                    s.1 = format!("{name}:{}{shown}", r.line);
                }
            }
        }
    }
    Effective {
        limits,
        sources: src,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(Key::Cpu.parse("150%"), Some(150));
        assert_eq!(Key::Cpu.parse("50"), Some(50));
        assert_eq!(Key::Cpu.parse("0%"), None);
        assert_eq!(Key::Memory.parse("64M"), Some(64 << 20));
        assert_eq!(Key::Memory.parse("2g"), Some(2 << 30));
        assert_eq!(Key::Memory.parse("4096"), Some(4096));
        assert_eq!(Key::Memory.parse("M"), None);
        assert_eq!(Key::Memory.parse("-1"), None);
        assert_eq!(Key::Swap.parse("0"), Some(0));
        assert_eq!(Key::Pids.parse("0"), None);
        assert_eq!(Key::Memory.show(64 << 20), "64M");
        assert_eq!(Key::Cpu.show(200), "200%");
    }

    #[test]
    fn limits_file_lines_and_errors() {
        let t = "# comment\nalice memory=2G pids=400\n@resellers cpu=200%\nbob pids=lots\n\ncarol\ndave color=red\n@ cpu=1%\nerin memory=1G # trailing\n";
        let (f, errs) = LimitsFile::parse(Path::new("/etc/cage/limits.conf"), t);
        let errs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errs,
            vec![
                "/etc/cage/limits.conf:4: pids=lots: expected a number of processes from 1 to 4194304",
                "/etc/cage/limits.conf:6: `carol` sets no limit; expected KEY=VALUE after it",
                "/etc/cage/limits.conf:7: unknown limit `color`; expected cpu, memory, swap, pids, io_read, io_write or iops",
                "/etc/cage/limits.conf:8: `@`: expected a user name or @group",
            ]
        );
        assert_eq!(f.rules.len(), 3);
        assert_eq!(
            f.rules[0],
            Rule {
                line: 2,
                target: Target::User("alice".into()),
                set: vec![(Key::Memory, 2 << 30), (Key::Pids, 400)],
            }
        );
        assert_eq!(f.rules[1].target, Target::Group("resellers".into()));
        assert_eq!(f.rules[2].line, 9);
    }

    #[test]
    fn user_beats_group_beats_default() {
        let (f, _) = LimitsFile::parse(
            Path::new("l.conf"),
            "alice pids=400\n@resellers cpu=200% pids=100\n",
        );
        let defaults = Limits {
            cpu: Some(100),
            memory: Some(1 << 30),
            ..Limits::default()
        };
        let e = effective(
            &defaults,
            &[(Key::Cpu, 3), (Key::Memory, 4)],
            Path::new("c.ini"),
            &f,
            "alice",
            &["resellers".into()],
        );
        assert_eq!(e.limits.show(), "cpu=200% memory=1G pids=400");
        let from = |k: Key| e.sources.iter().find(|s| s.0 == k).unwrap().1.clone();
        assert_eq!(from(Key::Cpu), "l.conf:2 (@resellers)");
        assert_eq!(from(Key::Memory), "c.ini:4");
        assert_eq!(from(Key::Pids), "l.conf:1");
        assert_eq!(from(Key::Swap), "unlimited");
    }
}
