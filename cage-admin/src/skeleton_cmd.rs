//! Skeleton commands: init, update, update-list, pkg, print-suids.
//! The work is in `libcage::skeleton`; this module parses arguments and
//! talks to the admin (progress bar on a terminal, summary, `--json`,
//! `--verbose` file list).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use libcage::skeleton::{self, Action, Observer, Request, Summary};

use crate::Global;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Build the skeleton from the templates in conf.d/ (from scratch)
    Init,
    /// Bring the skeleton in line with the templates and the host's files
    Update {
        /// Keep files no template names any more
        #[arg(long, short = 'd')]
        dont_clean: bool,
        /// Do nothing (successfully) when no skeleton was built yet: for the
        /// apt hook
        #[arg(long)]
        if_built: bool,
    },
    /// Refresh only the paths read from stdin, one a line
    UpdateList,
    /// Debian packages whose files are in the skeleton
    Pkg {
        #[command(subcommand)]
        cmd: PkgCommand,
    },
    /// Set-uid/set-gid programs the templates name (not set-id inside)
    PrintSuids,
}

#[derive(clap::Subcommand, Debug)]
pub enum PkgCommand {
    /// Add an installed package's files (run `update` to apply)
    Add { name: String },
    /// Remove a package added with `pkg add` (run `update` to apply)
    Remove { name: String },
    /// List packages named by templates
    List,
}

fn fail(g: &Global, e: &libcage::Error) -> ExitCode {
    if g.json {
        let detail: Vec<String> = match e {
            libcage::Error::Config(errs) => errs.iter().map(|x| x.to_string()).collect(),
            other => vec![other.to_string()],
        };
        println!("{}", serde_json::json!({ "error": detail.join("\n") }));
    } else {
        match e {
            libcage::Error::Config(errs) => {
                for x in errs {
                    eprintln!("{x}");
                }
            }
            other => eprintln!("cage-admin: {other}"),
        }
    }
    ExitCode::FAILURE
}

/// A progress bar on stderr when it is a terminal; the file list on stdout
/// with `--verbose`.
struct Ui {
    bar: bool,
    verbose: bool,
    phase: String,
    total: usize,
    last: Instant,
    drawn: bool,
}

impl Ui {
    fn new(g: &Global) -> Ui {
        Ui {
            bar: std::io::stderr().is_terminal() && !g.verbose,
            verbose: g.verbose && !g.json,
            phase: String::new(),
            total: 0,
            last: Instant::now() - Duration::from_secs(1),
            drawn: false,
        }
    }

    fn draw(&mut self, done: usize) {
        let mut err = std::io::stderr().lock();
        const WIDTH: usize = 30;
        let line = if let Some(filled) = (done.min(self.total) * WIDTH).checked_div(self.total) {
            format!(
                "\r{:<18} [{}{}] {}/{}",
                self.phase,
                "#".repeat(filled),
                ".".repeat(WIDTH - filled),
                done,
                self.total
            )
        } else {
            format!("\r{:<18} {} paths", self.phase, done)
        };
        let _ = write!(err, "{line}\x1b[K");
        let _ = err.flush();
        self.drawn = true;
    }

    fn clear(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
            self.drawn = false;
        }
    }
}

impl Observer for Ui {
    fn phase(&mut self, name: &str, total: usize) {
        self.phase = name.to_string();
        self.total = total;
        if self.bar {
            self.draw(0);
        }
    }

    fn tick(&mut self, done: usize) {
        if self.bar && self.last.elapsed() >= Duration::from_millis(100) {
            self.last = Instant::now();
            self.draw(done);
        }
    }

    fn path(&mut self, action: Action, path: &Path) {
        if self.verbose {
            self.clear();
            println!("{:<6} {}", action.as_str(), path.display());
        }
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        self.clear();
    }
}

