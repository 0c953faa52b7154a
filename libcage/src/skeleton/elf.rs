//! ELF dependency resolution without running anything (no `ldd`).
//!
//! Reads the program interpreter (`PT_INTERP`), `DT_NEEDED`, `DT_SONAME`,
//! `DT_RPATH`/`DT_RUNPATH` and whether `iconv_open` is imported, then
//! resolves libraries the way glibc's `ld.so` does: breadth first, reusing an
//! already loaded object of the same name or soname, searching `DT_RPATH` of
//! the object and its loaders (unless it has `DT_RUNPATH`), `DT_RUNPATH`,
//! the directories of `/etc/ld.so.conf` (what `ld.so.cache` is built from)
//! and the multiarch system directories; a candidate of another ELF class or
//! machine is skipped, as `ld.so` does.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader, Sym};
use object::{Endianness, ReadCache, ReadRef};

/// What one ELF file asks of the dynamic loader.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElfInfo {
    pub class64: bool,
    pub machine: u16,
    pub interp: Option<PathBuf>,
    pub needed: Vec<String>,
    pub soname: Option<String>,
    pub rpath: Option<String>,
    pub runpath: Option<String>,
    /// Imports `iconv_open` (so needs glibc's gconv modules at run time).
    pub uses_iconv: bool,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Whether `head` starts like an ELF file.
pub fn is_elf_magic(head: &[u8]) -> bool {
    head.starts_with(b"\x7fELF")
}

/// Reads the dynamic-linking facts of `path`; `Ok(None)` when it is not ELF.
/// Only the headers, the dynamic section and the dynamic symbols are read.
pub fn read(path: &Path) -> io::Result<Option<ElfInfo>> {
    let f = File::open(path)?;
    let cache = ReadCache::new(f);
    let data = &cache;
    let ident = match data.read_bytes_at(0, 16) {
        Ok(b) if is_elf_magic(b) => b,
        _ => return Ok(None),
    };
    let r = match ident[4] {
        elf::ELFCLASS64 => parse::<elf::FileHeader64<Endianness>, _>(data),
        elf::ELFCLASS32 => parse::<elf::FileHeader32<Endianness>, _>(data),
        _ => return Err(bad("unknown ELF class")),
    };
    r.map(Some).map_err(|e| bad(format!("malformed ELF: {e}")))
}

