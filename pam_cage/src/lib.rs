//! pam_cage.so: PAM session module that puts the user in their cage
//! (DESIGN.md "PAM").
//!
//! `session required pam_cage.so [min_uid=N] [config=DIR] [debug]`, or the
//! CageFS form `pam_lve.so 100 1`. `pam_sm_open_session` enters the cage of
//! `PAM_USER` the PAM way: this process joins the cage's mount and IPC
//! namespaces and the children it forks for the user are born in the cage's
//! PID namespace. Results: caged and entered `PAM_SUCCESS`; not caged
//! `PAM_IGNORE`; any failure for a user who should be caged
//! `PAM_SESSION_ERR` with a syslog line naming user and reason (fail
//! closed). Nothing is printed; panics are caught.

mod args;
mod sys;

use std::ffi::{c_char, c_int};

use libcage::cage::{self, Mode, Outcome, Request, Who};
use libcage::config::ConfigDir;
use libcage::identity::{Directory, Nss};
use libcage::log::{self, Priority};
use libcage::panic_guard::catch;

use args::Args;
use sys::{PamHandle, PAM_IGNORE, PAM_SERVICE, PAM_SESSION_ERR, PAM_SUCCESS, PAM_USER};

/// Opens the session: cages `PAM_USER`.
///
/// # Safety
/// Called by libpam with its live handle and the module arguments.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_open_session(
    pamh: *mut PamHandle,
    _flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    let mut tag = "pam_cage".to_string();
    let res = catch(|| {
        // SAFETY: libpam passes its live handle and argc/argv as given in
        // the PAM configuration.
        let service = unsafe { sys::string_item(pamh, PAM_SERVICE) }
            .ok()
            .flatten();
        tag = format!("pam_cage({})", service.as_deref().unwrap_or("?"));
        // SAFETY: as above.
        if unsafe { sys::entered(pamh) } {
            // This session is in the cage already (the stack reached the
            // module twice): the process is where it belongs.
            return PAM_SUCCESS;
        }
        // SAFETY: as above.
        let argv = unsafe { sys::args(argc, argv) };
        // SAFETY: as above.
        let user = unsafe { sys::string_item(pamh, PAM_USER) };
        let rc = open_session(&tag, &Args::parse(&argv), user);
        // SAFETY: as above.
        if rc == PAM_SUCCESS && !unsafe { sys::mark_entered(pamh) } {
            log::warn(
                &tag,
                "pam_set_data failed: a second pam_cage line of this stack would enter again",
            );
        }
        rc
    });
    res.unwrap_or_else(|detail| {
        let _ = catch(|| log::error(&tag, &format!("internal error, session refused: {detail}")));
        PAM_SESSION_ERR
    })
}

/// Closes the session: nothing to undo (the cage lives on in its init).
///
/// # Safety
/// Called by libpam; the arguments are not used.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_close_session(
    _pamh: *mut PamHandle,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_SUCCESS
}

fn open_session(tag: &str, args: &Args, user: Result<Option<String>, c_int>) -> c_int {
    for a in &args.unknown {
        log::warn(tag, &format!("ignoring unknown argument {a:?}"));
    }
    if args.debug {
        log::log(Priority::Debug, tag, &format!("arguments {args:?}"));
    }
    if !args.enabled {
        if args.debug {
            log::log(Priority::Debug, tag, "disabled by its arguments");
        }
        return PAM_IGNORE;
    }
    let user = match user {
        Ok(Some(u)) if !u.is_empty() => u,
        Ok(_) => {
            log::error(tag, "no user (PAM_USER is unset), session refused");
            return PAM_SESSION_ERR;
        }
        Err(rc) => {
            log::error(
                tag,
                &format!("pam_get_item(PAM_USER) failed ({rc}), session refused"),
            );
            return PAM_SESSION_ERR;
        }
    };
    // Root, and users below a min_uid given as argument, pass through
    // untouched, even when the configuration is broken: the core decides
    // that before it reads any configuration (and on the warm path from
    // the root-only cage record, without NSS). Only bad module arguments
    // are judged here, and only then is the account looked up: root passes
    // through them, everyone else is refused.
    let mut problems = args.malformed.clone();
    if let Some(dir) = &args.config {
        if !dir.is_dir() {
            problems.push(format!("config={}: not a directory", dir.display()));
        }
    }
    if !problems.is_empty() {
        // Without usable arguments the module cannot tell who is caged:
        // refuse everyone but root.
        let root = Nss.user_by_name(&user).ok().flatten().map(|pw| pw.uid) == Some(0);
        let what = if root {
            "root passes through"
        } else {
            "session refused"
        };
        log::error(
            tag,
            &format!(
                "user {user}: bad module arguments ({}); {what}",
                problems.join("; ")
            ),
        );
        return if root { PAM_IGNORE } else { PAM_SESSION_ERR };
    }
    let config = args.config.clone().map(ConfigDir::new).unwrap_or_default();
    let req = Request {
        config: &config,
        who: Who::Name(&user),
        mode: Mode::ChildrenOnly,
        service: tag,
        min_uid: args.min_uid,
        in_process: false,
        // Unused in children-only mode: the PAM application (su, sshd)
        // gives the user's processes their session and terminal.
        terminal: libcage::cage::Terminal::Detach,
    };
    // The core logs the entry line and any failure, naming the user.
    match cage::enter(&req) {
        Ok(Outcome::Entered(_)) => PAM_SUCCESS,
        Ok(Outcome::NotCaged(_, reason)) => {
            if args.debug {
                log::log(
                    Priority::Debug,
                    tag,
                    &format!("user {user} is not caged: {}", reason.as_str()),
                );
            }
            PAM_IGNORE
        }
        Err(_) => PAM_SESSION_ERR,
    }
}
