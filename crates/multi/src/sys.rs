//! The system calls of the event loop: epoll, an eventfd to stop it, pidfds to learn when a
//! process exits, the open-file limit. The crate's only unsafe code is `pidfd_open` here.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::poll::PollTimeout;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::{Error, Result};

/// One epoll instance; every descriptor is registered with a `u64` token.
#[derive(Debug)]
pub(crate) struct Poller {
    ep: Epoll,
}

impl Poller {
    pub(crate) fn new() -> Result<Poller> {
        let ep = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| Error::sys("epoll_create1", "", e.into()))?;
        Ok(Poller { ep })
    }

    /// Watches `fd` for input (and errors, which epoll always reports).
    pub(crate) fn add(&self, fd: BorrowedFd<'_>, token: u64) -> Result<()> {
        self.add_with(fd, token, EpollFlags::EPOLLIN)
    }

    /// Watches `fd` for `flags`.
    pub(crate) fn add_with(&self, fd: BorrowedFd<'_>, token: u64, flags: EpollFlags) -> Result<()> {
        self.ep
            .add(fd, EpollEvent::new(flags, token))
            .map_err(|e| Error::sys("epoll_ctl ADD", "", e.into()))
    }

    /// Stops watching `fd` (closing it would too; this keeps the set exact meanwhile).
    pub(crate) fn remove(&self, fd: BorrowedFd<'_>) {
        let _ = self.ep.delete(fd);
    }

    /// Waits at most `timeout` (`None`: until something happens). A signal ends the wait
    /// early with no events.
    pub(crate) fn wait(
        &self,
        events: &mut [EpollEvent],
        timeout: Option<Duration>,
    ) -> Result<usize> {
        let ms = match timeout {
            None => PollTimeout::NONE,
            Some(t) => {
                // round up, so a wait never ends just before its deadline
                let ms = t.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        match self.ep.wait(events, ms) {
            Ok(n) => Ok(n),
            Err(nix::errno::Errno::EINTR) => Ok(0),
            Err(e) => Err(Error::sys("epoll_wait", "", e.into())),
        }
    }
}

/// Ends a running session from any thread or a signal handler: one `write(2)` to an
/// eventfd in the session's epoll set.
#[derive(Debug, Clone)]
pub struct Stopper {
    fd: std::sync::Arc<EventFd>,
}

impl Stopper {
    pub(crate) fn new() -> Result<Stopper> {
        let fd = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| Error::sys("eventfd", "", e.into()))?;
        Ok(Stopper {
            fd: std::sync::Arc::new(fd),
        })
    }

    /// Asks the session to stop: it drains every ring (about two block timeouts), closes
    /// every capture with its final statistics, and returns.
    pub fn stop(&self) -> io::Result<()> {
        self.fd.write(1).map(drop).map_err(io::Error::from)
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Takes the pending stop requests (true if there was one).
    pub(crate) fn take(&self) -> bool {
        self.fd.read().is_ok_and(|n| n > 0)
    }
}

/// A descriptor that becomes readable when process `pid` exits (Linux 5.3). `None` if the
/// process is already gone.
pub(crate) fn pidfd_open(pid: u32) -> Result<Option<OwnedFd>> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor or -1; no
    // memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ESRCH) => Ok(None),
            _ => Err(Error::sys("pidfd_open", format!("pid {pid}"), e)),
        };
    }
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
}

/// Raises the soft limit on open files to the hard limit: every capture holds a socket and
/// a few more descriptors, and every followed namespace a netlink socket and its handle.
pub(crate) fn raise_nofile() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}
