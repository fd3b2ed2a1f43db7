//! The mount point before and after: is the directory there, is something mounted on it
//! already, is it a dead nsring mount left by a killed process (cleared), may other users
//! read a FUSE mount (`allow_other`), and unmounting when done.

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::MntFlags;

use crate::Error;

/// The source name nsring's mounts carry in the mount table (`nsring on /x type fuse.nsring`).
pub const FS_NAME: &str = "nsring";

/// One line of `/proc/self/mountinfo`, the parts used here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted (octal escapes undone).
    pub point: PathBuf,
    /// `fuse`, `fuse.nsring`, `tmpfs`, ...
    pub fstype: String,
    /// The mount source (`nsring` for ours).
    pub source: String,
}

impl MountEntry {
    /// Mounted by `nsring mount` (the source, and a FUSE type).
    pub fn is_nsring(&self) -> bool {
        self.source == FS_NAME && (self.fstype == "fuse" || self.fstype == "fuse.nsring")
    }
}

/// Parses `/proc/self/mountinfo` text: `ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS] - TYPE SOURCE
/// SUPEROPTS`. Lines that do not parse are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fstype = r.next()?;
            let source = r.next()?;
            Some(MountEntry {
                point: PathBuf::from(unescape(point)),
                fstype: fstype.to_owned(),
                source: unescape(source),
            })
        })
        .collect()
}

/// Undoes the kernel's `\ooo` escapes (space, tab, newline, backslash).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
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

/// The topmost mount at `point`, if any, from this process's mount table.
pub fn mounted_at(point: &Path) -> Result<Option<MountEntry>, Error> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|source| Error::MountTable { source })?;
    Ok(parse_mountinfo(&text)
        .into_iter()
        .rfind(|m| m.point == point))
}

/// `dir` made absolute without touching the directory itself (a dead FUSE mount cannot be
/// stat'ed): the parent is resolved, the last component kept.
pub fn absolute(dir: &Path) -> Result<PathBuf, Error> {
    let abs = std::path::absolute(dir).map_err(|source| Error::Inspect {
        path: dir.to_owned(),
        source,
    })?;
    let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
        return Ok(abs); // "/"
    };
    let parent = parent.canonicalize().map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            Error::Missing(dir.to_owned())
        } else {
            Error::Inspect {
                path: parent.to_owned(),
                source,
            }
        }
    })?;
    Ok(parent.join(name))
}

/// What [`prepare`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// A plain directory, ready.
    Ready,
    /// A dead nsring mount (its process was killed) was there and has been unmounted.
    ClearedStale,
}

/// Checks that `point` (absolute, see [`absolute`]) can take the mount: it exists, it is a
/// directory, nothing is mounted on it. A dead nsring mount — the mount table names it and
/// the directory answers ENOTCONN because its process is gone — is unmounted first.
pub fn prepare(point: &Path) -> Result<Prepared, Error> {
    let mut cleared = false;
    loop {
        match std::fs::metadata(point) {
            Ok(m) if !m.is_dir() => return Err(Error::NotDir(point.to_owned())),
            Ok(_) => {
                if let Some(m) = mounted_at(point)? {
                    return Err(Error::InUse {
                        path: point.to_owned(),
                        what: if m.is_nsring() {
                            "a running 'nsring mount'".to_owned()
                        } else {
                            format!("a {} file system ({})", m.fstype, m.source)
                        },
                    });
                }
                return Ok(if cleared {
                    Prepared::ClearedStale
                } else {
                    Prepared::Ready
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::Missing(point.to_owned()));
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) && !cleared => {
                match mounted_at(point)? {
                    Some(m) if m.is_nsring() => {
                        detach(point).map_err(|source| Error::ClearStale {
                            path: point.to_owned(),
                            source,
                        })?;
                        cleared = true;
                    }
                    Some(m) => {
                        return Err(Error::InUse {
                            path: point.to_owned(),
                            what: format!(
                                "a dead {} file system ({}; unmount it with 'umount -l')",
                                m.fstype, m.source
                            ),
                        });
                    }
                    None => {
                        return Err(Error::Inspect {
                            path: point.to_owned(),
                            source: e,
                        });
                    }
                }
            }
            Err(source) => {
                return Err(Error::Inspect {
                    path: point.to_owned(),
                    source,
                });
            }
        }
    }
}

/// Unmounts `point` lazily: gone from the tree now, released when the last open file closes.
/// Needs CAP_SYS_ADMIN; without it `fusermount3 -u -z` (setuid) does it for the mount's owner.
pub fn detach(point: &Path) -> io::Result<()> {
    match nix::mount::umount2(point, MntFlags::MNT_DETACH) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EPERM) => {
            let st = std::process::Command::new("fusermount3")
                .args(["-u", "-z", "--"])
                .arg(point)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .status()?;
            if st.success() {
                Ok(())
            } else {
                Err(io::Error::other(format!("fusermount3 -u -z failed ({st})")))
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether other users may read a FUSE mount of ours: always as root; otherwise only with
/// `user_allow_other` in `fuse_conf` (the text of /etc/fuse.conf).
pub fn allow_other_permitted(is_root: bool, fuse_conf: Option<&str>) -> bool {
    is_root
        || fuse_conf.is_some_and(|t| {
            t.lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .any(|l| l == "user_allow_other")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_table_lines() {
        let t = "\
36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue
99 22 0:61 / /tmp/nsrt-x/v rw,nosuid,nodev,relatime shared:5 - fuse nsring rw,user_id=0,group_id=0
100 22 0:62 / /tmp/y rw - fuse.nsring nsring rw
garbage
";
        let m = parse_mountinfo(t);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].point, Path::new("/mnt/with space"));
        assert_eq!(m[0].fstype, "ext3");
        assert!(!m[0].is_nsring());
        assert_eq!(m[1].point, Path::new("/tmp/nsrt-x/v"));
        assert!(m[1].is_nsring());
        assert!(m[2].is_nsring());
    }

    #[test]
    fn allow_other_needs_root_or_fuse_conf() {
        assert!(allow_other_permitted(true, None));
        assert!(!allow_other_permitted(false, None));
        assert!(!allow_other_permitted(
            false,
            Some("#user_allow_other\nmount_max = 1000\n")
        ));
        assert!(allow_other_permitted(
            false,
            Some("mount_max = 1000\n user_allow_other \n")
        ));
    }

    #[test]
    fn bad_mount_points() {
        let base = std::env::temp_dir().join(format!("nsrt-point-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let missing = base.join("nope");
        assert!(matches!(prepare(&missing), Err(Error::Missing(_))));
        let file = base.join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(prepare(&file), Err(Error::NotDir(_))));
        assert_eq!(prepare(&base).unwrap(), Prepared::Ready);
        assert!(matches!(
            absolute(Path::new("/nonexistent-nsrt/x")),
            Err(Error::Missing(_))
        ));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
