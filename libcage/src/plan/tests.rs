//! Golden-file tests: the plan for sample configs, as `cage-admin plan` prints it.

use std::path::{Path, PathBuf};

use super::*;
use crate::config::virtmp::VirtMp;
use crate::config::{MountPoints, Settings};
use crate::identity::{resolve, Directory, Extra, Fixture};

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nalice:x:1001:1001:Alice:/home/alice:/bin/bash\nbob:x:1002:1002:Bob:/home/bob:/bin/bash\nvh:x:1003:1003::/var/www/vhosts/vh.example:/bin/sh\nflat:x:1004:1004::/flat:/bin/sh\n";
const GROUP: &str = "root:x:0:\nwww-data:x:33:alice,bob\nalice:x:1001:\nbob:x:1002:\nvh:x:1003:\n";

fn golden(name: &str, user: &str, mp: &str, custom: &[&str]) -> Result<String, PlanError> {
    golden_virt(name, user, mp, custom, "")
}

fn golden_virt(
    name: &str,
    user: &str,
    mp: &str,
    custom: &[&str],
    virt: &str,
) -> Result<String, PlanError> {
    let fx = Fixture::from_files(PASSWD, GROUP);
    let u = fx.user_by_name(user).unwrap().unwrap();
    let settings = Settings::parse(
        Path::new("cage.ini"),
        "[cage]\nmin_uid = 1000\nskeleton = /usr/share/cage-skeleton\n",
    )
    .unwrap();
    let mps = MountPoints::parse(Path::new("cage.mp"), mp).unwrap();
    let id = resolve(&fx, &u, 1000, &Extra::default()).unwrap();
    let custom: Vec<PathBuf> = custom.iter().map(PathBuf::from).collect();
    let dir = PathBuf::from("/etc/cage/custom.etc").join(user);
    let p = plan(&Inputs {
        settings: &settings,
        mount_points: &mps,
        identity: &id,
        custom_etc: &custom,
        custom_etc_dir: &dir,
        virt_mp: &VirtMp::parse(Path::new("virt.mp"), virt).unwrap(),
    })?;
    let text = p.to_string();
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/plan")
        .join(format!("{name}.plan"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &text).unwrap();
    }
    let want = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", file.display()));
    assert_eq!(text, want, "plan differs from {}", file.display());
    Ok(text)
}

#[test]
fn plain_user() {
    golden("alice-default", "alice", "", &[]).unwrap();
}

#[test]
fn cagefs_mount_points() {
    let mp = "/var/lib/mysql\n!/opt\n@/var/spool/cron,700\n@/var/run/screen,777\n%/home/httpd/fcgi-bin\n/proc\n/dev/pts\n";
    golden("alice-cagefs-mp", "alice", mp, &["php.ini", "ssl/site.pem"]).unwrap();
}

#[test]
fn home_outside_home() {
    let text = golden(
        "vh-vhosts",
        "vh",
        "/var/www/shared\n/var/www/vhosts/vh.example/logs\n/var/www\n",
        &[],
    )
    .unwrap();
    assert!(text.contains("tmpfs    /var/www/vhosts  mode=0755,ro"));
    assert!(text.contains(
        "note     /var/www/vhosts/vh.example/logs  cage.mp:2: overlaps the home of vh; not mounted"
    ));
    assert!(text.contains("note     /var/www  cage.mp:3: overlaps the home of vh; not mounted"));
}

#[test]
fn home_directly_below_root_is_refused() {
    let err = golden("never", "flat", "", &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "home directory of flat (/flat) must be below a base directory such as /home"
    );
}

#[test]
fn plans_serialize_to_json() {
    let fx = Fixture::from_files(PASSWD, GROUP);
    let u = fx.user_by_name("alice").unwrap().unwrap();
    let settings = Settings::parse(Path::new("cage.ini"), "[cage]\nmin_uid = 1000\n").unwrap();
    let mps = MountPoints::parse(Path::new("cage.mp"), "/srv\n!/opt\n@/var/x,700\n%/s\n").unwrap();
    let id = resolve(&fx, &u, 1000, &Extra::default()).unwrap();
    let dir = PathBuf::from("/etc/cage/custom.etc/alice");
    let p = plan(&Inputs {
        settings: &settings,
        mount_points: &mps,
        identity: &id,
        custom_etc: &[PathBuf::from("php.ini")],
        custom_etc_dir: &dir,
        virt_mp: &VirtMp::default(),
    })
    .unwrap();
    let v: serde_json::Value = serde_json::to_value(&p).unwrap();
    assert_eq!(v["user"], "alice");
    let ops = v["ops"].as_array().unwrap();
    assert!(ops.iter().any(|o| o["op"] == "bind"
        && o["source"]["kind"] == "host"
        && o["source"]["path"] == "/srv"));
    assert!(ops
        .iter()
        .any(|o| o["op"] == "proc" && o["hidepid"] == "invisible"));
}

#[test]
fn virt_mp_directories() {
    let text = golden_virt(
        "vh-virt-mp",
        "vh",
        "",
        &[],
        ">/var/www/vhosts/system,0755\n@vh.example\n@shop.example,0750\n/srv/virt,0711\n@a\n>/opt/outside\n@b\n/var/www/vhosts/vh.example/x\n",
    )
    .unwrap();
    // `>` inside the home's base tmpfs: a directory there, no tmpfs.
    assert!(text.contains("dir      /var/www/vhosts/system  mode=0755"));
    assert!(!text.contains("tmpfs    /var/www/vhosts/system"));
    assert!(text.contains("bind     /var/www/vhosts/system/shop.example  <- /var/www/vhosts/system/shop.example (if present)"));
    // A plain line, and a `>` line outside any tmpfs: a tmpfs of their own.
    assert!(text.contains("tmpfs    /srv/virt  mode=0711,ro"));
    assert!(text.contains("tmpfs    /opt/outside  mode=0755,ro"));
    assert!(text.contains(
        "note     /var/www/vhosts/vh.example/x  virt.mp:8: overlaps the home of vh; not mounted"
    ));
}

#[test]
fn paths_below_user_content_are_refused() {
    let err = golden(
        "never",
        "alice",
        "@/var/spool/cron,700\n/var/spool/cron/x\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cage.mp:2: /var/spool/cron/x lies below /var/spool/cron (a per-user directory (cage.mp:1)), where users can write; refused"
    );
    let err = golden("never", "alice", "%/srv/split\n/srv/split/alice/x\n", &[]).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("cage.mp:2: /srv/split/alice/x lies below /srv/split"));
    let err = golden_virt(
        "never",
        "alice",
        "",
        &[],
        "/srv/v\n@site\n/srv/v/site/deeper\n",
    )
    .unwrap_err();
    assert!(err
        .to_string()
        .starts_with("virt.mp:3: /srv/v/site/deeper lies below /srv/v/site"));
}
