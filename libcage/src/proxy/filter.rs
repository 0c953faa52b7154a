//! Option filters, `filters/<alias>.json`:
//!
//! ```json
//! {
//!   "comment": "free text",
//!   "value_options": ["-u", "--user"],
//!   "deny": ["-u"],
//!   "strict_options": ["-l", "-r", "-e", "-i"],
//!   "restrict_path": { "options": ["-C"], "operands": true },
//!   "allowed_values": { "-o": ["i", "em"] }
//! }
//! ```
//!
//! - `value_options`: options that take a value (`-uNAME`, `-u NAME`,
//!   `--user=NAME`, `--user NAME`); every other option is a flag;
//! - `deny`: options refused wherever they appear, also inside a cluster
//!   (`-vf x` is `-v -f x`, so a denied `-f` is found) and after operands
//!   (GNU getopt permutes, so `file -u bob` is `-u bob file`);
//! - `strict_options`: when given, the only options accepted;
//! - `allowed_values`: options whose value must be one of a list (cron's
//!   mailer passes `-FCronDaemon -oem`, which a plain deny would refuse);
//! - `restrict_path`: which values are paths. Each is opened in the
//!   caller's cage view, as the caller, and handed to the program as
//!   `/dev/fd/N`: the program never resolves it on the host.
//!
//! The argv handed to the program is the normalized one (one option per
//! word, a short option's value attached as in `-oem`, a long one's as in
//! `--name=value`), so the program cannot read it differently from the
//! filter (sendmail-style parsers need `-oem` in one word).

use std::path::Path;

use crate::config::ConfigError;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestrictPath {
    #[serde(default)]
    pub options: Vec<String>,
    #[serde(default)]
    pub operands: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub value_options: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
    #[serde(default)]
    pub strict_options: Option<Vec<String>>,
    #[serde(default)]
    pub restrict_path: RestrictPath,
    #[serde(default)]
    pub allowed_values: std::collections::BTreeMap<String, Vec<String>>,
}

/// One word of a normalized argv.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Word {
    /// Passed as is.
    Plain(String),
    /// A path to open in the caller's cage view and pass as `/dev/fd/N`,
    /// after `prefix` in the same word (`-C` for `-C/dev/fd/N`, or empty).
    Path { prefix: String, path: String },
}

fn valid_option(o: &str) -> bool {
    (o.len() == 2 && o.starts_with('-') && o.as_bytes()[1] != b'-')
        || (o.len() > 2 && o.starts_with("--") && !o.contains('='))
}

fn line_of(text: &str, needle: &str) -> usize {
    let quoted = format!("\"{needle}\"");
    text.lines()
        .position(|l| l.contains(&quoted))
        .map_or(1, |i| i + 1)
}

impl Filter {
    /// Parses a filter file's text; errors name `file:line`.
    pub fn parse(file: &Path, text: &str) -> Result<Filter, ConfigError> {
        let f: Filter = serde_json::from_str(text).map_err(|e| {
            ConfigError::new(
                file,
                e.line().max(1),
                format!("{e}; expected a JSON object with value_options, deny, strict_options, restrict_path"),
            )
        })?;
        let lists = [&f.value_options, &f.deny, &f.restrict_path.options];
        for o in lists
            .into_iter()
            .flatten()
            .chain(f.strict_options.iter().flatten())
        {
            if !valid_option(o) {
                return Err(ConfigError::new(
                    file,
                    line_of(text, o),
                    format!("`{o}`: expected an option like `-x` or `--name`"),
                ));
            }
        }
        for o in f.allowed_values.keys() {
            if !valid_option(o) || !f.value_options.contains(o) {
                return Err(ConfigError::new(
                    file,
                    line_of(text, o),
                    format!(
                        "allowed_values `{o}`: expected an option that is also in value_options"
                    ),
                ));
            }
        }
        for o in &f.restrict_path.options {
            if !f.value_options.contains(o) {
                return Err(ConfigError::new(
                    file,
                    line_of(text, o),
                    format!("restrict_path option `{o}` must also be in value_options"),
                ));
            }
        }
        Ok(f)
    }

    fn takes_value(&self, o: &str) -> bool {
        self.value_options.iter().any(|v| v == o)
    }

    fn check(&self, o: &str) -> Result<(), String> {
        if self.deny.iter().any(|d| d == o) {
            return Err(format!("option {o} is not allowed"));
        }
        if let Some(allowed) = &self.strict_options {
            if !allowed.iter().any(|a| a == o) {
                return Err(format!(
                    "option {o} is not allowed (allowed: {})",
                    allowed.join(" ")
                ));
            }
        }
        Ok(())
    }

    fn value_word(&self, o: &str, v: String) -> Result<Word, String> {
        let prefix = if o.starts_with("--") {
            format!("{o}=")
        } else {
            o.to_string()
        };
        if let Some(allowed) = self.allowed_values.get(o) {
            if !allowed.contains(&v) {
                return Err(format!(
                    "option {o} {v}: value not allowed (allowed: {})",
                    allowed.join(" ")
                ));
            }
        }
        if v.is_empty() {
            return Err(format!("option {o} needs a non-empty value"));
        }
        Ok(if self.restrict_path.options.iter().any(|p| p == o) {
            Word::Path { prefix, path: v }
        } else {
            Word::Plain(format!("{prefix}{v}"))
        })
    }

