//! `cage-admin pam`: puts pam_cage last in the session stack of every login
//! service (sshd, su, runuser, cron, atd, login, systemd --user) and keeps it
//! there.
//!
//! pam_cage moves the session process into the cage's mount namespace, so
//! every module after it would read the cage's files instead of the host's
//! (`pam_limits` fails without `/etc/security/limits.conf`, `pam_env` reads
//! the cage's `/etc/environment`). A pam-auth-update profile can only put
//! it inside `common-session`, which each service includes before its own
//! `pam_limits`/`pam_env` lines; so the line goes at the end of each
//! service file instead, under a marker comment, and `pam sync` (run by the
//! apt hook after every dpkg run) puts it back when a package upgrade
//! replaced a file or appended lines after it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use crate::out::{emit, fail};
use crate::Global;

/// The services whose stacks are managed, when their file exists.
pub const SERVICES: &[&str] = &[
    "sshd",
    "su",
    "su-l",
    "runuser",
    "runuser-l",
    "cron",
    "atd",
    "login",
    "systemd-user",
];

/// The comment line above the managed line.
pub const MARKER: &str =
    "# cage: managed by `cage-admin pam`; keep this line last in the session stack";

/// Where `pam enable` records the managed line for `pam sync`, below the
/// configuration directory.
const STATE_FILE: &str = "pam.line";

#[derive(clap::Subcommand, Debug)]
pub enum PamCmd {
    /// Append the pam_cage line last to every login service's stack
    Enable {
        #[command(flatten)]
        opts: Opts,
        /// Module path or name
        #[arg(long, default_value = "pam_cage.so")]
        module: String,
        /// Module arguments (e.g. "min_uid=1000"), appended after the module
        #[arg(long = "module-args", default_value = "")]
        module_args: String,
    },
    /// Remove the managed pam_cage lines
    Disable {
        #[command(flatten)]
        opts: Opts,
    },
    /// After package upgrades: put the managed line back where it is missing
    /// or no longer last (does nothing unless `pam enable` was run)
    Sync {
        #[command(flatten)]
        opts: Opts,
    },
    /// Show, per service, whether the managed line is there and last
    Status {
        #[command(flatten)]
        opts: Opts,
    },
}

#[derive(clap::Args, Debug)]
pub struct Opts {
    /// The PAM configuration directory
    #[arg(long = "pam-dir", default_value = "/etc/pam.d")]
    pam_dir: PathBuf,
}

/// Where the managed line is in one stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// No managed line.
    Absent,
    /// The managed line is the last rule of the file.
    Last,
    /// The managed line is there, with other rules after it.
    NotLast,
}

impl Placement {
    fn as_str(self) -> &'static str {
        match self {
            Placement::Absent => "absent",
            Placement::Last => "last",
            Placement::NotLast => "not last",
        }
    }
}

/// True for lines that are rules (not blank, not comments).
fn is_rule(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// Splits `text` into its lines without the managed block (the marker and
/// the rule right after it), and where the block was found.
fn strip(text: &str) -> (Vec<&str>, Placement) {
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = Vec::with_capacity(lines.len());
    let mut found = None;
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == MARKER {
            // The managed rule follows its marker; a marker whose rule an
            // admin deleted goes alone.
            let rule = lines.get(i + 1).is_some_and(|l| is_rule(l));
            found = Some(kept.len());
            i += if rule { 2 } else { 1 };
            continue;
        }
        kept.push(lines[i]);
        i += 1;
    }
    let placement = match found {
        None => Placement::Absent,
        Some(at) if kept[at..].iter().any(|l| is_rule(l)) => Placement::NotLast,
        Some(_) => Placement::Last,
    };
    (kept, placement)
}