fn parse<'data, Elf, R>(data: R) -> object::read::Result<ElfInfo>
where
    Elf: FileHeader<Endian = Endianness>,
    R: ReadRef<'data>,
{
    let hdr = Elf::parse(data)?;
    let endian = hdr.endian()?;
    let mut info = ElfInfo {
        class64: hdr.is_class_64(),
        machine: hdr.e_machine(endian),
        ..ElfInfo::default()
    };
    let phdrs = hdr.program_headers(endian, data)?;
    let mut dynamic = None;
    for ph in phdrs {
        match ph.p_type(endian) {
            elf::PT_INTERP => {
                if let Some(i) = ph.interpreter(endian, data)? {
                    info.interp = Some(PathBuf::from(String::from_utf8_lossy(i).into_owned()));
                }
            }
            elf::PT_DYNAMIC => dynamic = ph.dynamic(endian, data)?,
            _ => {}
        }
    }
    let Some(dynamic) = dynamic else {
        return Ok(info);
    };
    // The string table is addressed by virtual address: map it to the file
    // through the PT_LOAD segment that holds it.
    let vaddr_to_offset = |addr: u64| -> Option<u64> {
        phdrs.iter().find_map(|ph| {
            let (va, off, sz) = (
                ph.p_vaddr(endian).into(),
                ph.p_offset(endian).into(),
                ph.p_filesz(endian).into(),
            );
            (ph.p_type(endian) == elf::PT_LOAD && addr >= va && addr < va + sz)
                .then(|| addr - va + off)
        })
    };
    let mut strtab = None;
    let mut strsz = 0u64;
    for d in dynamic {
        match d.tag32(endian) {
            Some(elf::DT_STRTAB) => strtab = Some(d.d_val(endian).into()),
            Some(elf::DT_STRSZ) => strsz = d.d_val(endian).into(),
            Some(elf::DT_NULL) => break,
            _ => {}
        }
    }
    let Some(stroff) = strtab.and_then(vaddr_to_offset) else {
        return Ok(info);
    };
    let string = |off: u64| -> Option<String> {
        if off >= strsz {
            return None;
        }
        data.read_bytes_at_until(stroff + off..stroff + strsz, 0)
            .ok()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    for d in dynamic {
        let val: u64 = d.d_val(endian).into();
        match d.tag32(endian) {
            Some(elf::DT_NEEDED) => info.needed.extend(string(val)),
            Some(elf::DT_SONAME) => info.soname = string(val),
            Some(elf::DT_RPATH) => info.rpath = string(val),
            Some(elf::DT_RUNPATH) => info.runpath = string(val),
            Some(elf::DT_NULL) => break,
            _ => {}
        }
    }
    // Imported symbols need the section headers; a stripped-of-sections file
    // simply reports no iconv use.
    if let Ok(sections) = hdr.sections(endian, data) {
        if let Ok(syms) = sections.symbols(endian, data, elf::SHT_DYNSYM) {
            info.uses_iconv = syms.iter().any(|s| {
                s.st_shndx(endian) == elf::SHN_UNDEF
                    && syms.symbol_name(endian, s).ok() == Some(b"iconv_open".as_slice())
            });
        }
    }
    Ok(info)
}

/// The library search configuration of a host (or of a test root).
#[derive(Clone, Debug, Default)]
pub struct LdConfig {
    /// `/etc/ld.so.conf` directories, in order, includes expanded.
    pub conf_dirs: Vec<PathBuf>,
}

impl LdConfig {
    /// Reads `/etc/ld.so.conf` and what it includes; missing files are empty.
    pub fn load() -> LdConfig {
        let mut c = LdConfig::default();
        c.read_conf(Path::new("/etc/ld.so.conf"), 0);
        c
    }

    fn read_conf(&mut self, file: &Path, depth: usize) {
        if depth > 8 {
            return;
        }
        let Ok(text) = std::fs::read_to_string(file) else {
            return;
        };
        let base = file.parent().unwrap_or(Path::new("/"));
        for raw in text.lines() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("include") {
                if rest.starts_with([' ', '\t']) {
                    for pat in rest.split_whitespace() {
                        for f in expand_glob(&base.join(pat)) {
                            self.read_conf(&f, depth + 1);
                        }
                    }
                    continue;
                }
            }
            if line.starts_with("hwcap") {
                continue;
            }
            for d in line.split([' ', '\t', ':', ',']).filter(|d| !d.is_empty()) {
                // Old syntax `dir=TYPE`.
                let d = d.split('=').next().unwrap_or(d);
                let p = PathBuf::from(d);
                if p.is_absolute() && !self.conf_dirs.contains(&p) {
                    self.conf_dirs.push(p);
                }
            }
        }
    }
}

/// The multiarch triplet of a machine, as Debian names it.
fn triplet(machine: u16, class64: bool) -> Option<&'static str> {
    match (machine, class64) {
        (elf::EM_X86_64, true) => Some("x86_64-linux-gnu"),
        (elf::EM_X86_64, false) => Some("x86_64-linux-gnux32"),
        (elf::EM_386, false) => Some("i386-linux-gnu"),
        (elf::EM_AARCH64, true) => Some("aarch64-linux-gnu"),
        (elf::EM_ARM, false) => Some("arm-linux-gnueabihf"),
        (elf::EM_PPC64, true) => Some("powerpc64le-linux-gnu"),
        (elf::EM_S390, true) => Some("s390x-linux-gnu"),
        (elf::EM_RISCV, true) => Some("riscv64-linux-gnu"),
        _ => None,
    }
}

/// The directories `ld.so` searches last (Debian's multiarch layout).
pub fn system_dirs(machine: u16, class64: bool) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(t) = triplet(machine, class64) {
        v.push(Path::new("/lib").join(t));
        v.push(Path::new("/usr/lib").join(t));
    }
    v.push("/lib".into());
    v.push("/usr/lib".into());
    v
}

/// Expands shell globs in every component of an absolute path, sorted.
pub fn expand_glob(pat: &Path) -> Vec<PathBuf> {
    use super::template::{glob_match, is_glob};
    let mut cur = vec![PathBuf::from("/")];
    for c in pat.components().skip(1) {
        let s = c.as_os_str().to_string_lossy();
        let mut next = Vec::new();
        for base in &cur {
            if is_glob(&s) {
                let Ok(rd) = std::fs::read_dir(base) else {
                    continue;
                };
                let mut names: Vec<_> = rd
                    .flatten()
                    .map(|e| e.file_name())
                    .filter(|n| glob_match(s.as_bytes(), n.as_encoded_bytes()))
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|n| base.join(n)));
            } else {
                let p = base.join(c.as_os_str());
                if p.symlink_metadata().is_ok() {
                    next.push(p);
                }
            }
        }
        cur = next;
    }
    cur
}

