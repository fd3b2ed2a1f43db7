//! The registry directory: the owner's side ([`Record`]: create, keep current, remove) and
//! the reader's ([`RunDir`]: scan a namespace's records, tell live from stale, sweep).

use std::collections::BTreeSet;
use std::ffi::CStr;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;
use nix::fcntl::{OFlag, RenameFlags, openat, renameat2};
use nix::sys::stat::{Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use nsring_netns::NetNs;
use serde::Serialize;

use super::{
    Counter, Counters, Error, Header, MAX_META, NS_META, PAGE, RUN_DIR, RecordInfo, Result, decode,
    encode, field, sys_err, unix_ns_now, valid_record_name,
};
use crate::sys::{self, SharedPage};

/// A live record, owned by the process that opened the socket. Counters are written with
/// [`Record::store`] (one relaxed atomic store, no system call). Dropping it removes the
/// file.
#[derive(Debug)]
pub struct Record {
    page: SharedPage,
    /// The locked file; closing it releases the lock.
    file: File,
    dir: OwnedFd,
    name: String,
    path: PathBuf,
    header: Header,
}

impl Record {
    /// Creates the record of `socket`, which lives in `ns`, under [`RUN_DIR`].
    pub fn create(ns: &NetNs, socket: impl AsFd, info: &RecordInfo) -> Result<Record> {
        RunDir::new().create(ns.inode(), socket, info)
    }

    /// Stores a counter (relaxed; readers see it at their next read).
    #[inline]
    pub fn store(&self, counter: Counter, value: u64) {
        self.page.store(counter.offset(), value);
    }

    /// The counters as they are now.
    pub fn counters(&self) -> Counters {
        Counters::from_slots(|c| self.page.load(c.offset()))
    }

    /// The file name (`<pid>-<ifname>.<id>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The full path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The record's header (owner, namespace, socket).
    pub fn header(&self) -> &Header {
        &self.header
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        // Unlink while still holding the lock, so no reader ever sees our file unlocked.
        let _ = unlinkat(&self.dir, self.name.as_str(), UnlinkatFlags::NoRemoveDir);
        let _ = &self.file;
        self.remove_dir_if_last();
    }
}

impl Record {
    /// The last record of a namespace takes the namespace's directory along (it holds only
    /// the metadata file then). A record created in it meanwhile makes the rmdir fail: the
    /// metadata is written back for it; or the creator finds the directory gone and tries
    /// again, as it does after a sweep.
    fn remove_dir_if_last(&self) {
        let Some(ns_dir) = self.path.parent() else {
            return;
        };
        match list_names(&self.dir, ns_dir) {
            Ok(names) if names.iter().all(|n| n == NS_META) => {}
            _ => return,
        }
        let _ = unlinkat(&self.dir, NS_META, UnlinkatFlags::NoRemoveDir);
        match std::fs::remove_dir(ns_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) => {
                let (inode, cookie) = (self.header.netns_inode, self.header.netns_cookie);
                let _ = write_ns_meta(&self.dir, ns_dir, inode, cookie);
            }
        }
    }
}

/// The per-process part of record names.
static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// The registry directory: [`RUN_DIR`], or another one for tests.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

impl Default for RunDir {
    fn default() -> Self {
        RunDir::new()
    }
}

/// What [`RunDir::scan`] found in one namespace's directory.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DirScan {
    /// The live records, by name.
    pub records: Vec<RecordView>,
    /// Records that could not be read, and other oddities, one line each.
    pub problems: Vec<Problem>,
    /// Names of stale records (owner gone) that were removed.
    pub removed: Vec<String>,
}

/// A record as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordView {
    /// The file name (`<pid>-<ifname>.<id>`).
    pub name: String,
    /// Owner, namespace and socket.
    pub header: Header,
    /// The configuration the owner wrote.
    pub info: RecordInfo,
    /// The counters at the time of the read.
    pub counters: Counters,
}

/// Something wrong with one entry of a registry directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The entry's name (or the directory's).
    pub name: String,
    /// What is wrong, in words: "record 12-eth1.0 is corrupt: ..." without the prefix.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {} {}", self.name, self.message)
    }
}

