//! Network namespaces for nsring, compatible with iproute2's `ip netns`.
//!
//! This crate owns:
//! - [`NetNs`], an open network namespace (an [`OwnedFd`] on `/run/netns/NAME`,
//!   `/proc/PID/ns/net` or any other nsfs path), and the one grammar every nsring command
//!   accepts for namespaces and interfaces ([`spec`]: [`NsSpec`], [`Target`], globs);
//! - [`NetNs::run`], which runs a closure inside a namespace on a dedicated thread, so the
//!   caller's thread (and the process) never changes namespace;
//! - discovery ([`list`], [`list_all`], [`identify`], [`pids`]) and `ip netns exec`'s
//!   semantics ([`exec()`]);
//! - interfaces over route netlink ([`link`]: list with veth peers, veth pairs, move, up/down,
//!   delete, addresses) and the test lab built on them ([`lab::Lab`], removed on drop).
//!
//! It must not capture or send packets (that is the `nsring-capture` crate) and it never runs `ip`.
//! The only unsafe code is the small `setns`/mount corner in [`sys`] and the fork/exec of
//! [`exec`](mod@exec).
#![warn(missing_docs)]

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub mod discover;
mod error;
pub mod exec;
pub mod lab;
pub mod link;
pub mod manage;
pub mod spec;
pub mod sys;

pub use discover::{
    ContainerTag, DiscoverOptions, Discovery, Holder, Named, NsInfo, TagSource, containers_of,
    discover, identify, list, list_all, name_tags, pids,
};
pub use error::{Error, Result};
pub use exec::{ExecStatus, exec};
pub use manage::{DeleteReport, Fate, LinkFate, add, attach, del, del_and_wait};
pub use spec::{IfPart, NsPart, NsSpec, Runtime, Target};

/// Where iproute2 keeps the bind mounts of named namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";
/// Where iproute2 keeps per-namespace configuration files bind-mounted over `/etc` by `exec`.
pub const NETNS_ETC_DIR: &str = "/etc/netns";

/// The nsfs inode of the initial network namespace (`PROC_NET_INIT_INO` in
/// include/linux/proc_ns.h), the same on every boot since Linux 3.8.
pub const PROC_NET_INIT_INO: u64 = 0xEFFF_FFF9;

