//! One interface in one namespace, as `count`, `send` and `dump` take it. The spelling is
//! the library's grammar (`nsring_netns::spec`); this file only turns it into the plain
//! (namespace, interface) pair the commands use and words the refusals.

use std::fmt;

use nsring_netns::{NsPart, NsSpec};

/// An interface in a namespace, parsed from `IFACE`, `NS/IFACE` or `--netns NS -i IFACE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The namespace (`Current` unless given).
    pub ns: NsSpec,
    /// The interface name, or `None` for all interfaces (`any`).
    pub iface: Option<String>,
}

impl Target {
    fn exact(t: &nsring_netns::Target) -> anyhow::Result<Target> {
        let (ns, iface) = t.exact()?;
        Ok(Target { ns, iface })
    }

    /// Parses one `-i` with an optional `--netns` (see `nsring_netns::spec` for the grammar:
    /// `ns0/eth1`, `pid:42/eth0`, `/run/netns/ns0/eth1`, `podman:web1/eth0`).
    pub fn parse(spec: &str, netns: Option<&NsSpec>) -> anyhow::Result<Target> {
        match Self::parse_list(spec, netns)?.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(crate::usage(format!(
                "'{spec}' names several interfaces; this command takes one"
            ))),
        }
    }

    /// Parses one `-i` that may list several targets (`a/eth0,b/eth0`).
    pub fn parse_list(spec: &str, netns: Option<&NsSpec>) -> anyhow::Result<Vec<Target>> {
        let netns = netns.cloned().map(NsPart::Spec);
        nsring_netns::spec::parse_list(spec)?
            .into_iter()
            .map(|t| {
                let t = match (&t.ns, &netns) {
                    (Some(_), Some(_)) => {
                        return Err(crate::usage(format!(
                            "'{t}' names a namespace and so does --netns: give the namespace once"
                        )));
                    }
                    (None, Some(ns)) => nsring_netns::Target {
                        ns: Some(ns.clone()),
                        iface: t.iface,
                    },
                    _ => t,
                };
                Self::exact(&t)
            })
            .collect()
    }
}

/// The capture targets of `count` and `dump`: each `-i` is a LIST of the library's grammar
/// (`nsring_netns::spec`), where either part may be a pattern (`nsrt-*/veth*`), or, with
/// `--all-netns`, interfaces (or patterns) taken in every namespace (default: every
/// Ethernet interface but `lo`). Parsed without touching the system; each given once.
pub fn capture_targets(
    specs: &[String],
    netns: Option<&NsSpec>,
    all_netns: bool,
    include_host: bool,
) -> anyhow::Result<Vec<nsring_multi::Target>> {
    use nsring_multi::{IfMatch, NsMatch};
    use nsring_netns::IfPart;
    if include_host && !all_netns {
        return Err(crate::usage(
            "--include-host adds the initial namespace to --all-netns; give --all-netns too",
        ));
    }
    if all_netns && netns.is_some() {
        return Err(crate::usage(
            "--all-netns captures in every namespace; it cannot be used with --netns",
        ));
    }
    let mut out: Vec<nsring_multi::Target> = Vec::new();
    if all_netns && specs.is_empty() {
        out.push(nsring_multi::Target {
            ns: NsMatch::All { include_host },
            iface: IfMatch::Ethernet,
            text: "--all-netns".into(),
        });
    }
    let netns = netns.cloned().map(NsPart::Spec);
    for spec in specs {
        for t in nsring_netns::spec::parse_list(spec)? {
            let text = t.to_string();
            let ns = match (t.ns, &netns) {
                (Some(_), _) if all_netns => {
                    return Err(crate::usage(format!(
                        "'{text}': with --all-netns, -i takes an interface (or a pattern) only"
                    )));
                }
                (Some(_), Some(_)) => {
                    return Err(crate::usage(format!(
                        "'{text}' names a namespace and so does --netns: give the namespace once"
                    )));
                }
                (None, _) if all_netns => NsMatch::All { include_host },
                (None, None) => NsMatch::Exact(NsSpec::Current),
                (None, Some(NsPart::Spec(s))) => NsMatch::Exact(s.clone()),
                (Some(NsPart::Spec(s)), None) => NsMatch::Exact(s),
                (
                    Some(NsPart::Glob {
                        runtime: None,
                        glob,
                    }),
                    None,
                ) => NsMatch::Names(glob),
                (
                    Some(NsPart::Glob {
                        runtime: Some(r), ..
                    }),
                    None,
                ) => {
                    return Err(crate::usage(format!(
                        "'{text}': patterns over {r} containers are not captured yet; name the container ({r}:NAME) or use a pattern over named namespaces"
                    )));
                }
                (None, Some(NsPart::Glob { .. })) => unreachable!("--netns is one namespace"),
            };
            let iface = match t.iface {
                IfPart::Any => IfMatch::Any,
                IfPart::Name(n) => IfMatch::Name(n),
                IfPart::Glob(g) => IfMatch::Glob(g),
            };
            let text = match (&ns, &netns) {
                (NsMatch::All { .. }, _) => format!("--all-netns -i {text}"),
                (NsMatch::Exact(_), Some(n)) => format!("{n}/{text}"),
                _ => text,
            };
            let t = nsring_multi::Target { ns, iface, text };
            if out.iter().any(|o| o.ns == t.ns && o.iface == t.iface) {
                return Err(crate::usage(format!("{} is given twice", t.text)));
            }
            out.push(t);
        }
    }
    Ok(out)
}