/// What [`RunDir::sweep`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepReport {
    /// Stale records removed, as `<inode>/<name>`.
    pub removed: Vec<String>,
    /// Namespace directories removed (their namespace is gone and nothing is left).
    pub removed_dirs: Vec<u64>,
    /// Directories of namespaces that were not found but still hold live records (the
    /// namespace is alive, held only by those sockets).
    pub orphans: Vec<u64>,
}

impl RunDir {
    /// The system's registry, [`RUN_DIR`].
    pub fn new() -> RunDir {
        RunDir::at(RUN_DIR)
    }

    /// A registry rooted elsewhere (tests).
    pub fn at(path: impl Into<PathBuf>) -> RunDir {
        RunDir { path: path.into() }
    }

    /// The registry's base directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn ns_path(&self, inode: u64) -> PathBuf {
        self.path.join(inode.to_string())
    }

    /// Opens the base directory, creating it if asked. `None` if it does not exist.
    fn open_base(&self, create: bool) -> Result<Option<OwnedFd>> {
        if create {
            match nix::unistd::mkdir(&self.path, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(sys_err("mkdir", &self.path)(e)),
            }
        }
        let fd = match nix::fcntl::open(&self.path, dir_flags(), Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if !create => return Ok(None),
            Err(e) => return Err(open_dir_error(e, &self.path)),
        };
        check_dir(&fd, &self.path)?;
        Ok(Some(fd))
    }

    /// Opens a namespace's directory under `base`, creating it if asked.
    fn open_ns(&self, base: &OwnedFd, inode: u64, create: bool) -> Result<Option<OwnedFd>> {
        let name = inode.to_string();
        let path = self.ns_path(inode);
        if create {
            match mkdirat(base, name.as_str(), Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(sys_err("mkdir", &path)(e)),
            }
        }
        let fd = match openat(base, name.as_str(), dir_flags(), Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if !create => return Ok(None),
            Err(e) => return Err(open_dir_error(e, &path)),
        };
        check_dir(&fd, &path)?;
        Ok(Some(fd))
    }

    /// Creates the record of `socket`, which lives in the namespace of nsfs inode
    /// `netns_inode` (the caller vouches for that: the socket was created inside it).
    pub fn create(&self, netns_inode: u64, socket: impl AsFd, info: &RecordInfo) -> Result<Record> {
        let ifname = info.ifname().to_owned();
        let pid = std::process::id();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let name = format!("{pid}-{ifname}.{id}");
        if !valid_record_name(&name) {
            return Err(Error::BadInterface(ifname));
        }
        let sock_path = PathBuf::from("socket");
        let netns_cookie = sys::netns_cookie(socket.as_fd()).map_err(|source| Error::Sys {
            call: "getsockopt(SO_NETNS_COOKIE)",
            path: sock_path.clone(),
            source,
        })?;
        let socket_inode = fstat(socket.as_fd())
            .map_err(sys_err("fstat", &sock_path))?
            .st_ino;
        let header = Header {
            pid,
            netns_inode,
            netns_cookie,
            socket_inode,
        };
        let counters = Counters {
            updated_unix_ns: unix_ns_now(),
            ..Counters::default()
        };
        let bytes = encode(&header, &counters, info)?;

        // A concurrent sweep may remove an empty namespace directory between our mkdir and
        // our openat or rename; try again then.
        let mut last = None;
        for _ in 0..3 {
            match self.try_create(netns_inode, netns_cookie, &name, id, &bytes, header) {
                Ok(r) => return Ok(r),
                Err(e @ Error::Sys { .. }) if is_enoent(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("three attempts"))
    }

    fn try_create(
        &self,
        netns_inode: u64,
        netns_cookie: u64,
        name: &str,
        id: u32,
        bytes: &[u8],
        header: Header,
    ) -> Result<Record> {
        let base = self.open_base(true)?.expect("created");
        let dir = self.open_ns(&base, netns_inode, true)?.expect("created");
        let dir_path = self.ns_path(netns_inode);
        self.claim_dir(&dir, &dir_path, netns_inode, netns_cookie)?;

        let tmp = format!(".tmp-{}-{id}", header.pid);
        let tmp_path = dir_path.join(&tmp);
        let _ = unlinkat(&dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        let fd = openat(
            &dir,
            tmp.as_str(),
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map_err(sys_err("open", &tmp_path))?;
        let file = File::from(fd);
        let cleanup = |e: Error| {
            let _ = unlinkat(&dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
            e
        };
        fchmod(&file, Mode::from_bits_truncate(0o644))
            .map_err(sys_err("fchmod", &tmp_path))
            .map_err(cleanup)?;
        file.try_lock().map_err(|e| {
            cleanup(Error::Sys {
                call: "flock",
                path: tmp_path.clone(),
                source: io::Error::from(e),
            })
        })?;
        file.write_all_at(bytes, 0)
            .map_err(|source| Error::Sys {
                call: "write",
                path: tmp_path.clone(),
                source,
            })
            .map_err(cleanup)?;
        let page = SharedPage::map(&file, PAGE)
            .map_err(|source| Error::Sys {
                call: "mmap",
                path: tmp_path.clone(),
                source,
            })
            .map_err(cleanup)?;

        let path = dir_path.join(name);
        let mut tried_stale = false;
        loop {
            match renameat2(
                &dir,
                tmp.as_str(),
                &dir,
                name,
                RenameFlags::RENAME_NOREPLACE,
            ) {
                Ok(()) => break,
                // A stale record of an earlier process with our PID: remove it if its lock
                // is free, once.
                Err(Errno::EEXIST) if !tried_stale => {
                    tried_stale = true;
                    let _ = remove_if_stale(&dir, name);
                }
                Err(e) => return Err(cleanup(sys_err("rename", &path)(e))),
            }
        }
        Ok(Record {
            page,
            file,
            dir,
            name: name.to_owned(),
            path,
            header,
        })
    }

    /// Makes sure the directory's metadata names this namespace (by cookie); if it names
    /// an earlier namespace that had the same inode, its stale records are swept first.
    fn claim_dir(&self, dir: &OwnedFd, path: &Path, inode: u64, cookie: u64) -> Result<()> {
        if read_ns_meta(dir).is_some_and(|(i, c)| i == inode && c == cookie) {
            return Ok(());
        }
        let _ = scan_dir(dir, Some(cookie));
        write_ns_meta(dir, path, inode, cookie)
    }

    /// Reads the records of the namespace with nsfs inode `netns_inode`, removing stale
    /// ones. With `netns_cookie`, records of an earlier namespace that had the same inode
    /// are not shown (and removed when stale). A missing directory is an empty scan.
    pub fn scan(&self, netns_inode: u64, netns_cookie: Option<u64>) -> Result<DirScan> {
        let Some(base) = self.open_base(false)? else {
            return Ok(DirScan::default());
        };
        let Some(dir) = self.open_ns(&base, netns_inode, false)? else {
            return Ok(DirScan::default());
        };
        Ok(scan_dir(&dir, netns_cookie))
    }

    /// The namespace inodes that have a directory.
    pub fn namespaces(&self) -> Result<Vec<u64>> {
        let Some(base) = self.open_base(false)? else {
            return Ok(Vec::new());
        };
        let mut out: Vec<u64> = list_names(&base, &self.path)?
            .into_iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// Cleans the directories of namespaces not in `alive` (the inodes of every namespace
    /// that still exists): stale records are removed, and a directory left with no record
    /// is removed. A directory that still holds live records is reported as an orphan (its
    /// namespace exists, kept alive by those very sockets, but nothing names it).
    pub fn sweep(&self, alive: &BTreeSet<u64>) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        let Some(base) = self.open_base(false)? else {
            return Ok(report);
        };
        for inode in self.namespaces()? {
            if alive.contains(&inode) {
                continue;
            }
            let Ok(Some(dir)) = self.open_ns(&base, inode, false) else {
                continue;
            };
            let scan = scan_dir(&dir, None);
            report
                .removed
                .extend(scan.removed.iter().map(|n| format!("{inode}/{n}")));
            if !scan.records.is_empty() || !scan.problems.is_empty() {
                report.orphans.push(inode);
                continue;
            }
            // Only the metadata (and maybe temporaries of dead writers) are left.
            let _ = unlinkat(&dir, NS_META, UnlinkatFlags::NoRemoveDir);
            if unlinkat(&base, inode.to_string().as_str(), UnlinkatFlags::RemoveDir).is_ok() {
                report.removed_dirs.push(inode);
            }
        }
        Ok(report)
    }
}

fn is_enoent(e: &Error) -> bool {
    matches!(e, Error::Sys { source, .. } if source.raw_os_error() == Some(libc::ENOENT))
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

fn open_dir_error(e: Errno, path: &Path) -> Error {
    match e {
        Errno::ELOOP | Errno::ENOTDIR => Error::Unsafe {
            path: path.to_path_buf(),
            why: "it is a symlink or not a directory".into(),
        },
        e => sys_err("open", path)(e),
    }
}

/// Refuses a directory that is not a directory, that someone other than us or root owns,
/// or that others could write into.
fn check_dir(fd: &OwnedFd, path: &Path) -> Result<()> {
    let st = fstat(fd).map_err(sys_err("fstat", path))?;
    let unsafe_dir = |why: String| {
        Err(Error::Unsafe {
            path: path.to_path_buf(),
            why,
        })
    };
    if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFDIR {
        return unsafe_dir("it is not a directory".into());
    }
    let euid = nix::unistd::geteuid().as_raw();
    if st.st_uid != 0 && st.st_uid != euid {
        return unsafe_dir(format!("it is owned by uid {}, not root", st.st_uid));
    }
    if st.st_mode & 0o022 != 0 {
        return unsafe_dir(format!(
            "it is writable by group or others (mode {:o})",
            st.st_mode & 0o7777
        ));
    }
    Ok(())
}

/// The entry names of a directory (without `.` and `..`).
fn list_names(dir: &OwnedFd, path: &Path) -> Result<Vec<String>> {
    let dup = dir.try_clone().map_err(|source| Error::Sys {
        call: "dup",
        path: path.to_path_buf(),
        source,
    })?;
    let mut d = nix::dir::Dir::from_fd(dup).map_err(sys_err("opendir", path))?;
    let mut out = Vec::new();
    for entry in d.iter() {
        let entry = entry.map_err(sys_err("readdir", path))?;
        let name: &CStr = entry.file_name();
        match name.to_str() {
            Ok(".") | Ok("..") => {}
            Ok(n) => out.push(n.to_owned()),
            // Not ours (we only write ASCII names); shown as a problem by the scan.
            Err(_) => out.push(name.to_string_lossy().into_owned()),
        }
    }
    out.sort();
    Ok(out)
}

/// Writes a namespace directory's metadata file (through a temporary and a rename).
fn write_ns_meta(dir: &OwnedFd, path: &Path, inode: u64, cookie: u64) -> Result<()> {
    let tmp = format!(".netns-{}", std::process::id());
    let text = format!("inode={inode}\ncookie={cookie}\n");
    let fd = openat(
        dir,
        tmp.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(sys_err("open", &path.join(&tmp)))?;
    let file = File::from(fd);
    let _ = fchmod(&file, Mode::from_bits_truncate(0o644));
    file.write_all_at(text.as_bytes(), 0)
        .map_err(|source| Error::Sys {
            call: "write",
            path: path.join(&tmp),
            source,
        })?;
    renameat2(dir, tmp.as_str(), dir, NS_META, RenameFlags::empty())
        .map_err(sys_err("rename", &path.join(NS_META)))?;
    Ok(())
}

/// `(inode, cookie)` from a directory's metadata file, if it is there and well formed.
fn read_ns_meta(dir: &OwnedFd) -> Option<(u64, u64)> {
    let fd = openat(
        dir,
        NS_META,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .ok()?;
    let mut text = String::new();
    File::from(fd).take(4096).read_to_string(&mut text).ok()?;
    let (mut inode, mut cookie) = (None, None);
    for line in text.lines() {
        match line.split_once('=') {
            Some(("inode", v)) => inode = v.trim().parse().ok(),
            Some(("cookie", v)) => cookie = v.trim().parse().ok(),
            _ => {}
        }
    }
    Some((inode?, cookie?))
}

/// What one directory entry turned out to be.
enum Entry {
    Live(Box<RecordView>),
    Stale,
    Problem(String),
    Skip,
}

/// Reads every record of a namespace directory (removing the stale ones).
fn scan_dir(dir: &OwnedFd, cookie: Option<u64>) -> DirScan {
    let mut scan = DirScan::default();
    let names = match list_names(dir, Path::new("registry directory")) {
        Ok(n) => n,
        Err(e) => {
            scan.problems.push(Problem {
                name: ".".into(),
                message: format!("directory cannot be listed: {e}"),
            });
            return scan;
        }
    };
    for name in names {
        if name == NS_META {
            continue;
        }
        if let Some(rest) = name
            .strip_prefix(".tmp-")
            .or_else(|| name.strip_prefix(".netns-"))
        {
            remove_dead_temporary(dir, &name, rest);
            continue;
        }
        match read_entry(dir, &name, cookie) {
            Entry::Live(r) => scan.records.push(*r),
            Entry::Stale => scan.removed.push(name),
            Entry::Problem(message) => scan.problems.push(Problem { name, message }),
            Entry::Skip => {}
        }
    }
    scan
}

/// A writer's temporary (`.tmp-<pid>-<id>`, `.netns-<pid>`) left behind by a dead process.
fn remove_dead_temporary(dir: &OwnedFd, name: &str, rest: &str) {
    let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
    let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
    if alive {
        return;
    }
    // Held locked by a writer that is half-way? Then it is alive, whatever /proc says.
    if name.starts_with(".tmp-")
        && let Ok(fd) = openat(dir, name, record_open_flags(), Mode::empty())
        && File::from(fd).try_lock().is_err()
    {
        return;
    }
    let _ = unlinkat(dir, name, UnlinkatFlags::NoRemoveDir);
}

fn record_open_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY
}

/// Removes `name` if no one holds its lock. True if it was removed.
fn remove_if_stale(dir: &OwnedFd, name: &str) -> bool {
    let Ok(fd) = openat(dir, name, record_open_flags(), Mode::empty()) else {
        return false;
    };
    let file = File::from(fd);
    if file.try_lock().is_err() {
        return false;
    }
    unlink_same(dir, name, &file)
}

/// Unlinks `name` if it is still the file `file` has open (another process may have
/// removed it and created a new one under the same name meanwhile).
fn unlink_same(dir: &OwnedFd, name: &str, file: &File) -> bool {
    let (Ok(a), Ok(b)) = (
        fstat(file),
        fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW),
    ) else {
        return false;
    };
    if a.st_ino != b.st_ino || a.st_dev != b.st_dev {
        return false;
    }
    unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).is_ok()
}

fn read_entry(dir: &OwnedFd, name: &str, cookie: Option<u64>) -> Entry {
    let fd = match openat(dir, name, record_open_flags(), Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Entry::Skip, // its owner just removed it
        Err(Errno::ELOOP) => {
            return Entry::Problem("is a symlink: not followed (remove it)".into());
        }
        Err(e) => return Entry::Problem(format!("cannot be opened: {}", io::Error::from(e))),
    };
    let file = File::from(fd);
    let st = match fstat(&file) {
        Ok(st) => st,
        Err(e) => return Entry::Problem(format!("cannot be examined: {}", io::Error::from(e))),
    };
    if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
        return Entry::Problem("is not a regular file: ignored".into());
    }
    match file.try_lock() {
        // No owner holds it: stale.
        Ok(()) => {
            if unlink_same(dir, name, &file) {
                return Entry::Stale;
            }
            return Entry::Skip;
        }
        Err(std::fs::TryLockError::WouldBlock) => {}
        Err(std::fs::TryLockError::Error(e)) => {
            return Entry::Problem(format!("cannot be locked: {e}"));
        }
    }
    if !valid_record_name(name) {
        return Entry::Problem("has a name that is not <pid>-<ifname>.<id>: ignored".into());
    }
    let mut bytes = Vec::new();
    if let Err(e) = (&file)
        .take((field::META + MAX_META + PAGE) as u64)
        .read_to_end(&mut bytes)
    {
        return Entry::Problem(format!("cannot be read: {e}"));
    }
    match decode(&bytes) {
        Ok((header, counters, info)) => {
            if let Some(c) = cookie
                && header.netns_cookie != c
            {
                return Entry::Problem(format!(
                    "belongs to an earlier namespace with the same inode (cookie {} is not {c}): ignored",
                    header.netns_cookie
                ));
            }
            Entry::Live(Box::new(RecordView {
                name: name.to_owned(),
                header,
                info,
                counters,
            }))
        }
        Err(why) => Entry::Problem(why.to_string()),
    }
}
