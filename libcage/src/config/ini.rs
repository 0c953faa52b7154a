//! A small strict INI reader: every key remembers its line, duplicate keys
//! and keys outside a section are errors, `;`/`#` start comments (also after
//! a value, when preceded by whitespace).

use std::path::Path;

use super::ConfigError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
}

fn strip_comment(s: &str) -> &str {
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if (b == b';' || b == b'#') && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &s[..i];
        }
    }
    s
}

/// Parses `text`; returns the sections and every error found.
pub fn parse(file: &Path, text: &str) -> (Vec<Section>, Vec<ConfigError>) {
    let mut sections: Vec<Section> = Vec::new();
    let mut errors = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let s = strip_comment(raw).trim();
        if s.is_empty() {
            continue;
        }
        if let Some(rest) = s.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                errors.push(ConfigError::new(
                    file,
                    line,
                    format!("expected `[section]`, found `{s}`"),
                ));
                continue;
            };
            let name = name.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            {
                errors.push(ConfigError::new(
                    file,
                    line,
                    format!("invalid section name `{name}`"),
                ));
                continue;
            }
            if let Some(prev) = sections.iter().find(|x| x.name == name) {
                errors.push(ConfigError::new(
                    file,
                    line,
                    format!("duplicate section [{name}], first at line {}", prev.line),
                ));
                continue;
            }
            sections.push(Section {
                name: name.to_string(),
                line,
                entries: Vec::new(),
            });
            continue;
        }
        let Some((k, v)) = s.split_once('=') else {
            errors.push(ConfigError::new(
                file,
                line,
                format!("expected `key = value`, found `{s}`"),
            ));
            continue;
        };
        let key = k.trim();
        if key.is_empty() {
            errors.push(ConfigError::new(file, line, "expected a key before `=`"));
            continue;
        }
        let Some(sec) = sections.last_mut() else {
            errors.push(ConfigError::new(
                file,
                line,
                format!("key `{key}` outside of any [section]"),
            ));
            continue;
        };
        if let Some(prev) = sec.entries.iter().find(|e| e.key == key) {
            errors.push(ConfigError::new(
                file,
                line,
                format!("duplicate key `{key}`, first at line {}", prev.line),
            ));
            continue;
        }
        sec.entries.push(Entry {
            key: key.to_string(),
            value: v.trim().to_string(),
            line,
        });
    }
    (sections, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_keys_and_comments() {
        let text =
            "; top\n[cage]\nmin_uid = 1000 ; inline\nmode=enable-all # other\n\n[x]\na = b;c\n";
        let (secs, errs) = parse(Path::new("f.ini"), text);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(secs.len(), 2);
        assert_eq!(
            secs[0].entries[0],
            Entry {
                key: "min_uid".into(),
                value: "1000".into(),
                line: 3
            }
        );
        assert_eq!(secs[0].entries[1].value, "enable-all");
        assert_eq!(secs[1].entries[0].value, "b;c");
    }

    #[test]
    fn reports_every_bad_line() {
        let text = "k = v\n[cage\n[cage]\nnovalue\n = x\na = 1\na = 2\n[cage]\n";
        let (_, errs) = parse(Path::new("/etc/cage/cage.ini"), text);
        let shown: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            vec![
                "/etc/cage/cage.ini:1: key `k` outside of any [section]",
                "/etc/cage/cage.ini:2: expected `[section]`, found `[cage`",
                "/etc/cage/cage.ini:4: expected `key = value`, found `novalue`",
                "/etc/cage/cage.ini:5: expected a key before `=`",
                "/etc/cage/cage.ini:7: duplicate key `a`, first at line 6",
                "/etc/cage/cage.ini:8: duplicate section [cage], first at line 3",
            ]
        );
    }
}
