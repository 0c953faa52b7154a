//! `cage.ini`: main settings.

use std::path::{Path, PathBuf};

use super::{ini, load_or_default, ConfigError};
use crate::paths;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Every user at or above `min_uid` is caged unless disabled.
    EnableAll,
    /// Only users with an enabled marker are caged.
    DisableAll,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::EnableAll => "enable-all",
            Mode::DisableAll => "disable-all",
        }
    }
}

/// The `hidepid=` value of the cage's `/proc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hidepid {
    Off,
    NoAccess,
    Invisible,
    Ptraceable,
}

impl Hidepid {
    pub fn as_str(self) -> &'static str {
        match self {
            Hidepid::Off => "off",
            Hidepid::NoAccess => "noaccess",
            Hidepid::Invisible => "invisible",
            Hidepid::Ptraceable => "ptraceable",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub min_uid: u32,
    pub mode: Mode,
    pub skeleton: PathBuf,
    pub state_dir: PathBuf,
    pub proc: Hidepid,
    pub persist: bool,
    /// Allow caged processes to create user namespaces (default: denied).
    pub userns: bool,
    /// Landlock-scope entries so they cannot reach abstract unix sockets
    /// made outside the cage (where the kernel supports it).
    pub landlock: bool,
    /// Pseudo-terminals one cage may hold at once (its devpts `max=`), so
    /// one cage cannot use up the host's ptys for every other.
    pub max_ptys: u32,
    /// The cage init program (`cage-init`), exec'd as pid 1 of every cage.
    pub init_program: PathBuf,
    /// Live generations one user may have (the current one and old ones
    /// still holding processes); past it the oldest are ended.
    pub max_generations: u32,
    /// The proxyexec client (`cage-proxy`), copied into the skeleton at
    /// the path of every proxied command.
    pub proxy_client: PathBuf,
    /// `[cgroup]`: resource limits (see [`crate::cgroup`]).
    pub cgroup: crate::cgroup::CgroupSettings,
    /// Seconds a generation must have lived before a `~/.cage/reload`
    /// request rebuilds it (0: no limit); earlier requests wait.
    pub reload_interval: u64,
}

/// The default `max_ptys`: plenty for shells, screen and tmux sessions.
pub const DEFAULT_MAX_PTYS: u32 = 64;

/// The default `reload_interval` (seconds).
pub const DEFAULT_RELOAD_INTERVAL: u64 = 30;

/// `UID_MIN` from `/etc/login.defs`, 1000 when absent.
pub fn login_defs_uid_min() -> u32 {
    login_defs_uid_min_from(&std::fs::read_to_string("/etc/login.defs").unwrap_or_default())
}

fn login_defs_uid_min_from(text: &str) -> u32 {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            match (it.next(), it.next()) {
                (Some("UID_MIN"), Some(v)) => v.parse().ok(),
                _ => None,
            }
        })
        .next_back()
        .unwrap_or(1000)
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_uid: login_defs_uid_min(),
            ..Settings::without_login_defs()
        }
    }
}

impl Settings {
    /// The defaults, with `min_uid` 1000 instead of reading /etc/login.defs.
    fn without_login_defs() -> Self {
        Settings {
            min_uid: 1000,
            mode: Mode::DisableAll,
            skeleton: PathBuf::from(paths::DEFAULT_SKELETON),
            state_dir: PathBuf::from(paths::DEFAULT_STATE_DIR),
            proc: Hidepid::Invisible,
            persist: true,
            userns: false,
            landlock: true,
            max_ptys: DEFAULT_MAX_PTYS,
            init_program: PathBuf::from(paths::DEFAULT_INIT_PROGRAM),
            max_generations: 3,
            proxy_client: PathBuf::from(crate::proxy::DEFAULT_CLIENT),
            cgroup: crate::cgroup::CgroupSettings::default(),
            reload_interval: DEFAULT_RELOAD_INTERVAL,
        }
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Some(true),
        "no" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

fn absolute(v: &str) -> Option<PathBuf> {
    let p = Path::new(v);
    (p.is_absolute()
        && !p
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir)))
    .then(|| p.to_path_buf())
}

