//! Shell completion and manual pages, checked with the real programs: bash with the
//! bash-completion package completes nsring's words (live namespace and interface names from
//! the lab among them), and every generated page renders with groff and man without a
//! warning.

use std::path::PathBuf;
use std::process::Command;

mod common;

use common::complete::{CompletionDir, set};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("nsring-docs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn nsring(args: &[&str]) -> String {
    let out = Command::new(common::NSRING).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "nsring {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bash_completes_commands_flags_and_the_labs_namespaces_and_interfaces() {
    let (lab, _a, _b) = common::pair("cmpl");
    let (a, b) = (lab.ns_name("a"), lab.ns_name("b"));
    // the part the two names share: nothing outside this lab starts with it
    let common_len = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let prefix = &a[..common_len];
    let dir = CompletionDir::new("docs");

    // a partial -i lists every interface of the lab's namespaces as NS/IFACE
    let want = set(&[
        &format!("{a}/eth1"),
        &format!("{a}/lo"),
        &format!("{b}/eth1"),
        &format!("{b}/lo"),
    ]);
    for cmd in ["count", "dump", "send"] {
        assert_eq!(
            dir.complete(&["nsring", cmd, "-i", prefix], &[]),
            want,
            "{cmd}"
        );
    }
    // after NS/ only that namespace's interfaces; in a list, the last item
    assert_eq!(
        dir.complete(&["nsring", "count", "--interface", &format!("{a}/")], &[]),
        set(&[&format!("{a}/eth1"), &format!("{a}/lo")])
    );
    assert_eq!(
        dir.complete(&["nsring", "dump", "-i", &format!("{a}/eth1,{b}/e")], &[]),
        set(&[&format!("{a}/eth1,{b}/eth1")])
    );
    // --netns (and -n) offers namespace names, in every command that has it
    for words in [
        &["nsring", "ls", "--netns", prefix][..],
        &["nsring", "send", "-n", prefix],
        &["nsring", "link", "list", "-n", prefix],
        &["nsring", "netns", "exec", prefix],
    ] {
        assert_eq!(dir.complete(words, &[]), set(&[&a, &b]), "{words:?}");
    }
    // commands and flags come from the same definitions as --help
    assert_eq!(dir.complete(&["nsring", "cou"], &[]), set(&["count"]));
    assert!(
        dir.complete(&["nsring", "count", "--sn"], &[])
            .contains("--snaplen")
    );
    let subs = dir.complete(&["nsring", ""], &[]);
    for c in [
        "count",
        "dump",
        "send",
        "ls",
        "netns",
        "link",
        "completions",
        "man",
    ] {
        assert!(subs.contains(c), "{c} missing from {subs:?}");
    }
}

#[test]
fn every_manual_page_renders_without_warnings() {
    let dir = TempDir::new("man");
    let listed = nsring(&["man", "--dir", dir.0.to_str().unwrap()]);
    let pages: Vec<&str> = listed.lines().collect();
    // one page per command of `nsring --help`, and the subcommands' pages too
    let help = nsring(&["--help"]);
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 10, "{commands:?}");
    for c in &commands {
        let page = dir.0.join(format!("nsring-{c}.1"));
        assert!(pages.contains(&page.to_str().unwrap()), "no page for {c}");
    }
    for sub in [
        "nsring-netns-add.1",
        "nsring-link-set.1",
        "nsring-ls-sockets.1",
    ] {
        assert!(dir.0.join(sub).exists(), "{sub}");
    }
    for page in &pages {
        let groff = Command::new("groff")
            .args(["-ww", "-z", "-man", page])
            .output()
            .unwrap();
        assert!(groff.status.success(), "groff {page}");
        assert_eq!(String::from_utf8_lossy(&groff.stderr), "", "groff {page}");
        let man = Command::new("man")
            .args(["--warnings=w", "-l", page])
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "0")
            .output()
            .unwrap();
        assert!(man.status.success(), "man {page}");
        assert_eq!(String::from_utf8_lossy(&man.stderr), "", "man {page}");
        assert!(!man.stdout.is_empty());
    }
    // `nsring man count` prints the same page, which says what --help says
    let count = nsring(&["man", "count"]);
    assert_eq!(
        count,
        std::fs::read_to_string(dir.0.join("nsring-count.1")).unwrap()
    );
    let rendered = Command::new("man")
        .args(["-l", dir.0.join("nsring-count.1").to_str().unwrap()])
        .env("MANWIDTH", "200")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(text.contains("--snaplen"), "{text}");
    assert!(text.contains("SEE ALSO"), "{text}");
    // an unknown page is a usage error naming the commands
    let out = Command::new(common::NSRING)
        .args(["man", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no manual page for 'nosuch'") && err.contains("count"),
        "{err}"
    );
}