fn size(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn report(g: &Global, s: &Summary) {
    if g.json {
        match serde_json::to_string_pretty(s) {
            Ok(t) => println!("{t}"),
            Err(e) => eprintln!("cage-admin: cannot encode JSON: {e}"),
        }
        return;
    }
    for n in &s.notes {
        eprintln!("note: {n}");
    }
    let c = &s.counts;
    println!(
        "skeleton {}: {} in {:.2} s",
        s.skeleton.display(),
        s.result,
        s.seconds
    );
    println!(
        "  {} files, {} directories, {} symlinks, {} devices; {} changed, {} removed",
        c.files, c.dirs, c.symlinks, c.devices, s.changed, s.removed
    );
    println!(
        "  {} named: {} hardlinked from the host, {} own ({} copied now)",
        size(c.bytes_named),
        size(c.bytes_hardlinked),
        size(c.bytes_own),
        size(c.bytes_copied)
    );
    if !s.atomic {
        println!("  warning: this file system cannot exchange directories atomically; the swap took two renames");
    }
    for r in &s.retired_in_use {
        println!(
            "  kept {} (cages still use it; removed by a later update)",
            r.display()
        );
    }
}

fn build(g: &Global, req: Request) -> ExitCode {
    let mut ui = Ui::new(g);
    let r = skeleton::run(&g.config, &req, &mut ui);
    drop(ui);
    match r {
        Ok(s) => {
            report(g, &s);
            ExitCode::SUCCESS
        }
        Err(e) => fail(g, &e),
    }
}

pub fn run(cmd: Command, g: &Global) -> ExitCode {
    match cmd {
        Command::Init => build(g, Request::Init),
        Command::Update {
            dont_clean,
            if_built,
        } => {
            if if_built {
                match g.config.settings() {
                    Ok(s) if !s.skeleton.is_dir() => return ExitCode::SUCCESS,
                    Ok(_) => {}
                    Err(e) => return fail(g, &libcage::Error::Config(e)),
                }
            }
            build(g, Request::Update { clean: !dont_clean })
        }
        Command::UpdateList => {
            let mut paths = Vec::new();
            for line in std::io::stdin().lock().lines() {
                let line = match line {
                    Ok(l) => l,
                    Err(e) => return fail(g, &libcage::Error::sys("reading stdin", e)),
                };
                let t = line.trim();
                if t.is_empty() {
                    continue;
                }
                if !t.starts_with('/') {
                    return fail(
                        g,
                        &libcage::Error::Invalid(format!("{t}: expected an absolute path")),
                    );
                }
                paths.push(PathBuf::from(t));
            }
            if paths.is_empty() {
                return fail(g, &libcage::Error::Invalid("no paths on stdin".into()));
            }
            build(g, Request::List(paths))
        }
        Command::Pkg { cmd } => pkg(g, cmd),
        Command::PrintSuids => match skeleton::setid_programs(&g.config) {
            Ok(v) => {
                if g.json {
                    println!("{}", serde_json::json!({ "setid": v }));
                } else {
                    for p in v {
                        println!("{}", p.display());
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(g, &e),
        },
    }
}

fn pkg(g: &Global, cmd: PkgCommand) -> ExitCode {
    let done = |verb: &str, name: &str, path: PathBuf| {
        if g.json {
            println!(
                "{}",
                serde_json::json!({ "package": name, "template": path, "action": verb })
            );
        } else {
            println!(
                "{verb} {name} ({}); run `cage-admin update` to apply",
                path.display()
            );
        }
        ExitCode::SUCCESS
    };
    match cmd {
        PkgCommand::Add { name } => match skeleton::package_add(&g.config, &name) {
            Ok(p) => done("added", &name, p),
            Err(e) => fail(g, &e),
        },
        PkgCommand::Remove { name } => match skeleton::package_remove(&g.config, &name) {
            Ok(p) => done("removed", &name, p),
            Err(e) => fail(g, &e),
        },
        PkgCommand::List => match skeleton::package_list(&g.config) {
            Ok(v) => {
                if g.json {
                    let items: Vec<_> = v
                        .iter()
                        .map(|(n, f)| serde_json::json!({ "package": n, "template": f }))
                        .collect();
                    println!("{}", serde_json::Value::Array(items));
                } else {
                    for (n, f) in v {
                        println!("{n}\t{}", f.display());
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(g, &e),
        },
    }
}
