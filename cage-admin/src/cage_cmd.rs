//! Cages: plan, enter, list, unmount, remount.

use std::os::unix::process::CommandExt;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use libcage::cage::{self, Mode, Outcome, Request, Terminal, Who};
use libcage::identity::Nss;
use serde_json::json;

use crate::out::{emit, fail, fail_err};
use crate::Global;

pub fn plan(g: &Global, name: &str) -> ExitCode {
    let settings = match g.config.settings() {
        Ok(s) => s,
        Err(errs) => return fail_err(g, &libcage::Error::Config(errs)),
    };
    let user = match libcage::sys::nss::getpwnam(name) {
        Ok(Some(p)) => p,
        Ok(None) => return fail(g, format!("no such user: {name}")),
        Err(e) => return fail(g, format!("looking up {name}: {e}")),
    };
    match cage::make_plan(&g.config, &settings, &user, &Nss) {
        Ok(p) => {
            emit(g, &p, || p.to_string());
            ExitCode::SUCCESS
        }
        Err(e) => fail_err(g, &e),
    }
}

/// Runs CMD (or a login shell) as USER inside USER's cage.
pub fn enter(g: &Global, name: &str, timings: bool, cmd: &[String]) -> ExitCode {
    let t0 = std::time::Instant::now();
    let user = match libcage::sys::nss::getpwnam(name) {
        Ok(Some(p)) => p,
        Ok(None) => return fail(g, format!("no such user: {name}")),
        Err(e) => return fail(g, format!("looking up {name}: {e}")),
    };
    // Groups are resolved on the host, before entering (no NSS in the cage).
    let groups = match libcage::sys::nss::getgrouplist(&user.name, user.gid) {
        Ok(gs) => gs,
        Err(e) => return fail(g, format!("groups of {name}: {e}")),
    };
    let cli_nss = t0.elapsed().as_micros();
    let req = Request {
        config: &g.config,
        who: Who::Name(name),
        mode: Mode::Supervise,
        service: "cage-admin",
        min_uid: None,
        in_process: false,
        // The admin's terminal never reaches the user: a fresh pty of the
        // cage, relayed by the supervisor (plain pipes stay pipes).
        terminal: Terminal::Relay,
    };
    match cage::enter(&req) {
        Ok(Outcome::Entered(e)) => {
            if timings {
                // In the child, in the cage: stderr is the caller's.
                eprintln!(
                    "cage-admin: timings ({}): cli-nss={cli_nss} {} total={}",
                    if e.built { "built" } else { "joined" },
                    libcage::timing::format(&e.steps),
                    e.micros
                );
            }
        }
        Ok(Outcome::NotCaged(_, r)) => {
            return fail(g, format!("{name} is not caged ({})", r.as_str()))
        }
        Err(e) => return fail_err(g, &e),
    }
    // In the cage, in the child; the supervisor stays outside.
    if let Err(e) = libcage::sys::process::become_user(user.uid, user.gid, &groups) {
        eprintln!("cage-admin: {e}");
        libcage::sys::process::exit_now(126);
    }
    // Changing credentials cleared PR_SET_PDEATHSIG: arm it again, then make
    // sure the supervisor did not die in between (outside the cage it shows
    // as parent 0; once gone, the cage init (1) adopts us).
    if libcage::sys::process::die_with_parent(libc::SIGKILL).is_err()
        || rustix::process::getppid().is_some()
    {
        libcage::sys::process::exit_now(126);
    }
    let home = std::path::Path::new(&user.dir);
    let shell = if user.shell.is_empty() {
        "/bin/sh".to_string()
    } else {
        user.shell.clone()
    };
    let mut c = if cmd.is_empty() {
        let mut c = std::process::Command::new(&shell);
        c.arg0(format!("-{}", shell.rsplit('/').next().unwrap_or("sh")));
        c
    } else {
        let mut c = std::process::Command::new(&cmd[0]);
        c.args(&cmd[1..]);
        c
    };
    c.env_clear()
        .env("HOME", &user.dir)
        .env("USER", &user.name)
        .env("LOGNAME", &user.name)
        .env("SHELL", &shell)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin");
    if let Ok(t) = std::env::var("TERM") {
        c.env("TERM", t);
    }
    c.current_dir(if home.is_dir() {
        home
    } else {
        std::path::Path::new("/")
    });
    // Nothing of the admin's but fds 0-2 (already the pty where they were
    // a terminal) reaches the user's program.
    libcage::sys::process::close_fds_except(&[]);
    let err = c.exec();
    eprintln!(
        "cage-admin: cannot run {}: {err}",
        cmd.first().unwrap_or(&shell)
    );
    libcage::sys::process::exit_now(127)
}

