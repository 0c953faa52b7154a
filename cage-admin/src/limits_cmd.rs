//! Resource limits: `top`, `limits USER`, `limits import-cgrules FILE`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use libcage::cgroup::{self, cgrules, Context, Hierarchy};

use crate::out::{emit, fail, fail_err};
use crate::Global;

fn context(g: &Global) -> Result<(libcage::config::Settings, Option<Context>), ExitCode> {
    let settings = g
        .config
        .settings()
        .map_err(|errs| fail_err(g, &libcage::Error::Config(errs)))?;
    let ctx = Context::new(&settings.cgroup).map_err(|e| fail_err(g, &e))?;
    Ok((settings, ctx))
}

fn opt(v: Option<u64>, f: impl Fn(u64) -> String) -> String {
    v.map_or("-".to_string(), f)
}

fn mib(n: u64) -> String {
    format!("{:.1}M", n as f64 / (1u64 << 20) as f64)
}

/// `cage-admin top`: per user CPU time, memory, pids, I/O and limits.
pub fn top(g: &Global) -> ExitCode {
    let (_, ctx) = match context(g) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let Some(ctx) = ctx else {
        return fail(
            g,
            "resource limits are off ([cgroup] enable = no in cage.ini)",
        );
    };
    let rows = cgroup::usage(&ctx);
    let value = serde_json::json!({
        "cgroup_version": ctx.hierarchy.version(),
        "base": ctx.base,
        "users": rows,
    });
    emit(g, &value, || {
        let mut s = format!(
            "{:<16} {:>10} {:>18} {:>10} {:>10} {:>10}  {}\n",
            "USER", "CPU(s)", "MEMORY/LIMIT", "PIDS/MAX", "READ", "WRITE", "SERVICES"
        );
        for u in &rows {
            let _ = writeln!(
                s,
                "{:<16} {:>10} {:>18} {:>10} {:>10} {:>10}  {}",
                u.user,
                opt(u.cpu_usec, |c| format!("{:.2}", c as f64 / 1e6)),
                format!("{}/{}", opt(u.memory_bytes, mib), opt(u.limits.memory, mib)),
                format!(
                    "{}/{}",
                    opt(u.pids, |p| p.to_string()),
                    opt(u.limits.pids, |p| p.to_string())
                ),
                opt(u.io_read_bytes, mib),
                opt(u.io_write_bytes, mib),
                u.services
                    .iter()
                    .map(|(n, c)| format!("{n}:{c}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        s
    });
    ExitCode::SUCCESS
}

/// `cage-admin limits USER` or `cage-admin limits import-cgrules FILE`.
pub fn limits(g: &Global, args: &[String]) -> ExitCode {
    match args {
        [cmd, file] if cmd == "import-cgrules" => import(g, Path::new(file)),
        [user] => show(g, user),
        _ => fail(
            g,
            "usage: cage-admin limits USER | cage-admin limits import-cgrules FILE",
        ),
    }
}

fn show(g: &Global, name: &str) -> ExitCode {
    let settings = match g.config.settings() {
        Ok(s) => s,
        Err(errs) => return fail_err(g, &libcage::Error::Config(errs)),
    };
    let user = match libcage::sys::nss::getpwnam(name) {
        Ok(Some(p)) => p,
        Ok(None) => return fail(g, format!("no such user: {name}")),
        Err(e) => return fail(g, format!("looking up {name}: {e}")),
    };
    let (eff, errors) = cgroup::effective(&g.config, &settings, &user, false);
    let ctx = Context::new(&settings.cgroup).ok().flatten();
    let dirs: Vec<String> = ctx
        .as_ref()
        .map(|c| {
            c.user_dirs(&user.name)
                .iter()
                .map(|d| d.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    let rows: Vec<serde_json::Value> = eff
        .sources
        .iter()
        .map(|(k, from)| {
            serde_json::json!({
                "limit": k.name(),
                "value": eff.limits.get(*k).map(|v| k.show(v)),
                "from": from,
            })
        })
        .collect();
    let errs: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let value = serde_json::json!({
        "user": user.name,
        "enabled": settings.cgroup.enable,
        "cgroups": dirs,
        "limits": rows,
        "errors": errs,
    });
    emit(g, &value, || {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "user {}: resource limits {}",
            user.name,
            if settings.cgroup.enable {
                "on"
            } else {
                "off ([cgroup] enable = no)"
            }
        );
        for d in &dirs {
            let _ = writeln!(s, "cgroup {d}");
        }
        for (k, from) in &eff.sources {
            let v = eff
                .limits
                .get(*k)
                .map_or("unlimited".to_string(), |v| k.show(v));
            let _ = writeln!(s, "{:<9} {:<10} {from}", k.name(), v);
        }
        for e in &errs {
            let _ = writeln!(s, "ignored: {e}");
        }
        s
    });
    ExitCode::SUCCESS
}

fn import(g: &Global, file: &Path) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => return fail(g, format!("{}: {e}", file.display())),
    };
    let (rules, errors) = cgrules::parse(file, &text);
    // Destinations are read from this machine's v1 hierarchies (where
    // cgrules.conf lives).
    let mounts = match libcage::cgroup::fs::detect(&libcage::cgroup::layout::CONTROLLERS) {
        Ok(Some(Hierarchy::V1(hs))) => hs,
        _ => Vec::new(),
    };
    let read = |c: &str, dest: &str| {
        mounts
            .iter()
            .find(|h| h.subsystems.iter().any(|s| s == c))
            .map(|h| cgrules::read_v1(&h.mount, c, dest))
            .unwrap_or_default()
    };
    let out = cgrules::import(&rules, &read);
    let errs: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let value = serde_json::json!({ "rules": out, "errors": errs });
    emit(g, &value, || {
        let mut s = String::new();
        let f = file.display();
        for i in &out {
            if let Some(m) = &i.mapped {
                let _ = writeln!(s, "{m}\t# mapped from {f}:{}", i.line);
            }
            for u in &i.unmapped {
                let _ = writeln!(s, "# not mapped: {f}: {u}");
            }
        }
        for e in &errs {
            let _ = writeln!(s, "# not mapped: {e}");
        }
        s
    });
    ExitCode::SUCCESS
}
