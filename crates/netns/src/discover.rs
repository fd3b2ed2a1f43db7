//! Finding network namespaces: the named ones (iproute2's `/run/netns`, like `ip netns list`),
//! every one held by a process (`/proc/*/ns/net`, and threads that entered another one) or by
//! an nsfs bind mount anywhere (container runtimes keep theirs under `/run/docker/netns` and
//! the like), which process is in which (`ip netns identify`, `ip netns pids`).
//!
//! A namespace's identity is the (device, inode) of its nsfs file. Processes come and go while
//! `/proc` is read; one that exits half-way is skipped, never an error.
//!
//! [`discover`] adds the containers each namespace belongs to: from the runtimes' APIs when
//! they can be asked (names), else from the processes' cgroups (runtime and ID). One pass
//! over `/proc` serves both. [`containers_of`] does the same for one open namespace.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nsring_containers::cgroup::{self, CgroupContainer};

use serde::Serialize;

use crate::link::{Rtnl, nsid_of};
use crate::{Error, NETNS_RUN_DIR, NetNs, NsSpec, Result};

/// A named namespace, as `ip netns list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Named {
    /// The name: the file `/run/netns/NAME`.
    pub name: String,
    /// The id the caller's namespace gives it (`RTM_GETNSID`), if one is assigned: what
    /// `ip netns list` prints as `(id: N)`.
    pub id: Option<i32>,
    /// The nsfs inode; `None` if the file is not (or no longer) a mounted namespace.
    pub inode: Option<u64>,
}

/// A process that is in a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    /// The process ID (as this process sees it).
    pub pid: u32,
    /// The command name (`/proc/PID/comm`).
    pub comm: String,
    /// Set when only this thread of the process is in the namespace (it entered with
    /// `setns`, as `NetNs::run` does), not the process itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
}

/// A network namespace found by [`list_all`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NsInfo {
    /// The nsfs inode (what `readlink /proc/PID/ns/net` shows in brackets).
    pub inode: u64,
    /// The id the caller's namespace gives it, if one is assigned.
    pub id: Option<i32>,
    /// Its iproute2 names (`/run/netns/NAME` entries on it), sorted.
    pub names: Vec<String>,
    /// Other nsfs bind mounts of it outside `/run/netns` (a container runtime's, say).
    pub mounts: Vec<PathBuf>,
    /// The processes (and threads) in it, by PID. Kernel threads are not listed.
    pub holders: Vec<Holder>,
    /// The initial network namespace (that of the kernel's own threads).
    pub initial: bool,
    /// The caller's namespace.
    pub current: bool,
    /// The containers it belongs to (a pod's share one), by label. Never set on the initial
    /// namespace (a container on the host's network does not own it).
    pub containers: Vec<ContainerTag>,
}

/// Where a [`ContainerTag`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TagSource {
    /// The runtime said so (it has the name).
    Api,
    /// A process's cgroup said so (runtime and ID only).
    Cgroup,
}

/// A container a namespace belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerTag {
    /// `podman`, `docker`, `containerd`, or, from cgroups only, `cri-o` and `kubernetes`.
    pub runtime: String,
    /// The full ID.
    pub id: String,
    /// Its name, when its runtime was asked (containerd has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// containerd's namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The Kubernetes pod's UID (from cgroups).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Who said so: the runtime, or a cgroup.
    pub source: TagSource,
}

impl ContainerTag {
    /// `podman:web1`, or `docker:3f2a9c1b2c3d` without a name.
    pub fn label(&self) -> String {
        let short = self.id.get(..12).unwrap_or(&self.id);
        format!("{}:{}", self.runtime, self.name.as_deref().unwrap_or(short))
    }

    fn from_api(c: &nsring_containers::Container) -> ContainerTag {
        ContainerTag {
            runtime: c.runtime.to_string(),
            id: c.id.clone(),
            name: c.name.clone(),
            namespace: c.namespace.clone(),
            pod: None,
            source: TagSource::Api,
        }
    }

    fn from_cgroup(c: &CgroupContainer) -> ContainerTag {
        ContainerTag {
            runtime: c.kind.to_string(),
            id: c.id.clone(),
            name: None,
            namespace: None,
            pod: c.pod.clone(),
            source: TagSource::Cgroup,
        }
    }
}

