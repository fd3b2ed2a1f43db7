//! Creating, naming and deleting named namespaces, the iproute2 way.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::Serialize;

use crate::{Error, Holder, NETNS_RUN_DIR, NetNs, NsSpec, Result, sys, validate_name};

/// Creates the named namespace `/run/netns/NAME` (like `ip netns add NAME`) and returns it open.
///
/// On any failure nothing is left behind: no mount point file, no mount.
pub fn add(name: &str) -> Result<NetNs> {
    validate_name(name)?;
    let dir = Path::new(NETNS_RUN_DIR);
    sys::prepare_run_dir(dir).map_err(|e| Error::sys("prepare", NETNS_RUN_DIR, e))?;
    let path = dir.join(name);
    create_mount_point(&path, name)?;
    let bound = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("netns-add".into())
            .spawn_scoped(s, || sys::unshare_and_bind(&path))
            .map_err(|e| Error::sys("spawn thread", name, e))?
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
            .map_err(|e| Error::sys("create namespace", name, e))
    });
    if let Err(e) = bound {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    NetNs::open(&NsSpec::Name(name.to_owned())).inspect_err(|_| {
        let _ = del_mount(&path);
    })
}

/// Creates the empty file a namespace is bind-mounted on; an existing one is [`Error::Exists`].
fn create_mount_point(path: &Path, name: &str) -> Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o000)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(Error::Exists {
            name: name.to_owned(),
        }),
        Err(e) => Err(Error::sys("create", path.display().to_string(), e)),
    }
}

fn del_mount(path: &Path) -> io::Result<()> {
    let detached = sys::detach(path);
    let removed = std::fs::remove_file(path);
    detached.and(removed)
}

/// What happens to an interface of a deleted namespace once the namespace is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// A virtual interface (it has a link kind: veth, bridge, ...) or `lo`: the kernel
    /// destroys it (deleting one end of a veth pair destroys the other end too).
    Destroyed,
    /// A physical interface (no link kind): the kernel moves it back to the initial
    /// namespace (renamed `devN` if its name is taken there).
    ReturnsToInitial,
}

/// One interface of a deleted namespace and its fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkFate {
    /// The interface name.
    pub name: String,
    /// The interface index in the deleted namespace.
    pub index: u32,
    /// The link kind (`veth`, `bridge`, ...), `None` for a physical interface or `lo`.
    pub kind: Option<String>,
    /// What happens to it.
    pub fate: Fate,
}

/// What [`del`] did and what will follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeleteReport {
    /// The name that was deleted.
    pub name: String,
    /// The namespace's nsfs inode.
    pub inode: u64,
    /// Processes (and threads) still in the namespace: it lives on until they exit (or leave),
    /// and its interfaces stay with it until then.
    pub holders: Vec<Holder>,
    /// Its interfaces when it was deleted, and what happens to each when it goes away.
    pub links: Vec<LinkFate>,
    /// True if listing the interfaces failed (then `links` is empty).
    pub links_unknown: bool,
    /// The name was on the initial namespace, which never goes away: `links` is empty.
    pub initial: bool,
    /// After [`del_and_wait`]: the veth peers (in other namespaces) still there when the
    /// wait ended, as `NAME in NS`; empty when everything went away in time.
    pub remaining: Vec<String>,
}

impl DeleteReport {
    /// True if processes still hold the namespace, so it (and its interfaces) live on.
    pub fn lives_on(&self) -> bool {
        self.initial || !self.holders.is_empty()
    }
}

/// The fate of an interface with this link kind (see [`Fate`]).
pub fn fate_of(name: &str, kind: Option<&str>) -> Fate {
    if kind.is_some() || name == "lo" {
        Fate::Destroyed
    } else {
        Fate::ReturnsToInitial
    }
}

