//! Which processes hold which sockets: one scan of `/proc/*/fd/*` for `socket:[INODE]`.
//!
//! Socket inodes live on the one `sockfs` of the system, so an inode names the same socket
//! whatever namespace the socket is in; one scan serves every socket of every namespace.
//! Processes come and go during the scan, and some cannot be read without privileges:
//! both are tolerated (the first silently, the second counted in
//! [`SocketOwners::skipped`]). PIDs are those of the `/proc` that was scanned.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// A process that holds a socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    /// The process ID (in the PID namespace of the reader).
    pub pid: u32,
    /// `/proc/PID/comm` (at most 15 bytes, set by the process).
    pub comm: String,
    /// The descriptors of this process that refer to the socket, ascending.
    pub fds: Vec<u32>,
}

impl fmt::Display for Owner {
    /// `comm[pid]`, e.g. `tcpdump[4242]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.comm, self.pid)
    }
}

/// The result of one scan: socket inode → owners (ascending by PID).
#[derive(Debug, Clone, Default)]
pub struct SocketOwners {
    by_inode: HashMap<u64, Vec<Owner>>,
    skipped: usize,
}

impl SocketOwners {
    /// The owners of a socket inode (empty if none were seen).
    pub fn get(&self, inode: u64) -> &[Owner] {
        self.by_inode.get(&inode).map_or(&[], Vec::as_slice)
    }
    /// How many processes could not be read (permission); their sockets have no owner
    /// here. Non-zero means the view is incomplete: run as root.
    pub fn skipped(&self) -> usize {
        self.skipped
    }
    /// How many distinct socket inodes were seen.
    pub fn len(&self) -> usize {
        self.by_inode.len()
    }
    /// Whether no socket at all was seen.
    pub fn is_empty(&self) -> bool {
        self.by_inode.is_empty()
    }
    /// The whole map.
    pub fn into_map(self) -> HashMap<u64, Vec<Owner>> {
        self.by_inode
    }
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The process directory itself could not be listed.
    #[error("cannot list processes in {}: is /proc mounted?", path.display())]
    ReadProc {
        /// The `/proc` directory.
        path: PathBuf,
        #[source]
        /// The errno of listing it.
        source: io::Error,
    },
}

/// Scans `/proc`.
pub fn scan() -> Result<SocketOwners, Error> {
    scan_proc(Path::new("/proc"))
}

/// Scans a `/proc`-like tree: `ROOT/PID/fd/N` symlinks and `ROOT/PID/comm` files.
pub fn scan_proc(root: &Path) -> Result<SocketOwners, Error> {
    let entries = fs::read_dir(root).map_err(|source| Error::ReadProc {
        path: root.to_owned(),
        source,
    })?;
    let mut out = SocketOwners::default();
    for entry in entries {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        match process_sockets(&dir) {
            Ok(sockets) if sockets.is_empty() => {}
            Ok(sockets) => {
                let comm = match fs::read_to_string(dir.join("comm")) {
                    Ok(c) => c.trim_end_matches('\n').to_owned(),
                    // Gone between reading its descriptors and its name: its sockets
                    // are no longer its own.
                    Err(e) if vanished(&e) => continue,
                    Err(_) => "?".to_owned(),
                };
                for (inode, fds) in sockets {
                    out.by_inode.entry(inode).or_default().push(Owner {
                        pid,
                        comm: comm.clone(),
                        fds,
                    });
                }
            }
            Err(e) if vanished(&e) => {}
            Err(_) => out.skipped += 1,
        }
    }
    for owners in out.by_inode.values_mut() {
        owners.sort_by_key(|o| o.pid);
    }
    Ok(out)
}

/// The socket inodes a process holds, each with its descriptors (ascending).
fn process_sockets(dir: &Path) -> io::Result<HashMap<u64, Vec<u32>>> {
    let mut sockets: HashMap<u64, Vec<u32>> = HashMap::new();
    for entry in fs::read_dir(dir.join("fd"))? {
        let Ok(entry) = entry else { continue };
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // Closed since the listing (or never readable): not an error for the scan.
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        if let Some(inode) = target.to_str().and_then(socket_inode) {
            sockets.entry(inode).or_default().push(fd);
        }
    }
    for fds in sockets.values_mut() {
        fds.sort_unstable();
    }
    Ok(sockets)
}

fn vanished(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

/// Parses a descriptor link target `socket:[INODE]`.
pub fn socket_inode(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct TempDir(PathBuf);
    impl TempDir {
        fn new() -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "nsring-owners-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn process(root: &Path, pid: u32, comm: Option<&str>, fds: &[(u32, &str)]) {
        let dir = root.join(pid.to_string());
        fs::create_dir_all(dir.join("fd")).unwrap();
        if let Some(c) = comm {
            fs::write(dir.join("comm"), format!("{c}\n")).unwrap();
        }
        for (fd, target) in fds {
            symlink(target, dir.join("fd").join(fd.to_string())).unwrap();
        }
    }

    #[test]
    fn parses_socket_links() {
        assert_eq!(socket_inode("socket:[4242]"), Some(4242));
        assert_eq!(socket_inode("socket:[]"), None);
        assert_eq!(socket_inode("pipe:[4242]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
        assert_eq!(socket_inode("socket:[12x]"), None);
    }

    #[test]
    fn fake_proc_tree() {
        let t = TempDir::new();
        let root = &t.0;
        process(
            root,
            200,
            Some("tcpdump"),
            &[(3, "socket:[77]"), (4, "/dev/null"), (9, "socket:[77]")],
        );
        process(
            root,
            100,
            Some("dhclient"),
            &[(5, "socket:[77]"), (6, "socket:[88]")],
        );
        // Exited after its fds were listed: no comm. Its sockets are dropped.
        process(root, 300, None, &[(3, "socket:[99]")]);
        // A process without an fd directory (exited): ignored.
        fs::create_dir_all(root.join("400")).unwrap();
        // Not processes.
        fs::create_dir_all(root.join("self/fd")).unwrap();
        fs::write(root.join("uptime"), "1 1\n").unwrap();

        let owners = scan_proc(root).unwrap();
        assert_eq!(owners.skipped(), 0);
        assert_eq!(owners.len(), 2);
        let o77 = owners.get(77);
        assert_eq!(o77.len(), 2);
        assert_eq!(o77[0].pid, 100);
        assert_eq!(o77[0].comm, "dhclient");
        assert_eq!(o77[0].fds, vec![5]);
        assert_eq!(o77[1].to_string(), "tcpdump[200]");
        assert_eq!(o77[1].fds, vec![3, 9]);
        assert_eq!(owners.get(88)[0].pid, 100);
        assert!(owners.get(99).is_empty());
        assert!(owners.get(1).is_empty());
    }

    #[test]
    fn missing_proc_is_an_error() {
        let err = scan_proc(Path::new("/nonexistent/nsring-proc")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/nsring-proc"),
            "{err}"
        );
    }

    #[test]
    fn real_proc_sees_our_own_socket() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let link = fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&sock)
        ))
        .unwrap();
        let inode = socket_inode(link.to_str().unwrap()).unwrap();
        let owners = scan().unwrap();
        let me = std::process::id();
        assert!(
            owners.get(inode).iter().any(|o| o.pid == me),
            "{:?}",
            owners.get(inode)
        );
    }
}
