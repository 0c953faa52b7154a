//! Who is caged: user markers, mode, min_uid, prefixes.

use std::process::ExitCode;

use libcage::cage::{self, Who};
use libcage::config::settings::set_key;
use libcage::config::users::{list_markers, set_marker};
use libcage::config::Mode;
use libcage::policy::Decision;
use serde_json::json;

use crate::out::{emit, fail, fail_err};
use crate::Global;

#[derive(clap::Subcommand, Debug)]
pub enum UserCmd {
    /// Cage this user (in either mode)
    Enable { name: String },
    /// Never cage this user (in either mode)
    Disable { name: String },
    /// Show whether the user is caged and why
    Status { name: String },
}

#[derive(clap::Subcommand, Debug)]
pub enum ModeCmd {
    /// Show the current mode
    Show,
    /// Cage every user except the disabled ones
    EnableAll,
    /// Cage only the enabled users
    DisableAll,
    /// Switch between the two modes, keeping user markers
    Toggle,
}

fn lookup(g: &Global, name: &str) -> Result<libcage::identity::Passwd, ExitCode> {
    match libcage::sys::nss::getpwnam(name) {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(fail(g, format!("no such user: {name}"))),
        Err(e) => Err(fail(g, format!("looking up {name}: {e}"))),
    }
}

pub fn user(cmd: UserCmd, g: &Global) -> ExitCode {
    match cmd {
        UserCmd::Enable { name } | UserCmd::Disable { name }
            if !libcage::config::users::valid_user_name(&name) =>
        {
            fail(g, format!("invalid user name `{name}`"))
        }
        UserCmd::Enable { name } => set(g, &name, true),
        UserCmd::Disable { name } => set(g, &name, false),
        UserCmd::Status { name } => match cage::decide(&g.config, Who::Name(&name), None) {
            Ok((p, d)) => {
                let (caged, why) = match d {
                    Decision::Caged => (true, "caged".to_string()),
                    Decision::NotCaged(r) => (false, r.as_str().to_string()),
                };
                emit(
                    g,
                    &json!({ "user": p.name, "uid": p.uid, "caged": caged, "reason": why }),
                    || {
                        if caged {
                            format!("{}: caged", p.name)
                        } else {
                            format!("{}: not caged ({why})", p.name)
                        }
                    },
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail_err(g, &e),
        },
    }
}

fn set(g: &Global, name: &str, enable: bool) -> ExitCode {
    let p = match lookup(g, name) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let (on, off) = if enable {
        (g.config.enabled_dir(), g.config.disabled_dir())
    } else {
        (g.config.disabled_dir(), g.config.enabled_dir())
    };
    if let Err(e) =
        set_marker(&off, p.uid, name, false).and_then(|_| set_marker(&on, p.uid, name, true))
    {
        return fail(g, format!("{name}: {e}"));
    }
    // A new policy applies to new entries; a pinned cage of a disabled user
    // is unpinned so nothing joins it any more.
    if !enable {
        let _ = cage::unpin(p.uid);
    }
    let state = if enable { "enabled" } else { "disabled" };
    emit(g, &json!({ "user": name, "state": state }), || {
        format!("{name}: {state}")
    });
    ExitCode::SUCCESS
}

fn write_ini_key(g: &Global, key: &str, value: &str) -> Result<(), String> {
    let path = g.config.ini();
    let old = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let new = set_key(&old, key, value);
    // Refuse to write a file that would not parse.
    libcage::config::Settings::parse(&path, &new).map_err(|errs| {
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let _ = std::fs::create_dir_all(g.config.path());
    let tmp = path.with_extension("ini.tmp");
    std::fs::write(&tmp, new)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

pub fn mode(cmd: ModeCmd, g: &Global) -> ExitCode {
    let settings = match g.config.settings() {
        Ok(s) => s,
        Err(errs) => return fail_err(g, &libcage::Error::Config(errs)),
    };
    let new = match cmd {
        ModeCmd::Show => {
            emit(g, &json!({ "mode": settings.mode }), || {
                settings.mode.as_str().to_string()
            });
            return ExitCode::SUCCESS;
        }
        ModeCmd::EnableAll => Mode::EnableAll,
        ModeCmd::DisableAll => Mode::DisableAll,
        ModeCmd::Toggle => match settings.mode {
            Mode::EnableAll => Mode::DisableAll,
            Mode::DisableAll => Mode::EnableAll,
        },
    };
    if let Err(e) = write_ini_key(g, "mode", new.as_str()) {
        return fail(g, e);
    }
    emit(g, &json!({ "mode": new }), || {
        format!("mode: {}", new.as_str())
    });
    ExitCode::SUCCESS
}

pub fn list(g: &Global, enabled: bool) -> ExitCode {
    let dir = if enabled {
        g.config.enabled_dir()
    } else {
        g.config.disabled_dir()
    };
    match list_markers(&dir) {
        Ok(names) => {
            emit(g, &names, || names.join("\n"));
            ExitCode::SUCCESS
        }
        Err(e) => fail(g, format!("{}: {e}", dir.display())),
    }
}

pub fn min_uid(g: &Global, value: Option<u32>) -> ExitCode {
    match value {
        None => match g.config.settings() {
            Ok(s) => {
                emit(g, &json!({ "min_uid": s.min_uid }), || {
                    s.min_uid.to_string()
                });
                ExitCode::SUCCESS
            }
            Err(errs) => fail_err(g, &libcage::Error::Config(errs)),
        },
        Some(0) => fail(g, "min_uid must be greater than 0"),
        Some(n) => match write_ini_key(g, "min_uid", &n.to_string()) {
            Ok(()) => {
                emit(g, &json!({ "min_uid": n }), || format!("min_uid: {n}"));
                ExitCode::SUCCESS
            }
            Err(e) => fail(g, e),
        },
    }
}

pub fn getprefix(g: &Global, name: &str) -> ExitCode {
    match lookup(g, name) {
        Ok(p) => {
            let pre = libcage::paths::prefix(p.uid);
            emit(
                g,
                &json!({ "user": name, "uid": p.uid, "prefix": pre }),
                || pre.clone(),
            );
            ExitCode::SUCCESS
        }
        Err(c) => c,
    }
}
