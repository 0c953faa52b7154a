//! Who is caged: mode, markers, exclude lists, `min_uid`. Root and users
//! below `min_uid` never are.

use crate::config::users::{has_marker, Excludes};
use crate::config::{ConfigDir, Mode, Settings};
use crate::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    Root,
    BelowMinUid,
    Excluded,
    Disabled,
    NotEnabled,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Root => "root is never caged",
            Reason::BelowMinUid => "uid below min_uid",
            Reason::Excluded => "listed in exclude/",
            Reason::Disabled => "disabled",
            Reason::NotEnabled => "not enabled (mode disable-all)",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Caged,
    NotCaged(Reason),
}

/// Everything the decision depends on, already looked up.
#[derive(Clone, Copy, Debug)]
pub struct Facts {
    pub uid: u32,
    pub min_uid: u32,
    pub mode: Mode,
    pub enabled_marker: bool,
    pub disabled_marker: bool,
    pub excluded: bool,
}

/// The policy table (pure).
pub fn decide(f: Facts) -> Decision {
    if f.uid == 0 {
        return Decision::NotCaged(Reason::Root);
    }
    if f.uid < f.min_uid {
        return Decision::NotCaged(Reason::BelowMinUid);
    }
    if f.excluded {
        return Decision::NotCaged(Reason::Excluded);
    }
    match f.mode {
        Mode::EnableAll if f.disabled_marker => Decision::NotCaged(Reason::Disabled),
        Mode::EnableAll => Decision::Caged,
        Mode::DisableAll if f.enabled_marker => Decision::Caged,
        Mode::DisableAll => Decision::NotCaged(Reason::NotEnabled),
    }
}

/// Looks up the facts for `uid`/`name` under `cfg` and decides. Only the
/// marker the mode consults is read, and the exclude lists only when the
/// user would otherwise be caged: a broken file never refuses a user it
/// cannot concern. A marker that cannot be read is an error (never "not
/// enabled"): the entry fails closed.
pub fn evaluate(
    cfg: &ConfigDir,
    settings: &Settings,
    uid: u32,
    name: &str,
) -> Result<Decision, Error> {
    if uid == 0 {
        return Ok(Decision::NotCaged(Reason::Root));
    }
    if uid < settings.min_uid {
        return Ok(Decision::NotCaged(Reason::BelowMinUid));
    }
    let marker = |dir: std::path::PathBuf| {
        has_marker(&dir, uid, name).map_err(|e| Error::sys("reading the user's marker", e))
    };
    let (enabled_marker, disabled_marker) = match settings.mode {
        Mode::DisableAll => (marker(cfg.enabled_dir())?, false),
        Mode::EnableAll => (false, marker(cfg.disabled_dir())?),
    };
    let mut facts = Facts {
        uid,
        min_uid: settings.min_uid,
        mode: settings.mode,
        enabled_marker,
        disabled_marker,
        excluded: false,
    };
    if decide(facts) != Decision::Caged {
        return Ok(decide(facts));
    }
    let excludes = Excludes::load(&cfg.exclude_dir()).map_err(Error::Config)?;
    facts.excluded = excludes.contains(name);
    Ok(decide(facts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(uid: u32, mode: Mode, en: bool, dis: bool, ex: bool) -> Facts {
        Facts {
            uid,
            min_uid: 1000,
            mode,
            enabled_marker: en,
            disabled_marker: dis,
            excluded: ex,
        }
    }

    #[test]
    fn policy_table() {
        use Decision::*;
        use Mode::*;
        use Reason::*;
        let table = [
            // uid, mode, enabled, disabled, excluded => decision
            (0, EnableAll, true, false, false, NotCaged(Root)),
            (999, EnableAll, true, false, false, NotCaged(BelowMinUid)),
            (1000, EnableAll, false, false, false, Caged),
            (1000, EnableAll, false, true, false, NotCaged(Disabled)),
            (1000, EnableAll, true, true, false, NotCaged(Disabled)),
            (1000, EnableAll, false, false, true, NotCaged(Excluded)),
            (1000, DisableAll, false, false, false, NotCaged(NotEnabled)),
            (1000, DisableAll, true, false, false, Caged),
            (1000, DisableAll, true, true, false, Caged),
            (1000, DisableAll, true, false, true, NotCaged(Excluded)),
            (65000, DisableAll, true, false, false, Caged),
        ];
        for (uid, mode, en, dis, ex, want) in table {
            assert_eq!(
                decide(facts(uid, mode, en, dis, ex)),
                want,
                "uid={uid} mode={mode:?} en={en} dis={dis} ex={ex}"
            );
        }
    }
}
