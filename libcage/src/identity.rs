//! Identity: who the user is (NSS, resolved before any namespace change) and
//! the synthesized `/etc/passwd` and `/etc/group` of their cage: the user,
//! system accounts (uid below `min_uid`), accounts the templates name, and
//! the user's own groups; never another user at or above `min_uid`.

use std::collections::BTreeSet;
use std::io;

pub use crate::sys::nss::{Group, Passwd};

/// Where accounts come from: NSS in production, fixtures in tests.
pub trait Directory {
    fn user_by_name(&self, name: &str) -> io::Result<Option<Passwd>>;
    fn user_by_uid(&self, uid: u32) -> io::Result<Option<Passwd>>;
    fn group_by_gid(&self, gid: u32) -> io::Result<Option<Group>>;
    fn group_by_name(&self, name: &str) -> io::Result<Option<Group>>;
    fn group_list(&self, name: &str, gid: u32) -> io::Result<Vec<u32>>;
    /// The local accounts (the `files` source): where system accounts
    /// live. Network directories are asked by name or id only, never
    /// enumerated.
    fn users(&self) -> io::Result<Vec<Passwd>>;
    fn groups(&self) -> io::Result<Vec<Group>>;
}

/// The system's NSS (`getpwnam_r` and friends).
pub struct Nss;

impl Directory for Nss {
    fn user_by_name(&self, name: &str) -> io::Result<Option<Passwd>> {
        crate::sys::nss::getpwnam(name)
    }
    fn user_by_uid(&self, uid: u32) -> io::Result<Option<Passwd>> {
        crate::sys::nss::getpwuid(uid)
    }
    fn group_by_gid(&self, gid: u32) -> io::Result<Option<Group>> {
        crate::sys::nss::getgrgid(gid)
    }
    fn group_by_name(&self, name: &str) -> io::Result<Option<Group>> {
        crate::sys::nss::getgrnam(name)
    }
    fn group_list(&self, name: &str, gid: u32) -> io::Result<Vec<u32>> {
        crate::sys::nss::getgrouplist(name, gid)
    }
    /// `/etc/passwd` itself: enumerating NSS would load and ask every
    /// configured source (`systemd`, `sss`, `ldap`), which costs about a
    /// millisecond even when they hold nothing, and a whole directory's
    /// worth when they do.
    fn users(&self) -> io::Result<Vec<Passwd>> {
        Ok(parse_passwd(&std::fs::read_to_string("/etc/passwd")?))
    }
    fn groups(&self) -> io::Result<Vec<Group>> {
        Ok(parse_group(&std::fs::read_to_string("/etc/group")?))
    }
}

/// Fixed accounts, for tests and golden plans.
#[derive(Clone, Debug, Default)]
pub struct Fixture {
    pub users: Vec<Passwd>,
    pub groups: Vec<Group>,
}

impl Fixture {
    /// Parses passwd- and group-format text.
    pub fn from_files(passwd: &str, group: &str) -> Fixture {
        Fixture {
            users: parse_passwd(passwd),
            groups: parse_group(group),
        }
    }
}

/// Entry lines of a files-format database: comments, blank lines and NIS
/// compat lines (`+`, `-`) are skipped, as glibc's `files` source does
/// for the first two (the compat source is not used on Debian).
fn entry_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(['+', '-']))
}

/// `/etc/passwd` format; malformed lines are skipped.
pub fn parse_passwd(text: &str) -> Vec<Passwd> {
    entry_lines(text)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() != 7 {
                return None;
            }
            Some(Passwd {
                name: f[0].into(),
                passwd: f[1].into(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                gecos: f[4].into(),
                dir: f[5].into(),
                shell: f[6].into(),
            })
        })
        .collect()
}

/// `/etc/group` format; malformed lines are skipped.
pub fn parse_group(text: &str) -> Vec<Group> {
    entry_lines(text)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() != 4 {
                return None;
            }
            Some(Group {
                name: f[0].into(),
                passwd: f[1].into(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(String::from)
                    .collect(),
            })
        })
        .collect()
}