impl Target {
    /// The interface name, `any` for all.
    pub fn iface_name(&self) -> &str {
        self.iface.as_deref().unwrap_or("any")
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = nsring_netns::Target {
            ns: Some(NsPart::Spec(self.ns.clone())),
            iface: match &self.iface {
                None => nsring_netns::IfPart::Any,
                Some(n) => nsring_netns::IfPart::Name(n.clone()),
            },
        };
        t.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let t = Target::parse("eth1", None).unwrap();
        assert_eq!(t.ns, NsSpec::Current);
        assert_eq!(t.iface.as_deref(), Some("eth1"));
        let t = Target::parse("ns0/eth1", None).unwrap();
        assert_eq!(t.ns, NsSpec::Plain("ns0".into()));
        assert_eq!(t.to_string(), "ns0/eth1");
        let t = Target::parse("pid:42/any", None).unwrap();
        assert_eq!(t.ns, NsSpec::Pid(42));
        assert_eq!(t.iface, None);
        let t = Target::parse("/run/netns/x/veth0", None).unwrap();
        assert_eq!(t.ns, NsSpec::Path("/run/netns/x".into()));
        let ns0 = NsSpec::Plain("ns0".into());
        assert_eq!(Target::parse("eth1", Some(&ns0)).unwrap().ns, ns0);
        let l = Target::parse_list("a/eth0,b/eth1", None).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].to_string(), "b/eth1");
    }

    #[test]
    fn capture_targets_with_patterns() {
        use nsring_multi::{Glob, IfMatch, NsMatch};
        let v = |specs: &[&str]| specs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let t =
            capture_targets(&v(&["nsrt-*/veth*,ns0/eth1", "eth2"]), None, false, false).unwrap();
        assert_eq!(t[0].ns, NsMatch::Names(Glob::new("nsrt-*").unwrap()));
        assert_eq!(t[0].iface, IfMatch::Glob(Glob::new("veth*").unwrap()));
        assert_eq!(t[1].ns, NsMatch::Exact(NsSpec::Plain("ns0".into())));
        assert_eq!(t[1].iface, IfMatch::Name("eth1".into()));
        assert!(t[1].is_exact() && !t[0].is_exact());
        assert_eq!(t[2].ns, NsMatch::Exact(NsSpec::Current));
        let t = capture_targets(&[], None, true, false).unwrap();
        assert_eq!(
            t[0].ns,
            NsMatch::All {
                include_host: false
            }
        );
        assert_eq!(t[0].iface, IfMatch::Ethernet);
        let t = capture_targets(&v(&["veth*"]), None, true, true).unwrap();
        assert_eq!(t[0].ns, NsMatch::All { include_host: true });
        // an escaped '*' is part of the name
        let t = capture_targets(&v(&[r"a\*b/eth0"]), None, false, false).unwrap();
        assert!(matches!(&t[0].ns, NsMatch::Exact(s) if s.to_string().contains('*')));
        let ns0 = NsSpec::Plain("ns0".into());
        let t = capture_targets(&v(&["eth1"]), Some(&ns0), false, false).unwrap();
        assert_eq!(t[0].ns, NsMatch::Exact(ns0.clone()));
        assert_eq!(t[0].text, "ns0/eth1");
        for (specs, all, host) in [
            (v(&["ns0/eth1"]), true, false),
            (v(&["eth1"]), false, true),
            (v(&["a/eth1", "a/eth1"]), false, false),
            (v(&["/eth1"]), false, false),
            (v(&["podman:web*/eth0"]), false, false),
        ] {
            assert!(
                capture_targets(&specs, None, all, host).is_err(),
                "{specs:?}"
            );
        }
    }

    #[test]
    fn rejects_bad_targets() {
        let ns0 = NsSpec::Plain("ns0".into());
        for (spec, ns) in [
            ("ns0/eth1", Some(&ns0)),
            ("/eth1", None),
            ("ns0/", None),
            ("averyveryverylongname", None),
            ("../eth0", None),
            ("a b", None),
            ("a/eth0,b/eth0", None),
            ("nsrt-*/eth0", None),
        ] {
            assert!(Target::parse(spec, ns).is_err(), "{spec} accepted");
        }
    }
}
