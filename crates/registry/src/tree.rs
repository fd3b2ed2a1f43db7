//! One namespace's view as a tree of files, laid out like PF_RING's `/proc/net/pf_ring`:
//!
//! ```text
//! info                          the namespace's summary (text::summary)
//! dev/<ifname>/info             one interface (text::device_info)
//! <pid>-<ifname>.<id>           one packet socket (text::socket_info); nsring's own are
//!                               named by their record, others <pid>-<ifname>.<socket inode>
//!                               with the lowest owning PID (0 when no owner is known)
//! stats/<pid>-<ifname>.<id>     the application's own figures, as pfcount writes them
//!                               (nsring's sockets only: others do not report any)
//! ```
//!
//! The tree is built whole from one [`NamespaceView`], so everything in it is from the same
//! moment. `nsring mount` serves it, a fresh one per reader and per open.

use std::collections::BTreeMap;

use crate::text;
use crate::view::{NamespaceView, SocketEntry};

/// A directory or a file with its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory; its entries are the paths below it.
    Dir,
    /// A file and its whole text.
    File(String),
}

/// Paths (`""` is the root, `dev/eth1/info`, no leading `/`) to nodes.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
}

/// The fixed directories of every tree.
pub const DIRS: [&str; 2] = ["dev", "stats"];

impl Tree {
    /// The tree of `view`; `ring_defaults` goes into `info` (the capture engine's default
    /// ring, which this crate does not know), `now_unix_ns` is the moment durations end at.
    pub fn of(view: &NamespaceView, ring_defaults: &str, now_unix_ns: u64) -> Tree {
        let mut t = Tree::default();
        t.nodes.insert(String::new(), Node::Dir);
        for d in DIRS {
            t.nodes.insert(d.to_owned(), Node::Dir);
        }
        t.add("info", text::summary(view, ring_defaults));
        for d in &view.devices {
            let dir = format!("dev/{}", d.link.name);
            t.nodes.insert(dir.clone(), Node::Dir);
            t.add(
                &format!("{dir}/info"),
                text::device_info(d, &view.namespace),
            );
        }
        for s in &view.sockets {
            let name = socket_file_name(s);
            if t.nodes.contains_key(&name) {
                continue; // an inode equal to a record's id: the first one keeps the name
            }
            t.add(&name, text::socket_info(s, &view.namespace));
            if let Some(stats) = text::app_stats(s, now_unix_ns) {
                t.add(&format!("stats/{name}"), stats);
            }
        }
        t
    }

    fn add(&mut self, path: &str, contents: String) {
        self.nodes.insert(path.to_owned(), Node::File(contents));
    }

    /// The node at `path`.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// The entries of directory `dir`: (name, is a directory), sorted by name. Empty if
    /// `dir` is not a directory of this tree.
    pub fn children(&self, dir: &str) -> Vec<(&str, bool)> {
        if self.get(dir) != Some(&Node::Dir) {
            return Vec::new();
        }
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.nodes
            .range(prefix.clone()..)
            .skip_while(|(p, _)| p.is_empty())
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter_map(|(p, n)| {
                let rest = &p[prefix.len()..];
                (!rest.is_empty() && !rest.contains('/')).then_some((rest, *n == Node::Dir))
            })
            .collect()
    }

    /// Every path, in order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }
}

/// The file name of a socket: its record's name (`<pid>-<ifname>.<id>`) for nsring's,
/// `<pid>-<ifname>.<socket inode>` with the lowest owning PID for everyone else's (0 when no
/// owner is visible from here).
pub fn socket_file_name(s: &SocketEntry) -> String {
    if let Some(r) = &s.record {
        return r.name.clone();
    }
    let pid = s
        .kernel
        .as_ref()
        .and_then(|k| k.owners.iter().map(|o| o.pid).min())
        .unwrap_or(0);
    format!("{pid}-{}.{}", s.ifname(), s.inode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::NsId;

    fn empty_view() -> NamespaceView {
        NamespaceView {
            namespace: NsId {
                label: "ns0".into(),
                inode: 4026532000,
                cookie: Some(7),
                initial: false,
                container: None,
            },
            devices: Vec::new(),
            sockets: Vec::new(),
            kernel_sockets: Some(0),
            problems: Vec::new(),
            removed_stale: Vec::new(),
        }
    }

    #[test]
    fn the_fixed_layout() {
        let t = Tree::of(&empty_view(), "16 blocks", 0);
        assert_eq!(
            t.children(""),
            vec![("dev", true), ("info", false), ("stats", true)]
        );
        assert!(t.children("dev").is_empty());
        assert!(t.children("info").is_empty(), "a file has no children");
        let Some(Node::File(info)) = t.get("info") else {
            panic!("no info")
        };
        assert!(info.contains("Total rings            : 0\n"), "{info}");
        assert!(
            info.contains("Ring defaults          : 16 blocks\n"),
            "{info}"
        );
        assert!(t.get("nope").is_none());
        assert_eq!(t.paths().count(), 4);
    }
}
