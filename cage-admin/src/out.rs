//! Output helpers: human text or `--json`, errors on stderr.

use std::process::ExitCode;

use crate::Global;

/// Prints `value` as JSON, or `human` as text.
pub fn emit<T: serde::Serialize>(g: &Global, value: &T, human: impl FnOnce() -> String) {
    if g.json {
        match serde_json::to_string_pretty(value) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("cage-admin: cannot encode JSON: {e}"),
        }
    } else {
        let text = human();
        if !text.is_empty() {
            println!("{}", text.trim_end_matches('\n'));
        }
    }
}

/// Reports an error (JSON on stdout with --json) and returns failure.
pub fn fail(g: &Global, msg: impl std::fmt::Display) -> ExitCode {
    if g.json {
        println!("{}", serde_json::json!({ "error": msg.to_string() }));
    } else {
        eprintln!("cage-admin: {msg}");
    }
    ExitCode::FAILURE
}

/// Reports a core error; config errors one per line.
pub fn fail_err(g: &Global, e: &libcage::Error) -> ExitCode {
    match e {
        libcage::Error::Config(errs) if !g.json => {
            for err in errs {
                eprintln!("{err}");
            }
            ExitCode::FAILURE
        }
        _ => fail(g, e),
    }
}
