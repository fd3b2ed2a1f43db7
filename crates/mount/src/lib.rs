//! The per-namespace view as files: PF_RING's `/proc/net/pf_ring` without a kernel module,
//! served over FUSE.
//!
//! This crate owns the file system ([`fs`]: each reader sees the view of the network
//! namespace it is in, as procfs does; contents made at open, nothing cached by the kernel)
//! and the mount's life ([`point`]: the mount point checked, a dead nsring mount left by a
//! killed process cleared, unmounting at the end). What the files say comes from
//! `nsring-registry` ([`nsring_registry::tree`]); this crate adds no view logic.
//!
//! It must not open capture sockets and never changes anything it shows.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use fuser::{BackgroundSession, Config, MountOption, SessionACL};

pub mod fs;
pub mod point;

pub use point::Prepared;

/// Errors of mounting. [`Error::is_usage`] says which are the user's to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The mount point does not exist.
    #[error("mount point {} does not exist: create it first (mkdir -p {})", .0.display(), .0.display())]
    Missing(PathBuf),
    /// The mount point is a file.
    #[error("mount point {} is not a directory", .0.display())]
    NotDir(PathBuf),
    /// Something is mounted on the mount point already.
    #[error("mount point {} is in use: {what} is mounted there; unmount it or choose another directory", path.display())]
    InUse {
        /// The mount point.
        path: PathBuf,
        /// What is mounted there.
        what: String,
    },
    /// `allow_other` asked for without root or `user_allow_other`.
    #[error(
        "other users can read the mount only with allow_other, which needs root or \
         'user_allow_other' in /etc/fuse.conf: add it, or mount with --private"
    )]
    AllowOtherNotPermitted,
    /// `/proc/self/mountinfo` could not be read.
    #[error("cannot read the mount table (/proc/self/mountinfo)")]
    MountTable {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The mount point could not be looked at.
    #[error("cannot inspect {}", path.display())]
    Inspect {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A dead nsring mount could not be unmounted.
    #[error("cannot clear the dead nsring mount at {}", path.display())]
    ClearStale {
        /// The mount point.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// FUSE refused the mount.
    #[error("cannot mount the view at {} (FUSE: is /dev/fuse there? fuse3 installed?)", path.display())]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The mount could not be taken down.
    #[error("cannot unmount {}", path.display())]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The user named something that cannot take the mount (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Missing(_)
                | Error::NotDir(_)
                | Error::InUse { .. }
                | Error::AllowOtherNotPermitted
        )
    }
}

/// How to mount.
#[derive(Debug, Clone)]
pub struct Options {
    /// Let every user read the mount (FUSE `allow_other`); otherwise only the mounting user.
    pub allow_other: bool,
    /// The capture engine's default ring, for `info`.
    pub ring_defaults: String,
    /// Where nsring's socket records are (normally `/run/nsring`).
    pub run: nsring_registry::RunDir,
    /// Request threads (a view takes a few milliseconds to build; readers should not queue
    /// behind one slow namespace).
    pub threads: usize,
}

/// A live mount; [`Mounted::unmount`] ends it (dropping it does too, less carefully).
#[derive(Debug)]
pub struct Mounted {
    point: PathBuf,
    session: Option<BackgroundSession>,
    /// What was at the mount point before.
    pub prepared: Prepared,
}

/// Mounts the view at `dir` after checking it (see [`point::prepare`]).
pub fn mount(dir: &Path, opts: Options) -> Result<Mounted, Error> {
    let point = point::absolute(dir)?;
    let is_root = nix::unistd::geteuid().is_root();
    if opts.allow_other {
        let conf = std::fs::read_to_string("/etc/fuse.conf").ok();
        if !point::allow_other_permitted(is_root, conf.as_deref()) {
            return Err(Error::AllowOtherNotPermitted);
        }
    }
    let prepared = point::prepare(&point)?;
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(point::FS_NAME.to_owned()),
        MountOption::Subtype(point::FS_NAME.to_owned()),
        MountOption::RO,
        MountOption::NoExec,
        MountOption::NoSuid,
        MountOption::NoDev,
        MountOption::NoAtime,
        MountOption::DefaultPermissions,
    ];
    config.acl = if opts.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(opts.threads.max(1));
    let fs = fs::ViewFs::new(fs::RegistrySource {
        run: opts.run,
        ring_defaults: opts.ring_defaults,
    });
    let session = fuser::spawn_mount(fs, &point, &config).map_err(|source| Error::Mount {
        path: point.clone(),
        source,
    })?;
    Ok(Mounted {
        point,
        session: Some(session),
        prepared,
    })
}

impl Mounted {
    /// The absolute mount point.
    pub fn point(&self) -> &Path {
        &self.point
    }

    /// True once the session has ended: someone unmounted it from outside (`umount`,
    /// `fusermount3 -u`).
    pub fn ended(&self) -> bool {
        self.session.as_ref().is_none_or(|s| s.guard.is_finished())
    }

    /// Unmounts and waits for the request threads. A mount still busy (a reader holds a file
    /// open) is detached: gone from the tree at once, released when the reader closes.
    pub fn unmount(mut self) -> Result<(), Error> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        if session.guard.is_finished() {
            return Ok(());
        }
        match session.umount_and_join() {
            Ok(()) => Ok(()),
            Err(_) => {
                // Busy: detach it. The request threads end when the kernel lets go of the
                // connection; the process exiting closes it in any case.
                match point::detach(&self.point) {
                    Ok(()) => Ok(()),
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()), // gone already
                    Err(source) => Err(Error::Unmount {
                        path: self.point.clone(),
                        source,
                    }),
                }
            }
        }
    }

    /// Polls until the session ends by itself or `stop` says so, every `tick`.
    pub fn wait(&self, mut stop: impl FnMut() -> bool, tick: Duration) {
        while !self.ended() && !stop() {
            std::thread::sleep(tick);
        }
    }
}
