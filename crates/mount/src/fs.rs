//! The FUSE file system: every request is answered from the view of the namespace the
//! *caller* is in (FUSE gives its PID; its `/proc/PID/ns/net` names the namespace), the way
//! procfs shows `/proc/net` per reader.
//!
//! Nothing is cached by the kernel: entries and attributes have a zero lifetime (every path
//! walk asks again, so a name can exist for one reader and not for another) and files are
//! opened with `FOPEN_DIRECT_IO` and a size of 0, like procfs files. A file's contents are
//! made whole at `open` from one view and kept with the open file, so one read sees one
//! moment; a directory's entries are made at `opendir`.
//!
//! Inode numbers are stable per path (a hash), remembered while the kernel holds a lookup
//! reference and forgotten on `forget`, so the table does not grow with sockets that came
//! and went.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, Request,
};
use nsring_netns::{NetNs, NsSpec};
use nsring_registry::RunDir;
use nsring_registry::tree::{self, Node, Tree};

/// No kernel caching of entries or attributes: the same path means different things to
/// readers in different namespaces, and sockets come and go.
const TTL: Duration = Duration::ZERO;

/// Builds the tree of a namespace; the real one asks the registry, tests may fake it.
pub trait Source: Send + Sync + 'static {
    /// The tree of the namespace process (or thread) `pid` is in.
    fn tree_of(&self, pid: u32) -> Result<Tree, Errno>;
}

/// The registry's view of the caller's namespace.
#[derive(Debug)]
pub struct RegistrySource {
    /// Where nsring's records are.
    pub run: RunDir,
    /// The capture engine's default ring, for `info`.
    pub ring_defaults: String,
}

impl Source for RegistrySource {
    fn tree_of(&self, pid: u32) -> Result<Tree, Errno> {
        if pid == 0 {
            // The caller is in a PID namespace we cannot see into: no way to tell its
            // network namespace.
            return Err(Errno::EACCES);
        }
        let ns = NetNs::open(&NsSpec::Pid(pid)).map_err(|_| Errno::ENOENT)?;
        let names = nsring_netns::identify(pid).unwrap_or_default();
        let label = if !names.is_empty() {
            names.join(",")
        } else if ns.is_initial() {
            "(initial)".to_owned()
        } else {
            format!("pid:{pid}")
        };
        let view =
            nsring_registry::namespace_view(&ns, &label, &self.run).map_err(|_| Errno::EIO)?;
        Ok(Tree::of(
            &view,
            &self.ring_defaults,
            nsring_registry::record::unix_ns_now(),
        ))
    }
}

/// A path known to the kernel: its kind and how many lookups it holds.
#[derive(Debug)]
struct Known {
    path: String,
    dir: bool,
    lookups: u64,
}

/// Inode numbers <-> paths, for the paths the kernel holds.
#[derive(Debug, Default)]
struct Inodes {
    by_ino: HashMap<u64, Known>,
    by_path: HashMap<String, u64>,
}

impl Inodes {
    /// The number a path has or would get: its remembered one, else a hash (never 0 or 1),
    /// moved on past numbers other paths hold.
    fn number(&self, path: &str) -> u64 {
        if path.is_empty() {
            return INodeNo::ROOT.0;
        }
        if let Some(&ino) = self.by_path.get(path) {
            return ino;
        }
        let mut ino = fnv1a(path.as_bytes()).max(2);
        while self.by_ino.contains_key(&ino) {
            ino = ino.wrapping_add(1).max(2);
        }
        ino
    }

    /// One more lookup of `path`.
    fn remember(&mut self, path: &str, dir: bool) -> u64 {
        let ino = self.number(path);
        if ino == INodeNo::ROOT.0 {
            return ino;
        }
        let k = self.by_ino.entry(ino).or_insert_with(|| Known {
            path: path.to_owned(),
            dir,
            lookups: 0,
        });
        k.lookups += 1;
        self.by_path.insert(path.to_owned(), ino);
        ino
    }

    fn forget(&mut self, ino: u64, n: u64) {
        if let Some(k) = self.by_ino.get_mut(&ino) {
            k.lookups = k.lookups.saturating_sub(n);
            if k.lookups == 0 {
                let k = self.by_ino.remove(&ino).expect("present");
                self.by_path.remove(&k.path);
            }
        }
    }

