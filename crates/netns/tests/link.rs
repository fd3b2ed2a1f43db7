//! Links over netlink, in a real lab (needs root). Every test builds its own `Lab`, whose
//! names are unique per process and lab, so the tests run in parallel; `ip` is used only to
//! cross-check what the library did.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use nsring_netns::lab::Lab;
use nsring_netns::{Error, NetNs, link};

/// `ip -n NS -o ARGS...`, stdout as a string; panics if `ip` fails.
fn ip(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["-n", ns, "-o"])
        .args(args)
        .output()
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip -n {ns} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The line of `ip -o link` output for `dev`, if any.
fn ip_link_line(ns: &str, dev: &str) -> Option<String> {
    ip(ns, &["link", "show"])
        .lines()
        .find(|l| {
            l.split(": ")
                .nth(1)
                .is_some_and(|n| n.split('@').next() == Some(dev))
        })
        .map(str::to_owned)
}

fn names(ns: &NetNs) -> Vec<String> {
    link::list(ns)
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect()
}

#[test]
fn veth_across_two_namespaces_with_addresses() {
    let mut lab = Lab::new("across");
    let a = lab.netns("a");
    let b = lab.netns("b");
    let (ia, ib) = lab.veth("a", "veth-a", "b", "veth-b");
    lab.addr("a", "veth-a", "198.18.1.1/24");
    lab.addr("b", "veth-b", "198.18.1.2/24");

    let la = link::get(&a, "veth-a").unwrap();
    assert_eq!(la.index, ia);
    assert_eq!(la.kind.as_deref(), Some("veth"));
    assert!(la.admin_up);
    assert_eq!(la.mtu, 1500);
    assert_eq!(la.link_type, 1);
    assert!(la.mac.as_deref().is_some_and(|m| m.len() == 17), "{la:?}");
    let peer = la.peer.expect("veth-a has a peer");
    assert_eq!(peer.index, ib);
    assert_eq!(peer.name.as_deref(), Some("veth-b"));
    assert!(peer.netns_id.is_some());
    assert_eq!(peer.netns.as_deref(), Some(lab.ns_name("b").as_str()));

    // The same, seen from b by listing.
    let lb = link::list(&b).unwrap();
    let vb = lb
        .iter()
        .find(|l| l.name == "veth-b")
        .expect("veth-b listed");
    let peer = vb.peer.as_ref().expect("veth-b has a peer");
    assert_eq!((peer.index, peer.name.as_deref()), (ia, Some("veth-a")));
    assert_eq!(peer.netns.as_deref(), Some(lab.ns_name("a").as_str()));
    // lo is there, up, without a kind or a peer.
    let lo = lb.iter().find(|l| l.name == "lo").expect("lo listed");
    assert!(lo.admin_up && lo.kind.is_none() && lo.peer.is_none());
    assert_eq!(lo.link_type, 772);

    // Both ends up: the carrier is there, the operational state is up.
    assert_eq!(link::get(&b, "veth-b").unwrap().oper_state, "up");

    // iproute2 agrees.
    let addrs = ip(&lab.ns_name("a"), &["addr", "show", "dev", "veth-a"]);
    assert!(addrs.contains("inet 198.18.1.1/24"), "{addrs}");
    let addrs = ip(&lab.ns_name("b"), &["addr", "show", "dev", "veth-b"]);
    assert!(addrs.contains("inet 198.18.1.2/24"), "{addrs}");
    let line = ip_link_line(&lab.ns_name("a"), "veth-a").expect("ip sees veth-a");
    assert!(line.contains(&format!("veth-a@if{ib}")), "{line}");

    // Adding the same address again is refused with a clear error.
    let err = link::add_addr(&a, "veth-a", "198.18.1.1".parse().unwrap(), 24).unwrap_err();
    assert!(matches!(err, Error::AddrExists { .. }), "{err:?}");
}

#[test]
fn veth_in_one_namespace_names_its_peer() {
    let mut lab = Lab::new("samens");
    let a = lab.netns("a");
    link::add_veth(&a, "p0", "p1", None).unwrap();
    let l = link::get(&a, "p0").unwrap();
    let peer = l.peer.unwrap();
    assert_eq!(peer.name.as_deref(), Some("p1"));
    assert_eq!((peer.netns_id, peer.netns), (None, None));
    assert!(!l.admin_up, "a new veth starts down");
}