/// Every cage init: each user's current generation, old generations that
/// still hold processes, and inits no record names (private cages).
pub fn list(g: &Global) -> ExitCode {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let inits = match cage::list_inits() {
        Ok(v) => v,
        Err(e) => return fail_err(g, &e),
    };
    let age = |c: Option<u64>| c.map(|c| now.saturating_sub(c));
    let rows: Vec<_> = inits
        .iter()
        .map(|i| {
            json!({
                "user": i.user,
                "uid": i.uid,
                "generation": i.generation,
                "state": i.state,
                "init_pid": i.init_pid,
                "processes": i.processes,
                "alive": i.processes.is_some(),
                "age_seconds": age(i.created),
            })
        })
        .collect();
    emit(g, &rows, || {
        let dash = || "-".to_string();
        let mut s = format!(
            "{:<16} {:>7} {:>10} {:<10} {:>8} {:>9} {:>8}\n",
            "USER", "UID", "GENERATION", "STATE", "INIT", "PROCESSES", "AGE"
        );
        for i in &inits {
            let state = match i.state {
                cage::InitState::Current => "current",
                cage::InitState::Old => "old",
                cage::InitState::Unrecorded => "unrecorded",
            };
            s.push_str(&format!(
                "{:<16} {:>7} {:>10} {:<10} {:>8} {:>9} {:>8}\n",
                i.user,
                i.uid.map_or_else(dash, |u| u.to_string()),
                i.generation.map_or_else(dash, |n| n.to_string()),
                state,
                i.init_pid,
                i.processes
                    .map_or_else(|| "dead".to_string(), |n| n.to_string()),
                age(i.created).map_or_else(dash, |a| format!("{a}s")),
            ));
        }
        s
    });
    ExitCode::SUCCESS
}

fn uids_for(g: &Global, user: Option<&str>, all: bool) -> Result<Vec<u32>, ExitCode> {
    if all {
        return cage::list()
            .map(|v| v.into_iter().map(|(r, _)| r.uid).collect())
            .map_err(|e| fail_err(g, &e));
    }
    let Some(name) = user else {
        return Err(fail(g, "name a user or pass --all"));
    };
    match libcage::sys::nss::getpwnam(name) {
        Ok(Some(p)) => Ok(vec![p.uid]),
        // A deleted user's cage is still found through its record.
        Ok(None) => libcage::cage::record::run_dir()
            .ok()
            .and_then(|d| libcage::cage::record::Record::uid_by_name(&d, name))
            .map(|uid| vec![uid])
            .ok_or_else(|| fail(g, format!("no such user: {name}"))),
        Err(e) => Err(fail(g, format!("looking up {name}: {e}"))),
    }
}

pub fn unmount(g: &Global, user: Option<&str>, all: bool) -> ExitCode {
    let uids = match uids_for(g, user, all) {
        Ok(u) => u,
        Err(c) => return c,
    };
    let mut done = Vec::new();
    for uid in uids {
        match cage::unpin(uid) {
            Ok(true) => done.push(uid),
            Ok(false) => {}
            Err(e) => return fail_err(g, &e),
        }
    }
    let mut orphans = 0;
    if all {
        match cage::unpin_rest() {
            Ok(n) => orphans = n,
            Err(e) => return fail_err(g, &e),
        }
    }
    emit(
        g,
        &json!({ "unpinned": done, "unrecorded_inits": orphans }),
        || {
            format!(
                "unpinned {} cage(s); processes inside keep running until they exit",
                done.len()
            )
        },
    );
    ExitCode::SUCCESS
}

pub fn remount(g: &Global, user: Option<&str>, all: bool) -> ExitCode {
    let uids = match uids_for(g, user, all) {
        Ok(u) => u,
        Err(c) => return c,
    };
    let mut rows = Vec::new();
    let mut failed = false;
    for uid in uids {
        match cage::remount(&g.config, uid) {
            Ok(gen) => rows.push(json!({ "uid": uid, "generation": gen })),
            Err(e) => {
                failed = true;
                if !g.json {
                    eprintln!("cage-admin: uid {uid}: {e}");
                }
                rows.push(json!({ "uid": uid, "error": e.to_string() }));
            }
        }
    }
    emit(g, &rows, || {
        rows.iter()
            .filter_map(|r| match r["generation"].as_u64() {
                Some(n) => Some(format!("uid {}: generation {n} pinned", r["uid"])),
                None if r.get("error").is_none() => {
                    Some(format!("uid {}: not caged any more, unpinned", r["uid"]))
                }
                None => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
