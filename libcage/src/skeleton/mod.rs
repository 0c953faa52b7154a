//! The skeleton: the read-only tree every cage's `/` is made of.
//!
//! Three steps, as everywhere in cage: [`template`] parses `conf.d/*.cfg`
//! and the black lists; [`collect`] turns them into a manifest (every path,
//! what it is, with library dependencies found by [`elf`], never by running
//! a program); [`tree`] compares the manifest with the live tree, builds the
//! new tree beside it and swaps it in atomically.

pub mod collect;
pub mod dpkg;
pub mod elf;
pub mod template;
pub mod tree;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::{ConfigDir, ConfigError};
use crate::identity::Extra;
use crate::Error;
use collect::{Collector, Manifest};
use template::{BlackList, Template};
pub use tree::{Action, Counts};

/// Accounts the templates under `conf.d/` add to every cage (`users=`, `groups=`).
pub fn template_accounts(dir: &Path) -> Result<Extra, Vec<ConfigError>> {
    let mut extra = Extra::default();
    for t in template::load_dir(dir)? {
        for u in t.users {
            if !extra.users.contains(&u.value) {
                extra.users.push(u.value);
            }
        }
        for g in t.groups {
            if !extra.groups.contains(&g.value) {
                extra.groups.push(g.value);
            }
        }
    }
    Ok(extra)
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Build from scratch (nothing reused from the live tree).
    Init,
    /// Bring the live tree in line with the templates; `clean: false`
    /// (`--dont-clean`) keeps what no template names any more.
    Update { clean: bool },
    /// Refresh only these host paths (and what they need); a path gone from
    /// the host leaves the skeleton.
    List(Vec<PathBuf>),
}

/// Progress and per-path reports (a terminal bar, `--verbose`).
pub trait Observer {
    /// A new phase; `total` is 0 when unknown.
    fn phase(&mut self, _name: &str, _total: usize) {}
    fn tick(&mut self, _done: usize) {}
    fn path(&mut self, _action: Action, _path: &Path) {}
}

/// An observer that says nothing.
pub struct Quiet;
impl Observer for Quiet {}

/// What a run did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    pub skeleton: PathBuf,
    /// `built`, `updated` or `unchanged`.
    pub result: &'static str,
    #[serde(flatten)]
    pub counts: Counts,
    /// Paths created or replaced, and removed.
    pub changed: u64,
    pub removed: u64,
    pub seconds: f64,
    /// Whether the new tree replaced the old in one step.
    pub atomic: bool,
    /// Retired trees kept because cages still use them.
    pub retired_in_use: Vec<PathBuf>,
    pub notes: Vec<String>,
}

/// The configuration a build reads.
pub struct Inputs {
    pub skeleton: PathBuf,
    pub templates: Vec<Template>,
    pub black: BlackList,
    pub proxy_client: PathBuf,
}

impl Inputs {
    pub fn load(config: &ConfigDir) -> Result<Inputs, Error> {
        let settings = config.settings().map_err(Error::Config)?;
        let templates = template::load_dir(&config.templates_dir()).map_err(Error::Config)?;
        let mut black = BlackList::load(&[
            config.path().join("black.list"),
            config.path().join("custom.black.list"),
        ])
        .map_err(Error::Config)?;
        // Never the skeleton inside itself, nor the configuration.
        black.add(&settings.skeleton.to_string_lossy());
        black.add(&format!("{}.*", settings.skeleton.to_string_lossy()));
        black.add(&config.path().to_string_lossy());
        Ok(Inputs {
            skeleton: settings.skeleton,
            templates,
            black,
            proxy_client: settings.proxy_client,
        })
    }
}

