//! `NS/IFACE` interface targets, as every capture command spells them.

use std::fmt;

use nsring_netns::NsSpec;

/// An interface in a namespace, parsed from `IFACE`, `NS/IFACE` or `--netns NS -i IFACE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The namespace (`Current` unless given).
    pub ns: NsSpec,
    /// The interface name, or `None` for all interfaces (`any`).
    pub iface: Option<String>,
}

impl Target {
    /// Parses `-i` with an optional `--netns`. The last `/` separates the namespace from the
    /// interface (interface names cannot hold `/`), so `ns0/eth1`, `pid:42/eth0` and
    /// `/run/netns/ns0/eth1` all work.
    pub fn parse(spec: &str, netns: Option<&NsSpec>) -> anyhow::Result<Target> {
        let (ns, iface) = match spec.rsplit_once('/') {
            Some((ns, iface)) => {
                if netns.is_some() {
                    return Err(crate::usage(format!(
                        "'{spec}' names a namespace and so does --netns: give the namespace once"
                    )));
                }
                if ns.is_empty() {
                    return Err(crate::usage(format!(
                        "'{spec}': the namespace before '/' is empty; write NS/IFACE, e.g. ns0/eth1"
                    )));
                }
                (ns.parse::<NsSpec>()?, iface)
            }
            None => (netns.cloned().unwrap_or(NsSpec::Current), spec),
        };
        nsring_netns::link::validate_ifname(iface)?;
        let iface = (iface != "any").then(|| iface.to_owned());
        Ok(Target { ns, iface })
    }

    /// The interface name, `any` for all.
    pub fn iface_name(&self) -> &str {
        self.iface.as_deref().unwrap_or("any")
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ns {
            NsSpec::Current => f.write_str(self.iface_name()),
            ns => write!(f, "{ns}/{}", self.iface_name()),
        }
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
        assert_eq!(t.ns, NsSpec::Name("ns0".into()));
        assert_eq!(t.to_string(), "ns0/eth1");
        let t = Target::parse("pid:42/any", None).unwrap();
        assert_eq!(t.ns, NsSpec::Pid(42));
        assert_eq!(t.iface, None);
        let t = Target::parse("/run/netns/x/veth0", None).unwrap();
        assert_eq!(t.ns, NsSpec::Path("/run/netns/x".into()));
        let ns0 = NsSpec::Name("ns0".into());
        assert_eq!(Target::parse("eth1", Some(&ns0)).unwrap().ns, ns0);
    }

    #[test]
    fn rejects_bad_targets() {
        let ns0 = NsSpec::Name("ns0".into());
        for (spec, ns) in [
            ("ns0/eth1", Some(&ns0)),
            ("/eth1", None),
            ("ns0/", None),
            ("averyveryverylongname", None),
            ("../eth0", None),
            ("a b", None),
        ] {
            assert!(Target::parse(spec, ns).is_err(), "{spec} accepted");
        }
    }
}
