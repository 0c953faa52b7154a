//! cage-admin: the administration tool (cagefsctl's job).

mod cage_cmd;
mod limits_cmd;
mod out;
mod pam_cmd;
mod skeleton_cmd;
mod users_cmd;

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
#[command(
    name = "cage-admin",
    version,
    about = "Administer cage, the per-user filesystem cage"
)]
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
    /// Enable, disable or show one user
    #[command(subcommand)]
    User(users_cmd::UserCmd),
    /// Show or change the mode (enable-all / disable-all)
    #[command(subcommand)]
    Mode(users_cmd::ModeCmd),
    /// List users with an enabled marker
    ListEnabled,
    /// List users with a disabled marker
    ListDisabled,
    /// Show (or set) the lowest uid that can be caged
    MinUid { value: Option<u32> },
    /// Print the two-digit directory prefix of a user
    Getprefix { user: String },
    /// Print the mount plan of a user's cage
    Plan { user: String },
    /// Run a command (default: a login shell) as USER inside USER's cage
    Enter {
        user: String,
        /// Print where the entry's time went (µs per step) on stderr
        #[arg(long)]
        timings: bool,
        #[arg(last = true)]
        cmd: Vec<String>,
    },
    /// Keep pam_cage last in every login service's PAM stack
    #[command(subcommand)]
    Pam(pam_cmd::PamCmd),
    /// List live cages
    List,
    /// Build and pin a new cage generation now (after config or skeleton changes)
    Remount {
        user: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Per-user CPU time, memory, processes, I/O and their limits
    Top,
    /// Effective limits of USER and where each comes from; or
    /// `limits import-cgrules FILE` to turn cgrules.conf rules into limits.conf lines
    Limits {
        #[arg(required = true, num_args = 1..=2)]
        args: Vec<String>,
    },
    /// Unpin cages: new entries build a new one, processes inside keep running
    Unmount {
        user: Option<String>,
        #[arg(long)]
        all: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let g = Global {
        config: ConfigDir::new(cli.config),
        json: cli.json,
        verbose: cli.verbose,
    };
    match cli.cmd {
        Cmd::Skeleton(c) => skeleton_cmd::run(c, &g),
        Cmd::User(c) => users_cmd::user(c, &g),
        Cmd::Mode(c) => users_cmd::mode(c, &g),
        Cmd::ListEnabled => users_cmd::list(&g, true),
        Cmd::ListDisabled => users_cmd::list(&g, false),
        Cmd::MinUid { value } => users_cmd::min_uid(&g, value),
        Cmd::Getprefix { user } => users_cmd::getprefix(&g, &user),
        Cmd::Plan { user } => cage_cmd::plan(&g, &user),
        Cmd::Enter { user, timings, cmd } => cage_cmd::enter(&g, &user, timings, &cmd),
        Cmd::Pam(c) => pam_cmd::run(c, &g),
        Cmd::List => cage_cmd::list(&g),
        Cmd::Remount { user, all } => cage_cmd::remount(&g, user.as_deref(), all),
        Cmd::Top => limits_cmd::top(&g),
        Cmd::Limits { args } => limits_cmd::limits(&g, &args),
        Cmd::Unmount { user, all } => cage_cmd::unmount(&g, user.as_deref(), all),
    }
}
