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