/// Checks a namespace name the way iproute2 does, and a little stricter: not empty, not `.`
/// or `..`, no `/`, no NUL, at most 255 bytes (one path component).
pub fn validate_name(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        Some("is empty")
    } else if name == "." || name == ".." {
        Some("is '.' or '..'")
    } else if name.contains('/') {
        Some("contains '/'")
    } else if name.contains('\0') {
        Some("contains a NUL byte")
    } else if name.len() > 255 {
        Some("is longer than 255 bytes")
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::InvalidName {
            name: name.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

/// An open network namespace. Holding it keeps the namespace alive.
///
/// Open a named namespace and work inside it on a helper thread (the calling thread stays
/// where it is):
///
/// ```no_run
/// use nsring_netns::{NetNs, NsSpec};
///
/// let ns = NetNs::open(&"ns0".parse::<NsSpec>()?)?; // or NetNs::open_str("pid:4242")
/// println!("namespace inode {}", ns.inode());
/// for link in nsring_netns::link::list(&ns)? {
///     println!("{} {}", link.index, link.name);
/// }
/// let hostname_inside = ns.run(|| std::fs::read_to_string("/proc/sys/kernel/hostname"))??;
/// # let _ = hostname_inside;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct NetNs {
    fd: OwnedFd,
    spec: NsSpec,
    inode: u64,
    dev: u64,
    container: Option<Box<nsring_containers::Container>>,
}

impl NetNs {
    /// The namespace of the calling thread.
    pub fn current() -> Result<NetNs> {
        Self::open_path(Path::new("/proc/thread-self/ns/net"), NsSpec::Current)
    }

    /// The initial network namespace: PID 1's, or, where PID 1 cannot be inspected (a
    /// sandbox), the first process found in it, or the caller's own if it is the initial one.
    pub fn initial() -> Result<NetNs> {
        if let Ok(ns) = Self::open(&NsSpec::Pid(1))
            && ns.is_initial()
        {
            return Ok(ns);
        }
        let cur = Self::current()?;
        if cur.is_initial() {
            return Ok(cur);
        }
        let procs = std::fs::read_dir("/proc").map_err(|e| Error::sys("read", "/proc", e))?;
        for entry in procs.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if let Ok(ns) = Self::open(&NsSpec::Pid(pid))
                && ns.is_initial()
            {
                return Ok(ns);
            }
        }
        Err(Error::NotFound {
            spec: "initial".into(),
        })
    }

    /// True for the initial network namespace (its nsfs inode is fixed by the kernel:
    /// `PROC_NET_INIT_INO`).
    pub fn is_initial(&self) -> bool {
        self.inode == PROC_NET_INIT_INO
    }

    /// Opens the namespace a spec names. A [`NsSpec::Plain`] name is the named namespace if
    /// `/run/netns/NAME` exists, else the one running container of that name or ID; a
    /// [`NsSpec::Container`] asks its runtime. The handle's [`NetNs::spec`] says which it was.
    pub fn open(spec: &NsSpec) -> Result<NetNs> {
        match spec {
            NsSpec::Current => Self::current(),
            NsSpec::Plain(name) => match Self::open(&NsSpec::Name(name.clone())) {
                Err(Error::NotFound { .. }) => Self::open_plain_container(name),
                other => other,
            },
            NsSpec::Container { runtime, name } => {
                Self::open_container(nsring_containers::find(*runtime, name)?)
            }
            NsSpec::Name(_) | NsSpec::Path(_) | NsSpec::Pid(_) => {
                let path = spec.path().expect("these specs have a path");
                Self::open_path(&path, spec.clone())
            }
        }
    }

    /// A bare name that is not a named namespace.
    fn open_plain_container(name: &str) -> Result<NetNs> {
        if let Some((prefix, _)) = name.split_once(':') {
            return Err(Error::UnknownPrefix {
                spec: name.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        match nsring_containers::find_any(name) {
            Ok(c) => Self::open_container(c),
            // No runtime has it either: a missing namespace, as always.
            Err(nsring_containers::Error::NotFound { .. }) => Err(Error::NotFound {
                spec: name.to_owned(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The namespace of a running container: its main process's, or the file its runtime
    /// keeps it on if the process cannot be opened.
    fn open_container(c: nsring_containers::Container) -> Result<NetNs> {
        let spec = NsSpec::Container {
            runtime: c.runtime,
            name: c.name.clone().unwrap_or_else(|| c.short_id().to_owned()),
        };
        let by_pid = c
            .pid
            .map(|pid| Self::open_path(Path::new(&format!("/proc/{pid}/ns/net")), spec.clone()));
        let mut ns = match (by_pid, &c.netns_path) {
            (Some(Ok(ns)), _) => ns,
            (_, Some(path)) if path.exists() => Self::open_path(path, spec)?,
            (Some(Err(e)), _) => return Err(e),
            (None, _) => {
                return Err(nsring_containers::Error::NotRunning {
                    runtime: c.runtime,
                    name: c.label(),
                    status: c.status,
                }
                .into());
            }
        };
        ns.container = Some(Box::new(c));
        Ok(ns)
    }

    /// The container this namespace was opened as (`podman:web1`, or a bare name that
    /// turned out to be one), as its runtime described it.
    pub fn container(&self) -> Option<&nsring_containers::Container> {
        self.container.as_deref()
    }

    /// Parses and opens (`"ns0"`, `"/proc/1/ns/net"`, `"pid:42"`).
    pub fn open_str(s: &str) -> Result<NetNs> {
        Self::open(&s.parse()?)
    }

    fn open_path(path: &Path, spec: NsSpec) -> Result<NetNs> {
        let fd = sys::open_nsfs(path).map_err(|source| match source.raw_os_error() {
            Some(libc::ENOENT) => Error::NotFound {
                spec: spec.to_string(),
            },
            _ => Error::sys("open", path.display().to_string(), source),
        })?;
        let file = std::fs::File::from(fd);
        let meta = file
            .metadata()
            .map_err(|e| Error::sys("fstat", path.display().to_string(), e))?;
        let fd = OwnedFd::from(file);
        if !sys::is_netns(fd.as_fd()) {
            return Err(Error::NotANetNs {
                path: path.to_path_buf(),
            });
        }
        Ok(NetNs {
            fd,
            spec,
            inode: meta.ino(),
            dev: meta.dev(),
            container: None,
        })
    }

    /// Wraps an already open nsfs descriptor.
    pub fn from_fd(fd: OwnedFd, spec: NsSpec) -> Result<NetNs> {
        if !sys::is_netns(fd.as_fd()) {
            return Err(Error::NotANetNs {
                path: spec.path().unwrap_or_default(),
            });
        }
        let file = std::fs::File::from(fd);
        let meta = file
            .metadata()
            .map_err(|e| Error::sys("fstat", spec.to_string(), e))?;
        Ok(NetNs {
            fd: OwnedFd::from(file),
            spec,
            inode: meta.ino(),
            dev: meta.dev(),
            container: None,
        })
    }

    /// How this namespace was named when it was opened.
    pub fn spec(&self) -> &NsSpec {
        &self.spec
    }

    /// The nsfs inode: the namespace's identity (what `ls -L -i /proc/PID/ns/net` shows).
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// The device of the nsfs inode (with the inode, a unique identity).
    pub fn dev(&self) -> u64 {
        self.dev
    }

    /// True if both handles refer to the same namespace.
    pub fn same_as(&self, other: &NetNs) -> bool {
        self.inode == other.inode && self.dev == other.dev
    }

    /// A new handle on the same namespace.
    pub fn try_clone(&self) -> Result<NetNs> {
        Ok(NetNs {
            fd: self
                .fd
                .try_clone()
                .map_err(|e| Error::sys("dup", self.spec.to_string(), e))?,
            spec: self.spec.clone(),
            inode: self.inode,
            dev: self.dev,
            container: self.container.clone(),
        })
    }

    /// Runs `f` inside this namespace on a dedicated thread and returns its result.
    ///
    /// The calling thread never changes namespace. Sockets created by `f` stay in this
    /// namespace for their whole life, wherever they are used afterwards: this is how one
    /// process holds capture sockets in many namespaces.
    ///
    /// A thread that is in this namespace already (one that entered it with `setns`, or the
    /// caller in its own) runs `f` itself: no thread is made, and no setns (which needs
    /// CAP_SYS_ADMIN, even into one's own namespace).
    pub fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        if std::fs::metadata("/proc/thread-self/ns/net")
            .is_ok_and(|m| m.ino() == self.inode && m.dev() == self.dev)
        {
            return Ok(f());
        }
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name(format!("netns-{}", self.inode))
                .spawn_scoped(scope, || {
                    sys::setns_net(self.fd.as_fd())
                        .map_err(|e| Error::sys("setns", self.spec.to_string(), e))?;
                    Ok(f())
                })
                .map_err(|e| Error::sys("spawn thread", self.spec.to_string(), e))?
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for NetNs {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}