/// The manifest the templates ask for; `cache` remembers analyses of
/// files between runs.
pub fn collect(
    inputs: &Inputs,
    cache: Option<PathBuf>,
    obs: &mut dyn Observer,
) -> Result<Manifest, Error> {
    let dev = skeleton_dev(&inputs.skeleton)?;
    obs.phase("collecting", 0);
    let mut tick = |n: usize| obs.tick(n);
    let mut c = Collector::new(&inputs.black, dev, &mut tick);
    if let Some(f) = &cache {
        c.cache = collect::AnalysisCache::load(f);
    }
    c.templates(&inputs.templates);
    if let Some(f) = &cache {
        c.cache.save(f);
    }
    Ok(c.take_manifest())
}

/// The device of the file system the skeleton lives on.
fn skeleton_dev(skeleton: &Path) -> Result<u64, Error> {
    let mut p = skeleton.to_path_buf();
    loop {
        if let Ok(m) = std::fs::metadata(&p) {
            return Ok(m.dev());
        }
        if !p.pop() {
            return Err(Error::Invalid(format!(
                "skeleton {}: no existing parent",
                skeleton.display()
            )));
        }
    }
}

/// Runs `req` against the skeleton configured in `config`.
pub fn run(config: &ConfigDir, req: &Request, obs: &mut dyn Observer) -> Result<Summary, Error> {
    let start = Instant::now();
    if !rustix::process::geteuid().is_root() {
        return Err(Error::Perm("building the skeleton needs root".into()));
    }
    let inputs = Inputs::load(config)?;
    let layout = tree::Layout::new(&inputs.skeleton)?;
    let _lock = layout.lock()?;
    layout.recover()?;

    let live_exists = layout.live.is_dir();
    obs.phase("reading skeleton", 0);
    let live_md: HashMap<PathBuf, std::fs::Metadata> = if live_exists {
        tree::scan(&layout.live).map_err(|e| Error::sys(layout.live.display().to_string(), e))?
    } else {
        HashMap::new()
    };

    let mut manifest = match req {
        Request::Init | Request::Update { .. } => collect(&inputs, Some(layout.cache_file()), obs)?,
        Request::List(paths) => {
            if !live_exists {
                return Err(Error::Invalid(format!(
                    "skeleton {}: not built yet (run `cage-admin init`)",
                    layout.live.display()
                )));
            }
            let dev = skeleton_dev(&inputs.skeleton)?;
            obs.phase("collecting", 0);
            let mut tick = |n: usize| obs.tick(n);
            let mut c = Collector::new(&inputs.black, dev, &mut tick);
            for p in paths {
                c.named(p, "update-list");
            }
            c.finish();
            let fresh = c.take_manifest();
            let mut nodes: BTreeMap<PathBuf, collect::Node> = live_md
                .iter()
                .filter_map(|(p, md)| {
                    tree::node_of_live(&layout.live, p, md).map(|n| (p.clone(), n))
                })
                .collect();
            for p in paths {
                let p = collect::normalize(p);
                if !fresh.nodes.contains_key(&p) {
                    nodes.retain(|k, _| !k.starts_with(&p));
                }
            }
            nodes.extend(fresh.nodes);
            Manifest {
                nodes,
                notes: fresh.notes,
                setid: fresh.setid,
            }
        }
    };

    mount_points(&mut manifest, config);
    proxy_clients(&mut manifest, config, &inputs)?;

    // Compare with the live tree.
    let reuse = !matches!(req, Request::Init);
    let clean = !matches!(req, Request::Update { clean: false });
    let mut changed = 0u64;
    for (p, node) in &manifest.nodes {
        let rel = p.strip_prefix("/").unwrap_or(p);
        let same = reuse
            && live_md
                .get(p)
                .is_some_and(|md| tree::same(node, &layout.live.join(rel), md));
        if !same {
            changed += 1;
        }
    }
    let mut removed = 0u64;
    // Parents first, so `parent_kept` sees what was decided for them.
    let mut extras: Vec<(&PathBuf, &std::fs::Metadata)> = live_md
        .iter()
        .filter(|(p, _)| !manifest.nodes.contains_key(*p))
        .collect();
    extras.sort_by(|a, b| a.0.cmp(b.0));
    for (p, md) in extras {
        let parent_kept = p.parent().is_none_or(|d| manifest.nodes.contains_key(d));
        let keep = parent_kept && !clean;
        match keep
            .then(|| tree::node_of_live(&layout.live, p, md))
            .flatten()
        {
            Some(n) => {
                manifest.nodes.insert(p.clone(), n);
            }
            None => {
                removed += 1;
                obs.path(Action::Remove, p);
            }
        }
    }

    let mut summary = Summary {
        skeleton: layout.live.clone(),
        changed,
        removed,
        atomic: true,
        notes: std::mem::take(&mut manifest.notes),
        ..Summary::default()
    };
    if live_exists && reuse && changed == 0 && removed == 0 {
        summary.result = "unchanged";
        summary.counts = count_only(&manifest);
        for p in manifest.nodes.keys() {
            obs.path(Action::Keep, p);
        }
    } else {
        obs.phase("building", manifest.nodes.len());
        let stage = layout.stage();
        let counts = tree::build(
            &stage,
            &layout.live,
            &manifest.nodes,
            &live_md,
            reuse,
            &mut |i, action, p| {
                obs.tick(i + 1);
                obs.path(action, p);
            },
        )?;
        summary.counts = counts;
        summary.atomic = layout.swap()?;
        summary.result = if live_exists { "updated" } else { "built" };
    }
    summary.retired_in_use = layout.collect_garbage();
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

/// Empty directories for the targets of `cage.mp` (and their parents), so
/// that cages find their mount points in the skeleton instead of shadowing
/// a skeleton directory with a tmpfs at every build (see `apply::tree`).
/// A target below a symlink or a file of the manifest is left to the
/// runtime; a `cage.mp` that does not parse adds nothing (cages refuse it).
fn mount_points(manifest: &mut Manifest, config: &ConfigDir) {
    let Ok(mps) = config.mount_points_config() else {
        return;
    };
    let dir = collect::Node::Dir {
        mode: 0o755,
        uid: 0,
        gid: 0,
    };
    'entries: for e in &mps.entries {
        let mut add = Vec::new();
        let mut p = PathBuf::from("/");
        for c in e.path.components().skip(1) {
            p.push(c);
            match manifest.nodes.get(&p) {
                Some(collect::Node::Dir { .. }) => {}
                Some(_) => continue 'entries,
                None => add.push(p.clone()),
            }
        }
        for p in add {
            manifest.nodes.insert(p, dir.clone());
        }
    }
}