/// Deletes the name of a namespace (like `ip netns del NAME`): the bind mount is detached and
/// the file removed. The namespace itself lives on while a process or an open handle holds it.
///
/// Before deleting, it records which processes still hold the namespace and which
/// interfaces are in it (and what the kernel will do with each), and returns that.
pub fn del(name: &str) -> Result<DeleteReport> {
    validate_name(name)?;
    let path = Path::new(NETNS_RUN_DIR).join(name);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::NotFound {
                spec: name.to_owned(),
            });
        }
        Err(e) => return Err(Error::sys("stat", path.display().to_string(), e)),
        Ok(_) => {}
    }
    let mut report = DeleteReport {
        name: name.to_owned(),
        inode: 0,
        holders: Vec::new(),
        links: Vec::new(),
        links_unknown: true,
        initial: false,
        remaining: Vec::new(),
    };
    // A file that is not (or no longer) a mounted namespace is still removed, as `ip` does.
    if let Ok(ns) = NetNs::open(&NsSpec::Name(name.to_owned())) {
        report.inode = ns.inode();
        report.holders = crate::discover::holders(&ns);
        report.initial = crate::discover::is_initial(&ns);
        if report.initial {
            report.links_unknown = false;
        } else if let Ok(links) = crate::link::list(&ns) {
            report.links_unknown = false;
            report.links = links
                .into_iter()
                .map(|l| LinkFate {
                    fate: fate_of(&l.name, l.kind.as_deref()),
                    name: l.name,
                    index: l.index,
                    kind: l.kind,
                })
                .collect();
        }
        // `ns` is closed here, before the name goes: this handle must not keep it alive.
    }
    del_mount(&path).map_err(|e| Error::sys("delete", path.display().to_string(), e))?;
    Ok(report)
}

/// A veth peer in another namespace, watched until it goes away.
struct Watched {
    ns: NetNs,
    ns_name: String,
    index: u32,
    name: String,
}

/// [`del`], then, when nothing else held the namespace (so the kernel destroys it), waits up
/// to `wait` until the veth peers of its interfaces are gone from their namespaces too —
/// the kernel does that after `del` returns (tens of milliseconds), and a script that
/// reuses a peer's name at once would fail with "File exists". What is still there when
/// the wait ends is in [`DeleteReport::remaining`].
pub fn del_and_wait(name: &str, wait: std::time::Duration) -> Result<DeleteReport> {
    // The peers, found before the name goes (their namespaces opened by their spelling).
    let mut watched = Vec::new();
    if let Ok(ns) = NetNs::open(&NsSpec::Name(name.to_owned()))
        && !crate::discover::is_initial(&ns)
        && let Ok(links) = crate::link::list(&ns)
    {
        for l in links {
            let Some(peer) = l.peer else { continue };
            let (Some(spelling), Some(pname)) = (peer.netns, peer.name) else {
                continue; // in the same namespace: it goes with it
            };
            if let Ok(peer_ns) = spelling.parse::<NsSpec>().and_then(|s| NetNs::open(&s))
                && !peer_ns.same_as(&ns)
            {
                watched.push(Watched {
                    ns: peer_ns,
                    ns_name: spelling,
                    index: peer.index,
                    name: pname,
                });
            }
        }
    }
    let mut report = del(name)?;
    if report.lives_on() {
        return Ok(report);
    }
    let deadline = std::time::Instant::now() + wait;
    loop {
        watched.retain(|w| {
            crate::link::list(&w.ns).is_ok_and(|ls| ls.iter().any(|l| l.index == w.index))
        });
        if watched.is_empty() || std::time::Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    report.remaining = watched
        .iter()
        .map(|w| format!("{} in {}", w.name, w.ns_name))
        .collect();
    Ok(report)
}

/// Gives the namespace `spec` names the name `name`, like `ip netns attach NAME PID` with
/// any namespace spelling ([`NsSpec::Pid`], a container, a path, another name): the
/// namespace is opened, then that descriptor is bind-mounted onto `/run/netns/NAME`. On
/// failure nothing is left.
pub fn attach(name: &str, spec: &NsSpec) -> Result<NetNs> {
    validate_name(name)?;
    if let NsSpec::Pid(0) = spec {
        return Err(Error::ProcessNotFound { pid: 0 });
    }
    // Open first: the mount source is this descriptor, so a PID that exits (and is reused)
    // between the check and the mount cannot give the name to another namespace.
    let ns = NetNs::open(spec).map_err(|e| match (e, spec) {
        (Error::NotFound { .. }, NsSpec::Pid(pid)) => Error::ProcessNotFound { pid: *pid },
        (e, _) => e,
    })?;
    let dir = Path::new(NETNS_RUN_DIR);
    sys::prepare_run_dir(dir).map_err(|e| Error::sys("prepare", NETNS_RUN_DIR, e))?;
    let path = dir.join(name);
    create_mount_point(&path, name)?;
    let source = std::path::PathBuf::from(format!("/proc/self/fd/{}", ns.as_raw_fd()));
    if let Err(e) = sys::bind_mount(&source, &path) {
        let _ = std::fs::remove_file(&path);
        return Err(Error::sys(
            "mount",
            format!("of namespace {spec} on {}", path.display()),
            e,
        ));
    }
    Ok(ns)
}
