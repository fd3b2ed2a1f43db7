//! What a session captures: targets made of a namespace part and an interface part, either
//! of which may match many.

use std::fmt;

use nsring_netns::NsSpec;
pub use nsring_netns::spec::Glob;

/// `ARPHRD_ETHER`.
pub const ARPHRD_ETHER: u16 = 1;
/// `ARPHRD_LOOPBACK` (`lo`: Ethernet headers of zeros).
pub const ARPHRD_LOOPBACK: u16 = 772;

/// The namespace part of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NsMatch {
    /// One namespace, named exactly: a name, an nsfs path, a process, or the caller's.
    Exact(NsSpec),
    /// The named namespaces (`/run/netns/NAME`) whose name matches.
    Names(Glob),
    /// Every namespace on the host except the initial one, unless `include_host`.
    All {
        /// The initial namespace too.
        include_host: bool,
    },
}

/// The interface part of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// One socket for every interface of the namespace (`any`).
    Any,
    /// One interface, named exactly: captured whatever its link type.
    Name(String),
    /// Every interface whose name matches, Ethernet ones only (others are skipped with a
    /// note; `lo` only when named).
    Glob(Glob),
    /// Every Ethernet interface but `lo` (the default with `--all-netns`).
    Ethernet,
}

/// What a target says about one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// Capture it.
    Capture,
    /// It matches but is not captured: why.
    Skip(String),
    /// It does not match.
    No,
}

impl IfMatch {
    /// Whether an interface of this name and link type (`ARPHRD_*`) is to be captured.
    pub fn wants(&self, name: &str, link_type: u16) -> Want {
        let by_type = || match link_type {
            ARPHRD_ETHER => Want::Capture,
            ARPHRD_LOOPBACK => Want::No,
            other => Want::Skip(format!(
                "link type {} ({other}) is not Ethernet; name it exactly to capture it (a file mixing link types is unreadable to tcpdump)",
                link_type_name(other)
            )),
        };
        match self {
            IfMatch::Any => Want::No,
            IfMatch::Name(n) => {
                if n == name {
                    Want::Capture
                } else {
                    Want::No
                }
            }
            IfMatch::Glob(g) => {
                if g.is_match(name) {
                    by_type()
                } else {
                    Want::No
                }
            }
            IfMatch::Ethernet => by_type(),
        }
    }
}

/// A short name for common `ARPHRD_*` types.
pub fn link_type_name(t: u16) -> &'static str {
    match t {
        1 => "ethernet",
        772 => "loopback",
        65534 => "none (raw IP: tun, wireguard)",
        768 => "ipip",
        769 => "ip6ip6",
        776 => "sit",
        778 => "gre",
        823 => "ip6gre",
        280 => "can",
        _ => "other",
    }
}

/// One target: a namespace part and an interface part, with the text it was given as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The namespace part.
    pub ns: NsMatch,
    /// The interface part.
    pub iface: IfMatch,
    /// As the user wrote it (for messages).
    pub text: String,
}

impl Target {
    /// True if the target names exactly one capture (no pattern, not `--all-netns`).
    pub fn is_exact(&self) -> bool {
        matches!(self.ns, NsMatch::Exact(_))
            && matches!(self.iface, IfMatch::Name(_) | IfMatch::Any)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_choice() {
        let g = IfMatch::Glob(Glob::new("*").unwrap());
        assert_eq!(g.wants("eth0", ARPHRD_ETHER), Want::Capture);
        assert_eq!(g.wants("lo", ARPHRD_LOOPBACK), Want::No);
        assert!(matches!(g.wants("tun0", 65534), Want::Skip(_)));
        assert_eq!(
            IfMatch::Ethernet.wants("veth1", ARPHRD_ETHER),
            Want::Capture
        );
        assert_eq!(IfMatch::Ethernet.wants("lo", ARPHRD_LOOPBACK), Want::No);
        let n = IfMatch::Name("tun0".into());
        assert_eq!(n.wants("tun0", 65534), Want::Capture);
        assert_eq!(n.wants("tun1", 65534), Want::No);
        assert_eq!(
            IfMatch::Name("lo".into()).wants("lo", ARPHRD_LOOPBACK),
            Want::Capture
        );
    }
}