impl NsInfo {
    /// A short name for people: its first iproute2 name, else its first container's label,
    /// else `initial` or `inode:N`.
    pub fn label(&self) -> String {
        if let Some(n) = self.names.first() {
            return n.clone();
        }
        if let Some(c) = self.containers.first() {
            return c.label();
        }
        if self.initial {
            return "initial".into();
        }
        format!("inode:{}", self.inode)
    }

    /// Opens it through a name, a mount or a process in it, checking that what was opened is
    /// still this namespace (a process may have moved on). [`Error::NotFound`] once it is gone.
    pub fn open(&self) -> Result<NetNs> {
        let mut specs: Vec<NsSpec> = self.names.iter().cloned().map(NsSpec::Name).collect();
        specs.extend(self.mounts.iter().cloned().map(NsSpec::Path));
        specs.extend(self.holders.iter().map(|h| match h.tid {
            Some(tid) => NsSpec::Path(format!("/proc/{}/task/{tid}/ns/net", h.pid).into()),
            None => NsSpec::Pid(h.pid),
        }));
        specs
            .iter()
            .filter_map(|s| NetNs::open(s).ok())
            .find(|ns| ns.inode() == self.inode)
            .ok_or_else(|| Error::NotFound { spec: self.label() })
    }
}

/// What [`discover`] asks besides `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscoverOptions {
    /// Ask the container runtimes that are here for their running containers (names);
    /// without it, containers are recognised from cgroups only (runtime and ID).
    pub runtimes: bool,
}

/// Every network namespace on the host and what it belongs to; see [`discover`].
#[derive(Debug, Clone, Serialize)]
pub struct Discovery {
    /// The initial namespace first, then by inode.
    pub namespaces: Vec<NsInfo>,
    /// Runtimes that are here but could not be asked, one line each (absent ones are not
    /// mentioned).
    pub notes: Vec<String>,
    /// How long it took (the `/proc` scan, and the runtimes if asked).
    #[serde(skip)]
    pub took: Duration,
}

/// Every network namespace on the host (named, anonymous, containers'; the initial one
/// flagged) with its identity: inode, names, mounts, holder processes and containers.
/// One pass over `/proc` finds the namespaces, their processes and the containers their
/// cgroups name; with [`DiscoverOptions::runtimes`] the runtimes' APIs add names.
pub fn discover(opts: DiscoverOptions) -> Result<Discovery> {
    let start = Instant::now();
    let (mut namespaces, by_cgroup) = scan_all(true)?;
    for (inode, c) in by_cgroup {
        if let Some(info) = namespaces
            .iter_mut()
            .find(|i| i.inode == inode && !i.initial)
            && !info.containers.iter().any(|t| t.id == c.id)
        {
            info.containers.push(ContainerTag::from_cgroup(&c));
        }
    }
    let mut notes = Vec::new();
    if opts.runtimes {
        let (running, n) = nsring_containers::running();
        notes = n;
        for c in &running {
            let Some(pid) = c.pid else { continue };
            let Ok((_, inode)) = key_of(Path::new(&format!("/proc/{pid}/ns/net"))) else {
                continue; // exited since it was listed
            };
            let Some(info) = namespaces
                .iter_mut()
                .find(|i| i.inode == inode && !i.initial)
            else {
                continue;
            };
            // The runtime's word replaces what the cgroup guessed about the same container.
            info.containers.retain(|t| t.id != c.id);
            info.containers.push(ContainerTag::from_api(c));
        }
    }
    for info in &mut namespaces {
        info.containers
            .sort_by_key(|t| (t.source != TagSource::Api, t.label()));
    }
    Ok(Discovery {
        namespaces,
        notes,
        took: start.elapsed(),
    })
}

