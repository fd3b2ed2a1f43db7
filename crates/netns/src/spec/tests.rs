use super::*;

fn spec(s: &str) -> NsSpec {
    s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn target(s: &str) -> Target {
    Target::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn err(r: Result<impl std::fmt::Debug>) -> String {
    r.expect_err("accepted").to_string()
}

fn plain(n: &str) -> NsSpec {
    NsSpec::Plain(n.into())
}

fn container(runtime: Runtime, name: &str) -> NsSpec {
    NsSpec::Container {
        runtime,
        name: name.into(),
    }
}

#[test]
fn the_old_spellings_still_work() {
    assert_eq!(spec("ns0"), plain("ns0"));
    assert_eq!(spec("pid:42"), NsSpec::Pid(42));
    assert_eq!(
        spec("/proc/1/ns/net"),
        NsSpec::Path("/proc/1/ns/net".into())
    );
    assert_eq!(spec("run/netns/x"), NsSpec::Path("run/netns/x".into()));
    for bad in [
        "",
        ".",
        "..",
        "pid:",
        "pid:0",
        "pid:x",
        "pid:-1",
        "pid:4294967296",
    ] {
        assert!(bad.parse::<NsSpec>().is_err(), "{bad:?} accepted");
    }
    assert!("a".repeat(256).parse::<NsSpec>().is_err());
    assert_eq!(spec(&"a".repeat(255)), plain(&"a".repeat(255)));

    let t = target("eth1");
    assert_eq!((t.ns, t.iface), (None, IfPart::Name("eth1".into())));
    let t = target("ns0/eth1");
    assert_eq!(t.ns, Some(NsPart::Spec(plain("ns0"))));
    assert_eq!(t.exact().unwrap(), (plain("ns0"), Some("eth1".into())));
    assert_eq!(
        target("pid:42/any").exact().unwrap(),
        (NsSpec::Pid(42), None)
    );
    assert_eq!(
        target("/run/netns/x/veth0").exact().unwrap(),
        (NsSpec::Path("/run/netns/x".into()), Some("veth0".into()))
    );
    assert_eq!(
        target("eth1").exact().unwrap(),
        (NsSpec::Current, Some("eth1".into()))
    );
}

#[test]
fn containers_and_literal_names() {
    assert_eq!(spec("podman:web1"), container(Runtime::Podman, "web1"));
    assert_eq!(spec("docker:3f2a9c"), container(Runtime::Docker, "3f2a9c"));
    assert_eq!(
        spec("containerd:k8s.io-x_1"),
        container(Runtime::Containerd, "k8s.io-x_1")
    );
    assert_eq!(
        target("podman:web1/eth0").exact().unwrap(),
        (container(Runtime::Podman, "web1"), Some("eth0".into()))
    );
    assert_eq!(spec("name:a:b"), NsSpec::Name("a:b".into()));
    assert_eq!(spec("name:web*"), NsSpec::Name("web*".into()));
    assert_eq!(spec("name:podman:x"), NsSpec::Name("podman:x".into()));
    // An unknown prefix stays a name; opening decides (named namespace, else an error).
    assert_eq!(spec("foo:bar"), plain("foo:bar"));
    assert_eq!(spec("podman\\:x"), plain("podman:x"));
    assert!(err("podman:".parse::<NsSpec>()).contains("needs a container name or ID"));
    assert!(err("docker:a b".parse::<NsSpec>()).contains("not a container name or ID"));
    assert!(err("docker:-x".parse::<NsSpec>()).contains("not a container name or ID"));
    assert!(err("name:".parse::<NsSpec>()).contains("is empty"));
    assert!(err("name:a\\/b".parse::<NsSpec>()).contains("contains '/'"));
}

#[test]
fn escapes() {
    assert_eq!(spec("a\\,b"), plain("a,b"));
    assert_eq!(spec("a\\*b"), plain("a*b"));
    assert_eq!(spec("\\\\x"), plain("\\x"));
    assert_eq!(spec("pid\\:42"), plain("pid:42"));
    let t = target("we\\,ird\\*/eth\\*");
    assert_eq!(t.ns, Some(NsPart::Spec(plain("we,ird*"))));
    assert_eq!(t.iface, IfPart::Name("eth*".into()));
    assert_eq!(target("\\any").iface, IfPart::Name("any".into()));
    assert!(err("x\\".parse::<NsSpec>()).contains("lone '\\'"));
    // An escaped '/' does not split (and a name cannot hold one).
    assert!(err(Target::parse("a\\/b")).contains("interface name"));
}

#[test]
fn globs() {
    let t = target("nsrt-*/veth*");
    assert!(t.is_pattern());
    let Some(NsPart::Glob {
        runtime: None,
        glob,
    }) = &t.ns
    else {
        panic!("{t:?}")
    };
    assert!(glob.is_match("nsrt-1-a"));
    assert!(t.iface.matches("veth0") && !t.iface.matches("eth0"));
    let t = target("podman:web[0-9]/eth0");
    let Some(NsPart::Glob {
        runtime: Some(Runtime::Podman),
        glob,
    }) = &t.ns
    else {
        panic!("{t:?}")
    };
    assert!(glob.is_match("web7") && !glob.is_match("db7"));
    assert!(target("*/eth0").is_pattern());
    assert!(err("nsrt-*".parse::<NsSpec>()).contains("is a pattern"));
    assert!(err(target("nsrt-*/eth0").exact()).contains("is a pattern"));
    assert!(err(target("ns0/eth?").exact()).contains("is a pattern"));
    assert!(err(Target::parse("ns[0/eth0")).contains("no closing ']'"));
    // A path is never a glob.
    assert_eq!(
        target("/run/netns/a*/eth0").ns,
        Some(NsPart::Spec(NsSpec::Path("/run/netns/a*".into())))
    );
}

#[test]
fn lists() {
    let l = parse_list("a/eth0,b/eth1,eth2").unwrap();
    assert_eq!(l.len(), 3);
    assert_eq!(l[1].exact().unwrap(), (plain("b"), Some("eth1".into())));
    assert_eq!(l[2].ns, None);
    assert_eq!(parse_list("a\\,b/eth0").unwrap().len(), 1);
    assert!(err(parse_list("a/eth0,")).contains("empty target"));
    assert!(err(parse_list(",a")).contains("empty target"));
}

#[test]
fn bad_targets() {
    for (s, why) in [
        ("/eth1", "namespace before '/' is empty"),
        ("ns0/", "interface after '/' is empty"),
        ("", "interface after '/' is empty"),
        ("averyveryverylongname", "interface name"),
        ("../eth0", "invalid namespace name"),
        ("a b", "interface name"),
        ("ns0/a:b", "interface name"),
    ] {
        let e = err(Target::parse(s));
        assert!(e.contains(why), "{s:?}: {e}");
    }
}

#[test]
fn netns_flag_merges() {
    let ns0: NsPart = "ns0".parse().unwrap();
    let t = Target::parse_with("eth1", Some(&ns0)).unwrap();
    assert_eq!(t.exact().unwrap(), (plain("ns0"), Some("eth1".into())));
    assert!(err(Target::parse_with("ns1/eth1", Some(&ns0))).contains("give the namespace once"));
    assert_eq!(
        Target::parse_with("ns1/eth1", None).unwrap().ns,
        Some(NsPart::Spec(plain("ns1")))
    );
}

#[test]
fn printing_parses_back() {
    for s in [
        "ns0",
        "pid:42",
        "/proc/1/ns/net",
        "podman:web1",
        "name:a:b",
        "name:a\\,b",
        "a\\*b",
        "foo:bar",
        "/odd\\,path",
    ] {
        let sp = spec(s);
        let printed = sp.to_string();
        assert_eq!(spec(&printed), sp, "{s} -> {printed}");
    }
    assert_eq!(NsSpec::Name("ns0".into()).to_string(), "ns0");
    assert_eq!(NsSpec::Name("a:b".into()).to_string(), "name:a\\:b");
    for s in [
        "ns0/eth1",
        "podman:web*/eth0",
        "nsrt-*/veth[0-3]",
        "x/\\any",
        "a\\,b/any",
        "eth0",
    ] {
        let t = target(s);
        assert_eq!(target(&t.to_string()), t, "{s} -> {t}");
    }
}

#[test]
fn spec_paths() {
    assert_eq!(
        NsSpec::Name("x".into()).path().unwrap(),
        Path::new("/run/netns/x")
    );
    assert_eq!(NsSpec::Pid(7).path().unwrap(), Path::new("/proc/7/ns/net"));
    assert!(NsSpec::Current.path().is_none());
    assert!(container(Runtime::Docker, "x").path().is_none());
}

#[test]
fn help_mentions_every_form() {
    for form in [
        "NS/IFACE",
        "name:",
        "podman:",
        "docker:",
        "containerd:",
        "pid:",
        "GLOB",
        "\\,",
    ] {
        assert!(HELP.contains(form), "{form}");
    }
    assert!(
        HELP.lines().all(|l| l.len() <= 96),
        "help lines fit a terminal"
    );
}