impl Directory for Fixture {
    fn user_by_name(&self, name: &str) -> io::Result<Option<Passwd>> {
        Ok(self.users.iter().find(|u| u.name == name).cloned())
    }
    fn user_by_uid(&self, uid: u32) -> io::Result<Option<Passwd>> {
        Ok(self.users.iter().find(|u| u.uid == uid).cloned())
    }
    fn group_by_gid(&self, gid: u32) -> io::Result<Option<Group>> {
        Ok(self.groups.iter().find(|g| g.gid == gid).cloned())
    }
    fn group_by_name(&self, name: &str) -> io::Result<Option<Group>> {
        Ok(self.groups.iter().find(|g| g.name == name).cloned())
    }
    fn group_list(&self, name: &str, gid: u32) -> io::Result<Vec<u32>> {
        let mut v = vec![gid];
        v.extend(
            self.groups
                .iter()
                .filter(|g| g.gid != gid && g.members.iter().any(|m| m == name))
                .map(|g| g.gid),
        );
        Ok(v)
    }
    fn users(&self) -> io::Result<Vec<Passwd>> {
        Ok(self.users.clone())
    }
    fn groups(&self) -> io::Result<Vec<Group>> {
        Ok(self.groups.clone())
    }
}

/// The caged user and the account files their cage shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: Passwd,
    /// Every gid the user is a member of, primary first.
    pub groups: Vec<u32>,
    pub passwd: String,
    pub group: String,
}