/// The proxyexec client at the path of every proxied command (replacing
/// whatever a template put there: the real program needs privileges the
/// skeleton strips, and runs outside the cage). No proxied commands, no
/// client needed; a proxied command with no client built is an error.
fn proxy_clients(
    manifest: &mut Manifest,
    config: &ConfigDir,
    inputs: &Inputs,
) -> Result<(), Error> {
    let paths = crate::proxy::commands::load(config.path()).client_paths();
    if paths.is_empty() {
        return Ok(());
    }
    let client = &inputs.proxy_client;
    let contents = std::fs::read(client).map_err(|e| {
        Error::Invalid(format!(
            "{}: {e} (the proxyexec client, cage.ini proxy_client, needed for {})",
            client.display(),
            paths[0].display()
        ))
    })?;
    for p in paths {
        let mut parent = PathBuf::from("/");
        let comps: Vec<_> = p.components().skip(1).collect();
        let mut blocked = false;
        for c in &comps[..comps.len().saturating_sub(1)] {
            parent.push(c);
            match manifest.nodes.get(&parent) {
                Some(collect::Node::Dir { .. }) => {}
                Some(_) => {
                    blocked = true;
                    break;
                }
                None => {
                    manifest.nodes.insert(
                        parent.clone(),
                        collect::Node::Dir {
                            mode: 0o755,
                            uid: 0,
                            gid: 0,
                        },
                    );
                }
            }
        }
        if blocked {
            manifest.notes.push(format!(
                "{}: a parent is not a directory in the skeleton; no proxy client",
                p.display()
            ));
            continue;
        }
        manifest.nodes.insert(
            p,
            collect::Node::Generated {
                contents: contents.clone(),
                mode: 0o755,
            },
        );
    }
    Ok(())
}

