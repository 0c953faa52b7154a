//! Importing libcgroup's `cgrules.conf` (`user[:process] controllers
//! destination`, `@group`, `*`, `%` continuing the rule above). A rule
//! names a destination cgroup, not limits: the importer reads the limits
//! set on that destination (through a reader, so the mapping is pure) and
//! turns each rule into a `limits.conf` line; what it cannot express is
//! reported, with `file:line`.

use std::path::Path;

use super::limits::Limits;
use crate::config::ConfigError;

/// One rule (its continuation lines folded in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgRule {
    pub line: usize,
    /// `alice`, `@group` or `*`.
    pub who: String,
    /// `alice:httpd` selects by process name.
    pub process: Option<String>,
    /// (controllers, destination) pairs: the rule line and its `%` lines.
    pub targets: Vec<(Vec<String>, String, usize)>,
}

/// Parses `cgrules.conf`; malformed lines are errors with file:line.
pub fn parse(path: &Path, text: &str) -> (Vec<CgRule>, Vec<ConfigError>) {
    let mut rules: Vec<CgRule> = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let s = raw.split('#').next().unwrap_or("").trim();
        if s.is_empty() {
            continue;
        }
        let f: Vec<&str> = s.split_whitespace().collect();
        if f.len() < 3 {
            errors.push(ConfigError::new(
                path,
                line,
                format!("`{s}`: expected USER[:PROCESS] CONTROLLERS DESTINATION"),
            ));
            continue;
        }
        let ctrls: Vec<String> = f[1].split(',').map(str::to_string).collect();
        let target = (ctrls, f[2].to_string(), line);
        if f[0] == "%" {
            match rules.last_mut() {
                Some(r) => r.targets.push(target),
                None => errors.push(ConfigError::new(
                    path,
                    line,
                    "`%` continues a rule, but no rule comes before it",
                )),
            }
            continue;
        }
        let (who, process) = match f[0].split_once(':') {
            Some((w, p)) => (w.to_string(), Some(p.to_string())),
            None => (f[0].to_string(), None),
        };
        if who.is_empty() || who == "@" {
            errors.push(ConfigError::new(
                path,
                line,
                format!("`{}`: expected a user, @group or *", f[0]),
            ));
            continue;
        }
        rules.push(CgRule {
            line,
            who,
            process,
            targets: vec![target],
        });
    }
    (rules, errors)
}

/// What became of one rule.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Imported {
    pub line: usize,
    /// The `limits.conf` line, when the rule maps to one.
    pub mapped: Option<String>,
    /// What could not be carried over (empty when everything was).
    pub unmapped: Vec<String>,
}

/// Maps rules to `limits.conf` lines. `read(controller, destination)`
/// gives the limits set on a destination cgroup for one v1 controller
/// (`cpu`, `memory`, `pids`, `blkio`).
pub fn import(rules: &[CgRule], read: &dyn Fn(&str, &str) -> Limits) -> Vec<Imported> {
    let mut out = Vec::new();
    for r in rules {
        let mut unmapped = Vec::new();
        if let Some(p) = &r.process {
            unmapped.push(format!(
                "line {}: process-name rule `{}:{p}`: cage limits a user's whole cage, not one program; applied to every process of the user",
                r.line, r.who
            ));
        }
        let mut limits = Limits::default();
        for (ctrls, dest, line) in &r.targets {
            if dest.contains('%') {
                unmapped.push(format!(
                    "line {line}: destination `{dest}` uses a template; cage makes BASE/<user> itself"
                ));
                continue;
            }
            let names: Vec<&str> = if ctrls.iter().any(|c| c == "*") {
                vec!["cpu", "memory", "pids", "blkio"]
            } else {
                ctrls.iter().map(String::as_str).collect()
            };
            for c in names {
                if !["cpu", "cpuacct", "memory", "pids", "blkio"].contains(&c) {
                    unmapped.push(format!(
                        "line {line}: controller `{c}` is not one cage manages (cpu, memory, pids, io)"
                    ));
                    continue;
                }
                let got = read(c, dest);
                for k in super::limits::KEYS {
                    if let Some(v) = got.get(k) {
                        limits.set(k, Some(v));
                    }
                }
            }
        }
        let set = limits.show();
        let mapped = if set.is_empty() {
            unmapped.push(format!(
                "line {}: no limit is set on the destination cgroup(s)",
                r.line
            ));
            None
        } else if r.who == "*" {
            unmapped.push(format!(
                "line {}: `*` rule: put these defaults in cage.ini [cgroup]: {}",
                r.line,
                set.replace(' ', ", ")
            ));
            None
        } else {
            Some(format!("{} {set}", r.who))
        };
        out.push(Imported {
            line: r.line,
            mapped,
            unmapped,
        });
    }
    out
}

