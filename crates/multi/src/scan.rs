//! The namespaces on the host, found cheaply enough to look again whenever something changes:
//! nsfs bind mounts from `/proc/self/mountinfo` (iproute2's `/run/netns/NAME`, container
//! runtimes' own directories), and processes from one `stat` of `/proc/PID/ns/net` each.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nsring_netns::NETNS_RUN_DIR;

/// The nsfs bind mounts of network namespaces, by inode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mounts {
    /// Where each namespace (by nsfs inode) is mounted.
    pub by_inode: BTreeMap<u64, Mounted>,
}

/// Where one namespace is mounted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mounted {
    /// Its iproute2 names (mounts at `/run/netns/NAME`), sorted.
    pub names: Vec<String>,
    /// Every mount point, `/run/netns/NAME` ones included, sorted.
    pub paths: Vec<PathBuf>,
}

impl Mounts {
    /// Reads the caller's mount table. An unreadable table gives no mounts.
    pub fn read() -> Mounts {
        std::fs::read_to_string("/proc/self/mountinfo")
            .map(|t| Mounts::parse(&t))
            .unwrap_or_default()
    }

    /// Parses mountinfo text: every `nsfs` mount whose root is `net:[INODE]`.
    pub fn parse(text: &str) -> Mounts {
        let mut by_inode: BTreeMap<u64, Mounted> = BTreeMap::new();
        for line in text.lines() {
            // id parent major:minor root mountpoint options [optional...] - fstype source super
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            if right.split_whitespace().next() != Some("nsfs") {
                continue;
            }
            let mut fields = left.split_whitespace();
            let (Some(root), Some(point)) = (fields.nth(3), fields.next()) else {
                continue;
            };
            let Some(inode) = root
                .strip_prefix("net:[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let point = PathBuf::from(unescape(point));
            let m = by_inode.entry(inode).or_default();
            if point.parent() == Some(Path::new(NETNS_RUN_DIR))
                && let Some(name) = point.file_name().and_then(|n| n.to_str())
            {
                m.names.push(name.to_owned());
            }
            m.paths.push(point);
        }
        for m in by_inode.values_mut() {
            m.names.sort();
            m.names.dedup();
            m.paths.sort();
            m.paths.dedup();
        }
        Mounts { by_inode }
    }

    /// The mounts of namespace `inode`, if it has any.
    pub fn get(&self, inode: u64) -> Option<&Mounted> {
        self.by_inode.get(&inode)
    }
}

/// Mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1..i + 4)
                .is_some_and(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The PIDs in `/proc`, this process's excepted.
fn pids() -> impl Iterator<Item = u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(move |&p| p != me)
}

/// The nsfs inode of process `pid`'s network namespace, if it can be read.
pub fn ns_of(pid: u32) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|m| m.ino())
}

/// Every network namespace some process (other than this one) is in, with one of its
/// processes. Processes only: threads that entered another namespace are not looked at.
pub fn process_namespaces() -> HashMap<u64, u32> {
    let mut out = HashMap::new();
    for pid in pids() {
        if let Some(ino) = ns_of(pid) {
            out.entry(ino).or_insert(pid);
        }
    }
    out
}

/// A process (other than this one) in namespace `inode`, if any.
pub fn a_process_in(inode: u64) -> Option<u32> {
    pids().find(|&pid| ns_of(pid) == Some(inode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nsfs_mounts_with_names() {
        let text = "\
42 27 254:0 /run/netns /run/netns rw,relatime shared:1 - tmpfs tmpfs rw
50 42 0:4 net:[4026532290] /run/netns/ns0 rw shared:1 - nsfs nsfs rw
53 42 0:4 net:[4026532290] /run/netns/alias rw shared:1 - nsfs nsfs rw
51 27 0:4 net:[4026532351] /run/docker/netns/a\\040b rw - nsfs nsfs rw
52 27 0:4 mnt:[4026532400] /tmp/mnt rw - nsfs nsfs rw
garbage
";
        let m = Mounts::parse(text);
        assert_eq!(m.by_inode.len(), 2);
        let ns0 = m.get(4_026_532_290).unwrap();
        assert_eq!(ns0.names, ["alias", "ns0"]);
        assert_eq!(ns0.paths.len(), 2);
        let d = m.get(4_026_532_351).unwrap();
        assert!(d.names.is_empty());
        assert_eq!(d.paths, [PathBuf::from("/run/docker/netns/a b")]);
    }

    #[test]
    fn this_process_is_not_a_holder() {
        let me = ns_of(std::process::id()).unwrap();
        let all = process_namespaces();
        assert_ne!(all.get(&me), Some(&std::process::id()));
    }
}