    /// (path, is a directory) of a number the kernel holds.
    fn get(&self, ino: u64) -> Option<(String, bool)> {
        if ino == INodeNo::ROOT.0 {
            return Some((String::new(), true));
        }
        self.by_ino.get(&ino).map(|k| (k.path.clone(), k.dir))
    }
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &c| {
        (h ^ u64::from(c)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Is `path` a directory by its shape (`dev`, `stats`, `dev/<ifname>`)?
fn is_dir_path(path: &str) -> bool {
    tree::DIRS.contains(&path)
        || path
            .strip_prefix("dev/")
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
}

/// Does `path` exist in every tree that has its parent (`info`, `dev`, `stats`,
/// `dev/<ifname>/info`)? Those need no view to look up.
fn always_there(path: &str) -> bool {
    path == "info"
        || tree::DIRS.contains(&path)
        || path
            .strip_prefix("dev/")
            .and_then(|rest| rest.strip_suffix("/info"))
            .is_some_and(|ifname| !ifname.is_empty() && !ifname.contains('/'))
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

/// What an open file or directory holds.
#[derive(Debug)]
enum Handle {
    File(Vec<u8>),
    Dir(Vec<(u64, FileType, String)>),
}

/// The file system: a [`Source`] of trees, the inode table and the open handles.
#[derive(Debug)]
pub struct ViewFs<S> {
    source: S,
    inodes: Mutex<Inodes>,
    handles: Mutex<HashMap<u64, Handle>>,
    next_fh: AtomicU64,
    uid: u32,
    gid: u32,
}

impl<S: Source> ViewFs<S> {
    /// A file system answering from `source`.
    pub fn new(source: S) -> ViewFs<S> {
        ViewFs {
            source,
            inodes: Mutex::default(),
            handles: Mutex::default(),
            next_fh: AtomicU64::new(1),
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        }
    }

    fn attr(&self, ino: u64, dir: bool) -> FileAttr {
        let now = SystemTime::now();
        FileAttr {
            ino: INodeNo(ino),
            size: 0,
            blocks: 0,
            atime: now,
            mtime: now,
            ctime: now,
            crtime: now,
            kind: if dir {
                FileType::Directory
            } else {
                FileType::RegularFile
            },
            perm: if dir { 0o555 } else { 0o444 },
            nlink: if dir { 2 } else { 1 },
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn inodes(&self) -> std::sync::MutexGuard<'_, Inodes> {
        self.inodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn handles(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Handle>> {
        self.handles.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn keep(&self, h: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles().insert(fh, h);
        fh
    }

    fn path_of(&self, ino: INodeNo) -> Result<(String, bool), Errno> {
        self.inodes().get(ino.0).ok_or(Errno::ENOENT)
    }
}

impl<S: Source> Filesystem for ViewFs<S> {
    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = (|| {
            let (dir, _) = self.path_of(parent)?;
            let name = name.to_str().ok_or(Errno::ENOENT)?;
            let path = join(&dir, name);
            if !always_there(&path) && self.source.tree_of(req.pid())?.get(&path).is_none() {
                return Err(Errno::ENOENT);
            }
            let is_dir = is_dir_path(&path);
            Ok((self.inodes().remember(&path, is_dir), is_dir))
        })();
        match found {
            Ok((ino, dir)) => reply.entry(&TTL, &self.attr(ino, dir), Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.inodes().forget(ino.0, nlookup);
    }

    fn getattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: Option<FileHandle>,
        reply: fuser::ReplyAttr,
    ) {
        match self.path_of(ino) {
            Ok((_, dir)) => reply.attr(&TTL, &self.attr(ino.0, dir)),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let opened = (|| {
            let (path, _) = self.path_of(ino)?;
            match self.source.tree_of(req.pid())?.get(&path) {
                Some(Node::File(text)) => Ok(self.keep(Handle::File(text.clone().into_bytes()))),
                Some(Node::Dir) => Err(Errno::EISDIR),
                None => Err(Errno::ENOENT),
            }
        })();
        match opened {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let handles = self.handles();
        match handles.get(&fh.0) {
            Some(Handle::File(data)) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                let end = start.saturating_add(size as usize).min(data.len());
                reply.data(&data[start..end]);
            }
            _ => reply.error(Errno::EBADF),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.handles().remove(&fh.0);
        reply.ok();
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let opened = (|| {
            let (path, _) = self.path_of(ino)?;
            let tree = self.source.tree_of(req.pid())?;
            if tree.get(&path) != Some(&Node::Dir) {
                return Err(Errno::ENOENT);
            }
            let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
            let inodes = self.inodes();
            let mut entries = vec![
                (ino.0, FileType::Directory, ".".to_owned()),
                (inodes.number(parent), FileType::Directory, "..".to_owned()),
            ];
            for (name, dir) in tree.children(&path) {
                let kind = if dir {
                    FileType::Directory
                } else {
                    FileType::RegularFile
                };
                entries.push((inodes.number(&join(&path, name)), kind, name.to_owned()));
            }
            drop(inodes);
            Ok(self.keep(Handle::Dir(entries)))
        })();
        match opened {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let handles = self.handles();
        let Some(Handle::Dir(entries)) = handles.get(&fh.0) else {
            reply.error(Errno::EBADF);
            return;
        };
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(skip) {
            if reply.add(INodeNo(*ino), i as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.handles().remove(&fh.0);
        reply.ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inode_numbers_are_per_path_and_forgotten() {
        let mut t = Inodes::default();
        let a = t.remember("dev", true);
        assert_eq!(t.remember("dev", true), a, "same path, same number");
        assert!(a > 1);
        let b = t.remember("123-eth1.0", false);
        assert_ne!(a, b);
        assert_eq!(t.get(b), Some(("123-eth1.0".to_owned(), false)));
        t.forget(a, 1);
        assert!(t.get(a).is_some(), "one lookup still held");
        t.forget(a, 1);
        assert!(t.get(a).is_none());
        assert!(!t.by_path.contains_key("dev"));
        assert_eq!(t.get(1), Some((String::new(), true)));
        assert_eq!(t.number(""), 1);
    }

    #[test]
    fn shapes_of_paths() {
        for p in ["dev", "stats", "dev/eth1"] {
            assert!(is_dir_path(p), "{p}");
        }
        for p in ["info", "dev/eth1/info", "stats/1-eth1.0", "1-eth1.0"] {
            assert!(!is_dir_path(p), "{p}");
        }
        for p in ["info", "dev", "stats", "dev/eth1/info"] {
            assert!(always_there(p), "{p}");
        }
        for p in [
            "dev/eth1",
            "stats/1-eth1.0",
            "1-eth1.0",
            "dev//info",
            "dev/info",
        ] {
            assert!(!always_there(p), "{p}");
        }
        assert_eq!(join("", "info"), "info");
        assert_eq!(join("dev/eth1", "info"), "dev/eth1/info");
    }
}