/// The containers `ns` belongs to, for outputs that name them: the one it was opened as
/// ([`NetNs::container`]), else those its processes' cgroups name; with
/// [`DiscoverOptions::runtimes`] the runtimes are asked for their names ([`name_tags`]:
/// only when a cgroup named a container, so a plain namespace costs one pass over `/proc`
/// and no runtime query). Empty for the initial namespace and for a namespace no
/// container's process is in.
pub fn containers_of(ns: &NetNs, opts: DiscoverOptions) -> Vec<ContainerTag> {
    if let Some(c) = ns.container() {
        return vec![ContainerTag::from_api(c)];
    }
    if is_initial(ns) {
        return Vec::new();
    }
    let mut tags: Vec<ContainerTag> = Vec::new();
    for h in holders(ns).into_iter().filter(|h| h.tid.is_none()) {
        if let Some(c) = cgroup::of_pid(h.pid)
            && !tags.iter().any(|t| t.id == c.id)
        {
            tags.push(ContainerTag::from_cgroup(&c));
        }
    }
    if opts.runtimes {
        name_tags(&mut tags);
    }
    tags
}

/// Gives the containers that cgroups found (runtime and ID only) their names: each runtime
/// that has one of them is asked once for its running containers; a runtime that is not
/// here or does not answer leaves its tags as they are. Then sorts them, named ones first.
pub fn name_tags(tags: &mut [ContainerTag]) {
    for runtime in nsring_containers::Runtime::ALL {
        if !tags
            .iter()
            .any(|t| t.source == TagSource::Cgroup && t.runtime == runtime.prefix())
        {
            continue;
        }
        let Ok(running) = nsring_containers::running_in(runtime) else {
            continue;
        };
        for t in tags
            .iter_mut()
            .filter(|t| t.source == TagSource::Cgroup && t.runtime == runtime.prefix())
        {
            if let Some(c) = running.iter().find(|c| c.id == t.id) {
                *t = ContainerTag::from_api(c);
            }
        }
    }
    tags.sort_by_key(|t| (t.source != TagSource::Api, t.label()));
}

/// The identity of a namespace: the nsfs (device, inode).
type Key = (u64, u64);

fn key_of(path: &Path) -> io::Result<Key> {
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// The device number of the nsfs filesystem: a `/run/netns` file on another device is not a
/// mounted namespace.
fn nsfs_dev() -> Option<u64> {
    key_of(Path::new("/proc/thread-self/ns/net"))
        .ok()
        .map(|k| k.0)
}

/// The named namespaces (`/run/netns/*`), sorted by name, each with the id the caller's
/// namespace gives it. A missing `/run/netns` means there are none.
pub fn list() -> Result<Vec<Named>> {
    let mut ids = nsid_query();
    let mut out = Vec::new();
    for name in run_dir_names()? {
        let (id, inode) = match NetNs::open(&NsSpec::Name(name.clone())) {
            Ok(ns) => (
                ids.as_mut().and_then(|q| nsid_of(q, &ns).ok().flatten()),
                Some(ns.inode()),
            ),
            Err(_) => (None, None),
        };
        out.push(Named { name, id, inode });
    }
    Ok(out)
}

/// The entries of `/run/netns`, sorted; none if it does not exist.
fn run_dir_names() -> Result<Vec<String>> {
    let dir = match std::fs::read_dir(NETNS_RUN_DIR) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::sys("readdir", NETNS_RUN_DIR, e)),
    };
    let mut names: Vec<String> = dir
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// The names in `/run/netns` that are mounted namespaces, with their identity.
fn named_keys() -> Result<Vec<(String, Key)>> {
    let dev = nsfs_dev();
    Ok(run_dir_names()?
        .into_iter()
        .filter_map(|name| {
            let key = key_of(&Path::new(NETNS_RUN_DIR).join(&name)).ok()?;
            (Some(key.0) == dev).then_some((name, key))
        })
        .collect())
}

/// Every network namespace that a process or thread is in, that has a name, or that is bind
/// mounted somewhere: the initial one first, then by inode.
///
/// Namespaces kept alive only by an open descriptor (a socket, an nsfs fd) are not found.
pub fn list_all() -> Result<Vec<NsInfo>> {
    Ok(scan_all(false)?.0)
}

/// (namespace inode, the container a process in it belongs to, by its cgroup).
type ByCgroup = Vec<(u64, CgroupContainer)>;