/// Counts of an unchanged tree, from the manifest alone.
fn count_only(m: &Manifest) -> Counts {
    let mut c = Counts::default();
    for n in m.nodes.values() {
        match n {
            collect::Node::Dir { .. } => c.dirs += 1,
            collect::Node::Symlink { .. } => c.symlinks += 1,
            collect::Node::Device { .. } => c.devices += 1,
            collect::Node::File { meta, link, .. } => {
                c.files += 1;
                c.bytes_named += meta.size;
                if *link {
                    c.bytes_hardlinked += meta.size;
                } else {
                    c.bytes_own += meta.size;
                }
            }
            collect::Node::Generated { contents, .. } => {
                c.files += 1;
                c.bytes_named += contents.len() as u64;
                c.bytes_own += contents.len() as u64;
            }
        }
    }
    c
}

/// Set-uid/set-gid programs the templates name (reproduced without the bits).
pub fn setid_programs(config: &ConfigDir) -> Result<Vec<PathBuf>, Error> {
    let inputs = Inputs::load(config)?;
    let m = collect(&inputs, None, &mut Quiet)?;
    Ok(m.setid.into_iter().collect())
}

/// The template file `pkg add NAME` writes.
pub fn package_template(config: &ConfigDir, name: &str) -> PathBuf {
    config
        .templates_dir()
        .join(format!("pkg-{}.cfg", name.replace(':', "_")))
}

/// `pkg add NAME`: a template naming the installed package's files.
pub fn package_add(config: &ConfigDir, name: &str) -> Result<PathBuf, Error> {
    if !template::valid_package(name) {
        return Err(Error::Invalid(format!(
            "{name}: expected a Debian package name"
        )));
    }
    if !dpkg::installed(name) {
        return Err(Error::Invalid(format!("package {name} is not installed")));
    }
    if let Some((_, t)) = package_list(config)?.into_iter().find(|(n, _)| n == name) {
        return Err(Error::Invalid(format!(
            "package {name} is already named by {}",
            t.display()
        )));
    }
    let path = package_template(config, name);
    let text = format!(
        "; written by `cage-admin pkg add {name}`; the files are read from dpkg's\n; database at every update.\n[pkg-{}]\ncomment=Debian package {name}\npackages={name}\n",
        name.replace(':', "_")
    );
    std::fs::create_dir_all(config.templates_dir())
        .map_err(|e| Error::sys(config.templates_dir().display().to_string(), e))?;
    let tmp = path.with_extension("cfg.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::sys(path.display().to_string(), e))?;
    Ok(path)
}

/// `pkg remove NAME`: removes the template `pkg add` wrote.
pub fn package_remove(config: &ConfigDir, name: &str) -> Result<PathBuf, Error> {
    let path = package_template(config, name);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match package_list(config)?.into_iter().find(|(n, _)| n == name) {
                Some((_, t)) => Err(Error::Invalid(format!(
                    "package {name} is named by {}; edit that template",
                    t.display()
                ))),
                None => Err(Error::Invalid(format!(
                    "package {name} is not in the skeleton"
                ))),
            }
        }
        Err(e) => Err(Error::sys(path.display().to_string(), e)),
    }
}

/// `pkg list`: every package named by a template, with the template file.
pub fn package_list(config: &ConfigDir) -> Result<Vec<(String, PathBuf)>, Error> {
    let ts = template::load_dir(&config.templates_dir()).map_err(Error::Config)?;
    let mut v: Vec<(String, PathBuf)> = ts
        .into_iter()
        .flat_map(|t| {
            let file = t.file.clone();
            t.packages.into_iter().map(move |p| (p.value, file.clone()))
        })
        .collect();
    v.sort();
    Ok(v)
}
