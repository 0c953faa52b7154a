//! Module arguments: `min_uid=N`, `config=DIR`, `debug`, and the CageFS
//! positional form `pam_lve.so 100 1` (first bare number: minimum uid;
//! second: 1 enabled, 0 disabled).

use std::path::PathBuf;

#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    pub min_uid: Option<u32>,
    pub config: Option<PathBuf>,
    pub debug: bool,
    /// False for the positional form `N 0`: the module does nothing.
    pub enabled: bool,
    /// Arguments this module does not know (logged and ignored).
    pub unknown: Vec<String>,
    /// Known arguments with unusable values: the module cannot tell whom to
    /// cage, so it refuses every session but root's.
    pub malformed: Vec<String>,
}

impl Args {
    pub fn parse<S: AsRef<str>>(argv: &[S]) -> Args {
        let mut a = Args {
            min_uid: None,
            config: None,
            debug: false,
            enabled: true,
            unknown: Vec::new(),
            malformed: Vec::new(),
        };
        let mut positional = 0;
        for arg in argv.iter().map(AsRef::as_ref) {
            if arg == "debug" {
                a.debug = true;
            } else if let Some(v) = arg.strip_prefix("min_uid=") {
                match v.parse() {
                    Ok(n) => a.min_uid = Some(n),
                    Err(_) => a.malformed.push(format!("{arg}: expected a number")),
                }
            } else if let Some(v) = arg.strip_prefix("config=") {
                let p = PathBuf::from(v);
                if p.is_absolute() {
                    a.config = Some(p);
                } else {
                    a.malformed
                        .push(format!("{arg}: expected an absolute path"));
                }
            } else if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
                positional += 1;
                match positional {
                    1 => match arg.parse() {
                        Ok(n) => a.min_uid = Some(n),
                        Err(_) => a.malformed.push(format!("{arg}: minimum uid out of range")),
                    },
                    2 => match arg {
                        "0" => a.enabled = false,
                        "1" => a.enabled = true,
                        _ => a.malformed.push(format!(
                            "{arg}: expected 0 or 1 (module disabled or enabled)"
                        )),
                    },
                    _ => a.unknown.push(arg.to_string()),
                }
            } else {
                a.unknown.push(arg.to_string());
            }
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Args {
        Args::parse(&s.split_whitespace().collect::<Vec<_>>())
    }

    #[test]
    fn empty() {
        let a = parse("");
        assert_eq!(a.min_uid, None);
        assert_eq!(a.config, None);
        assert!(!a.debug && a.enabled && a.unknown.is_empty() && a.malformed.is_empty());
    }

    #[test]
    fn named() {
        let a = parse("min_uid=500 config=/tmp/c debug");
        assert_eq!(a.min_uid, Some(500));
        assert_eq!(a.config, Some(PathBuf::from("/tmp/c")));
        assert!(a.debug && a.enabled);
        assert!(a.unknown.is_empty() && a.malformed.is_empty());
    }

    #[test]
    fn cagefs_positional() {
        let a = parse("100 1");
        assert_eq!(a.min_uid, Some(100));
        assert!(a.enabled);
        let a = parse("100 0");
        assert_eq!(a.min_uid, Some(100));
        assert!(!a.enabled);
        let a = parse("100");
        assert_eq!(a.min_uid, Some(100));
        assert!(a.enabled);
    }

    #[test]
    fn unknown_are_collected() {
        let a = parse("use_first_pass 100 1 7 debug=1");
        assert_eq!(a.unknown, ["use_first_pass", "7", "debug=1"]);
        assert!(a.malformed.is_empty());
        assert_eq!(a.min_uid, Some(100));
    }

    #[test]
    fn malformed_values() {
        let a = parse("min_uid=abc config=etc/cage 99999999999 2");
        assert_eq!(
            a.malformed,
            [
                "min_uid=abc: expected a number",
                "config=etc/cage: expected an absolute path",
                "99999999999: minimum uid out of range",
                "2: expected 0 or 1 (module disabled or enabled)",
            ]
        );
        assert_eq!(a.min_uid, None);
        assert_eq!(a.config, None);
        assert!(parse("min_uid=-1").malformed.len() == 1);
        assert!(parse("config=").malformed.len() == 1);
    }

    #[test]
    fn last_value_wins() {
        assert_eq!(parse("min_uid=5 min_uid=7").min_uid, Some(7));
        assert_eq!(parse("100 1 min_uid=7").min_uid, Some(7));
    }
}