#[test]
fn set_netns_moves_an_interface() {
    let mut lab = Lab::new("move");
    let a = lab.netns("a");
    let b = lab.netns("b");
    link::add_veth(&a, "mv0", "mv1", None).unwrap();
    link::set_netns(&a, "mv1", &b).unwrap();

    assert!(!names(&a).contains(&"mv1".to_owned()));
    assert!(names(&b).contains(&"mv1".to_owned()));
    assert!(ip_link_line(&lab.ns_name("b"), "mv1").is_some());
    assert!(ip_link_line(&lab.ns_name("a"), "mv1").is_none());
    // The peer info follows the move.
    let peer = link::get(&a, "mv0").unwrap().peer.unwrap();
    assert_eq!(peer.name.as_deref(), Some("mv1"));
    assert_eq!(peer.netns.as_deref(), Some(lab.ns_name("b").as_str()));

    // Moving a missing interface, or onto a name that is taken.
    let err = link::set_netns(&a, "nope0", &b).unwrap_err();
    assert!(matches!(err, Error::LinkNotFound { .. }), "{err:?}");
    link::add_veth(&a, "mv1", "mv2", None).unwrap();
    let err = link::set_netns(&a, "mv1", &b).unwrap_err();
    assert!(
        matches!(&err, Error::LinkExists { name, .. } if name == "mv1"),
        "{err:?}"
    );
    assert!(
        names(&a).contains(&"mv1".to_owned()),
        "failed move left it in place"
    );
}

#[test]
fn host_veth_moves_from_the_initial_namespace() {
    let mut lab = Lab::new("host");
    let a = lab.netns("a");
    let b = lab.netns("b");
    let host = lab.host_veth("b", "hb0");
    assert!(host.len() <= 15);
    let initial = lab.host_netns().try_clone().unwrap();
    assert!(names(&initial).contains(&host));

    // From b, the peer is in the initial namespace.
    let peer = link::get(&b, "hb0").unwrap().peer.unwrap();
    assert_eq!(peer.name.as_deref(), Some(host.as_str()));
    let pid1_is_initial = NetNs::open(&nsring_netns::NsSpec::Pid(1)).is_ok_and(|n| n.is_initial());
    let expected = if pid1_is_initial {
        "pid:1"
    } else {
        link::INITIAL
    };
    assert_eq!(peer.netns.as_deref(), Some(expected));

    link::set_netns(&initial, &host, &a).unwrap();
    assert!(ip_link_line(&lab.ns_name("a"), &host).is_some());
    assert!(!names(&initial).contains(&host));
}

#[test]
fn set_up_and_down() {
    let mut lab = Lab::new("updown");
    let a = lab.netns("a");
    link::add_veth(&a, "ud0", "ud1", None).unwrap();
    let flags = |line: &str| {
        line.split('<')
            .nth(1)
            .unwrap()
            .split('>')
            .next()
            .unwrap()
            .to_owned()
    };
    let ns = lab.ns_name("a");
    assert!(
        !flags(&ip_link_line(&ns, "ud0").unwrap())
            .split(',')
            .any(|f| f == "UP")
    );

    link::set_up(&a, "ud0", true).unwrap();
    assert!(link::get(&a, "ud0").unwrap().admin_up);
    assert!(
        flags(&ip_link_line(&ns, "ud0").unwrap())
            .split(',')
            .any(|f| f == "UP")
    );
    // Peer still down: no carrier.
    assert_eq!(link::get(&a, "ud0").unwrap().oper_state, "lowerlayerdown");
    link::set_up(&a, "ud1", true).unwrap();
    assert_eq!(link::get(&a, "ud0").unwrap().oper_state, "up");

    link::set_up(&a, "ud0", false).unwrap();
    assert!(!link::get(&a, "ud0").unwrap().admin_up);
    assert!(
        !flags(&ip_link_line(&ns, "ud0").unwrap())
            .split(',')
            .any(|f| f == "UP")
    );

    let err = link::set_up(&a, "nope0", true).unwrap_err();
    assert!(matches!(err, Error::LinkNotFound { .. }), "{err:?}");
}

#[test]
fn add_addr_is_seen_by_ip() {
    let mut lab = Lab::new("addr");
    let a = lab.netns("a");
    link::add_veth(&a, "ad0", "ad1", None).unwrap();
    let addr: IpAddr = "198.18.7.9".parse().unwrap();
    link::add_addr(&a, "ad0", addr, 30).unwrap();
    let out = ip(&lab.ns_name("a"), &["addr", "show"]);
    assert!(
        out.lines()
            .any(|l| l.contains(" ad0 ") && l.contains("inet 198.18.7.9/30")),
        "{out}"
    );
    let err = link::add_addr(&a, "nope0", addr, 30).unwrap_err();
    assert!(matches!(err, Error::LinkNotFound { .. }), "{err:?}");
    let err = link::add_addr(&a, "ad0", addr, 33).unwrap_err();
    assert!(matches!(err, Error::InvalidPrefix { .. }), "{err:?}");
}