    /// Checks `args` (without argv\[0\]) and returns the normalized argv.
    pub fn apply(&self, args: &[String]) -> Result<Vec<Word>, String> {
        let mut out = Vec::new();
        let mut it = args.iter();
        let operand = |a: &str| {
            if self.restrict_path.operands && a != "-" {
                Word::Path {
                    prefix: String::new(),
                    path: a.to_string(),
                }
            } else {
                Word::Plain(a.to_string())
            }
        };
        while let Some(a) = it.next() {
            if a == "--" {
                out.push(Word::Plain("--".into()));
                for rest in it.by_ref() {
                    out.push(operand(rest));
                }
                break;
            }
            if let Some(long) = a.strip_prefix("--") {
                let (name, inline) = match long.split_once('=') {
                    Some((n, v)) => (format!("--{n}"), Some(v.to_string())),
                    None => (a.clone(), None),
                };
                self.check(&name)?;
                if self.takes_value(&name) {
                    let v = match inline {
                        Some(v) => v,
                        None => it
                            .next()
                            .cloned()
                            .ok_or_else(|| format!("option {name} needs a value"))?,
                    };
                    out.push(self.value_word(&name, v)?);
                } else if inline.is_some() {
                    return Err(format!("option {name} takes no value"));
                } else {
                    out.push(Word::Plain(name));
                }
                continue;
            }
            if a.len() > 1 && a.starts_with('-') {
                // A cluster: each letter is an option until one takes a
                // value, which is the rest of the word or the next word.
                let body = &a[1..];
                for (i, c) in body.char_indices() {
                    let o = format!("-{c}");
                    self.check(&o)?;
                    if self.takes_value(&o) {
                        let rest = &body[i + c.len_utf8()..];
                        let v = if rest.is_empty() {
                            it.next()
                                .cloned()
                                .ok_or_else(|| format!("option {o} needs a value"))?
                        } else {
                            rest.to_string()
                        };
                        out.push(self.value_word(&o, v)?);
                        break;
                    }
                    out.push(Word::Plain(o));
                }
                continue;
            }
            out.push(operand(a));
        }
        // Every remaining operand is after the options; a normalized
        // operand that looks like an option must stay one (only after --).
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(t: &str) -> Filter {
        Filter::parse(Path::new("x.json"), t).unwrap()
    }
    fn path(prefix: &str, p: &str) -> Word {
        Word::Path {
            prefix: prefix.into(),
            path: p.into(),
        }
    }
    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn clustering_finds_denied_option() {
        let s = f(
            r#"{"value_options":["-f","-F","-o"],"deny":["-f","-F"],"strict_options":["-t","-i","-v","-f","-F"]}"#,
        );
        assert_eq!(
            s.apply(&args(&["-vf", "root@x"])).unwrap_err(),
            "option -f is not allowed"
        );
        assert_eq!(
            s.apply(&args(&["-tifroot"])).unwrap_err(),
            "option -f is not allowed"
        );
        assert_eq!(
            s.apply(&args(&["-t", "a@b", "-F", "Root"])).unwrap_err(),
            "option -F is not allowed"
        );
        assert_eq!(
            s.apply(&args(&["-oi"])).unwrap_err(),
            "option -o is not allowed (allowed: -t -i -v -f -F)"
        );
        assert_eq!(
            s.apply(&args(&["-ti", "bob"])).unwrap(),
            vec![
                Word::Plain("-t".into()),
                Word::Plain("-i".into()),
                Word::Plain("bob".into())
            ]
        );
    }

    #[test]
    fn allowed_values() {
        let s = f(
            r#"{"value_options":["-f","-F","-o"],"deny":["-f"],"allowed_values":{"-F":["CronDaemon"],"-o":["em","i"]}}"#,
        );
        assert_eq!(
            s.apply(&args(&["-FCronDaemon", "-i", "-oem", "alice"]))
                .unwrap(),
            vec![
                Word::Plain("-FCronDaemon".into()),
                Word::Plain("-i".into()),
                Word::Plain("-oem".into()),
                Word::Plain("alice".into()),
            ]
        );
        assert_eq!(
            s.apply(&args(&["-F", "Root"])).unwrap_err(),
            "option -F Root: value not allowed (allowed: CronDaemon)"
        );
        assert_eq!(
            s.apply(&args(&["-ivf", "root@x"])).unwrap_err(),
            "option -f is not allowed"
        );
    }

    #[test]
    fn paths_and_values() {
        let s = f(
            r#"{"value_options":["-u","--conf"],"deny":["-u"],"restrict_path":{"options":["--conf"],"operands":true}}"#,
        );
        assert_eq!(
            s.apply(&args(&["file", "-u", "bob"])).unwrap_err(),
            "option -u is not allowed"
        );
        assert_eq!(
            s.apply(&args(&["-lubob"])).unwrap_err(),
            "option -u is not allowed"
        );
        assert_eq!(
            s.apply(&args(&["--conf=a", "-", "b", "--", "-c"])).unwrap(),
            vec![
                path("--conf=", "a"),
                Word::Plain("-".into()),
                path("", "b"),
                Word::Plain("--".into()),
                path("", "-c"),
            ]
        );
        assert_eq!(
            s.apply(&args(&["--conf"])).unwrap_err(),
            "option --conf needs a value"
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = Filter::parse(
            Path::new("/etc/cage/filters/x.json"),
            "{\n \"deny\": [\"-u\",\n}\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(
            e.to_string().starts_with("/etc/cage/filters/x.json:3: "),
            "{e}"
        );
        let e = Filter::parse(
            Path::new("x.json"),
            "{\n\"deny\": [\"-u\"],\n\"strict_options\": [\"u\"]\n}",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.json:3: `u`: expected an option like `-x` or `--name`"
        );
        let e = Filter::parse(Path::new("x.json"), "{\"denied\": []}").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("x.json:1: unknown field `denied`"),
            "{e}"
        );
    }
}