/// Reads the limits of a v1 destination cgroup below `mount_of(controller)`.
pub fn read_v1(mount: &Path, controller: &str, dest: &str) -> Limits {
    let d = mount.join(dest.trim_start_matches('/'));
    let num =
        |f: &str| -> Option<i64> { std::fs::read_to_string(d.join(f)).ok()?.trim().parse().ok() };
    let mut l = Limits::default();
    match controller {
        "cpu" => {
            if let (Some(q), Some(p)) = (num("cpu.cfs_quota_us"), num("cpu.cfs_period_us")) {
                if q > 0 && p > 0 {
                    l.cpu = Some((q as u64 * 100).div_ceil(p as u64));
                }
            }
        }
        "memory" => {
            l.memory = num("memory.limit_in_bytes")
                .filter(|&m| m > 0 && m < (1 << 62))
                .map(|m| m as u64);
            if let (Some(m), Some(sw)) = (l.memory, num("memory.memsw.limit_in_bytes")) {
                if sw > 0 && sw < (1 << 62) && sw as u64 >= m {
                    l.swap = Some(sw as u64 - m);
                }
            }
        }
        "pids" => l.pids = num("pids.max").filter(|&p| p > 0).map(|p| p as u64),
        _ => {}
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules_and_continuations() {
        let t = "# users\nsjo cpu default\ncgtest cpu cgtest\n% memory default\n@cgroup cpu,memory cgtest\npeter:httpd cpu test1\n* * default\nbroken cpu\n";
        let (rules, errs) = parse(Path::new("/etc/cgrules.conf"), t);
        let errs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errs,
            vec!["/etc/cgrules.conf:8: `broken cpu`: expected USER[:PROCESS] CONTROLLERS DESTINATION"]
        );
        assert_eq!(rules.len(), 5);
        assert_eq!(
            rules[1].targets,
            vec![
                (vec!["cpu".to_string()], "cgtest".to_string(), 3),
                (vec!["memory".to_string()], "default".to_string(), 4)
            ]
        );
        assert_eq!(rules[2].who, "@cgroup");
        assert_eq!(rules[3].process.as_deref(), Some("httpd"));
        let (_, e) = parse(Path::new("c"), "% cpu x\n");
        assert_eq!(
            e[0].to_string(),
            "c:1: `%` continues a rule, but no rule comes before it"
        );
    }

    #[test]
    fn maps_limits_and_reports_the_rest() {
        let (rules, _) = parse(
            Path::new("c"),
            "alice cpu,memory limited\n% pids limited\n@resellers cpu big\nbob freezer x\n* memory default\ncarol cpu %u\n",
        );
        let read = |c: &str, d: &str| {
            let mut l = Limits::default();
            match (c, d) {
                ("cpu", "limited") => l.cpu = Some(50),
                ("memory", "limited") => l.memory = Some(2 << 30),
                ("pids", "limited") => l.pids = Some(400),
                ("cpu", "big") => l.cpu = Some(200),
                ("memory", "default") => l.memory = Some(1 << 30),
                _ => {}
            }
            l
        };
        let r = import(&rules, &read);
        assert_eq!(
            r[0].mapped.as_deref(),
            Some("alice cpu=50% memory=2G pids=400")
        );
        assert!(r[0].unmapped.is_empty());
        assert_eq!(r[1].mapped.as_deref(), Some("@resellers cpu=200%"));
        assert_eq!(r[2].mapped, None);
        assert!(r[2].unmapped[0].contains("controller `freezer`"));
        assert_eq!(r[3].mapped, None);
        assert!(r[3].unmapped[0].contains("cage.ini [cgroup]: memory=1G"));
        assert!(r[4].unmapped[0].contains("template"));
    }
}