impl Settings {
    /// The `min_uid` a broken cage.ini still states without doubt, so that
    /// its errors refuse only users it can concern (a cron job of
    /// `www-data` still runs): the file must be readable and free of INI
    /// syntax errors, and hold either exactly one valid `min_uid` line, in
    /// `[cage]`, or none at all (then the default, `UID_MIN` of
    /// /etc/login.defs). Anything else (a malformed or repeated `min_uid`,
    /// one in another section, a line that is no `key = value`) gives
    /// `None`: every non-root user is then refused.
    pub fn min_uid_despite_errors(path: &Path) -> Option<u32> {
        let text = match super::read_optional(path) {
            Ok(Some(t)) => t,
            _ => return None,
        };
        Self::min_uid_despite_errors_in(path, &text)
    }

    fn min_uid_despite_errors_in(path: &Path, text: &str) -> Option<u32> {
        let (sections, errors) = ini::parse(path, text);
        if !errors.is_empty() {
            return None;
        }
        let lines: Vec<(&str, &str)> = sections
            .iter()
            .flat_map(|s| s.entries.iter().map(move |e| (s.name.as_str(), e)))
            .filter(|(_, e)| e.key == "min_uid")
            .map(|(sec, e)| (sec, e.value.as_str()))
            .collect();
        match lines.as_slice() {
            [] => Some(login_defs_uid_min()),
            [("cage", v)] => v.parse::<u32>().ok().filter(|&m| m > 0),
            _ => None,
        }
    }