#[test]
fn del_removes_both_ends() {
    let mut lab = Lab::new("del");
    let a = lab.netns("a");
    let b = lab.netns("b");
    lab.veth("a", "d0", "b", "d1");
    link::del(&b, "d1").unwrap();
    assert!(!names(&a).contains(&"d0".to_owned()));
    assert!(!names(&b).contains(&"d1".to_owned()));
    let err = link::del(&b, "d1").unwrap_err();
    assert!(matches!(err, Error::LinkNotFound { .. }), "{err:?}");
    // lo is not virtual: the kernel refuses, with a clear error.
    let err = link::del(&a, "lo").unwrap_err();
    assert!(matches!(err, Error::Netlink { .. }), "{err:?}");
    assert!(err.to_string().contains("only virtual interfaces"), "{err}");
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let mut lab = Lab::new("bad");
    let a = lab.netns("a");
    let b = lab.netns("b");
    let before_a = names(&a);
    let before_b = names(&b);

    let long = "x".repeat(16);
    let err = link::add_veth(&a, &long, "ok0", Some(&b)).unwrap_err();
    assert!(matches!(err, Error::InvalidIfName { .. }), "{err:?}");
    assert!(err.to_string().contains("is longer than 15 bytes"), "{err}");
    let err = link::add_veth(&a, "ok0", &long, Some(&b)).unwrap_err();
    assert!(matches!(err, Error::InvalidIfName { .. }), "{err:?}");
    for bad in ["", "a/b", "a b", ".."] {
        assert!(matches!(
            link::add_veth(&a, bad, "ok1", None),
            Err(Error::InvalidIfName { .. })
        ));
    }
    assert_eq!(names(&a), before_a);
    assert_eq!(names(&b), before_b);

    // Missing interface, by every operation.
    let err = link::get(&a, "eth9").unwrap_err();
    assert!(
        matches!(&err, Error::LinkNotFound { name, ns } if name == "eth9" && *ns == lab.ns_name("a")),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&format!(
            "no interface 'eth9' in namespace '{}'",
            lab.ns_name("a")
        )),
        "{err}"
    );

    // Missing namespace.
    let err = NetNs::open_str(&lab.ns_name("missing")).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");

    // A pair whose peer name is taken in the peer namespace: refused, atomically.
    link::add_veth(&b, "taken0", "taken1", None).unwrap();
    let before_a = names(&a);
    let err = link::add_veth(&a, "free0", "taken0", Some(&b)).unwrap_err();
    assert!(
        matches!(&err, Error::LinkExists { name, ns } if name == "taken0" && *ns == lab.ns_name("b")),
        "{err:?}"
    );
    assert_eq!(names(&a), before_a, "no half-made veth");
    let err = link::add_veth(&b, "taken1", "free1", Some(&a)).unwrap_err();
    assert!(
        matches!(&err, Error::LinkExists { name, .. } if name == "taken1"),
        "{err:?}"
    );
    assert_eq!(names(&a), before_a, "no half-made veth");
}

#[test]
fn list_works_in_the_current_namespace() {
    let here = NetNs::current().unwrap();
    let links = link::list(&here).unwrap();
    assert!(
        links.iter().any(|l| l.name == "lo" && l.index == 1),
        "{links:?}"
    );
    assert!(links.windows(2).all(|w| w[0].index < w[1].index));
}

#[test]
fn a_panicking_test_still_removes_its_lab() {
    let mut made = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut lab = Lab::new("panic");
        lab.netns("a");
        lab.netns("b");
        made = Some((lab.ns_name("a"), lab.ns_name("b"), String::new()));
        lab.veth("a", "pa0", "b", "pb0");
        let host = lab.host_veth("b", "pb1");
        made = Some((lab.ns_name("a"), lab.ns_name("b"), host));
        panic!("on purpose, inside the lab");
    }));
    assert!(result.is_err());
    let (na, nb, host) = made.expect("the lab was built");
    for ns in [na, nb] {
        assert!(
            !Path::new("/run/netns").join(&ns).exists(),
            "{ns} left behind"
        );
    }
    assert!(!host.is_empty(), "the host veth was made");
    let initial = NetNs::initial().or_else(|_| NetNs::current()).unwrap();
    assert!(!names(&initial).contains(&host), "{host} left behind");
}

#[test]
fn new_lab_sweeps_namespaces_of_dead_runs() {
    // A PID that has just exited: reuse within this test is practically impossible.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = format!("nsrt-{dead}-0-stale");
    // Other tests of this binary make labs at the same time, and their sweep may remove
    // the stale namespace even while it is being made: that is the behaviour under test, so
    // try again rather than fail.
    let mut tries = 0;
    let ns = loop {
        match nsring_netns::add(&stale) {
            Ok(ns) => break ns,
            Err(e) if tries >= 5 => panic!("cannot make {stale}: {e:?}"),
            Err(_) => tries += 1,
        }
    };
    drop(ns);
    let lab = Lab::new("sweeper");
    let swept = !Path::new("/run/netns").join(&stale).exists();
    if !swept {
        let _ = nsring_netns::del(&stale);
    }
    drop(lab);
    assert!(swept, "{stale} was not swept");
}
