//! cage-admin: the administration tool (cagefsctl's job).

mod skeleton_cmd;

use std::process::ExitCode;

use clap::Parser;
use libcage::config::ConfigDir;

/// Options every command sees.
pub struct Global {
    pub config: ConfigDir,
    pub json: bool,
    pub verbose: bool,
}

#[derive(Parser, Debug)]
#[command(name = "cage-admin", version, about = "Administer cage, the per-user filesystem cage")]
struct Cli {
    /// Configuration directory
    #[arg(long, global = true, default_value = libcage::paths::DEFAULT_CONFIG_DIR)]
    config: std::path::PathBuf,
    /// Machine-readable output
    #[arg(long, global = true)]
    json: bool,
    /// More detail
    #[arg(long, short, global = true)]
    verbose: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand, Debug)]
enum Cmd {
    #[command(flatten)]
    Skeleton(skeleton_cmd::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let g = Global { config: ConfigDir::new(cli.config), json: cli.json, verbose: cli.verbose };
    match cli.cmd {
        Cmd::Skeleton(c) => skeleton_cmd::run(c, &g),
    }
}
