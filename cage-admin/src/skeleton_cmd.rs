//! Skeleton commands: init, update, update-list, pkg, print-suids.
//! (Owned by the skeleton work; see libcage::skeleton.)

use std::process::ExitCode;

use crate::Global;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Build the skeleton from the templates in conf.d/
    Init,
}

pub fn run(cmd: Command, g: &Global) -> ExitCode {
    match cmd {
        Command::Init => {
            let _ = g;
            eprintln!("cage-admin init: not built yet");
            ExitCode::FAILURE
        }
    }
}