/// What one program (or library) needs to be loaded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deps {
    pub interp: Option<PathBuf>,
    /// Libraries in load order, as found (not canonicalized).
    pub libs: Vec<PathBuf>,
    /// `DT_NEEDED` names nothing was found for.
    pub missing: Vec<String>,
    /// Some loaded object imports `iconv_open`.
    pub uses_iconv: bool,
}

/// Resolves dependencies, parsing each file once.
pub struct Resolver {
    ld: LdConfig,
    cache: HashMap<PathBuf, Option<Arc<ElfInfo>>>,
}

struct Loaded {
    path: PathBuf,
    names: Vec<String>,
    info: Arc<ElfInfo>,
    parent: Option<usize>,
}

impl Resolver {
    pub fn new(ld: LdConfig) -> Resolver {
        Resolver {
            ld,
            cache: HashMap::new(),
        }
    }

    /// The parsed facts of `path` (`None`: not ELF or unreadable).
    pub fn info(&mut self, path: &Path) -> Option<Arc<ElfInfo>> {
        if let Some(i) = self.cache.get(path) {
            return i.clone();
        }
        let i = read(path).ok().flatten().map(Arc::new);
        self.cache.insert(path.to_path_buf(), i.clone());
        i
    }

    /// The dependencies of `path`; `None` when it is not ELF.
    pub fn resolve(&mut self, path: &Path) -> Option<Deps> {
        let main = self.info(path)?;
        let mut deps = Deps {
            interp: main.interp.clone(),
            uses_iconv: main.uses_iconv,
            ..Deps::default()
        };
        let mut loaded = vec![Loaded {
            path: path.to_path_buf(),
            names: vec![],
            info: main.clone(),
            parent: None,
        }];
        if let Some(interp) = &main.interp {
            if let Some(i) = self.info(interp) {
                let mut names = vec![];
                names.extend(interp.file_name().map(|n| n.to_string_lossy().into_owned()));
                names.extend(i.soname.clone());
                loaded.push(Loaded {
                    path: interp.clone(),
                    names,
                    info: i,
                    parent: None,
                });
            }
        }
        let mut queue: VecDeque<usize> = VecDeque::from([0]);
        while let Some(idx) = queue.pop_front() {
            let needed = loaded[idx].info.needed.clone();
            for name in needed {
                if loaded.iter().any(|l| l.names.contains(&name)) {
                    continue;
                }
                let found = if name.contains('/') {
                    let p = PathBuf::from(&name);
                    self.info(&p).map(|i| (p, i))
                } else {
                    self.search(&name, idx, &loaded, main.class64, main.machine)
                };
                match found {
                    Some((p, info)) => {
                        if let Some(l) = loaded.iter_mut().find(|l| l.path == p) {
                            l.names.push(name);
                            continue;
                        }
                        deps.uses_iconv |= info.uses_iconv;
                        deps.libs.push(p.clone());
                        let mut names = vec![name];
                        names.extend(info.soname.clone());
                        loaded.push(Loaded {
                            path: p,
                            names,
                            info,
                            parent: Some(idx),
                        });
                        queue.push_back(loaded.len() - 1);
                    }
                    None => deps.missing.push(name),
                }
            }
        }
        Some(deps)
    }

    fn search(
        &mut self,
        name: &str,
        from: usize,
        loaded: &[Loaded],
        class64: bool,
        machine: u16,
    ) -> Option<(PathBuf, Arc<ElfInfo>)> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let obj = &loaded[from];
        if obj.info.runpath.is_none() {
            // DT_RPATH of the object, then of each loader up to the program.
            let mut cur = Some(from);
            while let Some(i) = cur {
                if let Some(rp) = &loaded[i].info.rpath {
                    dirs.extend(expand_search_path(rp, &origin_of(&loaded[i].path, i == 0)));
                }
                cur = loaded[i].parent;
            }
        }
        if let Some(rp) = &obj.info.runpath {
            dirs.extend(expand_search_path(rp, &origin_of(&obj.path, from == 0)));
        }
        dirs.extend(self.ld.conf_dirs.iter().cloned());
        dirs.extend(system_dirs(machine, class64));
        for d in dirs {
            let p = d.join(name);
            if let Some(i) = self.info(&p) {
                if i.class64 == class64 && i.machine == machine {
                    return Some((p, i));
                }
            }
        }
        None
    }
}

