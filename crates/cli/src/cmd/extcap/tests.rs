//! The extcap sentences and argument handling, without Wireshark (the lab tests in
//! `tests/extcap_cli.rs` run the real tshark).

use std::ffi::OsStr;

use clap::{Args as _, FromArgMatches as _};

use super::{Args, config, joined_filter, sentence_safe, starts_extcap};

fn parse(argv: &[&str]) -> Args {
    let cmd = Args::augment_args(clap::Command::new("extcap"));
    let m = cmd
        .try_get_matches_from(std::iter::once("extcap").chain(argv.iter().copied()))
        .unwrap();
    Args::from_arg_matches(&m).unwrap()
}

/// `{key=value}` fields of one sentence, as Wireshark's extcap parser splits them.
fn fields(line: &str) -> (String, Vec<(String, String)>) {
    let (kind, rest) = line.split_once(' ').unwrap();
    let mut out = Vec::new();
    for f in rest.split('}').filter(|f| !f.is_empty()) {
        let f = f.strip_prefix('{').unwrap_or_else(|| panic!("{line}"));
        let (k, v) = f.split_once('=').unwrap_or_else(|| panic!("{line}"));
        out.push((k.to_owned(), v.to_owned()));
    }
    (kind.to_owned(), out)
}

#[test]
fn wiresharks_arguments_start_extcap_mode() {
    for a in [
        "--extcap-interfaces",
        "--extcap-version=4.0",
        "--extcap-config",
        "--capture",
        "--fifo",
    ] {
        assert!(starts_extcap(OsStr::new(a)), "{a}");
    }
    for a in ["count", "--help", "-V", "extcap", "--captures"] {
        assert!(!starts_extcap(OsStr::new(a)), "{a}");
    }
}

/// Every argument Wireshark 4.0 passes for a capture parses (seen with a probe extcap:
/// `--capture --extcap-interface X --extcap-capture-filter F --fifo P` then the dialog's
/// options with their defaults).
#[test]
fn a_capture_command_line_parses() {
    let a = parse(&[
        "--capture",
        "--extcap-interface",
        "ns0/eth1",
        "--extcap-capture-filter",
        "udp",
        "--fifo",
        "/tmp/wireshark_extcap_ns0-eth1_X",
        "--snaplen",
        "262144",
        "--direction",
        "in",
        "--no-promisc",
        "--debug",
    ]);
    assert!(a.capture && a.no_promisc);
    assert_eq!(a.extcap_interface.as_deref(), Some("ns0/eth1"));
    assert_eq!(a.snaplen, Some(262_144));
    assert_eq!(a.direction, Some(nsring_capture::Direction::In));
    let a = parse(&["--extcap-interfaces", "--extcap-version=4.0"]);
    assert!(a.extcap_interfaces);
}

#[test]
fn filters_are_joined_with_and() {
    let a = parse(&["--extcap-capture-filter", "udp", "--filter", "port 9"]);
    assert_eq!(joined_filter(&a).as_deref(), Some("(udp) and (port 9)"));
    let a = parse(&["--extcap-capture-filter", " icmp "]);
    assert_eq!(joined_filter(&a).as_deref(), Some("icmp"));
    let a = parse(&["--filter", "", "--extcap-capture-filter", ""]);
    assert_eq!(joined_filter(&a), None);
}

/// The dialog: well-formed sentences, numbered arguments, every `call` a flag `Args`
/// takes, each selector value one of the direction's spellings.
#[test]
fn the_dialog_is_well_formed_and_takes_its_own_options() {
    let mut text = Vec::new();
    config(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    let mut calls = Vec::new();
    let mut number = 0;
    for line in text.lines() {
        let (kind, f) = fields(line);
        let get = |k: &str| f.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        match kind.as_str() {
            "arg" => {
                assert_eq!(get("number"), Some(number.to_string()), "{line}");
                number += 1;
                calls.push(get("call").unwrap());
                assert!(get("display").is_some() && get("type").is_some(), "{line}");
            }
            "value" => {
                let v = get("value").unwrap();
                assert!(v.parse::<nsring_capture::Direction>().is_ok(), "{line}");
            }
            other => panic!("unexpected sentence {other}: {line}"),
        }
    }
    let mut argv = vec!["--extcap-config"];
    for c in &calls {
        argv.push(c);
        if c != "--no-promisc" {
            argv.push(if c == "--direction" { "both" } else { "1" });
        }
    }
    let a = parse(&argv);
    assert_eq!(calls.len(), 4);
    assert!(a.no_promisc && a.snaplen == Some(1) && a.filter.as_deref() == Some("1"));
}

#[test]
fn names_that_would_break_a_sentence_are_left_out() {
    assert!(sentence_safe("ns0/eth1"));
    assert!(sentence_safe("pid:42/eth0"));
    assert!(!sentence_safe("a}b/eth0"));
    assert!(!sentence_safe("a{b/eth0"));
}