/// Accounts the templates name explicitly (`users=`, `groups=`).
#[derive(Clone, Debug, Default)]
pub struct Extra {
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

/// Builds the identity of `user` (already resolved) from `dir`.
pub fn resolve(
    dir: &dyn Directory,
    user: &Passwd,
    min_uid: u32,
    extra: &Extra,
) -> io::Result<Identity> {
    let groups = dir.group_list(&user.name, user.gid)?;
    let is_system_user =
        |p: &Passwd| p.uid < min_uid || p.name == "nobody" || extra.users.contains(&p.name);

    let mut passwd = String::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut seen_self = false;
    for p in dir.users()? {
        let own = p.uid == user.uid && p.name == user.name;
        if (own || (is_system_user(&p) && p.uid != user.uid)) && names.insert(p.name.clone()) {
            seen_self |= own;
            passwd.push_str(&format!(
                "{}:x:{}:{}:{}:{}:{}\n",
                p.name, p.uid, p.gid, p.gecos, p.dir, p.shell
            ));
        }
    }
    // Accounts the templates name that are not local: asked by name.
    for n in &extra.users {
        if names.contains(n) {
            continue;
        }
        if let Some(p) = dir.user_by_name(n)? {
            if p.uid != user.uid && names.insert(p.name.clone()) {
                passwd.push_str(&format!(
                    "{}:x:{}:{}:{}:{}:{}\n",
                    p.name, p.uid, p.gid, p.gecos, p.dir, p.shell
                ));
            }
        }
    }
    if !seen_self {
        names.insert(user.name.clone());
        passwd.push_str(&format!(
            "{}:x:{}:{}:{}:{}:{}\n",
            user.name, user.uid, user.gid, user.gecos, user.dir, user.shell
        ));
    }

    let mut group = String::new();
    let mut gids: BTreeSet<u32> = BTreeSet::new();
    let emit = |g: &Group, out: &mut String| {
        let members: Vec<&str> = g
            .members
            .iter()
            .filter(|m| names.contains(*m))
            .map(String::as_str)
            .collect();
        out.push_str(&format!("{}:x:{}:{}\n", g.name, g.gid, members.join(",")));
    };
    for g in dir.groups()? {
        let wanted = g.gid < min_uid
            || groups.contains(&g.gid)
            || g.name == "nogroup"
            || extra.groups.contains(&g.name);
        if wanted && gids.insert(g.gid) {
            emit(&g, &mut group);
        }
    }
    for n in &extra.groups {
        if let Some(g) = dir.group_by_name(n)? {
            if gids.insert(g.gid) {
                emit(&g, &mut group);
            }
        }
    }
    for &gid in &groups {
        if !gids.contains(&gid) {
            if let Some(g) = dir.group_by_gid(gid)? {
                gids.insert(gid);
                emit(&g, &mut group);
            }
        }
    }
    Ok(Identity {
        user: user.clone(),
        groups,
        passwd,
        group,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nalice:x:1001:1001:Alice:/home/alice:/bin/bash\nbob:x:1002:1002:Bob:/home/bob:/bin/bash\ncarol:x:1003:1003::/home/carol:/bin/sh\n";
    pub(crate) const GROUP: &str = "root:x:0:\ndaemon:x:1:\nwww-data:x:33:bob,alice\nusers:x:100:alice,bob,carol\nnogroup:x:65534:\nalice:x:1001:\nbob:x:1002:\ncarol:x:1003:\nproject:x:2000:alice,bob\nbobsonly:x:2001:bob\n";

    #[test]
    fn synthesized_files_show_only_the_user_and_system_accounts() {
        let fx = Fixture::from_files(PASSWD, GROUP);
        let alice = fx.user_by_name("alice").unwrap().unwrap();
        let id = resolve(&fx, &alice, 1000, &Extra::default()).unwrap();
        assert_eq!(
            id.passwd,
            "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nalice:x:1001:1001:Alice:/home/alice:/bin/bash\n"
        );
        assert_eq!(id.group, "root:x:0:\ndaemon:x:1:\nwww-data:x:33:alice\nusers:x:100:alice\nnogroup:x:65534:\nalice:x:1001:\nproject:x:2000:alice\n");
        assert_eq!(id.groups, vec![1001, 33, 100, 2000]);
    }

    /// Local files plus a network directory that is never enumerated.
    struct Split {
        local: Fixture,
        remote: Fixture,
    }

    impl Directory for Split {
        fn user_by_name(&self, n: &str) -> io::Result<Option<Passwd>> {
            Ok(self.local.user_by_name(n)?.or(self.remote.user_by_name(n)?))
        }
        fn user_by_uid(&self, u: u32) -> io::Result<Option<Passwd>> {
            Ok(self.local.user_by_uid(u)?.or(self.remote.user_by_uid(u)?))
        }
        fn group_by_gid(&self, g: u32) -> io::Result<Option<Group>> {
            Ok(self.local.group_by_gid(g)?.or(self.remote.group_by_gid(g)?))
        }
        fn group_by_name(&self, n: &str) -> io::Result<Option<Group>> {
            Ok(self
                .local
                .group_by_name(n)?
                .or(self.remote.group_by_name(n)?))
        }
        fn group_list(&self, n: &str, g: u32) -> io::Result<Vec<u32>> {
            let mut v = self.local.group_list(n, g)?;
            for x in self.remote.group_list(n, g)? {
                if !v.contains(&x) {
                    v.push(x);
                }
            }
            Ok(v)
        }
        fn users(&self) -> io::Result<Vec<Passwd>> {
            self.local.users()
        }
        fn groups(&self) -> io::Result<Vec<Group>> {
            self.local.groups()
        }
    }

    #[test]
    fn network_accounts_are_asked_by_name_never_enumerated() {
        let split = Split {
            local: Fixture::from_files(
                "# comment\nroot:x:0:0:root:/root:/bin/bash\n+@nis\n\n",
                "root:x:0:\n",
            ),
            remote: Fixture::from_files(
                "dave:x:5001:5001::/home/dave:/bin/sh\nsvc:x:500:500::/srv:/bin/false\neve:x:5002:5002::/home/eve:/bin/sh\n",
                "dave:x:5001:\nstaff:x:5100:dave\nsvcg:x:5200:\nother:x:5300:\n",
            ),
        };
        let dave = split.user_by_name("dave").unwrap().unwrap();
        let extra = Extra {
            users: vec!["svc".into()],
            groups: vec!["svcg".into()],
        };
        let id = resolve(&split, &dave, 1000, &extra).unwrap();
        assert_eq!(
            id.passwd,
            "root:x:0:0:root:/root:/bin/bash\nsvc:x:500:500::/srv:/bin/false\ndave:x:5001:5001::/home/dave:/bin/sh\n"
        );
        assert_eq!(
            id.group,
            "root:x:0:\nsvcg:x:5200:\ndave:x:5001:\nstaff:x:5100:dave\n"
        );
    }

    #[test]
    fn extra_accounts_from_templates() {
        let fx = Fixture::from_files(PASSWD, GROUP);
        let alice = fx.user_by_name("alice").unwrap().unwrap();
        let extra = Extra {
            users: vec!["bob".into()],
            groups: vec!["bobsonly".into()],
        };
        let id = resolve(&fx, &alice, 1000, &extra).unwrap();
        assert!(id.passwd.contains("\nbob:x:1002:"));
        assert!(id.group.contains("bobsonly:x:2001:bob\n"));
        assert!(!id.passwd.contains("carol"));
    }
}