fn join(lines: &[&str]) -> String {
    let mut s = lines.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

/// Where the managed block is in `text`.
pub fn placement(text: &str) -> Placement {
    strip(text).1
}

/// `text` with exactly one managed block, holding `rule`, at its end.
pub fn with_line(text: &str, rule: &str) -> String {
    let (mut kept, _) = strip(text);
    kept.push(MARKER);
    kept.push(rule);
    join(&kept)
}

/// `text` without the managed block (unchanged when it has none).
pub fn without_line(text: &str) -> String {
    match strip(text) {
        (_, Placement::Absent) => text.to_string(),
        (kept, _) => join(&kept),
    }
}

/// The managed rule for `module` and its arguments.
pub fn rule(module: &str, args: &str) -> Result<String, String> {
    let bad = |s: &str| s.chars().any(|c| c.is_control() || c == '#');
    if module.is_empty() || module.contains(char::is_whitespace) || bad(module) {
        return Err(format!("invalid module {module:?}"));
    }
    if bad(args) || args.contains('[') || args.contains(']') {
        return Err(format!("invalid module arguments {args:?}"));
    }
    let args = args.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(if args.is_empty() {
        format!("session    required   {module}")
    } else {
        format!("session    required   {module} {args}")
    })
}

/// One service's result.
#[derive(Debug, Serialize)]
struct Row {
    service: String,
    /// Where the managed line is now (after the command).
    placement: Placement,
    changed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Replaces `path` by `text` atomically, keeping its mode and owner.
fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.cage-new"));
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid()))?;
        f.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Applies `edit` to every managed service file in `dir` that exists.
fn each(dir: &Path, edit: impl Fn(&str) -> Option<String>) -> Vec<Row> {
    let mut rows = Vec::new();
    for service in SERVICES {
        let path = dir.join(service);
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                rows.push(Row::error(service, format!("{}: {e}", path.display())));
                continue;
            }
        };
        if !meta.file_type().is_file() {
            // Never written through a link: the file it names may be
            // shared with something else.
            rows.push(Row::error(
                service,
                format!("{}: not a regular file, left alone", path.display()),
            ));
            continue;
        }
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                rows.push(Row::error(service, format!("{}: {e}", path.display())));
                continue;
            }
        };
        let (text, changed) = match edit(&text) {
            Some(new) if new != text => match replace(&path, &new) {
                Ok(()) => (new, true),
                Err(e) => {
                    rows.push(Row::error(
                        service,
                        format!("{}: cannot write: {e}", path.display()),
                    ));
                    continue;
                }
            },
            _ => (text, false),
        };
        rows.push(Row {
            service: service.to_string(),
            placement: placement(&text),
            changed,
            error: None,
        });
    }
    rows
}

impl Row {
    fn error(service: &str, error: String) -> Row {
        Row {
            service: service.to_string(),
            placement: Placement::Absent,
            changed: false,
            error: Some(error),
        }
    }
}

