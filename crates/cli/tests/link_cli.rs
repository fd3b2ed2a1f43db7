//! `nsring link`, run as the built binary against a real lab (needs root): every subcommand,
//! its output and exit code, and that bad input fails with exit 2, one line on stderr, and
//! nothing left behind.

use std::process::Command;

use nsring_netns::lab::Lab;
use nsring_netns::{NetNs, link};

mod common;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn nsring(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_nsring"))
        .args(args)
        .output()
        .expect("run nsring");
    Run {
        code: out.status.code().expect("exited"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Runs and expects success with empty stderr.
fn ok(args: &[&str]) -> String {
    let r = nsring(args);
    assert_eq!(r.code, 0, "nsring {args:?}: {}", r.stderr);
    assert!(r.stderr.is_empty(), "nsring {args:?}: {}", r.stderr);
    r.stdout
}

/// Runs and expects a usage error: exit 2, one line `nsring: error: ...` containing `what`.
fn usage_err(args: &[&str], what: &str) {
    let r = nsring(args);
    assert_eq!(r.code, 2, "nsring {args:?}: {}", r.stderr);
    assert!(r.stdout.is_empty(), "nsring {args:?}: {}", r.stdout);
    let line = r.stderr.trim_end();
    assert!(!line.contains('\n'), "more than one line: {line}");
    assert!(line.starts_with("nsring: error: "), "{line}");
    assert!(
        line.contains(what),
        "nsring {args:?}: {line:?} lacks {what:?}"
    );
}

fn names(ns: &NetNs) -> Vec<String> {
    link::list(ns)
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect()
}

fn ip_n(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["-n", ns, "-o"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn help_explains_every_subcommand() {
    let out = ok(&["link", "--help"]);
    for want in [
        "list",
        "set",
        "add",
        "del",
        "addr",
        "--netns <NS>",
        "pid:PID",
        "Examples:",
        "nsring link set eth1 netns ns0",
        "CAP_NET_ADMIN",
    ] {
        assert!(out.contains(want), "help lacks {want:?}:\n{out}");
    }
    let out = ok(&["link", "set", "--help"]);
    assert!(out.contains("netns NS") && out.contains("up") && out.contains("down"));
    let out = ok(&["link", "add", "--help"]);
    assert!(out.contains("type veth peer PEER") && out.contains("--peer-netns"));
    // No subcommand is a usage error.
    assert_eq!(nsring(&["link"]).code, 2);
}

#[test]
fn list_shows_peers_as_table_and_json() {
    let mut lab = Lab::new("cli_list");
    lab.netns("a");
    lab.netns("b");
    let (ia, ib) = lab.veth("a", "veth-a", "b", "veth-b");
    let (na, nb) = (lab.ns_name("a"), lab.ns_name("b"));

    let out = ok(&["link", "list", "--netns", &na]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "INDEX", "NAME", "TYPE", "MAC", "MTU", "STATE", "OPER", "PEER"
        ]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0][..3], ["1", "lo", "loopback"]);
    let row = &rows[1];
    assert_eq!(row[0], ia.to_string());
    assert_eq!(row[1..3], ["veth-a", "veth"]);
    assert_eq!(row[3].len(), 17, "MAC {}", row[3]);
    assert_eq!(row[4..7], ["1500", "up", "up"]);
    assert_eq!(row[7], format!("veth-b@{nb}"));

    // `-n` and the `ls` alias, and the flag before the subcommand.
    let out2 = ok(&["link", "-n", &na, "ls"]);
    assert_eq!(out, out2);

    let json = ok(&["link", "list", "--json", "--netns", &nb]);
    let links = common::json_lines(&json);
    let vb = links.iter().find(|l| l["name"] == "veth-b").unwrap();
    assert_eq!(vb["index"], ib);
    assert_eq!(vb["kind"], "veth");
    assert_eq!(vb["admin_up"], true);
    assert_eq!(vb["peer"]["name"], "veth-a");
    assert_eq!(vb["peer"]["index"], ia);
    assert_eq!(vb["peer"]["netns"], na.as_str());
}

#[test]
fn add_set_addr_del_round_trip() {
    let mut lab = Lab::new("cli_ops");
    let a = lab.netns("a");
    let b = lab.netns("b");
    let (na, nb) = (lab.ns_name("a"), lab.ns_name("b"));

    // add, across namespaces
    let out = ok(&[
        "link",
        "add",
        "c0",
        "type",
        "veth",
        "peer",
        "c1",
        "--netns",
        &na,
        "--peer-netns",
        &nb,
    ]);
    assert!(out.is_empty());
    let c0 = link::get(&a, "c0").unwrap();
    assert!(!c0.admin_up);
    assert_eq!(c0.peer.unwrap().name.as_deref(), Some("c1"));
    assert!(names(&b).contains(&"c1".to_owned()));

    // add, iproute2's `peer name` spelling, both ends in one namespace
    ok(&[
        "link", "add", "d0", "type", "veth", "peer", "name", "d1", "--netns", &na,
    ]);
    assert!(names(&a).contains(&"d1".to_owned()));

    // set up / down
    ok(&["link", "set", "c0", "up", "--netns", &na]);
    assert!(link::get(&a, "c0").unwrap().admin_up);
    assert!(ip_n(&na, &["link", "show", "dev", "c0"]).contains(",UP"));
    ok(&["link", "--netns", &na, "set", "c0", "down"]);
    assert!(!link::get(&a, "c0").unwrap().admin_up);

    // set netns
    ok(&["link", "set", "d1", "netns", &nb, "--netns", &na]);
    assert!(!names(&a).contains(&"d1".to_owned()));
    assert!(ip_n(&nb, &["link", "show", "dev", "d1"]).contains("d1@"));

    // addr add
    ok(&[
        "link",
        "addr",
        "add",
        "198.18.3.1/24",
        "dev",
        "c0",
        "--netns",
        &na,
    ]);
    let addrs = ip_n(&na, &["addr", "show", "dev", "c0"]);
    assert!(addrs.contains("inet 198.18.3.1/24"), "{addrs}");

    // del: both ends go
    ok(&["link", "del", "c0", "--netns", &na]);
    assert!(!names(&a).contains(&"c0".to_owned()));
    assert!(!names(&b).contains(&"c1".to_owned()));
}

#[test]
fn bad_input_is_a_usage_error_and_leaves_nothing() {
    let mut lab = Lab::new("cli_bad");
    let a = lab.netns("a");
    let b = lab.netns("b");
    lab.veth("a", "e0", "b", "e1");
    let (na, nb) = (lab.ns_name("a"), lab.ns_name("b"));
    let missing = lab.ns_name("missing");
    let before = (names(&a), names(&b));
    let long = "x".repeat(16);

    usage_err(
        &[
            "link", "add", &long, "type", "veth", "peer", "p1", "--netns", &na,
        ],
        "is longer than 15 bytes",
    );
    usage_err(
        &[
            "link", "add", "p0", "type", "veth", "peer", &long, "--netns", &na,
        ],
        "is longer than 15 bytes",
    );
    // The peer namespace does not exist: refused before anything is created.
    usage_err(
        &[
            "link",
            "add",
            "p0",
            "type",
            "veth",
            "peer",
            "p1",
            "--netns",
            &na,
            "--peer-netns",
            &missing,
        ],
        "does not exist",
    );
    // Name taken, on either side.
    usage_err(
        &[
            "link", "add", "e0", "type", "veth", "peer", "p1", "--netns", &na,
        ],
        "'e0' already exists",
    );
    usage_err(
        &[
            "link",
            "add",
            "p0",
            "type",
            "veth",
            "peer",
            "e1",
            "--netns",
            &na,
            "--peer-netns",
            &nb,
        ],
        "'e1' already exists",
    );
    usage_err(
        &["link", "add", "p0", "type", "bridge", "--netns", &na],
        "only 'type veth'",
    );
    usage_err(
        &["link", "add", "p0", "type", "veth", "--netns", &na],
        "add NAME type veth peer PEER",
    );
    assert_eq!((names(&a), names(&b)), before, "nothing created half-way");

    usage_err(
        &["link", "set", "eth9", "up", "--netns", &na],
        &format!("no interface 'eth9' in namespace '{na}'"),
    );
    usage_err(
        &["link", "set", "eth9", "netns", &nb, "--netns", &na],
        "no interface 'eth9'",
    );
    usage_err(
        &["link", "set", "e0", "netns", &missing, "--netns", &na],
        "does not exist",
    );
    usage_err(
        &["link", "set", "e0", "sideways", "--netns", &na],
        "set DEV up",
    );
    usage_err(
        &["link", "del", "eth9", "--netns", &na],
        "no interface 'eth9'",
    );
    usage_err(&["link", "list", "--netns", &missing], "does not exist");
    usage_err(&["link", "list", "--netns", "pid:0"], "pid:PID");
    usage_err(
        &[
            "link",
            "addr",
            "add",
            "198.18.0.1/33",
            "dev",
            "e0",
            "--netns",
            &na,
        ],
        "invalid address",
    );
    usage_err(
        &[
            "link",
            "addr",
            "add",
            "not-an-ip",
            "dev",
            "e0",
            "--netns",
            &na,
        ],
        "invalid address",
    );
    usage_err(
        &[
            "link",
            "addr",
            "add",
            "198.18.0.1/24",
            "dev",
            "eth9",
            "--netns",
            &na,
        ],
        "no interface 'eth9'",
    );
    assert_eq!((names(&a), names(&b)), before, "nothing changed");
    // Still in b, still down? (set e0 netns <missing> must not have moved anything.)
    assert!(link::get(&a, "e0").unwrap().admin_up);
}