/// The namespaces, and with `cgroups` the container (by its processes' cgroups) each
/// process belongs to: (namespace inode, container).
fn scan_all(cgroups: bool) -> Result<(Vec<NsInfo>, ByCgroup)> {
    let mut found: BTreeMap<Key, NsInfo> = BTreeMap::new();
    let mut by_cgroup = Vec::new();

    let blank = |key: Key| NsInfo {
        inode: key.1,
        id: None,
        names: Vec::new(),
        mounts: Vec::new(),
        holders: Vec::new(),
        initial: false,
        current: false,
        containers: Vec::new(),
    };
    // Where to open each namespace to ask for its id: a name, a mount, or a process.
    let mut openers: BTreeMap<Key, PathBuf> = BTreeMap::new();

    for (key, holder) in scan_procs() {
        if cgroups
            && holder.tid.is_none()
            && let Some(c) = cgroup::of_pid(holder.pid)
        {
            by_cgroup.push((key.1, c));
        }
        openers.entry(key).or_insert_with(|| match holder.tid {
            Some(tid) => PathBuf::from(format!("/proc/{}/task/{tid}/ns/net", holder.pid)),
            None => PathBuf::from(format!("/proc/{}/ns/net", holder.pid)),
        });
        found
            .entry(key)
            .or_insert_with(|| blank(key))
            .holders
            .push(holder);
    }
    for (name, key) in named_keys()? {
        openers.insert(key, Path::new(NETNS_RUN_DIR).join(&name));
        found
            .entry(key)
            .or_insert_with(|| blank(key))
            .names
            .push(name);
    }
    if let Some(dev) = nsfs_dev() {
        for (inode, path) in nsfs_mounts() {
            let key = (dev, inode);
            openers.entry(key).or_insert_with(|| path.clone());
            found
                .entry(key)
                .or_insert_with(|| blank(key))
                .mounts
                .push(path);
        }
    }
    if let Some(key) = initial_key() {
        found.entry(key).or_insert_with(|| blank(key)).initial = true;
    }
    if let Ok(key) = key_of(Path::new("/proc/thread-self/ns/net")) {
        openers
            .entry(key)
            .or_insert_with(|| "/proc/thread-self/ns/net".into());
        found.entry(key).or_insert_with(|| blank(key)).current = true;
    }

    let mut ids = nsid_query();
    let mut out: Vec<NsInfo> = found
        .into_iter()
        .map(|(key, mut info)| {
            info.holders.sort_by_key(|h| (h.pid, h.tid));
            info.mounts.sort();
            if let (Some(q), Some(path)) = (ids.as_mut(), openers.get(&key)) {
                // The namespace may be gone by now; then it has no id.
                if let Ok(ns) = NetNs::open(&NsSpec::Path(path.clone())) {
                    info.id = nsid_of(q, &ns).ok().flatten();
                }
            }
            info
        })
        .collect();
    out.sort_by_key(|i| (!i.initial, i.inode));
    Ok((out, by_cgroup))
}

/// The identity of the initial network namespace: that of PID 1, or, where PID 1's is not
/// readable (a sandbox), that of `kthreadd` (PID 2): kernel threads never leave it.
fn initial_key() -> Option<Key> {
    key_of(Path::new("/proc/1/ns/net"))
        .or_else(|_| key_of(Path::new("/proc/2/ns/net")))
        .ok()
}

/// True if `ns` is the initial network namespace.
pub fn is_initial(ns: &NetNs) -> bool {
    initial_key() == Some((ns.dev(), ns.inode()))
}

/// The names (`/run/netns`) of the namespace process `pid` is in, like `ip netns identify`.
/// Empty if it has none.
pub fn identify(pid: u32) -> Result<Vec<String>> {
    let key = key_of(Path::new(&format!("/proc/{pid}/ns/net"))).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Error::ProcessNotFound { pid }
        } else {
            Error::sys("stat", format!("/proc/{pid}/ns/net"), e)
        }
    })?;
    Ok(named_keys()?
        .into_iter()
        .filter(|(_, k)| *k == key)
        .map(|(n, _)| n)
        .collect())
}

