//! Who is caged: mode, markers, exclude lists, `min_uid`. Root and users
//! below `min_uid` never are.

use crate::config::users::{has_marker, Excludes};
use crate::config::{ConfigDir, ConfigError, Mode, Settings};
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

/// A fact the decision may need, looked up only when it matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Question {
    /// `users.enabled/<prefix>/<user>` exists.
    EnabledMarker,
    /// `users.disabled/<prefix>/<user>` exists.
    DisabledMarker,
    /// The user is named in `exclude/*`.
    ExcludeList,
}

/// What a lookup answered: `Broken` when it could not tell (a file that
/// cannot be read or parsed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fact {
    Yes,
    No,
    Broken,
}

/// What the decision knows of `cage.ini`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ini {
    Read {
        min_uid: u32,
        mode: Mode,
    },
    /// cage.ini is unreadable or malformed: the mode is unknown, and uids
    /// below `floor` (the `min_uid` the file still states without doubt,
    /// else UID_MIN of /etc/login.defs when it states none, else 0) are
    /// taken as system accounts.
    Broken {
        floor: u32,
    },
}

/// Something broken that the decision depended on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Ini,
    Lookup(Question),
}

impl From<Decision> for Verdict {
    fn from(d: Decision) -> Self {
        Verdict::Decided(d)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Decided(Decision),
    /// The user would be caged in some reading of the broken sources: the
    /// session must be refused (an error never uncages).
    Refused(Vec<Source>),
}

/// The policy (pure). `caller_min_uid` is a `min_uid` given by the caller
/// (PAM `min_uid=N`), which replaces the one of cage.ini. Facts are asked
/// for only when the answer matters, in this order: mode and markers first,
/// then the exclude lists (only for a user who would otherwise be caged).
/// With a broken cage.ini both modes are considered: the user passes only
/// when neither would cage them.
pub fn decide(
    uid: u32,
    caller_min_uid: Option<u32>,
    ini: Ini,
    ask: &mut dyn FnMut(Question) -> Fact,
) -> Verdict {
    use Decision::NotCaged;
    if uid == 0 {
        return Verdict::Decided(NotCaged(Reason::Root));
    }
    let (min_uid, modes, mut broken): (u32, &[Mode], Vec<Source>) = match ini {
        Ini::Read { min_uid, mode } => (
            caller_min_uid.unwrap_or(min_uid),
            match mode {
                Mode::EnableAll => &[Mode::EnableAll],
                Mode::DisableAll => &[Mode::DisableAll],
            },
            Vec::new(),
        ),
        Ini::Broken { floor } => (
            caller_min_uid.unwrap_or(floor),
            &[Mode::EnableAll, Mode::DisableAll],
            vec![Source::Ini],
        ),
    };
    if uid < min_uid {
        return Verdict::Decided(NotCaged(Reason::BelowMinUid));
    }
    let mut caged_somehow = false;
    let mut reason = None;
    for &mode in modes {
        let q = match mode {
            Mode::EnableAll => Question::DisabledMarker,
            Mode::DisableAll => Question::EnabledMarker,
        };
        match (mode, ask(q)) {
            (Mode::EnableAll, Fact::Yes) => {
                reason.get_or_insert(Reason::Disabled);
            }
            (Mode::DisableAll, Fact::No) => {
                reason.get_or_insert(Reason::NotEnabled);
            }
            (_, Fact::Broken) => {
                broken.push(Source::Lookup(q));
                caged_somehow = true;
            }
            _ => caged_somehow = true,
        }
    }
    if !caged_somehow {
        return Verdict::Decided(NotCaged(reason.unwrap_or(Reason::NotEnabled)));
    }
    match ask(Question::ExcludeList) {
        Fact::Yes => Verdict::Decided(NotCaged(Reason::Excluded)),
        Fact::Broken => {
            broken.push(Source::Lookup(Question::ExcludeList));
            Verdict::Refused(broken)
        }
        Fact::No if broken.is_empty() => Verdict::Decided(Decision::Caged),
        Fact::No => Verdict::Refused(broken),
    }
}

/// Looks up the facts for `uid`/`name` under `cfg` and decides.
/// `settings` is cage.ini as loaded. A refusal is `Error::Config` with
/// every broken file that concerned the user (file:line where the parser
/// gives one, the errno otherwise); broken files that did not matter are
/// logged as a warning under `service` and change nothing.
pub fn evaluate(
    cfg: &ConfigDir,
    settings: Result<&Settings, &Vec<ConfigError>>,
    caller_min_uid: Option<u32>,
    uid: u32,
    name: &str,
    service: &str,
) -> Result<Decision, Error> {
    let ini = match settings {
        Ok(s) => Ini::Read {
            min_uid: s.min_uid,
            mode: s.mode,
        },
        // The min_uid the broken file still states without doubt (one
        // valid line, or none: UID_MIN); when that itself is in doubt,
        // every non-root user counts (floor 0): an error never uncages.
        Err(_) => Ini::Broken {
            floor: Settings::min_uid_despite_errors(&cfg.ini()).unwrap_or(0),
        },
    };
    let mut errors: Vec<ConfigError> = Vec::new();
    let mut ask = |q: Question| {
        let r = match q {
            Question::EnabledMarker => has_marker(&cfg.enabled_dir(), uid, name),
            Question::DisabledMarker => has_marker(&cfg.disabled_dir(), uid, name),
            Question::ExcludeList => Excludes::load(&cfg.exclude_dir())
                .map(|e| e.contains(name))
                .map_err(|mut e| {
                    let first = e.remove(0);
                    errors.append(&mut e);
                    first
                }),
        };
        match r {
            Ok(true) => Fact::Yes,
            Ok(false) => Fact::No,
            Err(e) => {
                errors.push(e);
                Fact::Broken
            }
        }
    };
    let verdict = decide(uid, caller_min_uid, ini, &mut ask);
    let mut all: Vec<ConfigError> = settings.err().cloned().unwrap_or_default();
    all.append(&mut errors);
    match verdict {
        Verdict::Decided(d) => {
            if !all.is_empty() {
                crate::log::warn(
                    service,
                    &format!(
                        "user {name}: {} despite broken configuration: {}",
                        match d {
                            Decision::Caged => "caged".to_string(),
                            Decision::NotCaged(r) => format!("not caged ({})", r.as_str()),
                        },
                        Error::Config(all)
                    ),
                );
            }
            Ok(d)
        }
        Verdict::Refused(_) => Err(Error::Config(all)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Row = (
        u32,
        Option<u32>,
        Ini,
        Fact,
        Fact,
        Fact,
        Verdict,
        Vec<Question>,
    );

    /// Answers from a fixed table, recording what was asked.
    fn run(
        uid: u32,
        caller: Option<u32>,
        ini: Ini,
        en: Fact,
        dis: Fact,
        ex: Fact,
    ) -> (Verdict, Vec<Question>) {
        let mut asked = Vec::new();
        let v = decide(uid, caller, ini, &mut |q| {
            asked.push(q);
            match q {
                Question::EnabledMarker => en,
                Question::DisabledMarker => dis,
                Question::ExcludeList => ex,
            }
        });
        (v, asked)
    }

    #[test]
    fn policy_table() {
        use Decision::*;
        use Fact::*;
        use Mode::*;
        use Question::*;
        use Reason::*;
        use Verdict::{Decided, Refused};
        let read = |mode| Ini::Read {
            min_uid: 1000,
            mode,
        };
        let broken = Ini::Broken { floor: 1000 };
        let ini = Source::Ini;
        let lk = Source::Lookup;
        // uid, caller min_uid, cage.ini, enabled, disabled, excluded => verdict, asked
        #[rustfmt::skip]
        let table: Vec<Row> = vec![
            (0, None, read(EnableAll), Yes, No, No, Decided(NotCaged(Root)), vec![]),
            (0, None, broken, Broken, Broken, Broken, Decided(NotCaged(Root)), vec![]),
            (999, None, read(EnableAll), Yes, No, No, Decided(NotCaged(BelowMinUid)), vec![]),
            (1000, None, read(EnableAll), No, No, No, Caged.into(), vec![DisabledMarker, ExcludeList]),
            (1000, None, read(EnableAll), No, Yes, No, Decided(NotCaged(Disabled)), vec![DisabledMarker]),
            (1000, None, read(EnableAll), Yes, Yes, No, Decided(NotCaged(Disabled)), vec![DisabledMarker]),
            (1000, None, read(EnableAll), No, No, Yes, Decided(NotCaged(Excluded)), vec![DisabledMarker, ExcludeList]),
            (1000, None, read(DisableAll), No, No, No, Decided(NotCaged(NotEnabled)), vec![EnabledMarker]),
            (1000, None, read(DisableAll), Yes, No, No, Caged.into(), vec![EnabledMarker, ExcludeList]),
            (1000, None, read(DisableAll), Yes, Yes, No, Caged.into(), vec![EnabledMarker, ExcludeList]),
            (1000, None, read(DisableAll), Yes, No, Yes, Decided(NotCaged(Excluded)), vec![EnabledMarker, ExcludeList]),
            (65000, None, read(DisableAll), Yes, No, No, Caged.into(), vec![EnabledMarker, ExcludeList]),
            // The caller's min_uid replaces cage.ini's, either way.
            (1500, Some(2000), read(EnableAll), No, No, No, Decided(NotCaged(BelowMinUid)), vec![]),
            (600, Some(500), read(EnableAll), No, No, No, Caged.into(), vec![DisabledMarker, ExcludeList]),
            // An unreadable marker never uncages: refused, unless excluded.
            (1000, None, read(DisableAll), Broken, No, No, Refused(vec![lk(EnabledMarker)]), vec![EnabledMarker, ExcludeList]),
            (1000, None, read(DisableAll), Broken, No, Yes, Decided(NotCaged(Excluded)), vec![EnabledMarker, ExcludeList]),
            (1000, None, read(EnableAll), No, Broken, No, Refused(vec![lk(DisabledMarker)]), vec![DisabledMarker, ExcludeList]),
            // A broken exclude/ concerns only users who would be caged.
            (1000, None, read(DisableAll), No, No, Broken, Decided(NotCaged(NotEnabled)), vec![EnabledMarker]),
            (1000, None, read(EnableAll), No, Yes, Broken, Decided(NotCaged(Disabled)), vec![DisabledMarker]),
            (999, None, read(EnableAll), No, No, Broken, Decided(NotCaged(BelowMinUid)), vec![]),
            (1000, None, read(DisableAll), Yes, No, Broken, Refused(vec![lk(ExcludeList)]), vec![EnabledMarker, ExcludeList]),
            // A broken cage.ini: system accounts pass, both modes are
            // considered for the others.
            (33, None, broken, Broken, Broken, Broken, Decided(NotCaged(BelowMinUid)), vec![]),
            (1000, None, broken, Yes, No, No, Refused(vec![ini]), vec![DisabledMarker, EnabledMarker, ExcludeList]),
            (1000, None, broken, No, No, No, Refused(vec![ini]), vec![DisabledMarker, EnabledMarker, ExcludeList]),
            (1000, None, broken, No, Yes, No, Decided(NotCaged(Disabled)), vec![DisabledMarker, EnabledMarker]),
            (1000, None, broken, Yes, No, Yes, Decided(NotCaged(Excluded)), vec![DisabledMarker, EnabledMarker, ExcludeList]),
            (1000, None, broken, Yes, Yes, No, Refused(vec![ini]), vec![DisabledMarker, EnabledMarker, ExcludeList]),
            (1000, None, broken, No, Broken, No, Refused(vec![ini, lk(DisabledMarker)]), vec![DisabledMarker, EnabledMarker, ExcludeList]),
            (1500, Some(2000), broken, Yes, No, No, Decided(NotCaged(BelowMinUid)), vec![]),
            (600, Some(500), broken, Yes, No, No, Refused(vec![ini]), vec![DisabledMarker, EnabledMarker, ExcludeList]),
        ];
        for (uid, caller, ini, en, dis, ex, want, want_asked) in table {
            let (got, asked) = run(uid, caller, ini, en, dis, ex);
            let row =
                format!("uid={uid} caller={caller:?} ini={ini:?} en={en:?} dis={dis:?} ex={ex:?}");
            assert_eq!(got, want, "{row}");
            assert_eq!(asked, want_asked, "{row}");
        }
    }
}
