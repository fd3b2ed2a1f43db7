//! `nsring latency` end to end (root): probes from one lab namespace's interface to
//! another's are counted exactly and timed on one clock; figures positive and ordered; a
//! cut link loses every probe; bad input is refused.

use std::process::{Command, Output};

use serde_json::Value;

mod common;

use common::{NSRING, pair};

fn nsring(args: &[&str]) -> Output {
    Command::new(NSRING).args(args).output().unwrap()
}

fn final_json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["schema"], 1);
    lines[0].clone()
}

#[test]
fn probes_are_counted_exactly_and_timed_in_order() {
    let (lab, _a, _b) = pair("lat");
    let (na, nb) = (lab.ns_name("a"), lab.ns_name("b"));
    let (from, to) = (format!("{na}/eth1"), format!("{nb}/eth1"));
    let o = nsring(&[
        "latency", "-o", &from, "-i", &to, "-N", "300", "--rate", "500", "-l", "128", "--json",
    ]);
    let r = final_json(&o);
    assert_eq!(r["sent"], 300, "{r}");
    assert_eq!(r["received"], 300, "{r}");
    assert_eq!(r["lost"], 0, "{r}");
    assert_eq!(r["duplicates"], 0, "{r}");
    assert_eq!(r["untimed"], 0, "{r}");
    assert_eq!(r["tap_drops"], 0, "{r}");
    let f = |k: &str| r[k].as_f64().unwrap();
    let (min, avg, max) = (f("min_us"), f("avg_us"), f("max_us"));
    let (p50, p90, p99) = (f("p50_us"), f("p90_us"), f("p99_us"));
    assert!(min > 0.0, "{r}");
    assert!(min <= p50 && p50 <= p90 && p90 <= p99 && p99 <= max, "{r}");
    assert!(min <= avg && avg <= max, "{r}");
    assert!(max < 1e6, "a veth does not take a second: {r}");
    assert_eq!(r["from"], from.as_str());
    assert!(r["clock"].as_str().unwrap().contains("CLOCK_REALTIME"));

    // the other way round, and the text form
    let o = nsring(&[
        "latency", "-o", &to, "-i", &from, "-N", "20", "--rate", "200",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Packets sent: 20\n"), "{text}");
    assert!(text.contains("Packets received: 20\n"), "{text}");
    for k in ["Min", "Avg", "Max", "p50", "p90", "p99"] {
        assert!(text.contains(&format!("{k} delay: ")), "{text}");
    }
}

#[test]
fn a_link_that_is_down_loses_every_probe() {
    let (lab, _a, b) = pair("latdown");
    let (na, nb) = (lab.ns_name("a"), lab.ns_name("b"));
    nsring_netns::link::set_up(&b, "eth1", false).unwrap();
    let o = nsring(&[
        "latency",
        "-o",
        &format!("{na}/eth1"),
        "-i",
        &format!("{nb}/eth1"),
        "-N",
        "10",
        "--rate",
        "100",
        "--wait",
        "0.3",
        "--json",
    ]);
    let r = final_json(&o);
    assert_eq!(r["sent"], 10, "{r}");
    assert_eq!(r["received"], 0, "{r}");
    assert_eq!(r["lost"], 10, "{r}");
    // with the peer down the interface has no carrier: the probes are refused or dropped
    assert!(r["send_errors"].as_u64().unwrap() <= 10, "{r}");
}

#[test]
fn refuses_one_interface_twice_and_unbounded_runs() {
    let (lab, _a, _b) = pair("latbad");
    let na = lab.ns_name("a");
    let a = format!("{na}/eth1");
    for (args, what) in [
        (vec!["latency", "-o", &a, "-i", &a], "same interface"),
        (
            vec!["latency", "-o", "eth1", "-i", "any", "-n", &na],
            "not 'any'",
        ),
        (
            vec!["latency", "-o", &a, "-i", &format!("{na}/eth1"), "-N", "0"],
            "--count",
        ),
        (
            vec![
                "latency",
                "-o",
                &a,
                "-i",
                &format!("{na}/lo"),
                "--rate",
                "0",
            ],
            "--rate",
        ),
        (vec!["latency", "-i", &a], "--out-interface"),
    ] {
        let o = nsring(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(what), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}
