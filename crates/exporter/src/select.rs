//! Which namespaces a scrape reads.

use nsring_netns::{NetNs, NsPart};
use nsring_registry::host::HostNs;

/// The namespaces to export: every one on the host, or those the given namespace parts
/// name (`ns0`, `pid:42`, a path) or match (`nsrt-*`: over the namespaces' names).
///
/// Resolved again on every scrape, so a namespace that appears later is exported from
/// then on, and one that is gone is simply absent.
#[derive(Debug, Clone, Default)]
pub struct Select {
    parts: Vec<NsPart>,
}

impl Select {
    /// Every namespace on the host.
    pub fn all() -> Select {
        Select::default()
    }

    /// The namespaces `parts` name or match; none given means all.
    pub fn new(parts: Vec<NsPart>) -> Select {
        Select { parts }
    }

    /// Whether every namespace is exported.
    pub fn is_all(&self) -> bool {
        self.parts.is_empty()
    }

    /// The chosen ones of `found`, in their order.
    pub fn filter(&self, found: Vec<HostNs>) -> Vec<HostNs> {
        if self.parts.is_empty() {
            return found;
        }
        // the exact ones, opened now: compared by identity, whatever the spelling
        let inodes: Vec<u64> = self
            .parts
            .iter()
            .filter_map(|p| match p {
                NsPart::Spec(s) => NetNs::open(s).ok().map(|ns| ns.inode()),
                NsPart::Glob { .. } => None,
            })
            .collect();
        found
            .into_iter()
            .filter(|h| inodes.contains(&h.inode) || self.matches_by_name(h))
            .collect()
    }

    fn matches_by_name(&self, h: &HostNs) -> bool {
        self.parts.iter().any(|p| match p {
            // a pattern without a runtime matches named namespaces by name
            NsPart::Glob {
                runtime: None,
                glob,
            } => h.names.iter().any(|n| glob.is_match(n)),
            // containers by runtime are matched once the host view knows containers
            _ => false,
        })
    }
}

impl std::fmt::Display for Select {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.parts.is_empty() {
            return f.write_str("every namespace");
        }
        let parts: Vec<String> = self.parts.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(", "))
    }
}