fn report(g: &Global, rows: &[Row], enabled: Option<&str>) -> ExitCode {
    emit(
        g,
        &serde_json::json!({ "enabled": enabled, "services": rows }),
        || {
            let mut s = match enabled {
                Some(r) => format!("pam: enabled ({r})\n"),
                None => "pam: not enabled\n".to_string(),
            };
            if rows.is_empty() {
                s.push_str("  no login service files found\n");
            }
            for r in rows {
                let what = match &r.error {
                    Some(e) => format!("error: {e}"),
                    None => r.placement.as_str().to_string(),
                };
                let mark = if r.changed { " (changed)" } else { "" };
                s.push_str(&format!("  {:<14} {what}{mark}\n", r.service));
            }
            s
        },
    );
    if rows.iter().any(|r| r.error.is_some()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn state_path(g: &Global) -> PathBuf {
    g.config.path().join(STATE_FILE)
}

/// The managed rule recorded by `pam enable`, if any.
fn recorded(g: &Global) -> Result<Option<String>, String> {
    let path = state_path(g);
    match fs::read_to_string(&path) {
        Ok(t) => {
            let line = t.trim();
            if line.is_empty() || !line.starts_with("session") || line.contains('\n') {
                Err(format!(
                    "{}:1: expected one `session required MODULE [ARGS]` line",
                    path.display()
                ))
            } else {
                Ok(Some(line.to_string()))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

pub fn run(cmd: PamCmd, g: &Global) -> ExitCode {
    match cmd {
        PamCmd::Enable {
            opts,
            module,
            module_args,
        } => {
            let rule = match rule(&module, &module_args) {
                Ok(r) => r,
                Err(e) => return fail(g, e),
            };
            let state = state_path(g);
            if let Err(e) = fs::write(&state, format!("{rule}\n")) {
                return fail(g, format!("{}: {e}", state.display()));
            }
            let rows = each(&opts.pam_dir, |t| Some(with_line(t, &rule)));
            report(g, &rows, Some(&rule))
        }
        PamCmd::Disable { opts } => {
            let rows = each(&opts.pam_dir, |t| Some(without_line(t)));
            let state = state_path(g);
            match fs::remove_file(&state) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return fail(g, format!("{}: {e}", state.display())),
            }
            report(g, &rows, None)
        }
        PamCmd::Sync { opts } => match recorded(g) {
            Ok(Some(rule)) => {
                let rows = each(&opts.pam_dir, |t| {
                    (placement(t) != Placement::Last || !t.contains(&rule))
                        .then(|| with_line(t, &rule))
                });
                report(g, &rows, Some(&rule))
            }
            Ok(None) => report(g, &each(&opts.pam_dir, |_| None), None),
            Err(e) => fail(g, e),
        },
        PamCmd::Status { opts } => match recorded(g) {
            Ok(rule) => report(g, &each(&opts.pam_dir, |_| None), rule.as_deref()),
            Err(e) => fail(g, e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSHD: &str = "# PAM configuration for the Secure Shell service\n\
        @include common-auth\n\
        session    required     pam_loginuid.so\n\
        @include common-session\n\
        session    required     pam_limits.so\n\
        session    required     pam_env.so\n";

    const RULE: &str = "session    required   pam_cage.so";

    #[test]
    fn enable_appends_one_block_last() {
        let t = with_line(SSHD, RULE);
        assert_eq!(t, format!("{SSHD}{MARKER}\n{RULE}\n"));
        assert_eq!(placement(&t), Placement::Last);
        // Idempotent.
        assert_eq!(with_line(&t, RULE), t);
        assert_eq!(placement(SSHD), Placement::Absent);
    }

    #[test]
    fn disable_restores_the_file_exactly() {
        assert_eq!(without_line(&with_line(SSHD, RULE)), SSHD);
        assert_eq!(without_line(SSHD), SSHD);
        // Blank lines at the end stay the file's.
        let padded = format!("{SSHD}\n\n");
        assert_eq!(placement(&with_line(&padded, RULE)), Placement::Last);
        assert_eq!(without_line(&with_line(&padded, RULE)), padded);
        assert_eq!(without_line("no newline"), "no newline");
    }

    #[test]
    fn lines_appended_after_the_block_are_noticed_and_moved() {
        let t = format!("{}session optional pam_motd.so\n", with_line(SSHD, RULE));
        assert_eq!(placement(&t), Placement::NotLast);
        let fixed = with_line(&t, RULE);
        assert_eq!(placement(&fixed), Placement::Last);
        assert_eq!(fixed.matches(MARKER).count(), 1);
        assert!(fixed.contains("pam_motd.so\n# cage"));
        // A comment after the block does not count as a rule.
        let c = format!("{}# trailing comment\n", with_line(SSHD, RULE));
        assert_eq!(placement(&c), Placement::Last);
    }

    #[test]
    fn a_changed_rule_replaces_the_old_one() {
        let t = with_line(SSHD, RULE);
        let t2 = with_line(&t, "session    required   /x/pam_cage.so debug");
        assert_eq!(t2.matches("pam_cage").count(), 1);
        assert!(t2.ends_with("/x/pam_cage.so debug\n"));
    }

    #[test]
    fn a_lone_marker_is_removed_without_eating_a_rule() {
        let t = format!("{SSHD}{MARKER}\n");
        assert_eq!(without_line(&t), SSHD);
        let t = format!("{MARKER}\n\n{SSHD}");
        assert_eq!(without_line(&t), format!("\n{SSHD}"));
    }

    #[test]
    fn rules_are_checked() {
        assert_eq!(rule("pam_cage.so", "").unwrap(), RULE);
        assert_eq!(
            rule("pam_cage.so", " min_uid=1000  debug ").unwrap(),
            "session    required   pam_cage.so min_uid=1000 debug"
        );
        assert!(rule("pam_cage.so", "a\nsession sufficient pam_permit.so").is_err());
        assert!(rule("pam cage.so", "").is_err());
        assert!(rule("pam_cage.so", "# x").is_err());
        assert!(rule("", "").is_err());
    }
}