    pub fn load(path: &Path) -> Result<Settings, Vec<ConfigError>> {
        load_or_default(path, Settings::parse)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Settings, Vec<ConfigError>> {
        let (sections, mut errors) = ini::parse(path, text);
        // /etc/login.defs is read only when cage.ini does not set min_uid.
        let mut s = Settings {
            min_uid: 0,
            ..Settings::without_login_defs()
        };
        for sec in &sections {
            if sec.name == "cgroup" {
                parse_cgroup(path, sec, &mut s.cgroup, &mut errors);
                continue;
            }
            if sec.name != "cage" {
                let why = match sec.name.as_str() {
                    "tmpwatch" => " (not supported by this version)",
                    _ => "",
                };
                errors.push(ConfigError::new(
                    path,
                    sec.line,
                    format!(
                        "unknown section [{}]{why}; expected [cage] or [cgroup]",
                        sec.name
                    ),
                ));
                continue;
            }
            for e in &sec.entries {
                let bad = |what: &str| {
                    ConfigError::new(
                        path,
                        e.line,
                        format!("{} = {}: expected {what}", e.key, e.value),
                    )
                };
                match e.key.as_str() {
                    "min_uid" => match e.value.parse::<u32>() {
                        Ok(v) if v > 0 => s.min_uid = v,
                        _ => errors.push(bad("a uid greater than 0")),
                    },
                    "mode" => match e.value.as_str() {
                        "enable-all" => s.mode = Mode::EnableAll,
                        "disable-all" => s.mode = Mode::DisableAll,
                        _ => errors.push(bad("`enable-all` or `disable-all`")),
                    },
                    "skeleton" => match absolute(&e.value) {
                        Some(p) => s.skeleton = p,
                        None => errors.push(bad("an absolute path")),
                    },
                    "state_dir" => match absolute(&e.value) {
                        Some(p) => s.state_dir = p,
                        None => errors.push(bad("an absolute path")),
                    },
                    "proc" => match e.value.as_str() {
                        "invisible" | "2" => s.proc = Hidepid::Invisible,
                        "noaccess" | "1" => s.proc = Hidepid::NoAccess,
                        "ptraceable" | "4" => s.proc = Hidepid::Ptraceable,
                        "off" | "0" => s.proc = Hidepid::Off,
                        _ => errors.push(bad("`invisible`, `noaccess`, `ptraceable` or `off`")),
                    },
                    "persist" => match parse_bool(&e.value) {
                        Some(b) => s.persist = b,
                        None => errors.push(bad("`yes` or `no`")),
                    },
                    "userns" => match e.value.as_str() {
                        "allow" => s.userns = true,
                        "deny" => s.userns = false,
                        _ => errors.push(bad("`allow` or `deny`")),
                    },
                    "landlock" => match parse_bool(&e.value) {
                        Some(b) => s.landlock = b,
                        None => errors.push(bad("`yes` or `no`")),
                    },
                    "max_ptys" => match e.value.parse::<u32>() {
                        Ok(v) if (1..=4096).contains(&v) => s.max_ptys = v,
                        _ => errors.push(bad("a number of ptys from 1 to 4096")),
                    },
                    "init_program" => match absolute(&e.value) {
                        Some(p) => s.init_program = p,
                        None => errors.push(bad("an absolute path")),
                    },
                    "max_generations" => match e.value.parse::<u32>() {
                        Ok(v) if v > 0 => s.max_generations = v,
                        _ => errors.push(bad("a number of generations greater than 0")),
                    },
                    "proxy_client" => match absolute(&e.value) {
                        Some(p) => s.proxy_client = p,
                        None => errors.push(bad("an absolute path")),
                    },
                    "reload_interval" => match e.value.parse::<u64>() {
                        Ok(v) if v <= 86400 => s.reload_interval = v,
                        _ => errors.push(bad("a number of seconds from 0 to 86400")),
                    },
                    other => errors.push(ConfigError::new(
                        path,
                        e.line,
                        format!("unknown key `{other}` in [cage]; expected min_uid, mode, skeleton, state_dir, proc, persist, userns, landlock, max_ptys, init_program, max_generations, proxy_client or reload_interval"),
                    )),
                }
            }
        }
        if s.min_uid == 0 {
            s.min_uid = login_defs_uid_min();
        }
        if errors.is_empty() {
            Ok(s)
        } else {
            errors.sort_by_key(|e| e.line);
            Err(errors)
        }
    }
}

/// `[cgroup]`: `enable`, `controllers`, `base` and the default limits.
fn parse_cgroup(
    path: &Path,
    sec: &ini::Section,
    c: &mut crate::cgroup::CgroupSettings,
    errors: &mut Vec<ConfigError>,
) {
    use crate::cgroup::{layout, Controller, Key};
    for e in &sec.entries {
        let bad = |what: &str| {
            ConfigError::new(
                path,
                e.line,
                format!("{} = {}: expected {what}", e.key, e.value),
            )
        };
        match e.key.as_str() {
            "enable" => match parse_bool(&e.value) {
                Some(b) => c.enable = b,
                None => errors.push(bad("`yes` or `no`")),
            },
            "controllers" => {
                let list: Option<Vec<Controller>> = e
                    .value
                    .split(|ch: char| ch == ',' || ch.is_whitespace())
                    .filter(|w| !w.is_empty())
                    .map(Controller::from_name)
                    .collect();
                match list {
                    Some(l) if !l.is_empty() => c.controllers = Some(l),
                    _ => errors.push(bad("a comma-separated list of cpu, memory, pids, io")),
                }
            }
            "base" => match layout::check_base(&e.value) {
                Ok(()) => c.base = Some(e.value.trim_end_matches('/').to_string()).filter(|b| !b.is_empty()).or(Some("/".into())),
                Err(_) => errors.push(bad("an absolute cgroup path without `.` or `..`, e.g. /cage")),
            },
            k => match Key::from_name(k) {
                Some(key) => match key.parse(&e.value) {
                    Some(v) => {
                        c.defaults.set(key, Some(v));
                        c.lines.retain(|(x, _)| *x != key);
                        c.lines.push((key, e.line));
                    }
                    None => errors.push(bad(key.expected())),
                },
                None => errors.push(ConfigError::new(
                    path,
                    e.line,
                    format!("unknown key `{k}` in [cgroup]; expected enable, controllers, base, cpu, memory, swap, pids, io_read, io_write or iops"),
                )),
            },
        }
    }
}

/// Sets `key = value` in section `[cage]` of `text`, keeping every other
/// line (and comments) as they are. Returns the new text.
pub fn set_key(text: &str, key: &str, value: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut in_cage = false;
    let mut cage_seen = false;
    let mut done = false;
    for raw in text.lines() {
        let t = raw.trim();
        if t.starts_with('[') {
            if in_cage && !done {
                out.push(format!("{key} = {value}"));
                done = true;
            }
            in_cage = t.trim_start_matches('[').trim_end_matches(']').trim() == "cage";
            cage_seen |= in_cage;
        } else if in_cage && !done {
            if let Some((k, _)) = t.split_once('=') {
                if k.trim() == key && !t.starts_with(';') && !t.starts_with('#') {
                    out.push(format!("{key} = {value}"));
                    done = true;
                    continue;
                }
            }
        }
        out.push(raw.to_string());
    }
    if !done {
        if !cage_seen {
            out.push("[cage]".to_string());
        }
        out.push(format!("{key} = {value}"));
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_uid_despite_errors() {
        let p = Path::new("/etc/cage/cage.ini");
        let f = |t: &str| Settings::min_uid_despite_errors_in(p, t);
        assert_eq!(f("[cage]\nmin_uid = 500\nbogus = 1\n"), Some(500));
        assert_eq!(f("[cage]\nmode = nonsense\n"), Some(login_defs_uid_min()));
        assert_eq!(f("[cage]\nmin_uid = 0\nbogus = 1\n"), None);
        assert_eq!(f("[cage]\nmin_uid = x\n"), None);
        assert_eq!(f("[cage]\nmin_uid = 500\nmin_uid = 600\n"), None);
        assert_eq!(f("[Cage]\nmin_uid = 500\n"), None);
        assert_eq!(f("[cage]\nmin_uid 500\n"), None);
    }

    #[test]
    fn defaults_when_empty() {
        let s = Settings::parse(Path::new("c.ini"), "").unwrap();
        assert_eq!(s.mode, Mode::DisableAll);
        assert_eq!(s.proc, Hidepid::Invisible);
        assert!(s.persist);
        assert_eq!(s.skeleton, PathBuf::from("/usr/share/cage-skeleton"));
        assert_eq!(s.init_program, PathBuf::from("/usr/lib/cage/cage-init"));
        assert_eq!(s.max_generations, 3);
    }

    #[test]
    fn max_generations_is_at_least_one() {
        let errs: Vec<String> = Settings::parse(
            Path::new("c.ini"),
            "[cage]\nmax_generations = 0\ninit_program = cage-init\n",
        )
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect();
        assert_eq!(
            errs,
            vec![
                "c.ini:2: max_generations = 0: expected a number of generations greater than 0",
                "c.ini:3: init_program = cage-init: expected an absolute path",
            ]
        );
    }

    #[test]
    fn parses_all_keys() {
        let t = "[cage]\nmin_uid = 500\nmode = enable-all\nskeleton = /srv/skel\nstate_dir = /srv/state\nproc = ptraceable\npersist = no\nuserns = allow\nlandlock = no\nmax_ptys = 16\ninit_program = /opt/cage-init\nmax_generations = 5\nreload_interval = 0\n";
        let s = Settings::parse(Path::new("c.ini"), t).unwrap();
        assert_eq!(
            s,
            Settings {
                min_uid: 500,
                mode: Mode::EnableAll,
                skeleton: "/srv/skel".into(),
                state_dir: "/srv/state".into(),
                proc: Hidepid::Ptraceable,
                persist: false,
                userns: true,
                landlock: false,
                max_ptys: 16,
                init_program: "/opt/cage-init".into(),
                max_generations: 5,
                proxy_client: crate::proxy::DEFAULT_CLIENT.into(),
                cgroup: Default::default(),
                reload_interval: 0,
            }
        );
    }

    #[test]
    fn every_error_has_file_and_line() {
        let t = "[cage]\nmin_uid = abc\nmode = all\nskeleton = rel/path\nproc = maybe\nbogus = 1\nmax_ptys = 0\n[cgroup]\nmemory.max = 1G\nmemory = lots\n[tmpwatch]\n";
        let errs: Vec<String> = Settings::parse(Path::new("/etc/cage/cage.ini"), t)
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errs,
            vec![
                "/etc/cage/cage.ini:2: min_uid = abc: expected a uid greater than 0",
                "/etc/cage/cage.ini:3: mode = all: expected `enable-all` or `disable-all`",
                "/etc/cage/cage.ini:4: skeleton = rel/path: expected an absolute path",
                "/etc/cage/cage.ini:5: proc = maybe: expected `invisible`, `noaccess`, `ptraceable` or `off`",
                "/etc/cage/cage.ini:6: unknown key `bogus` in [cage]; expected min_uid, mode, skeleton, state_dir, proc, persist, userns, landlock, max_ptys, init_program, max_generations, proxy_client or reload_interval",
                "/etc/cage/cage.ini:7: max_ptys = 0: expected a number of ptys from 1 to 4096",
                "/etc/cage/cage.ini:9: unknown key `memory.max` in [cgroup]; expected enable, controllers, base, cpu, memory, swap, pids, io_read, io_write or iops",
                "/etc/cage/cage.ini:10: memory = lots: expected a size in bytes with an optional K, M or G suffix, e.g. `512M`",
                "/etc/cage/cage.ini:11: unknown section [tmpwatch] (not supported by this version); expected [cage] or [cgroup]",
            ]
        );
    }

    #[test]
    fn cgroup_section() {
        let t = "[cgroup]\nenable = yes\ncontrollers = cpu, pids\nbase = /cage/\ncpu = 150%\nmemory = 2G\npids = 400\nio_read = 10M\n";
        let s = Settings::parse(Path::new("c.ini"), t).unwrap();
        let c = &s.cgroup;
        assert!(c.enable);
        assert_eq!(
            c.controllers,
            Some(vec![
                crate::cgroup::Controller::Cpu,
                crate::cgroup::Controller::Pids
            ])
        );
        assert_eq!(c.base.as_deref(), Some("/cage"));
        assert_eq!(c.defaults.show(), "cpu=150% memory=2G pids=400 io_read=10M");
        assert_eq!(c.lines[0], (crate::cgroup::Key::Cpu, 5));
        let errs: Vec<String> = Settings::parse(
            Path::new("c.ini"),
            "[cgroup]\nenable = maybe\ncontrollers = cpu,net\nbase = cage\ncpu = 0%\n",
        )
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect();
        assert_eq!(
            errs,
            vec![
                "c.ini:2: enable = maybe: expected `yes` or `no`",
                "c.ini:3: controllers = cpu,net: expected a comma-separated list of cpu, memory, pids, io",
                "c.ini:4: base = cage: expected an absolute cgroup path without `.` or `..`, e.g. /cage",
                "c.ini:5: cpu = 0%: expected a percentage of one CPU from 1% to 100000%, e.g. `150%`",
            ]
        );
    }

    #[test]
    fn uid_min_from_login_defs() {
        assert_eq!(
            login_defs_uid_min_from("#UID_MIN 5\nUID_MIN\t\t\t 1000\nUID_MAX 60000\n"),
            1000
        );
        assert_eq!(login_defs_uid_min_from(""), 1000);
        assert_eq!(login_defs_uid_min_from("UID_MIN 500"), 500);
    }

    #[test]
    fn set_key_keeps_comments() {
        let t = "; my settings\n[cage]\nmode = disable-all ; was\nmin_uid = 1000\n";
        assert_eq!(
            set_key(t, "mode", "enable-all"),
            "; my settings\n[cage]\nmode = enable-all\nmin_uid = 1000\n"
        );
        assert_eq!(
            set_key("", "mode", "enable-all"),
            "[cage]\nmode = enable-all\n"
        );
        assert_eq!(
            set_key("[cage]\nmin_uid = 5\n", "mode", "x"),
            "[cage]\nmin_uid = 5\nmode = x\n"
        );
    }
}