/// `$ORIGIN` of an object: the directory of the program's real path, or of
/// the path a library was found at.
fn origin_of(path: &Path, is_main: bool) -> PathBuf {
    let p = if is_main {
        std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
    } else {
        path.to_path_buf()
    };
    p.parent().unwrap_or(Path::new("/")).to_path_buf()
}

/// Splits an RPATH/RUNPATH and expands `$ORIGIN`, `$LIB`, `$PLATFORM`.
pub fn expand_search_path(value: &str, origin: &Path) -> Vec<PathBuf> {
    value
        .split(':')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let s = s
                .replace("${ORIGIN}", "$ORIGIN")
                .replace("${LIB}", "$LIB")
                .replace("${PLATFORM}", "$PLATFORM")
                .replace("$ORIGIN", &origin.to_string_lossy())
                .replace("$LIB", "lib/x86_64-linux-gnu")
                .replace("$PLATFORM", "x86_64");
            PathBuf::from(s)
        })
        .filter(|p| p.is_absolute())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn reads_a_system_binary() {
        let i = read(Path::new("/bin/sh")).unwrap().unwrap();
        assert!(i.interp.is_some());
        assert!(i.needed.iter().any(|n| n == "libc.so.6"), "{i:?}");
        let libc = read(Path::new("/lib/x86_64-linux-gnu/libc.so.6"))
            .unwrap()
            .unwrap();
        assert_eq!(libc.soname.as_deref(), Some("libc.so.6"));
        assert!(!libc.uses_iconv);
        assert!(read(Path::new("/etc/hostname")).unwrap().is_none());
    }

    #[test]
    fn expands_origin() {
        assert_eq!(
            expand_search_path(
                "$ORIGIN/../lib:${ORIGIN}/x::rel:/abs",
                Path::new("/opt/a/bin")
            ),
            vec![
                PathBuf::from("/opt/a/bin/../lib"),
                PathBuf::from("/opt/a/bin/x"),
                PathBuf::from("/abs")
            ]
        );
    }

    #[test]
    fn reads_ld_so_conf_includes() {
        let ld = LdConfig::load();
        assert!(
            ld.conf_dirs
                .contains(&PathBuf::from("/usr/lib/x86_64-linux-gnu")),
            "{ld:?}"
        );
    }

    /// `ldd`'s answer for `path`: the canonical paths it loads (the test may
    /// run `ldd`; the product never does).
    fn ldd(path: &Path) -> Option<BTreeSet<PathBuf>> {
        let out = std::process::Command::new("ldd").arg(path).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || text.contains("not a dynamic executable") {
            return None;
        }
        let mut set = BTreeSet::new();
        for line in text.lines() {
            let l = line.trim();
            let p = match l.split_once(" => ") {
                Some((_, rest)) => rest.split(" (").next().unwrap_or(""),
                None => l.split(" (").next().unwrap_or(""),
            };
            if p.starts_with('/') {
                set.insert(std::fs::canonicalize(p).ok()?);
            } else if l.contains("not found") {
                return None;
            }
        }
        Some(set)
    }

    #[test]
    fn agrees_with_ldd_on_200_system_files() {
        let mut candidates: Vec<PathBuf> = Vec::new();
        for d in ["/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu"] {
            let mut v: Vec<PathBuf> = std::fs::read_dir(d)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.symlink_metadata().map(|m| m.is_file()).unwrap_or(false))
                .collect();
            v.sort();
            candidates.extend(v);
        }
        let mut r = Resolver::new(LdConfig::load());
        let mut checked = 0;
        let mut disagreements = Vec::new();
        // Spread the sample over the whole list.
        let step = (candidates.len() / 600).max(1);
        for p in candidates.iter().step_by(step) {
            if checked == 200 {
                break;
            }
            let Some(info) = r.info(p) else { continue };
            if info.needed.is_empty() {
                continue;
            }
            let Some(want) = ldd(p) else { continue };
            let deps = r.resolve(p).unwrap();
            let mut got: BTreeSet<PathBuf> = deps
                .libs
                .iter()
                .chain(deps.interp.iter())
                .filter_map(|l| std::fs::canonicalize(l).ok())
                .collect();
            // ldd lists the interpreter only for programs; libraries we
            // resolve for ourselves.
            if info.interp.is_none() {
                got.retain(|g| want.contains(g) || !g.to_string_lossy().contains("ld-linux"));
            }
            if got != want {
                disagreements.push(format!("{}: ours {got:?} ldd {want:?}", p.display()));
            }
            checked += 1;
        }
        assert_eq!(checked, 200, "too few dynamic ELF files on this system");
        assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    }
}