/// The processes (and threads, see [`Holder::tid`]) in `ns`, by PID. Kernel threads are
/// not listed.
pub fn holders(ns: &NetNs) -> Vec<Holder> {
    let key = (ns.dev(), ns.inode());
    let mut out: Vec<Holder> = scan_procs()
        .into_iter()
        .filter(|(k, _)| *k == key)
        .map(|(_, h)| h)
        .collect();
    out.sort_by_key(|h| (h.pid, h.tid));
    out
}

/// The PIDs of the processes in `ns`, sorted, like `ip netns pids`.
pub fn pids(ns: &NetNs) -> Vec<u32> {
    holders(ns)
        .into_iter()
        .filter(|h| h.tid.is_none())
        .map(|h| h.pid)
        .collect()
}

/// `PF_KTHREAD` in `/proc/PID/stat`'s flags.
const PF_KTHREAD: u64 = 0x0020_0000;

/// The command name and flags from `/proc/PID/stat` (the name may hold spaces and
/// parentheses: it ends at the last `)`).
fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    // After ")": state ppid pgrp session tty_nr tpgid flags ...
    let flags = stat
        .get(close + 1..)?
        .split_whitespace()
        .nth(6)?
        .parse()
        .ok()?;
    Some((comm, flags))
}

/// Every user-space process's namespace, and those of its threads that differ from it.
fn scan_procs() -> Vec<(Key, Holder)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((comm, flags)) = parse_stat(&stat) else {
            continue;
        };
        if flags & PF_KTHREAD != 0 {
            continue;
        }
        // Unreadable (another user's, or a protected process) or gone: skip.
        let Ok(main) = key_of(Path::new(&format!("/proc/{pid}/ns/net"))) else {
            continue;
        };
        out.push((
            main,
            Holder {
                pid,
                comm: comm.clone(),
                tid: None,
            },
        ));
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if tid == pid {
                continue;
            }
            if let Ok(k) = key_of(Path::new(&format!("/proc/{pid}/task/{tid}/ns/net")))
                && k != main
            {
                out.push((
                    k,
                    Holder {
                        pid,
                        comm: comm.clone(),
                        tid: Some(tid),
                    },
                ));
            }
        }
    }
    out
}

/// The nsfs bind mounts of network namespaces outside `/run/netns`, from the caller's
/// `/proc/self/mountinfo`: (inode, mount point).
fn nsfs_mounts() -> Vec<(u64, PathBuf)> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|text| parse_mountinfo(&text))
        .unwrap_or_default()
}

fn parse_mountinfo(text: &str) -> Vec<(u64, PathBuf)> {
    let mut out = Vec::new();
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
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        let point = PathBuf::from(unescape_mountinfo(point));
        if point.parent() == Some(Path::new(NETNS_RUN_DIR)) {
            continue;
        }
        out.push((inode, point));
    }
    out
}

/// Mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1..i + 4)
                .is_some_and(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A route-netlink socket in the caller's namespace, to ask for the ids it gives others.
fn nsid_query() -> Option<Rtnl> {
    Rtnl::open(&NetNs::current().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_comm() {
        let line = "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0";
        assert_eq!(parse_stat(line), Some(("a) b (c)".to_owned(), 4_194_560)));
        let kthread = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0";
        let (comm, flags) = parse_stat(kthread).unwrap();
        assert_eq!(comm, "kthreadd");
        assert_ne!(flags & PF_KTHREAD, 0);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn mountinfo_nsfs_lines() {
        let text = "\
42 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw
50 42 0:4 net:[4026532290] /run/netns/ns0 rw shared:1 - nsfs nsfs rw
51 27 0:4 net:[4026532351] /run/docker/netns/a\\040b rw - nsfs nsfs rw
52 27 0:4 mnt:[4026532400] /tmp/mnt rw - nsfs nsfs rw
";
        assert_eq!(
            parse_mountinfo(text),
            vec![(4_026_532_351, PathBuf::from("/run/docker/netns/a b"))]
        );
    }

    #[test]
    fn mountinfo_unescape() {
        assert_eq!(unescape_mountinfo("a\\011b\\134c\\"), "a\tb\\c\\");
        assert_eq!(unescape_mountinfo("plain"), "plain");
    }
}
